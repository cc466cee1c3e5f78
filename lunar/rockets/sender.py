"""HTTP delivery of rocket messages by parallel sender threads, with redelivery.

All senders take work from one Dispatcher, so out-of-order arrival comes only
from their parallelism. A failed delivery (a non-2xx status or a connection
error) is redelivered after REDELIVERY_DELAY_S, again and again, until the
run ends. The run ends when generation has finished and no delivery is in
flight. Redeliveries still waiting then are dropped, as the real ``rockets``
program drops them, so ``Ledger.lost`` counts their messages. This module
does not generate messages and does not verify the server's state.
"""

import heapq
import http.client
import itertools
import logging
import socket
import threading
import time
from typing import Iterator, List, Optional, Tuple

from lunar.rockets.ledger import Ledger
from lunar.rockets.ordering import Delivery
from lunar.rockets.transport import (
    TRANSPORT_HTTP_CLIENT,
    TRANSPORT_SOCKET,
    TRANSPORTS,
    ConnectionClosed,
    HttpClientPostConnection,
    InvalidResponse,
    SocketPostConnection,
)
from lunar.rockets.wire import MessageClock

logger = logging.getLogger(__name__)

REDELIVERY_DELAY_S = 0.5
REQUEST_TIMEOUT_S = 10.0
# Upper bound for one Condition wait, so a missed wake-up costs at most this.
MAX_WAIT_S = 1.0
# At most one log line per this many seconds about failed deliveries.
FAILURE_LOG_INTERVAL_S = 5.0
MAX_LOGGED_BODY_BYTES = 200


class Target:
    """Host, port and path that messages are posted to."""

    __slots__ = ("host", "port", "path")

    def __init__(self, host: str, port: int, path: str) -> None:
        self.host = host
        self.port = port
        self.path = path

    def __repr__(self) -> str:
        return f"http://{self.host}:{self.port}{self.path}"


class SenderStats:
    """Counters of one sender thread; only that thread writes them."""

    __slots__ = ("delivered", "retries", "duplicates_sent", "reconnects")

    def __init__(self) -> None:
        self.delivered = 0
        self.retries = 0
        self.duplicates_sent = 0
        self.reconnects = 0


class FailureLog:
    """Rate-limited warnings about failed deliveries, shared by all senders."""

    def __init__(self, interval_s: float = FAILURE_LOG_INTERVAL_S) -> None:
        self._lock = threading.Lock()
        self._interval_s = interval_s
        self._last_logged = -interval_s
        self._suppressed = 0

    def failed(self, delivery: Delivery, reason: str) -> None:
        """Log a failed delivery unless another was logged in the last interval."""
        with self._lock:
            now = time.monotonic()
            if now - self._last_logged < self._interval_s:
                self._suppressed += 1
                return
            suppressed, self._suppressed = self._suppressed, 0
            self._last_logged = now
        message = delivery.message
        logger.warning(
            "delivery of message %d on channel %s failed (%s), redelivering in %.1f s%s",
            message.number,
            message.channel,
            reason,
            REDELIVERY_DELAY_S,
            f"; {suppressed} more failures since the last warning" if suppressed else "",
        )


class Dispatcher:
    """Hands new deliveries and due redeliveries to sender threads.

    New deliveries leave at most one per ``message_delay_s``. Due
    redeliveries go first and are not paced. ``take`` returns None once the
    run has ended, and ``dropped`` then lists the redeliveries left waiting.

    NOTE: the delay paces all senders together. Whether the real program
    does that or paces each sender on its own was not measured.
    """

    def __init__(
        self,
        deliveries: Iterator[Delivery],
        message_delay_s: float = 0.0,
        redelivery_delay_s: float = REDELIVERY_DELAY_S,
    ) -> None:
        self._deliveries = deliveries
        self._message_delay_s = message_delay_s
        self._redelivery_delay_s = redelivery_delay_s
        self._condition = threading.Condition()
        self._waiting: List[Tuple[float, int, Delivery]] = []
        self._sequence = itertools.count()
        self._next_due = 0.0
        self._exhausted = False
        self._in_flight = 0
        self._ended = False
        self.dropped: List[Delivery] = []

    def take(self) -> Optional[Delivery]:
        """Block until a delivery is due and return it, or return None when the run has ended."""
        with self._condition:
            while True:
                if self._ended:
                    return None
                now = time.monotonic()
                if self._waiting and self._waiting[0][0] <= now:
                    self._in_flight += 1
                    return heapq.heappop(self._waiting)[2]

                wait_s: Optional[float] = None
                if not self._exhausted:
                    if now >= self._next_due:
                        delivery = next(self._deliveries, None)
                        if delivery is None:
                            self._exhausted = True
                            continue
                        self._in_flight += 1
                        if self._message_delay_s > 0:
                            self._next_due = now + self._message_delay_s
                        return delivery
                    wait_s = self._next_due - now
                elif self._in_flight == 0:
                    self._end()
                    return None

                if self._waiting:
                    until_redelivery = self._waiting[0][0] - now
                    wait_s = until_redelivery if wait_s is None else min(wait_s, until_redelivery)
                self._condition.wait(MAX_WAIT_S if wait_s is None else min(wait_s, MAX_WAIT_S))

    def take_batch(self, limit: int) -> List[Delivery]:
        """Block like ``take``, then add up to ``limit - 1`` more deliveries that are due now.

        Returns an empty list once the run has ended. With a message delay,
        new deliveries keep their pace, so a batch then contains one new
        delivery at most.
        """
        first = self.take()
        if first is None:
            return []
        batch = [first]
        with self._condition:
            now = time.monotonic()
            while len(batch) < limit:
                if self._waiting and self._waiting[0][0] <= now:
                    batch.append(heapq.heappop(self._waiting)[2])
                elif not self._exhausted and self._message_delay_s == 0:
                    delivery = next(self._deliveries, None)
                    if delivery is None:
                        self._exhausted = True
                        break
                    batch.append(delivery)
                else:
                    break
            self._in_flight += len(batch) - 1
        return batch

    def done(self, delivery: Delivery, delivered: bool) -> None:
        """Finish a delivery that ``take`` returned; schedule a redelivery unless it was delivered."""
        with self._condition:
            self._in_flight -= 1
            if not delivered:
                due = time.monotonic() + self._redelivery_delay_s
                heapq.heappush(self._waiting, (due, next(self._sequence), delivery))
                self._condition.notify_all()
            elif self._exhausted and self._in_flight == 0:
                self._condition.notify_all()

    def stop(self) -> None:
        """End the run now, for example on Ctrl-C; waiting redeliveries are dropped."""
        with self._condition:
            self._exhausted = True
            self._end()

    @property
    def ended(self) -> bool:
        """Whether ``take`` returns None from now on."""
        with self._condition:
            return self._ended

    def _end(self) -> None:
        self._ended = True
        self.dropped = [entry[2] for entry in self._waiting]
        self._waiting = []
        self._condition.notify_all()


