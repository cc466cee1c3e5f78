"""JSON encoding of rocket messages and the messageTime clock.

The body is split around messageTime so a sender only adds the send time.
This module does not send anything.
"""

import functools
import json
import time
from typing import Dict, Tuple, Union

NANOSECONDS_PER_SECOND = 1_000_000_000
SECONDS_PER_MINUTE = 60
JSON_CACHE_ENTRIES = 4096  # encoded channels, types and payloads kept per process


def encode_body_parts(
    channel: str,
    number: int,
    message_type: str,
    payload: Dict[str, Union[str, int]],
) -> Tuple[bytes, bytes]:
    """Encode a message body as the bytes before and after the messageTime value.

    The result, joined around a time, has the key order and spacing of the
    real program's bodies: metadata (channel, messageNumber, messageTime,
    messageType), then message.
    """
    head = (
        '{"metadata": {"channel": ' + _json_string(channel)
        + ', "messageNumber": ' + str(int(number))
        + ', "messageTime": "'
    )
    tail = (
        '", "messageType": ' + _json_string(message_type)
        + '}, "message": ' + _json_object(tuple((key, type(value), value) for key, value in payload.items()))
        + "}"
    )
    return head.encode("utf-8"), tail.encode("utf-8")


# A run has few channels, types and payloads, and json.dumps was the largest
# cost of generating a message, so the encoded texts are cached.
@functools.lru_cache(maxsize=JSON_CACHE_ENTRIES)
def _json_string(text: str) -> str:
    return json.dumps(text)


@functools.lru_cache(maxsize=JSON_CACHE_ENTRIES)
def _json_object(items: Tuple[Tuple[str, type, Union[str, int]], ...]) -> str:
    # The types are part of the key because 1, 1.0 and True are equal keys but encode differently.
    return json.dumps({key: value for key, _, value in items})


def format_utc_offset(offset_seconds: int) -> str:
    """Format a UTC offset in seconds as ``Z`` for zero, else as ``+02:00`` or ``-05:30``.

    This matches Go's RFC 3339 layouts, which print ``Z`` for any zero offset
    (``offset == 0`` in the zone case of ``Time.Format`` in time/format.go).
    """
    if offset_seconds == 0:
        return "Z"
    sign = "+" if offset_seconds > 0 else "-"
    minutes = abs(offset_seconds) // SECONDS_PER_MINUTE
    hours, minutes = divmod(minutes, SECONDS_PER_MINUTE)
    return f"{sign}{hours:02d}:{minutes:02d}"


def format_message_time(time_ns: int) -> str:
    """Format a time in ns since the epoch as local RFC 3339 time with 9 fractional digits."""
    second, fraction = divmod(time_ns, NANOSECONDS_PER_SECOND)
    local = time.localtime(second)
    offset = format_utc_offset(local.tm_gmtoff)
    return time.strftime("%Y-%m-%dT%H:%M:%S", local) + f".{fraction:09d}{offset}"


class MessageClock:
    """Current local time as messageTime bytes, cheap to call many times a second.

    The date, time of day and offset are cached per whole second, so most
    calls only format the nanoseconds. An instance is not thread-safe, so
    give each sender thread its own.
    """

    def __init__(self) -> None:
        self._second = -1
        self._prefix = b""
        self._offset = b""

    def now(self) -> bytes:
        """Return the current time as ``2025-04-02T09:21:50.458989221+02:00`` bytes."""
        second, fraction = divmod(time.time_ns(), NANOSECONDS_PER_SECOND)
        if second != self._second:
            local = time.localtime(second)
            self._prefix = time.strftime("%Y-%m-%dT%H:%M:%S.", local).encode("ascii")
            self._offset = format_utc_offset(local.tm_gmtoff).encode("ascii")
            self._second = second
        return b"%s%09d%s" % (self._prefix, fraction, self._offset)
