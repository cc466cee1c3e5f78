"""Tests of the request head parser, on its own and behind a running server.

The unit tests feed ``lunar.request_head`` bytes directly. The HTTP tests
send raw requests to a ``LunarHTTPServer`` on 127.0.0.1, because
``http.client`` cannot send most of the malformed heads under test.
"""

import io
import json
import random
import string
import unittest
from http import HTTPStatus

from lunar.request_head import (
    MAX_HEADER_FIELDS,
    MAX_HEADER_LINE_BYTES,
    InvalidRequestHead,
    RequestHeaders,
    RequestLine,
    connection_options,
    parse_request_line,
    read_headers,
)
from lunar.web import COALESCE_BODY_BYTES, JSON_CONTENT_TYPE, Route, json_response
from tests.support import read_until_closed
from tests.test_connections import echo_route, is_closed_by_server, raw_connection, read_response, serve

# Seconds to watch a kept-alive connection for a close that should not come.
STAYS_OPEN_SECONDS = 0.3
# Seconds the server may take to close a connection that it should close.
CLOSE_TIMEOUT_SECONDS = 5.0
RANDOM_SEED = 20250402


def parse_error(raw_line):
    """Return the ``InvalidRequestHead`` that ``parse_request_line`` raises for ``raw_line``."""
    try:
        parse_request_line(raw_line)
    except InvalidRequestHead as error:
        return error
    raise AssertionError(f"parse_request_line accepted {raw_line!r}")


def read_error(head, **limits):
    """Return the ``InvalidRequestHead`` that ``read_headers`` raises for the header bytes ``head``."""
    try:
        read_headers(io.BytesIO(head), **limits)
    except InvalidRequestHead as error:
        return error
    raise AssertionError(f"read_headers accepted {head!r}")


def field_values(headers_text, name):
    """Return the values of every response header field called ``name`` in ``headers_text``."""
    values = []
    for line in headers_text.split("\r\n"):
        field_name, _, value = line.partition(":")
        if field_name.lower() == name.lower():
            values.append(value.strip())
    return values


def headers_route():
    """Return a route at /headers whose GET returns the request's header fields as [name, value] pairs."""
    return Route("/headers", {"GET": lambda request: json_response(request.headers.items())})


class RequestHeadersTest(unittest.TestCase):
    def setUp(self):
        self.headers = RequestHeaders([
            ("Host", "example.test"),
            ("Accept", "application/json"),
            ("X-Tag", "first"),
            ("x-tag", "second"),
        ])

    def test_get_ignores_name_case(self):
        for name in ("Host", "host", "HOST", "hOsT"):
            with self.subTest(name=name):
                self.assertEqual(self.headers.get(name), "example.test")

    def test_get_returns_first_of_repeated_fields(self):
        self.assertEqual(self.headers.get("X-Tag"), "first")
        self.assertEqual(self.headers["X-TAG"], "first")

    def test_get_all_keeps_repeated_fields_in_order(self):
        self.assertEqual(self.headers.get_all("x-tag"), ["first", "second"])

    def test_missing_field_gets_default(self):
        self.assertIsNone(self.headers.get("Content-Length"))
        self.assertEqual(self.headers.get("Content-Length", "0"), "0")
        self.assertIsNone(self.headers.get_all("Content-Length"))
        self.assertEqual(self.headers.get_all("Content-Length", []), [])

    def test_missing_field_subscript_raises_key_error(self):
        with self.assertRaises(KeyError) as caught:
            self.headers["Content-Length"]
        self.assertEqual(caught.exception.args, ("Content-Length",))

    def test_contains_ignores_name_case(self):
        self.assertIn("accept", self.headers)
        self.assertIn("X-TAG", self.headers)
        self.assertNotIn("Content-Type", self.headers)
        self.assertNotIn(None, self.headers)

    def test_items_keep_order_and_spelling(self):
        self.assertEqual(self.headers.items(), [
            ("Host", "example.test"),
            ("Accept", "application/json"),
            ("X-Tag", "first"),
            ("x-tag", "second"),
        ])
        self.assertEqual(list(self.headers), ["Host", "Accept", "X-Tag", "x-tag"])

    def test_len_counts_every_field(self):
        self.assertEqual(len(self.headers), 4)
        self.assertEqual(len(RequestHeaders()), 0)

    def test_get_all_returns_a_copy(self):
        self.headers.get_all("X-Tag").append("third")
        self.assertEqual(self.headers.get_all("X-Tag"), ["first", "second"])


