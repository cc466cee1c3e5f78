"""Parsing of Go-style durations such as ``500ms``, ``1.5s`` or ``1m30s``.

The real ``rockets`` program takes its ``--message-delay`` in the syntax of
Go's ``time.ParseDuration``, so this parser accepts the same units. It does
not accept negative durations, which a delay cannot use.
"""

import re

# Seconds per unit; Go accepts both the micro sign and the Greek mu for us.
UNIT_SECONDS = {
    "ns": 1e-9,
    "us": 1e-6,
    "\u00b5s": 1e-6,
    "\u03bcs": 1e-6,
    "ms": 1e-3,
    "s": 1.0,
    "m": 60.0,
    "h": 3600.0,
}

_TERM = re.compile(r"(\d+(?:\.\d*)?|\.\d+)([a-z\u00b5\u03bc]+)")


class InvalidDuration(ValueError):
    """A duration string that does not follow the Go syntax."""


def parse_duration(text: str) -> float:
    """Parse a duration like ``500ms``, ``1s``, ``1.5s``, ``250us``, ``1m30s`` or ``0`` into seconds.

    A number needs a unit (ns, us, ms, s, m, h) unless it is ``0``, as in Go.
    Raise InvalidDuration for anything else, negative values included.
    """
    value = text.strip()
    negative = value.startswith("-")
    if value[:1] in ("+", "-"):
        value = value[1:]
    if value == "0":
        return 0.0
    if negative:
        raise InvalidDuration(f"invalid duration {text!r}: it must not be negative")
    if not value:
        raise InvalidDuration(f"invalid duration {text!r}: use a number with a unit, for example 500ms or 1s")

    seconds = 0.0
    position = 0
    while position < len(value):
        term = _TERM.match(value, position)
        if term is None:
            raise InvalidDuration(
                f"invalid duration {text!r}: use a number with a unit (ns, us, ms, s, m, h), "
                f"for example 500ms, 1s or 1.5s"
            )
        number, unit = term.groups()
        if unit not in UNIT_SECONDS:
            raise InvalidDuration(
                f"invalid duration {text!r}: unknown unit {unit!r}, use one of ns, us, ms, s, m, h"
            )
        seconds += float(number) * UNIT_SECONDS[unit]
        position = term.end()
    return seconds
