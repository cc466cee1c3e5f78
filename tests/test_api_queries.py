"""Tests of the query parameters of the fleet API: sorting, filtering, paging and errors.

Every test talks HTTP to a real server on 127.0.0.1. The expected orders
come from a reference comparison written here, independently of
``lunar.query``.
"""

import functools
import re
import threading
import time
import unittest
import urllib.parse

from lunar.fleet import ControlCenter
from lunar.messages import decode_message
from lunar.query import SORT_FIELDS
from lunar.timestamps import parse_instant
from tests.fleetserver import (
    SAMPLE_LAUNCHED_ROCKETS,
    SAMPLE_PENDING_ROCKETS,
    FleetServer,
    message_body,
    post_sample_fleet,
    start_server,
)

FLEET_SEED = 20250402
FLEET_SIZE = SAMPLE_LAUNCHED_ROCKETS + SAMPLE_PENDING_ROCKETS
PAGE_SIZE = 7
MAX_PAGES = 100  # bounds every walk along Link next
ORDERS = ("asc", "desc")
CONCURRENT_RUN_SECONDS = 30.0  # upper bound on the writer thread of the concurrency test
CONCURRENT_ROCKET_MESSAGES = 5  # messages per rocket the writer adds

_LINK = re.compile(r'<([^>]*)>;\s*rel="([a-z]+)"')


def reference_value(rocket, sort):
    """Return what the sort field compares for one rocket's JSON, or None if missing."""
    value = rocket[sort]
    if value is None:
        return None
    if sort in ("launchTime", "lastMessageTime"):
        return parse_instant(value)
    if isinstance(value, str):
        return value.casefold()
    return value


def compare_rockets(first, second, sort, order):
    """Compare two rockets as the API promises: missing values last, ties by channel."""
    first_value = reference_value(first, sort)
    second_value = reference_value(second, sort)
    if first_value is None and second_value is not None:
        return 1
    if second_value is None and first_value is not None:
        return -1
    if first_value is not None and first_value != second_value:
        result = -1 if first_value < second_value else 1
        return -result if order == "desc" else result
    return (first["channel"] > second["channel"]) - (first["channel"] < second["channel"])


def reference_order(rockets, sort="launchTime", order="asc"):
    key = functools.cmp_to_key(lambda first, second: compare_rockets(first, second, sort, order))
    return sorted(rockets, key=key)


def channels(rockets):
    return [rocket["channel"] for rocket in rockets]


def parse_links(reply):
    """Return the Link header of a reply as {relation: URL}."""
    header = reply.headers.get("Link")
    if header is None:
        return {}
    return {relation: url for url, relation in _LINK.findall(header)}


def query_of(url):
    return dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(url).query, keep_blank_values=True))


class SampleFleetTestCase(unittest.TestCase):
    """Tests that read one shared sample fleet and change nothing."""

    @classmethod
    def setUpClass(cls):
        cls.server = FleetServer()
        cls.addClassCleanup(cls.server.stop)
        post_sample_fleet(cls.server, FLEET_SEED)
        cls.all_rockets = cls.server.get("/rockets").json()

    def get_ok(self, path):
        reply = self.server.get(path)
        self.assertEqual(reply.status, 200, f"GET {path}: {reply.body!r}")
        return reply


class SampleFleetTest(SampleFleetTestCase):
    def test_sample_fleet_has_ties_and_missing_values(self):
        self.assertEqual(len(self.all_rockets), FLEET_SIZE)
        for sort in SORT_FIELDS:
            values = [reference_value(rocket, sort) for rocket in self.all_rockets]
            present = [value for value in values if value is not None]
            with self.subTest(sort=sort):
                if sort != "channel":
                    self.assertLess(len(set(present)), len(present), "no ties")
                if sort not in ("channel", "status"):
                    self.assertLess(len(present), len(values), "no missing values")


