"""Connection handling for the HTTP server: idle connections wait in a selector, requests run on a bounded pool.

Theory of operation
-------------------
Every accepted connection goes to a pool of at most ``workers`` threads. A
worker serves a connection's requests while they arrive. Then the
connection joins the *hot set*, which one worker at a time owns: the owner
waits on every hot connection at once with one selector and serves each as
its next request arrives. Under load, one thread therefore serves every busy
keep-alive connection in turn. No request is handed to another thread, and
no two threads compete for the GIL, which on a 2-core machine cost more CPU
than lunar's own work per request (``docs/BENCHMARKS.md``).

A connection leaves the hot set when it has had no request for
``linger_seconds``. It is then *parked*: one selector thread watches every
parked connection and hands it back to the pool when it becomes readable, or
closes it when it has been idle for ``idle_timeout`` seconds. Idle keep-alive
connections therefore cost a file descriptor and a few objects, not a
thread.

The owner gives up the hot set, parking its connections, whenever it would
block: on a client that sends half a request or reads its response slowly,
and when a response starts to stream. The parked connections then reach
other workers. A request that only computes for a long time keeps the other
hot connections waiting until it ends.

Each connection keeps one handler, and so one buffered ``rfile``, for its
whole life. Before a connection waits, its worker checks whether that
buffer still contains bytes, because a pipelined request already read from
the socket would never wake a selector.

A handler whose response streams for a long time calls
``detach_from_pool``: its thread leaves the pool (a new worker may start in
its place), counts against ``max_streams`` instead, and ends with the
stream.

Sockets are non-blocking. Reads wait with ``poll`` until a per-request
deadline, so a client that sends half a request is cut off after
``request_timeout`` seconds however slowly it trickles bytes; a write fails
when the client reads nothing for ``request_timeout`` seconds.

This module does not parse HTTP: ``http.server``'s handler does, and
``lunar.web`` builds on both.
"""

import collections
import errno
import io
import logging
import math
import queue
import select
import selectors
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable, Dict, Optional, Set, Tuple

logger = logging.getLogger(__name__)

READ_BUFFER_BYTES = 8 * 1024  # one rfile buffer per open connection, as io.DEFAULT_BUFFER_SIZE
LINGER_SECONDS = 0.005  # how long a connection stays in the hot set after its last request
MAX_SELECT_WAIT_SECONDS = 1.0  # the selector thread checks for stop this often at least
FORCED_CLOSE_GRACE_SECONDS = 0.5  # after a drain times out, time for threads to notice closed sockets
ACCEPT_BACKOFF_SECONDS = 0.1  # pause after accept() fails for lack of descriptors or memory
_RESOURCE_ERRORS = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM})

# Outcomes of serving a connection's waiting requests.
PARK = "park"  # keep-alive: wait in the selector for the next request
CLOSE = "close"  # the connection is finished
DETACHED = "detached"  # a stream ran on this thread, which now leaves the pool

RequestObserver = Callable[[Optional[str], str, int, Optional[float]], None]

_POLL = getattr(select, "poll", None)

# The Date header of the current second: (Unix second, formatted text).
_date_header: Tuple[int, str] = (0, "")


class StreamLimitError(Exception):
    """Raised by ``detach_from_pool`` when ``max_streams`` streams are already open."""


def wait_for(sock: socket.socket, writable: bool, timeout: float) -> bool:
    """Wait up to ``timeout`` seconds for ``sock`` to be readable (or writable); return whether it is."""
    if _POLL is not None:
        poller = _POLL()
        poller.register(sock, select.POLLOUT if writable else select.POLLIN)
        return bool(poller.poll(max(0, math.ceil(timeout * 1000))))
    # NOTE: select() only takes descriptors below FD_SETSIZE on POSIX; this
    # branch serves platforms without poll(), such as Windows.
    readers, writers, _ = select.select([] if writable else [sock], [sock] if writable else [], [],
                                        max(0.0, timeout))
    return bool(readers or writers)


