"""Delivery of messages in batches: many messages per POST, one outcome each.

A ``BatchSender`` takes up to ``batch_size`` due deliveries from the shared
``Dispatcher``, posts them as one JSON array or NDJSON body, and reads the
server's JSON array of per-message outcomes. A message counts as
acknowledged when its outcome is applied, buffered or duplicate. A refused
message, and every message of a request that failed as a whole (a non-2xx
status or a connection error), is redelivered like a single failed
delivery. An invalid message is not redelivered, because sending the same
bytes again cannot make it valid. This module does not generate messages.
"""

import json
import logging
import threading
from typing import Callable, List, Optional, Sequence

from lunar.rockets.ordering import Delivery
from lunar.rockets.sender import (
    REQUEST_TIMEOUT_S,
    Dispatcher,
    FailureLog,
    STALE_CONNECTION_ERRORS,
    SEND_ERRORS,
    describe_send_error,
)
from lunar.rockets.transport import JSON_CONTENT_TYPE, NDJSON_CONTENT_TYPE, SocketPostConnection

logger = logging.getLogger(__name__)

ARRAY = "array"
NDJSON = "ndjson"
FORMATS = (ARRAY, NDJSON)
ACKNOWLEDGED_OUTCOMES = frozenset({"applied", "buffered", "duplicate"})
INVALID_OUTCOME = "invalid"
MAX_LOGGED_BODY_BYTES = 200


class BatchStats:
    """Counters of one batch sender thread; only that thread writes them."""

    __slots__ = ("delivered", "retries", "duplicates_sent", "reconnects", "requests", "invalid", "refused")

    def __init__(self) -> None:
        self.delivered = 0  # messages with an acknowledging outcome, copies included
        self.retries = 0
        self.duplicates_sent = 0
        self.reconnects = 0
        self.requests = 0  # batch requests sent, failed ones included
        self.invalid = 0  # messages the server reported invalid; not redelivered
        self.refused = 0  # messages the server refused for capacity; redelivered


class BatchSender(threading.Thread):
    """A thread that posts batches of deliveries over its own keep-alive connection.

    ``encode`` returns the body bytes of one message, and ``acknowledge`` is
    called once per message with an acknowledging outcome.
    """

    def __init__(
        self,
        name: str,
        dispatcher: Dispatcher,
        host: str,
        port: int,
        path: str,
        batch_size: int,
        encode: Callable[[Delivery], bytes],
        acknowledge: Callable[[Delivery], None],
        body_format: str = ARRAY,
        failure_log: Optional[FailureLog] = None,
        timeout_s: float = REQUEST_TIMEOUT_S,
    ) -> None:
        super().__init__(name=name, daemon=True)
        if batch_size < 1:
            raise ValueError(f"batch size must be at least 1, got {batch_size}")
        if body_format not in FORMATS:
            raise ValueError(f"unknown batch format {body_format!r}, expected one of {', '.join(FORMATS)}")
        self.stats = BatchStats()
        self.finished = threading.Event()  # set when run() returns, see Sender.finished
        self._dispatcher = dispatcher
        self._batch_size = batch_size
        self._encode = encode
        self._acknowledge = acknowledge
        self._body_format = body_format
        self._failure_log = failure_log if failure_log is not None else FailureLog()
        self._timeout_s = timeout_s
        content_type = JSON_CONTENT_TYPE if body_format == ARRAY else NDJSON_CONTENT_TYPE
        self._connection = SocketPostConnection(host, port, path, timeout_s, content_type=content_type)

    def run(self) -> None:
        try:
            self._send_until_end()
        finally:
            self._connection.close()
            self.finished.set()

    def _send_until_end(self) -> None:
        while True:
            batch = self._dispatcher.take_batch(self._batch_size)
            if not batch:
                return
            results: List[Optional[bool]] = [False] * len(batch)
            try:
                for delivery in batch:
                    if delivery.attempts > 0:
                        self.stats.retries += 1
                    elif delivery.duplicate:
                        self.stats.duplicates_sent += 1
                    delivery.attempts += 1
                results = self._deliver(batch)
            except Exception:
                # An unexpected error must not end the thread with deliveries
                # in flight, because the run would then never end.
                logger.exception("sender %s failed on a batch of %d", self.name, len(batch))
                self._connection.close()
            finally:
                for delivery, result in zip(batch, results):
                    if result:
                        self.stats.delivered += 1
                        self._acknowledge(delivery)
                    # None marks an invalid message, finished without an acknowledgment.
                    self._dispatcher.done(delivery, result is not False)

    def _deliver(self, batch: Sequence[Delivery]) -> List[Optional[bool]]:
        """Post one batch; return per delivery True (acknowledged), False (redeliver) or None (invalid)."""
        bodies = [self._encode(delivery) for delivery in batch]
        if self._body_format == ARRAY:
            body = b"[" + b",".join(bodies) + b"]"
        else:
            body = b"\n".join(bodies) + b"\n"
        failed: List[Optional[bool]] = [False] * len(batch)
        reused = self._connection.is_open
        self.stats.requests += 1
        try:
            status, answer = self._connection.post(body)
        except SEND_ERRORS as error:
            if not (reused and isinstance(error, STALE_CONNECTION_ERRORS)):
                self._failure_log.failed(batch[0], describe_send_error(error, self._timeout_s))
                return failed
            # The server closed the idle kept-alive connection, so send once more now.
            self.stats.reconnects += 1
            try:
                status, answer = self._connection.post(body)
            except SEND_ERRORS as retry_error:
                self._failure_log.failed(batch[0], describe_send_error(retry_error, self._timeout_s))
                return failed

        if status == 202 and len(batch) == 1:
            return [True]  # a one-line NDJSON body is a single message
        if status != 200:
            excerpt = answer[:MAX_LOGGED_BODY_BYTES].decode("utf-8", "replace")
            self._failure_log.failed(batch[0], f"HTTP {status} {excerpt!r}")
            return failed
        outcomes = _parse_outcomes(answer, len(batch))
        if outcomes is None:
            self._failure_log.failed(batch[0], f"HTTP 200 without {len(batch)} outcomes: {answer[:80]!r}")
            return failed
        results: List[Optional[bool]] = []
        for delivery, outcome in zip(batch, outcomes):
            if outcome in ACKNOWLEDGED_OUTCOMES:
                results.append(True)
            elif outcome == INVALID_OUTCOME:
                self.stats.invalid += 1
                results.append(None)
            else:
                self.stats.refused += 1
                results.append(False)
        return results


def _parse_outcomes(answer: bytes, expected: int) -> Optional[List[str]]:
    """Return the outcome names of a batch response, or None if it is not one per message."""
    try:
        document = json.loads(answer)
    except ValueError:
        return None
    if not isinstance(document, list) or len(document) != expected:
        return None
    outcomes = []
    for entry in document:
        if not isinstance(entry, dict) or not isinstance(entry.get("outcome"), str):
            return None
        outcomes.append(entry["outcome"])
    return outcomes
