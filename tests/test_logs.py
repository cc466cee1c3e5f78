"""Tests of log output: JSON and text lines, rate limiting and the traffic summary."""

import datetime
import http.client
import io
import json
import logging
import re
import sys
import time
import unittest

from lunar.logs import JsonFormatter, RateLimitedLogger, TextFormatter, TrafficSummary, rfc3339_utc
from tests.serverprocess import ServerProcess

SUMMARY_WAIT_SECONDS = 10.0
RFC3339_UTC = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z\Z")


class FakeClock:
    """A monotonic clock that tests move by hand."""

    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def make_record(message="rocket %s", args=("a",), level=logging.INFO, **extra):
    record = logging.LogRecord("lunar.test", level, __file__, 1, message, args, None)
    for key, value in extra.items():
        setattr(record, key, value)
    return record


class CapturingLogger:
    """A logger whose lines are kept as (level, text, extra) tuples."""

    def __init__(self, test):
        self.logger = logging.getLogger(f"lunar.test.{test.id()}")
        self.logger.propagate = False
        self.logger.setLevel(logging.DEBUG)
        self.records = []
        handler = logging.Handler()
        handler.emit = self.records.append
        self.logger.addHandler(handler)
        test.addCleanup(self.logger.removeHandler, handler)


class JsonFormatterTest(unittest.TestCase):
    def test_line_has_required_fields_and_extras(self):
        line = JsonFormatter().format(make_record(channel="c-1", messageNumber=7))
        document = json.loads(line)
        self.assertRegex(document["timestamp"], RFC3339_UTC)
        self.assertEqual(document["level"], "INFO")
        self.assertEqual(document["logger"], "lunar.test")
        self.assertEqual(document["message"], "rocket a")
        self.assertEqual(document["channel"], "c-1")
        self.assertEqual(document["messageNumber"], 7)
        self.assertNotIn("\n", line)

    def test_exception_is_one_field_on_one_line(self):
        try:
            raise ValueError("bad\nvalue")
        except ValueError:
            record = logging.LogRecord("lunar.test", logging.ERROR, __file__, 1, "failed", (),
                                       sys.exc_info())
        line = JsonFormatter().format(record)
        self.assertNotIn("\n", line)
        self.assertIn("ValueError", json.loads(line)["exception"])

    def test_timestamp_is_utc(self):
        moment = datetime.datetime(2025, 4, 2, 7, 21, 50, 458989, tzinfo=datetime.timezone.utc)
        self.assertEqual(rfc3339_utc(moment.timestamp()), "2025-04-02T07:21:50.458989Z")


class TextFormatterTest(unittest.TestCase):
    def test_extras_follow_the_message(self):
        line = TextFormatter().format(make_record(channel="c 1", messageNumber=7))
        self.assertTrue(line.endswith('rocket a channel="c 1" messageNumber=7'), line)
        self.assertIn("INFO lunar.test:", line)


class RateLimitedLoggerTest(unittest.TestCase):
    def test_lines_past_the_limit_are_summarised(self):
        capture = CapturingLogger(self)
        clock = FakeClock()
        limited = RateLimitedLogger(capture.logger, 3, clock)
        logged = [limited.log(logging.INFO, "line %d", index) for index in range(10)]
        self.assertEqual(logged, [True] * 3 + [False] * 7)
        self.assertEqual(len(capture.records), 3)
        clock.now += 1.0
        self.assertTrue(limited.log(logging.INFO, "line after"))
        self.assertEqual(len(capture.records), 5)
        summary = capture.records[3]
        self.assertEqual(summary.levelno, logging.WARNING)
        self.assertIn("suppressed 7 similar log lines", summary.getMessage())
        self.assertEqual(capture.records[4].getMessage(), "line after")

    def test_forced_flush_reports_at_once(self):
        capture = CapturingLogger(self)
        limited = RateLimitedLogger(capture.logger, 1, FakeClock())
        for _ in range(3):
            limited.log(logging.INFO, "line")
        limited.flush(force=True)
        self.assertEqual(len(capture.records), 2)
        self.assertIn("suppressed 2", capture.records[1].getMessage())

    def test_flush_reports_after_the_flood_stops(self):
        capture = CapturingLogger(self)
        clock = FakeClock()
        limited = RateLimitedLogger(capture.logger, 1, clock)
        for _ in range(5):
            limited.log(logging.INFO, "line")
        limited.flush()
        self.assertEqual(len(capture.records), 1)
        clock.now += 1.5
        limited.flush()
        self.assertEqual(len(capture.records), 2)
        self.assertIn("suppressed 4", capture.records[1].getMessage())
        clock.now += 5
        limited.flush()
        self.assertEqual(len(capture.records), 2)

    def test_flood_costs_a_few_lines_a_second(self):
        capture = CapturingLogger(self)
        clock = FakeClock()
        limited = RateLimitedLogger(capture.logger, 10, clock)
        for index in range(100_000):
            clock.now += 0.0001  # 10,000 lines a second for 10 s
            limited.log(logging.INFO, "line %d", index)
        limited.flush()
        self.assertLessEqual(len(capture.records), 10 * 11 + 11)


