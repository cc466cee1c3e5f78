"""Shared helpers for the lunar tests: message builders, a test server and HTTP calls.

Builders return plain JSON documents (dicts) so that a test can break any
field before encoding it. ``to_message`` turns a document into the validated
``Message`` that ``ControlCenter.receive`` takes. ``RunningServer`` serves a
fleet API on 127.0.0.1 (or ::1) from a background thread, and
``request``/``post_json``/``get_json`` talk to it with ``http.client``.
Every network helper takes a timeout, so a broken server fails a test
instead of hanging it.
"""

import contextlib
import datetime
import http.client
import io
import json
import socket
import threading
from typing import Any, Dict, Iterable, List, NamedTuple, Optional, Sequence, Union

from lunar.api import FleetApi
from lunar.fleet import ControlCenter, Journal, JournalError, RocketState
from lunar.messages import Message, decode_message
from lunar.rockets import cli as rockets_cli
from lunar.web import LunarHTTPServer, Route

# Timeout for every socket operation and thread join in the tests.
TIMEOUT_SECONDS = 5.0

# Messages built without an explicit time are dated after this instant.
BASE_TIME = datetime.datetime(2025, 4, 2, 9, 0, 0, tzinfo=datetime.timezone.utc)

ROCKET_KEYS = frozenset({
    "channel", "type", "speed", "mission", "status", "explosionReason",
    "launchTime", "lastMessageNumber", "lastMessageTime", "pendingMessages",
})


# -- messages -----------------------------------------------------------------

def message_time(number: int) -> str:
    """Return the default RFC 3339 messageTime for message ``number``.

    The time is ``number`` milliseconds after ``BASE_TIME``, with nine
    fractional digits. It grows with the number up to 10**10 (about 115
    days) and wraps there, so any valid message number gets a valid time.
    """
    moment = BASE_TIME + datetime.timedelta(milliseconds=number % 10**10)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%f") + "000Z"


def make_message(channel: str, number: int, message_type: str, /, *,
                 message_time_text: Optional[str] = None, **payload: Any) -> Dict[str, Any]:
    """Build one message document as the ``rockets`` program sends it.

    The keyword arguments become the payload, so ``type=`` sets the rocket
    type of a RocketLaunched message. The first three parameters are
    positional-only for that reason. ``message_time_text`` overrides the
    default messageTime from ``message_time(number)``.
    """
    return {
        "metadata": {
            "channel": channel,
            "messageNumber": number,
            "messageTime": message_time_text or message_time(number),
            "messageType": message_type,
        },
        "message": dict(payload),
    }


def launch_message(channel: str, number: int = 1, *, speed: float = 500,
                   mission: str = "ARTEMIS", rocket_type: str = "Falcon-9",
                   message_time_text: Optional[str] = None) -> Dict[str, Any]:
    """Build a RocketLaunched document with ordinary defaults."""
    return make_message(channel, number, "RocketLaunched",
                        message_time_text=message_time_text,
                        type=rocket_type, launchSpeed=speed, mission=mission)


def flight_body(channel: str, number: int, by: float = 10) -> bytes:
    """Return the request body of message ``number``: the launch for 1, else a speed increase."""
    if number == 1:
        return encode(launch_message(channel))
    return encode(make_message(channel, number, "RocketSpeedIncreased", by=by))


def run_rockets_cli(argv: Sequence[str]) -> tuple:
    """Run ``python3 -m lunar.rockets`` in this process; return status, stdout and stderr."""
    stdout = io.StringIO()
    stderr = io.StringIO()
    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
        status = rockets_cli.main(list(argv))
    return status, stdout.getvalue(), stderr.getvalue()


def encode(document: Any) -> bytes:
    """Encode a document as the UTF-8 JSON body of a request."""
    return json.dumps(document).encode("utf-8")


def to_message(document: Dict[str, Any]) -> Message:
    """Validate a document the way the API does and return the ``Message``."""
    return decode_message(encode(document))


