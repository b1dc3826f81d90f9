"""Trunks that register with their carrier, end to end: ``trunkline sip trunk add ... --register``
with digest credentials, the running ``trunkline sip`` registers (SIPp as the registrar: 401
first, then it verifies the digest of each REGISTER, the refresh included) and
``trunkline sip status`` shows the outcome; a wrong password shows as failed with the
registrar's 403."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.calls.conftest import VoiceStack, wait
from tests.sip.support import HOST
from tests.sip.test_registration import PASSWORD, registrar

pytestmark = [pytest.mark.sip, pytest.mark.e2e, pytest.mark.postgres, pytest.mark.timeout(120)]


def registration(stack: VoiceStack, trunk: str) -> dict[str, Any] | None:
    done = stack.cli("sip", "status", "--json")
    assert done.returncode == 0, done.stderr
    found = [r for r in json.loads(done.stdout)["registrations"] if r["trunk"] == trunk]
    return found[0] if found else None


def add_trunk(stack: VoiceStack, name: str, port: int, password: str) -> None:
    done = stack.cli(
        "sip", "trunk", "add", name, "--carrier", "voice-test-carrier", "--host", HOST,
        "--port", str(port), "--allow", "127.0.0.3/32",
        "--username", "trunk-user", "--password", password, "--register",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr


@pytest.mark.parametrize(
    ("password", "state", "status"), [(PASSWORD, "registered", 200), ("wrong", "failed", 403)]
)
def test_a_trunk_with_register_registers_and_sip_status_shows_it(
    stack: VoiceStack, tmp_path: Path, password: str, state: str, status: int
) -> None:
    sipp = registrar(tmp_path, f"sip:trunk-user@{HOST}:{stack.sip_port}")
    name = f"registered-{state}"
    try:
        add_trunk(stack, name, sipp.port, password)
        if state == "registered":
            assert sipp.wait(30) == 0, sipp.errors()  # both REGISTERs verified, the refresh too
        found = wait(
            lambda: (r := registration(stack, name)) is not None and r["state"] != "pending" and r,
            20,
            what="the registration's outcome",
        )
        assert (found["state"], found["status"]) == (state, status), found
        assert (found["expiresAt"] is not None) == (state == "registered")
        listed = json.loads(stack.cli("sip", "trunk", "list", "--json").stdout)
        [trunk] = [t for t in listed if t["name"] == name]
        assert trunk["registration"]["state"] == state
        text = stack.cli("sip", "status")
        assert name in text.stdout
        assert state in text.stdout
    finally:
        sipp.kill()
        stack.cli("sip", "trunk", "remove", name)
