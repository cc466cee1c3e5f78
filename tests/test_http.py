"""Tests for the HTTP service: ``lunar.web`` and ``lunar.api`` behind a real socket.

Each test starts its own ``LunarHTTPServer`` on 127.0.0.1 port 0 (IPv6
tests use ::1 and skip when the machine has no IPv6 loopback) and talks to
it with ``http.client``, or with a raw socket for requests ``http.client``
cannot send. Every socket has a timeout, so a hung server fails the test.
"""

import contextlib
import http.client
import socket
import time
import unittest
from typing import Any, Optional

from lunar.api import FleetApi
from lunar.fleet import ControlCenter
from lunar.web import JSON_CONTENT_TYPE, MAX_BODY_BYTES, LunarHTTPServer, Route
from tests.support import (
    ROCKET_KEYS,
    TIMEOUT_SECONDS,
    RecordingJournal,
    Reply,
    RunningServer,
    encode,
    error_field,
    exchange_raw,
    get_json,
    invalid_message_cases,
    launch_message,
    make_message,
    parse_response,
    post_json,
    read_until_closed,
    request,
)

IDLE_TIMEOUT = 0.5  # seconds; the test servers' idle_timeout

GET_ROUTE_METHODS = {"GET", "HEAD", "OPTIONS"}
MESSAGES_ROUTE_METHODS = {"POST", "OPTIONS"}


def allowed_methods(reply: Reply) -> set:
    return {method.strip() for method in reply.headers.get("Allow", "").split(",") if method.strip()}


class HttpTestCase(unittest.TestCase):
    """Base class: a fresh server and one keep-alive connection per test."""

    def setUp(self) -> None:
        self.journal = RecordingJournal()
        self.control_center = ControlCenter(self.journal)
        self.server = self.start_server(self.control_center)
        self.connection = self.server.connect()
        self.addCleanup(self.connection.close)

    def start_server(self, control_center: Optional[ControlCenter] = None,
                     **options: Any) -> RunningServer:
        options.setdefault("idle_timeout", IDLE_TIMEOUT)
        server = RunningServer(control_center, **options)
        self.addCleanup(server.stop)
        return server

    def post(self, document: Any, **options: Any) -> Reply:
        return post_json(self.connection, document, **options)

    def get(self, path: str) -> Reply:
        return get_json(self.connection, path)

    def assertAccepted(self, reply: Reply) -> None:
        self.assertEqual(reply.status, 202, reply.body)
        self.assertEqual(reply.body, b"")
        self.assertEqual(reply.headers["Content-Length"], "0")

    def assertJson(self, reply: Reply, status: int) -> Any:
        """Assert the status and JSON content type, and return the decoded body."""
        self.assertEqual(reply.status, status, reply.body[:300])
        self.assertEqual(reply.headers["Content-Type"], JSON_CONTENT_TYPE)
        self.assertEqual(reply.headers["Content-Length"], str(len(reply.body)))
        return reply.json()

    def assertJsonError(self, reply: Reply, status: int) -> str:
        """Assert a JSON ``{"error": ...}`` response and return the error text."""
        document = self.assertJson(reply, status)
        self.assertEqual(set(document), {"error"})
        self.assertIsInstance(document["error"], str)
        return document["error"]


