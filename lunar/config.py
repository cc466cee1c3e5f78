"""Service configuration: command-line flags, each also readable from an environment variable.

Every option is one ``Option`` entry in ``OPTIONS``. Its environment variable
is derived from the flag (``--max-body-bytes`` reads ``LUNAR_MAX_BODY_BYTES``),
and a flag given on the command line wins over the variable. Repeatable flags
take a comma-separated list from the environment. An invalid value, from
either source, raises ``ConfigError`` naming the flag or variable. This module
parses and checks values only: it does not act on them.
"""

import argparse
import ipaddress
import math
from typing import Any, Callable, Dict, List, Mapping, NamedTuple, Optional, Sequence, Union

from lunar import web
from lunar.bulk import DEFAULT_MAX_BATCH_BYTES
from lunar.cors import parse_origin
from lunar.events import MAX_SUBSCRIBERS
from lunar.fleet import Limits
from lunar.store import MEMORY, SYNC_LEVELS

ENV_PREFIX = "LUNAR_"

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8088
DEFAULT_DATABASE = "lunar.db"
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
LOG_FORMATS = ("text", "json")

DEFAULT_MAX_BODY_BYTES = web.MAX_BODY_BYTES
# http.server reads request lines of up to 65536 bytes, the same limit that
# http.client (_MAXLINE) applies to every header line.
DEFAULT_MAX_REQUEST_LINE_BYTES = web.MAX_REQUEST_LINE_BYTES
DEFAULT_IDLE_TIMEOUT_SECONDS = web.IDLE_TIMEOUT_SECONDS
DEFAULT_REQUEST_TIMEOUT_SECONDS = web.REQUEST_TIMEOUT_SECONDS
DEFAULT_WORKERS = web.WORKERS
DEFAULT_MAX_STREAMS = web.MAX_STREAMS
DEFAULT_DRAIN_TIMEOUT_SECONDS = 3.0
DEFAULT_SUMMARY_INTERVAL_SECONDS = 60.0
DEFAULT_REJECTION_LOG_LINES_PER_SECOND = 10


class ConfigError(Exception):
    """Raised when a flag or environment variable has an invalid value."""


Parser = Callable[[str], Any]


class Option(NamedTuple):
    """One setting: its flag, default, value parser and help text.

    ``parse`` turns one text value into the setting's value, or raises
    ``ValueError`` with a message naming the value and the problem. A
    repeatable option collects a list, and its default is a list too.
    """

    flag: str
    default: Any
    parse: Parser
    help: str
    metavar: Optional[str] = None
    repeatable: bool = False

    @property
    def name(self) -> str:
        """Return the attribute name of the parsed setting, such as ``max_body_bytes``."""
        return self.flag[2:].replace("-", "_")

    @property
    def env(self) -> str:
        """Return the environment variable that sets this option, such as ``LUNAR_PORT``."""
        return ENV_PREFIX + self.name.upper()


# -- value parsers --------------------------------------------------------------


def port_number(text: str) -> int:
    """Parse a TCP port from 0 to 65535."""
    try:
        port = int(text)
    except ValueError:
        raise ValueError(f"invalid port {text!r}: not an integer") from None
    if not 0 <= port <= 65535:
        raise ValueError(f"invalid port {port}: must be from 0 to 65535")
    return port


def positive_integer(text: str) -> int:
    """Parse an integer of at least 1."""
    try:
        value = int(text.replace("_", ""))
    except ValueError:
        raise ValueError(f"invalid count {text!r}: not an integer") from None
    if value < 1:
        raise ValueError(f"invalid count {value}: must be at least 1")
    return value


def positive_seconds(text: str) -> float:
    """Parse a finite duration in seconds greater than 0."""
    value = _finite_number(text)
    if value <= 0:
        raise ValueError(f"invalid duration {text!r}: must be greater than 0 seconds")
    return value


def seconds_or_off(text: str) -> float:
    """Parse a duration in seconds, where 0 turns the feature off."""
    value = _finite_number(text)
    if value < 0:
        raise ValueError(f"invalid duration {text!r}: must be 0 (off) or more seconds")
    return value


