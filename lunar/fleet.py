"""The fleet: rocket state and the control center that applies messages in order.

Theory of operation
-------------------
Each rocket (one ``channel``) has a sequence of messages numbered from 1. The
control center applies them strictly in message-number order. A message that
arrives early waits in its rocket's heap of pending messages until the gap
before it fills. The drain then pops the heap in a loop while its head is the
next expected number, so a gap of any depth drains without recursion.

Invariants, checked by ``Rocket.check_invariants`` in the tests:

1. Every pending number is greater than ``last_message_number + 1``: the
   next expected message is never left waiting in the heap.
2. ``pending_numbers`` contains exactly the numbers in the heap, each once.
3. Once ``status`` is ``exploded`` it never changes again.

A message is recorded in the journal before any state changes, so a failed
write leaves the fleet exactly as it was. A batch (``receive_batch``) works
out every touched rocket's final state in a ``_RocketDraft`` first, then
records all its messages and states in one journal write, then installs
them. This module does not depend on HTTP or SQLite.
"""

import enum
import heapq
import logging
import threading
from typing import TYPE_CHECKING, Any, Callable, Dict, Iterable, List, NamedTuple, Optional, Sequence, Set, Tuple, Union

from lunar.messages import (
    ROCKET_EXPLODED,
    ROCKET_LAUNCHED,
    ROCKET_MISSION_CHANGED,
    ROCKET_SPEED_DECREASED,
    ROCKET_SPEED_INCREASED,
    Message,
)

if TYPE_CHECKING:
    from lunar.store import StoredMessage

logger = logging.getLogger(__name__)

PENDING = "pending"
LAUNCHED = "launched"
EXPLODED = "exploded"

MAX_EXACT_FLOAT = 2**53  # integral floats up to here render as JSON integers


class JournalError(Exception):
    """Raised by a journal when it could not record a message durably."""


class CapacityError(Exception):
    """Raised when accepting a message would exceed one of the fleet's ``Limits``.

    ``limit_name`` is the ``Limits`` field that was reached and ``limit`` its
    value. Nothing was recorded or changed.
    """

    def __init__(self, message: str, limit_name: str, limit: int) -> None:
        super().__init__(message)
        self.limit_name = limit_name
        self.limit = limit


class Limits(NamedTuple):
    """Caps on what the fleet keeps in memory.

    A message that is the next expected number of a known rocket is never
    refused, because applying it can only shrink the buffers.
    """

    max_pending_per_rocket: int = 1_000_000  # messages waiting behind one rocket's gap
    max_pending_total: int = 10_000_000  # messages waiting behind all gaps together
    max_rockets: int = 1_000_000  # channels known to the fleet


class Outcome(enum.Enum):
    """The control center's handling of a received message."""

    APPLIED = "applied"
    BUFFERED = "buffered"
    DUPLICATE = "duplicate"


class Refusal(NamedTuple):
    """A message of a batch that a capacity limit refused; nothing of it was recorded."""

    error: str  # names the limit that refused the message


# The result of ``ControlCenter.receive_batch`` for one message of a batch.
BatchOutcome = Union[Outcome, Refusal]


class RocketState(NamedTuple):
    """The applied state of one rocket, replaced whole on every change."""

    type: Optional[str] = None
    speed: Optional[float] = None
    mission: Optional[str] = None
    status: str = PENDING
    explosion_reason: Optional[str] = None
    launch_time: Optional[str] = None
    launch_instant: Optional[int] = None
    last_message_number: int = 0
    last_message_time: Optional[str] = None


class Journal:
    """The record of accepted messages, written before they take effect.

    This base class records nothing, which suits tests of the domain rules;
    ``lunar.store.SQLiteJournal`` is the durable one. Implementations raise
    ``JournalError`` when a message could not be recorded.
    """

    def record(self, message: Message, state: Optional[RocketState]) -> None:
        """Record an accepted message and, if given, its rocket's new state.

        ``state`` is the rocket's state after the message and any drained
        followers were applied. It is None when a known rocket only buffered
        the message, because then its state did not change.
        """

    def record_batch(self, messages: Sequence[Message], states: Sequence[Tuple[str, RocketState]]) -> None:
        """Record the accepted messages of a batch and the final state of each changed rocket.

        Everything is recorded at once or, on ``JournalError``, nothing is.
        """

    def save_state(self, channel: str, state: RocketState) -> None:
        """Record a rocket's state without a new message."""

    def read_messages(self, channel: str, offset: int = 0, limit: int = 100) -> List["StoredMessage"]:
        """Return stored messages of one rocket in message-number order.

        This base class stores no message, so it returns an empty list.
        """
        return []

    def count_messages(self, channel: Optional[str] = None) -> int:
        """Return how many messages are stored, for one rocket or for all: always 0 here."""
        return 0


