"""Tests of the deterministic rocket traffic and its JSON encoding."""

import collections
import hashlib
import json
import os
import re
import time
import unittest
import uuid
from unittest import mock

from lunar.rockets import generator, wire
from lunar.rockets.ledger import RocketState

MESSAGE_TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}(Z|[+-]\d\d:\d\d)$")


def messages_by_channel(messages):
    by_channel = collections.defaultdict(list)
    for message in messages:
        by_channel[message.channel].append(message)
    return by_channel


class GeneratorDeterminismTest(unittest.TestCase):
    def test_same_seed_same_messages(self):
        first = [message.content() for message in generator.generate_messages(444, 20, 3000)]
        second = [message.content() for message in generator.generate_messages(444, 20, 3000)]
        self.assertEqual(len(first), 3000)
        self.assertEqual(first, second)

    def test_channels_fixed_per_seed(self):
        channels = generator.channels_for_seed(444, 20)
        self.assertEqual(channels, generator.channels_for_seed(444, 20))
        self.assertEqual(len(set(channels)), 20)
        launched = [message.channel for message in generator.generate_messages(444, 20, 20)]
        self.assertEqual(launched, channels)

    def test_channels_are_uuid4(self):
        for channel in generator.channels_for_seed(444, 20):
            parsed = uuid.UUID(channel)
            self.assertEqual(parsed.version, 4, channel)
            self.assertEqual(str(parsed), channel)

    def test_other_seed_other_channels(self):
        self.assertFalse(set(generator.channels_for_seed(444)) & set(generator.channels_for_seed(445)))

    def test_fewer_rockets_same_channels(self):
        self.assertEqual(generator.channels_for_seed(7, 5), generator.channels_for_seed(7, 20)[:5])

    def test_golden_stream_for_seed_444(self):
        # Guards against a change of the random streams, in our code or in a
        # CPython release, which would silently change every run's traffic.
        digest = hashlib.sha256()
        for message in generator.generate_messages(444, 20, 2000):
            digest.update(message.head + b"|" + message.tail + b"\n")
        self.assertEqual(digest.hexdigest(), "3d44f7e1c10989bbc37595c79eae2abee3fb84dbed035354d1557235060905c4")
        self.assertEqual(generator.channels_for_seed(444)[0], "67596432-0868-484d-b041-41e75f749267")


class GeneratorPrefixTest(unittest.TestCase):
    def test_shorter_run_is_prefix_per_rocket(self):
        long_run = messages_by_channel(generator.generate_messages(444, 20, 8000))
        for max_messages in (1, 7, 20, 21, 500, 3001):
            short_run = messages_by_channel(generator.generate_messages(444, 20, max_messages))
            self.assertEqual(sum(len(messages) for messages in short_run.values()), max_messages)
            for channel, messages in short_run.items():
                expected = [message.content() for message in long_run[channel][: len(messages)]]
                self.assertEqual([message.content() for message in messages], expected, (max_messages, channel))

    def test_shorter_run_is_prefix_with_explosions(self):
        with mock.patch.object(generator, "EXPLOSION_PROBABILITY", 0.01):
            long_run = messages_by_channel(generator.generate_messages(9, 10, 4000))
            short_run = messages_by_channel(generator.generate_messages(9, 10, 1200))
        exploded = [channel for channel, messages in long_run.items() if messages[-1].message_type == "RocketExploded"]
        self.assertGreater(len(exploded), 0)
        for channel, messages in short_run.items():
            expected = [message.content() for message in long_run[channel][: len(messages)]]
            self.assertEqual([message.content() for message in messages], expected, channel)

    def test_message_numbers_contiguous(self):
        for channel, messages in messages_by_channel(generator.generate_messages(3, 20, 5000)).items():
            self.assertEqual([message.number for message in messages], list(range(1, len(messages) + 1)), channel)


class GeneratorContentTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.scripts = generator.rocket_scripts(444, 20)
        cls.messages = list(generator.generate_messages(444, 20, 100_000, cls.scripts))
        cls.by_channel = messages_by_channel(cls.messages)

    def test_first_message_is_launch(self):
        for channel, messages in self.by_channel.items():
            self.assertEqual(messages[0].number, 1)
            self.assertEqual(messages[0].message_type, "RocketLaunched", channel)
            later_launches = [message for message in messages[1:] if message.message_type == "RocketLaunched"]
            self.assertEqual(later_launches, [], channel)

    def test_speeds_in_steps_of_500(self):
        for channel, messages in self.by_channel.items():
            state = RocketState(channel)
            for message in messages:
                for key in ("launchSpeed", "by"):
                    if key in message.payload:
                        self.assertEqual(message.payload[key] % 500, 0, message)
                        self.assertGreaterEqual(message.payload[key], 500, message)
                state.apply(message)
                self.assertEqual(state.speed % 500, 0, message)
                self.assertGreaterEqual(state.speed, 500, message)

    def test_nothing_after_explosion(self):
        for channel, messages in self.by_channel.items():
            types = [message.message_type for message in messages]
            if "RocketExploded" in types:
                self.assertEqual(types.index("RocketExploded"), len(types) - 1, channel)

    def test_about_six_of_twenty_explode(self):
        exploded = sum(1 for script in self.scripts if script.exploded)
        self.assertGreaterEqual(exploded, 3)
        self.assertLessEqual(exploded, 10)
        self.assertEqual(len(self.messages), 100_000)

    def test_payload_values_from_catalog(self):
        for message in self.messages:
            payload = message.payload
            if message.message_type == "RocketLaunched":
                self.assertIn(payload["type"], generator.ROCKET_TYPES)
                self.assertIn(payload["mission"], generator.MISSIONS)
            elif message.message_type == "RocketMissionChanged":
                self.assertIn(payload["newMission"], generator.MISSIONS)
            elif message.message_type == "RocketExploded":
                self.assertIn(payload["reason"], generator.EXPLOSION_REASONS)

    def test_every_message_type_occurs(self):
        types = collections.Counter(message.message_type for message in self.messages)
        for message_type in (
            "RocketLaunched",
            "RocketSpeedIncreased",
            "RocketSpeedDecreased",
            "RocketMissionChanged",
            "RocketExploded",
        ):
            self.assertGreater(types[message_type], 0, message_type)

    def test_stops_when_all_exploded(self):
        with mock.patch.object(generator, "EXPLOSION_PROBABILITY", 0.2):
            scripts = generator.rocket_scripts(5, 4)
            messages = list(generator.generate_messages(5, 4, 10_000, scripts))
        self.assertTrue(all(script.exploded for script in scripts))
        self.assertLess(len(messages), 10_000)
        self.assertEqual(sum(1 for message in messages if message.message_type == "RocketExploded"), 4)

    def test_invalid_arguments_rejected(self):
        with self.assertRaises(ValueError):
            list(generator.generate_messages(1, 0, 10))
        with self.assertRaises(ValueError):
            list(generator.generate_messages(1, 5, -1))


class WireTest(unittest.TestCase):
    def test_body_shape_and_key_order(self):
        message = next(generator.generate_messages(444, 20, 1))
        body = message.head + b"2025-04-02T09:21:50.458989221+02:00" + message.tail
        document = json.loads(body)
        self.assertEqual(list(document), ["metadata", "message"])
        self.assertEqual(list(document["metadata"]), ["channel", "messageNumber", "messageTime", "messageType"])
        self.assertEqual(document["metadata"]["messageTime"], "2025-04-02T09:21:50.458989221+02:00")
        self.assertEqual(document["metadata"]["messageType"], "RocketLaunched")
        self.assertEqual(list(document["message"]), ["type", "launchSpeed", "mission"])
        expected_start = '{"metadata": {"channel": "' + message.channel + '", "messageNumber": 1, "messageTime": "'
        self.assertTrue(body.decode().startswith(expected_start))

    def test_utc_offset_format(self):
        cases = {0: "Z", 7200: "+02:00", -18000: "-05:00", 19800: "+05:30", -34200: "-09:30"}
        for offset, expected in cases.items():
            self.assertEqual(wire.format_utc_offset(offset), expected, offset)

    def test_message_time_format(self):
        self.assertRegex(wire.format_message_time(1743578510458989221), MESSAGE_TIME)
        self.assertTrue(wire.format_message_time(1743578510000000001).split(".")[1].startswith("000000001"))

    @unittest.skipUnless(hasattr(time, "tzset"), "time.tzset is not available on this platform")
    def test_message_time_in_berlin_summer(self):
        saved = os.environ.get("TZ")
        os.environ["TZ"] = "Europe/Berlin"
        time.tzset()
        try:
            formatted = wire.format_message_time(1743578510458989221)
        finally:
            if saved is None:
                del os.environ["TZ"]
            else:
                os.environ["TZ"] = saved
            time.tzset()
        self.assertEqual(formatted, "2025-04-02T09:21:50.458989221+02:00")

    def test_clock_matches_formatter(self):
        clock = wire.MessageClock()
        before = time.time_ns()
        stamp = clock.now().decode("ascii")
        after = time.time_ns()
        self.assertRegex(stamp, MESSAGE_TIME)
        self.assertLessEqual(wire.format_message_time(before)[:19], stamp[:19])
        self.assertLessEqual(stamp[:19], wire.format_message_time(after)[:19])
        self.assertEqual(stamp[29:], wire.format_message_time(after)[29:])


if __name__ == "__main__":
    unittest.main()