class Sender(threading.Thread):
    """A thread that posts deliveries over its own HTTP/1.1 connection.

    With ``keep_alive`` the connection is reused and reopened after an error.
    Without it every request carries ``Connection: close`` and gets a new
    connection. ``transport`` picks the connection class, see
    ``lunar.rockets.transport``.
    """

    def __init__(
        self,
        name: str,
        dispatcher: Dispatcher,
        ledger: Ledger,
        target: Target,
        keep_alive: bool = True,
        failure_log: Optional[FailureLog] = None,
        timeout_s: float = REQUEST_TIMEOUT_S,
        transport: str = TRANSPORT_SOCKET,
    ) -> None:
        super().__init__(name=name, daemon=True)
        self.stats = SenderStats()
        # Set when run() returns. Wait on this instead of join(), because a
        # Ctrl-C during join() can mark a running thread as stopped on some
        # CPython versions (seen with 3.11.7).
        self.finished = threading.Event()
        self._dispatcher = dispatcher
        self._ledger = ledger
        self._failure_log = failure_log if failure_log is not None else FailureLog()
        self._timeout_s = timeout_s
        self._clock = MessageClock()
        if transport == TRANSPORT_SOCKET:
            connection_class = SocketPostConnection
        elif transport == TRANSPORT_HTTP_CLIENT:
            connection_class = HttpClientPostConnection
        else:
            raise ValueError(f"unknown transport {transport!r}, expected one of {', '.join(TRANSPORTS)}")
        self._connection = connection_class(target.host, target.port, target.path, timeout_s, keep_alive)

    def run(self) -> None:
        try:
            self._send_until_end()
        finally:
            self._connection.close()
            self.finished.set()

    def _send_until_end(self) -> None:
        dispatcher = self._dispatcher
        stats = self.stats
        while True:
            delivery = dispatcher.take()
            if delivery is None:
                return
            delivered = False
            try:
                if delivery.attempts > 0:
                    stats.retries += 1
                elif delivery.duplicate:
                    stats.duplicates_sent += 1
                delivery.attempts += 1
                delivered = self._deliver(delivery)
                if delivered:
                    stats.delivered += 1
                    self._ledger.acknowledge(delivery.message)
            except Exception:
                # An unexpected error must not end the thread with a delivery
                # in flight, because the run would then never end.
                logger.exception("sender %s failed on %r", self.name, delivery)
                self._connection.close()
            finally:
                dispatcher.done(delivery, delivered)

    def _deliver(self, delivery: Delivery) -> bool:
        message = delivery.message
        reused = self._connection.is_open
        message_time = self._clock.now()
        if message.number == 1:
            message.launch_times.append(message_time.decode("ascii"))
        try:
            status, answer = self._connection.post(message.head + message_time + message.tail)
        except SEND_ERRORS as error:
            if not (reused and isinstance(error, STALE_CONNECTION_ERRORS)):
                self._failure_log.failed(delivery, self._describe_error(error))
                return False
            # The server closed the kept-alive connection while it was idle,
            # so reconnect and send once more right away instead of waiting
            # for a redelivery.
            self.stats.reconnects += 1
            try:
                status, answer = self._connection.post(message.head + message_time + message.tail)
            except SEND_ERRORS as retry_error:
                self._failure_log.failed(delivery, self._describe_error(retry_error))
                return False

        if 200 <= status < 300:
            return True
        excerpt = answer[:MAX_LOGGED_BODY_BYTES].decode("utf-8", "replace")
        self._failure_log.failed(delivery, f"HTTP {status} {excerpt!r}")
        return False

    def _describe_error(self, error: Exception) -> str:
        return describe_send_error(error, self._timeout_s)


def describe_send_error(error: Exception, timeout_s: float) -> str:
    """Return a short description of a failed request for the failure log."""
    if isinstance(error, socket.timeout):
        return f"timed out after {timeout_s:g} s"
    text = str(error)
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


SEND_ERRORS = (OSError, http.client.HTTPException, InvalidResponse)
STALE_CONNECTION_ERRORS = (
    ConnectionClosed,
    http.client.RemoteDisconnected,
    BrokenPipeError,
    ConnectionResetError,
    ConnectionAbortedError,
)
