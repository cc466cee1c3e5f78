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
from lunar.bulk import DEFAULT_MAX_BATCH_BYTES
from lunar.cors import parse_origin
from lunar.fleet import ControlCenter
from lunar.store import MEMORY, SYNC_LEVELS, SQLiteJournal, StoreError
from lunar.web import LunarHTTPServer

logger = logging.getLogger("lunar.server")

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8088
DEFAULT_DATABASE = "lunar.db"
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
    parser.add_argument("--db", default=DEFAULT_DATABASE, metavar="PATH",
                        help="SQLite database file that keeps every accepted message; "
                             f"'{MEMORY}' keeps nothing after exit (default: %(default)s)")
    parser.add_argument("--sync", default="normal", choices=sorted(SYNC_LEVELS),
                        help="durability of each commit: 'normal' survives a crash of "
                             "lunar, 'full' also survives power loss and OS crashes but "
                             "is slower (default: %(default)s)")
    parser.add_argument("--cors-origin", action="append", default=[], type=_origin,
                        metavar="ORIGIN",
                        help="let web pages from ORIGIN (scheme://host[:port], or '*' for "
                             "any) read the API's responses; repeat for more origins "
                             "(default: none)")
    parser.add_argument("--max-batch-bytes", type=_positive_int, default=DEFAULT_MAX_BATCH_BYTES,
                        metavar="BYTES",
                        help="largest NDJSON (application/x-ndjson) body in bytes; other "
                             "bodies stay limited to 1 MiB (default: %(default)s)")
    return parser.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> int:
    """Run the service until SIGINT or SIGTERM; return the exit status."""
    arguments = parse_arguments(argv)
    logging.basicConfig(
        level=arguments.log_level,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )

    try:
        journal = SQLiteJournal(arguments.db, sync=arguments.sync)
        restored = journal.load()
    except StoreError as error:
        logger.error("cannot start: %s", error)
        return 1
    control_center = ControlCenter(journal)
    control_center.restore(restored.states, restored.pending)
    logger.info("database %s (sync %s): restored %d rockets, %d stored messages, %d buffered",
                arguments.db, arguments.sync, len(restored.states), restored.message_count,
                len(restored.pending))

    try:
        server = LunarHTTPServer((arguments.host, arguments.port), FleetApi(control_center, max_batch_bytes=arguments.max_batch_bytes).routes(),
                                 cors_origins=arguments.cors_origin)
    except OSError as error:
        logger.error("cannot listen on %s port %d: %s", arguments.host, arguments.port, error)
        journal.close()
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

    if arguments.cors_origin:
        logger.info("CORS allows origins: %s", ", ".join(arguments.cors_origin))
    logger.info("lunar ready on %s", server.url)
    try:
        server.serve_forever(poll_interval=0.5)
    finally:
        server.server_close()
        journal.close()
    logger.info("lunar stopped")
    return 0


def _origin(text: str) -> str:
    try:
        return parse_origin(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid value {text!r}: not an integer") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"invalid value {value}: must be at least 1")
    return value


def _port(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid port {text!r}: not an integer") from None
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"invalid port {port}: must be from 0 to 65535")
    return port


if __name__ == "__main__":
    sys.exit(main())
