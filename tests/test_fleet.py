"""Tests for ``lunar.fleet``: the ordering rules and queries of the control center.

No sockets here: each test feeds validated messages straight into a
``ControlCenter`` and reads its JSON views. Every test ends by checking the
documented invariants of every rocket.
"""

import random
import sys
import threading
import unittest
from unittest import mock
from typing import Any, Dict, List

from lunar.fleet import ControlCenter, JournalError, Outcome, RocketState
from tests.support import (
    ROCKET_KEYS,
    TIMEOUT_SECONDS,
    RecordingJournal,
    launch_message,
    make_message,
    receive_all,
    to_message,
)


def speed_up(channel: str, number: int, by: float) -> Dict[str, Any]:
    return make_message(channel, number, "RocketSpeedIncreased", by=by)


def slow_down(channel: str, number: int, by: float) -> Dict[str, Any]:
    return make_message(channel, number, "RocketSpeedDecreased", by=by)


def explode(channel: str, number: int, reason: str = "PRESSURE_VESSEL_FAILURE") -> Dict[str, Any]:
    return make_message(channel, number, "RocketExploded", reason=reason)


def change_mission(channel: str, number: int, mission: str) -> Dict[str, Any]:
    return make_message(channel, number, "RocketMissionChanged", newMission=mission)


class FleetTestCase(unittest.TestCase):
    """Base class: a fresh control center per test, with an invariant check after it."""

    def setUp(self) -> None:
        self.journal = RecordingJournal()
        self.control_center = ControlCenter(self.journal)

    def tearDown(self) -> None:
        self.control_center.check_invariants()

    def receive(self, *documents: Dict[str, Any]) -> List[Outcome]:
        return receive_all(self.control_center, documents)

    def rocket(self, channel: str) -> Dict[str, Any]:
        rocket = self.control_center.rocket(channel)
        self.assertIsNotNone(rocket, f"no rocket {channel!r}")
        return rocket


