"""Tests of GET /events against a real server on 127.0.0.1.

Each test starts its own control center, event broker and HTTP server on a
free port and talks to it over plain sockets, so the exact bytes of the
stream are checked. Every read, wait and loop has a deadline, so a broken
stream fails a test instead of hanging it.
"""

import datetime
import http.client
import json
import logging
import socket
import threading
import time
import unittest
from typing import Any, Callable, Dict, List, NamedTuple, Optional, Tuple

from lunar.api import FleetApi
from lunar.events import EventBroker, EventsApi
from lunar.fleet import ControlCenter
from lunar.web import LunarHTTPServer

TIMEOUT_SECONDS = 5.0  # for every socket operation, wait and join
IDLE_TIMEOUT_SECONDS = 2.0  # server side; a stalled stream's blocked write gives up after this


# -- messages -----------------------------------------------------------------

def now_text() -> str:
    """Return the current time as RFC 3339 with nanoseconds."""
    moment = datetime.datetime.now(datetime.timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%f") + "000Z"


def message(channel: str, number: int, message_type: str, **payload: Any) -> Dict[str, Any]:
    """Build one telemetry message document."""
    return {
        "metadata": {
            "channel": channel,
            "messageNumber": number,
            "messageTime": now_text(),
            "messageType": message_type,
        },
        "message": payload,
    }


def launch(channel: str, speed: int = 500, mission: str = "ARTEMIS", rocket_type: str = "Falcon-9",
           number: int = 1) -> Dict[str, Any]:
    return message(channel, number, "RocketLaunched", type=rocket_type, launchSpeed=speed, mission=mission)


def speed_up(channel: str, number: int, by: int = 1) -> Dict[str, Any]:
    return message(channel, number, "RocketSpeedIncreased", by=by)


def explode(channel: str, number: int, reason: str = "PRESSURE_VESSEL_FAILURE") -> Dict[str, Any]:
    return message(channel, number, "RocketExploded", reason=reason)


class MessagePoster:
    """POSTs messages over one keep-alive connection."""

    def __init__(self, address: Tuple[str, int]) -> None:
        self.connection = http.client.HTTPConnection(address[0], address[1], timeout=TIMEOUT_SECONDS)

    def post(self, document: Dict[str, Any]) -> int:
        """Send one message and return the response status.

        A keep-alive connection that the server closed while idle is opened
        again once; resending is safe because duplicates are ignored.
        """
        body = json.dumps(document).encode("utf-8")
        for attempt in range(2):
            try:
                self.connection.request("POST", "/messages", body=body,
                                        headers={"Content-Type": "application/json"})
                response = self.connection.getresponse()
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
                self.connection.close()
                if attempt == 1:
                    raise
                continue
            response.read()
            return response.status
        raise AssertionError("unreachable")

    def close(self) -> None:
        self.connection.close()


# -- a server-sent events client ---------------------------------------------

class ServerEvent(NamedTuple):
    """One block of the stream, up to its blank line."""

    event_type: Optional[str]
    event_id: Optional[str]
    data: Optional[str]
    comments: List[str]
    retry: Optional[str]
    raw: bytes

    def json(self) -> Any:
        return json.loads(self.data)


class EventStreamClient:
    """A GET /events request over a raw socket that parses the stream block by block.

    After a non-200 status, ``body`` is the response body and there is no
    stream to read.
    """

    def __init__(self, address: Tuple[str, int], last_event_id: Optional[str] = None,
                 method: str = "GET", receive_buffer_bytes: Optional[int] = None) -> None:
        self.socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if receive_buffer_bytes is not None:
            # Set before connect() so that the advertised TCP window stays small.
            self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer_bytes)
        self.socket.settimeout(TIMEOUT_SECONDS)
        self.socket.connect(address)
        lines = [f"{method} /events HTTP/1.1", f"Host: {address[0]}:{address[1]}",
                 "Accept: text/event-stream"]
        if last_event_id is not None:
            lines.append(f"Last-Event-ID: {last_event_id}")
        self.socket.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("ascii"))
        self.buffer = b""
        self.status = 0
        self.headers: Dict[str, str] = {}
        self.body = b""

    def read_head(self) -> None:
        """Read the status line and headers, and the body of a non-200 response."""
        deadline = time.monotonic() + TIMEOUT_SECONDS
        while b"\r\n\r\n" not in self.buffer:
            self._receive(deadline)
        head, self.buffer = self.buffer.split(b"\r\n\r\n", 1)
        status_line, *header_lines = head.decode("latin-1").split("\r\n")
        self.status = int(status_line.split()[1])
        for line in header_lines:
            name, _, value = line.partition(":")
            self.headers[name.strip().lower()] = value.strip()
        if self.status != 200 and "content-length" in self.headers:
            length = int(self.headers["content-length"])
            while len(self.buffer) < length:
                self._receive(deadline)
            self.body, self.buffer = self.buffer[:length], self.buffer[length:]

    def _receive(self, deadline: float) -> None:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise socket.timeout("no complete block from the event stream before the deadline")
        self.socket.settimeout(remaining)
        data = self.socket.recv(65536)
        if not data:
            raise EOFError("the server closed the event stream")
        self.buffer += data

    def next_block(self, timeout: float = TIMEOUT_SECONDS) -> ServerEvent:
        """Return the next block, waiting at most ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while b"\n\n" not in self.buffer:
            self._receive(deadline)
        raw, self.buffer = self.buffer.split(b"\n\n", 1)
        fields: Dict[str, str] = {}
        comments = []
        for line in raw.decode("utf-8").split("\n"):
            if line.startswith(":"):
                comments.append(line[1:].strip())
                continue
            name, _, value = line.partition(":")
            fields[name] = value[1:] if value.startswith(" ") else value
        return ServerEvent(fields.get("event"), fields.get("id"), fields.get("data"),
                           comments, fields.get("retry"), raw + b"\n\n")

    def next_event(self, event_types: Tuple[str, ...] = ("rocket", "snapshot"),
                   timeout: float = TIMEOUT_SECONDS) -> ServerEvent:
        """Return the next event of one of ``event_types``, skipping everything else."""
        deadline = time.monotonic() + timeout
        while True:
            block = self.next_block(max(0.0, deadline - time.monotonic()))
            if block.event_type in event_types:
                return block

    def wait_for_event(self, matches: Callable[[ServerEvent], bool],
                       timeout: float = TIMEOUT_SECONDS) -> ServerEvent:
        """Return the first block for which ``matches`` is true."""
        deadline = time.monotonic() + timeout
        while True:
            block = self.next_block(max(0.0, deadline - time.monotonic()))
            if matches(block):
                return block

    def read_until_closed(self, timeout: float = TIMEOUT_SECONDS) -> bool:
        """Read and discard until the server closes; return False on timeout."""
        deadline = time.monotonic() + timeout
        try:
            while True:
                self._receive(deadline)
                self.buffer = b""
        except EOFError:
            return True
        except (socket.timeout, ConnectionError):
            return False

    def close(self) -> None:
        self.socket.close()


def is_rocket_event(channel: str, **expected: Any) -> Callable[[ServerEvent], bool]:
    """Match a rocket event of ``channel`` whose JSON has the ``expected`` fields."""
    def matches(block: ServerEvent) -> bool:
        if block.event_type != "rocket":
            return False
        rocket = block.json()
        return rocket["channel"] == channel and all(rocket[key] == value for key, value in expected.items())
    return matches


def wait_until(condition: Callable[[], bool], timeout: float = TIMEOUT_SECONDS) -> bool:
    """Poll ``condition`` every 20 ms until it is true; return False on timeout."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return condition()