def network(text: str) -> Union[ipaddress.IPv4Network, ipaddress.IPv6Network]:
    """Parse a CIDR block such as ``10.0.0.0/8`` or ``::1/128``; a bare address is one host."""
    try:
        return ipaddress.ip_network(text.strip(), strict=True)
    except ValueError as error:
        raise ValueError(f"invalid network {text!r}: {error}") from None


def one_of(choices: Sequence[str], normalize: Callable[[str], str] = str) -> Parser:
    """Return a parser that accepts one of ``choices`` after ``normalize``."""
    def parse(text: str) -> str:
        value = normalize(text.strip())
        if value not in choices:
            raise ValueError(f"invalid choice {text!r}: use one of {', '.join(choices)}")
        return value
    return parse


def _finite_number(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"invalid number {text!r}") from None
    if not math.isfinite(value):
        raise ValueError(f"invalid number {text!r}: must be finite")
    return value


# -- the options -------------------------------------------------------------------

_LIMITS = Limits()

OPTIONS: List[Option] = [
    Option("--host", DEFAULT_HOST, str,
           "address to listen on, IPv4 or IPv6 such as '::'; keep the loopback default "
           "unless a proxy or --ingest-allow guards the port"),
    Option("--port", DEFAULT_PORT, port_number, "TCP port; 0 picks a free one and logs it"),
    Option("--db", DEFAULT_DATABASE, str,
           f"SQLite database file that keeps every accepted message; '{MEMORY}' keeps "
           "nothing after exit", metavar="PATH"),
    Option("--sync", "normal", one_of(sorted(SYNC_LEVELS), str.lower),
           "durability of each commit: 'normal' survives a crash of lunar, 'full' also "
           "survives power loss and OS crashes but is slower", metavar="normal|full"),
    Option("--log-level", "INFO", one_of(LOG_LEVELS, str.upper),
           "minimum level of log lines on stderr: " + ", ".join(LOG_LEVELS), metavar="LEVEL"),
    Option("--log-format", "text", one_of(LOG_FORMATS, str.lower),
           "'text' for readable lines, 'json' for one JSON object per line",
           metavar="text|json"),
    Option("--summary-interval", DEFAULT_SUMMARY_INTERVAL_SECONDS, seconds_or_off,
           "seconds between INFO lines that summarise message traffic, logged only "
           "while messages arrive; 0 turns them off", metavar="SECONDS"),
    Option("--rejection-log-rate", DEFAULT_REJECTION_LOG_LINES_PER_SECOND, positive_integer,
           "maximum log lines per second about rejected messages; further rejections "
           "are counted and summarised in one line", metavar="LINES"),
    Option("--ingest-allow", [], network,
           "network in CIDR notation allowed to POST /messages; repeat the flag or "
           "separate networks with commas in the variable; with none, every client that "
           "can connect may post", metavar="CIDR", repeatable=True),
    Option("--cors-origin", [], parse_origin,
           "let web pages from ORIGIN (scheme://host[:port], or '*' for any) read the "
           "API's responses; repeat the flag or separate origins with commas in the "
           "variable", metavar="ORIGIN", repeatable=True),
    Option("--max-subscribers", MAX_SUBSCRIBERS, positive_integer,
           "concurrent GET /events streams; more get 503 (at most --max-streams)",
           metavar="STREAMS"),
    Option("--max-body-bytes", DEFAULT_MAX_BODY_BYTES, positive_integer,
           "largest request body in bytes; larger bodies get 413", metavar="BYTES"),
    Option("--max-batch-bytes", DEFAULT_MAX_BATCH_BYTES, positive_integer,
           "largest NDJSON (application/x-ndjson) batch body in bytes; other bodies keep "
           "the --max-body-bytes limit", metavar="BYTES"),
    Option("--max-request-line-bytes", DEFAULT_MAX_REQUEST_LINE_BYTES, positive_integer,
           "longest request line (method, URL and version) in bytes; longer lines get 414",
           metavar="BYTES"),
    Option("--idle-timeout", DEFAULT_IDLE_TIMEOUT_SECONDS, positive_seconds,
           "seconds a connection may wait for its next request before it is closed",
           metavar="SECONDS"),
    Option("--request-timeout", DEFAULT_REQUEST_TIMEOUT_SECONDS, positive_seconds,
           "seconds a client has to send a whole request once it starts, and the longest "
           "a response write may wait for the client to read", metavar="SECONDS"),
    Option("--workers", DEFAULT_WORKERS, positive_integer,
           "worker threads that serve requests; idle connections hold no thread",
           metavar="THREADS"),
    Option("--max-streams", DEFAULT_MAX_STREAMS, positive_integer,
           "long-lived streaming responses served at once, one thread each",
           metavar="STREAMS"),
    Option("--max-pending-per-rocket", _LIMITS.max_pending_per_rocket, positive_integer,
           "messages one rocket may hold waiting behind a gap; more get 503",
           metavar="MESSAGES"),
    Option("--max-pending-total", _LIMITS.max_pending_total, positive_integer,
           "messages all rockets together may hold waiting behind gaps; more get 503",
           metavar="MESSAGES"),
    Option("--max-rockets", _LIMITS.max_rockets, positive_integer,
           "rockets the fleet may hold; messages of further channels get 503",
           metavar="ROCKETS"),
    Option("--drain-timeout", DEFAULT_DRAIN_TIMEOUT_SECONDS, positive_seconds,
           "seconds a stopping server waits for requests in flight before it closes "
           "their connections", metavar="SECONDS"),
]