def receive_all(control_center: ControlCenter, documents: Iterable[Dict[str, Any]]) -> list:
    """Pass each document to ``control_center.receive`` and return the outcomes."""
    return [control_center.receive(to_message(document)) for document in documents]


# -- journals -----------------------------------------------------------------

class RecordingJournal(Journal):
    """A journal that stores every ``record`` call and can be set to fail.

    While ``failure`` is set, ``record`` raises it instead of storing the
    call. ``on_record``, when set, runs before the failure check with the
    message and state, so a test can look at the fleet at that moment.
    """

    def __init__(self) -> None:
        self.records: List[tuple] = []
        self.failure: Optional[BaseException] = None
        self.on_record = None

    def record(self, message: Message, state: Optional[RocketState]) -> None:
        if self.on_record is not None:
            self.on_record(message, state)
        if self.failure is not None:
            raise self.failure
        self.records.append((message, state))

    def fail_with(self, text: str = "disk full") -> None:
        """Make every following ``record`` call raise ``JournalError(text)``."""
        self.failure = JournalError(text)


# -- invalid messages -----------------------------------------------------------

class InvalidCase(NamedTuple):
    """A request body that must be rejected, and the field its error names first."""

    description: str
    body: bytes
    field: str


_MISSING = object()  # marks a field to delete in the builders below

VALID_PAYLOADS = {
    "RocketLaunched": {"type": "Falcon-9", "launchSpeed": 500, "mission": "ARTEMIS"},
    "RocketSpeedIncreased": {"by": 3000},
    "RocketSpeedDecreased": {"by": 2500},
    "RocketExploded": {"reason": "PRESSURE_VESSEL_FAILURE"},
    "RocketMissionChanged": {"newMission": "SHUTTLE_MIR"},
}

_BAD_TEXT_VALUES = [
    ("missing", _MISSING), ("null", None), ("empty", ""), ("number", 5),
    ("boolean", True), ("array", ["x"]), ("object", {"x": 1}),
    ("lone surrogate", "\ud800"),
]

_BAD_SPEED_VALUES = [
    ("missing", _MISSING), ("null", None), ("string", "500"), ("true", True),
    ("false", False), ("array", [1]), ("object", {}),
    ("above 1e12", 1e12 + 1), ("below -1e12", -1e12 - 1), ("huge integer", 10**30),
]

_BAD_NUMBER_VALUES = [
    ("missing", _MISSING), ("null", None), ("0", 0), ("-1", -1), ("2^63", 2**63),
    ("true", True), ("false", False), ("1.0", 1.0), ("1.5", 1.5), ("string", "1"),
]

_BAD_TIME_VALUES = [
    ("missing", _MISSING), ("null", None), ("empty", ""), ("number", 1743585710),
    ("free text", "yesterday"), ("no zone", "2025-04-02T09:21:50"),
    ("February 30", "2025-02-30T09:21:50Z"), ("date only", "2025-04-02"),
]


def _replace(document: Dict[str, Any], section: str, key: str, value: Any) -> bytes:
    if value is _MISSING:
        del document[section][key]
    else:
        document[section][key] = value
    return encode(document)


def _body_cases() -> List[InvalidCase]:
    valid = encode(launch_message("invalid-case"))
    deep = 100_000
    return [
        InvalidCase("truncated JSON", valid[:-1], "body"),
        InvalidCase("empty body", b"", "body"),
        InvalidCase("trailing garbage", valid + b"x", "body"),
        InvalidCase("invalid UTF-8", valid.replace(b"ARTEMIS", b"ART\xffEMIS"), "body"),
        InvalidCase("UTF-8 byte order mark", b"\xef\xbb\xbf" + valid, "body"),
        InvalidCase("NaN", valid.replace(b": 500", b": NaN"), "body"),
        InvalidCase("Infinity", valid.replace(b": 500", b": Infinity"), "body"),
        InvalidCase("-Infinity", valid.replace(b": 500", b": -Infinity"), "body"),
        InvalidCase("1e400", valid.replace(b": 500", b": 1e400"), "body"),
        InvalidCase("5000-digit integer", valid.replace(b": 500", b": " + b"9" * 5000), "body"),
        InvalidCase("array nested 100,000 deep", b"[" * deep + b"]" * deep, "body"),
        InvalidCase("object nested 100,000 deep in a field",
                    valid[:-1] + b', "extra": ' + b'{"a":' * deep + b"1" + b"}" * deep + b"}",
                    "body"),
        InvalidCase("body is a boolean", b"true", "body"),
        InvalidCase("body is a string", b'"hello"', "body"),
        InvalidCase("body is a number", b"42", "body"),
        InvalidCase("body is null", b"null", "body"),
    ]