# -- the tests ------------------------------------------------------------------

class EventServerTestCase(unittest.TestCase):
    """Starts a fleet API with /events on 127.0.0.1 for each test."""

    def start_server(self, **broker_options: Any) -> None:
        self.control_center = ControlCenter()
        self.broker = EventBroker(self.control_center, **broker_options)
        routes = FleetApi(self.control_center).routes() + EventsApi(self.broker).routes()
        self.server = LunarHTTPServer(("127.0.0.1", 0), routes, idle_timeout=IDLE_TIMEOUT_SECONDS)
        self.address = self.server.server_address[:2]
        self.server_thread = threading.Thread(target=self.server.serve_forever,
                                              kwargs={"poll_interval": 0.05}, daemon=True)
        self.server_thread.start()
        self.addCleanup(self.stop_server)
        self.poster = MessagePoster(self.address)
        self.addCleanup(self.poster.close)

    def stop_server(self) -> None:
        self.server.shutdown()
        self.broker.close()
        self.server.server_close()
        self.server_thread.join(TIMEOUT_SECONDS)

    def post(self, document: Dict[str, Any]) -> None:
        self.assertEqual(self.poster.post(document), 202)

    def subscribe(self, last_event_id: Optional[str] = None, **options: Any) -> EventStreamClient:
        client = EventStreamClient(self.address, last_event_id, **options)
        self.addCleanup(client.close)
        client.read_head()
        return client

    def open_stream(self, last_event_id: Optional[str] = None) -> Tuple[EventStreamClient, ServerEvent]:
        """Subscribe and return the client with its first event after the retry block."""
        client = self.subscribe(last_event_id)
        self.assertEqual(client.status, 200)
        retry = client.next_block()
        self.assertEqual(retry.retry, "2000")
        return client, client.next_event()