class _SocketReader(io.RawIOBase):
    """A raw reader over a non-blocking socket that waits until ``deadline`` (monotonic seconds).

    ``tell`` returns the bytes received so far, so the ``BufferedReader``
    on top can report how much it has buffered without reading.
    """

    def __init__(self, sock: socket.socket, before_wait: Callable[[], None]) -> None:
        super().__init__()
        self._sock = sock
        self._before_wait = before_wait  # called before waiting for the client
        self.deadline = math.inf
        self.received = 0

    def readable(self) -> bool:
        return True

    def fileno(self) -> int:
        return self._sock.fileno()

    def tell(self) -> int:
        return self.received

    def readinto(self, buffer: Any) -> Optional[int]:
        while True:
            try:
                count = self._sock.recv_into(buffer)
            except BlockingIOError:
                self._before_wait()
                remaining = self.deadline - time.monotonic()
                if remaining <= 0 or not wait_for(self._sock, False, remaining):
                    raise socket.timeout("timed out reading the request") from None
                continue
            self.received += count
            return count


class _SocketWriter(io.BufferedIOBase):
    """Writes all bytes to a non-blocking socket; fails after ``timeout`` seconds without progress."""

    def __init__(self, sock: socket.socket, timeout: float, before_wait: Callable[[], None]) -> None:
        super().__init__()
        self._sock = sock
        self.timeout = timeout
        self._before_wait = before_wait  # called before waiting for the client

    def writable(self) -> bool:
        return True

    def fileno(self) -> int:
        return self._sock.fileno()

    def write(self, data: Any) -> int:
        try:
            sent = self._sock.send(data)
        except BlockingIOError:
            sent = 0
        if isinstance(data, bytes) and sent == len(data):
            return sent
        view = memoryview(data).cast("B")
        while sent < len(view):
            try:
                sent += self._sock.send(view[sent:])
            except BlockingIOError:
                self._before_wait()
                if not wait_for(self._sock, True, self.timeout):
                    raise socket.timeout("timed out writing the response") from None
        return sent


class PooledRequestHandler(BaseHTTPRequestHandler):
    """An HTTP handler that lives as long as its connection and serves requests when asked.

    Unlike ``BaseRequestHandler``, constructing it serves nothing: the pool
    calls ``serve_ready`` each time the connection has a request, and
    ``close`` when the connection is done.
    """

    def __init__(self, request: socket.socket, client_address: Any,
                 server: "PooledHTTPServer") -> None:
        self.request = request
        self.client_address = client_address
        self.server = server
        self.detached = False
        self.route_template: Optional[str] = None  # set by the router; a metrics label
        self._response_status: Optional[int] = None
        self.setup()

    def setup(self) -> None:
        self.connection = self.request
        if self.disable_nagle_algorithm:
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, True)
        self.connection.settimeout(0)
        release = self.server.release_hot_set
        self._reader = _SocketReader(self.connection, release)
        self.rfile = io.BufferedReader(self._reader, READ_BUFFER_BYTES)
        self.wfile = _SocketWriter(self.connection, self.server.request_timeout, release)

    def serve_ready(self, readable: bool) -> str:
        """Serve the requests that have arrived; return ``PARK``, ``CLOSE`` or ``DETACHED``.

        ``readable`` tells whether a selector found the connection readable.
        It returns ``PARK`` as soon as no further request is buffered.
        """
        server = self.server
        if not readable and not self._next_request_ready():
            return PARK
        while True:
            self._reader.deadline = time.monotonic() + server.request_timeout
            self.close_connection = True
            self.route_template = None
            self._response_status = None
            started = time.perf_counter()
            self.handle_one_request()
            observer = server.request_observer
            if observer is not None and self._response_status is not None:
                seconds = None if self.detached else time.perf_counter() - started
                method = getattr(self, "command", None) or ""
                observer(self.route_template, method, self._response_status, seconds)
            if self.detached:
                return DETACHED
            if self.close_connection or server.draining:
                return CLOSE
            if not self._next_request_ready():
                return PARK

    def _next_request_ready(self) -> bool:
        """Tell whether bytes of a pipelined request are already buffered.

        A selector cannot see them, because they were read from the socket.
        """
        return self._reader.received > self.rfile.tell()

    def date_time_string(self, timestamp: Optional[float] = None) -> str:
        """Return an HTTP date; the Date header's is formatted once a second, not per response."""
        global _date_header
        if timestamp is not None:
            return super().date_time_string(timestamp)
        second = int(time.time())
        cached = _date_header
        if cached[0] != second:
            cached = _date_header = (second, super().date_time_string(second))
        return cached[1]

    def send_response(self, code: int, message: Optional[str] = None) -> None:
        self.record_response_status(code)
        super().send_response(code, message)

    def record_response_status(self, code: int) -> None:
        """Note the status of the response about to be sent; call it before writing the status line.

        The pool reports the status to ``server.request_observer``. While
        the server drains, the connection closes after this response, so
        the response must carry ``Connection: close``.
        """
        self._response_status = int(code)
        if self.server.draining:
            self.close_connection = True

    def detach_from_pool(self) -> None:
        """Move this request's thread out of the worker pool for a long-lived response.

        Call it from an endpoint before it starts to stream. The connection
        closes when the endpoint returns, and writes block for at most
        ``request_timeout`` seconds each. Raises ``StreamLimitError`` when
        ``max_streams`` streams are open; nothing changed then.
        """
        if self.detached:
            return
        self.server.detach_current_worker()
        self.detached = True
        self.close_connection = True
        self.connection.settimeout(self.server.request_timeout)

    def close(self) -> None:
        """Close the buffered files; the server closes the socket."""
        try:
            self.finish()
        except OSError:
            pass


