"""Comparison of the server's rockets with the state the launcher expects.

After a run, ``verify_server`` fetches the rocket list from the server and
compares each rocket of the run with the ledger's expected state. It detects
a server that still stores rockets from an earlier run with the same seed.
This module does not send messages.
"""

import http.client
import json
import logging
import time
from typing import Any, Dict, List, NamedTuple, Optional

from lunar.rockets.ledger import STATUS_PENDING, Ledger, RocketState
from lunar.rockets.sender import REQUEST_TIMEOUT_S, Target

logger = logging.getLogger(__name__)

# The server may apply an acknowledged message a moment after its response, so a
# mismatch is fetched again every SETTLE_INTERVAL_S for up to SETTLE_TIME_S.
SETTLE_TIME_S = 2.0
SETTLE_INTERVAL_S = 0.2

COMPARED_FIELDS = ("type", "speed", "mission", "status", "explosionReason", "lastMessageNumber")


class VerificationError(Exception):
    """The rocket list could not be fetched or parsed."""


class FieldMismatch(NamedTuple):
    """One field of one rocket whose server value differs from the expected value."""

    channel: str
    field: str
    expected: Any
    got: Any


class VerificationResult:
    """Outcome of comparing the server's rockets with the expected state."""

    def __init__(
        self,
        seed: int,
        rockets_checked: int,
        mismatches: List[FieldMismatch],
        lost: int,
        earlier_run_channels: List[str],
        error: Optional[str] = None,
    ) -> None:
        self.seed = seed
        self.rockets_checked = rockets_checked
        self.mismatches = mismatches
        self.lost = lost
        self.earlier_run_channels = earlier_run_channels
        self.error = error

    @property
    def passed(self) -> bool:
        """Whether every rocket matched and no message was lost."""
        return self.error is None and not self.mismatches and not self.earlier_run_channels and self.lost == 0

    def summary(self) -> str:
        """Return a one-line result for the run summary."""
        if self.error is not None:
            return f"failed: {self.error}"
        if self.earlier_run_channels:
            return f"failed: the server already holds rockets from an earlier run with seed {self.seed}"
        if self.mismatches:
            rockets = len({mismatch.channel for mismatch in self.mismatches})
            return f"failed: {len(self.mismatches)} fields differ in {rockets} of {self.rockets_checked} rockets"
        if self.lost:
            return f"failed: all {self.rockets_checked} rockets match, but {self.lost} messages were lost"
        return f"passed: all {self.rockets_checked} rockets match"

    def report_lines(self) -> List[str]:
        """Return the explanation of a failed verification, one line per problem."""
        lines: List[str] = []
        if self.error is not None:
            lines.append(f"verification failed: {self.error}")
            return lines
        if self.earlier_run_channels:
            lines.append(
                f"verification failed: the server already holds rockets from an earlier run with seed "
                f"{self.seed}; start it with a fresh database (for example --db :memory:) or use "
                f"another --seed"
            )
            lines.append(
                f"  {len(self.earlier_run_channels)} channels have a launchTime this run did not "
                f"send or a lastMessageNumber beyond what it sent, for example "
                f"{self.earlier_run_channels[0]}"
            )
            return lines
        if self.lost:
            lines.append(
                f"{self.lost} messages were lost: their redeliveries were still waiting when the "
                f"run ended, so the expected state stops before the first lost message of each rocket"
            )
        if self.mismatches:
            lines.append(f"verification failed: {self.summary()[len('failed: '):]}")
            lines.append(f"  {'channel':<36}  {'field':<17}  {'expected':<24}  got")
            for mismatch in self.mismatches:
                lines.append(
                    f"  {mismatch.channel:<36}  {mismatch.field:<17}  "
                    f"{_show(mismatch.expected):<24}  {_show(mismatch.got)}"
                )
        return lines


def rockets_target(messages_target: Target) -> Target:
    """Return the rocket list address next to the messages address.

    The last path segment is replaced, so ``/messages`` becomes ``/rockets``
    and ``/api/messages`` becomes ``/api/rockets``.
    """
    base = messages_target.path.rsplit("/", 1)[0]
    return Target(messages_target.host, messages_target.port, base + "/rockets")