class ParseRequestLineTest(unittest.TestCase):
    def test_valid_request_lines_are_split(self):
        cases = [
            (b"GET /rockets HTTP/1.1\r\n", RequestLine("GET", "/rockets", "HTTP/1.1")),
            (b"POST /messages HTTP/1.0\r\n", RequestLine("POST", "/messages", "HTTP/1.0")),
            (b"GET /rockets?sort=speed HTTP/1.1\n", RequestLine("GET", "/rockets?sort=speed", "HTTP/1.1")),
            (b"OPTIONS * HTTP/1.1\r\n", RequestLine("OPTIONS", "*", "HTTP/1.1")),
        ]
        for raw_line, expected in cases:
            with self.subTest(raw_line=raw_line):
                self.assertEqual(parse_request_line(raw_line), expected)

    def test_missing_version_gets_400_suggesting_http_1_1(self):
        error = parse_error(b"GET /rockets\r\n")

        self.assertEqual(error.status, HTTPStatus.BAD_REQUEST)
        self.assertIn("no HTTP version", error.message)
        self.assertIn("'GET /rockets HTTP/1.1'", error.message)
        self.assertEqual(str(error), error.message)

    def test_wrong_word_count_gets_400(self):
        for raw_line in (b"GET /a b HTTP/1.1\r\n", b"GET\r\n", b"\r\n"):
            with self.subTest(raw_line=raw_line):
                error = parse_error(raw_line)
                self.assertEqual(error.status, HTTPStatus.BAD_REQUEST)
                self.assertIn("malformed request line", error.message)

    def test_invalid_version_text_gets_400(self):
        for version in (b"HTTP/1", b"http/1.1", b"HTTP/1.1.1", b"HTTP/11", b"FTP/1.1", b"HTTP/x.y"):
            with self.subTest(version=version):
                error = parse_error(b"GET /rockets " + version + b"\r\n")
                self.assertEqual(error.status, HTTPStatus.BAD_REQUEST)
                self.assertIn("invalid HTTP version", error.message)
                self.assertIn(version.decode(), error.message)

    def test_other_major_versions_get_505(self):
        for version in ("HTTP/2.0", "HTTP/3.0", "HTTP/0.9"):
            with self.subTest(version=version):
                error = parse_error(f"GET /rockets {version}\r\n".encode())
                self.assertEqual(error.status, HTTPStatus.HTTP_VERSION_NOT_SUPPORTED)
                self.assertIn(version, error.message)
                self.assertIn("send HTTP/1.1", error.message)

    def test_invalid_method_characters_get_400(self):
        for method in (b"G(T", b"GE\"T", b"G,T", b"G\xe9T", b"GET:"):
            with self.subTest(method=method):
                error = parse_error(method + b" /rockets HTTP/1.1\r\n")
                self.assertEqual(error.status, HTTPStatus.BAD_REQUEST)
                self.assertIn("invalid method", error.message)

    def test_leading_slashes_collapse_to_one(self):
        cases = [
            (b"//x", "/x"),
            (b"///x//y", "/x//y"),
            (b"//", "/"),
            (b"/x//y", "/x//y"),
        ]
        for target, expected in cases:
            with self.subTest(target=target):
                request_line = parse_request_line(b"GET " + target + b" HTTP/1.1\r\n")
                self.assertEqual(request_line.target, expected)


    def test_only_spaces_separate_the_parts(self):
        for separator in (b"\t", b"\xa0", b"\x85", b"\x1f", b"  "):
            with self.subTest(separator=separator):
                error = parse_error(b"GET" + separator + b"/x HTTP/1.1\r\n")

                self.assertEqual(error.status, HTTPStatus.BAD_REQUEST)

    def test_target_outside_visible_ascii_gets_400(self):
        cases = [(b"/caf\xc3\xa9", "/caf%C3%A9"), (b"/a\x7fb", "/a%7Fb"), (b"/a\x01b", "/a%01b")]
        for target, encoded in cases:
            with self.subTest(target=target):
                error = parse_error(b"GET " + target + b" HTTP/1.1\r\n")

                self.assertEqual(error.status, HTTPStatus.BAD_REQUEST)
                self.assertIn(f"must be percent-encoded, as in '{encoded}'", error.message)

    def test_absolute_form_target_becomes_its_path(self):
        cases = [(b"http://example.test/rockets?limit=1", "/rockets?limit=1"),
                 (b"HTTPS://example.test:8000", "/")]
        for target, expected in cases:
            with self.subTest(target=target):
                request_line = parse_request_line(b"GET " + target + b" HTTP/1.1\r\n")

                self.assertEqual(request_line.target, expected)


