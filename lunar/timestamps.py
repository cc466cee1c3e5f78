"""RFC 3339 timestamps as exact instants in nanoseconds.

The ``rockets`` program writes Go's RFC 3339 form with up to nine fractional
digits, which ``datetime`` can neither hold (it stops at microseconds) nor,
before Python 3.11, parse. This module turns such a string into an integer
count of nanoseconds since the Unix epoch so that instants compare exactly
across zone offsets. It does not format timestamps: lunar always echoes the
sender's original text.
"""

import datetime
import re
from typing import Dict

NANOSECONDS_PER_SECOND = 1_000_000_000
FRACTION_DIGITS = 9  # digits past nanoseconds are dropped, see parse_instant

_RFC3339 = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?"
    r"(?:([Zz])|([+-])(\d{2}):(\d{2}))",
    re.ASCII,
)
_EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)

SECONDS_CACHE_ENTRIES = 4096  # distinct whole-second texts kept before the cache is emptied
_SECONDS_BY_TEXT: Dict[str, int] = {}


class TimestampError(ValueError):
    """Raised when a string is not an RFC 3339 date-time with a zone."""


def parse_instant(text: str) -> int:
    """Parse an RFC 3339 date-time and return nanoseconds since the epoch.

    The zone is required (``Z`` or ``+hh:mm``/``-hh:mm``), as RFC 3339
    demands. Any number of fractional digits is accepted. Digits past the
    ninth are truncated, so two instants that differ only below a nanosecond
    compare equal. A leap second (``:60``) counts as the first instant of the
    next minute.
    """
    match = _RFC3339.fullmatch(text)
    if match is None:
        raise TimestampError(
            f"{text!r} is not an RFC 3339 date-time such as "
            "'2025-04-02T09:21:50.458989221+02:00'"
        )
    fraction = match[7]
    # Senders put many messages in the same second, so the whole seconds are
    # cached by the text without its fraction. Only valid texts are cached.
    key = text if fraction is None else text[:match.start(7) - 1] + text[match.end(7):]
    seconds = _SECONDS_BY_TEXT.get(key)
    if seconds is None:
        seconds = _epoch_seconds(text, match)
        if len(_SECONDS_BY_TEXT) >= SECONDS_CACHE_ENTRIES:
            _SECONDS_BY_TEXT.clear()
        _SECONDS_BY_TEXT[key] = seconds
    nanoseconds = int((fraction or "0")[:FRACTION_DIGITS].ljust(FRACTION_DIGITS, "0"))
    return seconds * NANOSECONDS_PER_SECOND + nanoseconds


def _epoch_seconds(text: str, match: "re.Match[str]") -> int:
    """Return the whole seconds since the epoch of a matched date-time, checking its fields."""
    year, month, day, hour, minute, second = (int(match[i]) for i in range(1, 7))
    utc, sign = match[8], match[9]

    if second > 60:
        raise TimestampError(f"{text!r} has an invalid second {second}")
    leap_second = second == 60
    try:
        moment = datetime.datetime(
            year, month, day, hour, minute, 59 if leap_second else second,
            tzinfo=datetime.timezone.utc,
        )
    except ValueError as error:
        raise TimestampError(f"{text!r} is not a valid date-time: {error}") from None

    offset_seconds = 0
    if not utc:
        offset_hours, offset_minutes = int(match[10]), int(match[11])
        if offset_hours > 23 or offset_minutes > 59:
            raise TimestampError(f"{text!r} has an invalid zone offset")
        offset_seconds = offset_hours * 3600 + offset_minutes * 60
        if sign == "-":
            offset_seconds = -offset_seconds

    delta = moment - _EPOCH
    return delta.days * 86_400 + delta.seconds + leap_second - offset_seconds
