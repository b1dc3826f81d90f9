from __future__ import annotations

from collections.abc import Iterator

import pytest

from .harness import Postgres


@pytest.fixture(scope="session")
def postgres() -> Iterator[Postgres]:
    pg = Postgres()
    try:
        yield pg
    finally:
        pg.drop_all()
