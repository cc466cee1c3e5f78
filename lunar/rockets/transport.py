"""HTTP/1.1 connections that POST JSON bodies to one path, reused across requests.

Two implementations share one interface, ``post(body) -> (status, body)``
and ``close()``. ``SocketPostConnection`` writes each request with one
``sendall`` and parses the response itself. ``HttpClientPostConnection``
uses ``http.client`` and serves as the reference. In a default run of
100,000 messages against the test mock server (tests/support), on a 2-core
machine with CPython 3.11, the launcher used about 60 us of CPU per message
with the socket class and about 145 us with ``http.client``. Neither class
follows redirects, sends ``Expect: 100-continue`` or supports TLS.
"""

import http.client
import socket
from typing import Optional, Tuple

# Upper bound on a response's status line and headers, against a peer that
# is not an HTTP server.
MAX_HEADER_BYTES = 64 * 1024
RECEIVE_BYTES = 64 * 1024

JSON_CONTENT_TYPE = "application/json"
NDJSON_CONTENT_TYPE = "application/x-ndjson"

TRANSPORT_SOCKET = "socket"
TRANSPORT_HTTP_CLIENT = "http.client"
TRANSPORTS = (TRANSPORT_SOCKET, TRANSPORT_HTTP_CLIENT)


class InvalidResponse(Exception):
    """The server sent something that is not a valid HTTP/1.x response."""


class ConnectionClosed(ConnectionError):
    """The server closed the connection before the response was complete."""


class SocketPostConnection:
    """A keep-alive HTTP/1.1 connection on a plain socket, opened on first use.

    With ``keep_alive`` false every request carries ``Connection: close``
    and the socket is closed after the response. The socket is also closed
    when the response has ``Connection: close`` or after any error, and the next ``post``
    opens a new one. TCP_NODELAY is set so that a small request or response
    is not held back by Nagle's algorithm waiting for a delayed ACK.
    """

    def __init__(self, host: str, port: int, path: str, timeout_s: float, keep_alive: bool = True,
                 content_type: str = JSON_CONTENT_TYPE) -> None:
        self._address = (host, port)
        self._timeout_s = timeout_s
        host_header = f"[{host}]" if ":" in host else host
        if port != 80:
            host_header += f":{port}"
        connection_header = "" if keep_alive else "Connection: close\r\n"
        self._request_head = (
            f"POST {path} HTTP/1.1\r\nHost: {host_header}\r\n"
            f"Content-Type: {content_type}\r\n{connection_header}Content-Length: "
        ).encode("latin-1")
        self._keep_alive = keep_alive
        self._socket: Optional[socket.socket] = None
        self._received = b""

    @property
    def is_open(self) -> bool:
        """Whether a socket from an earlier request is kept for the next one."""
        return self._socket is not None

    def post(self, body: bytes) -> Tuple[int, bytes]:
        """Send one POST with ``body`` and return the status and response body.

        Raise OSError (socket.timeout included) or InvalidResponse on failure,
        after closing the socket.
        """
        try:
            if self._socket is None:
                self._connect()
            self._socket.sendall(b"%s%d\r\n\r\n%s" % (self._request_head, len(body), body))
            status, answer, close = self._read_response()
        except BaseException:
            self.close()
            raise
        if close or not self._keep_alive:
            self.close()
        return status, answer

    def close(self) -> None:
        """Close the socket if one is open; the next ``post`` reconnects."""
        if self._socket is not None:
            self._socket.close()
            self._socket = None
        self._received = b""

    def _connect(self) -> None:
        connection = socket.create_connection(self._address, timeout=self._timeout_s)
        connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._socket = connection
        self._received = b""

    def _receive(self) -> bytes:
        data = self._socket.recv(RECEIVE_BYTES)
        if not data:
            raise ConnectionClosed("the server closed the connection before the response was complete")
        return data

    def _read_head(self) -> bytes:
        received = self._received
        end = received.find(b"\r\n\r\n")
        while end < 0:
            if len(received) > MAX_HEADER_BYTES:
                raise InvalidResponse(f"response headers are longer than {MAX_HEADER_BYTES} bytes")
            received += self._receive()
            end = received.find(b"\r\n\r\n")
        self._received = received[end + 4:]
        return received[:end]

    def _read_exactly(self, size: int) -> bytes:
        received = self._received
        while len(received) < size:
            received += self._receive()
        self._received = received[size:]
        return received[:size]

    def _read_line(self) -> bytes:
        received = self._received
        end = received.find(b"\r\n")
        while end < 0:
            if len(received) > MAX_HEADER_BYTES:
                raise InvalidResponse("chunk size line is too long")
            received += self._receive()
            end = received.find(b"\r\n")
        self._received = received[end + 2:]
        return received[:end]

    def _read_response(self) -> Tuple[int, bytes, bool]:
        """Read one final response; return its status, body and whether to close."""
        while True:
            lines = self._read_head().split(b"\r\n")
            status, close, content_length, chunked = _parse_head(lines)
            # An interim 1xx response precedes the final one.
            if 100 <= status < 200:
                continue
            if status in (204, 304):
                return status, b"", close
            if chunked:
                return status, self._read_chunked(), close
            if content_length is not None:
                return status, self._read_exactly(content_length), close
            return status, self._read_until_closed(), True

    def _read_chunked(self) -> bytes:
        chunks = []
        while True:
            size_field = self._read_line().split(b";", 1)[0].strip()
            try:
                size = int(size_field, 16)
            except ValueError:
                raise InvalidResponse(f"invalid chunk size {size_field!r}") from None
            if size == 0:
                # Skip trailer fields up to the blank line.
                while self._read_line():
                    pass
                return b"".join(chunks)
            chunks.append(self._read_exactly(size))
            if self._read_line():
                raise InvalidResponse("chunk data is not followed by CRLF")

    def _read_until_closed(self) -> bytes:
        chunks = [self._received]
        self._received = b""
        while True:
            data = self._socket.recv(RECEIVE_BYTES)
            if not data:
                return b"".join(chunks)
            chunks.append(data)


