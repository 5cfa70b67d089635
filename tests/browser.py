"""Headless Chromium driven over the DevTools protocol, for tests that open pages as a person would.

Chromium is started with ``--remote-debugging-pipe``: commands go in on fd 3 and replies
and events come back on fd 4, as NUL-terminated JSON, so no port, websocket library or
proxy is needed. ``Network.enable`` makes the page report every request it starts
(``Network.requestWillBeSent``), the page's own document included; the browser's own
background traffic (update checks, sign-in) is not the page's and is not reported.
"""

from __future__ import annotations

import base64
import fcntl
import json
import os
import select
import shutil
import subprocess
import tempfile
import time

FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run",
         "--enable-unsafe-swiftshader")  # software WebGL, for plotly's 3-D scatter


def find_chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


class Chromium:
    """``with Chromium() as browser: page = browser.open(url)``."""

    def __init__(self, width: int = 1280, height: int = 1000, timeout: float = 60):
        self.width, self.height, self.timeout = width, height, timeout
        self.proc = None

    def __enter__(self) -> "Chromium":
        exe = find_chromium()
        if exe is None:
            raise RuntimeError("chromium is not installed")
        self.profile = tempfile.mkdtemp(prefix="aekit-chromium-")
        to_browser_r, self._to_browser = os.pipe()
        self._from_browser, from_browser_w = os.pipe()

        def wire_pipes():  # in the child: fd 3 reads our commands, fd 4 writes replies
            high_r = fcntl.fcntl(to_browser_r, fcntl.F_DUPFD, 10)  # out of the way of 3 and 4 first
            high_w = fcntl.fcntl(from_browser_w, fcntl.F_DUPFD, 10)
            os.dup2(high_r, 3)
            os.dup2(high_w, 4)

        self.proc = subprocess.Popen(
            [exe, *FLAGS, f"--user-data-dir={self.profile}", "--remote-debugging-pipe",
             f"--window-size={self.width},{self.height}", "about:blank"],
            pass_fds=(3, 4), preexec_fn=wire_pipes,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        os.close(to_browser_r)
        os.close(from_browser_w)
        self._buf = b""
        self._id = 0
        self.events: list[dict] = []
        return self

    def __exit__(self, *exc) -> None:
        try:
            self.send("Browser.close", timeout=10)
        except Exception:  # noqa: BLE001 - closing anyway
            pass
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        os.close(self._to_browser)
        os.close(self._from_browser)
        shutil.rmtree(self.profile, ignore_errors=True)

    def send(self, method: str, params: dict | None = None, session: str | None = None,
             timeout: float | None = None) -> dict:
        self._id += 1
        message = {"id": self._id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        os.write(self._to_browser, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + (timeout or self.timeout)
        while True:
            reply = self._read(deadline)
            if reply.get("id") == self._id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})
            self.events.append(reply)

    def _read(self, deadline: float) -> dict:
        while b"\0" not in self._buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("chromium did not answer in time")
            if select.select([self._from_browser], [], [], left)[0]:
                chunk = os.read(self._from_browser, 1 << 20)
                if not chunk:
                    raise RuntimeError("chromium exited")
                self._buf += chunk
        raw, self._buf = self._buf.split(b"\0", 1)
        return json.loads(raw)

    def open(self, url: str, ready: str = "document.readyState === 'complete'", wait: float = 30) -> "Page":
        """Open ``url`` in a new tab and wait until the JavaScript expression ``ready`` is true."""
        target = self.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = self.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        self.send("Network.enable", session=session)
        self.send("Page.enable", session=session)
        self.send("Runtime.enable", session=session)
        first_event = len(self.events)
        self.send("Page.navigate", {"url": url}, session=session)
        page = Page(self, session, first_event)
        deadline = time.monotonic() + wait
        while not page.evaluate(ready):
            if time.monotonic() > deadline:
                raise TimeoutError(f"{url}: {ready!r} still false after {wait} s")
            time.sleep(0.1)
        return page


class Page:
    def __init__(self, browser: Chromium, session: str, first_event: int):
        self.browser, self.session, self.first_event = browser, session, first_event

    def evaluate(self, expression: str):
        result = self.browser.send("Runtime.evaluate", {"expression": expression, "returnByValue": True,
                                                        "awaitPromise": True}, session=self.session)
        if "exceptionDetails" in result:
            raise RuntimeError(f"{expression}: {result['exceptionDetails'].get('text')}")
        return result["result"].get("value")

    def _events(self, method: str) -> list[dict]:
        return [e["params"] for e in self.browser.events[self.first_event:]
                if e.get("method") == method and e.get("sessionId") == self.session]

    @property
    def requests(self) -> list[str]:
        """Every URL the page asked for, its own document first."""
        return [e["request"]["url"] for e in self._events("Network.requestWillBeSent")]

    @property
    def console_errors(self) -> list[str]:
        errors = [e["exceptionDetails"].get("exception", {}).get("description") or e["exceptionDetails"]["text"]
                  for e in self._events("Runtime.exceptionThrown")]
        return errors + [" ".join(str(a.get("value", a.get("description", ""))) for a in e["args"])
                         for e in self._events("Runtime.consoleAPICalled") if e["type"] == "error"]

    def screenshot(self, full_page: bool = True) -> bytes:
        params = {"format": "png", "captureBeyondViewport": full_page}
        if full_page:
            width, height = self.evaluate("[document.documentElement.scrollWidth, "
                                          "document.documentElement.scrollHeight]")
            params["clip"] = {"x": 0, "y": 0, "width": width, "height": min(height, 8000), "scale": 1}
        return base64.b64decode(self.browser.send("Page.captureScreenshot", params, session=self.session)["data"])