def build_parser(options: Sequence[Option] = OPTIONS) -> argparse.ArgumentParser:
    """Return the command-line parser; each help line names the default and the variable."""
    parser = argparse.ArgumentParser(
        prog="lunar_server.py",
        description="Serve rocket telemetry: POST /messages, GET /rockets and /missions, "
                    "and /healthz, /readyz and /metrics for operators.",
        epilog="Every flag can also be set by the environment variable named in its help; "
               "the flag wins when both are given.",
    )
    for option in options:
        parser.add_argument(
            option.flag,
            dest=option.name,
            type=_argparse_type(option.parse),
            action="append" if option.repeatable else "store",
            default=argparse.SUPPRESS,
            metavar=option.metavar or option.name.upper(),
            help=f"{option.help} (default: {_show_default(option.default)}; env {option.env})",
        )
    return parser


def load_config(argv: Optional[Sequence[str]], environ: Mapping[str, str],
                options: Sequence[Option] = OPTIONS) -> argparse.Namespace:
    """Parse flags, fall back on environment variables, then on defaults.

    Raises ``ConfigError`` naming the variable when an environment value is
    invalid. An invalid flag makes argparse exit with status 2 and a message
    naming the flag.
    """
    parsed = build_parser(options).parse_args(argv)
    for option in options:
        if hasattr(parsed, option.name):
            continue
        text = environ.get(option.env, "")
        if text.strip():
            setattr(parsed, option.name, _parse_env(option, text))
        else:
            # An empty variable counts as unset, so that `LUNAR_PORT=` in an
            # environment file means "use the default" rather than an error.
            setattr(parsed, option.name, option.default)
    subscribers = getattr(parsed, "max_subscribers", 0)
    if subscribers > getattr(parsed, "max_streams", subscribers):
        raise ConfigError(f"--max-subscribers {parsed.max_subscribers} exceeds --max-streams "
                          f"{parsed.max_streams}; every event stream needs a stream slot, so "
                          "raise --max-streams or lower --max-subscribers")
    return parsed


def describe(config: argparse.Namespace, options: Sequence[Option] = OPTIONS) -> Dict[str, Any]:
    """Return every setting by name as text, for logging."""
    return {option.name: _show_default(getattr(config, option.name)) for option in options}


def _parse_env(option: Option, text: str) -> Any:
    values = [part for part in text.split(",") if part.strip()] if option.repeatable else [text]
    parsed = []
    for value in values:
        try:
            parsed.append(option.parse(value))
        except ValueError as error:
            raise ConfigError(f"environment variable {option.env}={text!r}: {error}; "
                              f"fix or unset it (it sets {option.flag})") from None
    return parsed if option.repeatable else parsed[0]


def _argparse_type(parse: Parser) -> Parser:
    def convert(text: str) -> Any:
        try:
            return parse(text)
        except ValueError as error:
            raise argparse.ArgumentTypeError(str(error)) from None
    convert.__name__ = getattr(parse, "__name__", "value")
    return convert


def _show_default(value: Any) -> str:
    if isinstance(value, list):
        return ",".join(str(item) for item in value) or "none"
    return str(value)