class OrderingTest(FleetTestCase):

    def test_in_order_messages_applied(self):
        outcomes = self.receive(
            launch_message("r1", 1, speed=500, mission="ARTEMIS"),
            speed_up("r1", 2, 3000),
            slow_down("r1", 3, 1000),
            change_mission("r1", 4, "APOLLO"),
        )

        rocket = self.rocket("r1")
        self.assertEqual(outcomes, [Outcome.APPLIED] * 4)
        self.assertEqual(rocket["speed"], 2500)
        self.assertEqual(rocket["mission"], "APOLLO")
        self.assertEqual(rocket["status"], "launched")
        self.assertEqual(rocket["lastMessageNumber"], 4)
        self.assertEqual(rocket["pendingMessages"], 0)

    def test_out_of_order_messages_wait_for_gap(self):
        self.receive(launch_message("r1", 1, speed=100))

        outcomes = self.receive(speed_up("r1", 3, 10), speed_up("r1", 4, 1))

        self.assertEqual(outcomes, [Outcome.BUFFERED, Outcome.BUFFERED])
        waiting = self.rocket("r1")
        self.assertEqual(waiting["speed"], 100)
        self.assertEqual(waiting["lastMessageNumber"], 1)
        self.assertEqual(waiting["pendingMessages"], 2)

        self.assertEqual(self.receive(speed_up("r1", 2, 1000)), [Outcome.APPLIED])

        rocket = self.rocket("r1")
        self.assertEqual(rocket["speed"], 1111)
        self.assertEqual(rocket["lastMessageNumber"], 4)
        self.assertEqual(rocket["lastMessageTime"], make_message("r1", 4, "x")["metadata"]["messageTime"])
        self.assertEqual(rocket["pendingMessages"], 0)

    def test_drain_stops_at_next_gap(self):
        self.receive(launch_message("r1", 1, speed=0), speed_up("r1", 3, 3),
                     speed_up("r1", 4, 4), speed_up("r1", 6, 6))

        self.receive(speed_up("r1", 2, 2))

        rocket = self.rocket("r1")
        self.assertEqual(rocket["lastMessageNumber"], 4)
        self.assertEqual(rocket["speed"], 9)
        self.assertEqual(rocket["pendingMessages"], 1)

    def test_duplicate_of_applied_message_ignored(self):
        self.receive(launch_message("r1", 1, speed=100), speed_up("r1", 2, 5))

        outcomes = self.receive(speed_up("r1", 2, 5), launch_message("r1", 1, speed=999))

        rocket = self.rocket("r1")
        self.assertEqual(outcomes, [Outcome.DUPLICATE, Outcome.DUPLICATE])
        self.assertEqual(rocket["speed"], 105)
        self.assertEqual(rocket["lastMessageNumber"], 2)

    def test_duplicate_of_buffered_message_ignored(self):
        self.receive(launch_message("r1", 1, speed=100), speed_up("r1", 3, 10))

        outcome = self.receive(speed_up("r1", 3, 99))

        self.assertEqual(outcome, [Outcome.DUPLICATE])
        self.assertEqual(self.rocket("r1")["pendingMessages"], 1)

        self.receive(speed_up("r1", 2, 1))

        self.assertEqual(self.rocket("r1")["speed"], 111, "the first copy of message 3 must win")

    def test_duplicate_not_recorded_in_journal(self):
        self.receive(launch_message("r1", 1), speed_up("r1", 3, 1))
        recorded = len(self.journal.records)

        self.receive(launch_message("r1", 1), speed_up("r1", 3, 1))

        self.assertEqual(len(self.journal.records), recorded)

    def test_outcome_counts(self):
        self.receive(launch_message("r1", 1), speed_up("r1", 3, 1), speed_up("r1", 3, 1),
                     speed_up("r1", 2, 1), launch_message("r1", 1))

        counts = self.control_center.outcome_counts
        self.assertEqual(counts[Outcome.APPLIED], 2)
        self.assertEqual(counts[Outcome.BUFFERED], 1)
        self.assertEqual(counts[Outcome.DUPLICATE], 2)

    def test_messages_before_launch_stay_pending(self):
        outcomes = self.receive(speed_up("r1", 2, 10), change_mission("r1", 3, "APOLLO"))

        rocket = self.rocket("r1")
        self.assertEqual(outcomes, [Outcome.BUFFERED, Outcome.BUFFERED])
        self.assertEqual(rocket["status"], "pending")
        self.assertIsNone(rocket["speed"])
        self.assertIsNone(rocket["mission"])
        self.assertIsNone(rocket["launchTime"])
        self.assertEqual(rocket["lastMessageNumber"], 0)
        self.assertIsNone(rocket["lastMessageTime"])
        self.assertEqual(rocket["pendingMessages"], 2)

        self.receive(launch_message("r1", 1, speed=500, mission="ARTEMIS"))

        launched = self.rocket("r1")
        self.assertEqual(launched["status"], "launched")
        self.assertEqual(launched["speed"], 510)
        self.assertEqual(launched["mission"], "APOLLO")
        self.assertEqual(launched["lastMessageNumber"], 3)
        self.assertEqual(launched["pendingMessages"], 0)

    def test_change_before_launch_only_advances(self):
        with self.assertLogs("lunar.fleet", "WARNING") as logs:
            self.receive(speed_up("r1", 1, 10), change_mission("r1", 2, "APOLLO"))

        rocket = self.rocket("r1")
        self.assertEqual(rocket["status"], "pending")
        self.assertIsNone(rocket["speed"])
        self.assertIsNone(rocket["mission"])
        self.assertEqual(rocket["lastMessageNumber"], 2)
        self.assertEqual(rocket["lastMessageTime"], make_message("r1", 2, "x")["metadata"]["messageTime"])
        self.assertIn("before the launch", logs.output[0])

        self.receive(launch_message("r1", 3, speed=7))

        self.assertEqual(self.rocket("r1")["speed"], 7)

    def test_deep_gap_drains_past_recursion_limit(self):
        depth = 20_000
        self.assertGreater(depth, sys.getrecursionlimit())
        for number in range(depth, 1, -1):
            self.control_center.receive(to_message(speed_up("r1", number, 1)))
        self.assertEqual(self.rocket("r1")["pendingMessages"], depth - 1)

        outcome = self.control_center.receive(to_message(launch_message("r1", 1, speed=0)))

        rocket = self.rocket("r1")
        self.assertEqual(outcome, Outcome.APPLIED)
        self.assertEqual(rocket["lastMessageNumber"], depth)
        self.assertEqual(rocket["speed"], depth - 1)
        self.assertEqual(rocket["pendingMessages"], 0)

    def test_explosion_is_final(self):
        self.receive(launch_message("r1", 1, speed=500, mission="ARTEMIS"),
                     explode("r1", 2, "ENGINE_FAILURE"))

        outcomes = self.receive(speed_up("r1", 3, 100), change_mission("r1", 4, "APOLLO"),
                                launch_message("r1", 5, speed=1), explode("r1", 6, "AGAIN"))

        rocket = self.rocket("r1")
        self.assertEqual(outcomes, [Outcome.APPLIED] * 4)
        self.assertEqual(rocket["status"], "exploded")
        self.assertEqual(rocket["explosionReason"], "ENGINE_FAILURE")
        self.assertEqual(rocket["speed"], 500)
        self.assertEqual(rocket["mission"], "ARTEMIS")
        self.assertEqual(rocket["lastMessageNumber"], 6)
        self.assertEqual(rocket["lastMessageTime"], make_message("r1", 6, "x")["metadata"]["messageTime"])

    def test_explosion_before_launch_does_not_explode(self):
        with self.assertLogs("lunar.fleet", "WARNING"):
            self.receive(explode("r1", 1))

        rocket = self.rocket("r1")
        self.assertEqual(rocket["status"], "pending")
        self.assertIsNone(rocket["explosionReason"])

    def test_second_launch_ignored(self):
        first = launch_message("r1", 1, speed=500, mission="ARTEMIS", rocket_type="Falcon-9",
                               message_time_text="2025-04-02T09:00:00Z")
        second = launch_message("r1", 2, speed=9, mission="APOLLO", rocket_type="Saturn-V",
                                message_time_text="2025-04-02T10:00:00Z")

        with self.assertLogs("lunar.fleet", "WARNING") as logs:
            self.receive(first, second)

        rocket = self.rocket("r1")
        self.assertEqual(rocket["type"], "Falcon-9")
        self.assertEqual(rocket["speed"], 500)
        self.assertEqual(rocket["mission"], "ARTEMIS")
        self.assertEqual(rocket["launchTime"], "2025-04-02T09:00:00Z")
        self.assertEqual(rocket["lastMessageNumber"], 2)
        self.assertEqual(rocket["lastMessageTime"], "2025-04-02T10:00:00Z")
        self.assertIn("second RocketLaunched", logs.output[0])

    def test_unknown_type_advances_sequence(self):
        self.receive(launch_message("r1", 1, speed=500), speed_up("r1", 3, 1))

        with self.assertLogs("lunar.fleet", "WARNING") as logs:
            outcome = self.receive(make_message("r1", 2, "RocketRefuelled", fuel=80))

        rocket = self.rocket("r1")
        self.assertEqual(outcome, [Outcome.APPLIED])
        self.assertEqual(rocket["speed"], 501)
        self.assertEqual(rocket["lastMessageNumber"], 3)
        self.assertIn("RocketRefuelled", logs.output[0])

    def test_negative_speed_not_clamped(self):
        self.receive(launch_message("r1", 1, speed=100), slow_down("r1", 2, 250))

        self.assertEqual(self.rocket("r1")["speed"], -150)

    def test_negative_by_reverses_direction(self):
        self.receive(launch_message("r1", 1, speed=100), speed_up("r1", 2, -30),
                     slow_down("r1", 3, -5))

        self.assertEqual(self.rocket("r1")["speed"], 75)

    def test_speed_rendering(self):
        cases = [
            ("integral float launch", [launch_message("a", speed=500.0)], 500, int),
            ("integer launch", [launch_message("b", speed=500)], 500, int),
            ("fractional launch", [launch_message("c", speed=500.5)], 500.5, float),
            ("fractions summing to integer",
             [launch_message("d", speed=0.5), speed_up("d", 2, 0.25), speed_up("d", 3, 0.25)],
             1, int),
            ("integer plus fraction", [launch_message("e", speed=500), speed_up("e", 2, 0.5)],
             500.5, float),
            ("1e12 float", [launch_message("f", speed=1e12)], 10**12, int),
            ("negative float", [launch_message("g", speed=-2.0)], -2, int),
            ("beyond 2**53 stays float",
             [launch_message("h", speed=1e12)] + [speed_up("h", n, 1e12) for n in range(2, 10_001)],
             1e16, float),
        ]
        for description, documents, expected, expected_type in cases:
            with self.subTest(description):
                self.receive(*documents)
                speed = self.rocket(documents[0]["metadata"]["channel"])["speed"]
                self.assertEqual(speed, expected)
                self.assertIs(type(speed), expected_type)

    def test_rocket_json_shape(self):
        self.receive(launch_message("r1", 1, speed=500, mission="ARTEMIS", rocket_type="Falcon-9",
                                    message_time_text="2025-04-02T09:21:50.458989221+02:00"))

        rocket = self.rocket("r1")

        self.assertEqual(set(rocket), ROCKET_KEYS)
        self.assertEqual(rocket, {
            "channel": "r1",
            "type": "Falcon-9",
            "speed": 500,
            "mission": "ARTEMIS",
            "status": "launched",
            "explosionReason": None,
            "launchTime": "2025-04-02T09:21:50.458989221+02:00",
            "lastMessageNumber": 1,
            "lastMessageTime": "2025-04-02T09:21:50.458989221+02:00",
            "pendingMessages": 0,
        })

    def test_unknown_channel_returns_none(self):
        self.receive(launch_message("r1"))

        self.assertIsNone(self.control_center.rocket("r2"))

    def test_channels_are_independent(self):
        self.receive(launch_message("r1", 1, speed=1), speed_up("r2", 2, 5),
                     launch_message("r2", 1, speed=10))

        self.assertEqual(self.rocket("r1")["speed"], 1)
        self.assertEqual(self.rocket("r2")["speed"], 15)

    def test_channel_names_are_case_sensitive(self):
        self.receive(launch_message("Rocket", speed=1), launch_message("rocket", speed=2))

        self.assertEqual(self.rocket("Rocket")["speed"], 1)
        self.assertEqual(self.rocket("rocket")["speed"], 2)


