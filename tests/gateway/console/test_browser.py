"""The console in a real headless browser (Debian's ``chromium``, driven over the Chrome DevTools
protocol) against a real ``trunkline api`` on 127.0.0.1 with TLS: refused without the operator
token, the login form's cookie, then every page. Fails, not skips, when chromium is missing
(``scripts/bootstrap.sh --dev`` installs it)."""

from __future__ import annotations

import itertools
import json
import shutil
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from websockets.sync.client import ClientConnection, connect

from tests.e2e.helpers import TrunklineServer, running_trunkline, stop_process

pytestmark = pytest.mark.e2e

CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--ignore-certificate-errors",
    "--remote-debugging-address=127.0.0.1",
    "--remote-debugging-port=0",
)
WAIT_SECONDS = 20.0


class Page:
    """One browser tab over CDP: send a command, wait for its answer or an event."""

    def __init__(self, socket: ClientConnection) -> None:
        self.socket = socket
        self.ids = itertools.count(1)
        self.events: list[dict[str, Any]] = []

    def call(self, method: str, **params: Any) -> dict[str, Any]:
        number = next(self.ids)
        self.socket.send(json.dumps({"id": number, "method": method, "params": params}))
        deadline = time.monotonic() + WAIT_SECONDS
        while time.monotonic() < deadline:
            message = json.loads(self.socket.recv(timeout=WAIT_SECONDS))
            if message.get("id") == number:
                assert "error" not in message, message
                result: dict[str, Any] = message["result"]
                return result
            self.events.append(message)
        raise AssertionError(f"no answer to {method}")

    def wait_for(self, event: str) -> None:
        deadline = time.monotonic() + WAIT_SECONDS
        while time.monotonic() < deadline:
            if any(e.get("method") == event for e in self.events):
                self.events.clear()
                return
            self.events.append(json.loads(self.socket.recv(timeout=WAIT_SECONDS)))
        raise AssertionError(f"no {event}")

    def evaluate(self, expression: str) -> Any:
        return self.call("Runtime.evaluate", expression=expression, returnByValue=True)["result"].get("value")

    def open(self, url: str) -> tuple[int, str]:
        """Navigate and wait for the load: the HTTP status and the page's text."""
        self.events.clear()
        self.call("Page.navigate", url=url)
        self.wait_for("Page.loadEventFired")
        return self.loaded()

    def loaded(self) -> tuple[int, str]:
        status = self.evaluate("performance.getEntriesByType('navigation')[0].responseStatus")
        return int(status), str(self.evaluate("document.body.innerText"))


@pytest.fixture
def chromium(tmp_path: Path) -> Iterator[Page]:
    binary = shutil.which("chromium")
    if binary is None:
        pytest.fail("chromium is missing: run scripts/bootstrap.sh --dev (apt-get install chromium)")
    profile = tmp_path / "chromium-profile"
    proc = subprocess.Popen(
        [binary, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "about:blank"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        port_file = profile / "DevToolsActivePort"
        deadline = time.monotonic() + WAIT_SECONDS
        while not (port_file.exists() and port_file.read_text().count("\n") >= 1):
            assert proc.poll() is None, "chromium exited"
            assert time.monotonic() < deadline, "chromium never opened its DevTools port"
            time.sleep(0.1)
        port = int(port_file.read_text().splitlines()[0])
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10) as answer:
            targets = json.load(answer)
        (tab,) = [t for t in targets if t["type"] == "page"]
        with connect(tab["webSocketDebuggerUrl"], max_size=None, open_timeout=10) as socket:
            page = Page(socket)
            page.call("Page.enable")
            page.call("Network.enable")
            yield page
    finally:
        stop_process(proc)


@pytest.fixture
def trunkline(tmp_path: Path) -> Iterator[TrunklineServer]:
    with running_trunkline(tmp_path / "gateway") as server:
        yield server


def test_console_in_chromium_refuses_without_token_then_logs_in(
    chromium: Page, trunkline: TrunklineServer
) -> None:
    base = f"https://127.0.0.1:{trunkline.port}/admin/console"
    status, text = chromium.open(base)
    assert status == 401
    assert "Operator login" in text
    assert "Processes" not in text
    status, text = chromium.open(f"{base}/messages")
    assert status == 401

    chromium.evaluate(
        f"document.querySelector('input[name=token]').value = {json.dumps('wrong')};"
        "document.querySelector('form').submit()"
    )
    chromium.wait_for("Page.loadEventFired")
    status, text = chromium.loaded()
    assert status == 401
    assert "not the operator token" in text

    chromium.evaluate(
        f"document.querySelector('input[name=token]').value = {json.dumps(trunkline.operator_token)};"
        "document.querySelector('form').submit()"
    )
    chromium.wait_for("Page.loadEventFired")
    status, text = chromium.loaded()
    assert status == 200
    for part in ("Processes", "SMPP binds", "Queues", "webhook deliveries dead-lettered", "SIP workers"):
        assert part in text
    (cookie,) = chromium.call("Network.getCookies", urls=[base])["cookies"]
    assert cookie["httpOnly"] is True
    assert cookie["secure"] is True
    assert cookie["sameSite"] == "Strict"
    assert chromium.evaluate("document.cookie") == ""  # HttpOnly: no script sees it

    for path, heading in (
        ("/messages?to=%2B1555&status=queued", "Messages"),
        ("/subscriptions", "Subscriptions and dead letters"),
        ("/carriers", "Carriers"),
    ):
        status, text = chromium.open(base + path)
        assert status == 200, path
        assert heading in text, path
    status, text = chromium.open(f"{base}/messages?status=nonsense")
    assert status == 200
    assert "is not one of" in text
