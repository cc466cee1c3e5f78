"""Deterministic rocket traffic: channels, launches, speed changes and explosions.

Each rocket draws its channel and the content of its messages from its own
random stream, seeded from the run seed and the rocket index, and a separate
picker stream decides which rocket sends next. So a run with fewer messages
produces, per rocket, a prefix of what a longer run with the same seed
produces. This module builds no HTTP requests and keeps no delivery state.
"""

import random
import uuid
from typing import Dict, Iterator, List, Optional, Union

from lunar.rockets import wire

ROCKET_TYPES = (
    "Atlas-H",
    "Falcon-9",
    "Titan-IV",
    "Delta-IV",
    "Saturn-V",
    "Ariane-5",
    "Soyuz-U",
    "Proton-M",
)
MISSIONS = (
    "APOLLO",
    "APOLLO_SOYUZ",
    "ARTEMIS",
    "GEMINI",
    "MERCURY",
    "SHUTTLE_MIR",
    "SKYLAB",
)
EXPLOSION_REASONS = (
    "PRESSURE_VESSEL_FAILURE",
    "FROZEN_O_RINGS",
    "UNKNOWN_OBJECT_COLLISION",
    "SYSTEM_MALFUNCTION",
)

ROCKET_LAUNCHED = "RocketLaunched"
ROCKET_SPEED_INCREASED = "RocketSpeedIncreased"
ROCKET_SPEED_DECREASED = "RocketSpeedDecreased"
ROCKET_EXPLODED = "RocketExploded"
ROCKET_MISSION_CHANGED = "RocketMissionChanged"

# Speeds are in the same unit as the real program's, which it never names.
SPEED_STEP = 500
MIN_SPEED = 500
MAX_LAUNCH_STEPS = 10  # launch speed is 500 to 5,000
MAX_CHANGE_STEPS = 10  # one change moves the speed by 500 to 5,000

# Chance that a message after the launch is an explosion. With 20 rockets and
# 100,000 messages this gives about 6 explosions per run, as the real program
# does: a mean of 6.5 over seeds 0 to 29 (range 2 to 10), and 5 for seed 444.
EXPLOSION_PROBABILITY = 6e-5
# Shares of the remaining messages: speed increase, speed decrease, the rest
# mission changes.
SPEED_INCREASE_SHARE = 0.45
SPEED_DECREASE_SHARE = 0.35

DEFAULT_ROCKETS = 20
DEFAULT_SEED = 444

PayloadValue = Union[str, int]


class Message:
    """One generated rocket message with its JSON body split around messageTime.

    ``head`` and ``tail`` are UTF-8 bytes, so the body of a delivery is
    ``head + message_time + tail`` and costs one concatenation at send time.
    """

    __slots__ = (
        "rocket_index",
        "channel",
        "number",
        "message_type",
        "payload",
        "head",
        "tail",
        "acknowledged",
        "launch_times",
    )

    def __init__(
        self,
        rocket_index: int,
        channel: str,
        number: int,
        message_type: str,
        payload: Dict[str, PayloadValue],
    ) -> None:
        self.rocket_index = rocket_index
        self.channel = channel
        self.number = number
        self.message_type = message_type
        self.payload = payload
        self.head, self.tail = wire.encode_body_parts(channel, number, message_type, payload)
        self.acknowledged = False
        # Every messageTime sent for a launch, so verification can tell this
        # run's launch from an earlier run's with the same seed.
        self.launch_times: List[str] = []

    def content(self) -> tuple:
        """Return everything but messageTime, for comparing runs."""
        return (self.channel, self.number, self.message_type, tuple(sorted(self.payload.items())))

    def __repr__(self) -> str:
        return f"Message({self.channel}#{self.number} {self.message_type} {self.payload})"


