"""Tests for bulk ingestion: JSON array and NDJSON batches on POST /messages.

The control center's ``receive_batch`` is tested directly with an in-memory
journal, ``SQLiteJournal.record_batch`` against real database files, and the
endpoint through a real HTTP server on 127.0.0.1.
"""

import json
import os
import sqlite3
import tempfile
import unittest
from typing import Any, List, Optional

from lunar import bulk
from lunar.api import FleetApi
from lunar.fleet import ControlCenter, JournalError, Outcome, Refusal
from lunar.messages import InvalidMessage
from lunar.store import SQLiteJournal
from lunar.web import JSON_CONTENT_TYPE, MAX_BODY_BYTES
from tests.support import (
    RecordingJournal,
    RunningServer,
    encode,
    error_field,
    exchange_raw,
    launch_message,
    make_message,
    parse_response,
    post_json,
    request,
    to_message,
)

NDJSON_HEADERS = {"Content-Type": "application/x-ndjson"}


def speed_up(channel: str, number: int, by: int = 100) -> dict:
    return make_message(channel, number, "RocketSpeedIncreased", by=by)


def ndjson(documents: List[Any]) -> bytes:
    return b"".join(encode(document) + b"\n" for document in documents)


class BatchJournal(RecordingJournal):
    """A recording journal that also keeps ``record_batch`` calls and can fail them."""

    def __init__(self) -> None:
        super().__init__()
        self.batches: List[tuple] = []

    def record_batch(self, messages, states) -> None:
        if self.failure is not None:
            raise self.failure
        self.batches.append((list(messages), list(states)))


class RefusingControlCenter(ControlCenter):
    """A control center whose capacity check refuses every new channel named ``full-*``."""

    def _batch_refusal(self, drafts, draft, message) -> Optional[Refusal]:
        if draft.rocket is None and message.channel.startswith("full-"):
            return Refusal(f"max_rockets reached: channel {message.channel!r} cannot be added")
        return None