class PostMessageTest(HttpTestCase):

    def test_new_message_accepted(self):
        reply = self.post(launch_message("r1", speed=500))

        self.assertAccepted(reply)
        self.assertNotIn("Content-Type", reply.headers)
        self.assertEqual(self.control_center.rocket("r1")["speed"], 500)

    def test_buffered_message_accepted(self):
        reply = self.post(make_message("r1", 3, "RocketSpeedIncreased", by=5))

        self.assertAccepted(reply)
        self.assertEqual(self.control_center.rocket("r1")["pendingMessages"], 1)

    def test_duplicate_is_acknowledged_and_ignored(self):
        self.assertAccepted(self.post(launch_message("r1", speed=500)))

        reply = self.post(launch_message("r1", speed=999))

        self.assertAccepted(reply)
        self.assertEqual(self.control_center.rocket("r1")["speed"], 500)

    def test_unknown_type_accepted(self):
        self.post(launch_message("r1", 1))

        with self.assertLogs("lunar.fleet", "WARNING"):
            reply = self.post(make_message("r1", 2, "RocketRefuelled", fuel=80))

        self.assertAccepted(reply)
        self.assertEqual(self.control_center.rocket("r1")["lastMessageNumber"], 2)

    def test_invalid_body_rejected_naming_field(self):
        for case in invalid_message_cases():
            with self.subTest(case.description):
                reply = self.post(case.body)
                error = self.assertJsonError(reply, 400)
                self.assertEqual(error_field(error), case.field, error)

        self.assertEqual(self.control_center.rockets(), [])
        self.assertEqual(self.journal.records, [])

    def test_rejected_message_keeps_connection(self):
        self.post(b"{")
        first_socket = self.connection.sock

        reply = self.post(launch_message("r1"))

        self.assertAccepted(reply)
        self.assertIs(self.connection.sock, first_socket)

    def test_any_content_type_accepted(self):
        content_types = ["application/json", "application/json; charset=utf-8", "text/plain",
                         "application/x-www-form-urlencoded", "application/octet-stream",
                         "nonsense"]
        for number, content_type in enumerate(content_types, start=1):
            with self.subTest(content_type):
                reply = self.post(launch_message(f"r{number}"),
                                  headers={"Content-Type": content_type})
                self.assertAccepted(reply)

    def test_missing_content_type_accepted(self):
        self.connection.request("POST", "/messages", body=encode(launch_message("r1")))
        response = self.connection.getresponse()
        response.read()

        self.assertEqual(response.status, 202)
        self.assertIsNotNone(self.control_center.rocket("r1"))

    def test_body_of_exactly_limit_accepted(self):
        encoded = encode(launch_message("r1"))
        body = encoded[:-1] + b" " * (MAX_BODY_BYTES - len(encoded)) + b"}"
        self.assertEqual(len(body), MAX_BODY_BYTES)

        self.assertAccepted(self.post(body))

    def test_body_over_limit_rejected(self):
        raw = exchange_raw(self.server, (
            "POST /messages HTTP/1.1\r\nHost: test\r\n"
            f"Content-Length: {MAX_BODY_BYTES + 1}\r\n\r\n").encode("ascii"))

        reply = parse_response(raw)
        error = self.assertJsonError(reply, 413)
        self.assertIn(str(MAX_BODY_BYTES), error)
        self.assertEqual(reply.headers["Connection"], "close")

    def test_huge_content_length_rejected(self):
        raw = exchange_raw(self.server, (
            "POST /messages HTTP/1.1\r\nHost: test\r\n"
            f"Content-Length: {'9' * 5000}\r\n\r\n").encode("ascii"))

        self.assertJsonError(parse_response(raw), 413)

    def test_chunked_body_over_limit_rejected(self):
        raw = exchange_raw(self.server, (
            "POST /messages HTTP/1.1\r\nHost: test\r\nTransfer-Encoding: chunked\r\n\r\n"
            f"{MAX_BODY_BYTES + 1:x}\r\n").encode("ascii"))

        self.assertJsonError(parse_response(raw), 413)

    def test_missing_content_length_rejected(self):
        self.connection.putrequest("POST", "/messages")
        self.connection.endheaders()
        response = self.connection.getresponse()
        reply = Reply(response.status, response.headers, response.read())

        error = self.assertJsonError(reply, 411)
        self.assertIn("Content-Length", error)
        self.assertEqual(reply.headers["Connection"], "close")

    def test_invalid_content_length_rejected(self):
        values = ["-1", "abc", "1.5", "", "+5", "0x10", "5 5", "1e3", "\xb2", "\xb9\xb2"]
        for value in values:
            with self.subTest(value=value):
                connection = self.server.connect()
                self.addCleanup(connection.close)
                connection.putrequest("POST", "/messages")
                connection.putheader("Content-Length", value)
                connection.endheaders()
                response = connection.getresponse()
                reply = Reply(response.status, response.headers, response.read())
                error = self.assertJsonError(reply, 400)
                self.assertEqual(error_field(error), "Content-Length")

    def test_short_body_rejected(self):
        with self.server.raw_socket() as sock:
            sock.sendall(b"POST /messages HTTP/1.1\r\nHost: test\r\nContent-Length: 100\r\n\r\n"
                         b'{"metadata"')
            sock.shutdown(socket.SHUT_WR)
            raw = read_until_closed(sock)

        error = self.assertJsonError(parse_response(raw), 400)
        self.assertIn("11 of 100", error)

    def test_chunked_body_decoded(self):
        body = encode(launch_message("r1", speed=700))
        pieces = [body[:10], body[10:50], body[50:]]

        reply = request(self.connection, "POST", "/messages", body=iter(pieces))

        self.assertAccepted(reply)
        self.assertEqual(self.control_center.rocket("r1")["speed"], 700)

    def test_chunked_extensions_and_trailers_skipped(self):
        body = encode(launch_message("r1", speed=700))
        first, second = body[:20], body[20:]
        chunked = (f"{len(first):x};name=value\r\n".encode("ascii") + first + b"\r\n"
                   + f"{len(second):X}\r\n".encode("ascii") + second + b"\r\n"
                   + b"0\r\nX-Checksum: 1234\r\n\r\n")

        raw = exchange_raw(self.server, b"POST /messages HTTP/1.1\r\nHost: test\r\n"
                           b"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n" + chunked)

        self.assertAccepted(parse_response(raw))
        self.assertEqual(self.control_center.rocket("r1")["speed"], 700)

    def test_ambiguous_body_length_rejected(self):
        body = encode(launch_message("r1"))
        cases = {
            "conflicting lengths": f"Content-Length: {len(body)}\r\nContent-Length: 2\r\n",
            "length and chunked": f"Content-Length: {len(body)}\r\nTransfer-Encoding: chunked\r\n",
        }
        for description, framing in cases.items():
            with self.subTest(description):
                raw = exchange_raw(self.server, (
                    "POST /messages HTTP/1.1\r\nHost: test\r\n" + framing + "\r\n"
                ).encode("ascii") + body)

                reply = parse_response(raw)
                self.assertJsonError(reply, 400)
                self.assertEqual(reply.headers["Connection"], "close")
        self.assertIsNone(self.control_center.rocket("r1"))

    def test_same_length_twice_accepted(self):
        body = encode(launch_message("r1"))
        raw = exchange_raw(self.server, (
            "POST /messages HTTP/1.1\r\nHost: test\r\nConnection: close\r\n"
            f"Content-Length: {len(body)}\r\nContent-Length: {len(body)}\r\n\r\n"
        ).encode("ascii") + body)

        self.assertEqual(parse_response(raw).status, 202)

    def test_oversized_body_refused_before_100_continue(self):
        raw = exchange_raw(self.server, (
            "POST /messages HTTP/1.1\r\nHost: test\r\nExpect: 100-continue\r\n"
            f"Content-Length: {MAX_BODY_BYTES + 1}\r\n\r\n").encode("ascii"))

        self.assertNotIn(b"100 Continue", raw)
        self.assertJsonError(parse_response(raw), 413)

    def test_expect_100_gets_continue_then_202(self):
        body = encode(launch_message("r1"))
        raw = exchange_raw(self.server, (
            "POST /messages HTTP/1.1\r\nHost: test\r\nExpect: 100-continue\r\nConnection: close\r\n"
            f"Content-Length: {len(body)}\r\n\r\n").encode("ascii") + body)

        self.assertTrue(raw.startswith(b"HTTP/1.1 100 Continue\r\n\r\n"))
        self.assertEqual(parse_response(raw[len(b"HTTP/1.1 100 Continue\r\n\r\n"):]).status, 202)

    def test_expect_100_on_wrong_method_gets_405(self):
        raw = exchange_raw(self.server, (
            "POST /rockets HTTP/1.1\r\nHost: test\r\nExpect: 100-continue\r\n"
            f"Content-Length: {MAX_BODY_BYTES + 1}\r\n\r\n").encode("ascii"))

        self.assertNotIn(b"100 Continue", raw)
        self.assertJsonError(parse_response(raw), 405)

    def test_malformed_chunk_size_rejected(self):
        for size_line in (b"zz", b"0x10", b"+5", b"1_0", b"-1", b""):
            with self.subTest(size_line):
                raw = exchange_raw(self.server, b"POST /messages HTTP/1.1\r\nHost: test\r\n"
                                   b"Transfer-Encoding: chunked\r\n\r\n" + size_line + b"\r\n")

                error = self.assertJsonError(parse_response(raw), 400)
                self.assertIn("chunk", error)

    def test_unsupported_transfer_encoding_rejected(self):
        raw = exchange_raw(self.server, b"POST /messages HTTP/1.1\r\nHost: test\r\n"
                           b"Transfer-Encoding: gzip\r\n\r\n")

        error = self.assertJsonError(parse_response(raw), 501)
        self.assertIn("gzip", error)

    def test_journal_failure_returns_503(self):
        self.journal.fail_with("disk full")

        with self.assertLogs("lunar.api", "ERROR") as logs:
            reply = self.post(launch_message("r1"))

        error = self.assertJsonError(reply, 503)
        self.assertIn("disk full", error)
        self.assertIn("r1", logs.output[0])
        self.assertIsNone(self.control_center.rocket("r1"))

    def test_journal_recovery_accepts_retry(self):
        self.journal.fail_with()
        with self.assertLogs("lunar.api", "ERROR"):
            self.post(launch_message("r1"))
        self.journal.failure = None

        reply = self.post(launch_message("r1"))

        self.assertAccepted(reply)
        self.assertEqual(self.control_center.rocket("r1")["status"], "launched")


