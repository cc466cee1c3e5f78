"""Rejected messages: one counter per reason and one rate-limited log line each.

Every POST /messages that is not stored is reported here with one of the
``REASONS``, so the metric's labels stay a small fixed set whatever clients
send. This module does not decide what is rejected: ``lunar.api`` does.
"""

import logging
import threading
from typing import Dict, Optional

from lunar.logs import RateLimitedLogger

# Rejections are logged under the API's logger, because the API rejects them.
logger = logging.getLogger("lunar.api")

INVALID_JSON = "invalid_json"  # not UTF-8, not JSON, or a non-finite number
INVALID_FIELD = "invalid_field"  # valid JSON that is not an acceptable message
INVALID_BODY = "invalid_body"  # missing length, malformed framing or truncated body
TOO_LARGE = "too_large"  # body over --max-body-bytes
FORBIDDEN = "forbidden"  # client outside --ingest-allow
CAPACITY = "capacity"  # a --max-pending-* or --max-rockets limit was reached
STORAGE_FAILED = "storage_failed"  # the database could not store it
REASONS = (INVALID_JSON, INVALID_FIELD, INVALID_BODY, TOO_LARGE, FORBIDDEN, CAPACITY,
           STORAGE_FAILED)

_LEVELS = {CAPACITY: logging.WARNING, STORAGE_FAILED: logging.ERROR}


class Rejections:
    """Counts rejections by reason and logs each one, at most ``lines_per_second`` a second."""

    def __init__(self, lines_per_second: int = 10) -> None:
        self._lock = threading.Lock()
        self._counts = {reason: 0 for reason in REASONS}
        self.log = RateLimitedLogger(logger, lines_per_second)

    def record(self, reason: str, detail: str, client: str, channel: Optional[str] = None,
               message_number: Optional[int] = None) -> None:
        """Count one rejected message and log why; ``reason`` is one of ``REASONS``."""
        if reason not in self._counts:
            raise ValueError(f"unknown rejection reason {reason!r}; use one of {REASONS}")
        with self._lock:
            self._counts[reason] += 1
        extra = {"reason": reason, "client": client}
        if channel is not None:
            extra["channel"] = channel
            extra["messageNumber"] = message_number
        self.log.log(_LEVELS.get(reason, logging.INFO), "rejected message from %s: %s",
                     client, detail, extra=extra)

    def counts(self) -> Dict[str, int]:
        """Return the number of rejections so far by reason."""
        with self._lock:
            return dict(self._counts)

    def total(self) -> int:
        """Return the number of rejections so far."""
        with self._lock:
            return sum(self._counts.values())