class ReadHeadersTest(unittest.TestCase):
    def test_fields_are_read_up_to_blank_line(self):
        rfile = io.BytesIO(b"Host: example.test\r\nContent-Length: 4\r\n\r\nbody")

        headers = read_headers(rfile)

        self.assertEqual(headers.items(), [("Host", "example.test"), ("Content-Length", "4")])
        self.assertEqual(rfile.read(), b"body")

    def test_empty_head_gives_no_fields(self):
        self.assertEqual(len(read_headers(io.BytesIO(b"\r\n"))), 0)

    def test_values_lose_surrounding_whitespace(self):
        cases = [
            (b"X-Value:plain\r\n", "plain"),
            (b"X-Value:   spaced   \r\n", "spaced"),
            (b"X-Value:\t tabbed \t\r\n", "tabbed"),
            (b"X-Value: inner  spaces kept\r\n", "inner  spaces kept"),
            (b"X-Value:\r\n", ""),
            (b"X-Value:   \r\n", ""),
        ]
        for line, expected in cases:
            with self.subTest(line=line):
                headers = read_headers(io.BytesIO(line + b"\r\n"))
                self.assertEqual(headers.get("X-Value"), expected)

    def test_folded_line_is_joined_with_space(self):
        head = b"X-Long: first\r\n  second\r\n\tthird \r\nHost: t\r\n\r\n"

        headers = read_headers(io.BytesIO(head))

        self.assertEqual(headers.items(), [("X-Long", "first second third"), ("Host", "t")])

    def test_fold_on_first_line_gets_400(self):
        for head in (b" Host: t\r\n\r\n", b"\tHost: t\r\n\r\n"):
            with self.subTest(head=head):
                error = read_error(head)
                self.assertEqual(error.status, HTTPStatus.BAD_REQUEST)
                self.assertIn("'Host: t' starts with whitespace", error.message)

    def test_line_without_colon_gets_400(self):
        error = read_error(b"Host: t\r\nno colon here\r\n\r\n")

        self.assertEqual(error.status, HTTPStatus.BAD_REQUEST)
        self.assertIn("invalid header field line 'no colon here'", error.message)
        self.assertIn("'Name: value'", error.message)

    def test_whitespace_before_colon_gets_400(self):
        for line in (b"Host : t", b"Host\t: t"):
            with self.subTest(line=line):
                error = read_error(line + b"\r\n\r\n")
                self.assertEqual(error.status, HTTPStatus.BAD_REQUEST)
                self.assertIn("invalid header field line", error.message)

    def test_invalid_field_names_get_400(self):
        for line in (b": no name", b"X(Y): 1", b"X\xe9: 1"):
            with self.subTest(line=line):
                error = read_error(line + b"\r\n\r\n")
                self.assertEqual(error.status, HTTPStatus.BAD_REQUEST)

    def test_maximum_field_count_is_accepted(self):
        head = b"".join(b"X-%d: 1\r\n" % index for index in range(MAX_HEADER_FIELDS)) + b"\r\n"

        self.assertEqual(len(read_headers(io.BytesIO(head))), MAX_HEADER_FIELDS)

    def test_101_fields_get_431(self):
        head = b"".join(b"X-%d: 1\r\n" % index for index in range(101)) + b"\r\n"

        error = read_error(head)

        self.assertEqual(error.status, HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE)
        self.assertIn("more than 100 header fields", error.message)

    def test_folded_lines_do_not_count_as_fields(self):
        head = b"X-A: 1\r\n 2\r\n 3\r\nX-B: 4\r\n\r\n"

        headers = read_headers(io.BytesIO(head), max_fields=2)

        self.assertEqual(headers.items(), [("X-A", "1 2 3"), ("X-B", "4")])

    def test_line_over_limit_gets_431(self):
        at_limit = b"X-Big: " + b"x" * 9 + b"\r\n"  # 18 bytes, the limit counts the CRLF
        headers = read_headers(io.BytesIO(at_limit + b"\r\n"), max_line_bytes=18)
        self.assertEqual(headers.get("X-Big"), "x" * 9)

        error = read_error(b"X-Big: " + b"x" * 10 + b"\r\n\r\n", max_line_bytes=18)

        self.assertEqual(error.status, HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE)
        self.assertIn("exceeds 18 bytes", error.message)

    def test_default_line_limit_is_65536_bytes(self):
        self.assertEqual(MAX_HEADER_LINE_BYTES, 65536)
        value_bytes = MAX_HEADER_LINE_BYTES - len(b"X-Big: \r\n")
        at_limit = b"X-Big: " + b"x" * value_bytes + b"\r\n"
        headers = read_headers(io.BytesIO(at_limit + b"\r\n"))
        self.assertEqual(len(headers.get("X-Big")), value_bytes)

        error = read_error(b"X-Big: x" + b"x" * value_bytes + b"\r\n\r\n")

        self.assertEqual(error.status, HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE)
        self.assertIn("exceeds 65536 bytes", error.message)

    def test_end_of_stream_before_blank_line_gets_400(self):
        for head in (b"", b"Host: t\r\n", b"Host: t", b"Host: t\r\n continued\r\n"):
            with self.subTest(head=head):
                error = read_error(head)
                self.assertEqual(error.status, HTTPStatus.BAD_REQUEST)
                self.assertIn("ended before the blank line", error.message)

    def test_bare_line_feeds_are_accepted(self):
        rfile = io.BytesIO(b"Host: t\nX-Long: a\n b\nAccept: */*\n\nbody")

        headers = read_headers(rfile)

        self.assertEqual(headers.items(), [("Host", "t"), ("X-Long", "a b"), ("Accept", "*/*")])
        self.assertEqual(rfile.read(), b"body")

    def test_values_are_decoded_as_latin_1(self):
        headers = read_headers(io.BytesIO(b"X-Name: caf\xe9\r\n\r\n"))

        self.assertEqual(headers.get("X-Name"), "caf\u00e9")


    def test_control_character_in_value_gets_400(self):
        for value in (b"a\rb", b"a\x00b", b"a\x7fb", b"a\x0bb"):
            with self.subTest(value=value):
                error = read_error(b"X-A: " + value + b"\r\n\r\n")

                self.assertEqual(error.status, HTTPStatus.BAD_REQUEST)
                self.assertIn("X-A contains a control character", error.message)

    def test_tab_inside_value_is_kept(self):
        headers = read_headers(io.BytesIO(b"X-A: a\tb\r\n\r\n"))

        self.assertEqual(headers.get("X-A"), "a\tb")

    def test_fold_keeps_non_ascii_at_line_edges(self):
        headers = read_headers(io.BytesIO(b"X-A: a\r\n \xa0b\r\n\r\n"))

        self.assertEqual(headers.get("X-A"), "a \xa0b")


