"""Command line of the ``rockets`` stand-in: ``python3 -m lunar.rockets launch URL``.

It parses the flags, waits briefly for the server to accept connections,
runs the launch with a progress display on stderr and prints the summary on
stdout. The traffic itself comes from ``lunar.rockets.launch``.
"""

import argparse
import logging
import socket
import sys
import time
from typing import Callable, List, Optional, Sequence

from lunar.rockets import generator
from lunar.rockets.durations import InvalidDuration, parse_duration
from lunar.rockets.launch import (
    DEFAULT_CONCURRENCY_LEVEL,
    DEFAULT_MAX_MESSAGES,
    LaunchConfig,
    LaunchReport,
    parse_messages_url,
    run_launch,
)
from lunar.rockets.progress import Progress, ProgressSnapshot
from lunar.rockets.replay import DEFAULT_REPLAY_BATCH, ReplayConfig, run_replay, write_capture
from lunar.rockets.sender import Target

PROG = "python3 -m lunar.rockets"
SERVER_WAIT_S = 5.0  # how long to wait for the server to accept a connection
SERVER_POLL_S = 0.1

EXIT_OK = 0
EXIT_FAILED = 1  # messages lost, verification failed or the server was not reachable
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130

DESCRIPTION = """\
Send rocket telemetry to a lunar server, as the closed `rockets` test program
does, and optionally check the server's state afterwards.

Each rocket sends RocketLaunched as message 1, then speed changes in steps of
500, mission changes and at most one RocketExploded, after which it sends
nothing more. Parallel senders deliver the messages out of order, and a
delivery that gets a non-2xx status or a connection error is redelivered
every 500 ms until the run ends. Redeliveries still waiting at the end are
dropped and counted as lost.
"""

LAUNCH_EPILOG = """\
durations: a number with a unit, as in Go: ns, us, ms, s, m, h (500ms, 1s,
1.5s, 250us, 1m30s); a plain 0 means no delay.

exit status: 0 when the run ended with no message lost (and --verify
passed), 1 when messages were lost, verification failed, or the server did
not accept connections within 5 s, 2 for invalid flags, 130 when
interrupted. The real rockets program exits 0 after losing messages.

example:
  python3 -m lunar.rockets launch http://localhost:8088/messages \\
      --message-delay=500ms --concurrency-level=1 --verify
"""


