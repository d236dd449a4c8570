"""A minimal W3C WebDriver client (plain HTTP, no dependencies) driving Debian's headless Chromium through
its chromedriver: what the HTML report's test needs, and nothing to download at run time."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

ELEMENT = "element-6066-11e4-a52e-4f735466cecf"
"""The key under which WebDriver returns an element reference."""


def find_chromium() -> tuple[str, str]:
    """(browser, driver) paths; missing ones are a failure with the install line, not a skip."""
    browser = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
    driver = shutil.which("chromedriver")
    assert browser and driver, "headless Chromium is needed: apt-get install chromium chromium-driver (.ci/run does)"
    return browser, driver


class Browser:
    """One headless Chromium session; `css(selector)` finds elements, `Element` clicks and reads them."""

    def __init__(self) -> None:
        browser, driver = find_chromium()
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        self.process = subprocess.Popen(
            [driver, f"--port={port}"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        self.base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 20
        while True:
            try:
                self._call("GET", "/status")
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        options = {
            "binary": browser,
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
        }
        created = self._call("POST", "/session", {"capabilities": {"alwaysMatch": {"goog:chromeOptions": options}}})
        self.session = f"/session/{created['sessionId']}"

    def _call(self, method: str, path: str, body: dict | None = None) -> dict:
        data = json.dumps(body or {}).encode() if method == "POST" else None
        request = urllib.request.Request(self.base + path, data=data, method=method,
                                         headers={"Content-Type": "application/json"})  # fmt: skip
        with urllib.request.urlopen(request, timeout=60) as response:
            return json.loads(response.read())["value"]

    def open(self, path: Path) -> None:
        self._call("POST", f"{self.session}/url", {"url": path.resolve().as_uri()})

    def css(self, selector: str, within: Element | None = None) -> list[Element]:
        where = f"{self.session}/element/{within.id}/elements" if within else f"{self.session}/elements"
        found = self._call("POST", where, {"using": "css selector", "value": selector})
        return [Element(self, item[ELEMENT]) for item in found]

    def close(self) -> None:
        try:
            self._call("DELETE", self.session)
        finally:
            self.process.terminate()
            self.process.wait(timeout=10)


class Element:
    def __init__(self, browser: Browser, element_id: str) -> None:
        self.browser, self.id = browser, element_id

    def click(self) -> None:
        self.browser._call("POST", f"{self.browser.session}/element/{self.id}/click")

    @property
    def text(self) -> str:
        return self.browser._call("GET", f"{self.browser.session}/element/{self.id}/text")

    def attribute(self, name: str) -> str | None:
        return self.browser._call("GET", f"{self.browser.session}/element/{self.id}/attribute/{name}")
