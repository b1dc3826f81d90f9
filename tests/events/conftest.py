from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from .harness import Postgres


@pytest.fixture(scope="session")
def postgres() -> Iterator[Postgres]:
    pg = Postgres()
    try:
        yield pg
    finally:
        pg.drop_all()


@pytest.fixture
def tmp(tmp_path: Path) -> Path:
    return tmp_path
