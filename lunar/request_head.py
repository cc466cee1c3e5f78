"""Parsing of HTTP/1.x request heads: the request line and the header fields.

``http.server`` parses header fields with the ``email`` package, which
builds a feed parser and a policy-driven ``Message`` for every request. On
lunar's busiest path, one small POST after another, that took about a third
of the server's CPU time. This module reads the same head with a few
``readline`` calls and string methods, and checks it against RFC 9112
instead of being lenient like a mail parser.

It reads only the head. The body, ``Expect: 100-continue`` and the responses
are the handler's work, in ``lunar.web``.
"""

import re
from http import HTTPStatus
from typing import BinaryIO, Dict, Iterator, List, NamedTuple, Optional, Tuple, overload

MAX_HEADER_LINE_BYTES = 65536  # as http.client; a longer field line gets 431
MAX_HEADER_FIELDS = 100  # as http.client; more fields get 431
_WHITESPACE = " \t\r\n"  # around a field value; \r\n ends its line

# RFC 9110, section 5.6.2: a field name is a token.
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+\Z")
_VERSION = re.compile(r"HTTP/(\d)\.(\d)\Z")
# A request target is visible ASCII (RFC 9112, section 3.2); other bytes must be percent-encoded.
_TARGET = re.compile(r"[!-~]+\Z")
# The scheme and host of a target in absolute form, such as http://host:8000/rockets.
_ABSOLUTE_FORM = re.compile(r"https?://[^/?#]*", re.IGNORECASE)
# Control characters that RFC 9110, section 5.5, forbids in a field value; a tab is allowed.
_INVALID_VALUE_CHARACTER = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")

