"""Headless Chromium for tests, driven through chromedriver's W3C WebDriver API over HTTP.

Needs Debian's `chromium` and `chromium-driver` (`apt-get install -y chromium chromium-driver`).
The browser gets a fresh, empty profile, every background service that would reach the network
switched off, and a performance log so a test can list the requests a page made.
"""

from __future__ import annotations

import base64
import json
import re
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

CHROMIUM = "chromium"
CHROMEDRIVER = "chromedriver"
# As root a sandbox cannot start; the rest keep a test browser off the network.
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
)
STARTED = re.compile(rb"started successfully on port (\d+)")


class BrowserMissing(RuntimeError):
    """chromium or chromedriver is not installed."""


@dataclass
class Browser:
    """One WebDriver session: open a page, run a script, look at it."""

    http: httpx.Client
    session: str

    def call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        response = self.http.request(method, f"/session/{self.session}{path}", json=body)
        payload = response.json()
        if response.status_code != 200:
            raise RuntimeError(f"webdriver {path}: {payload['value'].get('message')}")
        return payload["value"]

    def open(self, url: str) -> None:
        self.call("POST", "/url", {"url": url})

    def run(self, script: str, *args: Any) -> Any:
        """Run a function body in the page; `arguments` holds `args`."""
        return self.call("POST", "/execute/sync", {"script": script, "args": list(args)})

    def run_async(self, script: str, *args: Any) -> Any:
        """Run a function body that reports by calling its last argument."""
        return self.call("POST", "/execute/async", {"script": script, "args": list(args)})

    def devtools(self, command: str, params: dict[str, Any]) -> Any:
        return self.call("POST", "/goog/cdp/execute", {"cmd": command, "params": params})

    def emulate(self, width: int, height: int, *, mobile: bool, dark: bool) -> None:
        """Screen size (a phone honours the page's viewport meta) and the colour scheme."""
        self.devtools(
            "Emulation.setDeviceMetricsOverride",
            {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": mobile},
        )
        scheme = "dark" if dark else "light"
        self.devtools(
            "Emulation.setEmulatedMedia",
            {"features": [{"name": "prefers-color-scheme", "value": scheme}]},
        )

    def screenshot(self) -> bytes:
        """The viewport as PNG."""
        return base64.b64decode(self.call("GET", "/screenshot"))

    def requests(self) -> list[str]:
        """URLs the browser asked for since the last call (from the performance log)."""
        entries = self.call("POST", "/se/log", {"type": "performance"})
        found = []
        for entry in entries:
            message = json.loads(entry["message"])["message"]
            if message["method"] == "Network.requestWillBeSent":
                found.append(message["params"]["request"]["url"])
        return found


@contextmanager
def chromium(profile: Path) -> Iterator[Browser]:
    """A headless Chromium session whose profile lives in `profile` (a new, empty folder)."""
    browser, driver = shutil.which(CHROMIUM), shutil.which(CHROMEDRIVER)
    if not browser or not driver:
        raise BrowserMissing("install them: apt-get install -y chromium chromium-driver")
    process = subprocess.Popen(
        [driver, "--port=0", f"--log-path={profile / 'chromedriver.log'}"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    try:
        port = _driver_port(process)
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60) as http:
            session = _new_session(http, browser, profile / "profile")
            try:
                yield Browser(http, session)
            finally:
                http.delete(f"/session/{session}")
    finally:
        process.terminate()
        process.wait(timeout=10)
        if process.stdout:
            process.stdout.close()


def _driver_port(process: subprocess.Popen[bytes]) -> int:
    assert process.stdout is not None
    for line in process.stdout:
        found = STARTED.search(line)
        if found:
            return int(found.group(1))
    raise BrowserMissing("chromedriver exited before it listened")


def _new_session(http: httpx.Client, browser: str, profile: Path) -> str:
    options = {
        "binary": browser,
        "args": [*FLAGS, f"--user-data-dir={profile}", "--window-size=1280,900"],
    }
    capabilities = {
        "browserName": "chrome",
        "goog:chromeOptions": options,
        "goog:loggingPrefs": {"performance": "ALL"},
    }
    response = http.post("/session", json={"capabilities": {"alwaysMatch": capabilities}})
    value = response.json()["value"]
    if response.status_code != 200:
        raise BrowserMissing(f"chromium did not start: {value.get('message')}")
    return str(value["sessionId"])