class Rocket:
    """One rocket: its applied state and the messages waiting behind a gap."""

    def __init__(self, channel: str, state: Optional[RocketState] = None) -> None:
        self.channel = channel
        self.state = state or RocketState()
        self.pending_heap: List[Tuple[int, Message]] = []
        self.pending_numbers = set()

    def has_seen(self, number: int) -> bool:
        """Tell whether a message number was already applied or buffered."""
        return number <= self.state.last_message_number or number in self.pending_numbers

    def buffer(self, message: Message) -> None:
        """Keep an early message until the gap before it fills."""
        # Numbers are unique within the heap, so the message itself is never compared.
        heapq.heappush(self.pending_heap, (message.number, message))
        self.pending_numbers.add(message.number)

    def check_invariants(self) -> None:
        """Raise AssertionError if the rocket breaks a documented invariant."""
        heap_numbers = [number for number, _ in self.pending_heap]
        assert len(heap_numbers) == len(self.pending_numbers), (
            f"{self.channel}: heap holds {len(heap_numbers)} entries but "
            f"pending_numbers holds {len(self.pending_numbers)}"
        )
        assert set(heap_numbers) == self.pending_numbers, (
            f"{self.channel}: heap and pending_numbers disagree"
        )
        next_number = self.state.last_message_number + 1
        assert all(number > next_number for number in heap_numbers), (
            f"{self.channel}: message {next_number} is pending but could be applied"
        )

    def to_json(self) -> Dict[str, Any]:
        """Return the rocket as the API's JSON object."""
        state = self.state
        return {
            "channel": self.channel,
            "type": state.type,
            "speed": _json_number(state.speed),
            "mission": state.mission,
            "status": state.status,
            "explosionReason": state.explosion_reason,
            "launchTime": state.launch_time,
            "lastMessageNumber": state.last_message_number,
            "lastMessageTime": state.last_message_time,
            "pendingMessages": len(self.pending_numbers),
        }

    def launch_order(self) -> Tuple[bool, int, str]:
        """Sort key: launched rockets by launch instant, then channel; pending last."""
        instant = self.state.launch_instant
        return (instant is None, instant or 0, self.channel)


class MessagePage(NamedTuple):
    """A page of one rocket's stored messages, with the total and the last applied number."""

    messages: List["StoredMessage"]
    total: int  # all messages stored for the rocket, not only this page's
    last_message_number: int  # messages numbered up to this one are applied


# Listeners receive each rocket whose applied state changed, under the lock.
RocketListener = Callable[[Rocket], None]


