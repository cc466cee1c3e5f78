"""Server-sent events: the fleet's changes pushed to browsers as they happen.

``GET /events`` is a ``text/event-stream``. The control center calls the
broker under its lock each time a rocket's applied state changes, and the
broker only records the channel as dirty there. Every ``flush_interval``
seconds the broker's own thread turns each dirty rocket into one ``rocket``
event with the rocket's latest state. It keeps these events in a bounded ring
for ``Last-Event-ID`` replay and offers the encoded batch to every
subscriber's bounded queue. Once per ``stats_interval`` it also sends a
``stats`` event with fleet totals and the ingest rate. A message that is
only buffered changes no applied state, so it calls no listener. The stats
pass therefore marks dirty the rockets whose pending count changed, and
their events follow up to one ``stats_interval`` later. The HTTP handler thread of each
``/events`` connection writes its subscriber's queue to the socket, so a slow
client delays only itself. A subscriber whose queue overflows is dropped.

Event ids are ``<epoch>-<sequence>``. The epoch is fixed when the broker
starts, so an id from before a restart is recognised as stale. This module
does not store events: after a restart, or once an id has left the ring, a
client gets a ``snapshot`` of the whole fleet instead of a replay.
"""

import itertools
import json
import logging
import threading
import time
from collections import deque
from http import HTTPStatus
from typing import Any, Deque, Dict, Iterator, List, Optional, Set, Tuple

from lunar.fleet import EXPLODED, LAUNCHED, PENDING, ControlCenter, Outcome, Rocket
from lunar.web import HttpError, Request, Route, StreamingResponse

logger = logging.getLogger(__name__)

FLUSH_INTERVAL_SECONDS = 0.25  # so a client gets at most 4 events per rocket per second
STATS_INTERVAL_SECONDS = 1.0
HEARTBEAT_INTERVAL_SECONDS = 15.0  # a comment line keeps idle proxies from closing the stream
RING_SIZE = 10_000  # rocket events kept for Last-Event-ID replay
MAX_SUBSCRIBERS = 100
MAX_QUEUED_BYTES = 8 * 1024 * 1024  # per subscriber, which is dropped when it falls further behind
RETRY_MILLISECONDS = 2000  # reconnection delay sent to EventSource in the retry field
CLOSE_TIMEOUT_SECONDS = 5.0  # how long close() waits for the broker thread
SUBSCRIBER_LIMIT_RETRY_SECONDS = 10  # Retry-After sent with the 503 past the subscriber cap

EVENT_STREAM_CONTENT_TYPE = "text/event-stream"
HEARTBEAT = b": heartbeat\n\n"

ROCKET_EVENT = "rocket"
SNAPSHOT_EVENT = "snapshot"
STATS_EVENT = "stats"


class SubscriptionRejected(Exception):
    """Raised by ``EventBroker.subscribe`` past the subscriber cap or after ``close()``."""


def encode_event(event_type: str, data: Any, event_id: Optional[str] = None) -> bytes:
    """Return one server-sent event: its lines and the blank line that ends it.

    ``data`` is serialized as compact JSON, which escapes every line break, so
    it always fits on one ``data:`` line.
    """
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    lines = [f"event: {event_type}\n"]
    if event_id is not None:
        lines.append(f"id: {event_id}\n")
    lines.append(f"data: {text}\n\n")
    return "".join(lines).encode("utf-8")


def parse_event_id(event_id: str) -> Optional[Tuple[str, int]]:
    """Split ``<epoch>-<sequence>`` into its parts, or return None if malformed."""
    epoch, separator, sequence_text = event_id.strip().rpartition("-")
    if not separator or not epoch or not sequence_text.isdigit() or not sequence_text.isascii():
        return None
    return epoch, int(sequence_text)


_epoch_lock = threading.Lock()
_last_epoch = 0


