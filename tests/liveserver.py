"""Start a fully wired lunar server inside the test process, on an ephemeral loopback port.

``start_service`` builds what ``lunar_server.py`` builds (fleet, journal,
metrics, operator endpoints) without signals or logging set-up, serves it
on a thread, and registers cleanup with the test case. It does not start a
process: ``tests.serverprocess`` does.
"""

import http.client
import threading
import unittest
from typing import Any, Dict, Optional, Tuple

from lunar.access import AllowList
from lunar.api import FleetApi
from lunar.fleet import ControlCenter, Limits
from lunar.lifecycle import Lifecycle
from lunar.ops import OpsApi, ServiceMetrics, TimedJournal
from lunar.rejections import Rejections
from lunar.store import MEMORY, SQLiteJournal
from lunar.web import LunarHTTPServer

CLIENT_TIMEOUT_SECONDS = 10.0


class Service:
    """The parts of one running service that tests inspect."""

    def __init__(self, server: LunarHTTPServer, control_center: ControlCenter,
                 journal: SQLiteJournal, metrics: ServiceMetrics, lifecycle: Lifecycle,
                 rejections: Rejections, ops: OpsApi) -> None:
        self.server = server
        self.control_center = control_center
        self.journal = journal
        self.metrics = metrics
        self.lifecycle = lifecycle
        self.rejections = rejections
        self.ops = ops

    @property
    def port(self) -> int:
        """Return the port the server listens on."""
        return self.server.server_address[1]

    def connect(self) -> http.client.HTTPConnection:
        """Open a keep-alive client connection to the server."""
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=CLIENT_TIMEOUT_SECONDS)

    def request(self, method: str, path: str, body: Optional[bytes] = None,
                headers: Optional[Dict[str, str]] = None) -> Tuple[int, Dict[str, str], bytes]:
        """Send one request on a new connection; return status, headers and body."""
        connection = self.connect()
        try:
            connection.request(method, path, body, headers or {})
            response = connection.getresponse()
            return response.status, dict(response.getheaders()), response.read()
        finally:
            connection.close()


def start_service(test: unittest.TestCase, database: str = MEMORY,
                  limits: Optional[Limits] = None, ingest_allow: Optional[AllowList] = None,
                  **server_options: Any) -> Service:
    """Build and serve a service on 127.0.0.1; stop it when ``test`` ends."""
    journal = SQLiteJournal(database)
    test.addCleanup(journal.close)
    rejections = Rejections(lines_per_second=1000)
    metrics = ServiceMetrics(rejections)
    control_center = ControlCenter(TimedJournal(journal, metrics.observe_commit), limits)
    metrics.watch_fleet(control_center)
    lifecycle = Lifecycle()
    ops = OpsApi(lifecycle, journal.check_writable, metrics)
    routes = FleetApi(control_center, ingest_allow, rejections).routes() + ops.routes()
    server = LunarHTTPServer(("127.0.0.1", 0), routes, **server_options)
    server.request_observer = metrics.observe_request
    metrics.watch_connections(server.connection_counts)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                              name="test-server", daemon=True)
    thread.start()
    lifecycle.mark_ready()

    def stop() -> None:
        server.shutdown()
        thread.join(CLIENT_TIMEOUT_SECONDS)
        server.server_close()

    test.addCleanup(stop)
    return Service(server, control_center, journal, metrics, lifecycle, rejections, ops)
