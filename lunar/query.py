"""Query parameters of the fleet API: checked parsing, rocket filters, sort orders and pages.

Endpoints pass the query string (as ``urllib.parse.parse_qs`` returns it) and
a snapshot of the fleet from ``ControlCenter.snapshot``. This module rejects
unknown, repeated and invalid parameters with a 400 that names the parameter
and what it allows, filters and sorts the snapshot, cuts out one page and
builds the ``X-Total-Count`` and ``Link`` headers. It does not read the fleet
or the journal itself, and it does not format responses.
"""

import math
import re
import urllib.parse
from http import HTTPStatus
from operator import itemgetter
from typing import Any, Callable, Dict, FrozenSet, List, NamedTuple, Optional, Sequence, Tuple

from lunar.fleet import EXPLODED, LAUNCHED, PENDING, RocketState
from lunar.timestamps import parse_instant
from lunar.web import HttpError

MAX_PAGE_SIZE = 1000  # rockets or messages in one response when a limit is given
DEFAULT_MESSAGE_PAGE_SIZE = 100  # messages per page of GET /rockets/<channel>/messages
MAX_OFFSET = 2**63 - 1  # SQLite's largest OFFSET; larger values would overflow
MAX_SHOWN_VALUE_CHARACTERS = 60  # longer invalid values are shortened in errors

SORT_FIELDS = ("launchTime", "speed", "type", "mission", "status", "channel", "lastMessageTime")
DEFAULT_SORT = "launchTime"
ORDERS = ("asc", "desc")
STATUSES = (PENDING, LAUNCHED, EXPLODED)
BOOLEANS = ("true", "false")

ROCKET_LIST_PARAMETERS = (
    "sort", "order", "status", "type", "mission", "minSpeed", "maxSpeed", "limit", "offset",
)
# The mission of GET /missions/<mission> comes from the path.
MISSION_ROCKETS_PARAMETERS = tuple(name for name in ROCKET_LIST_PARAMETERS if name != "mission")
MESSAGE_LIST_PARAMETERS = ("limit", "offset")
MISSION_LIST_PARAMETERS = ("details",)

# A decimal number as JSON writes it, except that leading zeros are accepted.
_NUMBER = re.compile(r"-?[0-9]+(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?")
_INTEGER = re.compile(r"[0-9]+")

RocketRow = Tuple[Dict[str, Any], RocketState]  # an item of ControlCenter.snapshot()


class InvalidParameter(HttpError):
    """Raised when a query parameter is unknown, repeated or has an invalid value."""

    def __init__(self, message: str) -> None:
        super().__init__(HTTPStatus.BAD_REQUEST, message)


class QueryParameters:
    """The query parameters of one request, each given at most once.

    Raises ``InvalidParameter`` for a name the endpoint does not accept or a
    name given more than once: a list such as ``status`` is written
    comma-separated in one parameter instead.
    """

    def __init__(self, query: Dict[str, List[str]], allowed: Sequence[str]) -> None:
        for name, values in query.items():
            if name not in allowed:
                accepted = ", ".join(allowed) if allowed else "none"
                raise InvalidParameter(
                    f"unknown parameter {_show(name)}; parameters accepted here: {accepted}"
                )
            if len(values) > 1:
                raise InvalidParameter(
                    f"parameter {name} given {len(values)} times; give it once "
                    "(a list of values is comma-separated)"
                )
        # parse_qs keeps the order of first appearance, which links preserve.
        self.values: Dict[str, str] = {name: values[0] for name, values in query.items()}

    def choice(self, name: str, allowed: Sequence[str], default: str) -> str:
        """Return the parameter if it is one of ``allowed``, or the default if absent."""
        value = self.values.get(name)
        if value is None:
            return default
        if value not in allowed:
            raise InvalidParameter(
                f"invalid {name} {_show(value)}; allowed: {', '.join(allowed)}"
            )
        return value

    def choice_set(self, name: str, allowed: Sequence[str]) -> Optional[FrozenSet[str]]:
        """Return the comma-separated values of a parameter, each one of ``allowed``."""
        value = self.values.get(name)
        if value is None:
            return None
        items = value.split(",")
        for item in items:
            if item not in allowed:
                raise InvalidParameter(
                    f"invalid {name} {_show(item)} in {_show(value)}; allowed: "
                    f"{', '.join(allowed)}, one or more separated by commas"
                )
        return frozenset(items)

    def text(self, name: str) -> Optional[str]:
        """Return a parameter that must not be empty, or None if absent."""
        value = self.values.get(name)
        if value == "":
            raise InvalidParameter(f"invalid {name} ''; it must not be empty")
        return value

    def number(self, name: str) -> Optional[float]:
        """Return a parameter that must be a finite decimal number, or None if absent."""
        value = self.values.get(name)
        if value is None:
            return None
        number = float(value) if _NUMBER.fullmatch(value) else math.nan
        if not math.isfinite(number):
            raise InvalidParameter(
                f"invalid {name} {_show(value)}; it must be a finite decimal number "
                "such as 1500, -20.5 or 1e4"
            )
        return number

    def integer(self, name: str, minimum: int, maximum: int, default: Optional[int]) -> Optional[int]:
        """Return a parameter that must be an integer from ``minimum`` to ``maximum``."""
        value = self.values.get(name)
        if value is None:
            return default
        # The length check keeps int() away from huge digit strings.
        if (_INTEGER.fullmatch(value) is None or len(value) > len(str(maximum))
                or not minimum <= int(value) <= maximum):
            raise InvalidParameter(
                f"invalid {name} {_show(value)}; it must be an integer from {minimum} to {maximum}"
            )
        return int(value)


