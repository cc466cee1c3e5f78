"""Measurement pieces of the benchmark runner: servers, clients, timers and statistics.

Servers run as child processes on 127.0.0.1 (``tests.serverprocess``). The
clients are the ``lunar.rockets`` launcher, run as a command, and small
keep-alive loops built on its socket transport. Nothing here prints or
writes reports: ``tests.benchmarks.__main__`` does.
"""

import http.client
import json
import math
import os
import platform
import re
import statistics
import subprocess
import sys
import threading
import time
from typing import Dict, List, NamedTuple, Optional, Sequence, Tuple

from lunar.rockets.transport import NDJSON_CONTENT_TYPE, SocketPostConnection
from tests.serverprocess import ROOT, ServerProcess

LAUNCH_TIMEOUT_SECONDS = 900.0  # bounds one launcher run, the slowest step
REQUEST_TIMEOUT_SECONDS = 30.0
LOAD_BATCH_MESSAGES = 1000  # messages per request when filling a server
MEMORY_DATABASE = ":memory:"
MESSAGE_TIME = "2025-04-02T09:21:50.458989221+02:00"
BASELINE_COMMAND = ["-m", "tests.benchmarks.baseline_server"]

_RATE_LINE = re.compile(r"^messages\s+([\d,]+) generated, ([\d,]+) acknowledged", re.MULTILINE)
_DURATION_LINE = re.compile(r"^duration\s+([\d.]+) s", re.MULTILINE)
_REPLAY_LINE = re.compile(r"^messages\s+([\d,]+) read, ([\d,]+) acknowledged", re.MULTILINE)


class LauncherRun(NamedTuple):
    """One run of the launcher command: what it sent and how fast."""

    command: List[str]
    acknowledged: int
    duration_s: float

    @property
    def rate(self) -> float:
        """Acknowledged messages per second."""
        return self.acknowledged / self.duration_s if self.duration_s > 0 else 0.0


class Latencies(NamedTuple):
    """Request rate and latency percentiles of a keep-alive load."""

    requests: int
    rate: float  # requests per second over the whole load
    p50_ms: float
    p99_ms: float


# -- machine ---------------------------------------------------------------------

def describe_machine() -> Dict[str, str]:
    """Return the facts a reader needs to compare numbers: cores, CPU, Python, load."""
    model = platform.processor() or "unknown"
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return {
        "cores": str(os.cpu_count()),
        "cpu": model,
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "system": f"{platform.system()} {platform.release()}",
        "load": load_average(),
    }


def load_average() -> str:
    """Return the 1, 5 and 15 minute load averages, or "unknown"."""
    try:
        return " ".join(f"{value:.2f}" for value in os.getloadavg())
    except OSError:
        return "unknown"


# -- servers ---------------------------------------------------------------------

def start_lunar(database: str, root: str = ROOT) -> ServerProcess:
    """Start ``lunar_server.py`` of the tree at ``root`` with a database path or ``:memory:``."""
    script = os.path.join(root, "lunar_server.py")
    return ServerProcess("--db", database, command=[script], root=root).start()


def start_baseline() -> ServerProcess:
    """Start the standard-library baseline server."""
    return ServerProcess(command=BASELINE_COMMAND).start()


def cpu_seconds(pid: int) -> float:
    """Return the user plus system CPU seconds a process has used, from /proc/<pid>/stat."""
    with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_kib(pid: int) -> int:
    """Return the resident set size of a process in KiB, from /proc/<pid>/status."""
    with open(f"/proc/{pid}/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError(f"process {pid} has no VmRSS line; is /proc mounted?")


# -- clients ---------------------------------------------------------------------

def run_launcher(url: str, messages: int, batch: int = 1, senders: int = 3) -> LauncherRun:
    """Run ``python3 -m lunar.rockets launch`` against ``url`` and return its counts."""
    command = [sys.executable, "-m", "lunar.rockets", "launch", f"{url}/messages",
               f"--max-messages={messages}", f"--concurrency-level={senders}"]
    if batch > 1:
        command.append(f"--batch={batch}")
    output = _run_client(command)
    counts = _RATE_LINE.search(output)
    duration = _DURATION_LINE.search(output)
    if counts is None or duration is None:
        raise RuntimeError(f"unexpected launcher output:\n{output}")
    return LauncherRun(command, int(counts[2].replace(",", "")), float(duration[1]))


def run_replay(url: str, path: str, batch: int) -> LauncherRun:
    """Run ``python3 -m lunar.rockets replay`` of a capture file and return its counts."""
    command = [sys.executable, "-m", "lunar.rockets", "replay", path, f"{url}/messages",
               f"--batch={batch}"]
    output = _run_client(command)
    counts = _REPLAY_LINE.search(output)
    duration = _DURATION_LINE.search(output)
    if counts is None or duration is None:
        raise RuntimeError(f"unexpected replay output:\n{output}")
    return LauncherRun(command, int(counts[2].replace(",", "")), float(duration[1]))


def write_capture_file(path: str, messages: int) -> List[str]:
    """Write a capture of ``messages`` messages with ``generate``; return the command."""
    command = [sys.executable, "-m", "lunar.rockets", "generate", path, f"--max-messages={messages}"]
    _run_client(command)
    return command


def _run_client(command: List[str]) -> str:
    completed = subprocess.run(command, cwd=ROOT, stdin=subprocess.DEVNULL, capture_output=True,
                               text=True, timeout=LAUNCH_TIMEOUT_SECONDS)
    if completed.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} exited with {completed.returncode}:\n"
                           f"{completed.stdout}{completed.stderr}")
    return completed.stdout