class SortTest(SampleFleetTestCase):
    def test_every_sort_and_order_matches_reference(self):
        for sort in SORT_FIELDS:
            for order in ORDERS:
                with self.subTest(sort=sort, order=order):
                    reply = self.get_ok(f"/rockets?sort={sort}&order={order}")
                    expected = reference_order(self.all_rockets, sort, order)
                    self.assertEqual(channels(reply.json()), channels(expected))
                    self.assertEqual(reply.headers["X-Total-Count"], str(FLEET_SIZE))

    def test_order_defaults_to_ascending(self):
        for sort in SORT_FIELDS:
            with self.subTest(sort=sort):
                self.assertEqual(self.get_ok(f"/rockets?sort={sort}").json(),
                                 self.get_ok(f"/rockets?sort={sort}&order=asc").json())

    def test_plain_list_keeps_launch_order(self):
        plain = self.get_ok("/rockets").json()

        self.assertEqual(plain, self.get_ok("/rockets?sort=launchTime&order=asc").json())
        self.assertEqual(plain, self.server.control_center.rockets())
        self.assertIsNone(self.get_ok("/rockets").headers.get("Link"))

    def test_missing_values_sort_last_in_both_orders(self):
        for sort in ("launchTime", "speed", "type", "mission", "lastMessageTime"):
            for order in ORDERS:
                with self.subTest(sort=sort, order=order):
                    rockets = self.get_ok(f"/rockets?sort={sort}&order={order}").json()
                    missing = [rocket[sort] is None for rocket in rockets]
                    first_missing = missing.index(True)
                    self.assertTrue(all(missing[first_missing:]))
                    self.assertFalse(any(missing[:first_missing]))

    def test_ties_are_ordered_by_channel_in_both_orders(self):
        for order in ORDERS:
            with self.subTest(order=order):
                rockets = self.get_ok(f"/rockets?sort=status&order={order}").json()
                for status in ("pending", "launched", "exploded"):
                    group = channels(rocket for rocket in rockets if rocket["status"] == status)
                    self.assertEqual(group, sorted(group))

    def test_launch_times_compare_as_instants(self):
        rockets = self.get_ok("/rockets?sort=launchTime").json()
        launch_times = [rocket["launchTime"] for rocket in rockets if rocket["launchTime"]]
        instants = [parse_instant(text) for text in launch_times]

        self.assertEqual(instants, sorted(instants))
        self.assertIn("2025-04-02T09:21:50+02:00", launch_times)
        self.assertIn("2025-04-02T07:21:50Z", launch_times)

    def test_text_sorts_ignore_case(self):
        rockets = self.get_ok("/rockets?sort=type").json()
        types = [rocket["type"] for rocket in rockets if rocket["type"] is not None]

        self.assertEqual([text.casefold() for text in types], sorted(text.casefold() for text in types))
        self.assertNotEqual(types, sorted(types), "the sample should mix cases")


class FilterTest(SampleFleetTestCase):
    FILTERS = (
        ("status=pending", lambda rocket: rocket["status"] == "pending"),
        ("status=launched,exploded", lambda rocket: rocket["status"] in ("launched", "exploded")),
        ("status=exploded,exploded", lambda rocket: rocket["status"] == "exploded"),
        ("type=FALCON-9", lambda rocket: (rocket["type"] or "").casefold() == "falcon-9"),
        ("type=atlas-v", lambda rocket: (rocket["type"] or "").casefold() == "atlas-v"),
        ("mission=ARTEMIS", lambda rocket: (rocket["mission"] or "").casefold() == "artemis"),
        ("mission=mars%20return%2F2", lambda rocket: rocket["mission"] == "Mars Return/2"),
        ("minSpeed=1000", lambda rocket: rocket["speed"] is not None and rocket["speed"] >= 1000),
        ("maxSpeed=1000", lambda rocket: rocket["speed"] is not None and rocket["speed"] <= 1000),
        ("minSpeed=1000&maxSpeed=1000", lambda rocket: rocket["speed"] == 1000),
        ("minSpeed=-1e4&maxSpeed=1000.5",
         lambda rocket: rocket["speed"] is not None and rocket["speed"] <= 1000.5),
        ("minSpeed=0010&maxSpeed=1.0005e3",
         lambda rocket: rocket["speed"] is not None and 10 <= rocket["speed"] <= 1000.5),
        ("status=launched&type=falcon-9&minSpeed=1000",
         lambda rocket: rocket["status"] == "launched"
         and rocket["type"].casefold() == "falcon-9" and rocket["speed"] >= 1000),
        ("type=Saturn-V", lambda rocket: False),
    )

    def test_each_filter_matches_reference(self):
        for query, predicate in self.FILTERS:
            with self.subTest(query=query):
                reply = self.get_ok(f"/rockets?{query}")
                expected = reference_order([rocket for rocket in self.all_rockets if predicate(rocket)])
                self.assertEqual(channels(reply.json()), channels(expected))
                self.assertEqual(reply.headers["X-Total-Count"], str(len(expected)))

    def test_filters_select_something(self):
        for query, predicate in self.FILTERS[:-1]:
            with self.subTest(query=query):
                self.assertTrue(any(predicate(rocket) for rocket in self.all_rockets))

    def test_filters_combine_with_sort_and_page(self):
        reply = self.get_ok("/rockets?status=launched,exploded&sort=speed&order=desc&limit=5&offset=5")
        expected = reference_order(
            [rocket for rocket in self.all_rockets if rocket["status"] != "pending"], "speed", "desc")

        self.assertEqual(channels(reply.json()), channels(expected[5:10]))
        self.assertEqual(reply.headers["X-Total-Count"], str(len(expected)))


