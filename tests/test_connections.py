"""Tests of connection handling: keep-alive, pipelining, timeouts, limits, the pool and draining."""

import errno
import http.client
import json
import random
import socket
import socketserver
import threading
import time
import unittest
import weakref
from http import HTTPStatus
from unittest import mock

from lunar.web import LunarHTTPServer, Response, Route, StreamingResponse, json_response

try:
    import resource
except ImportError:  # Windows
    resource = None

CLIENT_TIMEOUT_SECONDS = 10.0
IDLE_CONNECTIONS = 2000
HOT_LINGER_SECONDS = 30.0  # longer than any test, so a connection stays in the hot set once served
HOT_REQUEST_TIMEOUT_SECONDS = 5.0  # the server cuts off a stalled client after this, far past the next limit
QUICK_RESPONSE_SECONDS = 1.0  # HotSetTest's limit for responses on connections that are not stalled
# Far more than Linux's default maximum send buffer (4 MB) plus the client's fixed receive buffer.
LARGE_BODY_BYTES = 32 * 1024 * 1024
SMALL_RECEIVE_BUFFER_BYTES = 64 * 1024
WAIT_STEP_SECONDS = 0.01

_READERS = weakref.WeakKeyDictionary()  # socket -> buffered reader, see read_response


def serve(test, routes, **options):
    """Start a LunarHTTPServer with ``routes`` on 127.0.0.1 and stop it when the test ends."""
    server = LunarHTTPServer(("127.0.0.1", 0), routes, **options)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                              daemon=True)
    thread.start()

    def stop():
        server.shutdown()
        thread.join(CLIENT_TIMEOUT_SECONDS)
        server.server_close()

    test.addCleanup(stop)
    return server


