"""Log output: readable text or JSON lines, rate limiting, and the periodic traffic summary.

``configure_logging`` is called once by ``lunar_server.py``; library
modules only use ``logging.getLogger(__name__)``. Fields passed with
``extra=`` (such as ``channel`` and ``messageNumber``) appear in both
formats. This module does not rotate or ship logs: stderr goes wherever the
service manager sends it.
"""

import datetime
import json
import logging
import sys
import threading
import time
from typing import Any, Callable, Dict, List, Mapping, Optional, TextIO

logger = logging.getLogger(__name__)

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
HOUSEKEEPING_INTERVAL_SECONDS = 1.0  # how often suppressed-line counts are reported

# Attributes every LogRecord has; anything else on a record came from extra=.
_STANDARD_ATTRIBUTES = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {
    "message", "asctime", "taskName",
}


def extra_fields(record: logging.LogRecord) -> Dict[str, Any]:
    """Return the fields that were passed to the log call with ``extra=``."""
    return {key: value for key, value in vars(record).items()
            if key not in _STANDARD_ATTRIBUTES and not key.startswith("_")}


class TextFormatter(logging.Formatter):
    """One readable line: time, level, logger, message, then ``key=value`` extra fields."""

    def __init__(self) -> None:
        super().__init__(TEXT_FORMAT)

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        fields = extra_fields(record)
        if not fields:
            return line
        suffix = " ".join(f"{key}={_text_value(value)}" for key, value in fields.items())
        head, newline, rest = line.partition("\n")  # keep a traceback below the fields
        return f"{head} {suffix}{newline}{rest}"


class JsonFormatter(logging.Formatter):
    """One JSON object per line with timestamp (RFC 3339, UTC), level, logger and message."""

    def format(self, record: logging.LogRecord) -> str:
        document: Dict[str, Any] = {
            "timestamp": rfc3339_utc(record.created),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in extra_fields(record).items():
            document.setdefault(key, value)
        if record.exc_info:
            document["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            document["stack"] = self.formatStack(record.stack_info)
        return json.dumps(document, ensure_ascii=False, default=str)


def rfc3339_utc(timestamp: float) -> str:
    """Format a Unix time as RFC 3339 in UTC with microseconds, such as ``2025-04-02T07:21:50.458989Z``."""
    moment = datetime.datetime.fromtimestamp(timestamp, tz=datetime.timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def configure_logging(level: str, log_format: str, stream: Optional[TextIO] = None) -> None:
    """Send log lines of ``level`` and above to ``stream`` (stderr) in ``text`` or ``json``."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter() if log_format == "json" else TextFormatter())
    root = logging.getLogger()
    for existing in list(root.handlers):
        root.removeHandler(existing)
    root.addHandler(handler)
    root.setLevel(level)


class RateLimitedLogger:
    """Logs at most ``lines_per_second`` lines in each one-second window and counts the rest.

    When a window with suppressed lines has passed, the next call to ``log``
    or ``flush`` writes one WARNING line with their number, so a flood of
    bad requests costs a few lines a second, not a full disk.
    """

    def __init__(self, target: logging.Logger, lines_per_second: int,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.target = target
        self.lines_per_second = lines_per_second
        self._clock = clock
        self._lock = threading.Lock()
        self._window_start = clock()
        self._logged = 0
        self._suppressed = 0

    def log(self, level: int, message: str, *args: Any,
            extra: Optional[Mapping[str, Any]] = None) -> bool:
        """Log one line unless this window is full; return whether it was logged."""
        if not self.target.isEnabledFor(level):
            return False
        with self._lock:
            report = self._roll_window()
            allowed = self._logged < self.lines_per_second
            if allowed:
                self._logged += 1
            else:
                self._suppressed += 1
        if report:
            self._report(*report)
        if allowed:
            self.target.log(level, message, *args, extra=extra)
        return allowed

    def flush(self, force: bool = False) -> None:
        """Report lines suppressed in a window that has ended, or at once with ``force``."""
        with self._lock:
            report = self._roll_window(force)
        if report:
            self._report(*report)

    def _roll_window(self, force: bool = False) -> Optional[tuple]:
        """Start a new window if the current one ended; return (count, seconds) to report."""
        now = self._clock()
        elapsed = now - self._window_start
        if elapsed < 1.0 and not force:
            return None
        suppressed = self._suppressed
        self._window_start = now
        self._logged = 0
        self._suppressed = 0
        return (suppressed, elapsed) if suppressed else None

    def _report(self, suppressed: int, seconds: float) -> None:
        self.target.warning(
            "suppressed %d similar log lines in the last %.1f s (limit %d lines per second)",
            suppressed, seconds, self.lines_per_second, extra={"suppressed": suppressed},
        )


class TrafficSummary:
    """Logs one INFO line per interval with message rates and totals, while traffic flows.

    ``read_totals`` returns running totals by outcome (such as applied,
    buffered, duplicate and rejected). Nothing is logged for an interval in
    which no total changed.
    """

    def __init__(self, read_totals: Callable[[], Mapping[str, int]], interval_seconds: float,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.read_totals = read_totals
        self.interval_seconds = interval_seconds
        self._clock = clock
        self._last_totals = dict(read_totals())
        self._last_time = clock()

    def due(self) -> bool:
        """Tell whether an interval has passed since the last summary."""
        return self._clock() - self._last_time >= self.interval_seconds

    def log_summary(self) -> Optional[str]:
        """Log the summary of the interval that just ended; return the line, or None if idle."""
        now = self._clock()
        totals = dict(self.read_totals())
        seconds = max(now - self._last_time, 1e-9)
        changes = {key: totals.get(key, 0) - self._last_totals.get(key, 0) for key in totals}
        self._last_totals = totals
        self._last_time = now
        received = sum(changes.values())
        if received == 0:
            return None
        by_outcome = ", ".join(f"{changes[key]} {key}" for key in totals)
        all_time = ", ".join(f"{totals[key]} {key}" for key in totals)
        line = (f"received {received} messages in {seconds:.0f} s ({received / seconds:.1f}/s): "
                f"{by_outcome}; since start: {all_time}")
        logger.info("%s", line, extra={"messagesPerSecond": round(received / seconds, 1)})
        return line


class Housekeeping:
    """A daemon thread that calls periodic tasks, such as log summaries, every second."""

    def __init__(self, tasks: List[Callable[[], None]],
                 interval_seconds: float = HOUSEKEEPING_INTERVAL_SECONDS) -> None:
        self.tasks = list(tasks)
        self.interval_seconds = interval_seconds
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="lunar-housekeeping", daemon=True)

    def start(self) -> None:
        """Start calling the tasks."""
        self._thread.start()

    def stop(self) -> None:
        """Stop calling the tasks and wait for the thread."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(self.interval_seconds * 2)

    def _run(self) -> None:
        while not self._stop.wait(self.interval_seconds):
            for task in self.tasks:
                try:
                    task()
                except Exception:
                    logger.exception("periodic task %r failed", task)


def _text_value(value: Any) -> str:
    text = str(value)
    if not text or any(character.isspace() or character in '"=' for character in text):
        return json.dumps(text, ensure_ascii=False)
    return text
