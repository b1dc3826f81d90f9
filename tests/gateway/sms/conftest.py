"""Fixtures of the SMS tests: the node-smpp SMSC they bind to."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.smsc import SmscProcess, smsc_available


@pytest.fixture
def smsc() -> Iterator[SmscProcess]:
    reason = smsc_available()
    if reason:
        pytest.fail(reason, pytrace=False)
    with SmscProcess.start() as process:
        yield process
