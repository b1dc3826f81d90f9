"""Fixtures for the SMPP side: the node-smpp SMSC and binds with test-friendly timings."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from sms.bind import SmppBind
from sms.bind_types import BindConfig
from tests.support.smsc import SmscProcess, smsc_available

BindFactory = Callable[..., SmppBind]


@pytest.fixture
def smsc() -> Iterator[SmscProcess]:
    reason = smsc_available()
    if reason:
        pytest.fail(f"the test SMSC cannot run: {reason}", pytrace=False)
    with SmscProcess.start() as process:
        yield process


def bind_config(smsc: SmscProcess, **overrides: Any) -> BindConfig:
    settings: dict[str, Any] = {
        "name": "test",
        "host": smsc.host,
        "port": smsc.port,
        "system_id": smsc.system_id,
        "password": smsc.password,
        "window_size": 10,
        "enquire_link_interval": 30.0,
        "enquire_link_timeout": 1.0,
        "response_timeout": 2.0,
        "queue_timeout": 10.0,
        "connect_timeout": 2.0,
        "io_timeout": 2.0,
        "reconnect_backoff_initial": 0.05,
        "reconnect_backoff_max": 0.5,
        "throttle_backoff_initial": 0.05,
        "throttle_backoff_max": 0.5,
        "drain_timeout": 1.0,
        "unbind_timeout": 1.0,
    }
    settings.update(overrides)
    return BindConfig(**settings)


@pytest.fixture
def make_bind(smsc: SmscProcess) -> Iterator[BindFactory]:
    """Start binds against the SMSC; every one is stopped at teardown."""
    binds: list[SmppBind] = []

    def factory(start: bool = True, wait: bool = True, **overrides: Any) -> SmppBind:
        bind = SmppBind(bind_config(smsc, **overrides))
        binds.append(bind)
        if start:
            bind.start()
            if wait:
                assert bind.wait_bound(5.0), f"bind did not come up: {bind.stats()}"
        return bind

    yield factory
    for bind in binds:
        bind.stop(timeout=5.0)
