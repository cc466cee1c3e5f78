"""Measure single-message POST throughput over a few keep-alive connections.

Starts ``lunar_server.py --db :memory:`` as a child process on 127.0.0.1,
sends each rocket's messages in order from a few client threads, and prints
messages per second and the median of several runs. The client runs on the
same machine and competes for its cores, so compare runs made on the same
machine, not absolute numbers across machines. On Linux it also prints the
server's CPU time per message, read from /proc, which other load on the
machine disturbs less than the rate does.

    python3 -m tests.benchmarks.post_throughput [--messages N] [--connections N] [--runs N]
"""

import argparse
import http.client
import json
import os
import statistics
import sys
import threading
import time
from typing import List

from tests.serverprocess import ServerProcess

TIME = "2025-04-02T09:21:50.458989221+02:00"
MESSAGES_PER_ROCKET = 100
CLIENT_TIMEOUT_SECONDS = 10.0


def make_bodies(count: int, run: int) -> List[bytes]:
    """Return ``count`` message bodies, each rocket's in message-number order."""
    bodies = []
    for index in range(count):
        rocket, offset = divmod(index, MESSAGES_PER_ROCKET)
        number = offset + 1
        if number == 1:
            message_type = "RocketLaunched"
            payload = {"type": "Falcon-9", "launchSpeed": 500, "mission": "ARTEMIS"}
        else:
            message_type = "RocketSpeedIncreased"
            payload = {"by": 10}
        bodies.append(json.dumps({
            "metadata": {"channel": f"bench-{run}-{rocket}", "messageNumber": number,
                         "messageTime": TIME, "messageType": message_type},
            "message": payload,
        }).encode("utf-8"))
    return bodies


def send(port: int, bodies: List[bytes], failures: List[int]) -> None:
    """POST each body over one keep-alive connection, in order."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=CLIENT_TIMEOUT_SECONDS)
    headers = {"Content-Type": "application/json"}
    try:
        for body in bodies:
            connection.request("POST", "/messages", body, headers)
            response = connection.getresponse()
            response.read()
            if response.status != 202:
                failures.append(response.status)
    finally:
        connection.close()


def server_cpu_seconds(pid: int) -> float:
    """Return the user and system CPU seconds process ``pid`` has used, or NaN without /proc."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    # Fields 14 and 15 of proc(5) are utime and stime in clock ticks.
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_once(port: int, messages: int, connections: int, run: int) -> float:
    """Send ``messages`` POSTs over ``connections`` connections; return messages per second."""
    bodies = make_bodies(messages, run)
    # Each connection gets whole rockets, so every rocket's messages stay in order.
    rockets = [bodies[start:start + MESSAGES_PER_ROCKET]
               for start in range(0, len(bodies), MESSAGES_PER_ROCKET)]
    shares: List[List[bytes]] = [[] for _ in range(connections)]
    for index, rocket in enumerate(rockets):
        shares[index % connections].extend(rocket)
    failures: List[int] = []
    threads = [threading.Thread(target=send, args=(port, share, failures)) for share in shares]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    if failures:
        raise RuntimeError(f"{len(failures)} requests failed, first status {failures[0]}")
    return messages / elapsed


def main(argv: List[str]) -> int:
    """Run the benchmark and print one line per run and the median."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=20_000, help="POSTs per run (default: %(default)s)")
    parser.add_argument("--connections", type=int, default=3, help="keep-alive connections (default: %(default)s)")
    parser.add_argument("--runs", type=int, default=3, help="runs against one server (default: %(default)s)")
    parser.add_argument("server_arguments", nargs="*", help="extra lunar_server.py flags, after --")
    arguments = parser.parse_args(argv)

    server = ServerProcess("--db", ":memory:", *arguments.server_arguments).start()
    try:
        rates = []
        cpu_costs = []
        for run in range(arguments.runs):
            cpu_before = server_cpu_seconds(server.process.pid)
            rate = run_once(server.port, arguments.messages, arguments.connections, run)
            cpu_cost = (server_cpu_seconds(server.process.pid) - cpu_before) / arguments.messages
            rates.append(rate)
            cpu_costs.append(cpu_cost)
            print(f"run {run + 1}: {arguments.messages} POSTs over {arguments.connections} "
                  f"connections: {rate:,.0f} messages/s, server CPU {cpu_cost * 1e6:.0f} us/message")
        print(f"median: {statistics.median(rates):,.0f} messages/s, "
              f"server CPU {statistics.median(cpu_costs) * 1e6:.0f} us/message")
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