class EventStreamFramingTest(EventServerTestCase):
    def setUp(self) -> None:
        self.start_server(flush_interval=0.05, stats_interval=60.0)

    def test_stream_headers(self) -> None:
        client = self.subscribe()

        self.assertEqual(client.status, 200)
        self.assertEqual(client.headers["content-type"], "text/event-stream")
        self.assertEqual(client.headers["cache-control"], "no-store")
        self.assertEqual(client.headers["x-accel-buffering"], "no")
        self.assertEqual(client.headers["connection"], "close")
        self.assertNotIn("content-length", client.headers)
        self.assertNotIn("transfer-encoding", client.headers)

    def test_blocks_have_event_id_data_lines(self) -> None:
        client = self.subscribe()
        epoch = self.broker.epoch

        self.assertEqual(client.next_block().raw, b"retry: 2000\n\n")
        snapshot = client.next_block()
        self.assertEqual(snapshot.raw, f"event: snapshot\nid: {epoch}-0\ndata: []\n\n".encode("ascii"))

        self.post(launch("ch-1", speed=500))
        event = client.next_event()
        lines = event.raw.decode("utf-8").split("\n")
        self.assertEqual(lines[0], "event: rocket")
        self.assertEqual(lines[1], f"id: {epoch}-1")
        self.assertTrue(lines[2].startswith("data: {"), lines[2])
        self.assertEqual(lines[3:], ["", ""])
        self.assertEqual(event.json()["channel"], "ch-1")
        self.assertEqual(event.json()["speed"], 500)

    def test_data_with_line_breaks_stays_on_one_line(self) -> None:
        client, _ = self.open_stream()

        self.post(launch("ch-1", mission="line one\nline two\r\nend\u2028"))

        event = client.next_event()
        self.assertEqual(event.raw.count(b"\n"), 4)
        self.assertEqual(event.json()["mission"], "line one\nline two\r\nend\u2028")

    def test_snapshot_contains_fleet_on_connect(self) -> None:
        self.post(launch("ch-1", speed=500))
        self.post(launch("ch-2", speed=700, mission="APOLLO"))
        self.post(speed_up("ch-2", 2, by=50))

        _, snapshot = self.open_stream()

        self.assertEqual(snapshot.event_type, "snapshot")
        rockets = {rocket["channel"]: rocket for rocket in snapshot.json()}
        self.assertEqual(set(rockets), {"ch-1", "ch-2"})
        self.assertEqual(rockets["ch-1"]["speed"], 500)
        self.assertEqual(rockets["ch-2"]["speed"], 750)
        self.assertEqual(rockets["ch-2"]["mission"], "APOLLO")
        self.assertEqual(rockets["ch-2"]["lastMessageNumber"], 2)

    def test_head_request_releases_its_slot(self) -> None:
        client = EventStreamClient(self.address, method="HEAD")
        self.addCleanup(client.close)
        client.read_head()

        self.assertEqual(client.status, 200)
        self.assertTrue(client.read_until_closed())
        self.assertEqual(client.buffer, b"")
        self.assertTrue(wait_until(lambda: self.broker.subscriber_count() == 0))


