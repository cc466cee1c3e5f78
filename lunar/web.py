"""HTTP plumbing: the pooled server, the request handler and the route table.

The handler reads a request, finds its route, calls the endpoint and writes
the ``Response`` it returns. Every failure becomes one JSON error body
``{"error": "..."}``, including the protocol errors that ``http.server``
reports itself, so no client ever sees the standard library's HTML page. The
endpoints live in ``lunar.api``, and this module has no notion of rockets.
"""

import json
import logging
import socket
import socketserver
import time
import urllib.parse
from http import HTTPStatus
from typing import Any, Callable, Dict, Iterable, List, NamedTuple, Optional, Sequence, Tuple, Union

from lunar import __version__
from lunar.conditional import entity_tag, none_match
from lunar.connections import PooledHTTPServer, PooledRequestHandler, StreamLimitError
from lunar.cors import CorsPolicy
from lunar.request_head import InvalidRequestHead, connection_options, parse_request_line, read_headers

logger = logging.getLogger(__name__)

JSON_CONTENT_TYPE = "application/json; charset=utf-8"
MAX_BODY_BYTES = 1024 * 1024  # 1 MiB; larger request bodies get 413
MAX_REQUEST_LINE_BYTES = 65536  # as in http.server; longer lines get 414
IDLE_TIMEOUT_SECONDS = 5.0  # an idle keep-alive connection is closed after this
REQUEST_TIMEOUT_SECONDS = 10.0  # to send a whole request; also the longest a response write may stall
WORKERS = 32  # threads that serve requests
MAX_STREAMS = 128  # long-lived responses, one thread each, beyond the workers
LISTEN_BACKLOG = 1024  # pending connections the kernel queues before accept()
MAX_CHUNK_LINE_BYTES = 1024  # a chunk-size line with extensions
COALESCE_BODY_BYTES = 64 * 1024  # a body up to this size is copied behind the head, to send both at once


# "202 Accepted" and the like, by status code.
_STATUS_TEXT = {status.value: f"{status.value} {status.phrase}" for status in HTTPStatus}


