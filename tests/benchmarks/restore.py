"""Benchmark: how long lunar takes to restore its state from a stored log at start.

Writes a database with the given number of stored messages (applied ones,
plus an optional share still buffered behind gaps), then times what
``lunar_server.py`` does before it listens: open the database, read it back
and rebuild the control center. It does not start an HTTP server.

Run: ``python3 -m tests.benchmarks.restore --messages 1000000``
"""

import argparse
import json
import os
import sqlite3
import sys
import tempfile
import time
from typing import List, Optional

from lunar.fleet import ControlCenter
from lunar.store import SQLiteJournal, disk_usage

ROCKETS = 20
TIME = "2025-04-02T09:21:50.458989221+02:00"
INSERT_BATCH_ROWS = 50_000
TARGET_SECONDS = 5.0  # restoring 1,000,000 stored messages must take less


def write_database(path: str, messages: int, buffered: int) -> None:
    """Create a lunar database holding ``messages`` applied and ``buffered`` waiting messages."""
    SQLiteJournal(path).close()  # creates the schema
    connection = sqlite3.connect(path, isolation_level=None)
    per_rocket = messages // ROCKETS
    connection.execute("BEGIN")
    rows = []
    for rocket in range(ROCKETS):
        channel = f"bench-{rocket:04d}"
        last = per_rocket
        # Buffered messages sit past a gap at last + 1.
        numbers = list(range(1, per_rocket + 1))
        if rocket == 0:
            numbers += range(per_rocket + 2, per_rocket + 2 + buffered)
        for number in numbers:
            rows.append((channel, number, 0.0, _body(channel, number)))
            if len(rows) >= INSERT_BATCH_ROWS:
                connection.executemany("INSERT INTO messages VALUES (?, ?, ?, ?)", rows)
                rows.clear()
        connection.execute(
            "INSERT INTO rockets VALUES (?, 'Falcon-9', ?, 'ARTEMIS', 'launched', NULL, ?, ?, ?)",
            (channel, 500 * per_rocket, TIME, last, TIME),
        )
    connection.executemany("INSERT INTO messages VALUES (?, ?, ?, ?)", rows)
    connection.execute("COMMIT")
    connection.close()


def time_restore(path: str) -> float:
    """Return the seconds from opening the database to a ready control center."""
    started = time.perf_counter()
    journal = SQLiteJournal(path)
    restored = journal.load()
    control_center = ControlCenter(journal)
    control_center.restore(restored.states, restored.pending)
    elapsed = time.perf_counter() - started
    journal.close()
    return elapsed


def main(argv: Optional[List[str]] = None) -> int:
    """Run the benchmark and print one line per case."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=1_000_000,
                        help="applied messages in the log (default: %(default)s)")
    parser.add_argument("--buffered", type=int, default=0,
                        help="extra messages waiting behind a gap (default: %(default)s)")
    arguments = parser.parse_args(argv)

    with tempfile.TemporaryDirectory() as directory:
        path = os.path.join(directory, "restore.db")
        started = time.perf_counter()
        write_database(path, arguments.messages, arguments.buffered)
        written = time.perf_counter() - started
        size = disk_usage(path)
        elapsed = time_restore(path)

    total = arguments.messages + arguments.buffered
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} cores")
    print(f"database: {total:,} messages ({arguments.buffered:,} buffered), "
          f"{size / 1e6:.1f} MB on disk ({size / max(total, 1):.0f} bytes per message), "
          f"written in {written:.1f} s")
    verdict = ""
    if arguments.messages >= 1_000_000 and arguments.buffered == 0:
        verdict = " (target: under 5 s, " + ("met)" if elapsed < TARGET_SECONDS else "MISSED)")
    print(f"restore: {elapsed:.3f} s{verdict}")
    return 0


def _body(channel: str, number: int) -> str:
    return json.dumps({
        "metadata": {"channel": channel, "messageNumber": number,
                     "messageTime": TIME, "messageType": "RocketSpeedIncreased"},
        "message": {"by": 500},
    }, separators=(",", ":"))


if __name__ == "__main__":
    sys.exit(main())
