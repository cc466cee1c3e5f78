"""Tests of the launcher's batch mode, capture files and replay, against a real lunar server.

Each test serves the fleet API of a fresh ``ControlCenter`` on 127.0.0.1
from a background thread, so batches go through the real endpoint.
"""

import json
import os
import tempfile
import unittest
from http import HTTPStatus
from typing import Optional

from lunar.fleet import ControlCenter, Refusal
from lunar.rockets.launch import LaunchConfig, run_launch
from lunar.rockets.ordering import Delivery
from lunar.rockets.replay import ReplayConfig, read_capture, run_replay, write_capture
from lunar.rockets.sender import Dispatcher
from lunar.web import Response, Route
from tests.support import RunningServer
from tests.support import run_rockets_cli

COMPARED_FIELDS = ("type", "speed", "mission", "status", "explosionReason", "lastMessageNumber",
                   "pendingMessages")


def comparable(rockets):
    return {rocket["channel"]: tuple(rocket[field] for field in COMPARED_FIELDS) for rocket in rockets}


class RefuseOnceControlCenter(ControlCenter):
    """Refuses the first copy of every tenth message number, as a full buffer would."""

    def __init__(self) -> None:
        super().__init__()
        self.refused = set()

    def _batch_refusal(self, drafts, draft, message) -> Optional[Refusal]:
        key = (message.channel, message.number)
        if message.number % 10 == 0 and key not in self.refused:
            self.refused.add(key)
            return Refusal("max_pending_total reached")
        return None


class ServerTestCase(unittest.TestCase):

    def start_server(self, control_center=None, routes=None) -> RunningServer:
        server = RunningServer(control_center, routes=routes)
        self.addCleanup(server.stop)
        return server

    def messages_url(self, server: RunningServer) -> str:
        return f"http://127.0.0.1:{server.port}/messages"


class BatchLaunchTest(ServerTestCase):

    def test_batched_launch_verifies(self):
        server = self.start_server()

        report = run_launch(LaunchConfig(self.messages_url(server), max_messages=3000, batch=100,
                                         duplicates=0.05, shuffle_window=16, concurrency_level=3,
                                         seed=5, verify=True))

        self.assertTrue(report.passed, report.verification.report_lines())
        self.assertEqual(report.acknowledged, 3000)
        self.assertEqual(report.lost, 0)
        self.assertGreater(report.duplicates_sent, 50)
        self.assertEqual(sum(rocket["lastMessageNumber"] for rocket in server.control_center.rockets()),
                         3000)

    def test_large_batches_go_as_ndjson(self):
        server = self.start_server()

        report = run_launch(LaunchConfig(self.messages_url(server), max_messages=12000, batch=6000,
                                         concurrency_level=2, seed=6, verify=True))

        self.assertTrue(report.passed, report.verification.report_lines())
        self.assertEqual(report.lost, 0)

    def test_batch_over_server_limit_is_usage_error(self):
        status, _, stderr = run_rockets_cli(["launch", "http://127.0.0.1:9/messages", "--batch=10001"])

        self.assertEqual(status, 2)
        self.assertIn("at most 10000", stderr)

    def test_batched_launch_matches_single_launch(self):
        batched = self.start_server()
        single = self.start_server()

        run_launch(LaunchConfig(self.messages_url(batched), max_messages=1000, batch=64, seed=8))
        run_launch(LaunchConfig(self.messages_url(single), max_messages=1000, seed=8))

        self.assertEqual(comparable(batched.control_center.rockets()),
                         comparable(single.control_center.rockets()))

    def test_refused_messages_are_redelivered(self):
        control_center = RefuseOnceControlCenter()
        server = self.start_server(control_center)

        # The pacing makes the run last about 1.5 s, so refusals from its
        # first half are redelivered after the 0.5 s redelivery delay.
        report = run_launch(LaunchConfig(self.messages_url(server), max_messages=500, batch=50,
                                         message_delay_s=0.003, seed=2, verify=True))

        # As in a launch without batches, redeliveries still waiting when the
        # last request returns are dropped and their messages count as lost.
        self.assertGreater(report.retries, 0)
        self.assertEqual(report.retries + report.dropped_redeliveries, len(control_center.refused))
        self.assertEqual(report.lost, report.dropped_redeliveries)
        self.assertEqual(report.verification.mismatches, [])

    def test_invalid_outcomes_are_not_acknowledged(self):
        def reject_all(request):
            count = len(json.loads(request.read_body()))
            body = json.dumps([{"outcome": "invalid", "error": "message.by is wrong"}] * count)
            return Response(HTTPStatus.OK, body.encode("utf-8"), {"Content-Type": "application/json"})

        server = self.start_server(routes=[Route("/messages", {"POST": reject_all})])

        report = run_launch(LaunchConfig(self.messages_url(server), max_messages=200, batch=50, seed=1))

        self.assertEqual(report.acknowledged, 0)
        self.assertEqual(report.lost, 200)
        self.assertEqual(report.retries, 0)

    def test_batch_cli_flag(self):
        server = self.start_server()

        status, stdout, stderr = run_rockets_cli(["launch", self.messages_url(server), "--max-messages=400",
                                           "--batch=40", "--verify"])

        self.assertEqual(status, 0, stdout + stderr)
        self.assertIn("verification  passed", stdout)

    def test_batch_with_connection_close_is_usage_error(self):
        status, _, stderr = run_rockets_cli(["launch", "http://127.0.0.1:9/messages", "--batch=10",
                                      "--connection=close"])

        self.assertEqual(status, 2)
        self.assertIn("keep-alive", stderr)