class LastEventIdTest(EventServerTestCase):
    def setUp(self) -> None:
        self.start_server(flush_interval=0.05, stats_interval=60.0, ring_size=3)
        self.watcher, _ = self.open_stream()

    def publish_launches(self, channels: List[str]) -> List[str]:
        """Launch one rocket per channel, each in its own flush; return the event ids."""
        event_ids = []
        for channel in channels:
            self.post(launch(channel))
            event = self.watcher.wait_for_event(is_rocket_event(channel))
            event_ids.append(event.event_id)
        return event_ids

    def test_replays_missed_events(self) -> None:
        client, snapshot = self.open_stream()
        client.close()

        self.post(launch("ch-1", speed=500))
        first = self.watcher.wait_for_event(is_rocket_event("ch-1"))
        self.post(speed_up("ch-1", 2, by=25))
        second = self.watcher.wait_for_event(is_rocket_event("ch-1", speed=525))

        resumed, replayed = self.open_stream(last_event_id=snapshot.event_id)
        self.assertEqual(replayed.event_type, "rocket")
        self.assertEqual(replayed.event_id, first.event_id)
        self.assertEqual(replayed.json()["speed"], 500)
        replayed_second = resumed.next_event()
        self.assertEqual(replayed_second.event_id, second.event_id)
        self.assertEqual(replayed_second.json()["speed"], 525)

    def test_replay_then_live_events(self) -> None:
        first_id, second_id = self.publish_launches(["ch-1", "ch-2"])

        client, replayed = self.open_stream(last_event_id=first_id)
        self.post(launch("ch-3"))
        live = client.next_event()

        self.assertEqual(replayed.event_type, "rocket")
        self.assertEqual(replayed.event_id, second_id)
        self.assertEqual(replayed.json()["channel"], "ch-2")
        self.assertEqual(live.event_type, "rocket")
        self.assertEqual(live.json()["channel"], "ch-3")

    def test_latest_id_replays_nothing(self) -> None:
        (latest_id,) = self.publish_launches(["ch-1"])
        client = self.subscribe(last_event_id=latest_id)
        self.assertEqual(client.next_block().retry, "2000")

        self.post(launch("ch-2"))
        first = client.next_event()

        self.assertEqual(first.event_type, "rocket")
        self.assertEqual(first.json()["channel"], "ch-2")

    def test_stale_epoch_gets_snapshot(self) -> None:
        self.publish_launches(["ch-1", "ch-2"])
        earlier_epoch = int(self.broker.epoch) - 1

        _, first = self.open_stream(last_event_id=f"{earlier_epoch}-1")

        self.assertEqual(first.event_type, "snapshot")
        self.assertEqual({rocket["channel"] for rocket in first.json()}, {"ch-1", "ch-2"})
        self.assertEqual(first.event_id, f"{self.broker.epoch}-2")

    def test_id_older_than_ring_gets_snapshot(self) -> None:
        event_ids = self.publish_launches(["ch-1", "ch-2", "ch-3", "ch-4", "ch-5"])
        epoch = self.broker.epoch
        self.assertEqual(event_ids, [f"{epoch}-{sequence}" for sequence in range(1, 6)])

        _, too_old = self.open_stream(last_event_id=f"{epoch}-1")
        self.assertEqual(too_old.event_type, "snapshot")
        self.assertEqual(len(too_old.json()), 5)

        # The ring of 3 keeps events 3 to 5, so an id of 2 is the oldest it can resume.
        oldest, replayed = self.open_stream(last_event_id=f"{epoch}-2")
        self.assertEqual(replayed.event_type, "rocket")
        self.assertEqual(replayed.event_id, f"{epoch}-3")
        self.assertEqual(oldest.next_event().event_id, f"{epoch}-4")
        self.assertEqual(oldest.next_event().event_id, f"{epoch}-5")

    def test_unknown_or_malformed_id_gets_snapshot(self) -> None:
        self.publish_launches(["ch-1"])
        epoch = self.broker.epoch

        for last_event_id in [f"{epoch}-99", "nonsense", f"{epoch}-", f"{epoch}--1", "-1", " "]:
            with self.subTest(last_event_id=last_event_id):
                client, first = self.open_stream(last_event_id=last_event_id)
                self.assertEqual(first.event_type, "snapshot")
                client.close()


