"""Benchmark: draining a rocket whose launch arrives after its later messages.

Buffers messages 2 to N+1 of one rocket, then times the single ``receive``
of message 1 that applies all of them. It runs the control center directly,
without HTTP, with no journal and with an in-memory SQLite journal.

Run: ``python3 -m tests.benchmarks.drain --depth 100000``
"""

import argparse
import json
import os
import sys
import time
from typing import List, Optional

from lunar.fleet import ControlCenter, Journal
from lunar.messages import decode_message
from lunar.store import MEMORY, SQLiteJournal

TIME = "2025-04-02T09:21:50.458989221+02:00"


def time_drain(journal: Journal, depth: int) -> float:
    """Return the seconds the launch takes to apply ``depth`` buffered messages."""
    control_center = ControlCenter(journal)
    for number in range(depth + 1, 1, -1):  # newest first: the worst order for a heap
        control_center.receive(_message(number))
    launch = _message(1)

    started = time.perf_counter()
    control_center.receive(launch)
    elapsed = time.perf_counter() - started

    rocket = control_center.rocket("drain")
    assert rocket["lastMessageNumber"] == depth + 1, rocket
    assert rocket["pendingMessages"] == 0, rocket
    return elapsed


def main(argv: Optional[List[str]] = None) -> int:
    """Run the benchmark and print one line per journal."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--depth", type=int, default=100_000,
                        help="messages buffered before the launch (default: %(default)s)")
    arguments = parser.parse_args(argv)

    print(f"python {sys.version.split()[0]}, {os.cpu_count()} cores, depth {arguments.depth:,}")
    for name, journal in (("no journal", Journal()), ("SQLite :memory:", SQLiteJournal(MEMORY))):
        elapsed = time_drain(journal, arguments.depth)
        print(f"drain with {name}: {elapsed:.3f} s "
              f"({arguments.depth / elapsed:,.0f} messages per second)")
    return 0


def _message(number: int):
    if number == 1:
        message_type, payload = "RocketLaunched", {
            "type": "Saturn-V", "launchSpeed": 500, "mission": "APOLLO"}
    else:
        message_type, payload = "RocketSpeedIncreased", {"by": 500}
    body = {"metadata": {"channel": "drain", "messageNumber": number,
                         "messageTime": TIME, "messageType": message_type},
            "message": payload}
    return decode_message(json.dumps(body).encode("utf-8"))


if __name__ == "__main__":
    sys.exit(main())
