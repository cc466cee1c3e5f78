#!/usr/bin/env python3
"""Print the example requests and responses of docs/API.md, taken from a real lunar server.

The script starts ``lunar_server.py`` on 127.0.0.1 with a free port and an
in-memory database, posts a few messages, sends each example request and
prints it as a curl command followed by the response, in Markdown. It does
not edit docs/API.md: paste the sections you need. Date and Server headers
are left out because they change on every run, and JSON bodies are
indented for reading, so the ETag shown is the hash of the compact body
that lunar sent.

Usage: python3 docs/generate_api_examples.py > /tmp/examples.md
"""

import http.client
import json
import os
import queue
import re
import subprocess
import sys
import threading
from typing import Dict, List, Optional, Tuple

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
START_TIMEOUT_SECONDS = 20.0
STOP_TIMEOUT_SECONDS = 10.0
REQUEST_TIMEOUT_SECONDS = 10.0
DOCUMENTED_BASE_URL = "http://127.0.0.1:8088"  # the default address, shown in every curl line
DASHBOARD_ORIGIN = "http://localhost:3000"
SKIPPED_HEADERS = {"date", "server"}
MAX_SHOWN_BODY_LINES = 60  # longer bodies, such as the OpenAPI document, are cut

FALCON = "193270a9-c9cf-404a-8f83-838e71d9ae67"
ATLAS = "5e1d1a3c-0b7e-4f6a-9c2d-6a8f3b9e0d14"
DELTA = "a8c24f0e-7d3b-4e59-b1a6-2f9d0c5e8b37"

_READY = re.compile(r"lunar ready on http://[^:]+:(\d+)")


def message(channel: str, number: int, message_type: str, time: str, **payload: object) -> bytes:
    """Return the JSON body of one telemetry message."""
    return json.dumps({
        "metadata": {"channel": channel, "messageNumber": number,
                     "messageTime": time, "messageType": message_type},
        "message": payload,
    }).encode("utf-8")


SETUP_MESSAGES = [
    message(FALCON, 1, "RocketLaunched", "2025-04-02T09:21:50.458989221+02:00",
            type="Falcon-9", launchSpeed=500, mission="ARTEMIS"),
    message(FALCON, 2, "RocketSpeedIncreased", "2025-04-02T09:21:51.000000000+02:00", by=3000),
    message(FALCON, 4, "RocketSpeedDecreased", "2025-04-02T09:21:53.000000000+02:00", by=200),
    message(ATLAS, 1, "RocketLaunched", "2025-04-02T07:20:00Z",
            type="Atlas-V", launchSpeed=1200, mission="artemis"),
    message(ATLAS, 2, "RocketExploded", "2025-04-02T07:25:00Z", reason="PRESSURE_VESSEL_FAILURE"),
    message(DELTA, 1, "RocketLaunched", "2025-04-02T08:00:00.5Z",
            type="Delta-IV", launchSpeed=800, mission="GEMINI"),
]

# (title, method, path, request headers, body)
EXAMPLES: List[Tuple[str, str, str, Dict[str, str], Optional[bytes]]] = [
    ("Post a message", "POST", "/messages", {"Content-Type": "application/json"},
     message(DELTA, 2, "RocketSpeedIncreased", "2025-04-02T08:00:01Z", by=700)),
    ("All rockets", "GET", "/rockets", {}, None),
    ("Sorted and paged", "GET", "/rockets?sort=speed&order=desc&limit=1", {}, None),
    ("Second page", "GET", "/rockets?sort=speed&order=desc&limit=1&offset=1", {}, None),
    ("Filtered", "GET", "/rockets?status=launched,exploded&type=falcon-9&minSpeed=1000", {}, None),
    ("One rocket", "GET", f"/rockets/{FALCON}", {}, None),
    ("Stored messages", "GET", f"/rockets/{FALCON}/messages?limit=2&offset=1", {}, None),
    ("Missions", "GET", "/missions", {}, None),
    ("Mission details", "GET", "/missions?details=true", {}, None),
    ("Rockets on a mission", "GET", "/missions/artemis?sort=launchTime&order=desc", {}, None),
    ("Invalid parameter", "GET", "/rockets?sort=name", {}, None),
    ("Limit out of range", "GET", "/rockets?limit=5000", {}, None),
    ("Parameter given twice", "GET", "/rockets?status=launched&status=exploded", {}, None),
    ("Unknown parameter", "GET", f"/rockets/{FALCON}?details=true", {}, None),
    ("Unknown rocket", "GET", "/rockets/no-such-rocket/messages", {}, None),
    ("Method not allowed", "DELETE", "/rockets", {}, None),
    ("CORS preflight", "OPTIONS", "/rockets",
     {"Origin": DASHBOARD_ORIGIN, "Access-Control-Request-Method": "GET",
      "Access-Control-Request-Headers": "if-none-match"}, None),
    ("Cross-origin GET", "GET", "/missions", {"Origin": DASHBOARD_ORIGIN}, None),
    ("OpenAPI document", "GET", "/openapi.json", {}, None),
]


