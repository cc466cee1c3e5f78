"""Operator endpoints and the service's metrics: /healthz, /readyz and /metrics.

``ServiceMetrics`` declares every ``lunar_`` metric and the hooks that feed
them: the HTTP server's request observer, a journal wrapper that times
commits, and callbacks that read the fleet and the connections when
scraped. ``OpsApi`` serves them. Nothing here changes the fleet.
"""

import logging
import time
from http import HTTPStatus
from typing import Callable, Dict, List, Optional, Sequence, Tuple

from lunar import rejections
from lunar.fleet import ControlCenter, Journal, RocketState
from lunar.lifecycle import Lifecycle, State
from lunar.messages import Message
from lunar.metrics import (
    CONTENT_TYPE,
    CallbackCounter,
    CallbackGauge,
    Counter,
    Gauge,
    Histogram,
    Registry,
)
from lunar.store import StoreError, StoredMessage
from lunar.web import Request, Response, Route, json_response

logger = logging.getLogger(__name__)

# Request methods shown as themselves in metrics; any other is counted as "other".
KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
UNMATCHED_ROUTE = "unmatched"  # the route label of requests that matched no route


class TimedJournal(Journal):
    """A journal that forwards every call to another and times each write transaction.

    It must override every method of ``Journal``: one it missed would run the
    base class's, which records nothing.
    """

    def __init__(self, journal: Journal, observe_seconds: Callable[[float], None]) -> None:
        self.journal = journal
        self._observe_seconds = observe_seconds

    def record(self, message: Message, state: Optional[RocketState]) -> None:
        started = time.perf_counter()
        self.journal.record(message, state)
        self._observe_seconds(time.perf_counter() - started)

    def record_batch(self, messages: Sequence[Message], states: Sequence[Tuple[str, RocketState]]) -> None:
        started = time.perf_counter()
        self.journal.record_batch(messages, states)
        self._observe_seconds(time.perf_counter() - started)

    def save_state(self, channel: str, state: RocketState) -> None:
        self.journal.save_state(channel, state)

    def read_messages(self, channel: str, offset: int = 0, limit: int = 100) -> List[StoredMessage]:
        return self.journal.read_messages(channel, offset, limit)

    def count_messages(self, channel: Optional[str] = None) -> int:
        return self.journal.count_messages(channel)


