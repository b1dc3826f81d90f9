"""Shared fixtures: a clean environment, both databases, the app and signed clients.

DB-touching tests take the ``database`` fixture (or ``client``), which is parametrised over
"sqlite" (a migrated file copied into the test's tmp_path) and "postgresql" (one throw-away
database per run, migrated once, emptied after every test). PostgreSQL being unreachable is a
failure, never a skip.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import settings as hypothesis_settings

import gateway.models  # noqa: F401 - registers every table on Base.metadata
from gateway.app import create_app
from gateway.core.db import Database
from gateway.core.migrate import upgrade
from gateway.core.sealed_columns import use_keyring
from gateway.core.settings import Settings, get_settings, set_command_defaults
from tests.support.acs import BASE_URL, OPERATOR_TOKEN, AcsClient, create_resource
from tests.support.postgres import (
    POSTGRES_URL_ENV,
    Postgres,
    PostgresUnavailable,
    empty_all_tables,
    throwaway_database,
)
from tests.support.secrets_keys import TEST_SECRETS_KEYS

# Property tests check what is true, not how fast: Hypothesis's 200 ms per-example deadline
# turned a loaded 2-core machine's pauses (a first import, the other core busy) into failures.
hypothesis_settings.register_profile("trunkline", deadline=None)
hypothesis_settings.load_profile("trunkline")


@pytest.fixture(scope="session")
def _data_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("xdg-data-home")


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch, _data_home: Path) -> Iterator[None]:
    """No TRUNKLINE_* variable of the developer's shell reaches the code under test, and nothing
    it runs (settings without a data dir, `up`'s state file, the local broker) writes under the
    user's home: the default data dir is a temporary one, here and in the processes tests start."""
    for name in list(os.environ):
        if name.startswith("TRUNKLINE_") and name != POSTGRES_URL_ENV:
            monkeypatch.delenv(name)
    monkeypatch.setenv("XDG_DATA_HOME", str(_data_home))
    # Stored secrets are encrypted with the tests' key, here and in the processes tests start.
    monkeypatch.setenv("TRUNKLINE_SECRETS_KEYS", TEST_SECRETS_KEYS)
    set_command_defaults({})  # nor the state of a `trunkline up` a CLI test found
    get_settings.cache_clear()
    use_keyring(None)
    yield
    use_keyring(None)
    set_command_defaults({})
    get_settings.cache_clear()


# PostgreSQL -----------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A fresh, migrated PostgreSQL database for this run, dropped at the end."""
    try:
        with throwaway_database("trunkline_test") as url:
            database = Database(url)
            upgrade(database.engine)
            database.dispose()
            yield url
    except PostgresUnavailable as exc:
        pytest.fail(str(exc), pytrace=False)


@pytest.fixture(scope="session")
def postgres() -> Iterator[Postgres]:
    """Migrated PostgreSQL databases made on demand (``new_database()``), dropped at the end: for
    tests whose other processes (workers) share a database of their own."""
    try:
        databases = Postgres()
    except PostgresUnavailable as exc:
        pytest.fail(str(exc), pytrace=False)
    try:
        yield databases
    finally:
        databases.drop_all()


# SQLite ---------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated SQLite file; each test gets a copy (cheaper than migrating every time)."""
    path = tmp_path_factory.mktemp("sqlite-template") / "template.db"
    database = Database(f"sqlite:///{path}")
    upgrade(database.engine)
    database.dispose()  # closing the last connection checkpoints the WAL into the file
    assert not path.with_name(path.name + "-wal").exists()
    return path


# Either -----------------------------------------------------------------------------------------


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db_backend(request: pytest.FixtureRequest) -> str:
    backend: str = request.param
    return backend


@pytest.fixture
def database_url(db_backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if db_backend == "postgresql":
        url: str = request.getfixturevalue("postgres_url")
        return url
    template: Path = request.getfixturevalue("sqlite_template")
    path = tmp_path / "trunkline.db"
    shutil.copyfile(template, path)
    return f"sqlite:///{path}"


@pytest.fixture
def database(database_url: str, db_backend: str) -> Iterator[Database]:
    database = Database(database_url)
    try:
        yield database
    finally:
        if db_backend == "postgresql":
            empty_all_tables(database)
        database.dispose()


# The application --------------------------------------------------------------------------------


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    return Settings(
        data_dir=tmp_path / "data",
        database_url=database_url,
        operator_token=OPERATOR_TOKEN,
        api_host="testserver",
        api_port=443,
    )


@pytest.fixture
def app(settings: Settings, database: Database) -> FastAPI:
    return create_app(settings, database)


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app, base_url=BASE_URL) as test_client:
        yield test_client


@pytest.fixture
def resource_a(client: TestClient) -> dict[str, str]:
    return create_resource(client, "tenant-a")


@pytest.fixture
def resource_b(client: TestClient) -> dict[str, str]:
    return create_resource(client, "tenant-b")


@pytest.fixture
def acs_a(client: TestClient, resource_a: dict[str, str]) -> AcsClient:
    return AcsClient(client, resource_a["primaryKey"])


@pytest.fixture
def acs_b(client: TestClient, resource_b: dict[str, str]) -> AcsClient:
    return AcsClient(client, resource_b["primaryKey"])