class ControlCenter:
    """The fleet's state: applies each rocket's messages in message-number order.

    One re-entrant lock guards every rocket, its pending heap and the counters;
    every public method takes it, so readers always see a consistent fleet.
    It is re-entrant so that listeners and the journal may call back into
    read methods while a message is being applied.
    """

    def __init__(self, journal: Optional[Journal] = None, limits: Optional[Limits] = None) -> None:
        self._lock = threading.RLock()
        self._journal = journal if journal is not None else Journal()
        self._limits = limits if limits is not None else Limits()
        self._rockets_by_channel: Dict[str, Rocket] = {}
        self._listeners: List[RocketListener] = []
        self.outcome_counts = {outcome: 0 for outcome in Outcome}
        self._pending_total = 0
        self._status_counts = {PENDING: 0, LAUNCHED: 0, EXPLODED: 0}
        self._capacity_warned: Set[str] = set()  # channels, and "" for the rocket cap

    # -- ingestion ------------------------------------------------------------

    def receive(self, message: Message) -> Outcome:
        """Record and apply, buffer or ignore one message.

        Raises ``JournalError`` when the message could not be recorded and
        ``CapacityError`` when holding it would exceed a limit. In both cases
        nothing changed and the message must not be acknowledged.
        """
        with self._lock:
            rocket = self._rockets_by_channel.get(message.channel)
            is_new = rocket is None
            if is_new:
                self._check_rocket_room(message)
                rocket = Rocket(message.channel)
            elif rocket.has_seen(message.number):
                logger.debug(
                    "duplicate message %d on channel %s ignored",
                    message.number, message.channel,
                )
                self.outcome_counts[Outcome.DUPLICATE] += 1
                return Outcome.DUPLICATE

            if message.number != rocket.state.last_message_number + 1:
                self._check_pending_room(rocket, message)
                # A new rocket's first state is saved even when nothing applies,
                # so that every stored message belongs to a saved rocket.
                self._journal.record(message, rocket.state if is_new else None)
                rocket.buffer(message)
                self._pending_total += 1
                if is_new:
                    self._rockets_by_channel[rocket.channel] = rocket
                    self._status_counts[rocket.state.status] += 1
                self.outcome_counts[Outcome.BUFFERED] += 1
                return Outcome.BUFFERED

            applied = apply_message(rocket.channel, rocket.state, message)
            state, drained = self._drain(rocket, applied)
            try:
                self._journal.record(message, state)
            except BaseException:
                self._push_back(rocket, drained)
                raise
            self._commit_drain(rocket, state, drained)
            self.outcome_counts[Outcome.APPLIED] += 1
            return Outcome.APPLIED

    def receive_batch(self, messages: Sequence[Message]) -> List[BatchOutcome]:
        """Record a batch of messages in one journal write, then apply or buffer them.

        Messages are taken in order, so a second copy of a number within the
        batch is a duplicate. An outcome describes the fleet after the whole
        batch: a message that waited behind a gap that a later message of the
        same batch filled is applied. Raises ``JournalError`` when the batch
        could not be recorded, in which case nothing changed and no message
        of the batch may be acknowledged.
        """
        with self._lock:
            drafts: Dict[str, _RocketDraft] = {}
            outcomes: List[BatchOutcome] = []
            accepted: List[Message] = []
            for message in messages:
                draft = drafts.get(message.channel)
                if draft is None:
                    draft = _RocketDraft(message.channel, self._rockets_by_channel.get(message.channel))
                    drafts[message.channel] = draft
                if draft.has_seen(message.number):
                    outcomes.append(Outcome.DUPLICATE)
                    continue
                refusal = self._batch_refusal(drafts, draft, message)
                if refusal is not None:
                    outcomes.append(refusal)
                    continue
                accepted.append(message)
                draft.accepted += 1
                if message.number == draft.state.last_message_number + 1:
                    outcomes.append(Outcome.APPLIED)
                    for index in draft.apply(message):
                        outcomes[index] = Outcome.APPLIED
                else:
                    draft.buffered[message.number] = (len(outcomes), message)
                    outcomes.append(Outcome.BUFFERED)

            changed = [draft for draft in drafts.values() if draft.accepted]
            if accepted:
                try:
                    self._journal.record_batch(accepted, [
                        (draft.channel, draft.state) for draft in changed
                        if draft.rocket is None or draft.state is not draft.initial_state
                    ])
                except BaseException:
                    for draft in drafts.values():
                        if draft.rocket is not None:
                            self._push_back(draft.rocket, draft.drained)
                    raise
            for draft in changed:
                self._install_draft(draft)
            for outcome in outcomes:
                if isinstance(outcome, Outcome):
                    self.outcome_counts[outcome] += 1
            return outcomes

    def _batch_refusal(self, drafts: Dict[str, "_RocketDraft"], draft: "_RocketDraft",
                       message: Message) -> Optional[Refusal]:
        """Return why a capacity limit refuses ``message`` within a batch, or None.

        Caller holds the lock. The counts add what the batch so far would
        change: its new rockets, the messages it buffers and those it drains.
        """
        if draft.rocket is None and not draft.accepted:
            new_rockets = sum(1 for other in drafts.values() if other.rocket is None and other.accepted)
            error = self._rocket_limit_error(message, len(self._rockets_by_channel) + new_rockets)
            if error is not None:
                return Refusal(str(error))
        if message.number != draft.state.last_message_number + 1:
            held = len(draft.rocket.pending_numbers) if draft.rocket is not None else 0
            total = self._pending_total + sum(
                len(other.buffered) - len(other.drained) for other in drafts.values())
            error = self._pending_limit_error(
                draft.channel, draft.state, message,
                held - len(draft.drained) + len(draft.buffered), total)
            if error is not None:
                return Refusal(str(error))
        return None

    def _install_draft(self, draft: "_RocketDraft") -> None:
        """Make a recorded draft the rocket's state. Caller holds the lock."""
        rocket = draft.rocket
        if rocket is None:
            rocket = Rocket(draft.channel, draft.initial_state)
            self._rockets_by_channel[draft.channel] = rocket
            self._status_counts[rocket.state.status] += 1
        for _, message in draft.buffered.values():
            rocket.buffer(message)
        self._pending_total += len(draft.buffered)
        if draft.state is not draft.initial_state:
            self._commit_drain(rocket, draft.state, draft.drained)

    def restore(self, states: Iterable[Tuple[str, RocketState]], pending: Iterable[Message]) -> None:
        """Load rocket states and buffered messages read back from a journal.

        Nothing is recorded again. Buffered messages that turn out to be next
        in line are applied, and the resulting state is recorded.
        """
        with self._lock:
            for channel, state in states:
                self._rockets_by_channel[channel] = Rocket(channel, state)
            for message in pending:
                rocket = self._rockets_by_channel.setdefault(
                    message.channel, Rocket(message.channel)
                )
                if not rocket.has_seen(message.number):
                    rocket.buffer(message)
            for rocket in self._rockets_by_channel.values():
                state, drained = self._drain(rocket, rocket.state)
                if drained:  # only if a crash split a message from its state
                    try:
                        self._journal.save_state(rocket.channel, state)
                    except BaseException:
                        self._push_back(rocket, drained)
                        raise
                    self._commit_drain(rocket, state, drained)
            self._pending_total = sum(
                len(rocket.pending_numbers) for rocket in self._rockets_by_channel.values()
            )
            self._status_counts = {PENDING: 0, LAUNCHED: 0, EXPLODED: 0}
            for rocket in self._rockets_by_channel.values():
                self._status_counts[rocket.state.status] += 1

    def add_listener(self, listener: RocketListener) -> None:
        """Call ``listener`` with each rocket whose applied state changes."""
        with self._lock:
            self._listeners.append(listener)

    def _drain(self, rocket: Rocket, state: RocketState) -> Tuple[RocketState, List[Message]]:
        """Apply pending messages while the heap's head is the next number.

        Caller holds the lock. The popped messages are returned so that the
        caller can push them back if recording fails; ``pending_numbers`` is
        left alone until ``_commit_drain``.
        """
        heap = rocket.pending_heap
        drained = []
        while heap and heap[0][0] == state.last_message_number + 1:
            _, message = heapq.heappop(heap)
            drained.append(message)
            state = apply_message(rocket.channel, state, message)
        return state, drained

    def _push_back(self, rocket: Rocket, drained: List[Message]) -> None:
        """Return drained messages to the heap after a failed write. Caller holds the lock."""
        for message in drained:
            heapq.heappush(rocket.pending_heap, (message.number, message))

    def _commit_drain(self, rocket: Rocket, state: RocketState, drained: List[Message]) -> None:
        """Install a recorded state. Caller holds the lock."""
        for message in drained:
            rocket.pending_numbers.discard(message.number)
        self._pending_total -= len(drained)
        if self._rockets_by_channel.get(rocket.channel) is rocket:
            self._status_counts[rocket.state.status] -= 1
        self._status_counts[state.status] += 1
        rocket.state = state
        self._rockets_by_channel[rocket.channel] = rocket
        for listener in self._listeners:
            try:
                listener(rocket)
            except Exception:
                logger.exception("rocket listener failed for channel %s", rocket.channel)

    def _check_rocket_room(self, message: Message) -> None:
        """Raise ``CapacityError`` if the fleet already has as many rockets as allowed."""
        error = self._rocket_limit_error(message, len(self._rockets_by_channel))
        if error is not None:
            raise error

    def _check_pending_room(self, rocket: Rocket, message: Message) -> None:
        """Raise ``CapacityError`` if buffering ``message`` would exceed a pending limit."""
        error = self._pending_limit_error(rocket.channel, rocket.state, message,
                                          len(rocket.pending_numbers), self._pending_total)
        if error is not None:
            raise error

    def _rocket_limit_error(self, message: Message, rockets: int) -> Optional[CapacityError]:
        """Return the error for a new channel when ``rockets`` already fill the fleet.

        Caller holds the lock. Logs a warning the first time only.
        """
        limit = self._limits.max_rockets
        if rockets < limit:
            return None
        if "" not in self._capacity_warned:
            self._capacity_warned.add("")
            logger.warning(
                "the fleet has reached its maximum of %d rockets; messages of new channels are "
                "rejected until the limit is raised", limit,
                extra={"channel": message.channel, "messageNumber": message.number},
            )
        return CapacityError(
            f"the fleet already has {limit} rockets, the maximum, so channel "
            f"{message.channel!r} cannot be added", "max_rockets", limit,
        )

    def _pending_limit_error(self, channel: str, state: RocketState, message: Message,
                             rocket_pending: int, total_pending: int) -> Optional[CapacityError]:
        """Return the error for buffering ``message`` past a pending limit, or None.

        Caller holds the lock. Logs a warning once per rocket.
        """
        limits = self._limits
        if rocket_pending >= limits.max_pending_per_rocket:
            limit_name, limit = "max_pending_per_rocket", limits.max_pending_per_rocket
            text = (f"channel {channel!r} already holds {limit} messages waiting "
                    "behind a gap, the maximum per rocket")
        elif total_pending >= limits.max_pending_total:
            limit_name, limit = "max_pending_total", limits.max_pending_total
            text = (f"the fleet already holds {limit} messages waiting behind gaps, "
                    "the maximum in total")
        else:
            return None
        next_number = state.last_message_number + 1
        if channel not in self._capacity_warned:
            self._capacity_warned.add(channel)
            logger.warning(
                "%s; its messages other than number %d are rejected until the gap fills",
                text, next_number,
                extra={"channel": channel, "messageNumber": message.number},
            )
        return CapacityError(f"{text}; message {next_number} fills the gap and is "
                             "still accepted", limit_name, limit)

    # -- queries ---------------------------------------------------------------

    def counts(self) -> Tuple[Dict[str, int], int]:
        """Return the number of rockets by status and of messages waiting behind gaps."""
        with self._lock:
            return dict(self._status_counts), self._pending_total

    def rockets(self) -> List[Dict[str, Any]]:
        """Return every rocket as JSON, by launch time, then channel; pending last."""
        with self._lock:
            ordered = sorted(self._rockets_by_channel.values(), key=Rocket.launch_order)
            return [rocket.to_json() for rocket in ordered]

    def rocket(self, channel: str) -> Optional[Dict[str, Any]]:
        """Return one rocket as JSON, or None if the channel is unknown."""
        with self._lock:
            rocket = self._rockets_by_channel.get(channel)
            return None if rocket is None else rocket.to_json()

    def snapshot(self) -> List[Tuple[Dict[str, Any], RocketState]]:
        """Return every rocket as its JSON object and state, in no particular order.

        All rockets are read under one hold of the lock, so the list is one
        consistent moment of the fleet. Sorting and filtering happen outside.
        """
        with self._lock:
            return [(rocket.to_json(), rocket.state) for rocket in self._rockets_by_channel.values()]

    def stored_messages(self, channel: str, offset: int, limit: int) -> Optional[MessagePage]:
        """Read a page of one rocket's messages from the journal; None if the channel is unknown.

        The page, the count and the last applied number are read under the
        lock, so no message is recorded or applied between the three reads.
        """
        with self._lock:
            rocket = self._rockets_by_channel.get(channel)
            if rocket is None:
                return None
            return MessagePage(
                self._journal.read_messages(channel, offset, limit),
                self._journal.count_messages(channel),
                rocket.state.last_message_number,
            )

    def missions(self) -> List[str]:
        """Return current mission names, unique and sorted case-insensitively.

        When rockets spell one mission differently, the spelling that sorts
        first by code point is shown, so the result does not depend on order
        of arrival.
        """
        with self._lock:
            spellings: Dict[str, str] = {}
            for rocket in self._rockets_by_channel.values():
                mission = rocket.state.mission
                if mission is None:
                    continue
                key = mission.casefold()
                if key not in spellings or mission < spellings[key]:
                    spellings[key] = mission
            return [spellings[key] for key in sorted(spellings)]

    def mission_rockets(self, mission: str) -> List[Dict[str, Any]]:
        """Return the rockets whose current mission matches, case-insensitively."""
        key = mission.casefold()
        with self._lock:
            matching = [
                rocket for rocket in self._rockets_by_channel.values()
                if rocket.state.mission is not None and rocket.state.mission.casefold() == key
            ]
            matching.sort(key=Rocket.launch_order)
            return [rocket.to_json() for rocket in matching]

    def check_invariants(self) -> None:
        """Raise AssertionError if any rocket breaks a documented invariant."""
        with self._lock:
            for rocket in self._rockets_by_channel.values():
                rocket.check_invariants()