class QueryTest(HttpTestCase):

    def setUp(self) -> None:
        super().setUp()
        fleet = [
            launch_message("utc", speed=500.0, mission="ARTEMIS",
                           message_time_text="2025-04-02T09:00:00Z"),
            launch_message("plus-two", speed=512.5, mission="Mars Return/2",
                           message_time_text="2025-04-02T10:30:00+02:00"),
            launch_message("a b/c", speed=1, mission="artemis",
                           message_time_text="2025-04-02T09:00:00.000000001Z"),
            launch_message("umlaut", speed=2, mission="Mondfähre",
                           message_time_text="2025-04-02T12:00:00Z"),
            make_message("waiting", 2, "RocketSpeedIncreased", by=1),
        ]
        for document in fleet:
            self.assertAccepted(self.post(document))

    def channels(self, rockets: Any) -> list:
        return [rocket["channel"] for rocket in rockets]

    def test_rockets_listed_in_launch_order(self):
        rockets = self.assertJson(self.get("/rockets"), 200)

        self.assertEqual(self.channels(rockets), ["plus-two", "utc", "a b/c", "umlaut", "waiting"])

    def test_rocket_objects_have_all_keys(self):
        rockets = self.assertJson(self.get("/rockets"), 200)

        for rocket in rockets:
            with self.subTest(rocket["channel"]):
                self.assertEqual(set(rocket), ROCKET_KEYS)

    def test_integral_speed_rendered_as_integer(self):
        reply = self.get("/rockets/utc")

        self.assertIn(b'"speed":500,', reply.body)
        self.assertIn(b'"speed":512.5,', self.get("/rockets/plus-two").body)

    def test_rocket_by_channel(self):
        rocket = self.assertJson(self.get("/rockets/plus-two"), 200)

        self.assertEqual(rocket["channel"], "plus-two")
        self.assertEqual(rocket["launchTime"], "2025-04-02T10:30:00+02:00")
        self.assertEqual(rocket["mission"], "Mars Return/2")

    def test_pending_rocket_by_channel(self):
        rocket = self.assertJson(self.get("/rockets/waiting"), 200)

        self.assertEqual(rocket["status"], "pending")
        self.assertEqual(rocket["pendingMessages"], 1)

    def test_channel_percent_decoded(self):
        rocket = self.assertJson(self.get("/rockets/a%20b%2Fc"), 200)

        self.assertEqual(rocket["channel"], "a b/c")

    def test_unknown_channel_not_found(self):
        error = self.assertJsonError(self.get("/rockets/nobody"), 404)

        self.assertIn("nobody", error)

    def test_missions_unique_and_sorted(self):
        missions = self.assertJson(self.get("/missions"), 200)

        self.assertEqual(missions, ["ARTEMIS", "Mars Return/2", "Mondfähre"])

    def test_mission_rockets_match_case_insensitively(self):
        for path in ("/missions/ARTEMIS", "/missions/artemis", "/missions/ArTeMiS"):
            with self.subTest(path):
                rockets = self.assertJson(self.get(path), 200)
                self.assertEqual(self.channels(rockets), ["utc", "a b/c"])

    def test_mission_percent_decoded_after_split(self):
        rockets = self.assertJson(self.get("/missions/Mars%20Return%2F2"), 200)

        self.assertEqual(self.channels(rockets), ["plus-two"])

    def test_unescaped_slash_splits_path(self):
        self.assertJsonError(self.get("/missions/Mars%20Return/2"), 404)

    def test_non_ascii_mission(self):
        rockets = self.assertJson(self.get("/missions/Mondf%C3%A4hre"), 200)

        self.assertEqual(self.channels(rockets), ["umlaut"])
        self.assertIn("Mondfähre".encode("utf-8"), self.get("/missions").body)

    def test_unknown_mission_not_found(self):
        error = self.assertJsonError(self.get("/missions/APOLLO"), 404)

        self.assertIn("APOLLO", error)

    def test_invalid_percent_encoding_rejected(self):
        for path in ("/missions/%FF", "/rockets?mission=%FF"):
            with self.subTest(path):
                error = self.assertJsonError(self.get(path), 400)

                self.assertIn("percent", error)

    def test_query_string_does_not_change_route(self):
        cases = [
            ("/rockets?sort=launchTime&order=asc", "/rockets"),
            ("/rockets/utc?", "/rockets/utc"),
            ("/missions?", "/missions"),
            ("/missions/artemis?order=asc", "/missions/artemis"),
        ]
        for path, plain_path in cases:
            with self.subTest(path):
                reply = self.get(path)
                self.assertEqual(reply.status, 200)
                self.assertEqual(reply.body, self.get(plain_path).body)

    def test_empty_fleet_lists_nothing(self):
        server = self.start_server()
        with contextlib.closing(server.connect()) as connection:
            rockets = self.assertJson(get_json(connection, "/rockets"), 200)
            missions = self.assertJson(get_json(connection, "/missions"), 200)

        self.assertEqual(rockets, [])
        self.assertEqual(missions, [])