class ListenerTest(FleetTestCase):

    def test_listener_sees_applied_changes_only(self):
        seen = []
        self.control_center.add_listener(
            lambda rocket: seen.append((rocket.channel, rocket.state.last_message_number)))

        self.receive(launch_message("r1", 1), speed_up("r1", 3, 1), speed_up("r1", 3, 1),
                     speed_up("r1", 2, 1))

        self.assertEqual(seen, [("r1", 1), ("r1", 3)])

    def test_failing_listener_logged_and_ignored(self):
        def fail(rocket):
            raise RuntimeError("listener broke")

        self.control_center.add_listener(fail)

        with self.assertLogs("lunar.fleet", "ERROR") as logs:
            outcome = self.receive(launch_message("r1", 1))

        self.assertEqual(outcome, [Outcome.APPLIED])
        self.assertEqual(self.rocket("r1")["lastMessageNumber"], 1)
        self.assertIn("r1", logs.output[0])


class QueryTest(FleetTestCase):

    def channels(self, rockets: List[Dict[str, Any]]) -> List[str]:
        return [rocket["channel"] for rocket in rockets]

    def test_rockets_sorted_by_launch_instant(self):
        self.receive(
            launch_message("c", message_time_text="2025-04-02T09:00:00Z"),
            launch_message("a", message_time_text="2025-04-02T11:00:00Z"),
            launch_message("b", message_time_text="2025-04-02T10:00:00Z"),
        )

        self.assertEqual(self.channels(self.control_center.rockets()), ["c", "b", "a"])

    def test_rockets_sorted_across_zone_offsets(self):
        # As text the order would be plus-two, utc, minus-five, but as instants it is reversed.
        self.receive(
            launch_message("utc", message_time_text="2025-04-02T09:00:00Z"),
            launch_message("plus-two", message_time_text="2025-04-02T12:00:00+02:00"),
            launch_message("minus-five", message_time_text="2025-04-02T03:30:00-05:00"),
        )

        self.assertEqual(self.channels(self.control_center.rockets()),
                         ["minus-five", "utc", "plus-two"])

    def test_rockets_sorted_with_nanosecond_precision(self):
        self.receive(
            launch_message("later", message_time_text="2025-04-02T09:00:00.000000002Z"),
            launch_message("earlier", message_time_text="2025-04-02T09:00:00.000000001Z"),
            launch_message("earliest", message_time_text="2025-04-02T09:00:00Z"),
        )

        self.assertEqual(self.channels(self.control_center.rockets()),
                         ["earliest", "earlier", "later"])

    def test_launch_ties_ordered_by_channel(self):
        self.receive(
            launch_message("delta", message_time_text="2025-04-02T11:00:00+02:00"),
            launch_message("bravo", message_time_text="2025-04-02T09:00:00.000000000Z"),
            launch_message("charlie", message_time_text="2025-04-02T04:00:00-05:00"),
            launch_message("alpha", message_time_text="2025-04-02T09:00:00.0000000009Z"),
        )

        self.assertEqual(self.channels(self.control_center.rockets()),
                         ["alpha", "bravo", "charlie", "delta"])

    def test_pending_rockets_listed_last(self):
        with self.assertLogs("lunar.fleet", "WARNING"):
            self.receive(
                speed_up("pending-buffered", 2, 1),
                speed_up("a-pending-applied", 1, 1),
                launch_message("z-late", message_time_text="2030-01-01T00:00:00Z"),
                launch_message("y-early", message_time_text="1970-01-01T00:00:00Z"),
                launch_message("x-before-epoch", message_time_text="1969-01-01T00:00:00Z"),
            )

        self.assertEqual(self.channels(self.control_center.rockets()),
                         ["x-before-epoch", "y-early", "z-late",
                          "a-pending-applied", "pending-buffered"])

    def test_exploded_rockets_keep_launch_order(self):
        self.receive(
            launch_message("b", message_time_text="2025-04-02T10:00:00Z"),
            launch_message("a", message_time_text="2025-04-02T11:00:00Z"),
            explode("a", 2),
        )

        self.assertEqual(self.channels(self.control_center.rockets()), ["b", "a"])

    def test_no_rockets_yields_empty_lists(self):
        self.assertEqual(self.control_center.rockets(), [])
        self.assertEqual(self.control_center.missions(), [])
        self.assertEqual(self.control_center.mission_rockets("ARTEMIS"), [])

    def test_missions_unique_and_sorted_case_insensitively(self):
        self.receive(
            launch_message("r1", mission="artemis"),
            launch_message("r2", mission="Gemini"),
            launch_message("r3", mission="ARTEMIS"),
            launch_message("r4", mission="apollo"),
            launch_message("r5", mission="Artemis"),
            launch_message("r6", mission="Zond"),
            launch_message("r7", mission="beta"),
        )

        self.assertEqual(self.control_center.missions(),
                         ["apollo", "ARTEMIS", "beta", "Gemini", "Zond"])

    def test_mission_spelling_independent_of_arrival(self):
        shown = []
        for order in (["artemis", "ARTEMIS", "Artemis"], ["Artemis", "ARTEMIS", "artemis"]):
            control_center = ControlCenter()
            documents = [launch_message(f"r{i}", mission=mission) for i, mission in enumerate(order)]
            receive_all(control_center, documents)
            shown.append(control_center.missions())

        self.assertEqual(shown[0], ["ARTEMIS"])
        self.assertEqual(shown[1], ["ARTEMIS"])

    def test_missions_follow_mission_changes(self):
        self.receive(launch_message("r1", 1, mission="ARTEMIS"),
                     launch_message("r2", 1, mission="GEMINI"),
                     change_mission("r1", 2, "APOLLO"))

        self.assertEqual(self.control_center.missions(), ["APOLLO", "GEMINI"])

    def test_exploded_rocket_keeps_mission(self):
        self.receive(launch_message("r1", 1, mission="ARTEMIS"), explode("r1", 2))

        self.assertEqual(self.control_center.missions(), ["ARTEMIS"])

    def test_pending_rockets_have_no_mission(self):
        self.receive(launch_message("r1", 2, mission="ARTEMIS"))

        self.assertEqual(self.control_center.missions(), [])

    def test_mission_rockets_match_case_insensitively(self):
        self.receive(
            launch_message("b", mission="Artemis", message_time_text="2025-04-02T10:00:00Z"),
            launch_message("a", mission="ARTEMIS", message_time_text="2025-04-02T12:00:00+02:00"),
            launch_message("c", mission="APOLLO"),
            launch_message("d", mission="artemis 2"),
        )

        for query in ("artemis", "ARTEMIS", "aRtEmIs"):
            with self.subTest(query=query):
                rockets = self.control_center.mission_rockets(query)
                self.assertEqual(self.channels(rockets), ["a", "b"])

    def test_mission_rockets_unknown_mission_empty(self):
        self.receive(launch_message("r1", mission="ARTEMIS"))

        self.assertEqual(self.control_center.mission_rockets("APOLLO"), [])

    def test_mission_rockets_use_current_mission(self):
        self.receive(launch_message("r1", 1, mission="ARTEMIS"),
                     change_mission("r1", 2, "APOLLO"))

        self.assertEqual(self.control_center.mission_rockets("ARTEMIS"), [])
        self.assertEqual(self.channels(self.control_center.mission_rockets("apollo")), ["r1"])