def _envelope_cases() -> List[InvalidCase]:
    cases = [
        InvalidCase("metadata missing", encode({"message": {}}), "metadata"),
        InvalidCase("metadata null", encode({"metadata": None, "message": {}}), "metadata"),
        InvalidCase("metadata array", encode({"metadata": [], "message": {}}), "metadata"),
        InvalidCase("metadata string", encode({"metadata": "x", "message": {}}), "metadata"),
    ]
    metadata_values = [
        ("channel", _BAD_TEXT_VALUES),
        ("messageNumber", _BAD_NUMBER_VALUES),
        ("messageType", _BAD_TEXT_VALUES),
        ("messageTime", _BAD_TIME_VALUES),
    ]
    for key, values in metadata_values:
        for label, value in values:
            body = _replace(launch_message("invalid-case"), "metadata", key, value)
            cases.append(InvalidCase(f"{key} {label}", body, f"metadata.{key}"))
    for label, value in [("missing", _MISSING), ("null", None), ("array", []),
                         ("string", "launch"), ("number", 1)]:
        document = launch_message("invalid-case")
        if value is _MISSING:
            del document["message"]
        else:
            document["message"] = value
        cases.append(InvalidCase(f"message {label}", encode(document), "message"))
    return cases


def _payload_cases() -> List[InvalidCase]:
    cases = []
    for message_type, payload in VALID_PAYLOADS.items():
        for key, valid_value in payload.items():
            values = _BAD_SPEED_VALUES if isinstance(valid_value, int) else _BAD_TEXT_VALUES
            for label, value in values:
                document = make_message("invalid-case", 1, message_type, **payload)
                body = _replace(document, "message", key, value)
                cases.append(InvalidCase(f"{message_type} {key} {label}", body, f"message.{key}"))
    return cases


def invalid_message_cases() -> List[InvalidCase]:
    """Return every request body the API must reject with 400, with its field.

    ``field`` is the name that the error message starts with: ``body`` for
    a problem with the document as a whole, otherwise a dotted path such as
    ``metadata.channel`` or ``message.launchSpeed``.
    """
    return _body_cases() + _envelope_cases() + _payload_cases()


def error_field(message: str) -> str:
    """Return the field an error message names: its first word, less a colon."""
    return message.split(maxsplit=1)[0].rstrip(":")


# -- the test server ------------------------------------------------------------