class CoalescingTest(EventServerTestCase):
    def setUp(self) -> None:
        self.start_server(stats_interval=60.0)  # the default flush interval of 250 ms

    def test_burst_coalesced_to_four_per_second(self) -> None:
        client, _ = self.open_stream()
        updates = 200
        events: List[ServerEvent] = []
        reader_done = threading.Event()

        def read_events() -> None:
            try:
                while True:
                    event = client.next_event(("rocket",), timeout=TIMEOUT_SECONDS)
                    events.append(event)
                    if event.json()["lastMessageNumber"] == updates + 1:
                        return
            except (socket.timeout, EOFError, OSError):
                return
            finally:
                reader_done.set()

        reader = threading.Thread(target=read_events, daemon=True)
        reader.start()
        started = time.monotonic()
        self.post(launch("ch-1", speed=1000))
        for number in range(2, updates + 2):
            self.post(speed_up("ch-1", number, by=1))
        self.assertTrue(reader_done.wait(TIMEOUT_SECONDS + 2))
        elapsed = time.monotonic() - started

        self.assertTrue(events, "no rocket event arrived")
        self.assertEqual(events[-1].json()["speed"], 1000 + updates)
        self.assertEqual(events[-1].json()["lastMessageNumber"], updates + 1)
        # One flush every 250 ms gives at most ceil(elapsed / 0.25) + 1 events.
        self.assertLessEqual(len(events), int(elapsed * 4) + 2,
                             f"{len(events)} events for one rocket in {elapsed:.2f} s")
        self.assertLess(len(events), updates)


