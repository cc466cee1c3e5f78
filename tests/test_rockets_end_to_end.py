"""End-to-end launches against lunar and against a mock server, on 127.0.0.1.

``RealServerLaunchTest`` runs verified launches through ``lunar_server.py``
in a child process. The mock in ``tests/mock_server.py`` applies messages in
order per channel like the real server and can misbehave on purpose, so the
other tests check the launcher's delivery, redelivery and verification.
"""

import os
import re
import signal
import subprocess
import sys
import time
import unittest

from lunar.rockets.launch import LaunchConfig, run_launch
from lunar.rockets.transport import TRANSPORT_HTTP_CLIENT
from tests.mock_server import MockLunarServer
from tests.serverprocess import ServerProcess
from tests.support import run_rockets_cli

REPOSITORY_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class RealServerLaunchTest(unittest.TestCase):
    def setUp(self):
        self.server = ServerProcess("--db", ":memory:").start()
        self.addCleanup(self.server.stop)

    def test_harsh_traffic_verifies_against_lunar(self):
        status, stdout, stderr = run_rockets_cli([
            "launch", f"{self.server.url}/messages", "--max-messages=3000", "--duplicates=0.05",
            "--shuffle-window=16", "--concurrency-level=4", "--seed=12", "--verify",
        ])

        self.assertEqual(status, 0, stdout + stderr)
        self.assertIn("verification  passed: all 20 rockets match", stdout)
        self.assertIn("lost          0", stdout)

    def test_second_run_reports_earlier_rockets(self):
        arguments = ["launch", f"{self.server.url}/messages", "--max-messages=400", "--seed=13", "--verify"]
        for description, repeat in (("identical run", arguments),
                                    ("shorter run", arguments[:2] + ["--max-messages=200", "--seed=13", "--verify"])):
            with self.subTest(description):
                if description == "identical run":
                    self.assertEqual(run_rockets_cli(arguments)[0], 0)

                status, stdout, stderr = run_rockets_cli(repeat)

                self.assertEqual(status, 1)
                self.assertIn("earlier run with seed 13", stdout + stderr)


class VerifiedLaunchTest(unittest.TestCase):
    def test_harsh_traffic_verifies(self):
        with MockLunarServer() as server:
            status, stdout, stderr = run_rockets_cli([
                "launch", server.url, "--max-messages=3000", "--duplicates=0.05", "--shuffle-window=16",
                "--message-delay=0", "--concurrency-level=4", "--seed=11", "--verify",
            ])
            rockets = server.rockets()
            duplicates = server.duplicates
            held_early = server.held_early
            accepted = server.accepted
        self.assertEqual(status, 0, stdout + stderr)
        self.assertIn("verification  passed: all 20 rockets match", stdout)
        self.assertIn("lost          0", stdout)
        self.assertEqual(accepted, 3000)
        self.assertGreater(duplicates, 50)
        self.assertGreater(held_early, 50)
        self.assertEqual(len(rockets), 20)
        self.assertEqual(sum(rocket["lastMessageNumber"] for rocket in rockets), 3000)
        self.assertTrue(all(rocket["pendingMessages"] == 0 for rocket in rockets))

    def test_report_counts(self):
        with MockLunarServer() as server:
            report = run_launch(LaunchConfig(server.url, max_messages=500, seed=3, duplicates=0.1, verify=True))
            posts = server.posts
        self.assertTrue(report.passed, report.verification.report_lines())
        self.assertEqual(report.generated, 500)
        self.assertEqual(report.acknowledged, 500)
        self.assertEqual(report.lost, 0)
        self.assertGreater(report.duplicates_sent, 20)
        self.assertEqual(report.deliveries, 500 + report.duplicates_sent)
        self.assertEqual(posts, report.deliveries)
        self.assertGreater(report.messages_per_second, 0)

    def test_message_times_are_send_times(self):
        with MockLunarServer() as server:
            run_launch(LaunchConfig(server.url, max_messages=200, seed=3, concurrency_level=1))
            times = list(server.message_times)
        self.assertEqual(len(times), 200)
        self.assertEqual(times, sorted(times))
        self.assertEqual(len(set(times)), 200)

    def test_connection_close_mode(self):
        with MockLunarServer() as server:
            report = run_launch(LaunchConfig(server.url, max_messages=300, seed=5, keep_alive=False, verify=True))
            connections = server.connections
        self.assertTrue(report.passed, report.verification.report_lines())
        self.assertEqual(connections, 300 + 1)  # one per message, plus GET /rockets

    def test_keep_alive_reuses_connections(self):
        with MockLunarServer() as server:
            report = run_launch(LaunchConfig(server.url, max_messages=300, seed=5, concurrency_level=3))
            connections = server.connections
        self.assertEqual(report.acknowledged, 300)
        self.assertEqual(connections, 3)

    def test_http_client_transport(self):
        with MockLunarServer() as server:
            report = run_launch(LaunchConfig(
                server.url, max_messages=1000, seed=8, shuffle_window=8, duplicates=0.05,
                transport=TRANSPORT_HTTP_CLIENT, verify=True,
            ))
        self.assertTrue(report.passed, report.verification.report_lines())
        self.assertEqual(report.acknowledged, 1000)