class JournalTest(FleetTestCase):

    def test_record_precedes_state_change(self):
        self.receive(launch_message("r1", 1, speed=100))
        seen_during_record = []
        self.journal.on_record = lambda message, state: seen_during_record.append(
            self.control_center.rocket("r1"))

        self.receive(speed_up("r1", 3, 1), speed_up("r1", 2, 10))

        self.assertEqual(seen_during_record[0]["pendingMessages"], 0)
        self.assertEqual(seen_during_record[1]["speed"], 100)
        self.assertEqual(seen_during_record[1]["lastMessageNumber"], 1)
        self.assertEqual(seen_during_record[1]["pendingMessages"], 1)

    def test_record_gets_state_after_drain(self):
        self.receive(launch_message("r1", 1, speed=100), speed_up("r1", 3, 1))

        self.receive(speed_up("r1", 2, 10))

        buffered_message, buffered_state = self.journal.records[1]
        applied_message, applied_state = self.journal.records[2]
        self.assertEqual(buffered_message.number, 3)
        self.assertIsNone(buffered_state)
        self.assertEqual(applied_message.number, 2)
        self.assertEqual(applied_state.last_message_number, 3)
        self.assertEqual(applied_state.speed, 111)

    def test_failure_on_new_rocket_stores_nothing(self):
        self.journal.fail_with("disk full")

        for document in (launch_message("r1", 1), speed_up("r2", 5, 1)):
            with self.subTest(document["metadata"]["channel"]):
                with self.assertRaises(JournalError):
                    self.receive(document)

        self.assertEqual(self.control_center.rockets(), [])
        self.assertEqual(self.control_center.missions(), [])

    def test_failure_on_buffered_message_keeps_state(self):
        self.receive(launch_message("r1", 1, speed=100))
        before = self.rocket("r1")
        self.journal.fail_with()

        with self.assertRaises(JournalError):
            self.receive(speed_up("r1", 3, 1))

        self.assertEqual(self.rocket("r1"), before)
        self.journal.failure = None
        self.assertEqual(self.receive(speed_up("r1", 3, 1)), [Outcome.BUFFERED],
                         "a message whose recording failed must not count as a duplicate")

    def test_failure_on_applied_message_keeps_state(self):
        self.receive(launch_message("r1", 1, speed=100))
        before = self.rocket("r1")
        self.journal.fail_with()

        with self.assertRaises(JournalError):
            self.receive(explode("r1", 2))

        self.assertEqual(self.rocket("r1"), before)
        self.assertEqual(self.control_center.outcome_counts[Outcome.APPLIED], 1)

    def test_failure_during_drain_restores_heap(self):
        self.receive(launch_message("r1", 1, speed=100), speed_up("r1", 3, 10),
                     speed_up("r1", 4, 1), speed_up("r1", 6, 1000))
        before = self.rocket("r1")
        self.journal.fail_with()

        with self.assertRaises(JournalError):
            self.receive(speed_up("r1", 2, 100))

        self.assertEqual(self.rocket("r1"), before)
        self.control_center.check_invariants()

        self.journal.failure = None
        self.assertEqual(self.receive(speed_up("r1", 2, 100)), [Outcome.APPLIED])
        self.receive(speed_up("r1", 5, 0))

        rocket = self.rocket("r1")
        self.assertEqual(rocket["lastMessageNumber"], 6)
        self.assertEqual(rocket["speed"], 1211)
        self.assertEqual(rocket["pendingMessages"], 0)

    def test_restore_drains_messages_next_in_line(self):
        state = RocketState(status="launched", type="Atlas-H", speed=500,
                            mission="GEMINI", last_message_number=1)
        pending = [to_message(speed_up("r1", 2, 500)), to_message(speed_up("r1", 4, 1))]

        self.control_center.restore([("r1", state)], pending)

        rocket = self.rocket("r1")
        self.assertEqual(rocket["lastMessageNumber"], 2)
        self.assertEqual(rocket["speed"], 1000)
        self.assertEqual(rocket["pendingMessages"], 1)

    def test_failed_save_during_restore_keeps_heap(self):
        state = RocketState(status="launched", speed=500, last_message_number=1)
        pending = [to_message(speed_up("r1", 2, 500)), to_message(speed_up("r1", 3, 500))]

        with mock.patch.object(self.journal, "save_state", side_effect=JournalError("disk full")):
            with self.assertRaises(JournalError):
                self.control_center.restore([("r1", state)], pending)

        rocket = self.rocket("r1")
        self.assertEqual(rocket["lastMessageNumber"], 1)
        self.assertEqual(rocket["pendingMessages"], 2)
        self.control_center.restore([], [])  # a working journal drains the rest
        self.assertEqual(self.rocket("r1")["lastMessageNumber"], 3)

    def test_journal_that_is_falsy_still_records(self):
        class EmptyJournal(RecordingJournal):
            def __len__(self):
                return 0  # an empty container is falsy

        journal = EmptyJournal()
        control_center = ControlCenter(journal)

        receive_all(control_center, [launch_message("r1", 1)])

        self.assertEqual(len(journal.records), 1)