class RoutingTest(HttpTestCase):

    def test_unknown_path_not_found(self):
        for path in ("/", "/nothing", "/rockets/a/b", "/messages/1", "/missions/a/b",
                     "/ROCKETS", "/rocket"):
            with self.subTest(path):
                error = self.assertJsonError(self.get(path), 404)
                self.assertIn(path.split("?")[0], error)

    def test_wrong_method_not_allowed(self):
        cases = [
            ("POST", "/rockets", GET_ROUTE_METHODS),
            ("PUT", "/rockets/r1", GET_ROUTE_METHODS),
            ("DELETE", "/missions", GET_ROUTE_METHODS),
            ("PATCH", "/missions/ARTEMIS", GET_ROUTE_METHODS),
            ("GET", "/messages", MESSAGES_ROUTE_METHODS),
            ("HEAD", "/messages", MESSAGES_ROUTE_METHODS),
            ("PUT", "/messages", MESSAGES_ROUTE_METHODS),
            ("DELETE", "/messages", MESSAGES_ROUTE_METHODS),
            ("BREW", "/rockets", GET_ROUTE_METHODS),
            ("BREW", "/messages", MESSAGES_ROUTE_METHODS),
            ("TRACE", "/missions/x", GET_ROUTE_METHODS),
            ("post", "/messages", MESSAGES_ROUTE_METHODS),
        ]
        for method, path, allowed in cases:
            with self.subTest(method=method, path=path):
                reply = request(self.connection, method, path)
                self.assertEqual(reply.status, 405)
                self.assertEqual(allowed_methods(reply), allowed)
                if method != "HEAD":
                    error = self.assertJsonError(reply, 405)
                    self.assertIn(method, error)

    def test_wrong_method_with_body_closes_connection(self):
        # The unread body must not be parsed as a second request.
        smuggled = b"GET /missions HTTP/1.1\r\nHost: test\r\n\r\n"
        for path in ("/rockets", "/nowhere"):
            with self.subTest(path):
                raw = exchange_raw(self.server, (
                    f"POST {path} HTTP/1.1\r\nHost: test\r\n"
                    f"Content-Length: {len(smuggled)}\r\n\r\n").encode("ascii") + smuggled)
                self.assertEqual(raw.count(b"HTTP/1.1 "), 1, raw)
                self.assertEqual(parse_response(raw).headers["Connection"], "close")

    def test_options_lists_allowed_methods(self):
        for path, allowed in (("/rockets", GET_ROUTE_METHODS), ("/messages", MESSAGES_ROUTE_METHODS)):
            with self.subTest(path):
                reply = request(self.connection, "OPTIONS", path)
                self.assertEqual(reply.status, 204)
                self.assertEqual(allowed_methods(reply), allowed)
                self.assertNotIn("Content-Length", reply.headers)

    def test_head_matches_get_without_body(self):
        self.post(launch_message("r1", mission="ARTEMIS"))
        for path in ("/rockets", "/rockets/r1", "/missions", "/missions/ARTEMIS",
                     "/rockets/nobody", "/missions/none", "/nothing"):
            with self.subTest(path):
                get_reply = self.get(path)
                head_reply = request(self.connection, "HEAD", path)
                self.assertEqual(head_reply.status, get_reply.status)
                self.assertEqual(head_reply.body, b"")
                self.assertEqual(head_reply.headers["Content-Type"], JSON_CONTENT_TYPE)
                self.assertEqual(head_reply.headers["Content-Length"],
                                 get_reply.headers["Content-Length"])

    def test_malformed_request_line_rejected(self):
        cases = [
            (b"NONSENSE\r\n", 400),
            (b"GET /rockets HTTP/1.1 extra\r\n", 400),
            (b"GET /a b HTTP/1.1\r\n\r\n", 400),
            (b"GET /rockets HTTP/x.y\r\n", 400),
            (b"POST /messages\r\n", 400),
            (b"GET /rockets HTTP/2.0\r\n\r\n", 505),
        ]
        for line, status in cases:
            with self.subTest(line=line):
                raw = exchange_raw(self.server, line)
                self.assertTrue(raw.startswith(b"HTTP/1."), raw[:80])
                self.assertJsonError(parse_response(raw), status)

    def test_request_line_too_long_rejected(self):
        line = b"GET /" + b"a" * 65532  # 65,537 bytes without a line end, one past the limit

        raw = exchange_raw(self.server, line)

        self.assertJsonError(parse_response(raw), 414)


