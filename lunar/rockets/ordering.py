"""Send order of generated messages: extra redeliveries and local shuffling.

Both transforms draw from their own seeded random streams, so the send order
is the same for the same seed and flags. The real ``rockets`` program has
neither; they make harsher traffic that a server must still apply correctly.
This module does not send anything and does not retry failed deliveries.
"""

import heapq
import itertools
import random
from typing import Iterable, Iterator, List, Tuple

from lunar.rockets.generator import Message

# An extra redelivery is sent after 1 to this many further deliveries.
DUPLICATE_MAX_DISTANCE = 100


class Delivery:
    """One HTTP delivery of a message; a message with an extra redelivery has two."""

    __slots__ = ("message", "duplicate", "attempts")

    def __init__(self, message: Message, duplicate: bool = False) -> None:
        self.message = message
        self.duplicate = duplicate
        self.attempts = 0

    def __repr__(self) -> str:
        kind = "duplicate" if self.duplicate else "delivery"
        return f"Delivery({kind} of {self.message!r}, attempts={self.attempts})"


def add_duplicates(messages: Iterable[Message], probability: float, seed: int) -> Iterator[Delivery]:
    """Yield a delivery per message plus, with ``probability``, a later extra one.

    The extra delivery follows its original after 1 to DUPLICATE_MAX_DISTANCE
    other deliveries, or at the end of the stream if fewer remain.
    """
    if not 0.0 <= probability <= 1.0:
        raise ValueError(f"duplicate probability must be between 0 and 1, got {probability}")
    if probability == 0.0:
        for message in messages:
            yield Delivery(message)
        return

    chooser = random.Random(f"lunar.rockets/{seed}/duplicates")
    waiting: List[Tuple[int, int, Message]] = []
    sequence = itertools.count()
    position = 0
    for message in messages:
        while waiting and waiting[0][0] <= position:
            yield Delivery(heapq.heappop(waiting)[2], duplicate=True)
            position += 1
        yield Delivery(message)
        position += 1
        if chooser.random() < probability:
            due = position + chooser.randint(1, DUPLICATE_MAX_DISTANCE)
            heapq.heappush(waiting, (due, next(sequence), message))
    while waiting:
        yield Delivery(heapq.heappop(waiting)[2], duplicate=True)


def shuffle_windows(deliveries: Iterable[Delivery], window: int, seed: int) -> Iterator[Delivery]:
    """Yield ``deliveries`` shuffled within consecutive windows of ``window`` items.

    A window of 0 or 1 keeps the order. The last window may be shorter.
    """
    if window < 0:
        raise ValueError(f"shuffle window must not be negative, got {window}")
    if window <= 1:
        yield from deliveries
        return

    shuffler = random.Random(f"lunar.rockets/{seed}/shuffle")
    batch: List[Delivery] = []
    for delivery in deliveries:
        batch.append(delivery)
        if len(batch) == window:
            shuffler.shuffle(batch)
            yield from batch
            batch = []
    shuffler.shuffle(batch)
    yield from batch