class HttpError(Exception):
    """Raised to respond to a request with an error status and a JSON message."""

    def __init__(
        self,
        status: HTTPStatus,
        message: str,
        headers: Optional[Dict[str, str]] = None,
        close: bool = False,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or {}
        self.close = close  # whether the connection cannot be reused afterwards


class Response(NamedTuple):
    """An endpoint's result: a status, headers and a body."""

    status: HTTPStatus
    body: bytes = b""
    headers: Dict[str, str] = {}


class StreamingResponse(NamedTuple):
    """A response whose body is written chunk by chunk as ``chunks`` yields it.

    The body ends with the connection, so no Content-Length is sent. As in
    WSGI, the handler calls ``chunks.close()``, if it exists, once the
    response is over, including for HEAD and when the client went away.
    """

    status: HTTPStatus
    headers: Dict[str, str]
    chunks: Iterable[bytes]


def json_response(data: Any, status: HTTPStatus = HTTPStatus.OK) -> Response:
    """Return ``data`` serialized as a UTF-8 JSON response."""
    body = json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    return Response(status, body, {"Content-Type": JSON_CONTENT_TYPE})


def error_body(message: str) -> bytes:
    """Return the JSON error document for ``message``."""
    return json.dumps({"error": message}, ensure_ascii=False).encode("utf-8")


class Request:
    """One parsed HTTP request, as the endpoints see it."""

    def __init__(self, handler: "RequestHandler", path: str, query: Dict[str, List[str]],
                 params: Dict[str, str]) -> None:
        self._handler = handler
        self.method = handler.command
        self.path = path
        self.query = query
        self.params = params
        self.headers = handler.headers
        self.client_address = handler.client_address
        self.max_body_bytes: int = handler.server.max_body_bytes

    def read_body(self, max_bytes: Optional[int] = None) -> bytes:
        """Read the request body, decoding chunked transfer coding.

        ``max_bytes`` replaces the server's ``max_body_bytes`` for this
        request, for an endpoint that takes larger bodies of some kinds.
        Raises ``HttpError`` with 411 when the length is unknown, 400 when
        it is malformed and 413 when it exceeds the limit.
        """
        return self._handler.read_body(max_bytes)

    def release_hot_set(self) -> None:
        """Let other workers serve the server's other keep-alive connections while this request runs.

        An endpoint of an ``inline`` route calls it before work that may
        take more than a millisecond.
        """
        self._handler.server.release_hot_set()

    def detach_from_pool(self) -> None:
        """Serve the rest of this request on a thread of its own, for a long-lived response.

        Call it before streaming; the connection closes when the endpoint
        returns. Raises ``HttpError`` 503 when too many streams are open.
        """
        try:
            self._handler.detach_from_pool()
        except StreamLimitError as error:
            raise HttpError(HTTPStatus.SERVICE_UNAVAILABLE, str(error)) from None


# An endpoint returns None only after writing a streamed response itself.
Endpoint = Callable[[Request], Union[Response, StreamingResponse, None]]


class Route:
    """A path template such as ``/rockets/{channel}`` and its endpoints by method.

    ``inline`` marks endpoints that return within a fraction of a
    millisecond. The worker that serves the pool's hot set runs them itself
    and keeps serving the set's other connections afterwards. Before any
    other endpoint runs, those connections go to other workers, so a long
    request does not hold them up (see ``lunar.connections``).
    """

    def __init__(self, template: str, endpoints: Dict[str, Endpoint], inline: bool = False) -> None:
        self.template = template
        self.inline = inline
        self.segments = template.strip("/").split("/")
        self.endpoints = dict(endpoints)
        if "GET" in self.endpoints:
            self.endpoints.setdefault("HEAD", self.endpoints["GET"])
        self.allow = ", ".join(sorted(set(self.endpoints) | {"OPTIONS"}))

    def match(self, segments: Sequence[str]) -> Optional[Dict[str, str]]:
        """Return the captured parameters if ``segments`` fit the template."""
        if len(segments) != len(self.segments):
            return None
        params = {}
        for pattern, segment in zip(self.segments, segments):
            if pattern.startswith("{"):
                if not segment:
                    return None
                params[pattern[1:-1]] = segment
            elif pattern != segment:
                return None
        return params


def find_route(routes: Sequence[Route], raw_path: str) -> Tuple[Optional[Route], Dict[str, str], str, Dict[str, List[str]]]:
    """Split a request target and return its route, parameters, path and query.

    Segments are percent-decoded after splitting on ``/``, so ``%2F`` inside
    a segment stays part of that segment.
    """
    if "?" not in raw_path and "#" not in raw_path and "%" not in raw_path:
        # Most requests, POST /messages among them: nothing to split or decode.
        path = raw_path
        query: Dict[str, List[str]] = {}
        segments = path.strip("/").split("/")
    else:
        path, query, segments = _split_target(raw_path)
    for route in routes:
        params = route.match(segments)
        if params is not None:
            return route, params, path, query
    return None, {}, path, query


def _split_target(raw_path: str) -> Tuple[str, Dict[str, List[str]], List[str]]:
    """Split a request target into its path, its query and the percent-decoded path segments."""
    path, _, query_text = raw_path.partition("?")
    path = path.partition("#")[0]
    try:
        query = urllib.parse.parse_qs(query_text, keep_blank_values=True, errors="strict")
    except UnicodeDecodeError:
        raise HttpError(HTTPStatus.BAD_REQUEST,
                        f"query {query_text!r} is not valid percent-encoded UTF-8") from None
    try:
        segments = [
            urllib.parse.unquote(segment, errors="strict")
            for segment in path.strip("/").split("/")
        ]
    except UnicodeDecodeError:
        raise HttpError(HTTPStatus.BAD_REQUEST, f"path {path!r} is not valid percent-encoded UTF-8") from None
    return path, query, segments


class RequestHandler(PooledRequestHandler):
    """Serve one connection: read requests, dispatch them, write JSON responses.

    ``server.routes`` supplies the route table. Every method, including
    ones ``http.server`` does not know, goes through ``dispatch``.
    """

    protocol_version = "HTTP/1.1"  # keep-alive, which the rockets program relies on
    server_version = f"lunar/{__version__}"
    # Without this, each small keep-alive response waits about 40 ms for the
    # client's delayed ACK before the next request can go out.
    disable_nagle_algorithm = True

    def setup(self) -> None:
        super().setup()
        self._body_pending = False
        self._continue_pending = False  # a 100 Continue is owed before the body is read

    def handle_one_request(self) -> None:
        """Read one request and respond to it, whatever its method."""
        try:
            limit = self.server.max_request_line_bytes
            self.raw_requestline = self.rfile.readline(limit + 1)
            if self.raw_requestline in (b"\r\n", b"\n"):
                # RFC 9112, section 2.2: ignore an empty line before the request
                # line, which some clients send after a POST body.
                self.raw_requestline = self.rfile.readline(limit + 1)
            if len(self.raw_requestline) > limit:
                self.requestline = ""
                self.request_version = ""
                self.command = ""
                self.send_error(HTTPStatus.REQUEST_URI_TOO_LONG,
                                f"request line exceeds {limit} bytes; shorten the URL, or "
                                "ask the operator to raise --max-request-line-bytes")
                return
            if not self.raw_requestline:
                self.close_connection = True
                return
            if not self.parse_request():
                return
            self.dispatch()
            self.wfile.flush()
        except socket.timeout:
            logger.debug("connection from %s timed out", self.address_string())
            self.close_connection = True
        except ConnectionError as error:
            logger.debug("connection from %s failed: %s", self.address_string(), error)
            self.close_connection = True

    def parse_request(self) -> bool:
        """Parse the request line and header fields; on error respond and return False.

        This replaces ``http.server``'s parsing, which costs a mail parser
        per request; ``lunar.request_head`` documents what is accepted.
        """
        self.command = ""
        self.request_version = "HTTP/1.0"
        self.requestline = str(self.raw_requestline, "iso-8859-1").rstrip("\r\n")
        try:
            self.command, self.path, self.request_version = parse_request_line(self.raw_requestline)
            self.headers = read_headers(self.rfile)
        except InvalidRequestHead as error:
            self.send_error(error.status, error.message)
            return False

        hosts = self.headers.get_all("Host", [])
        if self.request_version == "HTTP/1.1" and len(hosts) != 1:
            # RFC 9112, section 3.2: an HTTP/1.1 request has exactly one Host field.
            self.send_error(HTTPStatus.BAD_REQUEST,
                            "an HTTP/1.1 request needs one Host header field, "
                            f"this one has {len(hosts)}")
            return False

        options = connection_options(self.headers)
        if self.request_version == "HTTP/1.1":
            self.close_connection = "close" in options
        else:
            self.close_connection = "keep-alive" not in options
        self._continue_pending = False
        expect = self.headers.get("Expect")
        if expect is not None and expect.lower() == "100-continue" and self.request_version == "HTTP/1.1":
            return self.handle_expect_100()
        return True

    def dispatch(self) -> None:
        """Route the parsed request and write the response or a JSON error."""
        self._body_pending = self._has_body()
        try:
            response = self._respond()
        except HttpError as error:
            response = Response(error.status, error_body(error.message),
                                {"Content-Type": JSON_CONTENT_TYPE, **error.headers})
            if error.close:
                self.close_connection = True
        except socket.timeout:
            logger.info("request from %s timed out after %g s", self.address_string(),
                        self.server.request_timeout)
            self.close_connection = True
            response = Response(HTTPStatus.REQUEST_TIMEOUT,
                                error_body("request timed out; send the whole request at once"),
                                {"Content-Type": JSON_CONTENT_TYPE})
        except Exception:
            logger.exception("unexpected error in %s %s", self.command, self.path)
            response = Response(
                HTTPStatus.INTERNAL_SERVER_ERROR,
                error_body("internal server error; the server log has the details"),
                {"Content-Type": JSON_CONTENT_TYPE},
            )
        if self._body_pending:
            # An unread body would be parsed as the next request.
            self.close_connection = True
        if response is None:
            return  # a streaming endpoint wrote its response itself
        response = self._apply_conditional_get(response)
        cors_headers = self.server.cors.response_headers(self.headers)
        if cors_headers and "Access-Control-Allow-Origin" not in response.headers:
            response = response._replace(headers={**response.headers, **cors_headers})
        if isinstance(response, StreamingResponse):
            self.write_stream(response)
        else:
            self.write_response(response)

    def _apply_conditional_get(self, response: Response) -> Response:
        """Tag a 200 JSON response to GET or HEAD with an ETag, or turn it into a 304."""
        if (self.command not in ("GET", "HEAD") or response.status != HTTPStatus.OK
                or response.headers.get("Content-Type") != JSON_CONTENT_TYPE):
            return response
        tag = entity_tag(response.body)
        if none_match(self.headers.get_all("If-None-Match") or [], tag):
            return Response(HTTPStatus.NOT_MODIFIED, b"", {"ETag": tag})
        return response._replace(headers={**response.headers, "ETag": tag})

    def _respond(self) -> Union[Response, StreamingResponse]:
        route, params, path, query = find_route(self.server.routes, self.path)
        self.route_template = route.template if route is not None else None
        if route is None:
            raise HttpError(HTTPStatus.NOT_FOUND, f"no resource at {path!r}")
        endpoint = route.endpoints.get(self.command)
        if endpoint is None:
            if self.command == "OPTIONS":
                preflight = self.server.cors.preflight_headers(self.headers, route.allow)
                return Response(HTTPStatus.NO_CONTENT, b"", {"Allow": route.allow, **(preflight or {})})
            raise HttpError(
                HTTPStatus.METHOD_NOT_ALLOWED,
                f"method {self.command} is not allowed on {route.template}; "
                f"allowed: {route.allow}",
                {"Allow": route.allow},
            )
        if not route.inline:
            self.server.release_hot_set()
        return endpoint(Request(self, path, query, params))

    def write_response(self, response: Response) -> None:
        """Send status, headers and (except for HEAD) the body, in one write when they fit.

        The head is formatted here rather than with ``send_header``, which
        encodes and buffers every line separately.
        """
        status = response.status
        self.record_response_status(status)
        self.log_request(status)
        lines = [f"{self.protocol_version} {_STATUS_TEXT[status]}\r\n"
                 f"Server: {self.version_string()}\r\nDate: {self.date_time_string()}\r\n"]
        for name, value in response.headers.items():
            lines.append(f"{name}: {value}\r\n")
        # RFC 9110 (section 8.6) forbids Content-Length on a 204 and allows on a
        # 304 only the length of the 200 it replaces, so neither gets one.
        if status not in (HTTPStatus.NO_CONTENT, HTTPStatus.NOT_MODIFIED):
            lines.append(f"Content-Length: {len(response.body)}\r\n")
        if self.close_connection:
            lines.append("Connection: close\r\n")
        elif self.request_version == "HTTP/1.0":
            lines.append("Connection: keep-alive\r\n")  # an HTTP/1.0 client assumes close otherwise
        lines.append("\r\n")
        head = "".join(lines).encode("iso-8859-1")

        body = response.body if self.command != "HEAD" else b""
        if len(body) <= COALESCE_BODY_BYTES:
            self.wfile.write(head + body)
        else:
            self.wfile.write(head)
            self.wfile.write(body)

    def write_stream(self, response: StreamingResponse) -> None:
        """Send the headers, then each chunk as it comes; the connection closes after.

        The stream leaves the worker pool first, so it never occupies a worker;
        past the stream cap the client gets a 503 instead.
        """
        self.close_connection = True
        try:
            try:
                self.detach_from_pool()
            except StreamLimitError as error:
                logger.warning("stream rejected for %s: %s", self.address_string(), error)
                self.write_response(Response(HTTPStatus.SERVICE_UNAVAILABLE, error_body(str(error)),
                                             {"Content-Type": JSON_CONTENT_TYPE, "Retry-After": "10"}))
                return
            self.send_response(response.status)
            for name, value in response.headers.items():
                self.send_header(name, value)
            self.send_header("Connection", "close")
            self.end_headers()
            if self.command != "HEAD":
                for chunk in response.chunks:
                    self.wfile.write(chunk)
        finally:
            close = getattr(response.chunks, "close", None)
            if close is not None:
                close()

    def send_error(self, code: int, message: Optional[str] = None, explain: Optional[str] = None) -> None:
        """Send a protocol error found by ``http.server`` as a JSON body."""
        status = HTTPStatus(code)
        text = message or explain or status.phrase
        if self.request_version == "HTTP/0.9":
            # parse_request leaves this default when it cannot read the request
            # line, and an HTTP/0.9 reply would have no status line or headers.
            self.request_version = "HTTP/1.0"
        logger.info("rejected request from %s: %d %s", self.address_string(), code, text)
        self.close_connection = True
        self.write_response(Response(status, error_body(text), {"Content-Type": JSON_CONTENT_TYPE}))

    def read_body(self, max_bytes: Optional[int] = None) -> bytes:
        """Read the request body; see ``Request.read_body``."""
        self._body_pending = False
        self._check_framing_headers()
        limit = self.server.max_body_bytes if max_bytes is None else max_bytes
        transfer_encoding = self.headers.get("Transfer-Encoding")
        if transfer_encoding is not None:
            if transfer_encoding.strip().lower() != "chunked":
                raise HttpError(HTTPStatus.NOT_IMPLEMENTED,
                                f"Transfer-Encoding {transfer_encoding!r} is not supported; "
                                "use chunked or Content-Length", close=True)
            self._send_continue()
            return self._read_chunked_body(limit)

        length_text = self.headers.get("Content-Length")
        if length_text is None:
            raise HttpError(HTTPStatus.LENGTH_REQUIRED,
                            "a body needs a Content-Length header or chunked "
                            "Transfer-Encoding", close=True)
        # str.isdigit() alone would accept Latin-1 digits such as "\xb2", which int() rejects.
        if not (length_text.strip().isascii() and length_text.strip().isdigit()):
            raise HttpError(HTTPStatus.BAD_REQUEST,
                            f"Content-Length {length_text!r} is not a non-negative integer",
                            close=True)
        significant_digits = length_text.strip().lstrip("0") or "0"
        # int() rejects more than 4300 digits (CPython 3.11, 3.10.7 and 3.9.14 on),
        # so a length with more digits than the limit is rejected unparsed.
        if len(significant_digits) > len(str(limit)):
            raise HttpError(HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
                            f"Content-Length of {len(significant_digits)} digits exceeds "
                            f"the limit of {limit} bytes", close=True)
        length = int(significant_digits)
        if length > limit:
            raise HttpError(HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
                            f"body of {length} bytes exceeds the limit of "
                            f"{limit} bytes", close=True)
        if length:
            self._send_continue()
        body = self.rfile.read(length)
        if len(body) != length:
            raise HttpError(HTTPStatus.BAD_REQUEST,
                            f"body ended after {len(body)} of {length} bytes", close=True)
        return body

    def _check_framing_headers(self) -> None:
        """Reject a request whose body length is ambiguous (RFC 9112, section 6.3).

        Two proxies that pick different lengths would split the stream into
        different requests, which is how request smuggling works.
        """
        lengths = self.headers.get_all("Content-Length") or []
        if len(lengths) > 1 and len({length.strip() for length in lengths}) > 1:
            raise HttpError(HTTPStatus.BAD_REQUEST,
                            f"conflicting Content-Length headers: {', '.join(lengths)}", close=True)
        if lengths and "Transfer-Encoding" in self.headers:
            raise HttpError(HTTPStatus.BAD_REQUEST,
                            "request has both Content-Length and Transfer-Encoding; send one",
                            close=True)
        if len(self.headers.get_all("Transfer-Encoding") or []) > 1:
            raise HttpError(HTTPStatus.BAD_REQUEST,
                            "repeated Transfer-Encoding headers; send one", close=True)

    def handle_expect_100(self) -> bool:
        """Defer ``100 Continue`` until the endpoint reads the body.

        The route, the method and the length limits are checked first, so a
        request refused for any of them gets its final status without
        inviting the body, and is counted under its route like any other.
        """
        self._continue_pending = True
        return True

    def _send_continue(self) -> None:
        """Invite a body that the client holds back for ``Expect: 100-continue``."""
        if self._continue_pending:
            self._continue_pending = False
            super().handle_expect_100()
            self.wfile.flush()

    def _read_chunked_body(self, limit: int) -> bytes:
        chunks = []
        size = 0
        while True:
            line = self.rfile.readline(MAX_CHUNK_LINE_BYTES + 1)
            size_text = line.split(b";", 1)[0].strip()
            try:
                if not size_text or size_text.strip(b"0123456789abcdefABCDEF"):
                    raise ValueError(size_text)
                chunk_size = int(size_text, 16)
            except ValueError:
                size_line = line[:40].decode("iso-8859-1").rstrip("\r\n")
                raise HttpError(HTTPStatus.BAD_REQUEST,
                                f"invalid chunk size line {size_line!r}; expected hexadecimal digits",
                                close=True) from None
            if chunk_size < 0:
                raise HttpError(HTTPStatus.BAD_REQUEST, "negative chunk size", close=True)
            if chunk_size == 0:
                break
            size += chunk_size
            if size > limit:
                raise HttpError(HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
                                f"chunked body exceeds the limit of {limit} bytes", close=True)
            chunk = self.rfile.read(chunk_size)
            if len(chunk) != chunk_size or self.rfile.readline(3) not in (b"\r\n", b"\n"):
                raise HttpError(HTTPStatus.BAD_REQUEST, "chunked body is truncated", close=True)
            chunks.append(chunk)
        # Skip trailer fields up to the blank line that ends the body.
        while self.rfile.readline(MAX_CHUNK_LINE_BYTES + 1) not in (b"\r\n", b"\n", b""):
            pass
        return b"".join(chunks)

    def _has_body(self) -> bool:
        if "Transfer-Encoding" in self.headers:
            return True
        length = self.headers.get("Content-Length", "0").strip()
        return length != "0" and length != ""

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("%s " + format, self.address_string(), *args)

    # -- per-request work that http.server would repeat for nothing -------------

    def log_request(self, code: Any = "-", size: Any = "-") -> None:
        # http.server formats a line per request; lunar logs it only at DEBUG.
        if logger.isEnabledFor(logging.DEBUG):
            super().log_request(code, size)

    def date_time_string(self, timestamp: Optional[float] = None) -> str:
        """Return the Date header value, formatted once per second rather than per response."""
        if timestamp is not None:
            return super().date_time_string(timestamp)
        global _date_header
        second = int(time.time())
        cached = _date_header
        if cached[0] != second:
            cached = (second, super().date_time_string(second))
            _date_header = cached
        return cached[1]

    def log_error(self, format: str, *args: Any) -> None:
        logger.info("%s " + format, self.address_string(), *args)

    def address_string(self) -> str:
        return str(self.client_address[0])


class LunarHTTPServer(PooledHTTPServer):
    """An HTTP server for IPv4 or IPv6 that serves a route table on a bounded thread pool."""

    allow_reuse_address = True
    request_queue_size = LISTEN_BACKLOG

    def __init__(self, address: Tuple[str, int], routes: Sequence[Route],
                 idle_timeout: float = IDLE_TIMEOUT_SECONDS,
                 max_body_bytes: int = MAX_BODY_BYTES,
                 cors_origins: Sequence[str] = (),
                 max_request_line_bytes: int = MAX_REQUEST_LINE_BYTES,
                 request_timeout: float = REQUEST_TIMEOUT_SECONDS,
                 workers: int = WORKERS, max_streams: int = MAX_STREAMS) -> None:
        self.address_family = _address_family(address[0])
        self.routes = list(routes)
        self.cors = CorsPolicy(cors_origins)
        self.max_body_bytes = max_body_bytes
        self.max_request_line_bytes = max_request_line_bytes
        super().__init__(address, RequestHandler, workers=workers, max_streams=max_streams,
                         idle_timeout=idle_timeout, request_timeout=request_timeout)

    def server_bind(self) -> None:
        # HTTPServer.server_bind would call socket.getfqdn(), a DNS lookup
        # that can stall start-up on a machine without a resolver.
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name = host
        self.server_port = port

    @property
    def url(self) -> str:
        """Return the base URL clients use to reach this server."""
        host, port = self.server_address[:2]
        if ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{port}"

    def handle_error(self, request: Any, client_address: Any) -> None:
        logger.exception("unhandled error serving %s", client_address)


# The last Date header value and its Unix second, shared by all handler threads.
_date_header: Tuple[int, str] = (-1, "")


def _address_family(host: str) -> socket.AddressFamily:
    try:
        infos = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as error:
        raise OSError(f"cannot resolve host {host!r}: {error}") from None
    return infos[0][0]