def wait_until(condition, timeout):
    """Poll ``condition`` until it is true or ``timeout`` seconds pass; return its last value."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value or time.monotonic() >= deadline:
            return value
        time.sleep(WAIT_STEP_SECONDS)


def raw_connection(server, test):
    sock = socket.create_connection(("127.0.0.1", server.server_address[1]),
                                    timeout=CLIENT_TIMEOUT_SECONDS)
    test.addCleanup(close_socket, sock)
    return sock


def close_socket(sock):
    """Close a client socket and the reader that ``read_response`` may have made for it."""
    reader = _READERS.pop(sock, None)
    if reader is not None:
        reader.close()
    sock.close()


def read_response(sock):
    """Read one HTTP response with a Content-Length; return (status, headers text, body).

    Bytes read past the response stay buffered for the next call on the same socket.
    """
    reader = _READERS.get(sock)
    if reader is None:
        reader = _READERS[sock] = sock.makefile("rb")
    status_line = reader.readline()
    if not status_line:
        raise ConnectionError("connection closed before a response")
    lines = []
    while True:
        line = reader.readline()
        if line in (b"\r\n", b""):
            break
        lines.append(line.decode("latin-1").rstrip("\r\n"))
    headers = "\r\n".join(lines)
    length = int(next(line.split(":", 1)[1] for line in lines
                      if line.lower().startswith("content-length:")))
    body = reader.read(length)
    if len(body) != length:
        raise ConnectionError("connection closed inside a body")
    return int(status_line.split(b" ", 2)[1]), headers, body


def is_closed_by_server(sock, timeout):
    """Tell whether the server closes ``sock`` within ``timeout`` seconds."""
    sock.settimeout(timeout)
    try:
        return sock.recv(1) == b""
    except ConnectionResetError:
        return True
    except socket.timeout:
        return False


def echo_route():
    def echo(request):
        return json_response({"path": request.path, "body": request.read_body().decode()})
    return Route("/echo", {"GET": lambda request: json_response({"path": request.path}),
                           "POST": echo})


def inline_echo_route(threads=None):
    """Return an inline route at /inline that echoes the path and any body.

    Each endpoint call appends its thread's identifier to ``threads``, if given.
    """
    def echo(request):
        if threads is not None:
            threads.append(threading.get_ident())
        body = request.read_body().decode() if request.method == "POST" else ""
        return json_response({"path": request.path, "body": body})
    return Route("/inline", {"GET": echo, "POST": echo}, inline=True)


def post_inline(body):
    """Return a POST /inline request with ``body``, ready to send."""
    data = body.encode()
    return b"POST /inline HTTP/1.1\r\nHost: t\r\nContent-Length: %d\r\n\r\n%s" % (len(data), data)


GET_INLINE = b"GET /inline HTTP/1.1\r\nHost: t\r\n\r\n"


def hot_count(server):
    """Return how many connections the server's hot set contains.

    The hot set is internal. Tests read its size to check that their connections are in it.
    """
    return server._hot.count() if server._hot is not None else 0


class KeepAliveTest(unittest.TestCase):
    def test_pipelined_requests_in_one_packet_are_all_answered(self):
        server = serve(self, [echo_route()])
        sock = raw_connection(server, self)
        sock.sendall(b"GET /echo HTTP/1.1\r\nHost: t\r\n\r\n"
                     b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 2\r\n\r\nhi"
                     b"GET /echo HTTP/1.1\r\nHost: t\r\n\r\n")
        for expected in ({"path": "/echo"}, {"path": "/echo", "body": "hi"}, {"path": "/echo"}):
            status, _, body = read_response(sock)
            self.assertEqual(status, 200)
            self.assertEqual(json.loads(body), expected)

    def test_pipelined_request_behind_a_parked_connection_is_answered(self):
        server = serve(self, [echo_route()])
        server.linger_seconds = 0  # park at once, so the buffer check decides
        sock = raw_connection(server, self)
        sock.sendall(b"GET /echo HTTP/1.1\r\nHost: t\r\n\r\nGET /ec")
        self.assertEqual(read_response(sock)[0], 200)
        time.sleep(0.1)
        sock.sendall(b"ho HTTP/1.1\r\nHost: t\r\n\r\n")
        self.assertEqual(read_response(sock)[0], 200)

    def test_connection_is_reused_after_parking(self):
        server = serve(self, [echo_route()])
        server.linger_seconds = 0
        connection = http.client.HTTPConnection("127.0.0.1", server.server_address[1],
                                                timeout=CLIENT_TIMEOUT_SECONDS)
        self.addCleanup(connection.close)
        for _ in range(5):
            connection.request("GET", "/echo")
            response = connection.getresponse()
            self.assertEqual(response.status, 200)
            response.read()
            self.assertTrue(wait_until(lambda: server.connection_counts()["idle"] == 1, 5))

    def test_idle_connection_is_closed_after_idle_timeout(self):
        server = serve(self, [echo_route()], idle_timeout=0.3)
        sock = raw_connection(server, self)
        sock.sendall(b"GET /echo HTTP/1.1\r\nHost: t\r\n\r\n")
        self.assertEqual(read_response(sock)[0], 200)
        started = time.monotonic()
        self.assertTrue(is_closed_by_server(sock, 5))
        self.assertGreaterEqual(time.monotonic() - started, 0.2)
        self.assertTrue(wait_until(lambda: server.connection_counts()["open"] == 0, 5))

    def test_silent_new_connection_is_closed_after_idle_timeout(self):
        server = serve(self, [echo_route()], idle_timeout=0.3)
        sock = raw_connection(server, self)
        self.assertTrue(is_closed_by_server(sock, 5))


class RequestLimitTest(unittest.TestCase):
    def test_half_sent_request_is_cut_off(self):
        server = serve(self, [echo_route()], request_timeout=0.5, idle_timeout=30)
        sock = raw_connection(server, self)
        started = time.monotonic()
        sock.sendall(b"GET /echo HTTP/1.1\r\nHost: t\r\n")
        for _ in range(20):  # trickle a header byte every 0.1 s, longer than the timeout
            try:
                sock.sendall(b"X")
            except OSError:
                break
            time.sleep(0.1)
        self.assertTrue(is_closed_by_server(sock, 5))
        self.assertLess(time.monotonic() - started, 2.5)

    def test_half_sent_body_gets_408(self):
        server = serve(self, [echo_route()], request_timeout=0.5)
        sock = raw_connection(server, self)
        sock.sendall(b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 10\r\n\r\nabc")
        status, headers, body = read_response(sock)
        self.assertEqual(status, 408)
        self.assertIn("Connection: close", headers)
        self.assertIn("timed out", json.loads(body)["error"])

    def test_body_over_limit_gets_413(self):
        server = serve(self, [echo_route()], max_body_bytes=10)
        sock = raw_connection(server, self)
        sock.sendall(b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 11\r\n\r\n01234567890")
        status, _, body = read_response(sock)
        self.assertEqual(status, 413)
        self.assertIn("10 bytes", json.loads(body)["error"])

    def test_request_line_over_limit_gets_414(self):
        server = serve(self, [echo_route()], max_request_line_bytes=100)
        sock = raw_connection(server, self)
        sock.sendall(b"GET /echo?" + b"x" * 100 + b" HTTP/1.1\r\nHost: t\r\n\r\n")
        self.assertEqual(read_response(sock)[0], 414)

    def test_more_than_100_headers_get_431(self):
        server = serve(self, [echo_route()])
        sock = raw_connection(server, self)
        headers = b"".join(b"X-%d: 1\r\n" % index for index in range(101))
        sock.sendall(b"GET /echo HTTP/1.1\r\nHost: t\r\n" + headers + b"\r\n")
        self.assertEqual(read_response(sock)[0], 431)

    def test_header_line_over_65536_bytes_gets_431(self):
        server = serve(self, [echo_route()])
        sock = raw_connection(server, self)
        sock.sendall(b"GET /echo HTTP/1.1\r\nHost: t\r\nX-Big: " + b"x" * 65536 + b"\r\n\r\n")
        self.assertEqual(read_response(sock)[0], 431)


class WorkerPoolTest(unittest.TestCase):
    def test_pool_runs_at_most_workers_requests_at_once(self):
        lock = threading.Lock()
        running = [0, 0]  # now, maximum

        def slow(request):
            with lock:
                running[0] += 1
                running[1] = max(running[1], running[0])
            time.sleep(0.1)
            with lock:
                running[0] -= 1
            return json_response({})

        server = serve(self, [Route("/slow", {"GET": slow})], workers=2)
        statuses = []

        def client():
            connection = http.client.HTTPConnection("127.0.0.1", server.server_address[1],
                                                    timeout=CLIENT_TIMEOUT_SECONDS)
            connection.request("GET", "/slow")
            statuses.append(connection.getresponse().status)
            connection.close()

        threads = [threading.Thread(target=client) for _ in range(6)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(CLIENT_TIMEOUT_SECONDS)
        self.assertEqual(statuses, [200] * 6)
        self.assertEqual(running[1], 2)
        self.assertLessEqual(server.connection_counts()["workers"], 2)

    @unittest.skipIf(resource is None, "needs the resource module to check the descriptor limit")
    def test_idle_connections_hold_no_threads(self):
        needed = 2 * IDLE_CONNECTIONS + 200
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        if soft != resource.RLIM_INFINITY and soft < needed:
            if hard != resource.RLIM_INFINITY and hard < needed:
                self.skipTest(f"needs {needed} file descriptors; the hard limit is {hard}")
            resource.setrlimit(resource.RLIMIT_NOFILE, (needed, hard))
            self.addCleanup(resource.setrlimit, resource.RLIMIT_NOFILE, (soft, hard))
        threads_before = threading.active_count()
        workers = 8
        server = serve(self, [echo_route()], workers=workers, idle_timeout=120)
        port = server.server_address[1]
        sockets = []
        self.addCleanup(lambda: [close_socket(sock) for sock in sockets])
        request = b"GET /echo HTTP/1.1\r\nHost: t\r\n\r\n"
        for _ in range(IDLE_CONNECTIONS):
            sock = socket.create_connection(("127.0.0.1", port), timeout=CLIENT_TIMEOUT_SECONDS)
            sockets.append(sock)
            sock.sendall(request)
        for sock in sockets:
            self.assertEqual(read_response(sock)[0], 200)
        self.assertTrue(wait_until(
            lambda: server.connection_counts()["idle"] >= IDLE_CONNECTIONS, 10),
            server.connection_counts())

        # One thread serves forever, one watches the idle connections, the rest are workers.
        bound = workers + 2
        self.assertLessEqual(threading.active_count() - threads_before, bound)
        started = time.monotonic()
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=CLIENT_TIMEOUT_SECONDS)
        self.addCleanup(connection.close)
        connection.request("GET", "/echo")
        self.assertEqual(connection.getresponse().status, 200)
        self.assertLess(time.monotonic() - started, 1.0)
        sockets[0].sendall(request)
        self.assertEqual(read_response(sockets[0])[0], 200)
        self.assertLessEqual(threading.active_count() - threads_before, bound)


class AcceptErrorTest(unittest.TestCase):
    def test_running_out_of_descriptors_pauses_and_logs_once(self):
        server = LunarHTTPServer(("127.0.0.1", 0), [echo_route()])
        self.addCleanup(server.server_close)
        failure = OSError(errno.EMFILE, "Too many open files")
        with mock.patch.object(socketserver.TCPServer, "get_request", side_effect=failure):
            with self.assertLogs("lunar.connections", "ERROR") as logs:
                started = time.monotonic()
                for _ in range(3):
                    with self.assertRaises(OSError):
                        server.get_request()
                elapsed = time.monotonic() - started
        self.assertEqual(len(logs.records), 1)
        self.assertIn("open-file limit", logs.records[0].getMessage())
        self.assertGreaterEqual(elapsed, 0.25)


class StreamTest(unittest.TestCase):
    def setUp(self):
        self.release = threading.Event()
        self.addCleanup(self.release.set)

        def stream(request):
            request.detach_from_pool()
            handler = request._handler
            handler.send_response(HTTPStatus.OK)
            handler.send_header("Content-Type", "text/plain")
            handler.end_headers()
            handler.wfile.write(b"first\n")
            self.release.wait(CLIENT_TIMEOUT_SECONDS)
            handler.wfile.write(b"last\n")
            return None

        self.routes = [Route("/stream", {"GET": stream}), echo_route()]

    def open_stream(self, server):
        sock = raw_connection(server, self)
        sock.sendall(b"GET /stream HTTP/1.0\r\n\r\n")
        return sock

    def test_streams_leave_pool_with_own_cap(self):
        server = serve(self, self.routes, workers=1, max_streams=2)
        first = self.open_stream(server)
        second = self.open_stream(server)
        self.assertTrue(wait_until(lambda: server.connection_counts()["streaming"] == 2, 5))
        self.assertIn(b"first", first.recv(4096))

        # The only worker is free again, so ordinary requests are still served.
        connection = http.client.HTTPConnection("127.0.0.1", server.server_address[1],
                                                timeout=CLIENT_TIMEOUT_SECONDS)
        self.addCleanup(connection.close)
        connection.request("GET", "/echo")
        self.assertEqual(connection.getresponse().status, 200)

        third = self.open_stream(server)
        status, _, body = read_response(third)
        self.assertEqual(status, 503)
        self.assertIn("--max-streams", json.loads(body)["error"])

        self.release.set()
        for sock in (first, second):
            data = b""
            while not data.endswith(b"last\n"):
                chunk = sock.recv(4096)
                self.assertTrue(chunk, f"stream ended early after {data!r}")
                data += chunk
            self.assertTrue(is_closed_by_server(sock, 5))
        self.assertTrue(wait_until(lambda: server.connection_counts()["streaming"] == 0, 5))


class DrainTest(unittest.TestCase):
    def test_drain_finishes_in_flight_requests(self):
        started = threading.Event()

        def slow(request):
            started.set()
            time.sleep(0.3)
            return json_response({"done": True})

        server = LunarHTTPServer(("127.0.0.1", 0), [Route("/slow", {"GET": slow}), echo_route()])
        thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                                  daemon=True)
        thread.start()
        self.addCleanup(server.server_close)
        idle = raw_connection(server, self)
        idle.sendall(b"GET /echo HTTP/1.1\r\nHost: t\r\n\r\n")
        self.assertEqual(read_response(idle)[0], 200)
        busy = raw_connection(server, self)
        busy.sendall(b"GET /slow HTTP/1.1\r\nHost: t\r\n\r\n")
        self.assertTrue(started.wait(5))

        server.begin_drain()
        server.shutdown()
        thread.join(CLIENT_TIMEOUT_SECONDS)
        self.assertTrue(server.drain(5))

        status, headers, body = read_response(busy)
        self.assertEqual(status, 200)
        self.assertIn("Connection: close", headers)
        self.assertEqual(json.loads(body), {"done": True})
        self.assertTrue(is_closed_by_server(busy, 5))
        self.assertTrue(is_closed_by_server(idle, 5))
        self.assertEqual(server.connection_counts()["open"], 0)

    def test_drain_timeout_closes_stuck_requests(self):
        release = threading.Event()
        self.addCleanup(release.set)
        started = threading.Event()

        def stuck(request):
            started.set()
            release.wait(CLIENT_TIMEOUT_SECONDS)
            return json_response({})

        server = LunarHTTPServer(("127.0.0.1", 0), [Route("/stuck", {"GET": stuck})])
        thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                                  daemon=True)
        thread.start()
        self.addCleanup(server.server_close)
        sock = raw_connection(server, self)
        sock.sendall(b"GET /stuck HTTP/1.1\r\nHost: t\r\n\r\n")
        self.assertTrue(started.wait(5))
        server.shutdown()
        thread.join(CLIENT_TIMEOUT_SECONDS)
        began = time.monotonic()
        with self.assertLogs("lunar.connections", "WARNING"):
            self.assertFalse(server.drain(0.2))
        self.assertLess(time.monotonic() - began, 2.0)
        self.assertTrue(is_closed_by_server(sock, 5))


class HotSetTest(unittest.TestCase):
    """One worker serves the hot keep-alive connections and gives them up before it would block."""

    def serve_hot(self, routes, **options):
        """Start a server whose served connections stay in the hot set for the whole test."""
        server = serve(self, routes, request_timeout=HOT_REQUEST_TIMEOUT_SECONDS, **options)
        server.linger_seconds = HOT_LINGER_SECONDS
        return server

    def open_hot_connections(self, server, count):
        """Open ``count`` connections, complete one request on each and wait until all are hot."""
        socks = [raw_connection(server, self) for _ in range(count)]
        for sock in socks:
            sock.sendall(GET_INLINE)
        for sock in socks:
            self.assertEqual(read_response(sock)[0], 200)
        self.assertTrue(wait_until(lambda: hot_count(server) == count, 5),
                        f"{hot_count(server)} of {count} connections are in the hot set")
        return socks

    def request_quickly(self, sock, request):
        """Send ``request`` and return its response. Fail unless it arrives within QUICK_RESPONSE_SECONDS."""
        started = time.monotonic()
        sock.sendall(request)
        sock.settimeout(QUICK_RESPONSE_SECONDS)
        try:
            response = read_response(sock)
        except socket.timeout:
            self.fail(f"no response to {request[:30]!r} within {QUICK_RESPONSE_SECONDS} s")
        finally:
            sock.settimeout(CLIENT_TIMEOUT_SECONDS)
        self.assertLess(time.monotonic() - started, QUICK_RESPONSE_SECONDS)
        return response

    def assert_served_quickly(self, socks, rounds=5):
        """Assert that each of ``socks`` receives ``rounds`` echoed bodies.

        All of them together must arrive within QUICK_RESPONSE_SECONDS.
        """
        started = time.monotonic()
        for number in range(rounds):
            for index, sock in enumerate(socks):
                status, _, body = self.request_quickly(sock, post_inline(f"{index}.{number}"))
                self.assertEqual(status, 200)
                self.assertEqual(json.loads(body)["body"], f"{index}.{number}")
        self.assertLess(time.monotonic() - started, QUICK_RESPONSE_SECONDS)

    def test_half_sent_request_does_not_stall_others(self):
        cases = [
            # (what the client stops after, the rest it sends later, the body echoed)
            ("half a body, inline route",
             b"POST /inline HTTP/1.1\r\nHost: t\r\nContent-Length: 10\r\n\r\nab", b"cdefghij",
             "abcdefghij"),
            ("half a body, route not inline",
             b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 10\r\n\r\nab", b"cdefghij",
             "abcdefghij"),
            ("half a head", b"POST /inline HTTP/1.1\r\nHost: t\r\nContent-Le",
             b"ngth: 2\r\n\r\nhi", "hi"),
            ("half a request line", b"POST /inl", b"ine HTTP/1.1\r\nHost: t\r\nContent-Length: 2\r\n\r\nhi",
             "hi"),
        ]
        for name, first_part, rest, expected_body in cases:
            with self.subTest(name):
                server = self.serve_hot([inline_echo_route(), echo_route()])
                stalled, *others = self.open_hot_connections(server, 3)
                stalled.sendall(first_part)
                # A worker now waits for the rest of the request.
                self.assertTrue(wait_until(lambda: server.connection_counts()["active"] == 1, 5),
                                server.connection_counts())

                self.assert_served_quickly(others)

                stalled.sendall(rest)
                status, _, body = read_response(stalled)
                self.assertEqual(status, 200)
                self.assertEqual(json.loads(body)["body"], expected_body)

    def test_unread_large_response_does_not_stall_others(self):
        def large(request):
            return Response(HTTPStatus.OK, b"x" * LARGE_BODY_BYTES, {"Content-Type": "text/plain"})

        server = self.serve_hot([Route("/large", {"GET": large}, inline=True), inline_echo_route()])
        slow_reader, *others = self.open_hot_connections(server, 3)
        # A fixed buffer stops Linux from growing it, so the server's write blocks.
        slow_reader.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, SMALL_RECEIVE_BUFFER_BYTES)
        slow_reader.sendall(b"GET /large HTTP/1.1\r\nHost: t\r\n\r\n")
        self.assertTrue(wait_until(lambda: server.connection_counts()["active"] == 1, 5),
                        server.connection_counts())

        self.assert_served_quickly(others)

        status, _, body = read_response(slow_reader)
        self.assertEqual(status, 200)
        self.assertEqual(len(body), LARGE_BODY_BYTES)
        self.assertEqual(self.request_quickly(slow_reader, GET_INLINE)[0], 200)

    def test_slow_route_does_not_delay_inline_route(self):
        started = threading.Event()
        release = threading.Event()

        def slow(request):
            started.set()
            release.wait(CLIENT_TIMEOUT_SECONDS)
            return json_response({"slow": True})

        server = self.serve_hot([Route("/slow", {"GET": slow}), inline_echo_route()])
        self.addCleanup(release.set)
        slow_client, quick_client = self.open_hot_connections(server, 2)
        slow_client.sendall(b"GET /slow HTTP/1.1\r\nHost: t\r\n\r\n")
        self.assertTrue(started.wait(5))

        # The slow endpoint blocks until the inline request has its response.
        self.assertEqual(self.request_quickly(quick_client, GET_INLINE)[0], 200)
        release.set()
        status, _, body = read_response(slow_client)
        self.assertEqual(status, 200)
        self.assertEqual(json.loads(body), {"slow": True})

    def test_inline_route_releasing_hot_set_lets_others_run(self):
        started = threading.Event()
        release = threading.Event()

        def releasing(request):
            request.release_hot_set()
            started.set()
            release.wait(CLIENT_TIMEOUT_SECONDS)
            return json_response({"released": True})

        server = self.serve_hot([Route("/releasing", {"GET": releasing}, inline=True),
                                 inline_echo_route()])
        self.addCleanup(release.set)
        busy, waiting = self.open_hot_connections(server, 2)
        busy.sendall(b"GET /releasing HTTP/1.1\r\nHost: t\r\n\r\n")
        self.assertTrue(started.wait(5))

        self.assertEqual(self.request_quickly(waiting, GET_INLINE)[0], 200)
        release.set()
        status, _, body = read_response(busy)
        self.assertEqual(status, 200)
        self.assertEqual(json.loads(body), {"released": True})

    def test_many_hot_connections_share_one_worker(self):
        count = 20
        threads = []
        server = self.serve_hot([inline_echo_route(threads)])
        socks = self.open_hot_connections(server, count)
        del threads[:]  # the first requests ran on whichever worker accepted each connection

        random_order = random.Random(20240601)
        for number in range(5):
            senders = random_order.sample(range(count), count)
            for index in senders:
                socks[index].sendall(post_inline(f"{index}.{number}"))
            for index in random_order.sample(senders, count):
                status, _, body = read_response(socks[index])
                self.assertEqual(status, 200)
                self.assertEqual(json.loads(body)["body"], f"{index}.{number}")

        self.assertEqual(len(threads), 5 * count)
        self.assertEqual(len(set(threads)), 1, "hot connections were served by several threads")
        self.assertTrue(wait_until(lambda: server.connection_counts()["idle"] == count
                                   and server.connection_counts()["active"] == 0, 5),
                        server.connection_counts())
        counts = server.connection_counts()
        self.assertEqual(counts["open"], count)
        self.assertEqual(counts["idle"], count)
        self.assertEqual(counts["active"], 0)

    def test_drain_closes_idle_hot_connections_at_once(self):
        server = self.serve_hot([inline_echo_route()])
        socks = self.open_hot_connections(server, 3)

        server.begin_drain()
        for sock in socks:
            self.assertTrue(is_closed_by_server(sock, QUICK_RESPONSE_SECONDS))
        server.shutdown()
        began = time.monotonic()
        self.assertTrue(server.drain(5))
        self.assertLess(time.monotonic() - began, QUICK_RESPONSE_SECONDS)
        self.assertEqual(server.connection_counts()["open"], 0)

    def test_drain_closes_hot_set_after_owner_request(self):
        started = threading.Event()
        release = threading.Event()

        def busy(request):
            started.set()
            release.wait(CLIENT_TIMEOUT_SECONDS)
            return json_response({"done": True})

        server = self.serve_hot([Route("/busy", {"GET": busy}, inline=True), inline_echo_route()])
        self.addCleanup(release.set)
        owner_client, *idle = self.open_hot_connections(server, 3)
        owner_client.sendall(b"GET /busy HTTP/1.1\r\nHost: t\r\n\r\n")
        self.assertTrue(started.wait(5))

        server.begin_drain()
        server.shutdown()
        release.set()
        self.assertTrue(server.drain(5))
        status, headers, body = read_response(owner_client)
        self.assertEqual(status, 200)
        self.assertIn("Connection: close", headers)
        self.assertEqual(json.loads(body), {"done": True})
        for sock in [owner_client, *idle]:
            self.assertTrue(is_closed_by_server(sock, QUICK_RESPONSE_SECONDS))
        self.assertEqual(server.connection_counts()["open"], 0)

    def test_stream_from_hot_connection_does_not_stall_others(self):
        release = threading.Event()

        def stream(request):
            def chunks():
                yield b"first\n"
                release.wait(CLIENT_TIMEOUT_SECONDS)
                yield b"last\n"
            return StreamingResponse(HTTPStatus.OK, {"Content-Type": "text/plain"}, chunks())

        server = self.serve_hot([Route("/stream", {"GET": stream}, inline=True),
                                 inline_echo_route()])
        self.addCleanup(release.set)
        streaming, *others = self.open_hot_connections(server, 3)
        streaming.sendall(b"GET /stream HTTP/1.1\r\nHost: t\r\n\r\n")
        reader = _READERS[streaming]  # open_hot_connections read a response through it
        self.assertEqual(reader.readline().split(b" ", 2)[1], b"200")
        while reader.readline() not in (b"\r\n", b""):
            pass
        self.assertEqual(reader.readline(), b"first\n")
        self.assertTrue(wait_until(lambda: server.connection_counts()["streaming"] == 1, 5))

        self.assert_served_quickly(others)

        release.set()
        self.assertEqual(reader.readline(), b"last\n")
        self.assertEqual(reader.readline(), b"")
        self.assertTrue(wait_until(lambda: server.connection_counts()["streaming"] == 0, 5))

    def test_pipelined_requests_on_hot_connection_are_answered(self):
        server = self.serve_hot([inline_echo_route()])
        pipelining, other = self.open_hot_connections(server, 2)
        pipelining.sendall(GET_INLINE + post_inline("second"))
        self.assertEqual(read_response(pipelining)[0], 200)
        status, _, body = read_response(pipelining)
        self.assertEqual(status, 200)
        self.assertEqual(json.loads(body)["body"], "second")

        # The start of the next request is buffered with this one, where a selector cannot detect it.
        pipelining.sendall(GET_INLINE + b"POST /inl")
        self.assertEqual(read_response(pipelining)[0], 200)
        self.assertTrue(wait_until(lambda: server.connection_counts()["active"] == 1, 5),
                        server.connection_counts())
        self.assertEqual(self.request_quickly(other, GET_INLINE)[0], 200)
        pipelining.sendall(b"ine HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nthird")
        status, _, body = read_response(pipelining)
        self.assertEqual(status, 200)
        self.assertEqual(json.loads(body)["body"], "third")


if __name__ == "__main__":
    unittest.main()
