"""Bulk ingestion: detecting, decoding and responding to batch bodies of POST /messages.

``POST /messages`` takes a batch as a JSON array of messages, or as NDJSON
(``application/x-ndjson``, one message per line). This module splits such a
body into validated messages and per-message errors, and encodes the
per-message outcomes as the JSON array of the batch's response. It does not
apply messages (``lunar.fleet`` does) and does not read requests
(``lunar.api`` does).
"""

import json
import re
from typing import List, Optional, Union

from lunar.fleet import BatchOutcome, Outcome
from lunar.messages import (
    InvalidMessage,
    Message,
    decode_json_value,
    decode_message,
    decode_text,
    parse_message,
)

MAX_BATCH_MESSAGES = 10_000  # messages per batch; more get 413
DEFAULT_MAX_BATCH_BYTES = 16 * 1024 * 1024  # 16 MiB; the body limit for batches
NDJSON_MEDIA_TYPE = "application/x-ndjson"

ARRAY = "array"
NDJSON = "ndjson"

_JSON_WHITESPACE = re.compile(r"[ \t\n\r]*")
_LEADING_WHITESPACE = re.compile(rb"[ \t\n\r]*")
_NON_BLANK = re.compile(rb"[^ \t\n\r]")

_OUTCOME_JSON = {
    outcome: json.dumps({"outcome": outcome.value}, separators=(",", ":")).encode("utf-8")
    for outcome in Outcome
}

# One entry per message of a batch: the valid message, or why it is invalid.
BatchEntry = Union[Message, InvalidMessage]


class BatchTooLarge(ValueError):
    """Raised when a batch contains more messages than the limit allows."""


def batch_kind(body: bytes, content_type: Optional[str]) -> Optional[str]:
    """Return ``ARRAY`` or ``NDJSON`` for a batch body, or None for a single message.

    A body whose first non-blank byte is ``[`` is an array, whatever the
    content type. Under ``application/x-ndjson`` a body with more than one
    non-blank line is NDJSON; with one line it is a single message.
    """
    start = _LEADING_WHITESPACE.match(body).end()
    if body[start:start + 1] == b"[":
        return ARRAY
    if is_ndjson(content_type) and _has_two_lines(body, start):
        return NDJSON
    return None


def is_ndjson(content_type: Optional[str]) -> bool:
    """Tell whether a Content-Type header names ``application/x-ndjson``, parameters aside."""
    if content_type is None:
        return False
    return content_type.split(";", 1)[0].strip().lower() == NDJSON_MEDIA_TYPE


def decode_batch(body: bytes, kind: str, max_messages: int = MAX_BATCH_MESSAGES) -> List[BatchEntry]:
    """Split a batch body into its messages, each validated on its own.

    Raises ``InvalidMessage`` when the body as a whole cannot be split: an
    array that is not valid JSON, or a body that is not UTF-8. Raises
    ``BatchTooLarge`` past ``max_messages`` messages.
    """
    if kind == ARRAY:
        return _decode_array(decode_text(body), max_messages)
    if kind == NDJSON:
        return _decode_ndjson(body, max_messages)
    raise ValueError(f"unknown batch kind {kind!r}; expected {ARRAY!r} or {NDJSON!r}")


def encode_outcomes(outcomes: List[Union[BatchOutcome, InvalidMessage]]) -> bytes:
    """Encode per-message outcomes, in input order, as the JSON array of a batch's response."""
    parts = []
    for outcome in outcomes:
        encoded = _OUTCOME_JSON.get(outcome) if isinstance(outcome, Outcome) else None
        if encoded is None:
            if isinstance(outcome, InvalidMessage):
                document = {"outcome": "invalid", "error": str(outcome)}
            else:
                document = {"outcome": "refused", "error": outcome.error}
            encoded = json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        parts.append(encoded)
    return b"[" + b",".join(parts) + b"]"


def _decode_array(text: str, max_messages: int) -> List[BatchEntry]:
    # Each element is decoded on its own so that its exact text is kept as
    # the stored source, as for a single message.
    skip = _JSON_WHITESPACE.match
    position = skip(text, 0).end() + 1  # past the "["
    position = skip(text, position).end()
    entries: List[BatchEntry] = []
    if text[position:position + 1] == "]":
        position += 1
    else:
        while True:
            document, end = decode_json_value(text, position)
            if len(entries) == max_messages:
                raise BatchTooLarge(f"batch contains more than {max_messages} messages; "
                                    "split it into smaller batches")
            entries.append(_entry(document, text[position:end]))
            position = skip(text, end).end()
            separator = text[position:position + 1]
            if separator == "]":
                position += 1
                break
            if separator != ",":
                raise InvalidMessage(
                    f"body is not valid JSON: expected ',' or ']' after array element "
                    f"{len(entries)} at char {position}"
                )
            position = skip(text, position + 1).end()
    position = skip(text, position).end()
    if position != len(text):
        raise InvalidMessage(f"body is not valid JSON: extra data after the array at char {position}")
    return entries


def _entry(document: object, source: str) -> BatchEntry:
    if not isinstance(document, dict):
        # parse_message would name the whole body, but only this element is wrong.
        return InvalidMessage(f"array element must be a JSON object, got {source[:60]}")
    try:
        return parse_message(document, source)
    except InvalidMessage as error:
        return error


def _decode_ndjson(body: bytes, max_messages: int) -> List[BatchEntry]:
    entries: List[BatchEntry] = []
    for line in body.split(b"\n"):
        line = line.strip(b" \t\r")
        if not line:
            continue
        if len(entries) == max_messages:
            raise BatchTooLarge(f"batch contains more than {max_messages} messages; "
                                "split it into smaller batches")
        try:
            entries.append(decode_message(line))
        except InvalidMessage as error:
            entries.append(error)
    return entries


def _has_two_lines(body: bytes, start: int) -> bool:
    """Tell whether ``body`` has a second non-blank line after the first at ``start``."""
    end = body.find(b"\n", start)
    return end >= 0 and _NON_BLANK.search(body, end + 1) is not None
