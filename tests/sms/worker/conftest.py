"""Fixtures of the SMPP worker's tests: a harness with a resource owning SENDER, fast retries."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway.core.db import Database
from gateway.core.settings import Settings
from gateway.resources.service import create_resource
from tests.gateway.sms.support import give_number
from tests.sms.worker.harness import SENDER, Harness


@pytest.fixture
def harness(database: Database, tmp_path: Path) -> Iterator[Harness]:
    settings = Settings(
        data_dir=tmp_path / "data",
        database_url=database.url,
        sms_claim_lease_seconds=6,
        sms_retry_base_seconds=0.1,
        sms_retry_max_seconds=0.5,
        sms_optout_reply="You are unsubscribed.",
        # what has no job (auto-replies, the shared-queue test's rows) goes through the reconciler
        sms_job_grace_seconds=1,
        sms_reconcile_interval_seconds=0.2,
    )
    with database.session() as session:
        resource_id = create_resource(session, "sms-app", "https://gateway.test/").id
    give_number(database, resource_id, SENDER)
    h = Harness(database, settings, resource_id)
    yield h
    h.stop()