class InvalidRequestHead(Exception):
    """Raised when a request line or header field is malformed; carries the status to respond with."""

    def __init__(self, status: HTTPStatus, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class RequestLine(NamedTuple):
    """The three parts of a request line, such as ``POST /messages HTTP/1.1``."""

    method: str
    target: str
    version: str  # "HTTP/1.0" or "HTTP/1.1"


class RequestHeaders:
    """The header fields of one request: names match case-insensitively, repeated fields stay in order.

    It offers the methods of ``email.message.Message`` that handlers use:
    ``get`` returns the first value of a name, ``get_all`` every value.
    """

    __slots__ = ("_fields", "_values_by_name")

    def __init__(self, fields: Optional[List[Tuple[str, str]]] = None) -> None:
        self._fields: List[Tuple[str, str]] = []
        self._values_by_name: Dict[str, List[str]] = {}
        for name, value in fields or ():
            self.add(name, value)

    def add(self, name: str, value: str) -> None:
        """Append a field."""
        self._fields.append((name, value))
        values = self._values_by_name.get(name.lower())
        if values is None:
            self._values_by_name[name.lower()] = [value]
        else:
            values.append(value)

    @overload
    def get(self, name: str) -> Optional[str]: ...

    @overload
    def get(self, name: str, default: str) -> str: ...

    def get(self, name: str, default: Optional[str] = None) -> Optional[str]:
        """Return the first value of the field ``name``, or ``default`` if the request has none."""
        values = self._values_by_name.get(name.lower())
        return values[0] if values else default

    def get_all(self, name: str, default: Optional[List[str]] = None) -> Optional[List[str]]:
        """Return every value of the field ``name`` in the order received, or ``default`` if none."""
        values = self._values_by_name.get(name.lower())
        return list(values) if values else default

    def items(self) -> List[Tuple[str, str]]:
        """Return the fields as (name, value) pairs in the order received, names as sent."""
        return list(self._fields)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.lower() in self._values_by_name

    def __getitem__(self, name: str) -> str:
        values = self._values_by_name.get(name.lower())
        if not values:
            raise KeyError(name)
        return values[0]

    def __iter__(self) -> Iterator[str]:
        return (name for name, _ in self._fields)

    def __len__(self) -> int:
        return len(self._fields)

    def __repr__(self) -> str:
        return f"RequestHeaders({self._fields!r})"


def parse_request_line(raw_line: bytes) -> RequestLine:
    """Split a request line into method, target and version; raise ``InvalidRequestHead`` if it is malformed.

    The line is decoded as ISO-8859-1, as ``http.server`` does. HTTP/0.9
    requests (no version) get 400 and HTTP/2 or later 505, because lunar
    speaks HTTP/1.0 and HTTP/1.1 only.
    """
    text = raw_line.decode("iso-8859-1").rstrip("\r\n")
    # RFC 9112, section 3: single spaces separate the parts. str.split() would
    # also split on characters such as NBSP, which a proxy may not.
    words = text.split(" ")
    if len(words) == 2:
        raise InvalidRequestHead(HTTPStatus.BAD_REQUEST,
                                 f"request line {text!r} has no HTTP version; send "
                                 f"'{words[0]} {words[1]} HTTP/1.1'")
    if len(words) != 3:
        raise InvalidRequestHead(HTTPStatus.BAD_REQUEST,
                                 f"malformed request line {text!r}; expected 'METHOD TARGET HTTP/1.1' "
                                 "with single spaces")
    method, target, version = words
    match = _VERSION.match(version)
    if match is None:
        raise InvalidRequestHead(HTTPStatus.BAD_REQUEST,
                                 f"invalid HTTP version {version!r} in the request line; send HTTP/1.1")
    if match.group(1) != "1":
        raise InvalidRequestHead(HTTPStatus.HTTP_VERSION_NOT_SUPPORTED,
                                 f"HTTP version {version} is not supported; send HTTP/1.1")
    if not _TARGET.match(target):
        encoded = "".join(character if "!" <= character <= "~" else f"%{ord(character):02X}"
                          for character in target)
        raise InvalidRequestHead(HTTPStatus.BAD_REQUEST,
                                 "invalid request target: control characters and non-ASCII bytes "
                                 f"must be percent-encoded, as in {encoded!r}")
    absolute = _ABSOLUTE_FORM.match(target)
    if absolute is not None:
        # RFC 9112, section 3.2.2: a server accepts a full URL as the target and
        # ignores its scheme and host.
        target = target[absolute.end():] or "/"
    if not _TOKEN.match(method):
        raise InvalidRequestHead(HTTPStatus.BAD_REQUEST, f"invalid method {method!r}")
    if target.startswith("//"):
        # As http.server does since CPython 3.11: a target of several leading
        # slashes would look like a network path to code that builds URLs from it.
        target = "/" + target.lstrip("/")
    return RequestLine(method, target, "HTTP/1.0" if match.group(2) == "0" else "HTTP/1.1")


def read_headers(rfile: BinaryIO, max_line_bytes: int = MAX_HEADER_LINE_BYTES,
                 max_fields: int = MAX_HEADER_FIELDS) -> RequestHeaders:
    """Read header fields up to the blank line that ends the head; raise ``InvalidRequestHead`` if they are malformed.

    Values lose the spaces and tabs around them. A field line folded onto
    the next line (obsolete, RFC 9112, section 5.2) is joined with a space.
    A value with a control character other than a tab is rejected.
    """
    headers = RequestHeaders()
    fields: List[List[str]] = []
    while True:
        line = rfile.readline(max_line_bytes + 1)
        if len(line) > max_line_bytes:
            raise InvalidRequestHead(HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE,
                                     f"a header field line exceeds {max_line_bytes} bytes")
        if line in (b"\r\n", b"\n"):
            break
        if not line:
            raise InvalidRequestHead(HTTPStatus.BAD_REQUEST,
                                     "the request head ended before the blank line after its header fields")
        text = line.decode("iso-8859-1")
        if text[0] in " \t":
            if not fields:
                raise InvalidRequestHead(HTTPStatus.BAD_REQUEST,
                                         f"the first header field line {text.strip(_WHITESPACE)!r} "
                                         "starts with whitespace")
            fields[-1][1] = f"{fields[-1][1]} {text.strip(_WHITESPACE)}".strip(_WHITESPACE)
            continue
        name, colon, value = text.partition(":")
        if not colon or not _TOKEN.match(name):
            raise InvalidRequestHead(HTTPStatus.BAD_REQUEST,
                                     f"invalid header field line {text.rstrip(_WHITESPACE)!r}; "
                                     "expected 'Name: value'")
        if len(fields) == max_fields:
            raise InvalidRequestHead(HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE,
                                     f"the request has more than {max_fields} header fields")
        fields.append([name, value.strip(_WHITESPACE)])
    for name, value in fields:
        if _INVALID_VALUE_CHARACTER.search(value):
            raise InvalidRequestHead(HTTPStatus.BAD_REQUEST,
                                     f"header field {name} contains a control character: {value!r}")
        headers.add(name, value)
    return headers


def connection_options(headers: RequestHeaders) -> List[str]:
    """Return the lowercase options of every Connection field, such as ``["keep-alive"]``."""
    return [option.strip().lower()
            for value in headers.get_all("Connection", [])
            for option in value.split(",")]
