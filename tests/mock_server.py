"""A small in-process lunar server for launcher tests, listening on 127.0.0.1.

It applies each channel's messages in message number order, buffers early
messages until the gap closes, ignores duplicates, and serves ``GET
/rockets``. Options inject faults: 503 responses, a message that is
acknowledged but never applied, and a message that is always rejected. It
is not the real lunar server: it validates little, stores nothing on disk,
and has no query parameters.
"""

import json
import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable, Dict, List, Optional

MessageFilter = Callable[[str, int], bool]


class _Channel:
    """Server-side state of one channel."""

    def __init__(self, channel: str) -> None:
        self.channel = channel
        self.type: Optional[str] = None
        self.speed = 0
        self.mission: Optional[str] = None
        self.status = "pending"
        self.explosion_reason: Optional[str] = None
        self.launch_time: Optional[str] = None
        self.last_message_number = 0
        self.last_message_time: Optional[str] = None
        self.pending: Dict[int, Dict[str, Any]] = {}

    def apply(self, document: Dict[str, Any]) -> None:
        metadata = document["metadata"]
        payload = document["message"]
        message_type = metadata["messageType"]
        if message_type == "RocketLaunched":
            self.type = payload["type"]
            self.speed = payload["launchSpeed"]
            self.mission = payload["mission"]
            self.status = "launched"
            self.launch_time = metadata["messageTime"]
        elif message_type == "RocketSpeedIncreased":
            self.speed += payload["by"]
        elif message_type == "RocketSpeedDecreased":
            self.speed -= payload["by"]
        elif message_type == "RocketMissionChanged":
            self.mission = payload["newMission"]
        elif message_type == "RocketExploded":
            self.status = "exploded"
            self.explosion_reason = payload["reason"]
        self.last_message_number = metadata["messageNumber"]
        self.last_message_time = metadata["messageTime"]

    def as_json(self) -> Dict[str, Any]:
        return {
            "channel": self.channel,
            "type": self.type,
            "speed": self.speed,
            "mission": self.mission,
            "status": self.status,
            "explosionReason": self.explosion_reason,
            "launchTime": self.launch_time,
            "lastMessageNumber": self.last_message_number,
            "lastMessageTime": self.last_message_time,
            "pendingMessages": len(self.pending),
        }


class MockLunarServer:
    """A threaded HTTP server with ordered per-channel application, for tests.

    ``fail_first``: respond to the first N POSTs with 503.
    ``drop``: acknowledge the first message it matches with 202 but never apply it.
    ``reject``: respond to every delivery of a matching message with 503.
    ``port``: TCP port on 127.0.0.1, 0 for a free one.
    Use it as a context manager; ``url`` is the messages URL.
    """

    def __init__(
        self,
        fail_first: int = 0,
        drop: Optional[MessageFilter] = None,
        reject: Optional[MessageFilter] = None,
        port: int = 0,
    ) -> None:
        self.lock = threading.Lock()
        self.channels: Dict[str, _Channel] = {}
        self.fail_first = fail_first
        self.drop = drop
        self.reject = reject
        self.dropped: List[tuple] = []
        self.posts = 0
        self.accepted = 0
        self.duplicates = 0
        self.held_early = 0
        self.failed_on_purpose = 0
        self.connections = 0
        self.message_times: List[str] = []
        self._server = ThreadingHTTPServer(("127.0.0.1", port), _make_handler(self))
        self._server.daemon_threads = True
        self._thread: Optional[threading.Thread] = None

    @property
    def port(self) -> int:
        return self._server.server_address[1]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/messages"

    def start(self) -> "MockLunarServer":
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5.0)

    def __enter__(self) -> "MockLunarServer":
        return self.start()

    def __exit__(self, *exc_info: Any) -> None:
        self.stop()

    def rockets(self) -> List[Dict[str, Any]]:
        with self.lock:
            return [channel.as_json() for channel in self.channels.values()]

    def receive(self, document: Dict[str, Any]) -> int:
        """Apply or buffer one message and return the HTTP status of the response."""
        metadata = document["metadata"]
        channel_id = metadata["channel"]
        number = metadata["messageNumber"]
        with self.lock:
            self.posts += 1
            if self.posts <= self.fail_first:
                self.failed_on_purpose += 1
                return HTTPStatus.SERVICE_UNAVAILABLE
            if self.reject is not None and self.reject(channel_id, number):
                self.failed_on_purpose += 1
                return HTTPStatus.SERVICE_UNAVAILABLE
            if self.drop is not None and not self.dropped and self.drop(channel_id, number):
                self.dropped.append((channel_id, number))
                return HTTPStatus.ACCEPTED

            self.message_times.append(metadata["messageTime"])
            channel = self.channels.get(channel_id)
            if channel is None:
                channel = self.channels[channel_id] = _Channel(channel_id)
            if number <= channel.last_message_number or number in channel.pending:
                self.duplicates += 1
                return HTTPStatus.ACCEPTED
            self.accepted += 1
            if number != channel.last_message_number + 1:
                self.held_early += 1
                channel.pending[number] = document
                return HTTPStatus.ACCEPTED
            channel.apply(document)
            while channel.last_message_number + 1 in channel.pending:
                channel.apply(channel.pending.pop(channel.last_message_number + 1))
            return HTTPStatus.ACCEPTED


def _make_handler(server: MockLunarServer) -> type:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True
        timeout = 10  # seconds an idle keep-alive connection stays open

        def setup(self) -> None:
            super().setup()
            with server.lock:
                server.connections += 1

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def do_POST(self) -> None:
            if self.path != "/messages":
                self._answer(HTTPStatus.NOT_FOUND, {"error": f"no route for {self.path}"})
                return
            length = int(self.headers.get("Content-Length", "0"))
            body = self.rfile.read(length)
            try:
                document = json.loads(body)
                document["metadata"]["channel"]
                document["metadata"]["messageNumber"]
                document["message"]
            except (ValueError, KeyError, TypeError) as error:
                self._answer(HTTPStatus.BAD_REQUEST, {"error": f"invalid message: {error}"})
                return
            status = server.receive(document)
            if status == HTTPStatus.ACCEPTED:
                self._answer(status, None)
            else:
                self._answer(status, {"error": "cannot store the message now"})

        def do_GET(self) -> None:
            if self.path != "/rockets":
                self._answer(HTTPStatus.NOT_FOUND, {"error": f"no route for {self.path}"})
                return
            self._answer(HTTPStatus.OK, server.rockets())

        def _answer(self, status: int, document: Any) -> None:
            body = b"" if document is None else json.dumps(document).encode("utf-8")
            self.send_response(status)
            if body:
                self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if body:
                self.wfile.write(body)

    return Handler


def main() -> None:
    """Serve the mock on 127.0.0.1 for manual runs and measurements, for a bounded time."""
    import argparse
    import time

    parser = argparse.ArgumentParser(description="Run the launcher tests' mock lunar server on 127.0.0.1.")
    parser.add_argument("--port", type=int, default=0, help="TCP port, 0 for a free one (default: 0)")
    parser.add_argument("--seconds", type=float, default=600.0, help="stop after this many seconds (default: 600)")
    arguments = parser.parse_args()

    with MockLunarServer(port=arguments.port) as server:
        print(server.url, flush=True)
        time.sleep(arguments.seconds)


if __name__ == "__main__":
    main()