class PagingTest(SampleFleetTestCase):
    def walk_pages(self, path):
        """Follow Link next from ``path``; return the pages' replies."""
        replies = []
        while path is not None and len(replies) < MAX_PAGES:
            reply = self.get_ok(path)
            replies.append(reply)
            path = parse_links(reply).get("next")
        self.assertIsNone(path, f"more than {MAX_PAGES} pages")
        return replies

    def test_pages_are_disjoint_and_cover_every_sort(self):
        for sort in SORT_FIELDS:
            for order in ORDERS:
                with self.subTest(sort=sort, order=order):
                    replies = self.walk_pages(f"/rockets?sort={sort}&order={order}&limit={PAGE_SIZE}")
                    pages = [channels(reply.json()) for reply in replies]
                    seen = [channel for page in pages for channel in page]

                    self.assertEqual(len(seen), len(set(seen)), "pages overlap")
                    self.assertEqual(set(seen), set(channels(self.all_rockets)))
                    self.assertEqual(seen, channels(reference_order(self.all_rockets, sort, order)))
                    self.assertTrue(all(len(page) <= PAGE_SIZE for page in pages))
                    self.assertEqual({reply.headers["X-Total-Count"] for reply in replies},
                                     {str(FLEET_SIZE)})

    def test_prev_links_lead_back_page_by_page(self):
        replies = self.walk_pages(f"/rockets?sort=speed&limit={PAGE_SIZE}")
        self.assertNotIn("prev", parse_links(replies[0]))
        for index in range(1, len(replies)):
            with self.subTest(page=index):
                previous = self.get_ok(parse_links(replies[index])["prev"])
                self.assertEqual(previous.json(), replies[index - 1].json())
        self.assertNotIn("next", parse_links(replies[-1]))

    def test_links_keep_other_parameters(self):
        reply = self.get_ok("/rockets?status=launched,exploded&sort=type&order=desc&limit=3&offset=3")
        links = parse_links(reply)

        for relation, offset in (("next", "6"), ("prev", "0")):
            with self.subTest(relation=relation):
                url = links[relation]
                self.assertTrue(url.startswith("/rockets?"), url)
                self.assertEqual(query_of(url), {"status": "launched,exploded", "sort": "type",
                                                 "order": "desc", "limit": "3", "offset": offset})

    def test_links_keep_encoded_mission_path(self):
        reply = self.get_ok("/missions/Mars%20Return%2F2?limit=1")
        next_url = parse_links(reply)["next"]

        self.assertTrue(next_url.startswith("/missions/Mars%20Return%2F2?"), next_url)
        self.assertEqual(self.get_ok(next_url).json()[0]["mission"].casefold(), "mars return/2")

    def test_links_are_absolute_paths_on_this_host(self):
        for path, expected_start in (("//rockets?limit=1", "/rockets?"),
                                     ("/rockets/?limit=1", "/rockets?"),
                                     ("/missions/Mars%20Return%2f2?limit=1", "/missions/Mars%20Return%2F2?")):
            with self.subTest(path=path):
                next_url = parse_links(self.get_ok(path))["next"]
                self.assertTrue(next_url.startswith(expected_start), next_url)

    def test_offset_past_end_links_last_page(self):
        reply = self.get_ok(f"/rockets?limit=10&offset={FLEET_SIZE + 25}")
        links = parse_links(reply)

        self.assertEqual(reply.json(), [])
        self.assertEqual(reply.headers["X-Total-Count"], str(FLEET_SIZE))
        self.assertNotIn("next", links)
        self.assertEqual(query_of(links["prev"])["offset"], str(FLEET_SIZE - 10))

    def test_offset_without_limit_returns_rest_without_links(self):
        reply = self.get_ok("/rockets?offset=50")

        self.assertEqual(channels(reply.json()), channels(self.all_rockets[50:]))
        self.assertIsNone(reply.headers.get("Link"))
        self.assertEqual(reply.headers["X-Total-Count"], str(FLEET_SIZE))

    def test_limit_bounds_are_accepted(self):
        for limit, expected_count in (("1", 1), ("1000", FLEET_SIZE), ("0007", 7)):
            with self.subTest(limit=limit):
                self.assertEqual(len(self.get_ok(f"/rockets?limit={limit}").json()), expected_count)