class FailingServerTest(unittest.TestCase):
    def test_dropped_message_fails_verification(self):
        def drop_third_message(channel, number):
            return number == 3

        with MockLunarServer(drop=drop_third_message) as server:
            status, stdout, stderr = run_rockets_cli(["launch", server.url, "--max-messages=1000", "--seed=21", "--verify"])
            dropped = list(server.dropped)
        self.assertEqual(len(dropped), 1)
        self.assertEqual(status, 1, stdout + stderr)
        self.assertIn("verification  failed", stdout)
        self.assertRegex(stdout, dropped[0][0] + r"\s+lastMessageNumber\s+\d+\s+2")

    def test_retries_after_503(self):
        with MockLunarServer(fail_first=5) as server, self.assertLogs("lunar.rockets", "WARNING") as logs:
            # The delay makes the run last at least 1 s, longer than the 0.5 s
            # redelivery delay, so no redelivery is still waiting at the end.
            report = run_launch(LaunchConfig(
                server.url, max_messages=2000, seed=4, message_delay_s=0.0005, verify=True,
            ))
            failed_on_purpose = server.failed_on_purpose
        self.assertIn("HTTP 503", logs.output[0])
        self.assertEqual(failed_on_purpose, 5)
        self.assertEqual(report.retries, 5)
        self.assertEqual(report.lost, 0)
        self.assertTrue(report.passed, report.verification.report_lines())

    def test_rejected_message_counts_as_lost(self):
        def reject_message(channel, number):
            return number == 10

        with MockLunarServer(reject=reject_message) as server, self.assertLogs("lunar.rockets", "WARNING") as logs:
            # The delay stretches the run to about 1.2 s, so each rejected
            # message is redelivered at least once before the run ends.
            report = run_launch(LaunchConfig(
                server.url, max_messages=300, seed=6, rockets=2, message_delay_s=0.004, verify=True,
            ))
        self.assertEqual(report.lost, 2)
        self.assertEqual(report.dropped_redeliveries, 2)
        self.assertGreaterEqual(report.retries, 2)
        self.assertFalse(report.passed)
        verification = report.verification
        self.assertEqual(verification.mismatches, [])
        self.assertEqual(verification.lost, 2)
        self.assertIn("2 messages were lost", "\n".join(verification.report_lines()))
        self.assertIn("dropped 2 redeliveries", "\n".join(logs.output))

    def test_earlier_run_detected(self):
        with MockLunarServer() as server:
            first_status, _, _ = run_rockets_cli(["launch", server.url, "--max-messages=1500", "--seed=31", "--verify"])
            status, stdout, stderr = run_rockets_cli(["launch", server.url, "--max-messages=500", "--seed=31", "--verify"])
        self.assertEqual(first_status, 0)
        self.assertEqual(status, 1, stdout + stderr)
        self.assertIn(
            "the server already holds rockets from an earlier run with seed 31; start it with a fresh "
            "database (for example --db :memory:) or use another --seed",
            stdout,
        )
        self.assertNotIn("lastMessageNumber  ", stdout)

    def test_repeated_identical_run_reports_earlier_run(self):
        # Every message of the second run is a duplicate; only launchTime differs.
        with MockLunarServer() as server:
            first = run_launch(LaunchConfig(server.url, max_messages=400, seed=41, verify=True))
            second = run_launch(LaunchConfig(server.url, max_messages=400, seed=41, verify=True))
        self.assertTrue(first.passed)
        self.assertFalse(second.passed)
        self.assertEqual(len(second.verification.earlier_run_channels), 20)
        self.assertIn("earlier run with seed 41", second.verification.summary())


@unittest.skipIf(sys.platform == "win32", "Popen.send_signal does not support SIGINT on Windows")
class InterruptTest(unittest.TestCase):
    def test_ctrl_c_finishes_in_flight(self):
        with MockLunarServer() as server:
            launcher = subprocess.Popen(
                [sys.executable, "-m", "lunar.rockets", "launch", server.url, "--message-delay=1ms"],
                cwd=REPOSITORY_ROOT,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            try:
                deadline = time.monotonic() + 10.0
                while server.posts < 100 and time.monotonic() < deadline:
                    time.sleep(0.05)
                launcher.send_signal(signal.SIGINT)
                stdout, stderr = launcher.communicate(timeout=15.0)
            finally:
                if launcher.poll() is None:
                    launcher.kill()
                    launcher.communicate()
            posts = server.posts
        self.assertGreaterEqual(posts, 100)
        self.assertEqual(launcher.returncode, 130, stdout + stderr)
        self.assertIn("interrupted", stdout)
        counts = re.search(r"messages\s+([\d,]+) generated, ([\d,]+) acknowledged", stdout)
        self.assertIsNotNone(counts, stdout)
        self.assertEqual(counts.group(1), counts.group(2))
        self.assertIn("lost          0", stdout)


if __name__ == "__main__":
    unittest.main()
