"""Tests of the timed journal, /healthz, /readyz and the ingest allow list."""

import ipaddress
import json
import unittest

from lunar.access import AllowList
from lunar.fleet import ControlCenter, Journal
from lunar.messages import decode_message
from lunar.ops import TimedJournal
from lunar.store import MEMORY, SQLiteJournal, StoreError
from tests.support import flight_body
from tests.liveserver import start_service

TIME = "2025-04-02T09:21:50.458989221+02:00"
MESSAGE = json.dumps({
    "metadata": {"channel": "a", "messageNumber": 1, "messageTime": TIME,
                 "messageType": "RocketLaunched"},
    "message": {"type": "Falcon-9", "launchSpeed": 500, "mission": "ARTEMIS"},
}).encode("utf-8")


def networks(*texts):
    return [ipaddress.ip_network(text) for text in texts]


class TimedJournalTest(unittest.TestCase):
    def test_every_journal_method_is_forwarded(self):
        public_methods = [name for name, value in vars(Journal).items()
                          if callable(value) and not name.startswith("_")]
        self.assertIn("record_batch", public_methods)
        for name in public_methods:
            with self.subTest(method=name):
                self.assertIn(name, vars(TimedJournal))

    def test_batch_is_stored_and_timed(self):
        journal = SQLiteJournal(MEMORY)
        self.addCleanup(journal.close)
        observed = []
        control_center = ControlCenter(TimedJournal(journal, observed.append))
        messages = [decode_message(flight_body("timed", number)) for number in (1, 2, 3)]

        control_center.receive_batch(messages)

        self.assertEqual(journal.count_messages("timed"), 3)
        self.assertEqual(len(observed), 1)
        page = control_center.stored_messages("timed", 0, 10)
        self.assertEqual(page.total, 3)


class HealthTest(unittest.TestCase):
    def setUp(self):
        self.service = start_service(self)

    def test_healthz_reports_ok(self):
        status, headers, body = self.service.request("GET", "/healthz")
        self.assertEqual(status, 200)
        self.assertEqual(json.loads(body), {"status": "ok"})
        self.assertEqual(headers["Content-Type"], "application/json; charset=utf-8")

    def test_readyz_is_200_when_restored_and_writable(self):
        status, _, body = self.service.request("GET", "/readyz")
        self.assertEqual(status, 200)
        self.assertEqual(json.loads(body), {"status": "ready"})

    def test_readyz_is_503_while_draining(self):
        self.service.lifecycle.begin_shutdown()
        status, _, body = self.service.request("GET", "/readyz")
        self.assertEqual(status, 503)
        self.assertIn("shutting down", json.loads(body)["error"])
        self.assertEqual(self.service.request("GET", "/healthz")[0], 200)

    def test_readyz_is_503_when_database_is_not_writable(self):
        def fail():
            raise StoreError("database x: disk I/O error (the disk is full; free space, then retry)")
        self.service.ops.check_writable = fail
        with self.assertLogs("lunar.ops", "WARNING"):
            status, _, body = self.service.request("GET", "/readyz")
        self.assertEqual(status, 503)
        self.assertIn("disk is full", json.loads(body)["error"])

    def test_readyz_is_503_after_database_closes(self):
        self.service.journal.close()
        with self.assertLogs("lunar.ops", "WARNING"):
            status, _, body = self.service.request("GET", "/readyz")
        self.assertEqual(status, 503)
        self.assertIn("error", json.loads(body))

    def test_head_works_on_operator_endpoints(self):
        for path in ("/healthz", "/readyz", "/metrics"):
            with self.subTest(path=path):
                status, _, body = self.service.request("HEAD", path)
                self.assertEqual(status, 200)
                self.assertEqual(body, b"")


class AllowListTest(unittest.TestCase):
    def test_empty_list_allows_everyone(self):
        self.assertTrue(AllowList().allows("203.0.113.9"))
        self.assertTrue(AllowList().allows("::1"))

    def test_addresses_match_their_networks(self):
        allow = AllowList(networks("10.0.0.0/8", "2001:db8::/32"))
        self.assertTrue(allow.allows("10.200.1.2"))
        self.assertFalse(allow.allows("11.0.0.1"))
        self.assertTrue(allow.allows("2001:db8::5"))
        self.assertFalse(allow.allows("2001:db9::5"))

    def test_ipv4_mapped_ipv6_matches_ipv4_networks(self):
        allow = AllowList(networks("127.0.0.0/8"))
        self.assertTrue(allow.allows("::ffff:127.0.0.1"))
        self.assertFalse(allow.allows("::ffff:10.0.0.1"))

    def test_scoped_ipv6_address_matches(self):
        self.assertTrue(AllowList(networks("fe80::/10")).allows("fe80::1%eth0"))

    def test_unparsable_address_is_not_allowed(self):
        self.assertFalse(AllowList(networks("0.0.0.0/0")).allows("not-an-address"))


class IngestAllowHttpTest(unittest.TestCase):
    def test_client_outside_allow_list_gets_403(self):
        service = start_service(self, ingest_allow=AllowList(networks("192.0.2.0/24")))
        status, _, body = service.request("POST", "/messages", MESSAGE)
        self.assertEqual(status, 403)
        self.assertIn("--ingest-allow", json.loads(body)["error"])
        self.assertIsNone(service.control_center.rocket("a"))
        self.assertEqual(service.rejections.counts()["forbidden"], 1)
        self.assertEqual(service.request("GET", "/rockets")[0], 200)

    def test_client_inside_allow_list_may_post(self):
        service = start_service(self, ingest_allow=AllowList(networks("127.0.0.0/8")))
        self.assertEqual(service.request("POST", "/messages", MESSAGE)[0], 202)
        self.assertIsNotNone(service.control_center.rocket("a"))


if __name__ == "__main__":
    unittest.main()