class ServiceMetrics:
    """Every metric lunar exposes, in one registry, with the hooks that update them."""

    def __init__(self, rejected: rejections.Rejections, start_time: Optional[float] = None) -> None:
        self.registry = Registry()
        register = self.registry.register
        self._control_center: Optional[ControlCenter] = None
        self._rejected = rejected
        self._request_labels: Dict[Tuple[Optional[str], str, int], Tuple[Tuple[str, ...], Tuple[str]]] = {}

        self.messages = register(CallbackCounter(
            "lunar_messages_total",
            "Messages stored, by outcome: applied now, buffered behind a gap, or duplicate.",
            ("outcome",)))
        register(CallbackCounter(
            "lunar_messages_rejected_total",
            "Messages not stored, by reason.",
            ("reason",), lambda: {(reason,): count for reason, count in rejected.counts().items()}))
        self.pending_messages = register(CallbackGauge(
            "lunar_pending_messages",
            "Messages waiting behind a gap in their rocket's sequence."))
        self.rockets = register(CallbackGauge(
            "lunar_rockets", "Rockets by status.", ("status",)))
        self.requests = register(Counter(
            "lunar_http_requests_total",
            "HTTP requests answered, by route template, method and status code.",
            ("route", "method", "code")))
        self.request_seconds = register(Histogram(
            "lunar_http_request_duration_seconds",
            "Time from reading a request to writing its response, by route template.",
            ("route",)))
        self.connections = register(CallbackGauge(
            "lunar_http_connections",
            "Open client connections, by state: idle (waiting for a request), active or streaming.",
            ("state",)))
        self.open_connections = register(CallbackGauge(
            "lunar_http_open_connections", "Open client connections."))
        self.worker_threads = register(CallbackGauge(
            "lunar_http_worker_threads",
            "Threads in the request worker pool, busy or idle; streams are not counted."))
        self.sse_subscribers = register(CallbackGauge(
            "lunar_sse_subscribers",
            "Clients subscribed to the server-sent event stream."))
        self.commit_seconds = register(Histogram(
            "lunar_db_commit_duration_seconds",
            "Time to write and commit one database transaction: a message, or a batch of messages."))
        start = register(Gauge(
            "lunar_process_start_time_seconds",
            "Start time of the process since the Unix epoch, in seconds."))
        start.set(time.time() if start_time is None else start_time)

    def watch_fleet(self, control_center: ControlCenter) -> None:
        """Read message outcomes, pending messages and rockets from ``control_center`` when scraped."""
        self._control_center = control_center
        self.messages.set_function(lambda: {
            (outcome.value,): count for outcome, count in control_center.outcome_counts.items()
        })
        self.pending_messages.set_function(lambda: {(): control_center.counts()[1]})
        self.rockets.set_function(lambda: {
            (status,): count for status, count in control_center.counts()[0].items()
        })

    def observe_request(self, route: Optional[str], method: str, status: int,
                        seconds: Optional[float]) -> None:
        """Count one completed request; ``seconds`` is None for a stream, whose time is not a latency."""
        method_label = method if method in KNOWN_METHODS else "other"
        key = (route, method_label, status)
        labels = self._request_labels.get(key)
        if labels is None:
            # Bounded: routes times known methods times status codes.
            route_label = route or UNMATCHED_ROUTE
            labels = self._request_labels[key] = (
                (route_label, method_label, str(status)), (route_label,))
        self.requests.inc(labels[0])
        if seconds is not None:
            self.request_seconds.observe(seconds, labels[1])

    def observe_commit(self, seconds: float) -> None:
        """Record the duration of one message's database transaction."""
        self.commit_seconds.observe(seconds)

    def watch_connections(self, read_counts: Callable[[], Dict[str, int]]) -> None:
        """Read connection counts from ``read_counts`` (a server's ``connection_counts``) when scraped."""
        self.connections.set_function(lambda: {
            (state,): count for state, count in read_counts().items()
            if state in ("idle", "active", "streaming")
        })
        self.open_connections.set_function(lambda: {(): read_counts()["open"]})
        self.worker_threads.set_function(lambda: {(): read_counts()["workers"]})

    def watch_sse_subscribers(self, read_count: Callable[[], int]) -> None:
        """Report ``read_count()`` as ``lunar_sse_subscribers``; the event stream calls this once."""
        self.sse_subscribers.set_function(lambda: {(): read_count()})

    def totals(self) -> Dict[str, int]:
        """Return messages received so far by outcome, with rejections as ``rejected``."""
        fleet = self._control_center
        counts = {} if fleet is None else {
            outcome.value: count for outcome, count in fleet.outcome_counts.items()
        }
        counts["rejected"] = self._rejected.total()
        return counts


class OpsApi:
    """The /healthz, /readyz and /metrics endpoints."""

    def __init__(self, lifecycle: Lifecycle, check_writable: Callable[[], None],
                 metrics: ServiceMetrics) -> None:
        self.lifecycle = lifecycle
        self.check_writable = check_writable
        self.metrics = metrics

    def routes(self) -> List[Route]:
        """Return the route table."""
        return [
            Route("/healthz", {"GET": self.get_health}),
            Route("/readyz", {"GET": self.get_readiness}),
            Route("/metrics", {"GET": self.get_metrics}),
        ]

    def get_health(self, request: Request) -> Response:
        """Report that the process serves requests."""
        return json_response({"status": "ok"})

    def get_readiness(self, request: Request) -> Response:
        """Report 200 when restored and the database is writable, else 503 with the reason."""
        state = self.lifecycle.state
        if state is State.STARTING:
            return _unavailable("starting: state is not restored yet")
        if state is State.DRAINING:
            return _unavailable("shutting down: finishing requests in flight")
        try:
            self.check_writable()
        except StoreError as error:
            logger.warning("readiness check failed: %s", error)
            return _unavailable(str(error))
        return json_response({"status": "ready"})

    def get_metrics(self, request: Request) -> Response:
        """Return every metric in the Prometheus text format 0.0.4."""
        body = self.metrics.registry.render().encode("utf-8")
        return Response(HTTPStatus.OK, body, {"Content-Type": CONTENT_TYPE})


def _unavailable(reason: str) -> Response:
    return json_response({"error": reason}, HTTPStatus.SERVICE_UNAVAILABLE)
