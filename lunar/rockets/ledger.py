"""Expected rocket state, built from the messages that the server acknowledged.

The ledger applies each rocket's acknowledged messages in message number
order, as the server must, and stops at the first message that was never
acknowledged. It does not talk HTTP and does not compare with the server.
"""

import threading
from typing import Dict, Iterable, Iterator, List, Optional

from lunar.rockets import generator
from lunar.rockets.generator import Message

STATUS_PENDING = "pending"
STATUS_LAUNCHED = "launched"
STATUS_EXPLODED = "exploded"


class RocketState:
    """Rocket state after applying messages 1 to ``last_message_number`` in order."""

    __slots__ = ("channel", "type", "speed", "mission", "status", "explosion_reason", "last_message_number")

    def __init__(self, channel: str) -> None:
        self.channel = channel
        self.type: Optional[str] = None
        self.speed = 0
        self.mission: Optional[str] = None
        self.status = STATUS_PENDING
        self.explosion_reason: Optional[str] = None
        self.last_message_number = 0

    def apply(self, message: Message) -> None:
        """Apply the next message of this rocket; raise ValueError if it is out of order."""
        if message.channel != self.channel:
            raise ValueError(f"message for channel {message.channel} applied to rocket {self.channel}")
        if message.number != self.last_message_number + 1:
            raise ValueError(
                f"message {message.number} of channel {self.channel} applied after "
                f"message {self.last_message_number}"
            )
        payload = message.payload
        message_type = message.message_type
        if message_type == generator.ROCKET_LAUNCHED:
            self.type = str(payload["type"])
            self.speed = int(payload["launchSpeed"])
            self.mission = str(payload["mission"])
            self.status = STATUS_LAUNCHED
        elif message_type == generator.ROCKET_SPEED_INCREASED:
            self.speed += int(payload["by"])
        elif message_type == generator.ROCKET_SPEED_DECREASED:
            self.speed -= int(payload["by"])
        elif message_type == generator.ROCKET_MISSION_CHANGED:
            self.mission = str(payload["newMission"])
        elif message_type == generator.ROCKET_EXPLODED:
            self.status = STATUS_EXPLODED
            self.explosion_reason = str(payload["reason"])
        else:
            raise ValueError(f"unknown message type {message_type!r} on channel {self.channel}")
        self.last_message_number = message.number


class _RocketRecord:
    """Ledger entry of one channel: generated count, expected state, held acknowledgments."""

    __slots__ = ("state", "generated", "held", "launch")

    def __init__(self, channel: str) -> None:
        self.state = RocketState(channel)
        self.generated = 0
        self.launch: Optional[Message] = None
        # Acknowledged messages that wait for an earlier message number.
        self.held: Dict[int, Message] = {}


class Ledger:
    """Generated and acknowledged messages per channel, and the expected state.

    ``track`` runs in the generating thread and ``acknowledge`` in any sender
    thread. A lock guards both.
    """

    def __init__(self, channels: Iterable[str]) -> None:
        self._lock = threading.Lock()
        self._records: Dict[str, _RocketRecord] = {channel: _RocketRecord(channel) for channel in channels}
        self.generated = 0
        self.acknowledged = 0

    def track(self, messages: Iterable[Message]) -> Iterator[Message]:
        """Count each message as generated and pass it on."""
        for message in messages:
            with self._lock:
                record = self._records[message.channel]
                record.generated = max(record.generated, message.number)
                if message.number == 1:
                    record.launch = message
                self.generated += 1
            yield message

    def acknowledge(self, message: Message) -> None:
        """Record a 2xx response for ``message``; repeated acknowledgments count once."""
        with self._lock:
            if message.acknowledged:
                return
            message.acknowledged = True
            self.acknowledged += 1
            record = self._records[message.channel]
            state = record.state
            if message.number != state.last_message_number + 1:
                record.held[message.number] = message
                return
            state.apply(message)
            while state.last_message_number + 1 in record.held:
                state.apply(record.held.pop(state.last_message_number + 1))

    @property
    def lost(self) -> int:
        """Count the generated messages that were never acknowledged."""
        with self._lock:
            return self.generated - self.acknowledged

    def channels(self) -> List[str]:
        """Return the channels in rocket index order."""
        return list(self._records)

    def expected_state(self, channel: str) -> RocketState:
        """Return the state the server should hold for ``channel``."""
        return self._records[channel].state

    def launch_times(self, channel: str) -> List[str]:
        """Return every messageTime this run sent with the launch of ``channel``."""
        launch = self._records[channel].launch
        return [] if launch is None else list(launch.launch_times)

    def generated_count(self, channel: str) -> int:
        """Return the highest message number generated for ``channel``."""
        return self._records[channel].generated

    def held_count(self, channel: str) -> int:
        """Count acknowledged messages of ``channel`` stuck behind a lost one."""
        return len(self._records[channel].held)