def apply_message(channel: str, state: RocketState, message: Message) -> RocketState:
    """Return the state after applying the next message of a rocket's sequence.

    The caller has checked that ``message.number`` is the next expected one.
    """
    assert message.number == state.last_message_number + 1, (
        f"{channel}: message {message.number} applied after {state.last_message_number}"
    )
    payload = message.payload
    # One _replace per message: copying the namedtuple costs more than the change.
    sequence = {"last_message_number": message.number, "last_message_time": message.time}

    if state.status == EXPLODED:
        logger.debug("channel %s exploded; message %d is a no-op", channel, message.number)
        return state._replace(**sequence)
    if message.type == ROCKET_LAUNCHED:
        if state.status == LAUNCHED:
            logger.warning(
                "channel %s: second RocketLaunched (message %d) ignored",
                channel, message.number,
            )
            return state._replace(**sequence)
        return state._replace(
            **sequence,
            type=payload["type"],
            speed=payload["launchSpeed"],
            mission=payload["mission"],
            status=LAUNCHED,
            launch_time=message.time,
            launch_instant=message.instant,
        )
    change = _CHANGES.get(message.type)
    if change is None:
        logger.warning(
            "channel %s: unknown message type %r (message %d) advances the sequence only",
            channel, message.type, message.number,
        )
        return state._replace(**sequence)
    if state.status == PENDING:
        logger.warning(
            "channel %s: %s (message %d) arrived before the launch and changes nothing",
            channel, message.type, message.number,
        )
        return state._replace(**sequence)
    return state._replace(**sequence, **change(state, payload))