class MissionQueryTest(SampleFleetTestCase):
    def test_mission_rockets_match_reference(self):
        for mission in self.get_ok("/missions").json():
            with self.subTest(mission=mission):
                path = "/missions/" + urllib.parse.quote(mission, safe="")
                expected = [rocket for rocket in self.all_rockets
                            if (rocket["mission"] or "").casefold() == mission.casefold()]
                reply = self.get_ok(path)
                self.assertEqual(channels(reply.json()), channels(reference_order(expected)))
                self.assertEqual(reply.headers["X-Total-Count"], str(len(expected)))

    def test_mission_rockets_sort_and_page(self):
        expected = reference_order(
            [rocket for rocket in self.all_rockets if (rocket["mission"] or "").casefold() == "artemis"],
            "speed", "desc")
        reply = self.get_ok("/missions/artemis?sort=speed&order=desc&limit=2&offset=1")

        self.assertEqual(channels(reply.json()), channels(expected[1:3]))
        self.assertEqual(reply.headers["X-Total-Count"], str(len(expected)))

    def test_filtered_out_mission_is_empty_not_missing(self):
        reply = self.get_ok("/missions/ARTEMIS?status=pending")

        self.assertEqual(reply.json(), [])
        self.assertEqual(reply.headers["X-Total-Count"], "0")

    def test_unknown_mission_is_not_found(self):
        reply = self.server.get("/missions/NO-SUCH-MISSION?sort=speed")

        self.assertEqual(reply.status, 404)
        self.assertEqual(reply.json(), {"error": "no rocket is on mission 'NO-SUCH-MISSION'"})

    def test_mission_details_count_rockets(self):
        details = self.get_ok("/missions?details=true").json()
        names = self.get_ok("/missions").json()

        self.assertEqual([summary["mission"] for summary in details], names)
        for summary in details:
            with self.subTest(mission=summary["mission"]):
                on_mission = [rocket for rocket in self.all_rockets
                              if (rocket["mission"] or "").casefold() == summary["mission"].casefold()]
                self.assertEqual(set(summary), {"mission", "rockets", "exploded", "launched"})
                self.assertEqual(summary["rockets"], len(on_mission))
                self.assertEqual(summary["exploded"],
                                 sum(rocket["status"] == "exploded" for rocket in on_mission))
                self.assertEqual(summary["launched"],
                                 sum(rocket["status"] == "launched" for rocket in on_mission))

    def test_details_false_is_the_plain_list(self):
        self.assertEqual(self.get_ok("/missions?details=false").json(),
                         self.get_ok("/missions").json())