class _Connection:
    """One accepted socket and, once it has been served, its handler."""

    __slots__ = ("sock", "address", "handler")

    def __init__(self, sock: socket.socket, address: Any) -> None:
        self.sock = sock
        self.address = address
        self.handler: Optional[PooledRequestHandler] = None


class PooledHTTPServer(ThreadingHTTPServer):
    """A ``ThreadingHTTPServer`` whose threads are a bounded pool plus one selector thread.

    Threads: the one in ``serve_forever`` accepts, one selector thread
    watches idle connections, up to ``workers`` threads serve requests and up
    to ``max_streams`` threads serve detached streams. The handler class
    must be a ``PooledRequestHandler``.
    """

    linger_seconds = LINGER_SECONDS

    def __init__(self, address: Tuple[str, int], handler_class: type, workers: int,
                 max_streams: int, idle_timeout: float, request_timeout: float) -> None:
        self.workers = workers
        self.max_streams = max_streams
        self.idle_timeout = idle_timeout
        self.request_timeout = request_timeout
        self.draining = False
        self.request_observer: Optional[RequestObserver] = None
        self._lock = threading.Lock()
        self._open: Set[_Connection] = set()
        self._queue: "queue.SimpleQueue[Optional[_Connection]]" = queue.SimpleQueue()
        self._worker_threads = 0
        self._idle_workers = 0
        self._streams = 0
        self._worker_state = threading.local()
        self._parking: Optional[_ParkingLot] = None
        self._last_accept_error = -math.inf
        self._hot: Optional[_HotSet] = None
        super().__init__(address, handler_class)

    # -- socketserver hooks -------------------------------------------------------

    def get_request(self) -> Tuple[socket.socket, Any]:
        """Accept a connection; after running out of descriptors, pause before the next try.

        socketserver ignores a failed accept() and polls the listening
        socket again at once. The pending connection keeps it readable, so
        without a pause the accept loop would spin at full CPU until a
        descriptor is freed.
        """
        try:
            return super().get_request()
        except OSError as error:
            if error.errno in _RESOURCE_ERRORS:
                now = time.monotonic()
                if now - self._last_accept_error >= 1.0:
                    self._last_accept_error = now
                    logger.error("cannot accept connections: %s; %d connections are open, "
                                 "raise the open-file limit (ulimit -n, LimitNOFILE=)",
                                 error, len(self._open))
                time.sleep(ACCEPT_BACKOFF_SECONDS)
            raise

    def process_request(self, request: socket.socket, client_address: Any) -> None:
        """Hand a new connection to the pool instead of starting a thread for it."""
        connection = _Connection(request, client_address)
        with self._lock:
            self._open.add(connection)
            if self._parking is None:
                self._parking = _ParkingLot(self)
                self._hot = _HotSet(self)
        self._submit(connection)

    def finish_request(self, request: socket.socket, client_address: Any) -> None:
        """Create a new connection's handler, once; the pool then calls its ``serve_ready``.

        The handler is passed back through the worker's thread state, so a
        subclass that extends this hook still receives each new connection.
        """
        self._worker_state.new_handler = self.RequestHandlerClass(request, client_address, self)

    def server_close(self) -> None:
        """Close the listener, every connection and the server's threads at once."""
        super().server_close()
        self.draining = True
        self._close_everything()

    # -- the pool ---------------------------------------------------------------

    def _submit(self, connection: _Connection) -> None:
        self._queue.put(connection)
        with self._lock:
            start = self._idle_workers < self._queue.qsize() and self._worker_threads < self.workers
            if start:
                self._worker_threads += 1
        if start:
            threading.Thread(target=self._work, name="lunar-worker", daemon=True).start()

    def _work(self) -> None:
        self._worker_state.in_pool = True
        while True:
            with self._lock:
                self._idle_workers += 1
            connection = self._queue.get()
            with self._lock:
                self._idle_workers -= 1
            if connection is None:
                with self._lock:
                    self._worker_threads -= 1
                return
            # A connection without a handler is new; any other comes from the parking lot, readable.
            outcome = self._serve(connection, readable=connection.handler is not None)
            if outcome == PARK:
                outcome = self._keep_hot(connection)
            if outcome == DETACHED:
                return

    def _serve(self, connection: _Connection, readable: bool) -> str:
        """Serve a connection's waiting requests; close it unless the outcome is ``PARK``."""
        try:
            if connection.handler is None:
                self.finish_request(connection.sock, connection.address)
                connection.handler = self._worker_state.new_handler
                self._worker_state.new_handler = None
            outcome = connection.handler.serve_ready(readable)
        except Exception:
            self.handle_error(connection.sock, connection.address)
            outcome = DETACHED if getattr(self._worker_state, "detached", False) else CLOSE
        if outcome != PARK:
            self._close_connection(connection)
        if outcome == DETACHED:
            with self._lock:
                self._streams -= 1
        return outcome

    def _keep_hot(self, connection: _Connection) -> str:
        """Put a connection that waits for its next request in the hot set, and serve the set if no one else does.

        Returns ``DETACHED`` if this thread went on to serve a stream, else ``PARK``.
        """
        hot = self._hot
        if self.draining or self.linger_seconds <= 0 or hot is None:
            self._park(connection)
            return PARK
        if hot.add(connection):
            return hot.serve()
        return PARK

    def _park(self, connection: _Connection) -> None:
        """Hand a connection that waits for its next request to the selector thread; close it while draining."""
        parking = self._parking
        if self.draining or parking is None:
            self._close_connection(connection)
        else:
            parking.park(connection)

    def release_hot_set(self) -> None:
        """Park the hot set's connections if the calling thread serves them; call it before blocking or long work."""
        hot = self._hot
        if hot is not None:
            hot.release()

    def detach_current_worker(self) -> None:
        """Move the calling worker thread from the pool to the streams; see ``detach_from_pool``."""
        if not getattr(self._worker_state, "in_pool", False):
            raise RuntimeError("detach_current_worker called outside a pool worker thread")
        with self._lock:
            if self._streams >= self.max_streams:
                raise StreamLimitError(
                    f"{self._streams} streams are open, the maximum; retry later, or raise "
                    "--max-streams")
            self._streams += 1
            self._worker_threads -= 1
            start = self._queue.qsize() > self._idle_workers
            if start:
                self._worker_threads += 1
        self.release_hot_set()
        self._worker_state.in_pool = False
        self._worker_state.detached = True
        threading.current_thread().name = "lunar-stream"  # so thread dumps tell streams apart
        if start:
            threading.Thread(target=self._work, name="lunar-worker", daemon=True).start()

    def _close_connection(self, connection: _Connection) -> None:
        if connection.handler is not None:
            connection.handler.close()
        self.shutdown_request(connection.sock)
        with self._lock:
            self._open.discard(connection)

    # -- draining ---------------------------------------------------------------

    def begin_drain(self) -> None:
        """Close each connection after its current response, which carries ``Connection: close``."""
        self.draining = True
        hot = self._hot
        if hot is not None:
            hot.wake()  # so that its owner closes the hot connections now

    def drain(self, timeout: float) -> bool:
        """Close idle connections and wait up to ``timeout`` seconds for requests and streams.

        Call it after ``serve_forever`` has returned. Connections still
        busy at the deadline are shut down, which makes their pending reads
        and writes fail. Returns whether everything finished in time.
        """
        self.begin_drain()
        deadline = time.monotonic() + timeout
        parking = self._parking
        if parking is not None:
            parking.close_all()
        while time.monotonic() < deadline and not self._is_quiet():
            time.sleep(0.01)
        finished = self._is_quiet()
        if not finished:
            counts = self.connection_counts()
            logger.warning("drain timed out after %.1f s with %d requests in flight and %d "
                           "streams; closing their connections", timeout, counts["active"],
                           counts["streaming"])
        self._close_everything()
        return finished

    def _is_quiet(self) -> bool:
        with self._lock:
            busy = self._worker_threads - self._idle_workers
            hot_count = self._hot.count() if self._hot is not None else 0
            return busy <= 0 and self._streams == 0 and self._queue.empty() and hot_count == 0

    def _close_everything(self) -> None:
        """Stop the selector and the workers, and shut down every remaining connection."""
        with self._lock:
            parking, self._parking = self._parking, None
            hot = self._hot
            remaining = list(self._open)
            workers = self._worker_threads
        if parking is not None:
            parking.stop()
        for connection in remaining:
            try:
                connection.sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        for _ in range(workers):
            self._queue.put(None)
        # The threads that own the remaining sockets close them. Closing a
        # descriptor here could let a new socket reuse its number while a
        # stuck thread still writes to it.
        deadline = time.monotonic() + FORCED_CLOSE_GRACE_SECONDS
        while time.monotonic() < deadline:
            with self._lock:
                if not self._open:
                    break
            time.sleep(0.01)
        if hot is not None:
            hot.close()

    # -- observation ------------------------------------------------------------

    def connection_counts(self) -> Dict[str, int]:
        """Return open connections, and how many are idle, being served and streaming."""
        with self._lock:
            open_count = len(self._open)
            parking = self._parking
            hot = self._hot
            # A hot set's owner that waits for requests serves none.
            waiting_owner = 1 if hot is not None and hot.waiting else 0
            busy = max(0, self._worker_threads - self._idle_workers - waiting_owner)
            streams = self._streams
        idle = hot.count() if hot is not None else 0
        if parking is not None:
            idle += parking.parked_count()
        return {"open": open_count, "idle": idle, "active": busy, "streaming": streams,
                "workers": self._worker_threads}


