"""Take the dashboard screenshots in docs/: 20 rockets mid-run, light and dark.

Run from the repository root with ``python3 -m tests.dashboard_screenshots``.
It starts a server on 127.0.0.1, feeds it a fixed, seeded flight plan of
launches, speed changes, explosions, a gap and a silent rocket, and keeps
updating while headless Chromium captures a 1400x900 viewport in each color
scheme. This is a documentation tool, not a test: it asserts nothing.
"""

import argparse
import datetime
import random
import threading
import time
import uuid
from pathlib import Path
from typing import Any, Dict, List, Optional

from tests.cdp import Browser, chromium_missing_reason
from tests.test_dashboard_browser import DashboardServer
from tests.test_events import explode, launch, message, speed_up

ROCKET_COUNT = 20
WARM_UP_SECONDS = 6.0  # long enough for sparklines to show some history
VIEWPORT = (1400, 900)
SEED = 1969

ROCKET_TYPES = ["Falcon-9", "Falcon-Heavy", "Saturn-V", "Ariane-6", "Electron", "New-Glenn"]
MISSIONS = ["ARTEMIS", "APOLLO", "GEMINI", "SHUTTLE_MIR", "CASSINI"]
EXPLOSION_REASONS = ["PRESSURE_VESSEL_FAILURE", "ENGINE_FLAMEOUT"]


def seconds_ago(seconds: float) -> str:
    moment = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(seconds=seconds)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%f") + "000Z"


class FlightPlan:
    """Seeded telemetry for the screenshot fleet, posted round by round."""

    def __init__(self, server: DashboardServer) -> None:
        self.server = server
        self.random = random.Random(SEED)
        self.channels = [str(uuid.UUID(int=self.random.getrandbits(128), version=4))
                         for _ in range(ROCKET_COUNT)]
        self.numbers = {channel: 1 for channel in self.channels}
        self.exploded = set(self.channels[3:5])
        self.silent = self.channels[7]  # its last message is older than the stale threshold
        self.gapped = self.channels[11]  # message 2 is missing, so later ones wait
        self.unlaunched = self.channels[15]  # only a buffered message so far

    def launch_all(self) -> None:
        for index, channel in enumerate(self.channels):
            if channel == self.unlaunched:
                document = speed_up(channel, 2, by=100)
                self.numbers[channel] = 2
            else:
                document = launch(channel, speed=self.random.randrange(3000, 12000, 100),
                                  mission=MISSIONS[index % len(MISSIONS)],
                                  rocket_type=ROCKET_TYPES[index % len(ROCKET_TYPES)])
            if channel == self.silent:
                document["metadata"]["messageTime"] = seconds_ago(95)
            self.server.post(document)
        self.server.post(speed_up(self.gapped, 3, by=200))
        self.server.post(speed_up(self.gapped, 4, by=200))

    def step(self) -> None:
        """Post one speed change for every rocket still flying."""
        for channel in self.channels:
            if channel in (self.silent, self.unlaunched, self.gapped):
                continue
            if channel in self.exploded and self.numbers[channel] >= 6:
                continue
            self.numbers[channel] += 1
            number = self.numbers[channel]
            if channel in self.exploded and number == 6:
                reason = EXPLOSION_REASONS[self.channels.index(channel) % len(EXPLOSION_REASONS)]
                self.server.post(explode(channel, number, reason=reason))
                continue
            change = self.random.randrange(-300, 600, 25)
            if change >= 0:
                self.server.post(speed_up(channel, number, by=change))
            else:
                self.server.post(speed_down(channel, number, by=-change))


def speed_down(channel: str, number: int, by: int) -> Dict[str, Any]:
    return message(channel, number, "RocketSpeedDecreased", by=by)


def take_screenshots(output: Path) -> List[Path]:
    """Run the fleet, capture both color schemes and return the files written."""
    server = DashboardServer()
    browser: Optional[Browser] = None
    stop = threading.Event()
    try:
        plan = FlightPlan(server)
        plan.launch_all()

        def keep_flying() -> None:
            while not stop.wait(0.25):
                plan.step()

        flying = threading.Thread(target=keep_flying, daemon=True)
        flying.start()

        browser = Browser(window_size=VIEWPORT)
        page = browser.open_page(server.url + "/")
        width, height = VIEWPORT
        page.call("Emulation.setDeviceMetricsOverride",
                  {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False})
        page.wait_for(f"document.querySelectorAll('#fleet tbody tr').length === {ROCKET_COUNT}", 15.0)
        time.sleep(WARM_UP_SECONDS)

        written = []
        for scheme in ("light", "dark"):
            page.call("Emulation.setEmulatedMedia",
                      {"features": [{"name": "prefers-color-scheme", "value": scheme}]})
            time.sleep(0.5)  # let a render pass with the new colors
            path = output / f"dashboard-{scheme}.png"
            page.screenshot(str(path))
            written.append(path)
        return written
    finally:
        stop.set()
        if browser is not None:
            browser.close()
        server.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description="Write docs/dashboard-light.png and docs/dashboard-dark.png.")
    parser.add_argument("--output", type=Path, default=Path("docs"),
                        help="folder for the PNG files (default: %(default)s)")
    arguments = parser.parse_args()
    reason = chromium_missing_reason()
    if reason is not None:
        parser.error(f"chromium not installed: {reason}")
    arguments.output.mkdir(parents=True, exist_ok=True)
    for path in take_screenshots(arguments.output):
        print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
