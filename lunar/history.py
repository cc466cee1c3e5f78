"""A rocket's stored messages as GET /rockets/<channel>/messages returns them.

Each stored message becomes a JSON object with its number, type and time,
when lunar received it, whether it is applied or still buffered behind a
gap, and the message as the sender posted it. This module does not read the
journal: ``ControlCenter.stored_messages`` does.
"""

import datetime
import json
from typing import Any, Dict, List

from lunar.fleet import MessagePage

APPLIED = "applied"
BUFFERED = "buffered"


def message_list(page: MessagePage) -> List[Dict[str, Any]]:
    """Return the JSON objects of one page of stored messages, in message-number order."""
    return [
        _message_json(stored.number, stored.received_at, stored.body, page.last_message_number)
        for stored in page.messages
    ]


def format_received_at(unix_seconds: float) -> str:
    """Return a Unix time as RFC 3339 in UTC with microseconds, such as 2025-04-02T07:21:50.458989Z."""
    moment = datetime.datetime.fromtimestamp(unix_seconds, datetime.timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _message_json(number: int, received_at: float, body: str, last_message_number: int) -> Dict[str, Any]:
    # The body was validated before it was stored, so its metadata is complete.
    message = json.loads(body)
    metadata = message["metadata"]
    return {
        "messageNumber": number,
        "messageType": metadata["messageType"],
        "messageTime": metadata["messageTime"],
        "receivedAt": format_received_at(received_at),
        "state": APPLIED if number <= last_message_number else BUFFERED,
        "message": message,
    }
