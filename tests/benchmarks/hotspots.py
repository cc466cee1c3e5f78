"""Micro-benchmark of the single-message path, piece by piece, in one process.

Times each step of a ``POST /messages`` of one message on its own, without
threads or sockets. The steps are decoding and validating the body, the
timestamp, applying it (with no journal, SQLite in memory and a SQLite
file), the routing, the Date header and the request log call. It imports
only ``lunar``, so it can time another copy of lunar: run
it from that copy's directory, for example
``cd /tmp/lunar-before && python3 /path/to/tests/benchmarks/hotspots.py``.
It does not measure the HTTP server as a whole: the runner does that.

Run: ``python3 -m tests.benchmarks.hotspots [--repeats 5]``
"""

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from typing import Callable, List, Optional

sys.path.insert(0, os.getcwd())  # time the lunar of the current directory

from lunar.fleet import ControlCenter, Journal  # noqa: E402
from lunar.messages import decode_message  # noqa: E402
from lunar.store import MEMORY, SQLiteJournal  # noqa: E402
from lunar.timestamps import parse_instant  # noqa: E402
from lunar.web import RequestHandler, find_route  # noqa: E402

CALLS = 20_000  # calls per timing
TIME = "2025-04-02T09:21:50.458989221+02:00"


def body(channel: str, number: int) -> bytes:
    """Return the JSON body of message ``number`` of a rocket, a launch for number 1."""
    if number == 1:
        message_type, payload = "RocketLaunched", {"type": "Falcon-9", "launchSpeed": 500, "mission": "ARTEMIS"}
    else:
        message_type, payload = "RocketSpeedIncreased", {"by": 500}
    return json.dumps({"metadata": {"channel": channel, "messageNumber": number, "messageTime": TIME,
                                    "messageType": message_type}, "message": payload}).encode("utf-8")


def per_call(function: Callable[[], object], calls: int = CALLS) -> float:
    """Return microseconds per call of ``function``."""
    started = time.perf_counter()
    for _ in range(calls):
        function()
    return (time.perf_counter() - started) * 1e6 / calls


def receive_cost(journal: Journal, calls: int = CALLS) -> float:
    """Return microseconds per ``ControlCenter.receive`` of in-order messages of one rocket."""
    control_center = ControlCenter(journal)
    messages = [decode_message(body("hot", number)) for number in range(1, calls + 1)]
    started = time.perf_counter()
    for message in messages:
        control_center.receive(message)
    return (time.perf_counter() - started) * 1e6 / calls


class _QuietHandler(RequestHandler):
    """A handler that is never connected, for timing ``date_time_string`` and ``log_request``."""

    def __init__(self) -> None:  # skips socket setup on purpose
        self.client_address = ("127.0.0.1", 0)
        self.requestline = "POST /messages HTTP/1.1"


def timings(directory: str) -> List[tuple]:
    """Return (name, microseconds per call) for each piece of the path."""
    sample = body("hot", 2)
    routes = _routes()
    handler = _QuietHandler()
    pieces = [
        ("decode_message", per_call(lambda: decode_message(sample))),
        ("parse_instant", per_call(lambda: parse_instant(TIME))),
        ("receive, no journal", receive_cost(Journal())),
        ("receive, SQLite :memory:", receive_cost(SQLiteJournal(MEMORY))),
        ("receive, SQLite file", receive_cost(SQLiteJournal(os.path.join(directory, f"{time.time_ns()}.db")))),
        ("find_route /messages", per_call(lambda: find_route(routes, "/messages"))),
        ("date_time_string", per_call(handler.date_time_string)),
        ("log_request", per_call(lambda: handler.log_request(202))),
    ]
    return pieces


def _routes() -> list:
    from lunar.api import FleetApi
    return FleetApi(ControlCenter()).routes()


def main(argv: Optional[List[str]] = None) -> int:
    """Time every piece ``--repeats`` times and print the medians."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5, help="timings per piece; the median is printed "
                                                               "(default: %(default)s)")
    arguments = parser.parse_args(argv)
    results: dict = {}
    with tempfile.TemporaryDirectory() as directory:
        for _ in range(arguments.repeats):
            for name, microseconds in timings(directory):
                results.setdefault(name, []).append(microseconds)
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} cores, lunar from {os.getcwd()}, "
          f"median of {arguments.repeats} x {CALLS:,} calls")
    for name, values in results.items():
        print(f"{name:28s} {statistics.median(values):8.2f} us")
    return 0


if __name__ == "__main__":
    sys.exit(main())