def _new_epoch() -> str:
    """Return the start time in milliseconds, unique among brokers in this process."""
    global _last_epoch
    with _epoch_lock:
        _last_epoch = max(time.time_ns() // 1_000_000, _last_epoch + 1)
        return str(_last_epoch)


class Subscription:
    """One ``/events`` client: its queue of encoded events and the stream that drains it.

    Iterating yields the first chunk (a snapshot or the replayed events), then
    queued batches and heartbeats until the subscription ends: when the
    client goes away, when it is dropped for falling behind, or when the
    broker closes. ``close()`` removes it from the broker and may be called
    more than once.
    """

    def __init__(self, broker: "EventBroker", client: str, first_chunk: bytes,
                 heartbeat_interval: float, max_queued_bytes: int) -> None:
        self.client = client
        self._broker = broker
        self._first_chunk = first_chunk
        self._heartbeat_interval = heartbeat_interval
        self._max_queued_bytes = max_queued_bytes
        self._condition = threading.Condition()
        self._chunks: Deque[bytes] = deque()
        self._queued_bytes = 0
        self._ended = False
        self.started = time.monotonic()

    def offer(self, chunk: bytes) -> bool:
        """Queue a chunk without blocking; return False if the queue overflowed.

        After an overflow the queue is discarded and the subscription has
        ended, so the stream stops at once. A chunk offered after the end is
        ignored.
        """
        with self._condition:
            if self._ended:
                return True
            if self._queued_bytes + len(chunk) > self._max_queued_bytes:
                self._end_locked()
                return False
            self._chunks.append(chunk)
            self._queued_bytes += len(chunk)
            self._condition.notify()
            return True

    def end(self) -> None:
        """Stop the stream and wake the thread writing it."""
        with self._condition:
            self._end_locked()

    def _end_locked(self) -> None:
        self._ended = True
        self._chunks.clear()
        self._queued_bytes = 0
        self._condition.notify_all()

    def queued_bytes(self) -> int:
        """Return how many bytes wait to be written to the client."""
        with self._condition:
            return self._queued_bytes

    def _take(self, timeout: float) -> Optional[List[bytes]]:
        """Wait up to ``timeout`` seconds for chunks; return None once ended."""
        with self._condition:
            self._condition.wait_for(lambda: self._chunks or self._ended, timeout)
            if self._ended:
                return None
            chunks = list(self._chunks)
            self._chunks.clear()
            self._queued_bytes = 0
            return chunks

    def __iter__(self) -> Iterator[bytes]:
        try:
            yield self._first_chunk
            next_heartbeat = time.monotonic() + self._heartbeat_interval
            while True:
                chunks = self._take(max(0.0, next_heartbeat - time.monotonic()))
                if chunks is None:
                    return
                if chunks:
                    yield b"".join(chunks)
                now = time.monotonic()
                if now >= next_heartbeat:
                    yield HEARTBEAT
                    next_heartbeat = now + self._heartbeat_interval
        finally:
            self.close()

    def close(self) -> None:
        """End the stream and give its slot back to the broker."""
        self.end()
        self._broker.unsubscribe(self)


class EventBroker:
    """Coalesces rocket changes into server-sent events and fans them out.

    The listener that the control center calls under its lock takes only the
    broker's small dirty-set lock. Ingestion therefore waits for no
    subscriber, and only for the short reads of rocket state that the broker
    makes under the control center's lock. The broker lock orders ring
    appends, replay and snapshots, so a new subscriber receives each change either
    in its first chunk or in a later batch. Lock order is broker lock, then
    the control center's lock or the dirty-set lock. The dirty-set lock is
    never held while taking another.
    """

    def __init__(
        self,
        control_center: ControlCenter,
        flush_interval: float = FLUSH_INTERVAL_SECONDS,
        stats_interval: float = STATS_INTERVAL_SECONDS,
        heartbeat_interval: float = HEARTBEAT_INTERVAL_SECONDS,
        ring_size: int = RING_SIZE,
        max_subscribers: int = MAX_SUBSCRIBERS,
        max_queued_bytes: int = MAX_QUEUED_BYTES,
    ) -> None:
        if flush_interval <= 0 or stats_interval <= 0 or heartbeat_interval <= 0:
            raise ValueError("flush, stats and heartbeat intervals must be positive seconds")
        if ring_size < 1 or max_subscribers < 0 or max_queued_bytes < 1:
            raise ValueError("ring_size and max_queued_bytes must be positive "
                             "and max_subscribers must not be negative")
        self.epoch = _new_epoch()
        self.max_subscribers = max_subscribers
        self._control_center = control_center
        self._flush_interval = flush_interval
        self._stats_interval = stats_interval
        self._heartbeat_interval = heartbeat_interval
        self._max_queued_bytes = max_queued_bytes

        self._dirty_lock = threading.Lock()
        self._dirty_channels: Dict[str, None] = {}  # a dict keeps arrival order

        self._lock = threading.Lock()
        self._ring: Deque[Tuple[int, bytes]] = deque(maxlen=ring_size)
        self._last_sequence = 0
        self._subscribers: Set[Subscription] = set()
        self._last_stats_event: Optional[bytes] = None
        self._published_pending: Dict[str, int] = {}  # channel -> pendingMessages last sent

        self._closed = threading.Event()
        control_center.add_listener(self._mark_dirty)
        self._thread = threading.Thread(target=self._run, name="event-broker", daemon=True)
        self._thread.start()
        logger.info("event broker started with epoch %s", self.epoch)

    # -- called by the control center, under its lock ---------------------------

    def _mark_dirty(self, rocket: Rocket) -> None:
        with self._dirty_lock:
            self._dirty_channels[rocket.channel] = None

    # -- subscribers -------------------------------------------------------------

    def subscribe(self, last_event_id: Optional[str] = None, client: str = "") -> Subscription:
        """Register a subscriber and return its stream.

        The stream starts with the events after ``last_event_id`` when the
        ring still contains all of them, and otherwise with a ``snapshot`` of the
        fleet. Raises ``SubscriptionRejected`` past ``max_subscribers`` or
        after ``close()``.
        """
        with self._lock:
            if self._closed.is_set():
                raise SubscriptionRejected("the event stream is shutting down")
            if len(self._subscribers) >= self.max_subscribers:
                raise SubscriptionRejected(
                    f"the event stream already has the maximum of {self.max_subscribers} "
                    "subscribers; retry later"
                )
            replay = self._events_after(last_event_id)
            parts = [f"retry: {RETRY_MILLISECONDS}\n\n".encode("ascii")]
            if replay is None:
                snapshot_id = self._event_id(self._last_sequence)
                parts.append(encode_event(SNAPSHOT_EVENT, self._control_center.rockets(), snapshot_id))
            else:
                parts.extend(replay)
            if self._last_stats_event is not None:
                parts.append(self._last_stats_event)
            subscription = Subscription(self, client, b"".join(parts),
                                        self._heartbeat_interval, self._max_queued_bytes)
            self._subscribers.add(subscription)
            count = len(self._subscribers)
        logger.info("event subscriber %s connected (%s; %d subscribers)", client,
                    "snapshot" if replay is None else f"replayed {len(replay)} events", count)
        return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        """Forget a subscriber. The stream's ``close()`` calls this."""
        with self._lock:
            if subscription not in self._subscribers:
                return
            self._subscribers.discard(subscription)
            count = len(self._subscribers)
        logger.info("event subscriber %s disconnected after %.1f s (%d subscribers)",
                    subscription.client, time.monotonic() - subscription.started, count)

    @property
    def closed(self) -> bool:
        """Whether ``close()`` was called."""
        return self._closed.is_set()

    def subscriber_count(self) -> int:
        """Return the number of connected subscribers."""
        with self._lock:
            return len(self._subscribers)

    def _events_after(self, last_event_id: Optional[str]) -> Optional[List[bytes]]:
        """Return the ring's events after ``last_event_id``, or None if a snapshot is needed.

        Caller holds the broker lock. An id from another epoch, a malformed
        one, one newer than the last event and one whose successors have left
        the ring all need a snapshot.
        """
        if not last_event_id:
            return None
        parsed = parse_event_id(last_event_id)
        if parsed is None or parsed[0] != self.epoch:
            return None
        sequence = parsed[1]
        first_kept = self._last_sequence - len(self._ring) + 1
        if not first_kept - 1 <= sequence <= self._last_sequence:
            return None
        # Sequences in the ring are consecutive, so the position follows from the number.
        start = sequence + 1 - first_kept
        return [event for _, event in itertools.islice(self._ring, start, None)]

    def _event_id(self, sequence: int) -> str:
        return f"{self.epoch}-{sequence}"

    # -- the broker thread ------------------------------------------------------

    def _run(self) -> None:
        received_before = self._received_count()
        stats_started = time.monotonic()
        while not self._closed.wait(self._flush_interval):
            try:
                self._flush()
                now = time.monotonic()
                if now - stats_started >= self._stats_interval:
                    received = self._received_count()
                    rate = (received - received_before) / (now - stats_started)
                    self._publish_stats(rate)
                    received_before, stats_started = received, now
            except Exception:
                logger.exception("event broker failed to publish; retrying in %.2f s",
                                 self._flush_interval)

    def _flush(self) -> None:
        """Publish one ``rocket`` event per rocket that changed since the last flush."""
        with self._dirty_lock:
            channels = self._dirty_channels
            self._dirty_channels = {}
        if not channels:
            return
        with self._lock:
            events = []
            for channel in channels:
                rocket = self._control_center.rocket(channel)
                if rocket is None:
                    continue
                self._last_sequence += 1
                self._published_pending[channel] = rocket["pendingMessages"]
                event = encode_event(ROCKET_EVENT, rocket, self._event_id(self._last_sequence))
                self._ring.append((self._last_sequence, event))
                events.append(event)
            self._deliver(b"".join(events))

    def _publish_stats(self, messages_per_second: float) -> None:
        with self._lock:
            if not self._subscribers:
                self._last_stats_event = None
                return
            rockets = self._control_center.rockets()
            stats = fleet_totals(rockets, self._control_center.outcome_counts)
            stats["messagesPerSecond"] = round(messages_per_second, 1)
            self._last_stats_event = encode_event(STATS_EVENT, stats)
            self._deliver(self._last_stats_event)
            # A buffered message changes a rocket's pending count without
            # calling the listener, so such changes go out with the next flush.
            changed = [rocket["channel"] for rocket in rockets
                       if self._published_pending.get(rocket["channel"]) != rocket["pendingMessages"]]
        if changed:
            with self._dirty_lock:
                self._dirty_channels.update(dict.fromkeys(changed))

    def _received_count(self) -> int:
        # Reads the counters without the control center's lock. That is safe
        # because the dict's size never changes, and a count that is one
        # message behind does not matter for a rate.
        return sum(self._control_center.outcome_counts.values())

    def _deliver(self, chunk: bytes) -> None:
        """Offer a chunk to every subscriber and drop those that fell behind.

        Caller holds the broker lock. The chunk is shared, not copied.
        """
        dropped = [subscription for subscription in self._subscribers
                   if not subscription.offer(chunk)]
        for subscription in dropped:
            self._subscribers.discard(subscription)
            logger.warning(
                "dropped event subscriber %s: it fell more than %d bytes behind",
                subscription.client, self._max_queued_bytes,
            )

    # -- shutdown ----------------------------------------------------------------

    def close(self) -> None:
        """End every stream and stop the broker thread; later subscribes are rejected.

        NOTE: a handler thread blocked in a socket write to a client that
        stopped reading stays until the server's idle timeout ends that write.
        """
        if self._closed.is_set():
            return
        self._closed.set()
        with self._lock:
            subscriptions = list(self._subscribers)
            self._subscribers.clear()
        for subscription in subscriptions:
            subscription.end()
        self._thread.join(CLOSE_TIMEOUT_SECONDS)
        if self._thread.is_alive():
            logger.warning("event broker thread did not stop within %.0f s", CLOSE_TIMEOUT_SECONDS)
        logger.info("event broker closed; ended %d streams", len(subscriptions))


def fleet_totals(rockets: List[Dict[str, Any]], outcome_counts: Dict[Outcome, int]) -> Dict[str, Any]:
    """Return the fleet totals of a ``stats`` event, without the ingest rate."""
    statuses = [rocket["status"] for rocket in rockets]
    return {
        "rockets": len(rockets),
        "launched": statuses.count(LAUNCHED),
        "exploded": statuses.count(EXPLODED),
        "pendingRockets": statuses.count(PENDING),
        "pendingMessages": sum(rocket["pendingMessages"] for rocket in rockets),
        "messagesReceived": {outcome.value: count for outcome, count in outcome_counts.items()},
    }


class EventsApi:
    """The ``GET /events`` endpoint, bound to one broker."""

    def __init__(self, broker: EventBroker) -> None:
        self.broker = broker

    def routes(self) -> List[Route]:
        """Return the route table."""
        return [Route("/events", {"GET": self.get_events})]

    def get_events(self, request: Request) -> StreamingResponse:
        """Stream fleet events until the client leaves; 503 past the subscriber cap."""
        client = "{}:{}".format(*request.client_address[:2])
        try:
            subscription = self.broker.subscribe(request.headers.get("Last-Event-ID"), client)
        except SubscriptionRejected as error:
            level = logging.INFO if self.broker.closed else logging.WARNING
            logger.log(level, "rejected event subscriber %s: %s", client, error)
            # Closing makes the retry open a new connection, which after a
            # restart reaches the new server instead of this one's handler thread.
            raise HttpError(HTTPStatus.SERVICE_UNAVAILABLE, str(error),
                            {"Retry-After": str(SUBSCRIBER_LIMIT_RETRY_SECONDS)}, close=True) from None
        headers = {
            "Content-Type": EVENT_STREAM_CONTENT_TYPE,
            "Cache-Control": "no-store",
            # Tells nginx-style reverse proxies to pass each event on at once.
            "X-Accel-Buffering": "no",
        }
        return StreamingResponse(HTTPStatus.OK, headers, subscription)