def fail_unexpectedly(request: Any) -> Any:
    raise RuntimeError("secret detail 4711")


class ServerErrorTest(HttpTestCase):

    def assertGenericServerError(self, reply: Reply) -> None:
        error = self.assertJsonError(reply, 500)
        self.assertIn("internal server error", error)
        self.assertNotIn(b"secret", reply.body)
        self.assertNotIn(b"Traceback", reply.body)
        self.assertNotIn(b"RuntimeError", reply.body)

    def test_failing_endpoint_returns_500(self):
        routes = FleetApi(self.control_center).routes() + [Route("/boom", {"GET": fail_unexpectedly})]
        server = self.start_server(routes=routes)

        with contextlib.closing(server.connect()) as connection:
            with self.assertLogs("lunar.web", "ERROR") as logs:
                reply = get_json(connection, "/boom")
            after = get_json(connection, "/rockets")

        self.assertGenericServerError(reply)
        self.assertIn("/boom", logs.output[0])
        self.assertIn("Traceback", logs.output[0])
        self.assertIn("secret detail 4711", logs.output[0])
        self.assertEqual(after.status, 200, "the connection must stay usable after a 500")

    def test_failing_control_center_returns_500(self):
        def fail(*args):
            raise RuntimeError("secret detail 4711")

        self.control_center.rockets = fail
        self.control_center.snapshot = fail
        self.control_center.receive = fail

        for method, path, body in (("GET", "/rockets", None),
                                   ("POST", "/messages", encode(launch_message("r1")))):
            with self.subTest(method=method):
                with self.assertLogs("lunar.web", "ERROR") as logs:
                    reply = request(self.connection, method, path, body)
                self.assertGenericServerError(reply)
                self.assertIn("secret detail 4711", logs.output[0])


