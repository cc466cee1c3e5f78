"""Headless Chromium driven over the DevTools protocol, for browser tests and screenshots.

``Browser`` starts ``/usr/bin/chromium`` with a fresh profile in a temporary
folder and ``--remote-debugging-port=0``. It reads the port that Chromium
chose from the profile's ``DevToolsActivePort`` file and talks to it through
a minimal RFC 6455 WebSocket client, which sends masked frames and handles
text messages, ping and close. ``Page`` is one tab attached with a flattened session. Host
resolution is mapped away except for 127.0.0.1 and localhost, so the browser
can reach only servers on this machine. This module is a test helper: it does
not support WebSocket extensions, TLS or binary messages.
"""

import base64
import json
import os
import shutil
import socket
import struct
import subprocess
import tempfile
import time
from typing import Any, Dict, List, Optional, Tuple

CHROMIUM_PATH = "/usr/bin/chromium"
START_TIMEOUT_SECONDS = 20.0  # Chromium's first start in a new profile can be slow
COMMAND_TIMEOUT_SECONDS = 15.0
STOP_TIMEOUT_SECONDS = 5.0

CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
    "--disable-default-apps",
    "--disable-extensions",
    "--no-default-browser-check",
    "--no-proxy-server",
    # Every host but 127.0.0.1 and localhost fails to resolve, so nothing leaves the machine.
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE localhost, EXCLUDE 127.0.0.1",
    "--remote-debugging-address=127.0.0.1",
    "--remote-debugging-port=0",
]

_OPCODE_CONTINUATION = 0x0
_OPCODE_TEXT = 0x1
_OPCODE_CLOSE = 0x8
_OPCODE_PING = 0x9
_OPCODE_PONG = 0xA


class BrowserError(Exception):
    """Raised when Chromium fails to start, a command fails or a wait times out."""


def chromium_missing_reason() -> Optional[str]:
    """Return why Chromium cannot run here, or None when it can."""
    if not os.access(CHROMIUM_PATH, os.X_OK):
        return f"{CHROMIUM_PATH} is missing; install it with 'apt-get install -y chromium'"
    return None


class WebSocket:
    """A blocking WebSocket client connection to a DevTools endpoint on 127.0.0.1."""

    def __init__(self, port: int, path: str, timeout: float = COMMAND_TIMEOUT_SECONDS) -> None:
        self.socket = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.buffer = b""
        key = base64.b64encode(os.urandom(16)).decode("ascii")
        request = (
            f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
        )
        self.socket.sendall(request.encode("ascii"))
        while b"\r\n\r\n" not in self.buffer:
            self._receive()
        head, self.buffer = self.buffer.split(b"\r\n\r\n", 1)
        status_line = head.split(b"\r\n", 1)[0]
        if b" 101 " not in status_line + b" ":
            raise BrowserError(f"WebSocket upgrade to {path} failed: {status_line!r}")

    def _receive(self) -> None:
        data = self.socket.recv(1 << 20)
        if not data:
            raise BrowserError("the DevTools connection was closed")
        self.buffer += data

    def _read_exactly(self, size: int) -> bytes:
        while len(self.buffer) < size:
            self._receive()
        data, self.buffer = self.buffer[:size], self.buffer[size:]
        return data

    def _send_frame(self, opcode: int, payload: bytes) -> None:
        header = bytearray([0x80 | opcode])
        length = len(payload)
        if length < 126:
            header.append(0x80 | length)
        elif length < 1 << 16:
            header.append(0x80 | 126)
            header += struct.pack("!H", length)
        else:
            header.append(0x80 | 127)
            header += struct.pack("!Q", length)
        mask = os.urandom(4)
        masked = bytes(byte ^ mask[index % 4] for index, byte in enumerate(payload))
        self.socket.sendall(bytes(header) + mask + masked)

    def send_text(self, text: str) -> None:
        self._send_frame(_OPCODE_TEXT, text.encode("utf-8"))

    def receive_text(self, timeout: float) -> str:
        """Return the next text message, replying to any ping that comes first."""
        self.socket.settimeout(timeout)
        fragments: List[bytes] = []
        while True:
            first, second = self._read_exactly(2)
            final = bool(first & 0x80)
            opcode = first & 0x0F
            length = second & 0x7F
            if length == 126:
                (length,) = struct.unpack("!H", self._read_exactly(2))
            elif length == 127:
                (length,) = struct.unpack("!Q", self._read_exactly(8))
            if second & 0x80:  # servers must not mask, but unmask if one does
                mask = self._read_exactly(4)
                payload = bytes(byte ^ mask[index % 4] for index, byte in enumerate(self._read_exactly(length)))
            else:
                payload = self._read_exactly(length)
            if opcode == _OPCODE_PING:
                self._send_frame(_OPCODE_PONG, payload)
                continue
            if opcode == _OPCODE_CLOSE:
                raise BrowserError("the DevTools connection was closed by the browser")
            if opcode in (_OPCODE_TEXT, _OPCODE_CONTINUATION):
                fragments.append(payload)
                if final:
                    return b"".join(fragments).decode("utf-8")

    def close(self) -> None:
        try:
            self._send_frame(_OPCODE_CLOSE, b"")
        except OSError:
            pass
        self.socket.close()


