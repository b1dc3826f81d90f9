"""The voice end-to-end stack of these tests (tests/e2e/calls/stack.py builds it): one per
package with ``--edge none``, one per module that asks for Kamailio in front of three workers."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.e2e.calls.stack import (
    CALLER,
    NUMBER,
    OTHER_NUMBER,
    UNHEARD_NUMBER,
    App,
    VoiceStack,
    own_voice_number,
    running_voice_stack,
)
from tests.gateway.events.harness import wait_until
from tests.sip.support import require

__all__ = ["CALLER", "NUMBER", "OTHER_NUMBER", "UNHEARD_NUMBER", "App", "VoiceStack", "own_voice_number"]


@pytest.fixture(scope="package")
def voice_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[VoiceStack]:
    require("sipp")
    with running_voice_stack(
        tmp_path_factory.mktemp("voice-e2e"),
        # the calls' sweeper (test_lost_calls.py): short bounds, well above a heartbeat
        extra_env={"TRUNKLINE_CALL_PLACE_TIMEOUT_SECONDS": "3", "TRUNKLINE_SIP_PROCESS_LOST_SECONDS": "5"},
    ) as stack:
        yield stack


KAMAILIO_WORKERS = 3


@pytest.fixture(scope="module")
def kamailio_voice_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[VoiceStack]:
    """The production edge: Kamailio on the trunk port, its dispatcher over three workers."""
    require("sipp")
    require("kamailio")
    with running_voice_stack(
        tmp_path_factory.mktemp("voice-kamailio-e2e"),
        edge="kamailio",
        workers=KAMAILIO_WORKERS,
        database_prefix="trunkline_voice_kamailio_e2e",
    ) as stack:
        yield stack


def _each_test(voice: VoiceStack, request: pytest.FixtureRequest) -> Iterator[VoiceStack]:
    voice.app.on_incoming = None
    yield voice
    if request.node.rep_call.failed if hasattr(request.node, "rep_call") else False:
        for role in ("sip", "worker", "api"):
            print(f"--- {role} log ---\n{voice.log(role)}")


@pytest.fixture
def stack(voice_stack: VoiceStack, request: pytest.FixtureRequest) -> Iterator[VoiceStack]:
    yield from _each_test(voice_stack, request)


@pytest.fixture
def kamailio_stack(kamailio_voice_stack: VoiceStack, request: pytest.FixtureRequest) -> Iterator[VoiceStack]:
    yield from _each_test(kamailio_voice_stack, request)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    if report.when == "call":
        item.rep_call = report  # type: ignore[attr-defined]
    return report


def wait(predicate: Callable[[], Any], timeout: float = 20.0, what: str = "") -> Any:
    return wait_until(predicate, timeout, what=what)


def now() -> float:
    return time.monotonic()