class ReceiveBatchTest(unittest.TestCase):

    def setUp(self) -> None:
        self.journal = BatchJournal()
        self.control_center = ControlCenter(self.journal)

    def receive(self, documents: List[dict]) -> list:
        return self.control_center.receive_batch([to_message(document) for document in documents])

    def test_in_order_messages_all_applied(self):
        outcomes = self.receive([launch_message("r1", speed=500), speed_up("r1", 2), speed_up("r1", 3)])

        self.assertEqual(outcomes, [Outcome.APPLIED] * 3)
        rocket = self.control_center.rocket("r1")
        self.assertEqual(rocket["speed"], 700)
        self.assertEqual(rocket["lastMessageNumber"], 3)
        self.control_center.check_invariants()

    def test_whole_batch_recorded_in_one_call(self):
        self.receive([launch_message("r1"), speed_up("r1", 2), launch_message("r2"), speed_up("r2", 3)])

        self.assertEqual(len(self.journal.batches), 1)
        messages, states = self.journal.batches[0]
        self.assertEqual([(m.channel, m.number) for m in messages],
                         [("r1", 1), ("r1", 2), ("r2", 1), ("r2", 3)])
        self.assertEqual({channel: state.last_message_number for channel, state in states},
                         {"r1": 2, "r2": 1})
        self.assertEqual(self.journal.records, [])

    def test_out_of_order_batch_drains_within_batch(self):
        outcomes = self.receive([speed_up("r1", 3), speed_up("r1", 2), launch_message("r1")])

        self.assertEqual(outcomes, [Outcome.APPLIED] * 3)
        rocket = self.control_center.rocket("r1")
        self.assertEqual(rocket["lastMessageNumber"], 3)
        self.assertEqual(rocket["pendingMessages"], 0)
        self.control_center.check_invariants()

    def test_message_behind_unfilled_gap_stays_buffered(self):
        outcomes = self.receive([speed_up("r1", 3), launch_message("r1")])

        self.assertEqual(outcomes, [Outcome.BUFFERED, Outcome.APPLIED])
        rocket = self.control_center.rocket("r1")
        self.assertEqual(rocket["lastMessageNumber"], 1)
        self.assertEqual(rocket["pendingMessages"], 1)
        self.control_center.check_invariants()

    def test_batch_drains_messages_buffered_earlier(self):
        self.control_center.receive(to_message(speed_up("r1", 2)))
        self.control_center.receive(to_message(speed_up("r1", 3)))

        outcomes = self.receive([launch_message("r1", speed=500)])

        self.assertEqual(outcomes, [Outcome.APPLIED])
        rocket = self.control_center.rocket("r1")
        self.assertEqual(rocket["lastMessageNumber"], 3)
        self.assertEqual(rocket["speed"], 700)
        self.assertEqual(rocket["pendingMessages"], 0)
        self.control_center.check_invariants()

    def test_second_copy_in_batch_is_duplicate(self):
        outcomes = self.receive([launch_message("r1", speed=500), speed_up("r1", 2),
                                 speed_up("r1", 2, by=9999), speed_up("r1", 5), speed_up("r1", 5)])

        self.assertEqual(outcomes, [Outcome.APPLIED, Outcome.APPLIED, Outcome.DUPLICATE,
                                    Outcome.BUFFERED, Outcome.DUPLICATE])
        self.assertEqual(self.control_center.rocket("r1")["speed"], 600)
        messages, _ = self.journal.batches[0]
        self.assertEqual([m.number for m in messages], [1, 2, 5])

    def test_copies_of_stored_messages_are_duplicates(self):
        self.control_center.receive(to_message(launch_message("r1")))
        self.control_center.receive(to_message(speed_up("r1", 4)))

        outcomes = self.receive([launch_message("r1"), speed_up("r1", 4)])

        self.assertEqual(outcomes, [Outcome.DUPLICATE, Outcome.DUPLICATE])
        self.assertEqual(self.journal.batches, [])

    def test_only_duplicates_records_nothing(self):
        self.control_center.receive(to_message(launch_message("r1")))
        self.receive([launch_message("r1")])

        self.assertEqual(self.journal.batches, [])

    def test_buffered_only_new_rocket_state_recorded(self):
        self.receive([speed_up("r1", 2)])

        _, states = self.journal.batches[0]
        self.assertEqual([(channel, state.status) for channel, state in states], [("r1", "pending")])
        self.assertEqual(self.control_center.rocket("r1")["pendingMessages"], 1)

    def test_buffered_only_known_rocket_state_not_rewritten(self):
        self.control_center.receive(to_message(launch_message("r1")))
        self.receive([speed_up("r1", 3)])

        _, states = self.journal.batches[0]
        self.assertEqual(states, [])

    def test_journal_failure_changes_nothing(self):
        self.control_center.receive(to_message(speed_up("r1", 3)))
        self.control_center.receive(to_message(launch_message("r2")))
        before = self.control_center.rockets()
        self.journal.fail_with("disk full")

        with self.assertRaises(JournalError):
            self.receive([launch_message("r1"), speed_up("r1", 2), speed_up("r2", 2), launch_message("r3")])

        self.assertEqual(self.control_center.rockets(), before)
        self.assertIsNone(self.control_center.rocket("r3"))
        self.control_center.check_invariants()
        self.assertEqual(self.control_center.outcome_counts[Outcome.APPLIED], 1)

    def test_batch_after_failure_applies_buffered_messages(self):
        self.control_center.receive(to_message(speed_up("r1", 3)))
        self.journal.fail_with()
        with self.assertRaises(JournalError):
            self.receive([launch_message("r1"), speed_up("r1", 2)])
        self.journal.failure = None

        outcomes = self.receive([launch_message("r1"), speed_up("r1", 2)])

        self.assertEqual(outcomes, [Outcome.APPLIED, Outcome.APPLIED])
        self.assertEqual(self.control_center.rocket("r1")["lastMessageNumber"], 3)
        self.control_center.check_invariants()

    def test_outcome_counts_count_final_outcomes(self):
        self.receive([speed_up("r1", 2), launch_message("r1"), launch_message("r1"), speed_up("r1", 4)])

        counts = self.control_center.outcome_counts
        self.assertEqual(counts[Outcome.APPLIED], 2)
        self.assertEqual(counts[Outcome.BUFFERED], 1)
        self.assertEqual(counts[Outcome.DUPLICATE], 1)

    def test_listeners_see_final_state_once_per_rocket(self):
        seen = []
        self.control_center.add_listener(lambda rocket: seen.append(
            (rocket.channel, rocket.state.last_message_number, len(rocket.pending_numbers))))

        self.receive([launch_message("r1"), speed_up("r1", 2), speed_up("r1", 4), launch_message("r2")])

        self.assertEqual(sorted(seen), [("r1", 2, 1), ("r2", 1, 0)])

    def test_empty_batch_records_nothing(self):
        self.assertEqual(self.control_center.receive_batch([]), [])
        self.assertEqual(self.journal.batches, [])

    def test_refused_message_is_not_recorded(self):
        control_center = RefusingControlCenter(self.journal)

        outcomes = control_center.receive_batch([
            to_message(launch_message("ok")), to_message(launch_message("full-1")),
        ])

        self.assertEqual(outcomes[0], Outcome.APPLIED)
        self.assertIsInstance(outcomes[1], Refusal)
        self.assertIn("max_rockets", outcomes[1].error)
        messages, states = self.journal.batches[0]
        self.assertEqual([m.channel for m in messages], ["ok"])
        self.assertEqual([channel for channel, _ in states], ["ok"])
        self.assertIsNone(control_center.rocket("full-1"))


