"""Run ``lunar_server.py`` as a child process for tests that need a real process.

Starts the server on an ephemeral loopback port, reads the port from its
ready line, and stops it with a signal. It does not check the server's
responses: the tests do that.
"""

import os
import re
import signal
import subprocess
import sys
import threading
from typing import List, Optional

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SERVER_SCRIPT = os.path.join(ROOT, "lunar_server.py")
START_TIMEOUT_SECONDS = 20.0
STOP_TIMEOUT_SECONDS = 10.0

_READY = re.compile(r"ready on (http://[^\s\"]+)")


class ServerProcess:
    """A lunar server in a child process, listening on 127.0.0.1.

    The server must log at INFO or below, because its ready line is INFO.

    ``command`` replaces ``lunar_server.py`` with another program that takes
    ``--host`` and ``--port`` and logs "ready on URL", and ``root`` is the
    working directory, for running another copy of lunar.
    """

    def __init__(self, *arguments: str, command: Optional[List[str]] = None, root: str = ROOT) -> None:
        self.command = command if command is not None else [SERVER_SCRIPT]
        self.root = root
        self.arguments = ["--host", "127.0.0.1", "--port", "0", *arguments]
        self.process: Optional[subprocess.Popen] = None
        self.url = ""
        self.log_lines: List[str] = []
        self._ready = threading.Event()

    def start(self) -> "ServerProcess":
        """Start the server and wait until it logs its address."""
        self._ready.clear()
        self.process = subprocess.Popen(
            [sys.executable, *self.command, *self.arguments],
            cwd=self.root, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE, text=True,
        )
        threading.Thread(target=self._read_log, args=(self.process,), daemon=True).start()
        if not self._ready.wait(START_TIMEOUT_SECONDS):
            self.kill()
            raise RuntimeError("lunar did not start:\n" + "".join(self.log_lines))
        return self

    def _read_log(self, process: subprocess.Popen) -> None:
        for line in process.stderr:
            self.log_lines.append(line)
            match = _READY.search(line)
            if match:
                self.url = match.group(1)
                self._ready.set()
        if not self._ready.is_set():
            self._ready.set()  # the process exited before it was ready

    @property
    def port(self) -> int:
        """Return the port the server listens on."""
        return int(self.url.rsplit(":", 1)[1])

    def stop(self, signal_number: int = signal.SIGTERM) -> int:
        """Send a signal and return the exit status."""
        if self.process is None:
            return 0
        if self.process.poll() is None:
            os.kill(self.process.pid, signal_number)
        try:
            return self.process.wait(STOP_TIMEOUT_SECONDS)
        finally:
            self.process.stderr.close()
            self.process = None

    def kill(self) -> None:
        """End the process at once, as a crash would."""
        self.stop(signal.SIGKILL)