class ParameterErrorTest(SampleFleetTestCase):
    # (path, fragments the error must contain)
    ERRORS = (
        ("/rockets?sort=name", ["sort", "'name'", "launchTime, speed, type, mission, status, "
                                "channel, lastMessageTime"]),
        ("/rockets?sort=", ["sort", "''", "launchTime"]),
        ("/rockets?sort=SPEED", ["sort", "'SPEED'", "speed"]),
        ("/rockets?order=up", ["order", "'up'", "asc, desc"]),
        ("/rockets?status=flying", ["status", "'flying'", "pending, launched, exploded"]),
        ("/rockets?status=pending,", ["status", "''", "pending, launched, exploded"]),
        ("/rockets?status=", ["status", "pending, launched, exploded"]),
        ("/rockets?type=", ["type", "must not be empty"]),
        ("/rockets?mission=", ["mission", "must not be empty"]),
        ("/rockets?minSpeed=fast", ["minSpeed", "'fast'", "finite decimal number"]),
        ("/rockets?minSpeed=1e999", ["minSpeed", "'1e999'", "finite"]),
        ("/rockets?maxSpeed=nan", ["maxSpeed", "'nan'", "finite decimal number"]),
        ("/rockets?maxSpeed=1_000", ["maxSpeed", "'1_000'"]),
        ("/rockets?maxSpeed=%201", ["maxSpeed", "' 1'"]),
        ("/rockets?minSpeed=2000&maxSpeed=1000", ["minSpeed 2000", "maxSpeed 1000", "greater"]),
        ("/rockets?limit=0", ["limit", "'0'", "from 1 to 1000"]),
        ("/rockets?limit=1001", ["limit", "'1001'", "from 1 to 1000"]),
        ("/rockets?limit=-1", ["limit", "'-1'", "from 1 to 1000"]),
        ("/rockets?limit=2.5", ["limit", "'2.5'", "from 1 to 1000"]),
        ("/rockets?limit=" + "9" * 5000, ["limit", "...", "from 1 to 1000"]),
        ("/rockets?limit=%D9%A3", ["limit", "from 1 to 1000"]),
        ("/rockets?offset=-1", ["offset", "'-1'", "from 0 to 9223372036854775807"]),
        ("/rockets?offset=9223372036854775808", ["offset", "from 0 to 9223372036854775807"]),
        ("/rockets?sort=speed&sort=type", ["parameter sort given 2 times", "give it once"]),
        ("/rockets?status=pending&status=launched", ["parameter status given 2 times", "comma"]),
        ("/rockets?colour=red", ["unknown parameter 'colour'", "sort, order, status, type, "
                                 "mission, minSpeed, maxSpeed, limit, offset"]),
        ("/rockets?minspeed=1", ["unknown parameter 'minspeed'", "minSpeed"]),
        ("/rockets?=1", ["unknown parameter ''"]),
        ("/rockets?%ff=1", ["not valid percent-encoded UTF-8"]),
        ("/missions/ARTEMIS?mission=GEMINI", ["unknown parameter 'mission'", "sort, order, status"]),
        ("/missions/ARTEMIS?limit=0", ["limit", "from 1 to 1000"]),
        ("/missions?details=yes", ["details", "'yes'", "true, false"]),
        ("/missions?sort=speed", ["unknown parameter 'sort'", "details"]),
        ("/rockets/rocket-01?details=true", ["unknown parameter 'details'", "none"]),
        ("/rockets/no-such-rocket?x", ["unknown parameter 'x'", "none"]),
        ("/rockets/rocket-01/messages?limit=1001", ["limit", "from 1 to 1000"]),
        ("/rockets/rocket-01/messages?sort=speed", ["unknown parameter 'sort'", "limit, offset"]),
        ("/openapi.json?format=yaml", ["unknown parameter 'format'", "none"]),
    )

    def test_invalid_parameters_are_rejected(self):
        for path, fragments in self.ERRORS:
            with self.subTest(path=path[:80]):
                reply = self.server.get(path)
                self.assertEqual(reply.status, 400, reply.body)
                self.assertEqual(reply.headers["Content-Type"], "application/json; charset=utf-8")
                error = reply.json()["error"]
                for fragment in fragments:
                    self.assertIn(fragment, error)

    def test_head_checks_parameters_too(self):
        reply = self.server.request("HEAD", "/rockets?sort=name")

        self.assertEqual(reply.status, 400)
        self.assertEqual(reply.body, b"")

    def test_post_ignores_query_string(self):
        reply = self.server.request("POST", "/messages?anything=1", b"{}")

        self.assertEqual(reply.status, 400)
        self.assertIn("metadata", reply.json()["error"])

    def test_odd_query_strings_never_fail_the_server(self):
        for query in ("%", "%zz", "&&&", "=", "sort=%00", "type=%FF", "type=" + "é" * 300,
                      "limit=%EF%BC%91", "sort", "limit", "a=1;b=2", "?sort=speed"):
            with self.subTest(query=query[:40]):
                reply = self.server.get("/rockets?" + urllib.parse.quote(query, safe="%&=;?"))
                self.assertIn(reply.status, (200, 400), reply.body)
                self.assertIsInstance(reply.json(), (list, dict))