class ConnectionOptionsTest(unittest.TestCase):
    def test_options_are_split_and_lowercased(self):
        headers = RequestHeaders([("Connection", "keep-alive, Upgrade")])

        self.assertEqual(connection_options(headers), ["keep-alive", "upgrade"])

    def test_options_of_repeated_fields_are_combined(self):
        headers = RequestHeaders([("Connection", "Keep-Alive"), ("connection", " CLOSE ")])

        self.assertEqual(connection_options(headers), ["keep-alive", "close"])

    def test_request_without_connection_field_has_no_options(self):
        self.assertEqual(connection_options(RequestHeaders([("Host", "t")])), [])


class RequestHeadOverHttpTest(unittest.TestCase):
    def setUp(self):
        self.server = serve(self, [echo_route(), headers_route()])

    def send(self, data):
        """Open a connection, send ``data`` and return the socket."""
        sock = raw_connection(self.server, self)
        sock.sendall(data)
        return sock

    def test_malformed_heads_get_json_400_and_close(self):
        cases = [
            ("folded first field", b"GET /echo HTTP/1.1\r\n Host: t\r\n\r\n",
             "the first header field line 'Host: t' starts with whitespace"),
            ("line without colon", b"GET /echo HTTP/1.1\r\nHost: t\r\nno colon here\r\n\r\n",
             "invalid header field line 'no colon here'"),
            ("space before colon", b"GET /echo HTTP/1.1\r\nHost : t\r\n\r\n",
             "invalid header field line 'Host : t'"),
            ("missing version", b"GET /echo\r\nHost: t\r\n\r\n",
             "'GET /echo HTTP/1.1'"),
        ]
        for label, request, expected_error in cases:
            with self.subTest(label):
                sock = self.send(request)

                status, headers, body = read_response(sock)

                self.assertEqual(status, 400)
                self.assertEqual(field_values(headers, "Content-Type"), [JSON_CONTENT_TYPE])
                self.assertEqual(field_values(headers, "Connection"), ["close"])
                self.assertIn(expected_error, json.loads(body)["error"])
                self.assertTrue(is_closed_by_server(sock, CLOSE_TIMEOUT_SECONDS))

    def test_host_field_count_other_than_one_gets_400(self):
        cases = [
            ("no Host", b"GET /echo HTTP/1.1\r\n\r\n", "this one has 0"),
            ("two Host fields", b"GET /echo HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", "this one has 2"),
        ]
        for label, request, expected_error in cases:
            with self.subTest(label):
                sock = self.send(request)

                status, _, body = read_response(sock)

                self.assertEqual(status, 400)
                self.assertIn(expected_error, json.loads(body)["error"])

    def test_http_1_0_request_needs_no_host(self):
        sock = self.send(b"GET /echo HTTP/1.0\r\n\r\n")

        self.assertEqual(read_response(sock)[0], 200)

    def test_empty_line_before_request_line_is_ignored(self):
        sock = self.send(b"\r\nGET /echo HTTP/1.1\r\nHost: t\r\n\r\n")

        status, _, body = read_response(sock)

        self.assertEqual(status, 200)
        self.assertEqual(json.loads(body), {"path": "/echo"})

    def test_folded_field_reaches_endpoint_joined(self):
        sock = self.send(b"GET /headers HTTP/1.1\r\nHost: t\r\nX-Long: first\r\n second\r\n\r\n")

        status, _, body = read_response(sock)

        self.assertEqual(status, 200)
        self.assertEqual(json.loads(body), [["Host", "t"], ["X-Long", "first second"]])

    def test_http_2_request_gets_505(self):
        sock = self.send(b"GET /x HTTP/2.0\r\nHost: t\r\n\r\n")

        status, headers, body = read_response(sock)

        self.assertEqual(status, 505)
        self.assertEqual(field_values(headers, "Connection"), ["close"])
        self.assertIn("HTTP/2.0 is not supported", json.loads(body)["error"])

    def test_http_1_0_closes_without_keep_alive(self):
        sock = self.send(b"GET /echo HTTP/1.0\r\n\r\n")

        status, headers, body = read_response(sock)

        self.assertEqual(status, 200)
        self.assertEqual(json.loads(body), {"path": "/echo"})
        self.assertEqual(field_values(headers, "Connection"), ["close"])
        self.assertTrue(is_closed_by_server(sock, CLOSE_TIMEOUT_SECONDS))

    def test_http_1_0_keep_alive_serves_second_request(self):
        sock = self.send(b"GET /echo HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")

        first_status, first_headers, _ = read_response(sock)

        self.assertEqual(first_status, 200)
        self.assertEqual(field_values(first_headers, "Connection"), ["keep-alive"])
        self.assertFalse(is_closed_by_server(sock, STAYS_OPEN_SECONDS))

        sock.settimeout(CLOSE_TIMEOUT_SECONDS)
        sock.sendall(b"GET /echo?second HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n")
        second_status, _, second_body = read_response(sock)

        self.assertEqual(second_status, 200)
        self.assertEqual(json.loads(second_body), {"path": "/echo"})

    def test_http_1_1_connection_close_closes(self):
        sock = self.send(b"GET /echo HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")

        status, headers, _ = read_response(sock)

        self.assertEqual(status, 200)
        self.assertEqual(field_values(headers, "Connection"), ["close"])
        self.assertTrue(is_closed_by_server(sock, CLOSE_TIMEOUT_SECONDS))

    def test_head_response_has_length_but_no_body(self):
        get_sock = self.send(b"GET /echo HTTP/1.1\r\nHost: t\r\n\r\n")
        _, _, get_body = read_response(get_sock)
        head_sock = self.send(b"HEAD /echo HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")

        response = read_until_closed(head_sock)

        head, blank_line, rest = response.partition(b"\r\n\r\n")
        self.assertEqual(blank_line, b"\r\n\r\n", "the response head never ended")
        self.assertTrue(head.startswith(b"HTTP/1.1 200 OK\r\n"), head)
        headers = head.decode("latin-1")
        self.assertEqual(field_values(headers, "Content-Length"), [str(len(get_body))])
        self.assertEqual(field_values(headers, "Content-Type"), [JSON_CONTENT_TYPE])
        self.assertEqual(rest, b"", "a HEAD response carried a body")

    def test_large_response_body_arrives_whole(self):
        generator = random.Random(RANDOM_SEED)
        # The echo route wraps the posted text in {"path":"/echo","body":"..."}, which adds envelope_bytes.
        envelope_bytes = len(json_response({"path": "/echo", "body": ""}).body)
        sizes = {
            "at the coalescing limit": COALESCE_BODY_BYTES - envelope_bytes,
            "one byte over it": COALESCE_BODY_BYTES - envelope_bytes + 1,
            "several times over it": 500_000,
        }
        for label, text_bytes in sizes.items():
            with self.subTest(label):
                text = "".join(generator.choices(string.ascii_letters + string.digits, k=text_bytes))
                sock = self.send(b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: %d\r\n\r\n"
                                 % text_bytes + text.encode("ascii"))

                status, _, body = read_response(sock)

                self.assertEqual(status, 200)
                self.assertEqual(len(body), envelope_bytes + text_bytes)
                self.assertEqual(json.loads(body), {"path": "/echo", "body": text})


if __name__ == "__main__":
    unittest.main()
