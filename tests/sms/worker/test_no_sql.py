"""The SMPP worker keeps no SQL: its statements are gateway/sms/repository/worker.py's."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.gateway.test_sql_in_repositories import _statement_imports

WORKER = Path(__file__).resolve().parents[3] / "sms" / "worker"
MODULES = sorted(WORKER.glob("*.py"))


def test_the_worker_has_modules_to_check() -> None:
    assert {path.name for path in MODULES} >= {"claims.py", "writer.py", "receipts.py", "sweeper.py"}


@pytest.mark.parametrize("path", MODULES, ids=lambda path: path.name)
def test_no_statement_is_built_in_the_worker(path: Path) -> None:
    assert _statement_imports(path) == []