class _WakeUpSocket:
    """A socket pair whose read end a selector watches, so another thread can interrupt its wait."""

    def __init__(self) -> None:
        self.reader, self._writer = socket.socketpair()
        self.reader.setblocking(False)
        self._writer.setblocking(False)

    def wake(self) -> None:
        """Make the read end readable; any thread may call this."""
        try:
            self._writer.send(b"\0")
        except OSError:
            pass  # the buffer is full, so a wake-up is already pending; or it is closed

    def drain(self) -> None:
        """Read the pending wake-ups, so the read end stops being readable."""
        try:
            while self.reader.recv(4096):
                pass
        except OSError:
            pass

    def close(self) -> None:
        self.reader.close()
        self._writer.close()


class _HotSet:
    """Connections that had a request within ``linger_seconds``, and the worker that serves them.

    Any thread hands a connection in with ``add``; the first one to find
    the set without an owner becomes its owner and runs ``serve``. Only the
    owner touches the selector and ``_last_request``.
    """

    def __init__(self, server: PooledHTTPServer) -> None:
        self._server = server
        self._selector = selectors.DefaultSelector()
        self._wake_up = _WakeUpSocket()
        self._selector.register(self._wake_up.reader, selectors.EVENT_READ, None)
        self._lock = threading.Lock()  # guards _owner and _incoming
        self._owner: Optional[int] = None  # the owning thread's identifier
        self._incoming: "collections.deque[_Connection]" = collections.deque()
        # Watched connections, oldest request first: when each had its last request.
        self._last_request: "collections.OrderedDict[_Connection, float]" = collections.OrderedDict()
        self.waiting = False  # whether the owner waits in the selector, serving nothing
        self._closing = False  # close() was called
        self._closed = False

    def add(self, connection: _Connection) -> bool:
        """Hand in a connection that waits for its next request; return whether the caller must now ``serve``."""
        with self._lock:
            self._incoming.append(connection)
            owned = self._owner is None
            if owned:
                self._owner = threading.get_ident()
        if not owned:
            self.wake()
        return owned

    def count(self) -> int:
        """Return how many connections the set holds."""
        return len(self._last_request) + len(self._incoming)

    def serve(self) -> str:
        """Serve the set's connections as requests arrive, until none is left or this thread gives the set up.

        Returns ``DETACHED`` if this thread went on to serve a stream, else ``PARK``.
        """
        server = self._server
        owner = threading.get_ident()
        while True:
            self._watch_incoming()
            if server.draining:
                self._give_up()
                return PARK
            if not self._last_request:
                with self._lock:
                    if not self._incoming:
                        self._end_ownership()
                        return PARK
                continue

            oldest_request = next(iter(self._last_request.values()))
            timeout = max(0.0, oldest_request + server.linger_seconds - time.monotonic())
            self.waiting = True
            try:
                events = self._selector.select(timeout)
            finally:
                self.waiting = False
            for key, _ in events:
                if self._owner != owner:
                    break  # released while serving an earlier connection; the new owner takes over
                connection = key.data
                if connection is None:
                    self._wake_up.drain()
                    continue
                self._selector.unregister(connection.sock)
                del self._last_request[connection]
                outcome = server._serve(connection, readable=True)
                if outcome == DETACHED:
                    return DETACHED
                if outcome == PARK:
                    if self._owner == owner:
                        self._watch(connection)
                    else:
                        server._park(connection)
            if self._owner != owner:
                return PARK
            self._park_lingered()

    def release(self) -> None:
        """Park every connection of the set and give up ownership, if the calling thread owns the set."""
        if self._owner == threading.get_ident():
            self._give_up()

    def wake(self) -> None:
        """Interrupt the owner's wait in the selector."""
        self._wake_up.wake()

    def close(self) -> None:
        """Close the selector and the wake-up sockets now, or when the current owner ends its ownership."""
        with self._lock:
            self._closing = True
            if self._owner is None:
                self._close_resources()

    def _end_ownership(self) -> None:
        """Make the set ownerless; call it with ``_lock`` acquired."""
        self._owner = None
        if self._closing:
            self._close_resources()

    def _close_resources(self) -> None:
        """Close the selector and the wake-up sockets once; call it with ``_lock`` acquired."""
        if self._closed:
            return
        self._closed = True
        self._selector.close()
        self._wake_up.close()

    def _watch(self, connection: _Connection) -> None:
        try:
            self._selector.register(connection.sock, selectors.EVENT_READ, connection)
        except (OSError, ValueError):  # closed meanwhile
            self._server._close_connection(connection)
            return
        self._last_request[connection] = time.monotonic()

    def _watch_incoming(self) -> None:
        while self._incoming:
            self._watch(self._incoming.popleft())

    def _park_lingered(self) -> None:
        """Park the connections that have had no request for ``linger_seconds``."""
        expired_before = time.monotonic() - self._server.linger_seconds
        while self._last_request:
            connection, last_request = next(iter(self._last_request.items()))
            if last_request > expired_before:
                break
            self._unwatch(connection)
            self._server._park(connection)

    def _give_up(self) -> None:
        """Park every connection, or close it while draining, and end this thread's ownership."""
        while self._last_request:
            connection = next(iter(self._last_request))
            self._unwatch(connection)
            self._server._park(connection)
        with self._lock:
            incoming = list(self._incoming)
            self._incoming.clear()
            self._end_ownership()
        for connection in incoming:
            self._server._park(connection)

    def _unwatch(self, connection: _Connection) -> None:
        del self._last_request[connection]
        try:
            self._selector.unregister(connection.sock)
        except (KeyError, ValueError):
            pass


