#!/usr/bin/env python3
"""Run the lunar telemetry service.

This file only wires things together: it parses the command line, configures
logging, builds the control center and the HTTP server, serves until Ctrl-C
or SIGTERM, and shuts down cleanly.
"""

import argparse
import logging
import signal
import sys
import threading
from typing import List, Optional

from lunar.api import FleetApi
from lunar.dashboard import dashboard_routes
from lunar.events import MAX_SUBSCRIBERS, EventBroker, EventsApi
from lunar.fleet import ControlCenter
from lunar.web import LunarHTTPServer

logger = logging.getLogger("lunar.server")

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8088
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")


def parse_arguments(argv: Optional[List[str]]) -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(
        prog="lunar_server.py",
        description="Serve rocket telemetry: POST /messages, GET /rockets and /missions.",
    )
    parser.add_argument("--host", default=DEFAULT_HOST,
                        help="address to listen on, IPv4 or IPv6 such as '::' "
                             "(default: %(default)s)")
    parser.add_argument("--port", type=_port, default=DEFAULT_PORT,
                        help="TCP port; 0 picks a free one and logs it (default: %(default)s)")
    parser.add_argument("--log-level", default="INFO", type=str.upper, choices=LOG_LEVELS,
                        help="minimum level of log lines on stderr (default: %(default)s)")
    parser.add_argument("--max-subscribers", type=_non_negative_integer, default=MAX_SUBSCRIBERS,
                        help="maximum number of concurrent GET /events streams; "
                             "more get 503 (default: %(default)s)")
    return parser.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> int:
    """Run the service until it is told to stop; return the exit status."""
    arguments = parse_arguments(argv)
    logging.basicConfig(
        level=arguments.log_level,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )

    control_center = ControlCenter()
    broker = EventBroker(control_center, max_subscribers=arguments.max_subscribers)
    routes = FleetApi(control_center).routes() + EventsApi(broker).routes() + dashboard_routes()
    try:
        server = LunarHTTPServer((arguments.host, arguments.port), routes)
    except OSError as error:
        logger.error("cannot listen on %s port %d: %s", arguments.host, arguments.port, error)
        broker.close()
        return 1

    stop_requested = threading.Event()

    def request_stop(signal_number: int, frame: object) -> None:
        if not stop_requested.is_set():
            stop_requested.set()
            logger.info("received %s, stopping", signal.Signals(signal_number).name)
            # shutdown() waits for serve_forever() to return, so it cannot run
            # on the thread that is serving.
            threading.Thread(target=server.shutdown, name="shutdown").start()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)

    logger.info("lunar ready on %s", server.url)
    try:
        server.serve_forever(poll_interval=0.5)
    finally:
        broker.close()  # ends every /events stream, whose threads shutdown() does not wait for
        server.server_close()
    logger.info("lunar stopped")
    return 0


def _port(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid port {text!r}: not an integer") from None
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"invalid port {port}: must be from 0 to 65535")
    return port


def _non_negative_integer(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid count {text!r}: not an integer") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"invalid count {value}: must not be negative")
    return value


if __name__ == "__main__":
    sys.exit(main())
