"""Tests of the launcher's command line: durations, flag forms, defaults and errors."""

import socket
import unittest
from unittest import mock

from lunar.rockets import cli
from lunar.rockets.durations import InvalidDuration, parse_duration
from lunar.rockets.launch import LaunchConfig, LaunchReport, parse_messages_url
from lunar.rockets.verify import FieldMismatch, VerificationResult
from tests.support import run_rockets_cli

URL = "http://localhost:8088/messages"


class DurationTest(unittest.TestCase):
    def test_valid_durations(self):
        cases = {
            "500ms": 0.5,
            "1s": 1.0,
            "0": 0.0,
            "1.5s": 1.5,
            "250us": 0.00025,
            "250\u00b5s": 0.00025,
            "100ns": 1e-7,
            "1m30s": 90.0,
            "2h": 7200.0,
            ".5s": 0.5,
            "0s": 0.0,
            "+1s": 1.0,
            "-0": 0.0,
        }
        for text, seconds in cases.items():
            self.assertAlmostEqual(parse_duration(text), seconds, places=12, msg=text)

    def test_invalid_durations(self):
        for text in ("", "5", "1.5", "5x", "ms", "s", "-1s", "1.5.5s", "1 s", "1s2", "one second", "1S"):
            with self.assertRaises(InvalidDuration, msg=text):
                parse_duration(text)

    def test_error_names_value_and_units(self):
        with self.assertRaises(InvalidDuration) as caught:
            parse_duration("5")
        self.assertIn("'5'", str(caught.exception))
        self.assertIn("500ms", str(caught.exception))


class FlagTest(unittest.TestCase):
    def parse(self, *flags):
        return cli.build_parser().parse_args(["launch", URL, *flags])

    def test_defaults(self):
        arguments = self.parse()
        self.assertEqual(arguments.url, URL)
        self.assertEqual(arguments.message_delay, 0.0)
        self.assertEqual(arguments.concurrency_level, 3)
        self.assertEqual(arguments.max_messages, 100_000)
        self.assertEqual(arguments.seed, 444)
        self.assertEqual(arguments.rockets, 20)
        self.assertFalse(arguments.verify)
        self.assertEqual(arguments.duplicates, 0.0)
        self.assertEqual(arguments.shuffle_window, 0)
        self.assertEqual(arguments.connection, "keep-alive")

    def test_equals_and_space_forms(self):
        with_equals = self.parse(
            "--message-delay=500ms", "--concurrency-level=1", "--max-messages=10", "--seed=7",
            "--rockets=4", "--duplicates=0.5", "--shuffle-window=8", "--connection=close",
        )
        with_space = self.parse(
            "--message-delay", "500ms", "--concurrency-level", "1", "--max-messages", "10", "--seed", "7",
            "--rockets", "4", "--duplicates", "0.5", "--shuffle-window", "8", "--connection", "close",
        )
        self.assertEqual(vars(with_equals), vars(with_space))
        self.assertEqual(with_equals.message_delay, 0.5)
        self.assertEqual(with_equals.concurrency_level, 1)
        self.assertEqual(with_equals.max_messages, 10)
        self.assertEqual(with_equals.seed, 7)
        self.assertEqual(with_equals.rockets, 4)
        self.assertEqual(with_equals.duplicates, 0.5)
        self.assertEqual(with_equals.shuffle_window, 8)
        self.assertEqual(with_equals.connection, "close")

    def test_flags_before_url(self):
        arguments = cli.build_parser().parse_args(["launch", "--seed", "9", URL])
        self.assertEqual(arguments.seed, 9)
        self.assertEqual(arguments.url, URL)

    def test_invalid_values_exit_2(self):
        cases = [
            (["--message-delay", "5"], "--message-delay"),
            (["--message-delay=fast"], "--message-delay"),
            (["--message-delay=-1s"], "negative"),
            (["--concurrency-level", "0"], "--concurrency-level"),
            (["--concurrency-level", "two"], "invalid integer"),
            (["--max-messages", "-1"], "--max-messages"),
            (["--rockets", "0"], "--rockets"),
            (["--duplicates", "1.5"], "--duplicates"),
            (["--duplicates", "often"], "--duplicates"),
            (["--shuffle-window", "-3"], "--shuffle-window"),
            (["--connection", "pipelined"], "--connection"),
            (["--no-such-flag"], "unrecognized arguments"),
        ]
        for flags, expected in cases:
            status, stdout, stderr = run_rockets_cli(["launch", URL, *flags])
            self.assertEqual(status, 2, flags)
            self.assertIn(expected, stderr, flags)
            self.assertEqual(stdout, "", flags)

    def test_invalid_url_exit_2(self):
        for url in ("localhost:8088/messages", "https://localhost/messages", "http:///messages", "http://host:99999/x"):
            status, _, stderr = run_rockets_cli(["launch", url])
            self.assertEqual(status, 2, url)
            self.assertIn("invalid URL", stderr, url)

    def test_missing_command_exit_2(self):
        status, _, stderr = run_rockets_cli([])
        self.assertEqual(status, 2)
        self.assertIn("COMMAND", stderr)

    def test_help_lists_every_flag(self):
        status, stdout, _ = run_rockets_cli(["--help"])
        self.assertEqual(status, 0)
        for flag in (
            "--message-delay", "--concurrency-level", "--max-messages", "--seed", "--rockets",
            "--verify", "--duplicates", "--shuffle-window", "--connection",
        ):
            self.assertIn(flag, stdout)
        for text in ("default: 3", "default: 100000", "default: 444", "default: 20", "500ms", "exit status"):
            self.assertIn(text, stdout)

    def test_launch_help_exit_0(self):
        status, stdout, _ = run_rockets_cli(["launch", "--help"])
        self.assertEqual(status, 0)
        self.assertIn("--message-delay DURATION", stdout)


