"""Measure request latency and server threads while thousands of keep-alive connections sit idle.

Starts ``lunar_server.py --db :memory:`` as a child process on 127.0.0.1,
opens N connections that each make one request and then stay open, and
times a request on a fresh connection (target: under 1 s). On Linux it
also reads the server's thread count from /proc. It does not load the
server with traffic: ``post_throughput`` does that.

    python3 -m tests.benchmarks.idle_connections [--connections N] [--samples N]
"""

import argparse
import http.client
import os
import socket
import statistics
import sys
import time
from typing import List, Optional

from tests.serverprocess import ServerProcess

try:
    import resource
except ImportError:  # Windows
    resource = None

CLIENT_TIMEOUT_SECONDS = 10.0
REQUEST = b"GET /healthz HTTP/1.1\r\nHost: bench\r\n\r\n"


def raise_descriptor_limit(needed: int) -> None:
    """Raise the soft limit on open files to ``needed`` if the hard limit allows it."""
    if resource is None:
        return
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY or soft >= needed:
        return
    if hard != resource.RLIM_INFINITY and hard < needed:
        raise SystemExit(f"needs {needed} open files, but the hard limit is {hard}; "
                         "lower --connections or raise the limit")
    resource.setrlimit(resource.RLIMIT_NOFILE, (needed, hard))


def server_threads(pid: int) -> Optional[int]:
    """Return the thread count of process ``pid`` from /proc, or None where there is no /proc."""
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("Threads:"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def open_idle_connections(port: int, count: int) -> List[socket.socket]:
    """Open ``count`` connections, make one request on each, and leave them open."""
    sockets = []
    for _ in range(count):
        sock = socket.create_connection(("127.0.0.1", port), timeout=CLIENT_TIMEOUT_SECONDS)
        sock.sendall(REQUEST)
        sockets.append(sock)
    for sock in sockets:
        data = b""
        while b'"ok"}' not in data:
            chunk = sock.recv(4096)
            if not chunk:
                raise RuntimeError("the server closed a connection before answering")
            data += chunk
    return sockets


def time_request(port: int) -> float:
    """Return the seconds a GET /healthz takes on a new connection, connect included."""
    started = time.perf_counter()
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=CLIENT_TIMEOUT_SECONDS)
    try:
        connection.request("GET", "/healthz")
        response = connection.getresponse()
        response.read()
        if response.status != 200:
            raise RuntimeError(f"GET /healthz returned {response.status}")
    finally:
        connection.close()
    return time.perf_counter() - started


def main(argv: List[str]) -> int:
    """Run the benchmark and print the latency, thread count and connection count."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--connections", type=int, default=2000,
                        help="idle connections to hold open (default: %(default)s)")
    parser.add_argument("--samples", type=int, default=20,
                        help="timed requests while they are open (default: %(default)s)")
    arguments = parser.parse_args(argv)
    raise_descriptor_limit(arguments.connections + 100)

    server = ServerProcess("--db", ":memory:", "--idle-timeout", "300").start()
    sockets: List[socket.socket] = []
    try:
        threads_before = server_threads(server.process.pid)
        opened = time.perf_counter()
        sockets = open_idle_connections(server.port, arguments.connections)
        print(f"opened {len(sockets)} keep-alive connections, one request each, in "
              f"{time.perf_counter() - opened:.2f} s")
        time.sleep(0.5)  # let the workers park every connection
        latencies = [time_request(server.port) for _ in range(arguments.samples)]
        threads_after = server_threads(server.process.pid)
        print(f"GET /healthz on a new connection with {len(sockets)} idle connections open: "
              f"median {statistics.median(latencies) * 1000:.2f} ms, "
              f"max {max(latencies) * 1000:.2f} ms over {len(latencies)} requests")
        if threads_after is not None:
            print(f"server threads: {threads_before} before, {threads_after} with the "
                  "connections open")
        print(f"CPython {sys.version.split()[0]}, {os.cpu_count()} CPUs")
    finally:
        for sock in sockets:
            sock.close()
        server.stop()
    return 0 if max(latencies) < 1.0 else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
