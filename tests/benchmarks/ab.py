"""A/B benchmark: the default launcher run against two copies of lunar, alternately.

Starts ``lunar_server.py`` of tree A and of tree B as child processes on
127.0.0.1, one at a time and in alternating order, and runs the launcher of
this repository against each. It prints every pair and the median of the
per-pair ratios B / A, with the CPU time each server used per message (from
/proc). Make tree A with ``git archive <commit> | tar -x -C DIR``. It
changes nothing in either tree.

Run: ``python3 -m tests.benchmarks.ab --before /tmp/lunar-before --pairs 5``
"""

import argparse
import os
import statistics
import sys
import tempfile
import time
from typing import List, Optional, Tuple

from tests.benchmarks import measure
from tests.serverprocess import ROOT


def run_once(root: str, database: str, messages: int) -> Tuple[float, float]:
    """Run the launcher against lunar of ``root``; return messages/s and server CPU us per message."""
    server = measure.start_lunar(database, root=root)
    try:
        cpu_before = measure.cpu_seconds(server.process.pid)
        run = measure.run_launcher(server.url, messages)
        cpu_used = measure.cpu_seconds(server.process.pid) - cpu_before
    finally:
        server.stop()
    return run.rate, cpu_used * 1e6 / messages


def main(argv: Optional[List[str]] = None) -> int:
    """Run the pairs and print the results."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", required=True, metavar="DIR", help="tree A, a copy of lunar")
    parser.add_argument("--after", default=ROOT, metavar="DIR", help="tree B (default: this repository)")
    parser.add_argument("--pairs", type=int, default=5, help="A/B pairs (default: %(default)s)")
    parser.add_argument("--messages", type=int, default=20_000, help="messages per run (default: %(default)s)")
    parser.add_argument("--db", choices=("file", "memory"), default="file",
                        help="database of both servers (default: %(default)s)")
    arguments = parser.parse_args(argv)

    print(f"python {sys.version.split()[0]}, {os.cpu_count()} cores, load {measure.load_average()}, "
          f"{arguments.messages:,} messages, {arguments.db} database")
    ratios = []
    cpus: dict = {"A": [], "B": []}
    with tempfile.TemporaryDirectory() as directory:
        for pair in range(arguments.pairs):
            order = [("A", arguments.before), ("B", arguments.after)]
            if pair % 2:
                order.reverse()
            rates = {}
            for name, root in order:
                database = (measure.MEMORY_DATABASE if arguments.db == "memory"
                            else os.path.join(directory, f"{name}-{time.time_ns()}.db"))
                rates[name], cpu = run_once(root, database, arguments.messages)
                cpus[name].append(cpu)
            ratios.append(rates["B"] / rates["A"])
            print(f"pair {pair + 1}: A {rates['A']:,.0f}/s, B {rates['B']:,.0f}/s, B/A {ratios[-1]:.2f}; "
                  f"server CPU A {cpus['A'][-1]:.0f} us/message, B {cpus['B'][-1]:.0f} us/message",
                  flush=True)
    print(f"median B/A {statistics.median(ratios):.2f}; median server CPU per message: "
          f"A {statistics.median(cpus['A']):.0f} us, B {statistics.median(cpus['B']):.0f} us")
    return 0


if __name__ == "__main__":
    sys.exit(main())
