"""Tests for ``lunar.messages``: decoding and validating request bodies.

The table of invalid bodies lives in ``tests.support`` because the HTTP
tests send the same bodies over a socket.
"""

import json
import unittest

from lunar.messages import MAX_MESSAGE_NUMBER, InvalidMessage, Message, decode_message
from tests.support import (
    VALID_PAYLOADS,
    encode,
    error_field,
    invalid_message_cases,
    launch_message,
    make_message,
)


class DecodeValidMessageTest(unittest.TestCase):

    def test_launch_message_fields(self):
        body = encode(launch_message("193270a9-c9cf-404a-8f83-838e71d9ae67", 1, speed=500,
                                     mission="ARTEMIS", rocket_type="Falcon-9",
                                     message_time_text="2025-04-02T09:21:50.458989221+02:00"))

        message = decode_message(body)

        self.assertIsInstance(message, Message)
        self.assertEqual(message.channel, "193270a9-c9cf-404a-8f83-838e71d9ae67")
        self.assertEqual(message.number, 1)
        self.assertEqual(message.type, "RocketLaunched")
        self.assertEqual(message.time, "2025-04-02T09:21:50.458989221+02:00")
        self.assertEqual(message.instant, 1_743_578_510_458_989_221)
        self.assertEqual(message.payload,
                         {"type": "Falcon-9", "launchSpeed": 500, "mission": "ARTEMIS"})
        self.assertEqual(message.source, body.decode("utf-8"))

    def test_every_known_type_accepted(self):
        for number, (message_type, payload) in enumerate(VALID_PAYLOADS.items(), start=1):
            with self.subTest(message_type):
                message = decode_message(encode(make_message("c", number, message_type, **payload)))
                self.assertEqual(message.type, message_type)
                self.assertEqual(message.payload, payload)

    def test_boundary_values_accepted(self):
        cases = [
            ("messageNumber 1", make_message("c", 1, "RocketSpeedIncreased", by=1)),
            ("messageNumber 2^63-1",
             make_message("c", MAX_MESSAGE_NUMBER, "RocketSpeedIncreased", by=1)),
            ("by 0", make_message("c", 1, "RocketSpeedIncreased", by=0)),
            ("by negative", make_message("c", 1, "RocketSpeedDecreased", by=-7.5)),
            ("by 1e12", make_message("c", 1, "RocketSpeedIncreased", by=1e12)),
            ("by -1e12", make_message("c", 1, "RocketSpeedIncreased", by=-1e12)),
            ("by integer 10^12", make_message("c", 1, "RocketSpeedIncreased", by=10**12)),
            ("launchSpeed float", launch_message("c", speed=512.25)),
            ("launchSpeed negative", launch_message("c", speed=-1)),
            ("text with emoji", launch_message("c", mission="\U0001F680 moon")),
            ("channel of one character", launch_message("x")),
            ("extra payload field", make_message("c", 1, "RocketExploded",
                                                 reason="FIRE", extra=[1, 2])),
            ("unknown type with empty payload", make_message("c", 1, "RocketRefuelled")),
            ("unknown type with any payload", make_message("c", 1, "RocketRefuelled",
                                                           by="lots", reason=None)),
            ("offset messageTime", launch_message(
                "c", message_time_text="2025-04-02T11:21:50-03:00")),
            ("12-digit fraction", launch_message(
                "c", message_time_text="2025-04-02T09:21:50.123456789012Z")),
        ]
        for description, document in cases:
            with self.subTest(description):
                message = decode_message(encode(document))
                self.assertEqual(message.payload, document["message"])

    def test_surrogate_pair_escape_decodes_to_character(self):
        body = encode(launch_message("c")).replace(b"ARTEMIS", b"\\ud83d\\ude80")

        message = decode_message(body)

        self.assertEqual(message.payload["mission"], "\U0001F680")

    def test_extra_top_level_fields_ignored(self):
        document = launch_message("c")
        document["signature"] = "abc"

        message = decode_message(encode(document))

        self.assertEqual(message.channel, "c")

    def test_non_ascii_utf8_body_accepted(self):
        body = json.dumps(launch_message("c", mission="Mondfähre"), ensure_ascii=False)

        message = decode_message(body.encode("utf-8"))

        self.assertEqual(message.payload["mission"], "Mondfähre")



class EmptyBodyTest(unittest.TestCase):
    def test_empty_or_blank_body_is_named_empty(self):
        for body in (b"", b"  \r\n\n"):
            with self.subTest(body=body):
                with self.assertRaises(InvalidMessage) as caught:
                    decode_message(body)

                self.assertEqual(str(caught.exception), "body is empty; send one JSON message object")

class DecodeInvalidMessageTest(unittest.TestCase):

    def test_invalid_body_names_field(self):
        for case in invalid_message_cases():
            with self.subTest(case.description):
                with self.assertRaises(InvalidMessage) as caught:
                    decode_message(case.body)
                self.assertEqual(error_field(str(caught.exception)), case.field,
                                 f"error was: {caught.exception}")

    def test_invalid_message_is_value_error(self):
        self.assertTrue(issubclass(InvalidMessage, ValueError))

    def test_json_errors_explain_cause(self):
        valid = encode(launch_message("c"))
        cases = [
            ("invalid JSON", valid[:-1], "not valid JSON"),
            ("invalid UTF-8", b"\xff" + valid, "not valid UTF-8"),
            ("NaN", valid.replace(b": 500", b": NaN"), "NaN"),
            ("Infinity", valid.replace(b": 500", b": Infinity"), "Infinity"),
            ("1e400", valid.replace(b": 500", b": 1e400"), "1e400"),
            ("deep nesting", b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),
            ("array body", b"[]", "an array"),
        ]
        for description, body, expected in cases:
            with self.subTest(description):
                with self.assertRaises(InvalidMessage) as caught:
                    decode_message(body)
                self.assertIn(expected, str(caught.exception))

    def test_wrong_kind_error_shows_value(self):
        body = encode(make_message("c", 1, "RocketSpeedIncreased", by="fast"))

        with self.assertRaises(InvalidMessage) as caught:
            decode_message(body)

        self.assertIn('"fast"', str(caught.exception))
        self.assertIn("a number", str(caught.exception))

    def test_missing_field_error_says_missing(self):
        document = launch_message("c")
        del document["metadata"]["channel"]

        with self.assertRaises(InvalidMessage) as caught:
            decode_message(encode(document))

        self.assertIn("metadata.channel is missing", str(caught.exception))

    def test_long_value_shortened_in_error(self):
        body = encode(make_message("c", 1, "RocketExploded", reason=["x" * 1000]))

        with self.assertRaises(InvalidMessage) as caught:
            decode_message(body)

        self.assertLess(len(str(caught.exception)), 200)

    def test_number_range_error_shows_maximum(self):
        body = encode(make_message("c", 0, "RocketSpeedIncreased", by=1))

        with self.assertRaises(InvalidMessage) as caught:
            decode_message(body)

        self.assertIn(str(MAX_MESSAGE_NUMBER), str(caught.exception))


if __name__ == "__main__":
    unittest.main()