def build_parser() -> argparse.ArgumentParser:
    """Build the parser; ``--help`` without a command shows every launch flag too."""
    launch_help = _build_launch_parser(argparse.ArgumentParser(
        prog=f"{PROG} launch",
        epilog=LAUNCH_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )).format_help()

    parser = argparse.ArgumentParser(
        prog=PROG,
        description=DESCRIPTION,
        epilog="The launch command and its flags:\n\n" + launch_help,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.required = True
    _build_launch_parser(commands.add_parser(
        "launch",
        help="send rocket messages to a server's messages URL",
        description=DESCRIPTION,
        epilog=LAUNCH_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        prog=f"{PROG} launch",
    ))
    _build_generate_parser(commands.add_parser(
        "generate",
        help="write the messages of a launch to an NDJSON capture file instead of sending them",
        description="Write the messages that a launch with the same flags would send, one JSON "
                    "body per line, in send order. messageTime is the time of writing.",
        prog=f"{PROG} generate",
    ))
    _build_replay_parser(commands.add_parser(
        "replay",
        help="send the lines of an NDJSON capture file to a server in batches",
        description="Send every line of an NDJSON capture file, unchanged, as NDJSON batches "
                    "with parallel senders. A failed request, or a line the server refuses for "
                    "capacity, is sent again every 500 ms until the run ends; a line the server "
                    "reports as invalid is not. Exit status 1 when a line was not acknowledged.",
        prog=f"{PROG} replay",
    ))
    return parser


def _build_generate_parser(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    parser.add_argument("file", metavar="FILE", help="capture file to write, NDJSON; '-' writes to stdout")
    parser.add_argument("--max-messages", metavar="N", type=_non_negative_int, default=DEFAULT_MAX_MESSAGES,
                        help=f"number of distinct messages (default: {DEFAULT_MAX_MESSAGES})")
    parser.add_argument("--seed", metavar="N", type=_int, default=generator.DEFAULT_SEED,
                        help=f"random seed (default: {generator.DEFAULT_SEED})")
    parser.add_argument("--rockets", metavar="N", type=_positive_int, default=generator.DEFAULT_ROCKETS,
                        help=f"number of rockets (default: {generator.DEFAULT_ROCKETS})")
    parser.add_argument("--duplicates", metavar="P", type=_probability, default=0.0,
                        help="probability from 0 to 1 that a message is written a second time, "
                        "1 to 100 lines later (default: 0)")
    parser.add_argument("--shuffle-window", metavar="W", type=_non_negative_int, default=0,
                        help="shuffle the order within consecutive windows of W lines (default: 0)")
    return parser


def _build_replay_parser(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    parser.add_argument("file", metavar="FILE", help="NDJSON capture file, one message per line")
    parser.add_argument("url", metavar="URL", type=_messages_url,
                        help="messages URL of the server, for example http://localhost:8088/messages")
    parser.add_argument("--batch", metavar="N", type=_positive_int, default=DEFAULT_REPLAY_BATCH,
                        help=f"lines per request (default: {DEFAULT_REPLAY_BATCH})")
    parser.add_argument("--concurrency-level", metavar="N", type=_positive_int,
                        default=DEFAULT_CONCURRENCY_LEVEL,
                        help=f"number of parallel senders (default: {DEFAULT_CONCURRENCY_LEVEL})")
    return parser


def _build_launch_parser(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    parser.add_argument(
        "url",
        metavar="URL",
        type=_messages_url,
        help="messages URL of the server, for example http://localhost:8088/messages",
    )
    parser.add_argument(
        "--message-delay",
        metavar="DURATION",
        type=_duration,
        default=0.0,
        help="pause between handing two new messages to the senders, so the total rate is at most "
        "one message per DURATION; redeliveries are not paced (default: 0, no pause)",
    )
    parser.add_argument(
        "--concurrency-level",
        metavar="N",
        type=_positive_int,
        default=DEFAULT_CONCURRENCY_LEVEL,
        help="number of parallel senders, each with its own HTTP connection "
        f"(default: {DEFAULT_CONCURRENCY_LEVEL})",
    )
    parser.add_argument(
        "--max-messages",
        metavar="N",
        type=_non_negative_int,
        default=DEFAULT_MAX_MESSAGES,
        help="number of distinct messages over all rockets, extra redeliveries not counted; fewer "
        f"are sent if every rocket explodes first (default: {DEFAULT_MAX_MESSAGES})",
    )
    parser.add_argument(
        "--seed",
        metavar="N",
        type=_int,
        default=generator.DEFAULT_SEED,
        help="random seed; the same seed gives the same channels and messages, except "
        f"messageTime (default: {generator.DEFAULT_SEED})",
    )
    parser.add_argument(
        "--rockets",
        metavar="N",
        type=_positive_int,
        default=generator.DEFAULT_ROCKETS,
        help=f"number of rockets, one channel each (default: {generator.DEFAULT_ROCKETS})",
    )
    parser.add_argument(
        "--verify",
        action="store_true",
        help="after the run, GET /rockets next to the messages URL and compare every rocket with "
        "what the server acknowledged; exit 1 on a difference or on lost messages",
    )
    parser.add_argument(
        "--duplicates",
        metavar="P",
        type=_probability,
        default=0.0,
        help="probability from 0 to 1 that a message gets one extra redelivery, 1 to 100 "
        "deliveries later (default: 0)",
    )
    parser.add_argument(
        "--shuffle-window",
        metavar="W",
        type=_non_negative_int,
        default=0,
        help="shuffle the send order within consecutive windows of W deliveries; 0 or 1 keeps "
        "the order (default: 0)",
    )
    parser.add_argument(
        "--batch",
        metavar="N",
        type=_positive_int,
        default=1,
        help="messages per request: 1 posts each message alone, more post a JSON array and count "
        "only messages whose outcome is applied, buffered or duplicate as acknowledged (default: 1)",
    )
    parser.add_argument(
        "--connection",
        choices=("keep-alive", "close"),
        default="keep-alive",
        help="keep-alive reuses each sender's connection; close sends 'Connection: close' and "
        "opens a new connection per message (default: keep-alive)",
    )
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run the command line with ``argv`` (default: sys.argv[1:]) and return the exit status."""
    parser = build_parser()
    try:
        arguments = parser.parse_args(argv)
    except SystemExit as exit_request:
        # argparse exits on --help (status 0) and on invalid flags (status 2).
        return exit_request.code if isinstance(exit_request.code, int) else EXIT_USAGE

    logging.basicConfig(level=logging.WARNING, format="rockets: %(levelname)s: %(message)s")
    if arguments.command == "generate":
        return _generate(arguments)
    if arguments.command == "replay":
        return _replay(arguments)

    config = LaunchConfig(
        url=arguments.url,
        message_delay_s=arguments.message_delay,
        concurrency_level=arguments.concurrency_level,
        max_messages=arguments.max_messages,
        seed=arguments.seed,
        rockets=arguments.rockets,
        verify=arguments.verify,
        duplicates=arguments.duplicates,
        shuffle_window=arguments.shuffle_window,
        keep_alive=arguments.connection == "keep-alive",
        batch=arguments.batch,
    )
    try:
        config.validate()
    except ValueError as error:
        print(f"rockets: error: {error}", file=sys.stderr)
        return EXIT_USAGE

    status = _wait_or_explain(parse_messages_url(config.url))
    if status is not None:
        return status

    progress: List[Progress] = []

    def show_progress(snapshot: Callable[[], ProgressSnapshot]) -> None:
        display = Progress(sys.stderr, config.max_messages, snapshot, terminal=sys.stderr.isatty())
        display.start()
        progress.append(display)

    try:
        report = run_launch(config, on_start=show_progress)
    except KeyboardInterrupt:
        # run_launch handles Ctrl-C while sending, so this one came before
        # the senders started or, more likely, during verification.
        print("rockets: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    finally:
        for display in progress:
            display.stop()

    for line in format_report(report):
        print(line)
    if report.interrupted:
        return EXIT_INTERRUPTED
    return EXIT_OK if report.passed else EXIT_FAILED


def _wait_or_explain(target: Target) -> Optional[int]:
    """Wait for the server; return None when it accepts connections, else the exit status."""
    try:
        waiting_error = wait_for_server(target, SERVER_WAIT_S)
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    if waiting_error is None:
        return None
    print(
        f"rockets: error: {target.host}:{target.port} did not accept a connection within "
        f"{SERVER_WAIT_S:g} s ({waiting_error}); start the server first or check the URL",
        file=sys.stderr,
    )
    return EXIT_FAILED


def _generate(arguments: argparse.Namespace) -> int:
    options = dict(seed=arguments.seed, rockets=arguments.rockets, max_messages=arguments.max_messages,
                   duplicates=arguments.duplicates, shuffle_window=arguments.shuffle_window)
    try:
        if arguments.file == "-":
            lines = write_capture(sys.stdout.buffer, **options)
            sys.stdout.flush()
        else:
            with open(arguments.file, "wb") as stream:
                lines = write_capture(stream, **options)
    except OSError as error:
        print(f"rockets: error: cannot write {arguments.file}: {error}", file=sys.stderr)
        return EXIT_FAILED
    if arguments.file != "-":
        print(f"wrote {lines:,} messages to {arguments.file}")
    return EXIT_OK


def _replay(arguments: argparse.Namespace) -> int:
    config = ReplayConfig(arguments.file, arguments.url, batch=arguments.batch,
                          concurrency_level=arguments.concurrency_level)
    status = _wait_or_explain(parse_messages_url(config.url))
    if status is not None:
        return status
    try:
        report = run_replay(config)
    except OSError as error:
        print(f"rockets: error: cannot read {config.path}: {error}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        print("rockets: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED

    print(f"messages      {report.messages:,} read, {report.acknowledged:,} acknowledged, "
          f"{report.invalid:,} invalid")
    print(f"requests      {report.requests:,}")
    print(f"duration      {report.duration_s:.2f} s")
    print(f"rate          {report.messages_per_second:,.0f} messages/s")
    print(f"retries       {report.retries:,}")
    print(f"lost          {report.lost:,}")
    if report.interrupted:
        return EXIT_INTERRUPTED
    return EXIT_OK if report.passed else EXIT_FAILED


def wait_for_server(target: Target, timeout_s: float) -> Optional[str]:
    """Wait until ``target`` accepts a TCP connection; return None, or the last error."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            with socket.create_connection((target.host, target.port), timeout=SERVER_POLL_S * 10):
                return None
        except OSError as error:
            if time.monotonic() >= deadline:
                return str(error) or type(error).__name__
        time.sleep(SERVER_POLL_S)


def format_report(report: LaunchReport) -> List[str]:
    """Format the run summary, then the verification problems if any."""
    lost = f"{report.lost:,}"
    if report.dropped_redeliveries:
        lost += f" ({report.dropped_redeliveries:,} redeliveries were still waiting when the run ended)"
    if report.verification is not None:
        verification = report.verification.summary()
    elif report.interrupted:
        verification = "skipped, the run was interrupted"
    else:
        verification = "not requested (use --verify)"

    lines = [
        f"messages      {report.generated:,} generated, {report.acknowledged:,} acknowledged "
        f"({report.rockets} rockets, {report.exploded} exploded)",
        f"duration      {report.duration_s:.2f} s",
        f"rate          {report.messages_per_second:,.0f} messages/s",
        f"retries       {report.retries:,}",
        f"duplicates    {report.duplicates_sent:,} sent",
        f"lost          {lost}",
        f"verification  {verification}",
    ]
    if report.interrupted:
        lines.append("the run was interrupted before all messages were sent")
    if report.verification is not None and not report.verification.passed:
        lines.append("")
        lines.extend(report.verification.report_lines())
    return lines


def _duration(text: str) -> float:
    try:
        return parse_duration(text)
    except InvalidDuration as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _messages_url(text: str) -> str:
    try:
        parse_messages_url(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None
    return text


def _int(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid integer {text!r}") from None


def _positive_int(text: str) -> int:
    value = _int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"invalid value {text!r}: it must be at least 1")
    return value


def _non_negative_int(text: str) -> int:
    value = _int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"invalid value {text!r}: it must not be negative")
    return value


def _probability(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid probability {text!r}: use a number from 0 to 1") from None
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"invalid probability {text!r}: it must be from 0 to 1")
    return value
