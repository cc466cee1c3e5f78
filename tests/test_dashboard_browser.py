"""Tests of the dashboard page in headless Chromium against a real server on 127.0.0.1.

Each test starts its own server with a short flush interval, opens ``/`` in
a new tab of one shared browser, posts telemetry and reads the DOM back
through the DevTools protocol (see ``tests/cdp.py``). The tests are skipped
when ``/usr/bin/chromium`` is missing. Every wait has a deadline.
"""

import datetime
import json
import threading
import time
import unittest
from typing import Any, Dict, List, Optional

from lunar.api import FleetApi
from lunar.dashboard import dashboard_routes
from lunar.events import EventBroker, EventsApi
from lunar.fleet import ControlCenter
from lunar.web import LunarHTTPServer
from tests.cdp import Browser, BrowserError, Page, chromium_missing_reason
from tests.test_events import MessagePoster, explode, launch, message, speed_up

WAIT_SECONDS = 15.0  # for the page to show a change; EventSource retries after 2 s
TIMEOUT_SECONDS = 5.0


class DashboardServer:
    """A fleet API, /events and the dashboard served from a background thread."""

    def __init__(self, port: int = 0) -> None:
        self.control_center = ControlCenter()
        self.broker = EventBroker(self.control_center, flush_interval=0.05, stats_interval=0.2)
        routes = FleetApi(self.control_center).routes() + EventsApi(self.broker).routes() + dashboard_routes()
        self.server = LunarHTTPServer(("127.0.0.1", port), routes)
        self.port = self.server.server_address[1]
        self.url = self.server.url
        self.thread = threading.Thread(target=self.server.serve_forever,
                                       kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()
        self.poster = MessagePoster(("127.0.0.1", self.port))

    def post(self, document: Dict[str, Any]) -> None:
        status = self.poster.post(document)
        if status != 202:
            raise AssertionError(f"POST /messages returned {status}")

    def stop(self) -> None:
        """Stop accepting connections, end the streams, then close, as lunar_server.py does."""
        self.poster.close()
        self.server.shutdown()
        self.broker.close()
        self.server.server_close()
        self.thread.join(TIMEOUT_SECONDS)


def row_expression(channel: str) -> str:
    """Return JavaScript that reads one row's cells, or null while the row is missing."""
    return f"""(() => {{
        const row = document.querySelector('tr[data-channel=' + CSS.escape({json.dumps(channel)}) + ']');
        if (!row) return null;
        const text = (selector) => row.querySelector(selector).textContent;
        return {{
            channel: text('th.channel'), title: row.querySelector('th.channel').title,
            type: text('.type'), mission: text('.mission'), speed: text('.speed'),
            status: text('.badge:not(.badge-stale)'), reason: text('.reason'),
            stale: !row.querySelector('.badge-stale').hidden, age: text('.age'),
            pending: text('.pending'), hidden: row.hidden,
            sparklinePoints: row.querySelector('.sparkline polyline').getAttribute('points') || '',
        }};
    }})()"""


def minutes_ago(minutes: float) -> str:
    moment = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(minutes=minutes)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%f") + "000Z"


class DashboardBrowserTest(unittest.TestCase):
    browser: Optional[Browser] = None

    @classmethod
    def setUpClass(cls) -> None:
        reason = chromium_missing_reason()
        if reason is not None:
            raise unittest.SkipTest(f"chromium not installed: {reason}")
        cls.browser = Browser()

    @classmethod
    def tearDownClass(cls) -> None:
        if cls.browser is not None:
            cls.browser.close()

    def setUp(self) -> None:
        self.server = DashboardServer()
        self.addCleanup(lambda: self.server.stop())
        self.page = self.open_dashboard()

    def open_dashboard(self) -> Page:
        page = self.browser.open_page(self.server.url + "/")
        self.addCleanup(self.browser.call, "Target.closeTarget", {"targetId": page.target_id})
        self.wait_for_connection(page, "connected")
        return page

    def wait_for_connection(self, page: Page, state: str) -> None:
        page.wait_for(f"document.getElementById('connection').dataset.state === {json.dumps(state)}",
                      WAIT_SECONDS)

    def wait_for_row(self, channel: str, condition: str = "true") -> Dict[str, Any]:
        """Wait until the row of ``channel`` exists and ``condition`` holds for it as ``row``."""
        return self.page.wait_for(f"(() => {{ const row = {row_expression(channel)}; "
                                  f"return row && ({condition}) ? row : null; }})()", WAIT_SECONDS)

    def table_channels(self, page: Optional[Page] = None) -> List[str]:
        """Return the channels of the visible rows, top to bottom."""
        return (page or self.page).evaluate(
            "[...document.querySelectorAll('#fleet tbody tr')].filter((row) => !row.hidden)"
            ".map((row) => row.dataset.channel)"
        )

    def wait_for_channels(self, expected: List[str]) -> None:
        """Wait until the visible rows are exactly ``expected``, top to bottom."""
        deadline = time.monotonic() + WAIT_SECONDS
        while self.table_channels() != expected and time.monotonic() < deadline:
            time.sleep(0.05)
        self.assertEqual(self.table_channels(), expected)

    def assert_no_page_errors(self) -> None:
        self.assertEqual(self.page.errors(), [])

    def test_table_shows_new_rocket_and_speed(self) -> None:
        channel = "193270a9-c9cf-404a-8f83-838e71d9ae67"

        self.server.post(launch(channel, speed=500, mission="ARTEMIS", rocket_type="Falcon-9"))
        row = self.wait_for_row(channel, "row.speed === '500'")
        self.server.post(speed_up(channel, 2, by=250))
        updated = self.wait_for_row(channel, "row.speed === '750'")

        self.assertEqual(row["channel"], "193270a9…")
        self.assertEqual(row["title"], channel)
        self.assertEqual(row["type"], "Falcon-9")
        self.assertEqual(row["mission"], "ARTEMIS")
        self.assertEqual(updated["status"], "Launched")
        self.assertEqual(updated["pending"], "0")
        self.assertEqual(len(updated["sparklinePoints"].split()), 2)
        self.page.wait_for("document.getElementById('total-rockets').textContent === '1'", WAIT_SECONDS)
        self.page.wait_for("document.getElementById('total-launched').textContent === '1'", WAIT_SECONDS)
        self.assert_no_page_errors()

    def test_exploded_rocket_shows_marker_and_reason(self) -> None:
        self.server.post(launch("ch-boom"))
        self.server.post(explode("ch-boom", 2, reason="PRESSURE_VESSEL_FAILURE"))

        row = self.wait_for_row("ch-boom", "row.status.includes('Exploded')")

        self.assertEqual(row["status"], "✕ Exploded")
        self.assertEqual(row["reason"], "PRESSURE_VESSEL_FAILURE")
        self.assertFalse(row["stale"])
        self.page.wait_for("document.getElementById('total-exploded').textContent === '1'", WAIT_SECONDS)
        self.assert_no_page_errors()

    def test_gap_shows_pending_count(self) -> None:
        self.server.post(launch("ch-gap"))
        self.server.post(speed_up("ch-gap", 3))
        self.server.post(speed_up("ch-gap", 4))
        self.server.post(speed_up("ch-new", 2))  # a rocket known only by a buffered message

        waiting = self.wait_for_row("ch-gap", "row.pending === '2'")
        unlaunched = self.wait_for_row("ch-new", "row.pending === '1'")
        self.assertEqual(waiting["speed"], "500")
        self.assertEqual(unlaunched["status"], "Not launched")
        self.page.wait_for("document.getElementById('total-pending-messages').textContent === '3'",
                           WAIT_SECONDS)
        self.page.wait_for("document.getElementById('total-pending-rockets').textContent === '1'",
                           WAIT_SECONDS)

        self.server.post(speed_up("ch-gap", 2))
        filled = self.wait_for_row("ch-gap", "row.speed === '503'")
        self.assertEqual(filled["pending"], "0")
        self.assert_no_page_errors()

    def test_header_click_sorts_rows(self) -> None:
        for channel, speed in [("ch-a", 300), ("ch-b", 100), ("ch-c", 200)]:
            self.server.post(launch(channel, speed=speed))
        self.wait_for_channels(["ch-a", "ch-b", "ch-c"])

        click_speed = "document.querySelector('th[data-sort=speed] button').click()"
        self.page.evaluate(click_speed)
        self.page.wait_for("document.querySelector('th[data-sort=speed]').getAttribute('aria-sort') === 'ascending'")
        self.wait_for_channels(["ch-b", "ch-c", "ch-a"])
        self.assertIsNone(self.page.evaluate(
            "document.querySelector('th[data-sort=channel]').getAttribute('aria-sort')"))

        self.page.evaluate(click_speed)
        self.page.wait_for("document.querySelector('th[data-sort=speed]').getAttribute('aria-sort') === 'descending'")
        self.wait_for_channels(["ch-a", "ch-c", "ch-b"])
        self.assertIn("sorted by speed, descending",
                      self.page.evaluate("document.getElementById('fleet-caption').textContent"))
        self.assert_no_page_errors()

    def test_filters_hide_rows(self) -> None:
        self.server.post(launch("ch-falcon", rocket_type="Falcon-9", mission="ARTEMIS"))
        self.server.post(launch("ch-saturn", rocket_type="Saturn-V", mission="APOLLO"))
        self.server.post(launch("ch-boom", rocket_type="Falcon-Heavy", mission="apollo"))
        self.server.post(explode("ch-boom", 2))
        self.wait_for_row("ch-boom", "row.status.includes('Exploded')")
        self.wait_for_row("ch-saturn")
        self.wait_for_row("ch-falcon")

        set_search = ("(() => {{ const input = document.getElementById('search'); input.value = {};"
                      " input.dispatchEvent(new Event('input')); }})()")
        self.page.evaluate(set_search.format(json.dumps("falcon")))
        self.wait_for_channels(["ch-boom", "ch-falcon"])

        self.page.evaluate(set_search.format(json.dumps("")))
        self.wait_for_channels(["ch-boom", "ch-falcon", "ch-saturn"])
        set_select = ("(() => {{ const select = document.getElementById({}); select.value = {};"
                      " select.dispatchEvent(new Event('change')); }})()")
        self.page.wait_for("document.querySelectorAll('#mission-filter option').length === 3")
        self.page.evaluate(set_select.format(json.dumps("mission-filter"), json.dumps("apollo")))
        self.wait_for_channels(["ch-boom", "ch-saturn"])

        self.page.evaluate(set_select.format(json.dumps("status-filter"), json.dumps("exploded")))
        self.wait_for_channels(["ch-boom"])
        self.assertIn("1 of 3 rockets shown",
                      self.page.evaluate("document.getElementById('fleet-caption').textContent"))
        self.assert_no_page_errors()

    def test_stale_marker_follows_threshold(self) -> None:
        old = launch("ch-old")
        old["metadata"]["messageTime"] = minutes_ago(1)
        self.server.post(old)
        self.server.post(launch("ch-fresh"))

        stale = self.wait_for_row("ch-old", "row.stale")
        fresh = self.wait_for_row("ch-fresh")
        self.assertEqual(stale["age"], "1 min ago")
        self.assertFalse(fresh["stale"])

        self.page.evaluate("(() => { const input = document.getElementById('stale-seconds');"
                           " input.value = '120'; input.dispatchEvent(new Event('input')); })()")
        self.wait_for_row("ch-old", "!row.stale")
        self.assert_no_page_errors()

    def test_page_recovers_after_server_restart(self) -> None:
        self.server.post(launch("ch-before"))
        self.wait_for_row("ch-before")
        port = self.server.port

        self.server.stop()
        self.wait_for_connection(self.page, "reconnecting")
        self.server = DashboardServer(port)
        self.server.post(launch("ch-after", speed=900))

        self.wait_for_connection(self.page, "connected")
        self.wait_for_row("ch-after", "row.speed === '900'")
        self.wait_for_channels(["ch-after"])
        self.assertEqual(self.page.evaluate("document.getElementById('connection-text').textContent"),
                         "Connected")

        # The new server's stream keeps the page current after the snapshot.
        self.server.post(speed_up("ch-after", 2, by=100))
        self.wait_for_row("ch-after", "row.speed === '1,000'")


class ManyRocketsBrowserTest(unittest.TestCase):
    """1,000 rockets updating continuously: the page keeps up and stays responsive."""

    ROCKETS = 1000

    def setUp(self) -> None:
        reason = chromium_missing_reason()
        if reason is not None:
            self.skipTest(f"chromium not installed: {reason}")
        self.server = DashboardServer()
        self.addCleanup(lambda: self.server.stop())
        self.browser = Browser()
        self.addCleanup(self.browser.close)

    def test_thousand_rockets_stay_current(self) -> None:
        channels = [f"rocket-{index:04d}" for index in range(self.ROCKETS)]
        for channel in channels:
            self.server.post(launch(channel, speed=1000))
        page = self.browser.open_page(self.server.url + "/")
        page.wait_for(f"document.querySelectorAll('#fleet tbody tr').length === {self.ROCKETS}", WAIT_SECONDS)
        # Record gaps between animation frames while updates stream in.
        page.evaluate("""(() => {
            window.frameGaps = [];
            let last = performance.now();
            const step = (now) => { window.frameGaps.push(now - last); last = now; requestAnimationFrame(step); };
            requestAnimationFrame(step);
        })()""")

        started = time.monotonic()
        number = 1
        while time.monotonic() - started < 3.0:
            number += 1
            for channel in channels:
                self.server.post(speed_up(channel, number, by=1))
        updates = (number - 1) * self.ROCKETS
        final_speed = f"{1000 + number - 1:,}"

        for channel in (channels[0], channels[self.ROCKETS // 2], channels[-1]):
            page.wait_for(f"(() => {{ const row = {row_expression(channel)};"
                          f" return row && row.speed === {json.dumps(final_speed)}; }})()", WAIT_SECONDS)
        gaps = page.evaluate("window.frameGaps")
        longest_gap = max(gaps) if gaps else None
        self.assertEqual(page.errors(), [])
        self.assertGreater(updates, self.ROCKETS)
        # A frame gap above one second would mean the page froze; the gap
        # depends on this machine's load, so the bound is loose.
        self.assertIsNotNone(longest_gap)
        self.assertLess(longest_gap, 1000.0, f"longest frame gap {longest_gap:.0f} ms in {len(gaps)} frames")


if __name__ == "__main__":
    unittest.main()
