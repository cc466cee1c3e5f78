#!/usr/bin/env python3
"""Run the lunar telemetry service.

This file only wires things together: it reads the configuration, configures
logging, builds the control center and the HTTP server, serves until Ctrl-C
or SIGTERM, and drains and shuts down cleanly.
"""

import logging
import os
import signal
import sys
import threading
from typing import List, Mapping, Optional

from lunar.access import AllowList
from lunar.api import FleetApi
from lunar.config import ConfigError, describe, load_config
from lunar.dashboard import dashboard_routes
from lunar.events import EventBroker, EventsApi
from lunar.fleet import ControlCenter, Limits
from lunar.lifecycle import Lifecycle
from lunar.logs import Housekeeping, TrafficSummary, configure_logging
from lunar.ops import OpsApi, ServiceMetrics, TimedJournal
from lunar.rejections import Rejections
from lunar.store import SQLiteJournal, StoreError
from lunar.web import LunarHTTPServer

logger = logging.getLogger("lunar.server")


def main(argv: Optional[List[str]] = None, environ: Optional[Mapping[str, str]] = None) -> int:
    """Run the service until SIGINT or SIGTERM; return the exit status."""
    try:
        config = load_config(argv, os.environ if environ is None else environ)
    except ConfigError as error:
        print(f"lunar_server.py: error: {error}", file=sys.stderr)
        return 2
    configure_logging(config.log_level, config.log_format)
    logger.debug("configuration: %s", describe(config))
    lifecycle = Lifecycle()

    try:
        journal = SQLiteJournal(config.db, sync=config.sync)
        restored = journal.load()
    except StoreError as error:
        logger.error("cannot start: %s", error)
        return 1
    rejected = Rejections(config.rejection_log_rate)
    limits = Limits(config.max_pending_per_rocket, config.max_pending_total, config.max_rockets)
    metrics = ServiceMetrics(rejected)
    control_center = ControlCenter(TimedJournal(journal, metrics.observe_commit), limits)
    control_center.restore(restored.states, restored.pending)
    metrics.watch_fleet(control_center)
    logger.info("database %s (sync %s): restored %d rockets, %d stored messages, %d buffered",
                config.db, config.sync, len(restored.states), restored.message_count,
                len(restored.pending))

    fleet_api = FleetApi(control_center, AllowList(config.ingest_allow), rejected,
                         max_batch_bytes=config.max_batch_bytes)
    ops_api = OpsApi(lifecycle, journal.check_writable, metrics)
    broker = EventBroker(control_center, max_subscribers=config.max_subscribers)
    routes = fleet_api.routes() + ops_api.routes() + EventsApi(broker).routes() + dashboard_routes()
    try:
        server = LunarHTTPServer(
            (config.host, config.port), routes, cors_origins=config.cors_origin,
            idle_timeout=config.idle_timeout, max_body_bytes=config.max_body_bytes,
            max_request_line_bytes=config.max_request_line_bytes,
            request_timeout=config.request_timeout, workers=config.workers,
            max_streams=config.max_streams,
        )
    except OSError as error:
        logger.error("cannot listen on %s port %d: %s", config.host, config.port, error)
        broker.close()
        journal.close()
        return 1
    server.request_observer = metrics.observe_request
    metrics.watch_connections(server.connection_counts)
    lifecycle.add_shutdown_hook(broker.close)  # ends every /events stream
    metrics.watch_sse_subscribers(broker.subscriber_count)

    tasks = [rejected.log.flush]
    if config.summary_interval > 0:
        summary = TrafficSummary(metrics.totals, config.summary_interval)
        tasks.append(lambda: summary.log_summary() if summary.due() else None)
    housekeeping = Housekeeping(tasks)

    def request_stop(signal_number: int, frame: object) -> None:
        if lifecycle.begin_shutdown():
            logger.info("received %s, draining", signal.Signals(signal_number).name)
            server.begin_drain()
            # shutdown() waits for serve_forever() to return, so it cannot run
            # on the thread that is serving.
            threading.Thread(target=server.shutdown, name="shutdown").start()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)

    lifecycle.mark_ready()
    housekeeping.start()
    if config.cors_origin:
        logger.info("CORS allows origins: %s", ", ".join(config.cors_origin))
    if config.ingest_allow:
        logger.info("POST /messages is allowed from %s only", AllowList(config.ingest_allow))
    logger.info("lunar ready on %s", server.url)
    try:
        server.serve_forever(poll_interval=0.5)
    finally:
        lifecycle.begin_shutdown()
        lifecycle.run_shutdown_hooks()
        drained = server.drain(config.drain_timeout)
        server.server_close()
        housekeeping.stop()
        rejected.log.flush(force=True)
        journal.close()
    logger.info("lunar stopped%s", "" if drained else " after closing busy connections")
    return 0


if __name__ == "__main__":
    sys.exit(main())