class Browser:
    """One headless Chromium process with a temporary profile."""

    def __init__(self, window_size: Tuple[int, int] = (1400, 900), extra_flags: Optional[List[str]] = None) -> None:
        self.profile = tempfile.mkdtemp(prefix="lunar-chromium-")
        width, height = window_size
        command = [CHROMIUM_PATH, *CHROMIUM_FLAGS, f"--window-size={width},{height}",
                   f"--user-data-dir={self.profile}", *(extra_flags or []), "about:blank"]
        self.log = open(os.path.join(self.profile, "chromium.log"), "wb")
        self.process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=self.log,
                                        stderr=subprocess.STDOUT)
        self.next_id = 0
        self.events: List[Dict[str, Any]] = []
        try:
            port, path = self._read_devtools_port()
            self.connection = WebSocket(port, path)
        except BaseException:
            self.close()
            raise

    def _read_devtools_port(self) -> Tuple[int, str]:
        port_file = os.path.join(self.profile, "DevToolsActivePort")
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise BrowserError(f"chromium exited with status {self.process.returncode}; "
                                   f"see {self.log.name}")
            try:
                with open(port_file, encoding="ascii") as file:
                    lines = file.read().splitlines()
            except FileNotFoundError:
                lines = []
            if len(lines) >= 2:
                return int(lines[0]), lines[1]
            time.sleep(0.05)
        raise BrowserError(f"chromium wrote no DevToolsActivePort within {START_TIMEOUT_SECONDS:.0f} s")

    def call(self, method: str, params: Optional[Dict[str, Any]] = None, session_id: Optional[str] = None,
             timeout: float = COMMAND_TIMEOUT_SECONDS) -> Dict[str, Any]:
        """Send one DevTools command and return its result; events on the way are kept."""
        self.next_id += 1
        command_id = self.next_id
        message: Dict[str, Any] = {"id": command_id, "method": method, "params": params or {}}
        if session_id is not None:
            message["sessionId"] = session_id
        self.connection.send_text(json.dumps(message))
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise BrowserError(f"{method} got no result within {timeout:.0f} s")
            try:
                reply = json.loads(self.connection.receive_text(remaining))
            except socket.timeout:
                raise BrowserError(f"{method} got no result within {timeout:.0f} s") from None
            if reply.get("id") == command_id:
                if "error" in reply:
                    raise BrowserError(f"{method} failed: {reply['error']}")
                return reply.get("result", {})
            if "method" in reply:
                self.events.append(reply)

    def open_page(self, url: str) -> "Page":
        """Open a new tab at ``url`` and return it attached."""
        target = self.call("Target.createTarget", {"url": "about:blank"})
        session = self.call("Target.attachToTarget", {"targetId": target["targetId"], "flatten": True})
        page = Page(self, target["targetId"], session["sessionId"])
        page.call("Page.enable")
        page.call("Runtime.enable")
        page.call("Page.navigate", {"url": url})
        return page

    def close(self) -> None:
        connection = getattr(self, "connection", None)
        if connection is not None:
            try:
                self.call("Browser.close", timeout=STOP_TIMEOUT_SECONDS)
            except (BrowserError, OSError):
                pass
            connection.close()
        try:
            self.process.wait(STOP_TIMEOUT_SECONDS)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(STOP_TIMEOUT_SECONDS)
        self.log.close()
        shutil.rmtree(self.profile, ignore_errors=True)


class Page:
    """One tab of a ``Browser``, driven through its flattened session."""

    def __init__(self, browser: Browser, target_id: str, session_id: str) -> None:
        self.browser = browser
        self.target_id = target_id
        self.session_id = session_id

    def call(self, method: str, params: Optional[Dict[str, Any]] = None,
             timeout: float = COMMAND_TIMEOUT_SECONDS) -> Dict[str, Any]:
        return self.browser.call(method, params, self.session_id, timeout)

    def evaluate(self, expression: str) -> Any:
        """Evaluate a JavaScript expression in the page and return its JSON value."""
        result = self.call("Runtime.evaluate", {"expression": expression, "returnByValue": True,
                                                "awaitPromise": True})
        if "exceptionDetails" in result:
            details = result["exceptionDetails"]
            text = details.get("exception", {}).get("description") or details.get("text")
            raise BrowserError(f"evaluating {expression!r} raised {text}")
        return result["result"].get("value")

    def wait_for(self, expression: str, timeout: float = COMMAND_TIMEOUT_SECONDS) -> Any:
        """Evaluate ``expression`` every 50 ms until it is truthy; return that value.

        An exception counts as not yet, because the page may still be loading.
        """
        deadline = time.monotonic() + timeout
        outcome: Any = None
        while time.monotonic() < deadline:
            try:
                value = self.evaluate(expression)
            except BrowserError as error:
                outcome = error
            else:
                if value:
                    return value
                outcome = value
            time.sleep(0.05)
        raise BrowserError(f"{expression!r} was still {outcome!r} after {timeout:.0f} s; "
                           f"page errors: {self.errors()}")

    def errors(self) -> List[str]:
        """Return the uncaught exceptions and console errors the page reported so far."""
        messages = []
        for event in self.browser.events:
            if event.get("sessionId") != self.session_id:
                continue
            params = event.get("params", {})
            if event["method"] == "Runtime.exceptionThrown":
                details = params.get("exceptionDetails", {})
                messages.append(details.get("exception", {}).get("description") or details.get("text", ""))
            elif event["method"] == "Runtime.consoleAPICalled" and params.get("type") == "error":
                messages.append(" ".join(str(arg.get("value", arg.get("description"))) for arg in params.get("args", [])))
        return messages

    def screenshot(self, path: str) -> None:
        """Save the viewport as a PNG file."""
        result = self.call("Page.captureScreenshot", {"format": "png"})
        with open(path, "wb") as file:
            file.write(base64.b64decode(result["data"]))
