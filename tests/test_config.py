"""Tests of the configuration: flags, environment variables, defaults and errors."""

import contextlib
import io
import ipaddress
import os
import subprocess
import sys
import unittest

from lunar import config
from lunar.config import OPTIONS, ConfigError, Option, build_parser, load_config
from tests.serverprocess import ROOT, SERVER_SCRIPT

RUN_TIMEOUT_SECONDS = 20.0


def parse_failure(argv, environ=None):
    """Return argparse's exit status and error output for an invalid command line."""
    stderr = io.StringIO()
    try:
        with contextlib.redirect_stderr(stderr):
            load_config(argv, environ or {})
    except SystemExit as error:
        return error.code, stderr.getvalue()
    raise AssertionError(f"{argv} was accepted")


class DefaultsTest(unittest.TestCase):
    def test_defaults_apply_without_flags_or_environment(self):
        settings = load_config([], {})
        self.assertEqual(settings.host, "127.0.0.1")
        self.assertEqual(settings.port, 8088)
        self.assertEqual(settings.db, "lunar.db")
        self.assertEqual(settings.sync, "normal")
        self.assertEqual(settings.log_level, "INFO")
        self.assertEqual(settings.log_format, "text")
        self.assertEqual(settings.ingest_allow, [])
        self.assertEqual(settings.max_body_bytes, 1024 * 1024)
        self.assertEqual(settings.max_request_line_bytes, 65536)
        self.assertEqual(settings.idle_timeout, 5.0)
        self.assertEqual(settings.request_timeout, 10.0)
        self.assertEqual(settings.max_pending_per_rocket, 1_000_000)
        self.assertEqual(settings.max_pending_total, 10_000_000)
        self.assertEqual(settings.max_rockets, 1_000_000)
        self.assertEqual(settings.summary_interval, 60.0)

    def test_every_option_names_its_variable_and_default_in_help(self):
        help_text = " ".join(build_parser().format_help().split())
        for option in OPTIONS:
            with self.subTest(option=option.flag):
                self.assertIn(option.flag, help_text)
                self.assertIn(f"env {option.env})", help_text)
                self.assertIn("(default: ", help_text)

    def test_variable_names_follow_the_flags(self):
        names = {option.flag: option.env for option in OPTIONS}
        self.assertEqual(names["--port"], "LUNAR_PORT")
        self.assertEqual(names["--host"], "LUNAR_HOST")
        self.assertEqual(names["--db"], "LUNAR_DB")
        self.assertEqual(names["--sync"], "LUNAR_SYNC")
        self.assertEqual(names["--log-level"], "LUNAR_LOG_LEVEL")
        self.assertEqual(names["--ingest-allow"], "LUNAR_INGEST_ALLOW")


class EnvironmentTest(unittest.TestCase):
    def test_environment_sets_values(self):
        settings = load_config([], {
            "LUNAR_PORT": "9000", "LUNAR_HOST": "::1", "LUNAR_DB": "/tmp/x.db",
            "LUNAR_SYNC": "FULL", "LUNAR_LOG_LEVEL": "debug", "LUNAR_IDLE_TIMEOUT": "2.5",
            "LUNAR_MAX_ROCKETS": "10",
        })
        self.assertEqual(settings.port, 9000)
        self.assertEqual(settings.host, "::1")
        self.assertEqual(settings.db, "/tmp/x.db")
        self.assertEqual(settings.sync, "full")
        self.assertEqual(settings.log_level, "DEBUG")
        self.assertEqual(settings.idle_timeout, 2.5)
        self.assertEqual(settings.max_rockets, 10)

    def test_flag_wins_over_environment(self):
        settings = load_config(["--port", "9001"], {"LUNAR_PORT": "9000"})
        self.assertEqual(settings.port, 9001)

    def test_repeatable_flag_reads_comma_separated_variable(self):
        settings = load_config([], {"LUNAR_INGEST_ALLOW": "10.0.0.0/8, ::1/128"})
        self.assertEqual(settings.ingest_allow, [ipaddress.ip_network("10.0.0.0/8"),
                                                 ipaddress.ip_network("::1/128")])

    def test_repeated_flags_replace_the_variable(self):
        settings = load_config(["--ingest-allow", "192.0.2.0/24", "--ingest-allow", "::1"],
                               {"LUNAR_INGEST_ALLOW": "10.0.0.0/8"})
        self.assertEqual(settings.ingest_allow, [ipaddress.ip_network("192.0.2.0/24"),
                                                 ipaddress.ip_network("::1/128")])

    def test_empty_variable_counts_as_unset(self):
        settings = load_config([], {"LUNAR_PORT": "", "LUNAR_INGEST_ALLOW": " "})
        self.assertEqual(settings.port, 8088)
        self.assertEqual(settings.ingest_allow, [])

    def test_invalid_variables_name_the_variable(self):
        cases = [
            ("LUNAR_PORT", "70000"),
            ("LUNAR_PORT", "eighty"),
            ("LUNAR_INGEST_ALLOW", "10.0.0.0/8,10.0.0.1/8"),
            ("LUNAR_SYNC", "sometimes"),
            ("LUNAR_IDLE_TIMEOUT", "0"),
            ("LUNAR_REQUEST_TIMEOUT", "nan"),
            ("LUNAR_MAX_BODY_BYTES", "-1"),
        ]
        for name, value in cases:
            with self.subTest(name=name, value=value):
                with self.assertRaises(ConfigError) as raised:
                    load_config([], {name: value})
                self.assertIn(name, str(raised.exception))
                self.assertIn(repr(value), str(raised.exception))