class RocketScript:
    """The message stream of one rocket, drawn from its own seeded random stream.

    The k-th message depends only on the seed and the rocket index, never on
    other rockets or on how often the picker chose this one.
    """

    def __init__(self, seed: int, index: int) -> None:
        self.index = index
        self._random = random.Random(f"lunar.rockets/{seed}/rocket/{index}")
        self.channel = str(uuid.UUID(int=self._random.getrandbits(128), version=4))
        self.messages_generated = 0
        self.exploded = False
        self._speed = 0
        self._mission = ""

    def next_message(self) -> Message:
        """Generate the next message; the first one is always RocketLaunched."""
        if self.exploded:
            raise RuntimeError(f"rocket {self.channel} has exploded and sends no more messages")
        self.messages_generated += 1
        number = self.messages_generated
        if number == 1:
            message_type, payload = self._launch()
        else:
            message_type, payload = self._change()
        return Message(self.index, self.channel, number, message_type, payload)

    def _launch(self) -> tuple:
        rocket_type = self._random.choice(ROCKET_TYPES)
        self._speed = SPEED_STEP * self._random.randint(1, MAX_LAUNCH_STEPS)
        self._mission = self._random.choice(MISSIONS)
        payload = {"type": rocket_type, "launchSpeed": self._speed, "mission": self._mission}
        return ROCKET_LAUNCHED, payload

    def _change(self) -> tuple:
        if self._random.random() < EXPLOSION_PROBABILITY:
            self.exploded = True
            return ROCKET_EXPLODED, {"reason": self._random.choice(EXPLOSION_REASONS)}

        kind = self._random.random()
        if kind < SPEED_INCREASE_SHARE + SPEED_DECREASE_SHARE:
            max_decrease_steps = min(MAX_CHANGE_STEPS, (self._speed - MIN_SPEED) // SPEED_STEP)
            # At minimum speed a planned decrease becomes an increase, so the
            # speed never drops below MIN_SPEED.
            if kind >= SPEED_INCREASE_SHARE and max_decrease_steps > 0:
                by = SPEED_STEP * self._random.randint(1, max_decrease_steps)
                self._speed -= by
                return ROCKET_SPEED_DECREASED, {"by": by}
            by = SPEED_STEP * self._random.randint(1, MAX_CHANGE_STEPS)
            self._speed += by
            return ROCKET_SPEED_INCREASED, {"by": by}

        others = [mission for mission in MISSIONS if mission != self._mission]
        self._mission = self._random.choice(others)
        return ROCKET_MISSION_CHANGED, {"newMission": self._mission}


def rocket_scripts(seed: int, rockets: int) -> List[RocketScript]:
    """Create the scripts of ``rockets`` rockets for ``seed``, in index order."""
    return [RocketScript(seed, index) for index in range(rockets)]


def channels_for_seed(seed: int, rockets: int = DEFAULT_ROCKETS) -> List[str]:
    """Return the channel UUIDs that a run with ``seed`` uses, in rocket index order."""
    return [script.channel for script in rocket_scripts(seed, rockets)]


def generate_messages(
    seed: int,
    rockets: int,
    max_messages: int,
    scripts: Optional[List[RocketScript]] = None,
) -> Iterator[Message]:
    """Yield up to ``max_messages`` messages of ``rockets`` rockets in generation order.

    The first ``rockets`` messages launch each rocket in index order. After
    that the picker stream chooses among the rockets that have not exploded,
    so an exploded rocket sends nothing more. Generation stops early when all
    rockets have exploded. Pass ``scripts`` to inspect the rockets afterwards.
    """
    if rockets < 1:
        raise ValueError(f"rockets must be at least 1, got {rockets}")
    if max_messages < 0:
        raise ValueError(f"max_messages must not be negative, got {max_messages}")
    if scripts is None:
        scripts = rocket_scripts(seed, rockets)
    picker = random.Random(f"lunar.rockets/{seed}/picker")
    generated = 0

    for script in scripts:
        if generated >= max_messages:
            return
        yield script.next_message()
        generated += 1

    flying = list(scripts)
    while generated < max_messages and flying:
        position = picker.randrange(len(flying))
        script = flying[position]
        message = script.next_message()
        if script.exploded:
            del flying[position]
        yield message
        generated += 1