def fetch_rockets(target: Target, timeout_s: float = REQUEST_TIMEOUT_S) -> Dict[str, Dict[str, Any]]:
    """GET the rocket list and return it by channel; raise VerificationError on failure.

    The body may be a JSON array of rocket objects or an object whose
    ``rockets`` key contains that array.
    """
    connection = http.client.HTTPConnection(target.host, target.port, timeout=timeout_s)
    try:
        connection.request("GET", target.path, headers={"Accept": "application/json"})
        response = connection.getresponse()
        body = response.read()
    except (OSError, http.client.HTTPException) as error:
        raise VerificationError(f"GET {target!r} failed: {error}") from error
    finally:
        connection.close()

    if response.status != 200:
        excerpt = body[:200].decode("utf-8", "replace")
        raise VerificationError(f"GET {target!r} returned HTTP {response.status}: {excerpt}")
    try:
        document = json.loads(body)
    except ValueError as error:
        raise VerificationError(f"GET {target!r} returned invalid JSON: {error}") from error
    if isinstance(document, dict):
        document = document.get("rockets")
    if not isinstance(document, list):
        raise VerificationError(f"GET {target!r} returned no rocket list (expected a JSON array of rockets)")

    rockets: Dict[str, Dict[str, Any]] = {}
    for rocket in document:
        if isinstance(rocket, dict) and isinstance(rocket.get("channel"), str):
            rockets[rocket["channel"]] = rocket
    return rockets


def compare_rockets(ledger: Ledger, server_rockets: Dict[str, Dict[str, Any]], seed: int) -> VerificationResult:
    """Compare every channel of the ledger with the server's rocket of that channel."""
    mismatches: List[FieldMismatch] = []
    earlier_run_channels: List[str] = []
    channels = ledger.channels()

    for channel in channels:
        rocket = server_rockets.get(channel)
        server_last = rocket.get("lastMessageNumber") if rocket is not None else None
        if isinstance(server_last, int) and server_last > ledger.generated_count(channel):
            earlier_run_channels.append(channel)
            continue
        if _launched_by_another_run(rocket, ledger.launch_times(channel)):
            earlier_run_channels.append(channel)
            continue
        mismatches.extend(_compare_rocket(ledger.expected_state(channel), rocket))

    return VerificationResult(seed, len(channels), mismatches, ledger.lost, earlier_run_channels)


def verify_server(
    ledger: Ledger,
    target: Target,
    seed: int,
    settle_time_s: float = SETTLE_TIME_S,
    timeout_s: float = REQUEST_TIMEOUT_S,
) -> VerificationResult:
    """Fetch the server's rockets and compare them with the ledger.

    Mismatches are fetched again for up to ``settle_time_s`` before they
    count, in case the server applies messages after acknowledging them.
    """
    deadline = time.monotonic() + settle_time_s
    while True:
        try:
            result = compare_rockets(ledger, fetch_rockets(target, timeout_s), seed)
        except VerificationError as error:
            return VerificationResult(seed, len(ledger.channels()), [], ledger.lost, [], error=str(error))
        if not result.mismatches or result.earlier_run_channels or time.monotonic() >= deadline:
            return result
        logger.debug("%d fields differ, fetching the rockets again", len(result.mismatches))
        time.sleep(SETTLE_INTERVAL_S)


def _launched_by_another_run(rocket: Optional[Dict[str, Any]], launch_times: List[str]) -> bool:
    """Tell whether the server's launch of a rocket carries a time this run never sent.

    The first copy of a message wins on the server, so after an identical
    earlier run every message of this run is a duplicate and only the
    launch time shows it.
    """
    if rocket is None or not launch_times:
        return False
    launch_time = rocket.get("launchTime")
    return launch_time is not None and launch_time not in launch_times


def _compare_rocket(expected: RocketState, rocket: Optional[Dict[str, Any]]) -> List[FieldMismatch]:
    channel = expected.channel
    if expected.last_message_number == 0:
        # The launch was never acknowledged, so the server may know nothing
        # of this rocket or hold it as pending.
        if rocket is None or rocket.get("status") == STATUS_PENDING:
            return []
        return [FieldMismatch(channel, "status", STATUS_PENDING, rocket.get("status"))]
    if rocket is None:
        return [FieldMismatch(channel, "rocket", "present", "missing")]

    expected_fields = {
        "type": expected.type,
        "speed": expected.speed,
        "mission": expected.mission,
        "status": expected.status,
        "explosionReason": expected.explosion_reason,
        "lastMessageNumber": expected.last_message_number,
    }
    mismatches = []
    for field in COMPARED_FIELDS:
        got = rocket.get(field)
        if got != expected_fields[field]:
            mismatches.append(FieldMismatch(channel, field, expected_fields[field], got))
    return mismatches


def _show(value: Any) -> str:
    return "null" if value is None else str(value)