class UrlTest(unittest.TestCase):
    def test_messages_url_parts(self):
        target = parse_messages_url("http://localhost:8088/messages")
        self.assertEqual((target.host, target.port, target.path), ("localhost", 8088, "/messages"))

    def test_default_port_and_path(self):
        target = parse_messages_url("http://example.test")
        self.assertEqual((target.host, target.port, target.path), ("example.test", 80, "/"))

    def test_ipv6_host(self):
        target = parse_messages_url("http://[::1]:9000/api/messages?x=1")
        self.assertEqual((target.host, target.port, target.path), ("::1", 9000, "/api/messages?x=1"))

    def test_config_validation(self):
        for changes in ({"concurrency_level": 0}, {"duplicates": -0.1}, {"transport": "carrier-pigeon"}):
            config = LaunchConfig(URL, **changes)
            with self.assertRaises(ValueError, msg=changes):
                config.validate()


class UnreachableServerTest(unittest.TestCase):
    def test_closed_port_exit_1(self):
        probe = socket.socket()
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
        probe.close()
        with mock.patch.object(cli, "SERVER_WAIT_S", 0.3):
            status, stdout, stderr = run_rockets_cli(["launch", f"http://127.0.0.1:{port}/messages", "--max-messages=5"])
        self.assertEqual(status, 1)
        self.assertIn("did not accept a connection", stderr)
        self.assertIn("start the server first", stderr)
        self.assertEqual(stdout, "")


class ReportTest(unittest.TestCase):
    def report(self, **changes):
        values = dict(
            generated=1000, acknowledged=998, deliveries=1010, retries=4, duplicates_sent=10, lost=2,
            dropped_redeliveries=2, duration_s=0.5, rockets=20, exploded=1,
        )
        values.update(changes)
        return LaunchReport(**values)

    def test_summary_lines(self):
        lines = cli.format_report(self.report())
        text = "\n".join(lines)
        self.assertIn("1,000 generated, 998 acknowledged", text)
        self.assertIn("1,996 messages/s", text)
        self.assertIn("retries       4", text)
        self.assertIn("duplicates    10 sent", text)
        self.assertIn("lost          2 (2 redeliveries were still waiting", text)
        self.assertIn("not requested", text)

    def test_mismatch_table(self):
        verification = VerificationResult(
            444, 20, [FieldMismatch("0b2e", "speed", 3500, 3000), FieldMismatch("0b2e", "explosionReason", None, "X")],
            0, [],
        )
        lines = cli.format_report(self.report(lost=0, verification=verification))
        text = "\n".join(lines)
        self.assertIn("failed: 2 fields differ in 1 of 20 rockets", text)
        self.assertRegex(text, r"0b2e\s+speed\s+3500\s+3000")
        self.assertRegex(text, r"0b2e\s+explosionReason\s+null\s+X")

    def test_earlier_run_message(self):
        verification = VerificationResult(444, 20, [], 0, ["0b2e"])
        text = "\n".join(cli.format_report(self.report(lost=0, verification=verification)))
        self.assertIn(
            "the server already holds rockets from an earlier run with seed 444; start it with a fresh "
            "database (for example --db :memory:) or use another --seed",
            text,
        )


if __name__ == "__main__":
    unittest.main()