class TrafficSummaryTest(unittest.TestCase):
    def test_summary_logged_only_with_traffic(self):
        clock = FakeClock()
        totals = {"applied": 0, "rejected": 0}
        summary = TrafficSummary(lambda: totals, 60.0, clock)
        self.assertFalse(summary.due())
        clock.now += 60
        self.assertTrue(summary.due())
        self.assertIsNone(summary.log_summary())
        totals = {"applied": 1200, "rejected": 30}
        clock.now += 60
        with self.assertLogs("lunar.logs", "INFO") as logs:
            line = summary.log_summary()
        self.assertIn("received 1230 messages in 60 s (20.5/s)", line)
        self.assertIn("1200 applied, 30 rejected", line)
        self.assertEqual(logs.records[0].messagesPerSecond, 20.5)
        self.assertFalse(summary.due())


def post(connection, body):
    connection.request("POST", "/messages", body)
    response = connection.getresponse()
    response.read()
    return response.status


class JsonLogProcessTest(unittest.TestCase):
    def test_server_logs_only_json_lines(self):
        server = ServerProcess("--db", ":memory:", "--log-format", "json").start()
        self.addCleanup(server.stop)
        connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
        self.addCleanup(connection.close)
        self.assertEqual(post(connection, b"true"), 400)
        self.assertEqual(server.stop(), 0)
        documents = [json.loads(line) for line in server.log_lines]
        self.assertGreaterEqual(len(documents), 3)
        for document in documents:
            self.assertRegex(document["timestamp"], RFC3339_UTC)
            self.assertIn(document["level"], ("DEBUG", "INFO", "WARNING", "ERROR"))
            self.assertTrue(document["logger"].startswith("lunar"))
        rejected = [document for document in documents if document.get("reason")]
        self.assertEqual(len(rejected), 1)
        self.assertEqual(rejected[0]["reason"], "invalid_field")
        self.assertEqual(rejected[0]["client"], "127.0.0.1")

    def test_flood_of_rejections_is_rate_limited_and_summarised(self):
        server = ServerProcess("--db", ":memory:", "--log-format", "json",
                               "--rejection-log-rate", "5", "--summary-interval", "1").start()
        self.addCleanup(server.stop)
        connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
        self.addCleanup(connection.close)
        for _ in range(50):
            self.assertEqual(post(connection, b"{broken"), 400)
        deadline = time.monotonic() + SUMMARY_WAIT_SECONDS
        while (time.monotonic() < deadline
               and not any("messagesPerSecond" in line for line in server.log_lines)):
            time.sleep(0.05)
        self.assertEqual(server.stop(), 0)  # stopping reports what is still suppressed

        documents = [json.loads(line) for line in server.log_lines]
        rejected = [document for document in documents if document.get("reason") == "invalid_json"]
        self.assertGreaterEqual(len(rejected), 5)
        self.assertLess(len(rejected), 50)
        suppressed = [document for document in documents if "suppressed" in document]
        self.assertEqual(sum(document["suppressed"] for document in suppressed),
                         50 - len(rejected))
        summaries = [document for document in documents if "messagesPerSecond" in document]
        self.assertGreaterEqual(len(summaries), 1)
        self.assertIn("50 rejected", summaries[0]["message"])


if __name__ == "__main__":
    unittest.main()
