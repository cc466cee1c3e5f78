"""The service's lifecycle: starting, ready, draining, and the hooks that run on shutdown.

Components that hold long-lived work, such as streaming responses, register
a shutdown hook here so that a stopping server can end them. This module
only keeps the state and calls the hooks: stopping the listener and
waiting for requests is ``lunar.connections``' job.
"""

import enum
import logging
import threading
from typing import Callable, List

logger = logging.getLogger(__name__)


class State(enum.Enum):
    """A stage of the service's life."""

    STARTING = "starting"
    READY = "ready"
    DRAINING = "draining"


ShutdownHook = Callable[[], None]


class Lifecycle:
    """The service state and the shutdown hooks, safe to use from any thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._state = State.STARTING
        self._hooks: List[ShutdownHook] = []

    @property
    def state(self) -> State:
        """Return the current state."""
        return self._state

    def mark_ready(self) -> None:
        """Record that state is restored and the server accepts requests."""
        with self._lock:
            if self._state is State.STARTING:
                self._state = State.READY

    def begin_shutdown(self) -> bool:
        """Enter the draining state; return False if shutdown had already begun."""
        with self._lock:
            if self._state is State.DRAINING:
                return False
            self._state = State.DRAINING
            return True

    def add_shutdown_hook(self, hook: ShutdownHook) -> None:
        """Call ``hook`` once when the service stops, after it stops accepting connections.

        A hook should return quickly. It signals long-lived work to end and
        does not wait for it.
        """
        with self._lock:
            self._hooks.append(hook)

    def run_shutdown_hooks(self) -> None:
        """Call every registered hook once, in registration order; log the ones that fail."""
        with self._lock:
            hooks, self._hooks = self._hooks, []
        for hook in hooks:
            try:
                hook()
            except Exception:
                logger.exception("shutdown hook %r failed", hook)
