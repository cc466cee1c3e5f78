"""Tests of GET /rockets/<channel>/messages: order, applied or buffered, fields and pages."""

import re
import time
import unittest
import urllib.parse

from lunar.fleet import Journal
from lunar.timestamps import parse_instant
from tests.fleetserver import start_server

_LINK = re.compile(r'<([^>]*)>;\s*rel="([a-z]+)"')


def parse_links(reply):
    """Return the Link header of a reply as {relation: URL}."""
    return {relation: url for url, relation in _LINK.findall(reply.headers.get("Link", ""))}


def query_of(url):
    return dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(url).query, keep_blank_values=True))


class StoredMessagesTest(unittest.TestCase):
    def setUp(self):
        self.server = start_server(self)
        self.server.post_message("a", 1, "RocketLaunched")

    def messages(self, path="/rockets/a/messages"):
        reply = self.server.get(path)
        self.assertEqual(reply.status, 200, reply.body)
        return reply

    def test_messages_come_in_number_order_with_state(self):
        self.server.post_message("a", 4, "RocketSpeedIncreased", by=4)
        self.server.post_message("a", 2, "RocketSpeedIncreased", by=2)
        self.server.post_message("a", 5, "RocketExploded")
        self.server.post_message("a", 2, "RocketSpeedIncreased", by=999)  # a duplicate

        items = self.messages().json()

        self.assertEqual([item["messageNumber"] for item in items], [1, 2, 4, 5])
        self.assertEqual([item["state"] for item in items], ["applied", "applied", "buffered", "buffered"])
        self.assertEqual([item["messageType"] for item in items],
                         ["RocketLaunched", "RocketSpeedIncreased", "RocketSpeedIncreased", "RocketExploded"])
        self.assertEqual(items[1]["message"]["message"], {"by": 2})

        self.server.post_message("a", 3, "RocketSpeedIncreased")

        self.assertEqual({item["state"] for item in self.messages().json()}, {"applied"})

    def test_message_fields_keep_what_was_sent(self):
        before = time.time()
        self.server.post_message("b", 1, "RocketLaunched", "2025-04-02T09:21:50.123456789+02:00",
                                 type="Atlas-V", launchSpeed=1200.5, mission="GEMINI", extra=[1])
        after = time.time()

        item = self.messages("/rockets/b/messages").json()[0]

        self.assertEqual(set(item), {"messageNumber", "messageType", "messageTime", "receivedAt",
                                     "state", "message"})
        self.assertEqual(item["messageTime"], "2025-04-02T09:21:50.123456789+02:00")
        self.assertEqual(item["message"]["message"],
                         {"type": "Atlas-V", "launchSpeed": 1200.5, "mission": "GEMINI", "extra": [1]})
        self.assertEqual(item["message"]["metadata"]["channel"], "b")
        self.assertRegex(item["receivedAt"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")
        received = parse_instant(item["receivedAt"]) / 1e9
        self.assertGreaterEqual(received, before - 0.001)
        self.assertLessEqual(received, after + 0.001)

    def test_messages_page_with_links(self):
        for number in range(2, 6):
            self.server.post_message("a", number)

        first = self.messages("/rockets/a/messages?limit=2")
        second = self.messages(parse_links(first)["next"])
        third = self.messages(parse_links(second)["next"])

        numbers = [[item["messageNumber"] for item in reply.json()] for reply in (first, second, third)]
        self.assertEqual(numbers, [[1, 2], [3, 4], [5]])
        self.assertEqual({reply.headers["X-Total-Count"] for reply in (first, second, third)}, {"5"})
        self.assertNotIn("next", parse_links(third))
        self.assertEqual(query_of(parse_links(third)["prev"]), {"limit": "2", "offset": "2"})

    def test_default_page_is_one_hundred_messages(self):
        for number in range(2, 121):
            self.server.post_message("a", number)

        reply = self.messages()

        self.assertEqual([item["messageNumber"] for item in reply.json()], list(range(1, 101)))
        self.assertEqual(reply.headers["X-Total-Count"], "120")
        self.assertEqual(query_of(parse_links(reply)["next"]), {"offset": "100"})
        rest = self.messages(parse_links(reply)["next"]).json()
        self.assertEqual([item["messageNumber"] for item in rest], list(range(101, 121)))

    def test_unknown_rocket_is_not_found(self):
        reply = self.server.get("/rockets/nobody/messages")

        self.assertEqual(reply.status, 404)
        self.assertEqual(reply.json(), {"error": "no rocket with channel 'nobody'"})

    def test_channel_with_encoded_slash(self):
        self.server.post_message("a/b", 1, "RocketLaunched")

        items = self.messages("/rockets/a%2Fb/messages").json()

        self.assertEqual([item["message"]["metadata"]["channel"] for item in items], ["a/b"])


class NoDatabaseMessagesTest(unittest.TestCase):
    def test_journal_without_storage_lists_no_messages(self):
        server = start_server(self, journal=Journal())
        server.post_message("a", 1, "RocketLaunched")

        reply = server.get("/rockets/a/messages")

        self.assertEqual(reply.status, 200)
        self.assertEqual(reply.json(), [])
        self.assertEqual(reply.headers["X-Total-Count"], "0")
        self.assertIsNone(reply.headers.get("Link"))


if __name__ == "__main__":
    unittest.main()
