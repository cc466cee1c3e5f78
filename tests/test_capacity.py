"""Tests of the memory limits: messages behind gaps, per rocket and in total, and rockets."""

import json
import unittest

from lunar.fleet import CapacityError, ControlCenter, Journal, Limits, Refusal
from lunar.messages import decode_message
from tests.liveserver import start_service
from tests.support import flight_body


class RecordingJournal(Journal):
    """Remembers which messages were recorded."""

    def __init__(self):
        self.recorded = []

    def record(self, message, state):
        self.recorded.append((message.channel, message.number))


class LimitsTest(unittest.TestCase):
    def setUp(self):
        self.journal = RecordingJournal()
        self.fleet = ControlCenter(self.journal, Limits(max_pending_per_rocket=3,
                                                        max_pending_total=5, max_rockets=3))

    def receive(self, channel, number):
        return self.fleet.receive(decode_message(flight_body(channel, number)))

    def test_per_rocket_limit_rejects_further_buffering(self):
        for number in (3, 4, 5):
            self.receive("a", number)
        with self.assertRaises(CapacityError) as raised:
            self.receive("a", 6)
        self.assertEqual(raised.exception.limit_name, "max_pending_per_rocket")
        self.assertEqual(raised.exception.limit, 3)
        self.assertIn("'a'", str(raised.exception))
        self.assertNotIn(("a", 6), self.journal.recorded)
        self.assertEqual(self.fleet.rocket("a")["pendingMessages"], 3)

    def test_next_expected_message_is_accepted_past_the_limit(self):
        for number in (3, 4, 5):
            self.receive("a", number)
        with self.assertRaises(CapacityError):
            self.receive("a", 7)
        self.receive("a", 1)
        self.receive("a", 2)
        rocket = self.fleet.rocket("a")
        self.assertEqual(rocket["lastMessageNumber"], 5)
        self.assertEqual(rocket["pendingMessages"], 0)
        self.assertEqual(self.fleet.counts()[1], 0)
        self.fleet.check_invariants()

    def test_total_limit_counts_every_rocket(self):
        for channel, number in (("a", 3), ("a", 4), ("a", 5), ("b", 3), ("b", 4)):
            self.receive(channel, number)
        with self.assertRaises(CapacityError) as raised:
            self.receive("c", 3)
        self.assertEqual(raised.exception.limit_name, "max_pending_total")
        self.assertEqual(self.fleet.counts()[1], 5)
        self.assertIsNone(self.fleet.rocket("c"))

    def test_rocket_limit_rejects_new_channels_only(self):
        for channel in ("a", "b", "c"):
            self.receive(channel, 1)
        with self.assertRaises(CapacityError) as raised:
            self.receive("d", 1)
        self.assertEqual(raised.exception.limit_name, "max_rockets")
        self.receive("a", 2)
        self.assertEqual(self.fleet.rocket("a")["lastMessageNumber"], 2)
        self.assertIsNone(self.fleet.rocket("d"))

    def test_duplicates_are_acknowledged_at_the_limit(self):
        for number in (3, 4, 5):
            self.receive("a", number)
        self.assertEqual(self.receive("a", 4).value, "duplicate")

    def test_warning_is_logged_once_per_rocket(self):
        for number in (3, 4, 5):
            self.receive("a", number)
        with self.assertLogs("lunar.fleet", "WARNING") as logs:
            for number in (6, 7, 8):
                with self.assertRaises(CapacityError):
                    self.receive("a", number)
        self.assertEqual(len(logs.records), 1)
        self.assertEqual(logs.records[0].channel, "a")

    def test_counts_follow_status_changes(self):
        self.receive("a", 1)
        self.receive("b", 2)
        statuses, pending = self.fleet.counts()
        self.assertEqual(statuses, {"pending": 1, "launched": 1, "exploded": 0})
        self.assertEqual(pending, 1)
        self.receive("b", 1)
        statuses, pending = self.fleet.counts()
        self.assertEqual(statuses, {"pending": 0, "launched": 2, "exploded": 0})
        self.assertEqual(pending, 0)


class BatchLimitsTest(unittest.TestCase):
    def setUp(self):
        self.fleet = ControlCenter(Journal(), Limits(max_pending_per_rocket=3,
                                                     max_pending_total=5, max_rockets=3))

    def receive_batch(self, *numbered):
        return self.fleet.receive_batch(
            [decode_message(flight_body(channel, number)) for channel, number in numbered])

    def test_batch_refuses_past_per_rocket_limit(self):
        outcomes = self.receive_batch(("a", 3), ("a", 4), ("a", 5), ("a", 6), ("a", 1))

        self.assertEqual([getattr(outcome, "value", "refused") for outcome in outcomes],
                         ["buffered", "buffered", "buffered", "refused", "applied"])
        self.assertIn("maximum per rocket", outcomes[3].error)
        self.assertEqual(self.fleet.rocket("a")["pendingMessages"], 3)

    def test_batch_counts_its_own_new_rockets(self):
        outcomes = self.receive_batch(("a", 1), ("b", 1), ("c", 1), ("d", 1))

        self.assertIsInstance(outcomes[3], Refusal)
        self.assertIn("3 rockets", outcomes[3].error)
        self.assertIsNone(self.fleet.rocket("d"))

    def test_batch_keeps_counts_exact(self):
        self.receive_batch(("a", 1), ("b", 2), ("b", 3), ("c", 4))
        statuses, pending = self.fleet.counts()
        self.assertEqual(statuses, {"pending": 2, "launched": 1, "exploded": 0})
        self.assertEqual(pending, 3)

        self.receive_batch(("b", 1), ("c", 1))
        statuses, pending = self.fleet.counts()
        self.assertEqual(statuses, {"pending": 0, "launched": 3, "exploded": 0})
        self.assertEqual(pending, 1)
        self.fleet.check_invariants()


class CapacityHttpTest(unittest.TestCase):
    def test_rejection_is_503_naming_the_flag(self):
        service = start_service(self, limits=Limits(max_pending_per_rocket=1))
        self.assertEqual(service.request("POST", "/messages", flight_body("a", 3))[0], 202)
        with self.assertLogs("lunar", "WARNING") as logs:
            status, headers, body = service.request("POST", "/messages", flight_body("a", 4))
        self.assertEqual(status, 503)
        self.assertTrue(any("max_pending_per_rocket" in line or "maximum per rocket" in line
                            for line in logs.output), logs.output)
        error = json.loads(body)["error"]
        self.assertIn("--max-pending-per-rocket", error)
        self.assertIn("message 1", error)
        self.assertEqual(service.rejections.counts()["capacity"], 1)
        self.assertEqual(service.request("POST", "/messages", flight_body("a", 1))[0], 202)
        self.assertEqual(service.control_center.rocket("a")["lastMessageNumber"], 1)


if __name__ == "__main__":
    unittest.main()