def _parse_head(lines: list) -> Tuple[int, bool, Optional[int], bool]:
    """Parse a status line and header lines; return status, close, Content-Length, chunked."""
    status_line = lines[0].split(None, 2)
    if len(status_line) < 2 or not status_line[0].startswith(b"HTTP/1."):
        raise InvalidResponse(f"invalid status line {lines[0][:100]!r}")
    try:
        status = int(status_line[1])
    except ValueError:
        raise InvalidResponse(f"invalid status code in {lines[0][:100]!r}") from None

    close = status_line[0] == b"HTTP/1.0"
    content_length: Optional[int] = None
    chunked = False
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        if name == b"content-length":
            try:
                content_length = int(value)
            except ValueError:
                raise InvalidResponse(f"invalid Content-Length {value.strip()[:40]!r}") from None
            if content_length < 0:
                raise InvalidResponse(f"negative Content-Length {content_length}")
        elif name == b"transfer-encoding":
            chunked = b"chunked" in value.lower()
        elif name == b"connection":
            tokens = [token.strip() for token in value.lower().split(b",")]
            if b"close" in tokens:
                close = True
            elif b"keep-alive" in tokens:
                close = False
    return status, close, content_length, chunked


class HttpClientPostConnection:
    """The same interface on ``http.client.HTTPConnection``, slower but standard."""

    def __init__(self, host: str, port: int, path: str, timeout_s: float, keep_alive: bool = True) -> None:
        self._host = host
        self._port = port
        self._path = path
        self._timeout_s = timeout_s
        self._keep_alive = keep_alive
        self._connection: Optional[http.client.HTTPConnection] = None

    @property
    def is_open(self) -> bool:
        """Whether a connection from an earlier request is kept for the next one."""
        return self._connection is not None

    def post(self, body: bytes) -> Tuple[int, bytes]:
        """Send one POST with ``body``; raise OSError or http.client.HTTPException on failure."""
        try:
            connection = self._connection
            if connection is None:
                connection = http.client.HTTPConnection(self._host, self._port, timeout=self._timeout_s)
                connection.connect()
                connection.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                self._connection = connection
            connection.putrequest("POST", self._path, skip_accept_encoding=True)
            connection.putheader("Content-Type", "application/json")
            connection.putheader("Content-Length", str(len(body)))
            if not self._keep_alive:
                connection.putheader("Connection", "close")
            connection.endheaders(body)
            response = connection.getresponse()
            answer = response.read()
        except BaseException:
            self.close()
            raise
        if not self._keep_alive or response.will_close:
            self.close()
        return response.status, answer

    def close(self) -> None:
        """Close the connection if one is open; the next ``post`` reconnects."""
        if self._connection is not None:
            self._connection.close()
            self._connection = None
