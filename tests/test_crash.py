"""A crash test: kill -9 the server mid-load and lose nothing it acknowledged."""

import http.client
import json
import os
import random
import tempfile
import threading
import time
import unittest

from lunar.fleet import ControlCenter
from lunar.messages import decode_message
from tests.serverprocess import ServerProcess
from tests.support import flight_body

ROCKETS = 6
MESSAGES_PER_ROCKET = 500
SENDERS = 3
RETRY_DELAY_SECONDS = 0.05
RUN_TIMEOUT_SECONDS = 120.0
TIME = "2025-04-02T09:21:50.458989221+02:00"


def make_stream(seed):
    """Return a shuffled list of message bodies for a few rockets."""
    generator = random.Random(seed)
    bodies = []
    for rocket in range(ROCKETS):
        channel = f"crash-{rocket}"
        for number in range(1, MESSAGES_PER_ROCKET + 1):
            if number == 1:
                message_type, payload = "RocketLaunched", {
                    "type": "Atlas-H", "launchSpeed": 500, "mission": "GEMINI"}
            else:
                message_type = generator.choice(["RocketSpeedIncreased", "RocketSpeedDecreased"])
                payload = {"by": generator.choice([500, 1000])}
            bodies.append(json.dumps({
                "metadata": {"channel": channel, "messageNumber": number,
                             "messageTime": TIME, "messageType": message_type},
                "message": payload,
            }).encode("utf-8"))
    generator.shuffle(bodies)
    return bodies


class RetryingClient:
    """Posts each body until it gets a 2xx, like the rockets program, with a deadline."""

    def __init__(self, bodies):
        self.queue = list(bodies)
        self.acknowledged = []
        self.lock = threading.Lock()
        self.port = None
        self.deadline = time.monotonic() + RUN_TIMEOUT_SECONDS

    def send_all(self):
        threads = [threading.Thread(target=self._sender) for _ in range(SENDERS)]
        for thread in threads:
            thread.start()
        return threads

    def _sender(self):
        connection = None
        while time.monotonic() < self.deadline:
            with self.lock:
                if not self.queue:
                    return
                body = self.queue.pop()
                port = self.port
            try:
                if connection is None:
                    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
                connection.request("POST", "/messages", body,
                                   {"Content-Type": "application/json"})
                response = connection.getresponse()
                response.read()
                if 200 <= response.status < 300:
                    with self.lock:
                        self.acknowledged.append(body)
                    continue
            except (OSError, http.client.HTTPException):
                if connection is not None:
                    connection.close()
                connection = None
            with self.lock:
                self.queue.insert(0, body)
            time.sleep(RETRY_DELAY_SECONDS)


class CrashTest(unittest.TestCase):
    def test_kill_9_loses_no_acknowledged_message(self):
        directory = tempfile.TemporaryDirectory()
        self.addCleanup(directory.cleanup)
        database = os.path.join(directory.name, "crash.db")
        bodies = make_stream(seed=7)
        client = RetryingClient(bodies)

        server = ServerProcess("--db", database).start()
        self.addCleanup(lambda: server.stop())
        client.port = server.port
        threads = client.send_all()
        while len(client.acknowledged) < len(bodies) // 3 and time.monotonic() < client.deadline:
            time.sleep(0.01)
        server.kill()
        acknowledged_at_crash = len(client.acknowledged)

        # Same port, so the client's retries reach the restarted server.
        server.arguments[server.arguments.index("--port") + 1] = str(client.port)
        server.start()
        for thread in threads:
            thread.join(RUN_TIMEOUT_SECONDS)

        self.assertGreater(acknowledged_at_crash, 0)
        self.assertEqual(len(client.queue), 0, "the client gave up before every message was stored")
        expected = ControlCenter()
        for body in sorted(client.acknowledged, key=lambda raw: json.loads(raw)["metadata"]["messageNumber"]):
            expected.receive(decode_message(body))
        connection = http.client.HTTPConnection("127.0.0.1", client.port, timeout=10)
        self.addCleanup(connection.close)
        connection.request("GET", "/rockets")
        served = json.loads(connection.getresponse().read())
        self.assertEqual(served, expected.rockets())


class RestartTest(unittest.TestCase):
    """What ``lunar_server.py`` stores survives a restart, whichever way it arrived."""

    def test_batch_and_single_messages_survive_restart(self):
        directory = tempfile.TemporaryDirectory()
        self.addCleanup(directory.cleanup)
        database = os.path.join(directory.name, "restart.db")
        server = ServerProcess("--db", database).start()
        self.addCleanup(lambda: server.stop())

        batch = b"\n".join(flight_body("batched", number) for number in range(1, 6))
        self._post(server.port, batch, "application/x-ndjson", expected_status=200)
        self._post(server.port, flight_body("single", 1), "application/json", expected_status=202)
        self.assertEqual(server.stop(), 0)
        server.start()

        rockets = {rocket["channel"]: rocket for rocket in self._get(server.port, "/rockets")}
        self.assertEqual(rockets["batched"]["lastMessageNumber"], 5)
        self.assertEqual(rockets["single"]["lastMessageNumber"], 1)
        stored = self._get(server.port, "/rockets/batched/messages")
        self.assertEqual([message["messageNumber"] for message in stored], [1, 2, 3, 4, 5])

    def _post(self, port, body, content_type, expected_status):
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        self.addCleanup(connection.close)
        connection.request("POST", "/messages", body, {"Content-Type": content_type})
        response = connection.getresponse()
        response.read()
        self.assertEqual(response.status, expected_status)

    def _get(self, port, path):
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        self.addCleanup(connection.close)
        connection.request("GET", path)
        response = connection.getresponse()
        self.assertEqual(response.status, 200)
        return json.loads(response.read())


if __name__ == "__main__":
    unittest.main()