class ConcurrentPagingTest(unittest.TestCase):
    def test_pages_stay_sorted_while_messages_arrive(self):
        server = start_server(self)
        post_sample_fleet(server, FLEET_SEED)
        stop = threading.Event()
        writer_errors = []
        posted = []

        def write():
            deadline = time.monotonic() + CONCURRENT_RUN_SECONDS
            rocket = 0
            try:
                while not stop.is_set() and time.monotonic() < deadline:
                    channel = f"live-{rocket:03d}"
                    server.post_message(channel, 1, "RocketLaunched",
                                        f"2025-04-02T07:21:{rocket % 60:02d}Z",
                                        launchSpeed=rocket * 37 % 2000, type=f"T{rocket % 3}")
                    for number in range(2, CONCURRENT_ROCKET_MESSAGES + 1):
                        server.post_message(channel, number, "RocketSpeedDecreased",
                                            f"2025-04-02T08:00:{number:02d}Z", by=rocket % 700)
                    posted.append(channel)
                    rocket += 1
            except Exception as error:  # reported by the test below
                writer_errors.append(error)

        writer = threading.Thread(target=write, name="writer")
        writer.start()
        try:
            for sort in SORT_FIELDS:
                for order in ORDERS:
                    with self.subTest(sort=sort, order=order):
                        self.check_pages_sorted(server, sort, order)
        finally:
            stop.set()
            writer.join(CONCURRENT_RUN_SECONDS + 10)

        self.assertFalse(writer.is_alive())
        self.assertEqual(writer_errors, [])
        self.assertGreater(len(posted), 0, "the writer posted nothing while pages were read")

    def check_pages_sorted(self, server, sort, order):
        path = f"/rockets?sort={sort}&order={order}&limit={PAGE_SIZE}"
        for _ in range(MAX_PAGES):
            reply = server.get(path)
            self.assertEqual(reply.status, 200, reply.body)
            page = reply.json()
            self.assertLessEqual(len(page), PAGE_SIZE)
            self.assertGreaterEqual(int(reply.headers["X-Total-Count"]), FLEET_SIZE)
            for first, second in zip(page, page[1:]):
                self.assertLessEqual(compare_rockets(first, second, sort, order), 0,
                                     f"{first['channel']} before {second['channel']}")
            path = parse_links(reply).get("next")
            if path is None:
                return


class SnapshotTest(unittest.TestCase):
    def test_snapshot_pairs_json_with_state(self):
        control_center = ControlCenter()
        control_center.receive(decode_message(message_body("a", 1, "RocketLaunched")))
        control_center.receive(decode_message(message_body("b", 2)))

        snapshot = sorted(control_center.snapshot(), key=lambda row: row[0]["channel"])

        self.assertEqual([rocket for rocket, _ in snapshot], control_center.rockets())
        self.assertEqual([state.status for _, state in snapshot], ["launched", "pending"])
        self.assertIsNotNone(snapshot[0][1].launch_instant)


if __name__ == "__main__":
    unittest.main()
