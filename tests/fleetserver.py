"""An in-process lunar server on 127.0.0.1 port 0 for API tests, with a small HTTP client.

The server runs the real route table, handler and control center in a
thread, with an in-memory SQLite journal unless a test passes another
journal. It does not check responses: the tests do that.
"""

import contextlib
import http.client
import json
import logging
import random
import threading
import unittest
from typing import Any, Dict, Iterator, NamedTuple, Optional, Sequence

from lunar.api import FleetApi
from lunar.fleet import ControlCenter, Journal
from lunar.store import MEMORY, SQLiteJournal
from lunar.web import LunarHTTPServer

REQUEST_TIMEOUT_SECONDS = 10.0
STOP_TIMEOUT_SECONDS = 10.0
POLL_INTERVAL_SECONDS = 0.05  # how soon serve_forever notices shutdown()
TIME = "2025-04-02T09:21:50.458989221+02:00"

PAYLOADS = {
    "RocketLaunched": {"type": "Falcon-9", "launchSpeed": 500, "mission": "ARTEMIS"},
    "RocketSpeedIncreased": {"by": 500},
    "RocketSpeedDecreased": {"by": 500},
    "RocketExploded": {"reason": "FROZEN_O_RINGS"},
    "RocketMissionChanged": {"newMission": "SHUTTLE_MIR"},
}

# Values of the sample fleet. Repeats make ties in every sort field.
SAMPLE_LAUNCHED_ROCKETS = 48
SAMPLE_PENDING_ROCKETS = 12
SAMPLE_LAUNCH_TIMES = (
    "2025-04-02T09:21:50+02:00",
    "2025-04-02T07:21:50Z",  # the same instant as the line above
    "2025-04-02T07:21:50.000000001Z",
    "2025-04-01T22:00:00.5-01:00",
    "2025-04-03T00:00:00Z",
)
SAMPLE_TYPES = ("Falcon-9", "falcon-9", "Atlas-V", "ATLAS-v", "Delta-IV")
SAMPLE_MISSIONS = ("ARTEMIS", "artemis", "GEMINI", "Apollo", "Mars Return/2")
SAMPLE_SPEEDS = (500, 1000, 1000.5, 1500, 2500)
SAMPLE_CHANNEL_PREFIXES = ("rocket", "Rocket", "ROCKET")


class Reply(NamedTuple):
    """A response as the tests read it."""

    status: int
    headers: http.client.HTTPMessage
    body: bytes

    def json(self) -> Any:
        """Return the body decoded as JSON."""
        return json.loads(self.body.decode("utf-8"))


def message_body(channel: str, number: int, message_type: str = "RocketSpeedIncreased",
                 time: str = TIME, **payload: Any) -> bytes:
    """Return a message's JSON bytes; the payload defaults suit each known type."""
    document = {
        "metadata": {"channel": channel, "messageNumber": number,
                     "messageTime": time, "messageType": message_type},
        "message": {**PAYLOADS.get(message_type, {}), **payload},
    }
    return json.dumps(document).encode("utf-8")


class FleetServer:
    """A running lunar server with its control center and journal."""

    def __init__(self, journal: Optional[Journal] = None, cors_origins: Sequence[str] = ()) -> None:
        self.journal = SQLiteJournal(MEMORY) if journal is None else journal
        self.control_center = ControlCenter(self.journal)
        self.server = LunarHTTPServer(("127.0.0.1", 0), FleetApi(self.control_center).routes(),
                                      cors_origins=cors_origins)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever,
                                       kwargs={"poll_interval": POLL_INTERVAL_SECONDS},
                                       name="fleet-server", daemon=True)
        self.thread.start()

    def stop(self) -> None:
        """Stop serving, close the socket and the journal, and wait for the thread."""
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(STOP_TIMEOUT_SECONDS)
        if isinstance(self.journal, SQLiteJournal):
            self.journal.close()

    def request(self, method: str, path: str, body: Optional[bytes] = None,
                headers: Optional[Dict[str, str]] = None) -> Reply:
        """Send one request on a new connection and return the reply."""
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=REQUEST_TIMEOUT_SECONDS)
        try:
            connection.request(method, path, body=body, headers=headers or {})
            response = connection.getresponse()
            return Reply(response.status, response.headers, response.read())
        finally:
            connection.close()

    def get(self, path: str, headers: Optional[Dict[str, str]] = None) -> Reply:
        """Send a GET request."""
        return self.request("GET", path, headers=headers)

    def post_message(self, channel: str, number: int, message_type: str = "RocketSpeedIncreased",
                     time: str = TIME, **payload: Any) -> Reply:
        """Post one message and fail unless it is accepted."""
        reply = self.request("POST", "/messages", message_body(channel, number, message_type, time, **payload),
                             {"Content-Type": "application/json"})
        if reply.status != 202:
            raise AssertionError(f"POST /messages returned {reply.status}: {reply.body!r}")
        return reply


def post_sample_fleet(server: FleetServer, seed: int) -> None:
    """Post a fleet of 60 rockets with ties and missing values in every sort field.

    48 rockets are launched: some then change speed or mission, explode, or
    have a message waiting behind a gap. 12 are pending: half applied a
    speed change before any launch (so they have a lastMessageTime), half
    only buffered a message (so they have none).
    """
    generator = random.Random(seed)
    for index in range(SAMPLE_LAUNCHED_ROCKETS):
        channel = f"{generator.choice(SAMPLE_CHANNEL_PREFIXES)}-{index:02d}"
        server.post_message(channel, 1, "RocketLaunched", generator.choice(SAMPLE_LAUNCH_TIMES),
                            type=generator.choice(SAMPLE_TYPES),
                            launchSpeed=generator.choice(SAMPLE_SPEEDS),
                            mission=generator.choice(SAMPLE_MISSIONS))
        follow_up = generator.choice(("none", "speed", "explosion", "mission", "gap"))
        time = generator.choice(SAMPLE_LAUNCH_TIMES)
        if follow_up == "speed":
            server.post_message(channel, 2, "RocketSpeedIncreased", time, by=500)
        elif follow_up == "explosion":
            server.post_message(channel, 2, "RocketExploded", time)
        elif follow_up == "mission":
            server.post_message(channel, 2, "RocketMissionChanged", time,
                                newMission=generator.choice(SAMPLE_MISSIONS))
        elif follow_up == "gap":
            server.post_message(channel, 3, "RocketSpeedIncreased", time)
    with _quiet("lunar.fleet"):  # the expected warnings about messages before a launch
        for index in range(SAMPLE_PENDING_ROCKETS):
            channel = f"pending-{index:02d}"
            number = 1 if index % 2 else 2
            server.post_message(channel, number, "RocketSpeedIncreased",
                                generator.choice(SAMPLE_LAUNCH_TIMES))


@contextlib.contextmanager
def _quiet(logger_name: str) -> Iterator[None]:
    logger = logging.getLogger(logger_name)
    previous_level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(previous_level)


def start_server(test: unittest.TestCase, **arguments: Any) -> FleetServer:
    """Start a server for one test and stop it when the test ends."""
    server = FleetServer(**arguments)
    test.addCleanup(server.stop)
    return server
