"""Tests of ETag and If-None-Match on every JSON GET, against a real server."""

import http.client
import re
import unittest

from lunar.conditional import entity_tag, none_match
from tests.fleetserver import REQUEST_TIMEOUT_SECONDS, message_body, start_server

JSON_PATHS = (
    "/rockets",
    "/rockets?sort=speed&limit=1",
    "/rockets/a",
    "/rockets/a/messages",
    "/missions",
    "/missions?details=true",
    "/missions/ARTEMIS",
    "/openapi.json",
)
_STRONG_TAG = re.compile(r'"[0-9a-f]{24}"')


class EntityTagTest(unittest.TestCase):
    def setUp(self):
        self.server = start_server(self)
        self.server.post_message("a", 1, "RocketLaunched")
        self.server.post_message("b", 1, "RocketLaunched", mission="GEMINI")

    def etag(self, path):
        reply = self.server.get(path)
        self.assertEqual(reply.status, 200, reply.body)
        return reply.headers["ETag"]

    def get_with_lines(self, path, *if_none_match_lines):
        """GET with one If-None-Match header line per argument, on its own connection."""
        connection = http.client.HTTPConnection("127.0.0.1", self.server.port,
                                                timeout=REQUEST_TIMEOUT_SECONDS)
        self.addCleanup(connection.close)
        connection.putrequest("GET", path)
        for line in if_none_match_lines:
            connection.putheader("If-None-Match", line)
        connection.endheaders()
        response = connection.getresponse()
        return response.status, response.read()

    def test_every_json_get_has_strong_etag(self):
        for path in JSON_PATHS:
            with self.subTest(path=path):
                self.assertRegex(self.etag(path), _STRONG_TAG)

    def test_matching_etag_returns_304_without_body(self):
        for path in JSON_PATHS:
            with self.subTest(path=path):
                tag = self.etag(path)
                reply = self.server.get(path, {"If-None-Match": tag})
                self.assertEqual(reply.status, 304)
                self.assertEqual(reply.body, b"")
                self.assertEqual(reply.headers["ETag"], tag)
                self.assertIsNone(reply.headers.get("Content-Length"))
                self.assertIsNone(reply.headers.get("Content-Type"))

    def test_if_none_match_forms(self):
        tag = self.etag("/rockets")
        weak = "W/" + tag
        cases = (
            ([tag], 304),
            ([weak], 304),
            (['"0123", ' + tag], 304),
            ([f'"0123",{weak} , "4567"'], 304),
            (["*"], 304),
            ([' * '], 304),
            (['"0123"', tag], 304),
            (['"0123"'], 200),
            (['W/"0123"'], 200),
            ([tag.strip('"')], 200),
            ([""], 200),
        )
        for lines, expected_status in cases:
            with self.subTest(lines=lines):
                status, body = self.get_with_lines("/rockets", *lines)
                self.assertEqual(status, expected_status)
                self.assertEqual(body == b"", expected_status == 304)

    def test_etag_changes_when_body_changes(self):
        before = self.etag("/rockets")

        self.server.post_message("a", 2, "RocketSpeedIncreased")
        reply = self.server.get("/rockets", {"If-None-Match": before})

        self.assertEqual(reply.status, 200)
        self.assertNotEqual(reply.headers["ETag"], before)
        self.assertEqual(reply.headers["ETag"], entity_tag(reply.body))

    def test_etag_stays_after_duplicate_message(self):
        before = self.etag("/rockets")

        self.server.post_message("a", 1, "RocketLaunched", launchSpeed=9999)

        self.assertEqual(self.etag("/rockets"), before)
        self.assertEqual(self.server.get("/rockets", {"If-None-Match": before}).status, 304)

    def test_other_rockets_keep_their_etag(self):
        rocket_b = self.etag("/rockets/b")
        fleet = self.etag("/rockets")

        self.server.post_message("a", 2, "RocketSpeedIncreased")

        self.assertEqual(self.etag("/rockets/b"), rocket_b)
        self.assertNotEqual(self.etag("/rockets"), fleet)

    def test_equal_bodies_share_etag(self):
        self.assertEqual(self.etag("/rockets"), self.etag("/rockets?sort=launchTime&order=asc"))
        self.assertNotEqual(self.etag("/rockets"), self.etag("/rockets?sort=channel&order=desc"))

    def test_head_matches_get(self):
        tag = self.etag("/rockets")

        head = self.server.request("HEAD", "/rockets")
        conditional_head = self.server.request("HEAD", "/rockets", headers={"If-None-Match": tag})

        self.assertEqual(head.status, 200)
        self.assertEqual(head.headers["ETag"], tag)
        self.assertEqual(conditional_head.status, 304)
        self.assertEqual(conditional_head.headers["ETag"], tag)

    def test_errors_and_posts_have_no_etag(self):
        replies = {
            "404": self.server.get("/rockets/nobody", {"If-None-Match": "*"}),
            "400": self.server.get("/rockets?sort=name", {"If-None-Match": "*"}),
            "405": self.server.request("DELETE", "/rockets", headers={"If-None-Match": "*"}),
            "202": self.server.request("POST", "/messages", message_body("c", 1, "RocketLaunched"),
                                       {"If-None-Match": "*"}),
        }
        for expected_status, reply in replies.items():
            with self.subTest(status=expected_status):
                self.assertEqual(reply.status, int(expected_status))
                self.assertIsNone(reply.headers.get("ETag"))

    def test_connection_stays_usable_after_304_and_204(self):
        tag = self.etag("/rockets")
        connection = http.client.HTTPConnection("127.0.0.1", self.server.port,
                                                timeout=REQUEST_TIMEOUT_SECONDS)
        self.addCleanup(connection.close)
        statuses = []
        for method, headers in (("GET", {"If-None-Match": tag}), ("OPTIONS", {}), ("GET", {})):
            connection.request(method, "/rockets", headers=headers)
            response = connection.getresponse()
            response.read()
            statuses.append(response.status)

        self.assertEqual(statuses, [304, 204, 200])


class NoneMatchTest(unittest.TestCase):
    def test_field_values_against_tag(self):
        tag = '"abc"'
        cases = (
            (['"abc"'], True),
            (['W/"abc"'], True),
            (['"x", "abc"'], True),
            (['"x"', 'W/"abc"'], True),
            (["*"], True),
            (['"abcd"'], False),
            (['"ab"'], False),
            (["abc"], False),
            ([], False),
            (['"x", *'], False),
        )
        for field_values, expected in cases:
            with self.subTest(field_values=field_values):
                self.assertIs(none_match(field_values, tag), expected)

    def test_tag_depends_on_every_byte(self):
        self.assertEqual(entity_tag(b"[1]"), entity_tag(b"[1]"))
        self.assertNotEqual(entity_tag(b"[1]"), entity_tag(b"[2]"))
        self.assertNotEqual(entity_tag(b""), entity_tag(b" "))


if __name__ == "__main__":
    unittest.main()