def reject_parameters(query: Dict[str, List[str]]) -> None:
    """Raise ``InvalidParameter`` if an endpoint that takes no parameters got any."""
    QueryParameters(query, ())


class Paging(NamedTuple):
    """The slice of a list that one response returns: an offset and a page size."""

    offset: int = 0
    limit: Optional[int] = None  # None returns everything from the offset on

    def cut(self, items: List[Any]) -> List[Any]:
        """Return the page's part of ``items``."""
        end = None if self.limit is None else self.offset + self.limit
        return items[self.offset:end]


class RocketQuery(NamedTuple):
    """The filters, sort order and page of a rocket list from GET /rockets or /missions/<mission>."""

    sort: str = DEFAULT_SORT
    descending: bool = False
    statuses: Optional[FrozenSet[str]] = None
    type: Optional[str] = None  # case-folded
    mission: Optional[str] = None  # case-folded
    min_speed: Optional[float] = None
    max_speed: Optional[float] = None
    paging: Paging = Paging()


def parse_paging(parameters: QueryParameters, default_limit: Optional[int]) -> Paging:
    """Read ``limit`` (1 to ``MAX_PAGE_SIZE``) and ``offset`` (0 or more)."""
    limit = parameters.integer("limit", 1, MAX_PAGE_SIZE, default_limit)
    offset = parameters.integer("offset", 0, MAX_OFFSET, 0)
    return Paging(offset, limit)


def parse_rocket_query(parameters: QueryParameters) -> RocketQuery:
    """Read the sort, filter and paging parameters of a rocket list."""
    type_name = parameters.text("type")
    mission = parameters.text("mission")
    min_speed = parameters.number("minSpeed")
    max_speed = parameters.number("maxSpeed")
    if min_speed is not None and max_speed is not None and min_speed > max_speed:
        raise InvalidParameter(
            f"invalid speed range: minSpeed {parameters.values['minSpeed']} is greater than "
            f"maxSpeed {parameters.values['maxSpeed']}"
        )
    return RocketQuery(
        sort=parameters.choice("sort", SORT_FIELDS, DEFAULT_SORT),
        descending=parameters.choice("order", ORDERS, "asc") == "desc",
        statuses=parameters.choice_set("status", STATUSES),
        type=None if type_name is None else type_name.casefold(),
        mission=None if mission is None else mission.casefold(),
        min_speed=min_speed,
        max_speed=max_speed,
        paging=parse_paging(parameters, None),
    )


def rockets_on_mission(rows: List[RocketRow], mission: str) -> List[RocketRow]:
    """Return the rows whose current mission matches ``mission`` case-insensitively."""
    key = mission.casefold()
    return [row for row in rows if _folded(row[1].mission) == key]


def select_rockets(rows: List[RocketRow], query: RocketQuery) -> Tuple[List[Dict[str, Any]], int]:
    """Filter and sort a snapshot, and return one page of rocket JSON and the filtered count.

    Rockets without a value for the sort field come last in both orders.
    Equal values are ordered by channel, ascending in both orders, so that
    consecutive pages of an unchanged fleet neither overlap nor skip.
    """
    matching = [(rocket, state) for rocket, state in rows if _matches(query, state)]
    matching.sort(key=lambda row: row[0]["channel"])

    sort_value = _SORT_VALUES[query.sort]
    valued = []
    missing = []
    for rocket, state in matching:
        value = sort_value(rocket, state)
        if value is None:
            missing.append(rocket)
        else:
            valued.append((value, rocket))
    # sort() is stable also with reverse=True, so equal values keep the channel order.
    valued.sort(key=itemgetter(0), reverse=query.descending)
    ordered = [rocket for _, rocket in valued] + missing
    return query.paging.cut(ordered), len(matching)


