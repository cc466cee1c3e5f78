"""Telemetry messages: decoding and validating what the ``rockets`` program sends.

A message is a JSON object with a ``metadata`` envelope (channel, message
number, message time and message type) and a ``message`` payload. This module
turns raw request bytes into a checked, immutable ``Message`` or raises
``InvalidMessage`` naming the offending field. It does not apply messages to
rocket state: ``lunar.fleet`` does that.
"""

import json
import math
from typing import Any, Dict, NamedTuple, Optional, Tuple

from lunar.timestamps import TimestampError, parse_instant

MAX_MESSAGE_NUMBER = 2**63 - 1  # fits SQLite's signed 64-bit INTEGER
MAX_ABSOLUTE_SPEED = 1e12  # bounds launchSpeed and `by`, so no sum reaches infinity

ROCKET_LAUNCHED = "RocketLaunched"
ROCKET_SPEED_INCREASED = "RocketSpeedIncreased"
ROCKET_SPEED_DECREASED = "RocketSpeedDecreased"
ROCKET_EXPLODED = "RocketExploded"
ROCKET_MISSION_CHANGED = "RocketMissionChanged"

# The payload fields each known message type must carry, and their kinds.
PAYLOAD_FIELDS: Dict[str, Dict[str, str]] = {
    ROCKET_LAUNCHED: {"type": "text", "launchSpeed": "speed", "mission": "text"},
    ROCKET_SPEED_INCREASED: {"by": "speed"},
    ROCKET_SPEED_DECREASED: {"by": "speed"},
    ROCKET_EXPLODED: {"reason": "text"},
    ROCKET_MISSION_CHANGED: {"newMission": "text"},
}


class InvalidMessage(ValueError):
    """Raised when a request body is not an acceptable telemetry message."""


class InvalidJson(InvalidMessage):
    """Raised when a request body is not UTF-8 JSON with finite numbers."""


class Message(NamedTuple):
    """One validated telemetry message.

    ``time`` is the sender's messageTime text, kept exactly as sent, and
    ``instant`` is the same moment in nanoseconds since the epoch. ``source``
    is the message's JSON text, kept so that stored messages can be replayed.
    """

    channel: str
    number: int
    type: str
    time: str
    instant: int
    payload: Dict[str, Any]
    source: str