class Server:
    """lunar_server.py in a child process, with an in-memory database."""

    def __init__(self) -> None:
        self.process = subprocess.Popen(
            [sys.executable, os.path.join(ROOT, "lunar_server.py"), "--host", "127.0.0.1",
             "--port", "0", "--db", ":memory:", "--cors-origin", DASHBOARD_ORIGIN],
            cwd=ROOT, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE, text=True,
        )
        lines: "queue.Queue[str]" = queue.Queue()
        threading.Thread(target=self._read_log, args=(lines,), daemon=True).start()
        try:
            while True:
                line = lines.get(timeout=START_TIMEOUT_SECONDS)
                match = _READY.search(line)
                if match:
                    self.port = int(match.group(1))
                    return
        except queue.Empty:
            self.stop()
            raise RuntimeError("lunar did not log that it was ready in time") from None

    def _read_log(self, lines: "queue.Queue[str]") -> None:
        for line in self.process.stderr:
            lines.put(line)

    def request(self, method: str, path: str, headers: Dict[str, str],
                body: Optional[bytes]) -> http.client.HTTPResponse:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=REQUEST_TIMEOUT_SECONDS)
        connection.request(method, path, body=body, headers=headers)
        response = connection.getresponse()
        response.body = response.read()
        connection.close()
        return response

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(STOP_TIMEOUT_SECONDS)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(STOP_TIMEOUT_SECONDS)


def curl_command(method: str, path: str, headers: Dict[str, str], body: Optional[bytes]) -> str:
    """Return the curl command line that sends the request."""
    parts = ["curl -i"]
    if method not in ("GET", "POST") or (method == "POST" and body is None):
        parts.append(f"-X {method}")
    for name, value in headers.items():
        parts.append(f"-H '{name}: {value}'")
    if body is not None:
        parts.append(f"-d '{body.decode('utf-8')}'")
    parts.append(f"'{DOCUMENTED_BASE_URL}{path}'")
    return " ".join(parts)


def format_response(response: http.client.HTTPResponse) -> str:
    """Return the status line, headers and body, with the JSON body indented."""
    lines = [f"HTTP/1.1 {response.status} {response.reason}"]
    for name, value in response.getheaders():
        if name.lower() not in SKIPPED_HEADERS:
            lines.append(f"{name}: {value}")
    text = ""
    if response.body:
        text = json.dumps(json.loads(response.body), indent=2, ensure_ascii=False)
        body_lines = text.split("\n")
        if len(body_lines) > MAX_SHOWN_BODY_LINES:
            text = "\n".join(body_lines[:MAX_SHOWN_BODY_LINES] + ["..."])
    return "\n".join(lines) + "\n\n" + text if text else "\n".join(lines)


def print_example(title: str, command: str, response: http.client.HTTPResponse) -> None:
    print(f"#### {title}\n\n```sh\n{command}\n```\n\n```http\n{format_response(response)}\n```\n")


def main() -> int:
    server = Server()
    try:
        for body in SETUP_MESSAGES:
            response = server.request("POST", "/messages", {"Content-Type": "application/json"}, body)
            if response.status != 202:
                raise RuntimeError(f"setup message was rejected with {response.status}: {response.body!r}")
        for title, method, path, headers, body in EXAMPLES:
            response = server.request(method, path, headers, body)
            print_example(title, curl_command(method, path, headers, body), response)

        path = f"/rockets/{FALCON}"
        first = server.request("GET", path, {}, None)
        tag = first.getheader("ETag")
        print_example("Polling with ETag: first request", curl_command("GET", path, {}, None), first)
        headers = {"If-None-Match": tag}
        print_example("Polling with ETag: nothing changed",
                      curl_command("GET", path, headers, None), server.request("GET", path, headers, None))
        change = message(FALCON, 3, "RocketMissionChanged", "2025-04-02T09:21:52Z", newMission="GEMINI")
        server.request("POST", "/messages", {"Content-Type": "application/json"}, change)
        print_example("Polling with ETag: after a change",
                      curl_command("GET", path, headers, None), server.request("GET", path, headers, None))
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