class StatsAndHeartbeatTest(EventServerTestCase):
    def test_stats_event_carries_fleet_totals(self) -> None:
        self.start_server(flush_interval=0.05, stats_interval=0.1)
        client, _ = self.open_stream()

        self.post(launch("ch-1"))
        self.post(launch("ch-2"))
        self.post(explode("ch-2", 2, reason="ENGINE_FAILURE"))
        self.post(speed_up("ch-3", 2))  # buffered: message 1 of ch-3 is missing
        self.post(launch("ch-1"))  # a duplicate

        stats = client.wait_for_event(
            lambda block: block.event_type == "stats" and block.json()["rockets"] == 3
        )
        totals = stats.json()
        self.assertIsNone(stats.event_id)
        self.assertEqual(totals["launched"], 1)
        self.assertEqual(totals["exploded"], 1)
        self.assertEqual(totals["pendingRockets"], 1)
        self.assertEqual(totals["pendingMessages"], 1)
        self.assertEqual(totals["messagesReceived"], {"applied": 3, "buffered": 1, "duplicate": 1})
        self.assertIsInstance(totals["messagesPerSecond"], (int, float))
        self.assertGreaterEqual(totals["messagesPerSecond"], 0)

    def test_buffered_message_updates_pending_count(self) -> None:
        self.start_server(flush_interval=0.05, stats_interval=0.2)
        client, _ = self.open_stream()
        self.post(launch("ch-1"))
        client.wait_for_event(is_rocket_event("ch-1"))

        self.post(speed_up("ch-1", 3))
        self.post(speed_up("ch-2", 2))

        waiting = client.wait_for_event(is_rocket_event("ch-1", pendingMessages=1))
        unlaunched = client.wait_for_event(is_rocket_event("ch-2", pendingMessages=1))
        self.assertEqual(waiting.json()["lastMessageNumber"], 1)
        self.assertEqual(unlaunched.json()["status"], "pending")

    def test_stats_reports_ingest_rate(self) -> None:
        self.start_server(flush_interval=0.05, stats_interval=0.5)
        client, _ = self.open_stream()

        self.post(launch("ch-1"))
        for number in range(2, 101):
            self.post(speed_up("ch-1", number))

        stats = client.wait_for_event(
            lambda block: block.event_type == "stats" and block.json()["messagesPerSecond"] > 0
        )
        self.assertGreater(stats.json()["messagesPerSecond"], 0)
        self.assertLessEqual(stats.json()["messagesReceived"]["applied"], 100)

    def test_heartbeat_comment_when_interval_passes(self) -> None:
        self.start_server(flush_interval=0.05, stats_interval=60.0, heartbeat_interval=0.2)
        client, _ = self.open_stream()

        started = time.monotonic()
        first = client.next_block(timeout=2.0)
        second = client.next_block(timeout=2.0)
        elapsed = time.monotonic() - started

        self.assertEqual(first.raw, b": heartbeat\n\n")
        self.assertEqual(second.raw, b": heartbeat\n\n")
        self.assertGreaterEqual(elapsed, 0.3)


class SubscriberLimitTest(EventServerTestCase):
    def test_subscriber_past_cap_gets_503(self) -> None:
        self.start_server(flush_interval=0.05, heartbeat_interval=0.1, max_subscribers=2)
        first, _ = self.open_stream()
        self.open_stream()

        with self.assertLogs("lunar.events", logging.WARNING) as logs:
            rejected = self.subscribe()

        self.assertEqual(rejected.status, 503)
        self.assertEqual(rejected.headers["content-type"], "application/json; charset=utf-8")
        self.assertEqual(rejected.headers["retry-after"], "10")
        self.assertEqual(rejected.headers["connection"], "close")
        self.assertIn("maximum of 2 subscribers", json.loads(rejected.body)["error"])
        self.assertIn("rejected event subscriber", logs.output[0])

    def test_slot_is_freed_when_client_leaves(self) -> None:
        self.start_server(flush_interval=0.05, heartbeat_interval=0.1, max_subscribers=1)
        first, _ = self.open_stream()
        first.close()

        # The server notices the closed socket when a heartbeat write fails.
        self.assertTrue(wait_until(lambda: self.broker.subscriber_count() == 0))
        _, snapshot = self.open_stream()
        self.assertEqual(snapshot.event_type, "snapshot")


