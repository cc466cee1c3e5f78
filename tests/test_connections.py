"""Tests of connection handling: keep-alive, pipelining, timeouts, limits, the pool and draining."""

import errno
import http.client
import json
import socket
import socketserver
import threading
import time
import unittest
import weakref
from http import HTTPStatus
from unittest import mock

from lunar.web import LunarHTTPServer, Response, Route, json_response

try:
    import resource
except ImportError:  # Windows
    resource = None

CLIENT_TIMEOUT_SECONDS = 10.0
IDLE_CONNECTIONS = 2000
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


if __name__ == "__main__":
    unittest.main()