# The fields each message type changes on a launched rocket, as _replace arguments.
_CHANGES: Dict[str, Callable[[RocketState, Dict[str, Any]], Dict[str, Any]]] = {
    ROCKET_SPEED_INCREASED: lambda state, payload: {"speed": state.speed + payload["by"]},
    ROCKET_SPEED_DECREASED: lambda state, payload: {"speed": state.speed - payload["by"]},
    ROCKET_EXPLODED: lambda state, payload: {"status": EXPLODED, "explosion_reason": payload["reason"]},
    ROCKET_MISSION_CHANGED: lambda state, payload: {"mission": payload["newMission"]},
}


def _json_number(value: Optional[float]) -> Optional[float]:
    """Render an integral float as an integer, so 1500.0 reads as 1500."""
    if isinstance(value, float) and value.is_integer() and abs(value) <= MAX_EXACT_FLOAT:
        return int(value)
    return value


class _RocketDraft:
    """A rocket as a batch would leave it, worked out before anything is recorded.

    Applying a message replaces ``state`` and may pop messages from the
    rocket's heap into ``drained``, which go back if recording fails, as in
    ``ControlCenter.receive``. The rocket's other fields stay untouched until
    ``ControlCenter._install_draft``.
    """

    __slots__ = ("channel", "rocket", "initial_state", "state", "buffered", "drained", "accepted")

    def __init__(self, channel: str, rocket: Optional[Rocket]) -> None:
        self.channel = channel
        self.rocket = rocket  # None for a rocket that this batch creates
        self.initial_state = rocket.state if rocket is not None else RocketState()
        self.state = self.initial_state
        # Messages of this batch waiting behind a gap, by number, with their
        # position in the batch.
        self.buffered: Dict[int, Tuple[int, Message]] = {}
        self.drained: List[Message] = []
        self.accepted = 0

    def has_seen(self, number: int) -> bool:
        """Tell whether a number was applied or buffered before or earlier in the batch."""
        if number <= self.state.last_message_number or number in self.buffered:
            return True
        return self.rocket is not None and number in self.rocket.pending_numbers

    def apply(self, message: Message) -> List[int]:
        """Apply the next message and drain what follows it; return the drained batch positions."""
        state = apply_message(self.channel, self.state, message)
        heap = self.rocket.pending_heap if self.rocket is not None else []
        drained_positions = []
        while True:
            next_number = state.last_message_number + 1
            entry = self.buffered.pop(next_number, None)
            if entry is not None:
                position, following = entry
                drained_positions.append(position)
            elif heap and heap[0][0] == next_number:
                following = heapq.heappop(heap)[1]
                self.drained.append(following)
            else:
                break
            state = apply_message(self.channel, state, following)
        self.state = state
        return drained_positions