def summarize_missions(rows: List[RocketRow]) -> List[Dict[str, Any]]:
    """Return each current mission with its rocket counts, sorted case-insensitively.

    Missions that differ only in case are one mission. It is shown in the
    spelling that sorts first by code point, as ``ControlCenter.missions``
    does, so the result does not depend on the order of arrival.
    """
    summaries: Dict[str, Dict[str, Any]] = {}
    for _, state in rows:
        if state.mission is None:
            continue
        key = state.mission.casefold()
        summary = summaries.setdefault(
            key, {"mission": state.mission, "rockets": 0, "exploded": 0, "launched": 0}
        )
        summary["mission"] = min(summary["mission"], state.mission)
        summary["rockets"] += 1
        if state.status == EXPLODED:
            summary["exploded"] += 1
        elif state.status == LAUNCHED:
            summary["launched"] += 1
    return [summaries[key] for key in sorted(summaries)]


def paging_headers(path: str, parameters: QueryParameters, paging: Paging, total: int) -> Dict[str, str]:
    """Return ``X-Total-Count`` and, when there is a next or previous page, ``Link``.

    Links are absolute paths that keep every other parameter of the request
    and change only ``offset``. Without a ``limit`` there are no pages, so
    there are no links.
    """
    headers = {"X-Total-Count": str(total)}
    if paging.limit is None:
        return headers
    links = []
    if paging.offset + paging.limit < total:
        next_offset = paging.offset + paging.limit
        links.append(f'<{_page_url(path, parameters, next_offset)}>; rel="next"')
    if paging.offset > 0:
        # Past the end, the previous page is the last page that has items.
        previous_offset = max(0, min(paging.offset, total) - paging.limit)
        links.append(f'<{_page_url(path, parameters, previous_offset)}>; rel="prev"')
    if links:
        headers["Link"] = ", ".join(links)
    return headers


def _page_url(path: str, parameters: QueryParameters, offset: int) -> str:
    # Each segment is decoded and encoded again, so a raw character such as
    # '>' or a space in the request target cannot break the Link header.
    # Outer slashes are dropped as routing drops them, because a link that
    # starts with '//' would name another host.
    segments = [
        urllib.parse.quote(urllib.parse.unquote(segment), safe="")
        for segment in path.strip("/").split("/")
    ]
    values = dict(parameters.values)
    values["offset"] = str(offset)
    query = urllib.parse.urlencode(list(values.items()), quote_via=urllib.parse.quote, safe=",")
    return "/" + "/".join(segments) + "?" + query


def _matches(query: RocketQuery, state: RocketState) -> bool:
    if query.statuses is not None and state.status not in query.statuses:
        return False
    if query.type is not None and _folded(state.type) != query.type:
        return False
    if query.mission is not None and _folded(state.mission) != query.mission:
        return False
    if query.min_speed is not None and (state.speed is None or state.speed < query.min_speed):
        return False
    if query.max_speed is not None and (state.speed is None or state.speed > query.max_speed):
        return False
    return True


def _folded(text: Optional[str]) -> Optional[str]:
    return None if text is None else text.casefold()


def _instant(text: Optional[str]) -> Optional[int]:
    return None if text is None else parse_instant(text)


# The value each sort field orders by; None sorts last.
_SORT_VALUES: Dict[str, Callable[[Dict[str, Any], RocketState], Any]] = {
    "launchTime": lambda rocket, state: state.launch_instant,
    "lastMessageTime": lambda rocket, state: _instant(state.last_message_time),
    "speed": lambda rocket, state: state.speed,
    "type": lambda rocket, state: _folded(state.type),
    "mission": lambda rocket, state: _folded(state.mission),
    "status": lambda rocket, state: state.status,
    "channel": lambda rocket, state: rocket["channel"].casefold(),
}


def _show(value: str) -> str:
    """Quote a value for an error message, shortened if it is long."""
    if len(value) > MAX_SHOWN_VALUE_CHARACTERS:
        value = value[:MAX_SHOWN_VALUE_CHARACTERS - 3] + "..."
    return repr(value)