class FlagErrorTest(unittest.TestCase):
    def test_invalid_port_flag_exits_with_status_2(self):
        status, output = parse_failure(["--port", "65536"])
        self.assertEqual(status, 2)
        self.assertIn("--port", output)
        self.assertIn("65536", output)

    def test_invalid_network_flag_names_the_value(self):
        status, output = parse_failure(["--ingest-allow", "10.0.0.300/8"])
        self.assertEqual(status, 2)
        self.assertIn("--ingest-allow", output)
        self.assertIn("10.0.0.300/8", output)

    def test_network_with_host_bits_is_invalid(self):
        status, output = parse_failure(["--ingest-allow", "10.1.2.3/8"])
        self.assertEqual(status, 2)
        self.assertIn("host bits set", output)


class CrossCheckTest(unittest.TestCase):
    def test_subscribers_beyond_streams_rejected(self):
        with self.assertRaisesRegex(ConfigError, "--max-subscribers 500 exceeds --max-streams 10"):
            load_config(["--max-subscribers", "500", "--max-streams", "10"], {})

    def test_subscribers_within_streams_accepted(self):
        settings = load_config(["--max-subscribers", "10", "--max-streams", "10"], {})
        self.assertEqual(settings.max_subscribers, 10)


class OptionTableTest(unittest.TestCase):
    def test_new_option_is_one_table_entry(self):
        options = OPTIONS + [Option("--allowed-tag", [], str, "a tag", repeatable=True)]
        settings = load_config(["--allowed-tag", "alpha"], {}, options)
        self.assertEqual(settings.allowed_tag, ["alpha"])
        settings = load_config([], {"LUNAR_ALLOWED_TAG": "alpha,beta"}, options)
        self.assertEqual(settings.allowed_tag, ["alpha", "beta"])


class ServerStartTest(unittest.TestCase):
    def run_server(self, arguments, environ):
        environment = {key: value for key, value in os.environ.items()
                       if not key.startswith(config.ENV_PREFIX)}
        environment.update(environ)
        return subprocess.run([sys.executable, SERVER_SCRIPT, *arguments], cwd=ROOT,
                              env=environment, stdin=subprocess.DEVNULL, capture_output=True,
                              text=True, timeout=RUN_TIMEOUT_SECONDS)

    def test_server_refuses_invalid_variable_before_starting(self):
        result = self.run_server([], {"LUNAR_PORT": "99999", "LUNAR_DB": ":memory:"})
        self.assertEqual(result.returncode, 2)
        self.assertIn("LUNAR_PORT", result.stderr)
        self.assertIn("99999", result.stderr)
        self.assertNotIn("lunar ready", result.stderr)

    def test_server_refuses_invalid_flag_before_starting(self):
        result = self.run_server(["--ingest-allow", "not-a-network", "--db", ":memory:"], {})
        self.assertEqual(result.returncode, 2)
        self.assertIn("--ingest-allow", result.stderr)
        self.assertIn("not-a-network", result.stderr)

    def test_help_lists_flags_and_variables(self):
        result = self.run_server(["--help"], {})
        self.assertEqual(result.returncode, 0)
        self.assertIn("LUNAR_MAX_PENDING_TOTAL", result.stdout)
        self.assertIn("--request-timeout", result.stdout)


if __name__ == "__main__":
    unittest.main()