def post_latencies(port: int, connections: int, total_requests: int) -> Latencies:
    """POST single messages over ``connections`` keep-alive connections and time each request.

    Each connection launches its own rocket and then sends its speed
    changes in order, so every message is applied. The client threads
    share one process and its GIL, so at high connection counts part of
    the latency is the client's own waiting.
    """
    per_connection = max(1, total_requests // connections)
    samples: List[List[float]] = [[] for _ in range(connections)]
    errors: List[str] = []
    ready = threading.Barrier(connections + 1)
    run_id = f"{time.time_ns():x}"

    def load(index: int) -> None:
        connection = SocketPostConnection("127.0.0.1", port, "/messages", REQUEST_TIMEOUT_SECONDS)
        bodies = [encode_message(f"latency-{run_id}-{index}", number)
                  for number in range(1, per_connection + 1)]
        timings = samples[index]
        try:
            ready.wait(REQUEST_TIMEOUT_SECONDS)
            for body in bodies:
                started = time.perf_counter()
                status, _ = connection.post(body)
                timings.append(time.perf_counter() - started)
                if status != 202:
                    errors.append(f"HTTP {status}")
                    return
        except Exception as error:  # reported below, after every thread has stopped
            errors.append(repr(error))
        finally:
            connection.close()

    threads = [threading.Thread(target=load, args=(index,), daemon=True) for index in range(connections)]
    for thread in threads:
        thread.start()
    ready.wait(REQUEST_TIMEOUT_SECONDS)
    started = time.perf_counter()
    for thread in threads:
        thread.join(LAUNCH_TIMEOUT_SECONDS)
    elapsed = time.perf_counter() - started
    if errors:
        raise RuntimeError(f"{len(errors)} connections failed, the first with {errors[0]}")
    all_samples = [sample for timings in samples for sample in timings]
    return _latencies(all_samples, elapsed)


def get_latencies(port: int, path: str, requests: int) -> Latencies:
    """GET ``path`` ``requests`` times on one keep-alive connection and time each request."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=REQUEST_TIMEOUT_SECONDS)
    timings = []
    try:
        started_all = time.perf_counter()
        for _ in range(requests):
            started = time.perf_counter()
            connection.request("GET", path)
            response = connection.getresponse()
            response.read()
            timings.append(time.perf_counter() - started)
            if response.status != 200:
                raise RuntimeError(f"GET {path} returned HTTP {response.status}")
        elapsed = time.perf_counter() - started_all
    finally:
        connection.close()
    return _latencies(timings, elapsed)


def load_rockets(port: int, first: int, count: int) -> None:
    """Launch rockets ``first`` to ``first + count - 1`` with NDJSON batches."""
    bodies = (encode_message(f"rocket-{index:07d}", 1) for index in range(first, first + count))
    _post_batches(port, bodies, count)


def load_buffered(port: int, channel: str, count: int) -> None:
    """Send messages 2 to ``count + 1`` of one rocket, so all of them wait for message 1."""
    bodies = (encode_message(channel, number) for number in range(2, count + 2))
    _post_batches(port, bodies, count)


def _post_batches(port: int, bodies, count: int) -> None:
    connection = SocketPostConnection("127.0.0.1", port, "/messages", REQUEST_TIMEOUT_SECONDS,
                                      content_type=NDJSON_CONTENT_TYPE)
    try:
        sent = 0
        while sent < count:
            batch = [next(bodies) for _ in range(min(LOAD_BATCH_MESSAGES, count - sent))]
            # A single line is a plain message and gets 202 instead of 200.
            status, answer = connection.post(b"\n".join(batch))
            if status not in (200, 202):
                raise RuntimeError(f"loading failed with HTTP {status}: {answer[:200]!r}")
            sent += len(batch)
    finally:
        connection.close()


def encode_message(channel: str, number: int) -> bytes:
    """Return the JSON body of a launch (number 1) or a speed increase."""
    if number == 1:
        message_type, payload = "RocketLaunched", {"type": "Falcon-9", "launchSpeed": 500, "mission": "ARTEMIS"}
    else:
        message_type, payload = "RocketSpeedIncreased", {"by": 500}
    return json.dumps({
        "metadata": {"channel": channel, "messageNumber": number,
                     "messageTime": MESSAGE_TIME, "messageType": message_type},
        "message": payload,
    }).encode("utf-8")


# -- statistics ------------------------------------------------------------------

def percentile(values: Sequence[float], fraction: float) -> float:
    """Return the value below which ``fraction`` of ``values`` fall (nearest rank)."""
    if not values:
        raise ValueError("no values to take a percentile of")
    ordered = sorted(values)
    rank = min(len(ordered), max(1, math.ceil(fraction * len(ordered))))
    return ordered[rank - 1]


def median_ratio(pairs: Sequence[Tuple[float, float]]) -> float:
    """Return the median of ``a / b`` over pairs measured side by side."""
    return statistics.median(a / b for a, b in pairs)


def _latencies(samples: List[float], elapsed_s: float) -> Latencies:
    return Latencies(
        requests=len(samples),
        rate=len(samples) / elapsed_s if elapsed_s > 0 else 0.0,
        p50_ms=percentile(samples, 0.50) * 1000,
        p99_ms=percentile(samples, 0.99) * 1000,
    )


def wait_for_rss_to_settle(pid: int, rounds: int = 5, interval_s: float = 0.2) -> int:
    """Return the RSS in KiB after it stops changing, or after ``rounds`` samples."""
    previous: Optional[int] = None
    current = rss_kib(pid)
    for _ in range(rounds):
        if current == previous:
            break
        time.sleep(interval_s)
        previous, current = current, rss_kib(pid)
    return current
