"""The events runtime's callback tokens: one signature per resource a minute, not per callback."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import jwt

from gateway.core.settings import Settings
from gateway.events.backoff import Backoff
from gateway.events.runtime import CALLBACK_TOKEN_REUSE, Runtime, topic_namer


def _runtime(tmp_path: Path) -> Runtime:
    settings = Settings(data_dir=tmp_path, public_endpoint="https://gw.example/")
    return Runtime(settings, None, None, Backoff(1, 2), topic_namer(settings))  # type: ignore[arg-type]


def test_a_token_is_reused_for_a_minute_then_signed_again(tmp_path: Path) -> None:
    rt = _runtime(tmp_path)
    now = datetime(2026, 12, 7, 2, 0, tzinfo=UTC)
    first = rt.callback_token("resource-a", now)
    assert rt.callback_token("resource-a", now + CALLBACK_TOKEN_REUSE - timedelta(seconds=1)) == first
    assert rt.callback_token("resource-b", now) != first  # its own audience
    later = rt.callback_token("resource-a", now + CALLBACK_TOKEN_REUSE)
    assert later != first
    claims = jwt.decode(later, options={"verify_signature": False})
    assert claims["aud"] == "resource-a"
    assert claims["iat"] == int((now + CALLBACK_TOKEN_REUSE).timestamp())


def test_a_clock_that_went_back_gets_a_new_token(tmp_path: Path) -> None:
    rt = _runtime(tmp_path)
    now = datetime(2026, 12, 7, 2, 0, tzinfo=UTC)
    first = rt.callback_token("resource-a", now)
    assert rt.callback_token("resource-a", now - timedelta(seconds=5)) != first
