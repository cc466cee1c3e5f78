"""One launch run: generate the traffic, deliver it in parallel, optionally verify.

``run_launch`` is the entry point for the CLI, tests and benchmarks. It
prints nothing; the caller shows progress and the report.
"""

import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Callable, List, Optional, Union
from urllib.parse import urlsplit

from lunar.rockets import generator
from lunar.rockets.batching import ARRAY, NDJSON, BatchSender
from lunar.rockets.ledger import Ledger
from lunar.rockets.ordering import Delivery, add_duplicates, shuffle_windows
from lunar.rockets.progress import ProgressSnapshot
from lunar.rockets.sender import REQUEST_TIMEOUT_S, Dispatcher, FailureLog, Sender, Target
from lunar.rockets.transport import TRANSPORT_SOCKET, TRANSPORTS
from lunar.rockets.verify import VerificationResult, rockets_target, verify_server
from lunar.rockets.wire import MessageClock

logger = logging.getLogger(__name__)

MAX_BATCH = 10_000  # messages per request that lunar accepts
MAX_ARRAY_BATCH = 1_000  # larger batches are sent as NDJSON, see run_launch

DEFAULT_CONCURRENCY_LEVEL = 3
DEFAULT_MAX_MESSAGES = 100_000
DEFAULT_HTTP_PORT = 80
EXAMPLE_URL = "http://localhost:8088/messages"
JOIN_POLL_S = 0.2


@dataclass
class LaunchConfig:
    """Settings of one launch; the CLI flags map one to one onto these fields."""

    url: str
    message_delay_s: float = 0.0
    concurrency_level: int = DEFAULT_CONCURRENCY_LEVEL
    max_messages: int = DEFAULT_MAX_MESSAGES
    seed: int = generator.DEFAULT_SEED
    rockets: int = generator.DEFAULT_ROCKETS
    verify: bool = False
    duplicates: float = 0.0
    shuffle_window: int = 0
    keep_alive: bool = True
    # Connection class of the senders; "http.client" is the slower reference.
    transport: str = TRANSPORT_SOCKET
    # Messages per request: 1 posts each message alone, more post JSON arrays.
    batch: int = 1

    def validate(self) -> None:
        """Raise ValueError naming the first invalid setting."""
        parse_messages_url(self.url)
        if self.message_delay_s < 0:
            raise ValueError(f"message delay must not be negative, got {self.message_delay_s} s")
        if self.concurrency_level < 1:
            raise ValueError(f"concurrency level must be at least 1, got {self.concurrency_level}")
        if self.max_messages < 0:
            raise ValueError(f"max messages must not be negative, got {self.max_messages}")
        if self.rockets < 1:
            raise ValueError(f"rockets must be at least 1, got {self.rockets}")
        if not 0.0 <= self.duplicates <= 1.0:
            raise ValueError(f"duplicates must be a probability between 0 and 1, got {self.duplicates}")
        if self.shuffle_window < 0:
            raise ValueError(f"shuffle window must not be negative, got {self.shuffle_window}")
        if self.batch < 1:
            raise ValueError(f"batch must be at least 1 message, got {self.batch}")
        if self.batch > MAX_BATCH:
            raise ValueError(f"batch must be at most {MAX_BATCH} messages, the server's "
                             f"limit per request, got {self.batch}")
        if self.batch > 1 and (not self.keep_alive or self.transport != TRANSPORT_SOCKET):
            raise ValueError("batches are sent over keep-alive socket connections only; "
                             "drop --connection=close or --batch")
        if self.transport not in TRANSPORTS:
            raise ValueError(f"unknown transport {self.transport!r}, expected one of {', '.join(TRANSPORTS)}")


@dataclass
class LaunchReport:
    """Counts and timing of a finished launch."""

    generated: int  # distinct messages generated
    acknowledged: int  # distinct messages with at least one 2xx response
    deliveries: int  # requests with a 2xx response, duplicates and redeliveries included
    retries: int  # redelivery attempts after a failure
    duplicates_sent: int  # extra redeliveries from --duplicates
    lost: int  # distinct messages never acknowledged
    dropped_redeliveries: int  # redeliveries still waiting when the run ended
    duration_s: float  # from the first delivery to the end of the last, verification excluded
    rockets: int
    exploded: int  # rockets whose explosion was generated
    interrupted: bool = False
    verification: Optional[VerificationResult] = field(default=None)

    @property
    def messages_per_second(self) -> float:
        """Acknowledged messages per second of the run."""
        return self.acknowledged / self.duration_s if self.duration_s > 0 else 0.0

    @property
    def passed(self) -> bool:
        """Whether the run was not interrupted, lost nothing, and any verification passed."""
        if self.interrupted or self.lost:
            return False
        return self.verification is None or self.verification.passed