class ConcurrencyTest(unittest.TestCase):
    """Shuffled delivery from many threads, compared with in-order application."""

    SEED = 20250402
    ROCKETS = 10
    MESSAGES_PER_ROCKET = 300
    DUPLICATE_SHARE = 0.1
    THREADS = 8

    def generate_stream(self, rng: random.Random) -> List[Dict[str, Any]]:
        """Return each rocket's messages 1..N in order.

        About half of the rockets explode partway, so later messages are no-ops.
        """
        stream = []
        for index in range(self.ROCKETS):
            channel = f"rocket-{index:02d}"
            stream.append(launch_message(
                channel, 1, speed=rng.randrange(100, 1000), mission=rng.choice(["ARTEMIS", "apollo"]),
                message_time_text=f"2025-04-02T09:{rng.randrange(60):02d}:00.{rng.randrange(10**9):09d}Z"))
            explosion_number = rng.randrange(2, self.MESSAGES_PER_ROCKET * 2)
            for number in range(2, self.MESSAGES_PER_ROCKET + 1):
                if number == explosion_number:
                    stream.append(explode(channel, number))
                    continue
                kind = rng.random()
                if kind < 0.45:
                    stream.append(speed_up(channel, number, rng.randrange(1, 400) / 4))
                elif kind < 0.9:
                    stream.append(slow_down(channel, number, rng.randrange(1, 400) / 4))
                else:
                    stream.append(change_mission(channel, number, rng.choice(["GEMINI", "Gemini", "ZOND"])))
        return stream

    def test_shuffled_threaded_delivery_matches_in_order(self):
        rng = random.Random(self.SEED)
        ordered = [to_message(document) for document in self.generate_stream(rng)]
        duplicates = rng.sample(ordered, int(len(ordered) * self.DUPLICATE_SHARE))
        delivery = ordered + duplicates
        rng.shuffle(delivery)

        reference = ControlCenter()
        for message in ordered:
            reference.receive(message)

        # Switching threads every 10 µs instead of 5 ms makes interleavings inside
        # receive() likely, so a missing lock shows up as a wrong result.
        self.addCleanup(sys.setswitchinterval, sys.getswitchinterval())
        sys.setswitchinterval(1e-5)
        control_center = ControlCenter()
        start = threading.Barrier(self.THREADS)
        errors = []

        def post(messages):
            try:
                start.wait(TIMEOUT_SECONDS)
                for message in messages:
                    control_center.receive(message)
            except Exception as error:  # reported by the assertion below
                errors.append(error)

        threads = [threading.Thread(target=post, args=(delivery[i::self.THREADS],))
                   for i in range(self.THREADS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(TIMEOUT_SECONDS * 4)

        self.assertFalse(any(thread.is_alive() for thread in threads), "a posting thread hung")
        self.assertEqual(errors, [])
        self.assertEqual(control_center.rockets(), reference.rockets())
        self.assertEqual(control_center.missions(), reference.missions())
        counts = control_center.outcome_counts
        self.assertEqual(counts[Outcome.APPLIED] + counts[Outcome.BUFFERED], len(ordered))
        self.assertEqual(counts[Outcome.DUPLICATE], len(duplicates))
        self.assertTrue(all(rocket["pendingMessages"] == 0 for rocket in control_center.rockets()))
        control_center.check_invariants()


if __name__ == "__main__":
    unittest.main()