class RunningServer:
    """A ``LunarHTTPServer`` serving from a background thread until ``stop``.

    ``routes`` defaults to the fleet API of ``control_center`` (a fresh
    ``ControlCenter`` when none is given). ``server_class`` lets a test
    substitute a subclass. Use it as a context manager, or call ``stop``
    from ``addCleanup``.
    """

    def __init__(self, control_center: Optional[ControlCenter] = None, *,
                 routes: Optional[Sequence[Route]] = None, host: str = "127.0.0.1",
                 idle_timeout: float = 0.5, server_class: type = LunarHTTPServer) -> None:
        self.control_center = control_center if control_center is not None else ControlCenter()
        if routes is None:
            routes = FleetApi(self.control_center).routes()
        self.server = server_class((host, 0), routes, idle_timeout=idle_timeout)
        self.host = host
        self.port = self.server.server_address[1]
        self._serving = threading.Event()
        self._thread = threading.Thread(target=self._serve, name=f"lunar-test-{self.port}",
                                        daemon=True)
        self._thread.start()
        if not self._serving.wait(TIMEOUT_SECONDS):
            self.stop()
            raise RuntimeError(f"test server on port {self.port} did not start "
                               f"within {TIMEOUT_SECONDS} s")

    def _serve(self) -> None:
        self._serving.set()
        # shutdown() waits up to one poll interval (0.5 s by default), so keep it short.
        self.server.serve_forever(poll_interval=0.02)

    def connect(self, timeout: float = TIMEOUT_SECONDS) -> http.client.HTTPConnection:
        """Return a new, not yet opened, HTTP connection to the server."""
        return http.client.HTTPConnection(self.host, self.port, timeout=timeout)

    def raw_socket(self, timeout: float = TIMEOUT_SECONDS) -> socket.socket:
        """Return a connected TCP socket, for requests ``http.client`` cannot send."""
        return socket.create_connection((self.host, self.port), timeout=timeout)

    def stop(self) -> None:
        """Stop serving, close the listening socket and join the thread."""
        if self._thread.is_alive():
            self.server.shutdown()
        self.server.server_close()
        self._thread.join(TIMEOUT_SECONDS)
        if self._thread.is_alive():
            raise RuntimeError(f"test server thread on port {self.port} did not stop")

    def __enter__(self) -> "RunningServer":
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.stop()


# -- HTTP calls ------------------------------------------------------------------

class Reply(NamedTuple):
    """A complete HTTP response: status, headers and the body bytes."""

    status: int
    headers: http.client.HTTPMessage
    body: bytes

    def json(self) -> Any:
        """Decode the body as UTF-8 JSON."""
        return json.loads(self.body.decode("utf-8"))


def request(connection: http.client.HTTPConnection, method: str, path: str,
            body: Union[bytes, Iterable[bytes], None] = None,
            headers: Optional[Dict[str, str]] = None) -> Reply:
    """Send one request on ``connection`` and read its whole response."""
    connection.request(method, path, body=body, headers=headers or {})
    response = connection.getresponse()
    return Reply(response.status, response.headers, response.read())


def post_json(connection: http.client.HTTPConnection, document: Any,
              path: str = "/messages", headers: Optional[Dict[str, str]] = None) -> Reply:
    """POST a document (or raw bytes) as a JSON body."""
    body = document if isinstance(document, bytes) else encode(document)
    all_headers = {"Content-Type": "application/json"}
    all_headers.update(headers or {})
    return request(connection, "POST", path, body, all_headers)


def get_json(connection: http.client.HTTPConnection, path: str) -> Reply:
    """GET ``path``."""
    return request(connection, "GET", path)


def read_until_closed(sock: socket.socket, limit: int = 1 << 20) -> bytes:
    """Read from ``sock`` until the peer closes it.

    Raises ``socket.timeout`` (``TimeoutError`` from Python 3.10) when the
    peer keeps the connection open past the socket's timeout.
    """
    chunks = []
    received = 0
    while received < limit:
        chunk = sock.recv(65536)
        if not chunk:
            break
        chunks.append(chunk)
        received += len(chunk)
    return b"".join(chunks)


class _RecordedSocket:
    """A socket stand-in that lets ``http.client`` parse bytes already read."""

    def __init__(self, data: bytes) -> None:
        self._data = data

    def makefile(self, mode: str, *args: Any, **kwargs: Any) -> io.BytesIO:
        return io.BytesIO(self._data)


def parse_response(raw: bytes, method: str = "GET") -> Reply:
    """Parse the first HTTP response in ``raw`` with ``http.client``."""
    response = http.client.HTTPResponse(_RecordedSocket(raw), method=method)
    response.begin()
    return Reply(response.status, response.headers, response.read())


def exchange_raw(server: RunningServer, data: bytes) -> bytes:
    """Send raw bytes on a new connection and return all bytes until the server closes it.

    Send only what the server will read: data left unread when the server
    closes makes its kernel send a reset, which can discard the response.
    """
    with server.raw_socket() as sock:
        sock.sendall(data)
        return read_until_closed(sock)
