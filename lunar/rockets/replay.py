"""Capture files: writing generated traffic as NDJSON, and replaying a capture in batches.

``write_capture`` writes the bodies that a launch with the same seed and
ordering flags sends, one per line, with messageTime set when the line is
written. ``run_replay`` posts a capture's lines unchanged, as NDJSON
batches, with parallel senders and the launch's redelivery rules (see
``lunar.rockets.batching``). Neither compares the server's state with the
capture.
"""

import json
import logging
import threading
import time
from dataclasses import dataclass
from typing import BinaryIO, Callable, List, Optional

from lunar.rockets import generator
from lunar.rockets.batching import NDJSON, BatchSender
from lunar.rockets.launch import DEFAULT_CONCURRENCY_LEVEL, parse_messages_url, wait_for_senders
from lunar.rockets.ordering import Delivery, add_duplicates, shuffle_windows
from lunar.rockets.progress import ProgressSnapshot
from lunar.rockets.sender import Dispatcher, FailureLog
from lunar.rockets.wire import MessageClock

logger = logging.getLogger(__name__)

DEFAULT_REPLAY_BATCH = 1000  # lines per request
UNKNOWN_CHANNEL = "(unreadable line)"


class CapturedMessage:
    """One line of a capture file, with the channel and number read from it for logs."""

    __slots__ = ("body", "channel", "number", "line_number", "acknowledged")

    def __init__(self, body: bytes, line_number: int) -> None:
        self.body = body
        self.line_number = line_number
        self.channel = UNKNOWN_CHANNEL
        self.number = 0
        self.acknowledged = False
        try:
            metadata = json.loads(body)["metadata"]
            self.channel = str(metadata["channel"])
            self.number = int(metadata["messageNumber"])
        except (ValueError, TypeError, KeyError):
            pass  # sent as it is: the server reports it as invalid


@dataclass
class ReplayConfig:
    """Settings of one replay; the CLI flags map one to one onto these fields."""

    path: str
    url: str
    batch: int = DEFAULT_REPLAY_BATCH
    concurrency_level: int = DEFAULT_CONCURRENCY_LEVEL

    def validate(self) -> None:
        """Raise ValueError naming the first invalid setting."""
        parse_messages_url(self.url)
        if self.batch < 1:
            raise ValueError(f"batch must be at least 1 line, got {self.batch}")
        if self.concurrency_level < 1:
            raise ValueError(f"concurrency level must be at least 1, got {self.concurrency_level}")


@dataclass
class ReplayReport:
    """Counts and timing of a finished replay."""

    messages: int  # non-blank lines of the capture
    acknowledged: int  # lines with an applied, buffered or duplicate outcome
    invalid: int  # lines the server reported invalid; they are not sent again
    retries: int  # redelivery attempts after a failure or a refusal
    requests: int  # batch requests, failed ones included
    lost: int  # lines neither acknowledged nor invalid when the run ended
    duration_s: float
    interrupted: bool = False

    @property
    def messages_per_second(self) -> float:
        """Acknowledged lines per second of the run."""
        return self.acknowledged / self.duration_s if self.duration_s > 0 else 0.0

    @property
    def passed(self) -> bool:
        """Whether every line was acknowledged and the run was not interrupted."""
        return not self.interrupted and self.acknowledged == self.messages


def write_capture(
    stream: BinaryIO,
    seed: int = generator.DEFAULT_SEED,
    rockets: int = generator.DEFAULT_ROCKETS,
    max_messages: int = 100_000,
    duplicates: float = 0.0,
    shuffle_window: int = 0,
) -> int:
    """Write generated messages to ``stream`` as NDJSON, in send order; return the line count."""
    messages = generator.generate_messages(seed, rockets, max_messages)
    deliveries = shuffle_windows(add_duplicates(messages, duplicates, seed), shuffle_window, seed)
    clock = MessageClock()
    lines = 0
    for delivery in deliveries:
        message = delivery.message
        stream.write(message.head + clock.now() + message.tail + b"\n")
        lines += 1
    return lines


def read_capture(path: str) -> List[CapturedMessage]:
    """Read the non-blank lines of an NDJSON capture file."""
    captured = []
    with open(path, "rb") as stream:
        for line_number, line in enumerate(stream, start=1):
            body = line.strip()
            if body:
                captured.append(CapturedMessage(body, line_number))
    return captured


def run_replay(
    config: ReplayConfig,
    on_start: Optional[Callable[[Callable[[], ProgressSnapshot]], None]] = None,
) -> ReplayReport:
    """Post every line of the capture to the server and return the report.

    ``on_start`` works as for ``run_launch``. Raises OSError when the capture
    file cannot be read.
    """
    config.validate()
    target = parse_messages_url(config.url)
    captured = read_capture(config.path)
    dispatcher = Dispatcher(Delivery(message) for message in captured)
    failure_log = FailureLog()
    lock = threading.Lock()
    acknowledged = [0]

    def acknowledge(delivery: Delivery) -> None:
        with lock:
            if not delivery.message.acknowledged:
                delivery.message.acknowledged = True
                acknowledged[0] += 1

    senders = [
        BatchSender(
            f"rockets-replay-{number}", dispatcher, target.host, target.port, target.path,
            config.batch, lambda delivery: delivery.message.body, acknowledge,
            body_format=NDJSON, failure_log=failure_log,
        )
        for number in range(1, config.concurrency_level + 1)
    ]

    def snapshot() -> ProgressSnapshot:
        return ProgressSnapshot(
            acknowledged=acknowledged[0],
            retries=sum(sender.stats.retries for sender in senders),
            duplicates_sent=0,
        )

    logger.info("replaying %d lines of %s to %r in batches of %d",
                len(captured), config.path, target, config.batch)
    started = time.monotonic()
    for sender in senders:
        sender.start()
    if on_start is not None:
        on_start(snapshot)
    interrupted = wait_for_senders(senders, dispatcher)
    duration_s = time.monotonic() - started

    invalid = sum(sender.stats.invalid for sender in senders)
    return ReplayReport(
        messages=len(captured),
        acknowledged=acknowledged[0],
        invalid=invalid,
        retries=sum(sender.stats.retries for sender in senders),
        requests=sum(sender.stats.requests for sender in senders),
        lost=len(captured) - acknowledged[0] - invalid,
        duration_s=duration_s,
        interrupted=interrupted,
    )