class SQLiteRecordBatchTest(unittest.TestCase):

    def setUp(self) -> None:
        directory = tempfile.TemporaryDirectory()
        self.addCleanup(directory.cleanup)
        self.path = os.path.join(directory.name, "lunar.db")

    def open_control_center(self) -> ControlCenter:
        journal = SQLiteJournal(self.path)
        self.addCleanup(journal.close)
        restored = journal.load()
        control_center = ControlCenter(journal)
        control_center.restore(restored.states, restored.pending)
        return control_center

    def test_batch_survives_restart(self):
        control_center = self.open_control_center()
        control_center.receive_batch([to_message(document) for document in (
            launch_message("r1", speed=500), speed_up("r1", 2), speed_up("r1", 4), speed_up("r2", 2))])
        expected = control_center.rockets()
        control_center._journal.close()

        restarted = self.open_control_center()

        self.assertEqual(restarted.rockets(), expected)
        self.assertEqual(restarted.rocket("r1")["pendingMessages"], 1)
        restarted.check_invariants()

    def test_failed_commit_keeps_nothing_of_batch(self):
        control_center = self.open_control_center()
        control_center.receive(to_message(launch_message("r1")))
        # A row the batch will insert too makes its INSERT fail mid-transaction.
        side = sqlite3.connect(self.path, isolation_level=None)
        side.execute("INSERT INTO messages VALUES ('r1', 3, 0, '{}')")
        side.close()

        with self.assertRaises(JournalError):
            control_center.receive_batch([to_message(document) for document in (
                speed_up("r1", 2), launch_message("r2"), speed_up("r1", 3))])

        self.assertEqual(control_center.rocket("r1")["lastMessageNumber"], 1)
        self.assertIsNone(control_center.rocket("r2"))
        side = sqlite3.connect(self.path)
        self.assertEqual(side.execute("SELECT count(*) FROM messages").fetchone()[0], 2)
        self.assertEqual(side.execute("SELECT channel, last_message_number FROM rockets").fetchall(),
                         [("r1", 1)])
        side.close()


