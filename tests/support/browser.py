"""Headless Chromium driven over the DevTools protocol, for tests of pages that run real browser code.

Debian's `chromium` (`apt-get install -y chromium`); `scripts/bootstrap` does not install
it, so tests that need it skip, naming why, where it is absent (`EDGE_CHROMIUM` points at
another binary). The page is loaded as a user would load it, and a test then awaits an
expression the page defines (a promise of what the page saw). Everything the browser
logged (CORS refusals among it) is kept in `log`, for assertions and failure messages.
"""
from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

CHROMIUM = Path(os.environ.get("EDGE_CHROMIUM", "/usr/bin/chromium"))
# Headless as root on a machine without a display or outside network (the flags the
# machine notes give; without the networking ones Chromium keeps dialling Google's hosts).
FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-extensions", "--disable-default-apps", "--no-default-browser-check",
    "--remote-debugging-port=0", "--remote-allow-origins=*",
)


def require_chromium() -> Path:
    """The Chromium binary, or skip the test saying what is missing (also under CI)."""
    if not CHROMIUM.is_file():
        pytest.skip(f"needs Debian's chromium at {CHROMIUM} (apt-get install -y chromium; "
                    f"scripts/bootstrap does not install system packages)")
    return CHROMIUM


class Chromium:
    """One headless browser with a fresh profile; `open(url)`, `evaluate(expr)`, `close()`."""

    def __init__(self, profile: Path, *flags: str) -> None:
        self.profile = profile
        self.flags = flags
        self.log: list[str] = []
        self.proc: subprocess.Popen[bytes] | None = None
        self._ws: Any = None
        self._stack = contextlib.ExitStack()
        self._next_id = 0

    def __enter__(self) -> "Chromium":
        from websockets.sync.client import connect

        self.profile.mkdir(parents=True, exist_ok=True)
        stderr = open(self.profile / "chromium.log", "wb")
        self.proc = subprocess.Popen(
            [str(require_chromium()), *FLAGS, f"--user-data-dir={self.profile}", *self.flags, "about:blank"],
            stdin=subprocess.DEVNULL, stdout=stderr, stderr=stderr, start_new_session=True)
        stderr.close()
        port = self._devtools_port(timeout=60)
        targets = httpx.get(f"http://127.0.0.1:{port}/json/list", timeout=10).json()
        page = next(t for t in targets if t["type"] == "page")
        self._ws = self._stack.enter_context(connect(page["webSocketDebuggerUrl"], max_size=None, open_timeout=30))
        for domain in ("Page", "Runtime", "Log"):
            self.call(f"{domain}.enable")
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _devtools_port(self, timeout: float) -> int:
        """Chromium writes the port it chose to <profile>/DevToolsActivePort once it listens."""
        assert self.proc is not None
        marker = self.profile / "DevToolsActivePort"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"chromium exited with {self.proc.returncode}: {self.stderr()[-2000:]}")
            if marker.exists():
                first = marker.read_text().split("\n", 1)[0].strip()
                if first.isdigit():
                    return int(first)
            time.sleep(0.05)
        raise AssertionError(f"chromium opened no DevTools port within {timeout}s: {self.stderr()[-2000:]}")

    def stderr(self) -> str:
        path = self.profile / "chromium.log"
        return path.read_text(errors="replace") if path.exists() else ""

    # ---- the protocol ---------------------------------------------------------------

    def call(self, method: str, params: dict[str, Any] | None = None, timeout: float = 30) -> dict[str, Any]:
        """Send one command; events that arrive before its answer are noted (and kept in `log`)."""
        self._next_id += 1
        ident = self._next_id
        self._ws.send(json.dumps({"id": ident, "method": method, "params": params or {}}))
        deadline = time.monotonic() + timeout
        while True:
            message = self._receive(deadline, f"{method} got no answer within {timeout}s")
            if message.get("id") == ident:
                if "error" in message:
                    raise AssertionError(f"{method}: {message['error']}")
                return message.get("result", {})

    def _receive(self, deadline: float, why: str) -> dict[str, Any]:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise AssertionError(f"{why}; browser log: {self.log}")
        try:
            message = json.loads(self._ws.recv(timeout=remaining))
        except TimeoutError:
            raise AssertionError(f"{why}; browser log: {self.log}") from None
        self._note(message)
        return message

    def _note(self, message: dict[str, Any]) -> None:
        method, params = message.get("method"), message.get("params", {})
        if method == "Log.entryAdded":
            entry = params["entry"]
            self.log.append(f"{entry['level']}: {entry['text']}")
        elif method == "Runtime.consoleAPICalled":
            self.log.append(f"console.{params['type']}: " + " ".join(
                str(a.get("value", a.get("description", ""))) for a in params.get("args", [])))
        elif method == "Runtime.exceptionThrown":
            self.log.append(f"exception: {params['exceptionDetails'].get('text')}")

    def open(self, url: str, timeout: float = 30) -> None:
        """Navigate and wait for the page's load event."""
        self.call("Page.navigate", {"url": url})
        deadline = time.monotonic() + timeout
        while self._receive(deadline, f"{url} did not load within {timeout}s").get("method") != "Page.loadEventFired":
            pass

    def evaluate(self, expression: str, timeout: float = 60) -> Any:
        """The value of `expression` in the page (a promise is awaited), as JSON."""
        result = self.call("Runtime.evaluate", {"expression": expression, "awaitPromise": True,
                                                "returnByValue": True}, timeout=timeout)
        if "exceptionDetails" in result:
            raise AssertionError(f"{expression!r} threw: {result['exceptionDetails']}; browser log: {self.log}")
        return result["result"].get("value")

    def close(self) -> None:
        self._ws = None
        with contextlib.suppress(Exception):  # the browser may already be gone
            self._stack.close()
        proc = self.proc
        if proc is None:
            return
        # Chromium's helper processes (zygote, renderers) run in the session it was started in.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(15)