def parse_messages_url(url: str) -> Target:
    """Split an ``http://host[:port]/path`` URL; raise ValueError if it is not one."""
    parts = urlsplit(url)
    if parts.scheme != "http":
        raise ValueError(f"invalid URL {url!r}: only http:// URLs are supported, for example {EXAMPLE_URL}")
    if not parts.hostname:
        raise ValueError(f"invalid URL {url!r}: the host is missing, for example {EXAMPLE_URL}")
    try:
        port = parts.port or DEFAULT_HTTP_PORT
    except ValueError as error:
        raise ValueError(f"invalid URL {url!r}: {error}") from error
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    return Target(parts.hostname, port, path)


def run_launch(
    config: LaunchConfig,
    on_start: Optional[Callable[[Callable[[], ProgressSnapshot]], None]] = None,
) -> LaunchReport:
    """Send the traffic of ``config`` to the server and return the report.

    ``on_start`` is called once the senders run, with a function that
    returns the current counters, for a progress display. Ctrl-C ends the
    run early and marks the report as interrupted.
    """
    config.validate()
    target = parse_messages_url(config.url)

    scripts = generator.rocket_scripts(config.seed, config.rockets)
    ledger = Ledger(script.channel for script in scripts)
    messages = ledger.track(generator.generate_messages(config.seed, config.rockets, config.max_messages, scripts))
    deliveries = add_duplicates(messages, config.duplicates, config.seed)
    deliveries = shuffle_windows(deliveries, config.shuffle_window, config.seed)
    dispatcher = Dispatcher(deliveries, config.message_delay_s)

    failure_log = FailureLog()
    senders: List[Union[Sender, BatchSender]]
    if config.batch > 1:
        clocks = threading.local()

        def encode(delivery: Delivery) -> bytes:
            clock = getattr(clocks, "clock", None)
            if clock is None:
                clock = clocks.clock = MessageClock()
            message = delivery.message
            message_time = clock.now()
            if message.number == 1:
                message.launch_times.append(message_time.decode("ascii"))
            return message.head + message_time + message.tail

        # A JSON array body is limited to the server's 1 MiB single-body limit,
        # which about 4,000 messages fill, so larger batches go as NDJSON.
        body_format = ARRAY if config.batch <= MAX_ARRAY_BATCH else NDJSON
        senders = [
            BatchSender(
                f"rockets-sender-{number}", dispatcher, target.host, target.port, target.path,
                config.batch, encode, lambda delivery: ledger.acknowledge(delivery.message),
                body_format=body_format, failure_log=failure_log,
            )
            for number in range(1, config.concurrency_level + 1)
        ]
    else:
        senders = [
            Sender(
                f"rockets-sender-{number}",
                dispatcher,
                ledger,
                target,
                keep_alive=config.keep_alive,
                failure_log=failure_log,
                transport=config.transport,
            )
            for number in range(1, config.concurrency_level + 1)
        ]

    def snapshot() -> ProgressSnapshot:
        return ProgressSnapshot(
            acknowledged=ledger.acknowledged,
            retries=sum(sender.stats.retries for sender in senders),
            duplicates_sent=sum(sender.stats.duplicates_sent for sender in senders),
        )

    logger.info(
        "launching %d rockets, up to %d messages to %r with %d senders",
        config.rockets, config.max_messages, target, config.concurrency_level,
    )
    started = time.monotonic()
    for sender in senders:
        sender.start()
    if on_start is not None:
        on_start(snapshot)
    interrupted = wait_for_senders(senders, dispatcher)
    duration_s = time.monotonic() - started

    report = LaunchReport(
        generated=ledger.generated,
        acknowledged=ledger.acknowledged,
        deliveries=sum(sender.stats.delivered for sender in senders),
        retries=sum(sender.stats.retries for sender in senders),
        duplicates_sent=sum(sender.stats.duplicates_sent for sender in senders),
        lost=ledger.lost,
        dropped_redeliveries=len(dispatcher.dropped),
        duration_s=duration_s,
        rockets=config.rockets,
        exploded=sum(1 for script in scripts if script.exploded),
        interrupted=interrupted,
    )
    if report.dropped_redeliveries:
        logger.warning(
            "dropped %d redeliveries that were still waiting when the run ended", report.dropped_redeliveries,
        )
    if config.verify and not interrupted:
        report.verification = verify_server(ledger, rockets_target(target), config.seed)
    return report


def wait_for_senders(senders: List[Union[Sender, BatchSender]], dispatcher: Dispatcher) -> bool:
    """Wait until every sender has finished and return whether Ctrl-C ended the run early."""
    try:
        for sender in senders:
            # Short waits keep the main thread responsive to Ctrl-C.
            while not sender.finished.wait(JOIN_POLL_S):
                pass
        return False
    except KeyboardInterrupt:
        logger.warning("interrupted, waiting up to %.0f s for requests in flight", REQUEST_TIMEOUT_S)
        dispatcher.stop()
        deadline = time.monotonic() + REQUEST_TIMEOUT_S
        for sender in senders:
            sender.finished.wait(max(0.0, deadline - time.monotonic()))
        return True
