"""Tests for ``lunar.timestamps.parse_instant``: RFC 3339 text to epoch nanoseconds.

Expected values come from ``calendar.timegm``, independent of the
``datetime`` arithmetic the module uses.
"""

import calendar
import unittest

from lunar.timestamps import TimestampError, parse_instant


def utc_nanoseconds(year, month, day, hour=0, minute=0, second=0, nanosecond=0):
    """Return the UTC date-time as nanoseconds since the Unix epoch."""
    seconds = calendar.timegm((year, month, day, hour, minute, second, 0, 0, 0))
    return seconds * 1_000_000_000 + nanosecond


# 2025-04-02T09:21:50Z, the whole-second part of most cases below.
BASE = utc_nanoseconds(2025, 4, 2, 9, 21, 50)


class ParseInstantTest(unittest.TestCase):

    def test_valid_timestamps(self):
        cases = [
            ("9 fractional digits", "2025-04-02T09:21:50.458989221Z", BASE + 458_989_221),
            ("no fractional digits", "2025-04-02T09:21:50Z", BASE),
            ("1 fractional digit", "2025-04-02T09:21:50.4Z", BASE + 400_000_000),
            ("3 fractional digits", "2025-04-02T09:21:50.004Z", BASE + 4_000_000),
            ("6 fractional digits", "2025-04-02T09:21:50.000001Z", BASE + 1_000),
            ("12 digits truncated, not rounded", "2025-04-02T09:21:50.458989221999Z",
             BASE + 458_989_221),
            ("30 digits truncated", "2025-04-02T09:21:50." + "9" * 30 + "Z", BASE + 999_999_999),
            ("lowercase z", "2025-04-02T09:21:50.5z", BASE + 500_000_000),
            ("lowercase t", "2025-04-02t09:21:50Z", BASE),
            ("space separator", "2025-04-02 09:21:50Z", BASE),
            ("positive offset", "2025-04-02T11:21:50.458989221+02:00", BASE + 458_989_221),
            ("negative offset", "2025-04-02T03:51:50-05:30", BASE),
            ("offset crossing midnight", "2025-04-01T23:21:50-10:00", BASE),
            ("zero offset", "2025-04-02T09:21:50+00:00", BASE),
            ("negative zero offset", "2025-04-02T09:21:50-00:00", BASE),
            ("maximum offset", "2025-04-03T09:20:50+23:59", BASE),
            ("epoch", "1970-01-01T00:00:00Z", 0),
            ("before the epoch", "1969-12-31T23:59:59.5Z", -500_000_000),
            ("leap day", "2024-02-29T12:00:00Z", utc_nanoseconds(2024, 2, 29, 12)),
            ("leap second", "2016-12-31T23:59:60Z", utc_nanoseconds(2017, 1, 1)),
            ("leap second with fraction", "2016-12-31T23:59:60.25Z",
             utc_nanoseconds(2017, 1, 1, nanosecond=250_000_000)),
            ("year 1", "0001-01-01T00:00:00Z", utc_nanoseconds(1, 1, 1)),
            ("year 9999", "9999-12-31T23:59:59.999999999Z",
             utc_nanoseconds(9999, 12, 31, 23, 59, 59, 999_999_999)),
        ]
        for description, text, expected in cases:
            with self.subTest(description, text=text):
                self.assertEqual(parse_instant(text), expected)

    def test_same_instant_in_different_zones_is_equal(self):
        spellings = [
            "2025-04-02T09:21:50.458989221Z",
            "2025-04-02T11:21:50.458989221+02:00",
            "2025-04-02T04:21:50.458989221-05:00",
            "2025-04-02T14:51:50.458989221+05:30",
            "2025-04-01T23:21:50.458989221-10:00",
            "2025-04-02T09:21:50.458989221000Z",
        ]
        instants = {text: parse_instant(text) for text in spellings}
        for text, instant in instants.items():
            with self.subTest(text=text):
                self.assertEqual(instant, BASE + 458_989_221)

    def test_order_follows_instant_not_text(self):
        # As text, "10:00+02:00" sorts after "09:00Z", but it is an hour earlier.
        earlier = parse_instant("2025-04-02T10:00:00+02:00")
        later = parse_instant("2025-04-02T09:00:00Z")
        self.assertLess(earlier, later)

    def test_one_nanosecond_apart_compares_unequal(self):
        first = parse_instant("2025-04-02T09:21:50.000000001Z")
        second = parse_instant("2025-04-02T09:21:50.000000002Z")
        self.assertEqual(second - first, 1)

    def test_invalid_timestamps_are_rejected(self):
        cases = [
            ("February 30", "2025-02-30T09:21:50Z"),
            ("February 29 in a common year", "2023-02-29T09:21:50Z"),
            ("April 31", "2025-04-31T09:21:50Z"),
            ("month 13", "2025-13-02T09:21:50Z"),
            ("month 0", "2025-00-02T09:21:50Z"),
            ("day 0", "2025-04-00T09:21:50Z"),
            ("year 0", "0000-01-01T00:00:00Z"),
            ("hour 24", "2025-04-02T24:00:00Z"),
            ("minute 60", "2025-04-02T09:60:50Z"),
            ("second 61", "2025-04-02T09:21:61Z"),
            ("offset hour 24", "2025-04-02T09:21:50+24:00"),
            ("offset minute 60", "2025-04-02T09:21:50+02:60"),
            ("missing zone", "2025-04-02T09:21:50"),
            ("missing zone with fraction", "2025-04-02T09:21:50.458989221"),
            ("offset without colon", "2025-04-02T09:21:50+0200"),
            ("offset hours only", "2025-04-02T09:21:50+02"),
            ("zone name", "2025-04-02T09:21:50 UTC"),
            ("dot without digits", "2025-04-02T09:21:50.Z"),
            ("comma as decimal mark", "2025-04-02T09:21:50,5Z"),
            ("missing seconds", "2025-04-02T09:21Z"),
            ("date only", "2025-04-02"),
            ("two-digit year", "25-04-02T09:21:50Z"),
            ("single-digit month", "2025-4-02T09:21:50Z"),
            ("slashes", "2025/04/02T09:21:50Z"),
            ("leading space", " 2025-04-02T09:21:50Z"),
            ("trailing space", "2025-04-02T09:21:50Z "),
            ("trailing newline", "2025-04-02T09:21:50Z\n"),
            ("non-ASCII digits", "\uff12025-04-02T09:21:50Z"),
            ("empty", ""),
            ("free text", "yesterday"),
            ("Unix seconds", "1743585710"),
        ]
        for description, text in cases:
            with self.subTest(description, text=text):
                with self.assertRaises(TimestampError):
                    parse_instant(text)

    def test_error_is_value_error_quoting_text(self):
        with self.assertRaises(ValueError) as caught:
            parse_instant("2025-02-30T09:21:50Z")
        self.assertIsInstance(caught.exception, TimestampError)
        self.assertIn("'2025-02-30T09:21:50Z'", str(caught.exception))


if __name__ == "__main__":
    unittest.main()
