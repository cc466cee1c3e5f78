"""Tests of graceful shutdown: SIGTERM mid-load loses no acknowledged message and exits 0 in time."""

import http.client
import os
import signal
import sqlite3
import tempfile
import threading
import time
import unittest

from tests.serverprocess import ServerProcess
from tests.support import flight_body

SENDERS = 3
ACKNOWLEDGED_BEFORE_SIGNAL = 300
EXIT_DEADLINE_SECONDS = 5.0
RUN_TIMEOUT_SECONDS = 60.0


class Sender(threading.Thread):
    """Posts one rocket's messages in order over one keep-alive connection until an error."""

    def __init__(self, port, channel, deadline):
        super().__init__(daemon=True)
        self.port = port
        self.channel = channel
        self.deadline = deadline
        self.acknowledged = []
        self.statuses = set()

    def run(self):
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        number = 1
        try:
            while time.monotonic() < self.deadline:
                connection.request("POST", "/messages", flight_body(self.channel, number))
                response = connection.getresponse()
                response.read()
                self.statuses.add(response.status)
                if response.status != 202:
                    return
                self.acknowledged.append(number)
                number += 1
        except (OSError, http.client.HTTPException):
            return  # the server stopped: whatever was not acknowledged may be lost
        finally:
            connection.close()


class ShutdownTest(unittest.TestCase):
    def setUp(self):
        directory = tempfile.TemporaryDirectory()
        self.addCleanup(directory.cleanup)
        self.database = os.path.join(directory.name, "shutdown.db")

    def test_sigterm_mid_load_keeps_every_acknowledged_message(self):
        server = ServerProcess("--db", self.database).start()
        self.addCleanup(server.kill)
        deadline = time.monotonic() + RUN_TIMEOUT_SECONDS
        senders = [Sender(server.port, f"shutdown-{index}", deadline) for index in range(SENDERS)]
        for sender in senders:
            sender.start()
        while (sum(len(sender.acknowledged) for sender in senders) < ACKNOWLEDGED_BEFORE_SIGNAL
               and time.monotonic() < deadline):
            time.sleep(0.01)

        signalled = time.monotonic()
        status = server.stop(signal.SIGTERM)
        elapsed = time.monotonic() - signalled
        for sender in senders:
            sender.join(RUN_TIMEOUT_SECONDS)

        self.assertEqual(status, 0, "".join(server.log_lines))
        self.assertLess(elapsed, EXIT_DEADLINE_SECONDS)
        self.assertTrue(any("lunar stopped" in line for line in server.log_lines))
        with sqlite3.connect(self.database) as database:
            stored = set(database.execute("SELECT channel, number FROM messages"))
        database.close()
        for sender in senders:
            self.assertFalse(sender.is_alive())
            self.assertEqual(sender.statuses - {202, 503}, set())
            acknowledged = {(sender.channel, number) for number in sender.acknowledged}
            self.assertGreater(len(acknowledged), 0)
            self.assertEqual(acknowledged - stored, set(),
                             f"{sender.channel}: acknowledged but not stored")

    def test_sigint_with_idle_connections_exits_0_quickly(self):
        server = ServerProcess("--db", self.database, "--idle-timeout", "60").start()
        self.addCleanup(server.kill)
        connections = []
        for _ in range(5):
            connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
            self.addCleanup(connection.close)
            connection.request("GET", "/readyz")
            response = connection.getresponse()
            response.read()
            self.assertEqual(response.status, 200)
            connections.append(connection)

        signalled = time.monotonic()
        status = server.stop(signal.SIGINT)
        self.assertEqual(status, 0, "".join(server.log_lines))
        self.assertLess(time.monotonic() - signalled, EXIT_DEADLINE_SECONDS)
        with sqlite3.connect(self.database) as database:
            self.assertEqual(database.execute("PRAGMA integrity_check").fetchone()[0], "ok")
        database.close()
        self.assertFalse(os.path.exists(self.database + "-wal")
                         and os.path.getsize(self.database + "-wal") > 0,
                         "the write-ahead log was not checkpointed on close")


if __name__ == "__main__":
    unittest.main()
