"""Progress display of a launch on stderr.

On a terminal it redraws one bar line a few times a second once the run has
lasted longer than a second. Elsewhere, for example in CI logs, it prints a
plain line every few seconds. It does not print the final summary.
"""

import threading
import time
from typing import Callable, NamedTuple, Optional, TextIO

BAR_WIDTH = 30
BAR_DELAY_S = 1.0  # runs shorter than this get no bar
BAR_INTERVAL_S = 0.2
LINE_INTERVAL_S = 5.0


class ProgressSnapshot(NamedTuple):
    """Counters of a running launch at one moment."""

    acknowledged: int  # distinct messages with a 2xx response
    retries: int  # redelivery attempts
    duplicates_sent: int  # extra redeliveries from --duplicates


class Progress:
    """A thread that shows launch progress on ``stream`` until ``stop`` is called."""

    def __init__(
        self,
        stream: TextIO,
        total: int,
        snapshot: Callable[[], ProgressSnapshot],
        terminal: bool,
    ) -> None:
        self._stream = stream
        self._total = max(total, 1)
        self._snapshot = snapshot
        self._terminal = terminal
        self._stopped = threading.Event()
        self._thread: Optional[threading.Thread] = None
        self._started = 0.0
        self._bar_shown = False

    def start(self) -> None:
        """Start showing progress in a daemon thread."""
        self._started = time.monotonic()
        self._thread = threading.Thread(target=self._run, name="rockets-progress", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the thread; a bar that was shown is drawn once more, complete, and ended."""
        self._stopped.set()
        if self._thread is not None:
            self._thread.join(timeout=2.0)
        if self._bar_shown:
            self._stream.write("\r" + self._bar_line() + "\n")
            self._stream.flush()

    def _run(self) -> None:
        if self._terminal:
            if self._stopped.wait(BAR_DELAY_S):
                return
            while not self._stopped.is_set():
                self._stream.write("\r" + self._bar_line())
                self._stream.flush()
                self._bar_shown = True
                self._stopped.wait(BAR_INTERVAL_S)
        else:
            while not self._stopped.wait(LINE_INTERVAL_S):
                self._stream.write(self._plain_line() + "\n")
                self._stream.flush()

    def _rate(self, acknowledged: int) -> float:
        elapsed = time.monotonic() - self._started
        return acknowledged / elapsed if elapsed > 0 else 0.0

    def _bar_line(self) -> str:
        snapshot = self._snapshot()
        fraction = min(snapshot.acknowledged / self._total, 1.0)
        filled = int(fraction * BAR_WIDTH)
        bar = "#" * filled + "-" * (BAR_WIDTH - filled)
        return (
            f"[{bar}] {fraction * 100:5.1f}%  {snapshot.acknowledged:,}/{self._total:,} messages"
            f"  {self._rate(snapshot.acknowledged):,.0f} msg/s  retries {snapshot.retries:,}  "
        )

    def _plain_line(self) -> str:
        snapshot = self._snapshot()
        elapsed = time.monotonic() - self._started
        return (
            f"rockets: {elapsed:.0f} s, {snapshot.acknowledged:,} of {self._total:,} messages acknowledged, "
            f"{self._rate(snapshot.acknowledged):,.0f} messages/s, {snapshot.retries:,} retries, "
            f"{snapshot.duplicates_sent:,} duplicates sent"
        )