class TakeBatchTest(unittest.TestCase):

    def deliveries(self, count):
        return iter([Delivery(object()) for _ in range(count)])

    def test_takes_up_to_limit(self):
        dispatcher = Dispatcher(self.deliveries(5))

        self.assertEqual(len(dispatcher.take_batch(3)), 3)
        self.assertEqual(len(dispatcher.take_batch(3)), 2)

    def test_paced_dispatcher_takes_one_new_delivery(self):
        dispatcher = Dispatcher(self.deliveries(5), message_delay_s=10.0)

        self.assertEqual(len(dispatcher.take_batch(3)), 1)

    def test_ended_run_gives_empty_batch(self):
        dispatcher = Dispatcher(self.deliveries(2))
        batch = dispatcher.take_batch(5)
        for delivery in batch:
            dispatcher.done(delivery, True)

        self.assertEqual(dispatcher.take_batch(5), [])

    def test_failed_deliveries_come_back_in_later_batch(self):
        dispatcher = Dispatcher(self.deliveries(2), redelivery_delay_s=0.0)
        first = dispatcher.take_batch(5)
        for delivery in first:
            dispatcher.done(delivery, False)

        again = dispatcher.take_batch(5)

        self.assertEqual(again, first)


class CaptureReplayTest(ServerTestCase):

    def setUp(self) -> None:
        directory = tempfile.TemporaryDirectory()
        self.addCleanup(directory.cleanup)
        self.directory = directory.name

    def capture(self, name="capture.ndjson", **options) -> str:
        path = os.path.join(self.directory, name)
        with open(path, "wb") as stream:
            write_capture(stream, **options)
        return path

    def test_capture_has_one_message_per_line(self):
        path = self.capture(max_messages=300, seed=4, duplicates=0.1)

        with open(path, "rb") as stream:
            lines = stream.read().splitlines()
        self.assertGreater(len(lines), 300)
        documents = [json.loads(line) for line in lines]
        self.assertEqual(len({(d["metadata"]["channel"], d["metadata"]["messageNumber"])
                              for d in documents}), 300)
        self.assertEqual(documents[0]["metadata"]["messageType"], "RocketLaunched")

    def test_replay_matches_launch_with_same_seed(self):
        path = self.capture(max_messages=2000, seed=9, shuffle_window=20, duplicates=0.02)
        replayed = self.start_server()
        launched = self.start_server()

        report = run_replay(ReplayConfig(path, self.messages_url(replayed), batch=128))
        run_launch(LaunchConfig(self.messages_url(launched), max_messages=2000, seed=9))

        self.assertTrue(report.passed)
        self.assertEqual(report.acknowledged, report.messages)
        self.assertEqual(report.requests, -(-report.messages // 128))
        self.assertEqual(comparable(replayed.control_center.rockets()),
                         comparable(launched.control_center.rockets()))

    def test_replay_cli_reports_invalid_line(self):
        path = self.capture(max_messages=50, seed=3)
        with open(path, "ab") as stream:
            stream.write(b'\n{"metadata": {"channel": "x"}}\n')
        server = self.start_server()

        status, stdout, stderr = run_rockets_cli(["replay", path, self.messages_url(server), "--batch=20"])

        self.assertEqual(status, 1, stdout + stderr)
        self.assertIn("51 read, 50 acknowledged, 1 invalid", stdout)
        self.assertIn("lost          0", stdout)

    def test_generate_then_replay_cli(self):
        path = os.path.join(self.directory, "cli.ndjson")
        server = self.start_server()

        generated = run_rockets_cli(["generate", path, "--max-messages=120", "--seed=6"])
        replayed = run_rockets_cli(["replay", path, self.messages_url(server), "--batch=1"])

        self.assertEqual(generated[0], 0, generated[2])
        self.assertIn("wrote 120 messages", generated[1])
        self.assertEqual(replayed[0], 0, replayed[1] + replayed[2])
        self.assertEqual(sum(rocket["lastMessageNumber"] for rocket in server.control_center.rockets()),
                         120)

    def test_read_capture_skips_blank_lines(self):
        path = os.path.join(self.directory, "blank.ndjson")
        with open(path, "wb") as stream:
            stream.write(b'\n  \n{"metadata": {"channel": "c", "messageNumber": 4}}\r\nnot json\n')

        captured = read_capture(path)

        self.assertEqual([(message.channel, message.number, message.line_number) for message in captured],
                         [("c", 4, 3), ("(unreadable line)", 0, 4)])


if __name__ == "__main__":
    unittest.main()