class ConnectionTest(HttpTestCase):

    def test_keep_alive_reuses_connection(self):
        replies = [self.post(launch_message("r1", mission="ARTEMIS"))]
        first_socket = self.connection.sock
        replies.append(self.get("/rockets"))
        replies.append(self.post(make_message("r1", 2, "RocketSpeedIncreased", by=1)))
        replies.append(self.get("/rockets/nobody"))
        replies.append(request(self.connection, "HEAD", "/missions"))
        replies.append(self.post(b"42"))
        replies.append(self.get("/missions/artemis"))

        self.assertEqual([reply.status for reply in replies], [202, 200, 202, 404, 200, 400, 200])
        self.assertIs(self.connection.sock, first_socket)
        self.assertEqual(replies[0].headers["Content-Length"], "0")
        self.assertEqual(replies[2].headers["Content-Length"], "0")
        self.assertNotIn("Connection", replies[-1].headers)

    def test_pipelined_requests_answered_in_order(self):
        raw = exchange_raw(self.server, b"GET /rockets/nobody HTTP/1.1\r\nHost: test\r\n\r\n"
                                        b"GET /rockets HTTP/1.1\r\nHost: test\r\n"
                                        b"Connection: close\r\n\r\n")

        first = raw.find(b"HTTP/1.1 404")
        second = raw.find(b"HTTP/1.1 200")
        self.assertGreaterEqual(first, 0)
        self.assertGreater(second, first)

    def test_idle_connection_closed_after_timeout(self):
        with self.server.raw_socket() as sock:
            sock.sendall(b"GET /rockets HTTP/1.1\r\nHost: test\r\n\r\n")
            response = http.client.HTTPResponse(sock, method="GET")
            response.begin()
            response.read()
            idle_since = time.monotonic()
            remaining = read_until_closed(sock)
            idle_seconds = time.monotonic() - idle_since

        self.assertEqual(response.status, 200)
        self.assertEqual(remaining, b"")
        self.assertGreater(idle_seconds, IDLE_TIMEOUT * 0.5)
        self.assertLess(idle_seconds, IDLE_TIMEOUT + 3)

    def test_silent_connection_closed_after_timeout(self):
        with self.server.raw_socket() as sock:
            connected_at = time.monotonic()
            remaining = read_until_closed(sock)
            silent_seconds = time.monotonic() - connected_at

        self.assertEqual(remaining, b"")
        self.assertGreater(silent_seconds, IDLE_TIMEOUT * 0.5)
        self.assertLess(silent_seconds, IDLE_TIMEOUT + 3)

    def test_slow_client_does_not_block_others(self):
        # A long idle timeout, so that a server serving one client at a time
        # would keep the other client waiting for seconds.
        server = self.start_server(idle_timeout=5.0)
        half_line = server.raw_socket()
        self.addCleanup(half_line.close)
        half_body = server.raw_socket()
        self.addCleanup(half_body.close)
        half_line.sendall(b"GET /rock")
        half_body.sendall(b"POST /messages HTTP/1.1\r\nHost: test\r\nContent-Length: 500\r\n\r\n{")
        time.sleep(0.1)  # let the server start reading both partial requests

        started = time.monotonic()
        with contextlib.closing(server.connect(timeout=2.0)) as connection:
            posted = post_json(connection, launch_message("r1"))
            listed = get_json(connection, "/rockets")
        elapsed = time.monotonic() - started

        self.assertEqual(posted.status, 202)
        self.assertEqual(listed.status, 200)
        self.assertLess(elapsed, 2.0)

    def test_accepted_sockets_disable_nagle(self):
        class RecordingServer(LunarHTTPServer):
            nodelay_values = []

            def finish_request(self, request, client_address):
                super().finish_request(request, client_address)
                self.nodelay_values.append(
                    request.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))

        server = self.start_server(server_class=RecordingServer)
        with contextlib.closing(server.connect()) as connection:
            self.assertEqual(get_json(connection, "/rockets").status, 200)

        deadline = time.monotonic() + TIMEOUT_SECONDS
        while not RecordingServer.nodelay_values and time.monotonic() < deadline:
            time.sleep(0.01)
        self.assertEqual(len(RecordingServer.nodelay_values), 1)
        self.assertNotEqual(RecordingServer.nodelay_values[0], 0)

    def test_stop_with_open_connection_is_prompt(self):
        server = RunningServer(idle_timeout=30.0)
        connection = server.connect()
        self.addCleanup(connection.close)
        self.assertEqual(get_json(connection, "/rockets").status, 200)

        started = time.monotonic()
        server.stop()

        self.assertLess(time.monotonic() - started, 2.0)

    def test_ipv6_loopback(self):
        if not socket.has_ipv6:
            self.skipTest("Python was built without IPv6 support")
        try:
            server = self.start_server(host="::1")
        except OSError as error:
            self.skipTest(f"cannot listen on ::1: {error}")

        with contextlib.closing(server.connect()) as connection:
            posted = post_json(connection, launch_message("r1"))
            rocket = self.assertJson(get_json(connection, "/rockets/r1"), 200)

        self.assertAccepted(posted)
        self.assertEqual(rocket["channel"], "r1")
        self.assertTrue(server.server.url.startswith("http://[::1]:"))


if __name__ == "__main__":
    unittest.main()
