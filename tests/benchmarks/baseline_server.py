"""A minimal standard-library HTTP server, the baseline that lunar's throughput is compared with.

It serves ``POST /messages`` with the HTTP settings lunar uses
(``ThreadingHTTPServer``, HTTP/1.1 keep-alive, TCP_NODELAY, a listen backlog
of 1024). It reads the body, parses it as JSON and responds 202 with an
empty body, or 400 if the body is not JSON. It validates, orders and stores
nothing, so it shows what the HTTP layer alone costs on this machine.

Run: ``python3 -m tests.benchmarks.baseline_server --port 0``; the ready
line on stderr names the address.
"""

import argparse
import json
import logging
import signal
import socketserver
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import List, Optional

from lunar.web import LISTEN_BACKLOG

logger = logging.getLogger("baseline")

IDLE_TIMEOUT_SECONDS = 5.0  # as lunar's default


class BaselineHandler(BaseHTTPRequestHandler):
    """Parse each POSTed body as JSON and respond 202 with an empty body."""

    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    timeout = IDLE_TIMEOUT_SECONDS

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", "0"))
        body = self.rfile.read(length)
        try:
            json.loads(body)
        except ValueError:
            self._send(400, b'{"error": "body is not valid JSON"}')
            return
        self._send(202, b"")

    def _send(self, status: int, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if body:
            self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass  # lunar logs requests only at DEBUG, so neither server writes a line per request


class BaselineServer(ThreadingHTTPServer):
    """A threaded server with lunar's backlog and daemon threads."""

    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = LISTEN_BACKLOG

    def server_bind(self) -> None:
        # As in lunar: HTTPServer.server_bind would look up the host name in DNS.
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = self.server_address[:2]


def main(argv: Optional[List[str]] = None) -> int:
    """Serve until SIGINT or SIGTERM and return the exit status."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default: %(default)s)")
    parser.add_argument("--port", type=int, default=8089, help="TCP port; 0 picks a free one (default: %(default)s)")
    arguments = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    server = BaselineServer((arguments.host, arguments.port), BaselineHandler)

    def request_stop(signal_number: int, frame: object) -> None:
        threading.Thread(target=server.shutdown, name="shutdown").start()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    host, port = server.server_address[:2]
    logger.info("baseline ready on http://%s:%d", host, port)
    try:
        server.serve_forever(poll_interval=0.5)
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