def decode_text(raw: bytes) -> str:
    """Decode a request body as UTF-8, raising ``InvalidMessage`` if it is not."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise InvalidJson(
            f"body is not valid UTF-8: byte {error.start} is invalid"
        ) from None


def decode_json(text: str) -> Any:
    """Decode a JSON document, rejecting non-finite numbers.

    Raises ``InvalidMessage`` for invalid JSON, ``NaN``, ``Infinity``,
    numbers too large for a float (``1e400``) and documents nested too deeply
    for the parser.
    """
    if not text.strip():
        raise InvalidJson("body is empty; send one JSON message object")
    if text.startswith("\ufeff"):
        # json.loads rejects a byte order mark with this message; the decoder alone would not.
        raise InvalidMessage("body is not valid JSON: Unexpected UTF-8 BOM "
                             "(decode using utf-8-sig): line 1 column 1 (char 0)")
    try:
        return _DECODER.decode(text)
    except json.JSONDecodeError as error:
        raise InvalidJson(f"body is not valid JSON: {error}") from None
    except RecursionError:
        raise InvalidJson("body is not valid JSON: nested too deeply") from None
    except InvalidMessage:
        raise
    except ValueError as error:  # for example an integer with too many digits
        raise InvalidJson(f"body is not valid JSON: {error}") from None


def decode_json_value(text: str, start: int) -> Tuple[Any, int]:
    """Decode the one JSON value that starts at ``start`` and return it with its end index.

    Raises ``InvalidMessage`` like ``decode_json``. The caller skips any
    whitespace before ``start``.
    """
    try:
        return _DECODER.raw_decode(text, start)
    except json.JSONDecodeError as error:
        raise InvalidMessage(f"body is not valid JSON: {error}") from None
    except RecursionError:
        raise InvalidMessage("body is not valid JSON: nested too deeply") from None
    except InvalidMessage:
        raise
    except ValueError as error:
        raise InvalidMessage(f"body is not valid JSON: {error}") from None


def decode_message(raw: bytes) -> "Message":
    """Decode and check one message from a request body."""
    text = decode_text(raw)
    return parse_message(decode_json(text), text)


def parse_message(document: Any, source: str) -> Message:
    """Check a decoded JSON document and return it as a ``Message``.

    ``source`` is the document's JSON text, stored with the message.
    Raises ``InvalidMessage`` naming the first field that is missing or has
    the wrong type or value.
    """
    if not isinstance(document, dict):
        raise InvalidMessage(
            f"body must be a JSON object, not {_json_kind(document)}"
        )
    metadata = document.get("metadata")
    if not isinstance(metadata, dict):
        raise InvalidMessage(_wrong_kind("metadata", metadata, "an object"))

    channel = _required_text(metadata, "channel", "metadata.channel")
    number = metadata.get("messageNumber")
    if type(number) is not int:  # bool is an int subclass and is rejected too
        raise InvalidMessage(
            _wrong_kind("metadata.messageNumber", number, "an integer")
        )
    if not 1 <= number <= MAX_MESSAGE_NUMBER:
        raise InvalidMessage(
            f"metadata.messageNumber must be from 1 to {MAX_MESSAGE_NUMBER}, "
            f"got {number}"
        )
    message_type = _required_text(metadata, "messageType", "metadata.messageType")
    time = _required_text(metadata, "messageTime", "metadata.messageTime")
    try:
        instant = parse_instant(time)
    except TimestampError as error:
        raise InvalidMessage(f"metadata.messageTime: {error}") from None

    payload = document.get("message")
    if not isinstance(payload, dict):
        raise InvalidMessage(_wrong_kind("message", payload, "an object"))
    for field, kind in PAYLOAD_FIELDS.get(message_type, {}).items():
        if kind == "text":
            _required_text(payload, field, f"message.{field}")
        else:
            _required_speed(payload, field, f"message.{field}")

    return Message(channel, number, message_type, time, instant, payload, source)


def _required_text(container: Dict[str, Any], key: str, name: str) -> str:
    value = container.get(key)
    if not isinstance(value, str) or not value:
        raise InvalidMessage(_wrong_kind(name, value, "a non-empty string"))
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as error:
        # A JSON escape such as "\ud800" decodes to a lone surrogate, which
        # no UTF-8 response can carry, so every later GET would fail.
        raise InvalidMessage(
            f"{name} must be valid Unicode text, but it contains the lone "
            f"surrogate \\u{ord(value[error.start]):04x}"
        ) from None
    return value


def _required_speed(container: Dict[str, Any], key: str, name: str) -> float:
    value = container.get(key)
    if type(value) not in (int, float):
        raise InvalidMessage(_wrong_kind(name, value, "a number"))
    if not abs(value) <= MAX_ABSOLUTE_SPEED:
        raise InvalidMessage(
            f"{name} must be at most {MAX_ABSOLUTE_SPEED:g} in absolute value, "
            f"got {value}"
        )
    return value


def _wrong_kind(name: str, value: Any, expected: str) -> str:
    if value is None:
        return f"{name} is missing or null; it must be {expected}"
    shown = json.dumps(value)
    if len(shown) > 60:
        shown = shown[:57] + "..."
    return f"{name} must be {expected}, got {_json_kind(value)} {shown}"


def _json_kind(value: Any) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string" if value else "an empty string"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return "null"


def _reject_constant(name: str) -> Optional[float]:
    raise InvalidJson(f"body is not valid JSON: {name} is not a finite number")


def _parse_finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise InvalidJson(
            f"body is not valid JSON: {text} is too large for a finite number"
        )
    return value


# Built once: json.loads with hooks would build a new decoder for every body.
_DECODER = json.JSONDecoder(parse_constant=_reject_constant, parse_float=_parse_finite_float)