class SlowSubscriberTest(EventServerTestCase):
    def test_stalled_subscriber_dropped_ingestion_unaffected(self) -> None:
        self.start_server(flush_interval=0.05, stats_interval=60.0, max_queued_bytes=1024 * 1024)
        stalled = EventStreamClient(self.address, receive_buffer_bytes=4096)
        self.addCleanup(stalled.close)
        healthy, _ = self.open_stream()
        self.assertTrue(wait_until(lambda: self.broker.subscriber_count() == 2))

        latest: Dict[str, int] = {}
        stop_reading = threading.Event()

        def read_healthy() -> None:
            while not stop_reading.is_set():
                try:
                    event = healthy.next_event(("rocket",), timeout=0.5)
                except socket.timeout:
                    continue
                except (EOFError, OSError):
                    return
                rocket = event.json()
                latest[rocket["channel"]] = rocket["lastMessageNumber"]

        reader = threading.Thread(target=read_healthy, daemon=True)
        reader.start()
        self.addCleanup(reader.join, TIMEOUT_SECONDS)
        self.addCleanup(stop_reading.set)

        # Each rocket event is about 20 kB, so a flush is up to 200 kB and the
        # stalled stream fills its socket buffers and then its queue quickly.
        channels = [f"ch-{index}" for index in range(10)]
        big_mission = "M" * 20_000
        for channel in channels:
            self.post(launch(channel, mission=big_mission))

        slowest_post = 0.0
        number = 1
        with self.assertLogs("lunar.events", logging.WARNING) as logs:
            deadline = time.monotonic() + 20.0
            while self.broker.subscriber_count() > 1 and time.monotonic() < deadline:
                number += 1
                for channel in channels:
                    started = time.monotonic()
                    self.post(speed_up(channel, number))
                    slowest_post = max(slowest_post, time.monotonic() - started)

        self.assertEqual(self.broker.subscriber_count(), 1)
        self.assertTrue(any("dropped event subscriber" in line for line in logs.output), logs.output)
        self.assertLess(slowest_post, 1.0)
        self.assertTrue(wait_until(lambda: latest.get(channels[-1]) == number),
                        f"healthy subscriber saw {latest.get(channels[-1])}, expected {number}")


def stream_threads_since(threads_before):
    """Return the threads started since ``threads_before`` that serve streams.

    The server's pool also starts workers and a selector thread on demand;
    those live on after a stream ends.
    """
    return {thread for thread in set(threading.enumerate()) - threads_before
            if thread.name == "lunar-stream"}


class ShutdownTest(EventServerTestCase):
    def test_close_ends_streams_and_their_threads(self) -> None:
        self.start_server(flush_interval=0.05, stats_interval=0.1)
        threads_before = set(threading.enumerate())
        clients = [self.open_stream()[0] for _ in range(3)]
        self.assertTrue(wait_until(lambda: self.broker.subscriber_count() == 3))
        stream_threads = stream_threads_since(threads_before)

        self.broker.close()

        for client in clients:
            self.assertTrue(client.read_until_closed(), "stream still open after close()")
        for thread in stream_threads:
            thread.join(TIMEOUT_SECONDS)
            self.assertFalse(thread.is_alive(), f"{thread.name} is still running")
        self.assertEqual(self.broker.subscriber_count(), 0)
        self.assertNotIn("event-broker", [thread.name for thread in threading.enumerate()])

    def test_subscribe_after_close_gets_503(self) -> None:
        self.start_server()
        self.broker.close()

        with self.assertLogs("lunar.events", logging.INFO):
            rejected = self.subscribe()

        self.assertEqual(rejected.status, 503)
        self.assertIn("shutting down", json.loads(rejected.body)["error"])

    def test_client_leaving_ends_its_thread(self) -> None:
        self.start_server(flush_interval=0.05, stats_interval=60.0, heartbeat_interval=0.1)
        threads_before = set(threading.enumerate())
        client, _ = self.open_stream()
        stream_threads = stream_threads_since(threads_before)
        self.assertTrue(stream_threads)

        client.close()

        self.assertTrue(wait_until(lambda: self.broker.subscriber_count() == 0))
        for thread in stream_threads:
            thread.join(TIMEOUT_SECONDS)
            self.assertFalse(thread.is_alive(), f"{thread.name} is still running")


if __name__ == "__main__":
    unittest.main()