class _ParkingLot:
    """The selector thread: watches parked connections and hands readable ones to the pool.

    Only this thread touches the selector and the deadlines; other threads
    append to ``_incoming`` and write a byte to the wake-up socket.
    """

    def __init__(self, server: PooledHTTPServer) -> None:
        self._server = server
        self._selector = selectors.DefaultSelector()
        self._wake_up = _WakeUpSocket()
        self._selector.register(self._wake_up.reader, selectors.EVENT_READ, None)
        self._incoming: "collections.deque[_Connection]" = collections.deque()
        self._parked: "collections.OrderedDict[_Connection, float]" = collections.OrderedDict()
        self._closing = False
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name="lunar-selector", daemon=True)
        self._thread.start()

    def park(self, connection: _Connection) -> None:
        """Watch ``connection`` until it is readable or idle too long; any thread may call this."""
        self._incoming.append(connection)
        self._wake_up.wake()

    def parked_count(self) -> int:
        """Return how many connections wait for their next request."""
        return len(self._parked) + len(self._incoming)

    def close_all(self) -> None:
        """Close every parked connection, and every connection parked from now on."""
        self._closing = True
        self._wake_up.wake()

    def stop(self) -> None:
        """Close the parked connections and end the thread."""
        self._closing = True
        self._stopping = True
        self._wake_up.wake()
        if self._thread is not threading.current_thread():
            self._thread.join(MAX_SELECT_WAIT_SECONDS * 2)

    def _run(self) -> None:
        try:
            while True:
                self._select_once()
                if self._stopping:
                    break
        except Exception:
            logger.exception("connection selector failed; idle connections are closed")
        finally:
            self._close_parked()
            for pending in list(self._incoming):
                self._server._close_connection(pending)
            self._selector.close()
            self._wake_up.close()

    def _select_once(self) -> None:
        timeout = MAX_SELECT_WAIT_SECONDS
        if self._parked:
            first_deadline = next(iter(self._parked.values()))
            timeout = min(timeout, max(0.0, first_deadline - time.monotonic()))
        for key, _ in self._selector.select(timeout):
            connection = key.data
            if connection is None:
                self._wake_up.drain()
                continue
            self._selector.unregister(connection.sock)
            del self._parked[connection]
            self._server._submit(connection)

        while self._incoming:
            connection = self._incoming.popleft()
            if self._closing:
                self._server._close_connection(connection)
                continue
            try:
                self._selector.register(connection.sock, selectors.EVENT_READ, connection)
            except (OSError, ValueError):  # closed meanwhile
                self._server._close_connection(connection)
                continue
            self._parked[connection] = time.monotonic() + self._server.idle_timeout

        if self._closing:
            self._close_parked()
            return
        now = time.monotonic()
        while self._parked:
            connection, deadline = next(iter(self._parked.items()))
            if deadline > now:
                break
            self._unpark_and_close(connection)

    def _close_parked(self) -> None:
        while self._parked:
            connection = next(iter(self._parked))
            self._unpark_and_close(connection)

    def _unpark_and_close(self, connection: _Connection) -> None:
        del self._parked[connection]
        try:
            self._selector.unregister(connection.sock)
        except (KeyError, ValueError):
            pass
        self._server._close_connection(connection)