class BatchEndpointTest(unittest.TestCase):

    def setUp(self) -> None:
        self.journal = BatchJournal()
        self.control_center = ControlCenter(self.journal)
        self.server = self.start_server(self.control_center)
        self.connection = self.server.connect()
        self.addCleanup(self.connection.close)

    def start_server(self, control_center: ControlCenter, **api_options: Any) -> RunningServer:
        server = RunningServer(control_center, routes=FleetApi(control_center, **api_options).routes())
        self.addCleanup(server.stop)
        return server

    def post(self, body: Any, headers: Optional[dict] = None, connection=None):
        return post_json(connection or self.connection, body, headers=headers)

    def assertOutcomes(self, reply, expected: List[str]) -> list:
        self.assertEqual(reply.status, 200, reply.body[:300])
        self.assertEqual(reply.headers["Content-Type"], JSON_CONTENT_TYPE)
        outcomes = reply.json()
        self.assertEqual([outcome["outcome"] for outcome in outcomes], expected)
        return outcomes

    def test_array_batch_answers_each_message(self):
        reply = self.post([launch_message("r1"), speed_up("r1", 2), speed_up("r1", 4)])

        outcomes = self.assertOutcomes(reply, ["applied", "applied", "buffered"])
        self.assertEqual(outcomes[0], {"outcome": "applied"})
        self.assertEqual(self.control_center.rocket("r1")["lastMessageNumber"], 2)

    def test_ndjson_batch_answers_each_line(self):
        body = encode(launch_message("r1")) + b"\r\n\n  \n" + encode(speed_up("r1", 2)) + b"\r\n"

        reply = self.post(body, NDJSON_HEADERS)

        self.assertOutcomes(reply, ["applied", "applied"])
        self.assertEqual(self.control_center.rocket("r1")["lastMessageNumber"], 2)

    def test_ndjson_media_type_with_parameters_is_batch(self):
        reply = self.post(ndjson([launch_message("r1"), launch_message("r2")]),
                          {"Content-Type": "Application/X-NDJSON; charset=utf-8"})

        self.assertOutcomes(reply, ["applied", "applied"])

    def test_single_line_ndjson_is_plain_message(self):
        reply = self.post(encode(launch_message("r1")) + b"\n\n", NDJSON_HEADERS)

        self.assertEqual(reply.status, 202)
        self.assertEqual(reply.body, b"")
        self.assertIsNotNone(self.control_center.rocket("r1"))

    def test_multi_line_json_is_one_message(self):
        reply = self.post(json.dumps(launch_message("r1"), indent=2).encode("utf-8"))

        self.assertEqual(reply.status, 202)

    def test_empty_array_answers_empty_list(self):
        reply = self.post(b"  [ ]  ")

        self.assertEqual(reply.status, 200)
        self.assertEqual(reply.body, b"[]")

    def test_invalid_messages_do_not_stop_valid_ones(self):
        bad_speed = speed_up("r1", 2)
        bad_speed["message"]["by"] = "fast"
        no_channel = launch_message("r2")
        del no_channel["metadata"]["channel"]

        reply = self.post([launch_message("r1"), bad_speed, no_channel, 7, launch_message("r3")])

        outcomes = self.assertOutcomes(reply, ["applied", "invalid", "invalid", "invalid", "applied"])
        self.assertEqual(error_field(outcomes[1]["error"]), "message.by")
        self.assertEqual(error_field(outcomes[2]["error"]), "metadata.channel")
        self.assertIn("array element", outcomes[3]["error"])
        self.assertEqual(set(outcomes[1]), {"outcome", "error"})
        self.assertIsNotNone(self.control_center.rocket("r3"))
        self.assertIsNone(self.control_center.rocket("r2"))

    def test_invalid_ndjson_lines_answered_one_by_one(self):
        body = encode(launch_message("r1")) + b"\n{not json\n" + encode(speed_up("r1", 2)) + b"\n"

        reply = self.post(body, NDJSON_HEADERS)

        outcomes = self.assertOutcomes(reply, ["applied", "invalid", "applied"])
        self.assertEqual(error_field(outcomes[1]["error"]), "body")

    def test_stored_source_is_element_text(self):
        element = b'{"metadata": {"channel": "r1", "messageNumber": 1, "messageTime": ' \
                  b'"2025-04-02T09:21:50Z", "messageType": "RocketLaunched"},\n "message": ' \
                  b'{"type": "Falcon-9", "launchSpeed": 500, "mission": "ARTEMIS"}}'

        self.post(b"[" + element + b" ]")

        messages, _ = self.journal.batches[0]
        self.assertEqual(messages[0].source.encode("utf-8"), element)

    def test_malformed_array_rejected_whole(self):
        for label, body in (("truncated", b'[{"metadata": {}}'),
                            ("missing comma", b"[1 2]"),
                            ("trailing data", b"[] x"),
                            ("NaN", b'[{"a": NaN}]'),
                            ("invalid UTF-8", b'["\xff"]')):
            with self.subTest(label):
                reply = self.post(body)
                self.assertEqual(reply.status, 400, reply.body)
                self.assertEqual(error_field(reply.json()["error"]), "body")
        self.assertEqual(self.journal.batches, [])

    def test_duplicates_within_batch(self):
        reply = self.post([launch_message("r1"), launch_message("r1", speed=9)])

        self.assertOutcomes(reply, ["applied", "duplicate"])
        self.assertEqual(self.control_center.rocket("r1")["speed"], 500)

    def test_out_of_order_batch_drains(self):
        reply = self.post([speed_up("r1", 3), speed_up("r1", 2), launch_message("r1")])

        self.assertOutcomes(reply, ["applied", "applied", "applied"])
        self.assertEqual(self.control_center.rocket("r1")["pendingMessages"], 0)

    def test_journal_failure_answers_503_and_applies_nothing(self):
        self.journal.fail_with("disk full")

        with self.assertLogs("lunar.api", "ERROR"):
            reply = self.post([launch_message("r1"), launch_message("r2")])

        self.assertEqual(reply.status, 503)
        self.assertIn("disk full", reply.json()["error"])
        self.assertEqual(self.control_center.rockets(), [])

    def test_refused_message_answered_with_limit(self):
        control_center = RefusingControlCenter(BatchJournal())
        server = self.start_server(control_center)
        connection = server.connect()
        self.addCleanup(connection.close)

        reply = self.post([launch_message("full-1"), launch_message("r1")], connection=connection)

        outcomes = self.assertOutcomes(reply, ["refused", "applied"])
        self.assertIn("max_rockets", outcomes[0]["error"])

    def test_too_many_messages_rejected(self):
        server = self.start_server(ControlCenter(BatchJournal()), max_batch_messages=3)
        connection = server.connect()
        self.addCleanup(connection.close)
        documents = [launch_message(f"r{index}") for index in range(4)]

        for body, headers in ((encode(documents), None), (ndjson(documents), NDJSON_HEADERS)):
            with self.subTest(headers=headers):
                reply = self.post(body, headers, connection=connection)
                self.assertEqual(reply.status, 413, reply.body)
                self.assertIn("more than 3 messages", reply.json()["error"])
        self.assertEqual(self.post(encode(documents[:3]), connection=connection).status, 200)

    def test_default_limit_is_ten_thousand_messages(self):
        reply = self.post(b"[" + b",".join([b"{}"] * (bulk.MAX_BATCH_MESSAGES + 1)) + b"]")

        self.assertEqual(reply.status, 413)
        self.assertIn("10000", reply.json()["error"])

    def test_ndjson_over_batch_bytes_rejected(self):
        limit = 2 * MAX_BODY_BYTES
        server = self.start_server(ControlCenter(BatchJournal()), max_batch_bytes=limit)

        raw = exchange_raw(server, (
            "POST /messages HTTP/1.1\r\nHost: test\r\nContent-Type: application/x-ndjson\r\n"
            f"Content-Length: {limit + 1}\r\n\r\n").encode("ascii"))

        reply = parse_response(raw)
        self.assertEqual(reply.status, 413)
        self.assertIn(str(limit), reply.json()["error"])

    def test_ndjson_over_single_limit_accepted(self):
        line = encode(launch_message("r1")) + b"\n"
        body = line * (MAX_BODY_BYTES // len(line) + 1)
        self.assertGreater(len(body), MAX_BODY_BYTES)

        reply = self.post(body, NDJSON_HEADERS)

        outcomes = reply.json()
        self.assertEqual(reply.status, 200)
        self.assertEqual(outcomes[0], {"outcome": "applied"})
        self.assertEqual({outcome["outcome"] for outcome in outcomes[1:]}, {"duplicate"})

    def test_array_over_single_limit_rejected(self):
        # The limit is chosen from the headers, so the body need not be sent.
        raw = exchange_raw(self.server, (
            "POST /messages HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n"
            f"Content-Length: {MAX_BODY_BYTES + 1}\r\n\r\n").encode("ascii"))

        reply = parse_response(raw)

        self.assertEqual(reply.status, 413)
        self.assertIn(str(MAX_BODY_BYTES), reply.json()["error"])

    def test_single_ndjson_line_over_single_limit_rejected(self):
        document = launch_message("r1")
        document["message"]["padding"] = "x" * MAX_BODY_BYTES

        reply = self.post(encode(document) + b"\n", NDJSON_HEADERS)

        self.assertEqual(reply.status, 413)
        self.assertIn("for one message", reply.json()["error"])
        self.assertIsNone(self.control_center.rocket("r1"))

    def test_array_sent_as_ndjson_keeps_single_limit(self):
        document = launch_message("r1")
        document["message"]["padding"] = "x" * MAX_BODY_BYTES

        reply = self.post(b"[" + encode(document) + b"]", NDJSON_HEADERS)

        self.assertEqual(reply.status, 413)
        self.assertIn("for a JSON array", reply.json()["error"])
        self.assertIsNone(self.control_center.rocket("r1"))

    def test_long_line_in_ndjson_batch_rejected(self):
        document = launch_message("r1")
        document["message"]["mission"] = "M" * MAX_BODY_BYTES

        reply = self.post(encode(document) + b"\n" + encode(speed_up("r2", 2)) + b"\n",
                          NDJSON_HEADERS)

        self.assertEqual(reply.status, 413)
        self.assertIn("NDJSON line", reply.json()["error"])
        self.assertIsNone(self.control_center.rocket("r1"))
        self.assertIsNone(self.control_center.rocket("r2"))

    def test_connection_reused_after_batch(self):
        self.post([launch_message("r1")])
        first_socket = self.connection.sock

        reply = request(self.connection, "GET", "/rockets/r1")

        self.assertEqual(reply.status, 200)
        self.assertIs(self.connection.sock, first_socket)


class BatchKindTest(unittest.TestCase):

    def test_kinds(self):
        one = encode(launch_message("r1"))
        cases = [
            ("array", b"[]", None, bulk.ARRAY),
            ("array after blanks", b" \r\n\t[1]", None, bulk.ARRAY),
            ("array under NDJSON type", b"[]\n[]", bulk.NDJSON_MEDIA_TYPE, bulk.ARRAY),
            ("object", one, "application/json", None),
            ("two lines without NDJSON type", one + b"\n" + one, "application/json", None),
            ("two NDJSON lines", one + b"\n" + one, bulk.NDJSON_MEDIA_TYPE, bulk.NDJSON),
            ("one NDJSON line and blanks", b"\n" + one + b"\n \r\n", bulk.NDJSON_MEDIA_TYPE, None),
            ("empty body", b"", bulk.NDJSON_MEDIA_TYPE, None),
        ]
        for label, body, content_type, expected in cases:
            with self.subTest(label):
                self.assertEqual(bulk.batch_kind(body, content_type), expected)

    def test_encode_outcomes(self):
        encoded = bulk.encode_outcomes([Outcome.APPLIED, Outcome.BUFFERED, Outcome.DUPLICATE,
                                        InvalidMessage("metadata.channel is missing"),
                                        Refusal("too many rockets")])

        self.assertEqual(json.loads(encoded), [
            {"outcome": "applied"}, {"outcome": "buffered"}, {"outcome": "duplicate"},
            {"outcome": "invalid", "error": "metadata.channel is missing"},
            {"outcome": "refused", "error": "too many rockets"},
        ])


if __name__ == "__main__":
    unittest.main()
