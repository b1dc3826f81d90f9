"""Resource rules on SQLite and PostgreSQL: names, endpoints, keys, uniqueness, deletion."""

from __future__ import annotations

import base64
import threading

import pytest

from gateway.core.db import Database
from gateway.core.errors import BadRequest, Conflict, NotFound
from gateway.identity.models import Identity
from gateway.resources import service
from gateway.resources.models import Resource
from gateway.resources.service import KeyType

ENDPOINT = "https://sms.example.com/"


def _create(database: Database, name: str, endpoint: str = ENDPOINT) -> Resource:
    with database.session() as session:
        return service.create_resource(session, name, endpoint)


@pytest.mark.parametrize("name", ["a", "0", "tenant-1", "a" * 63, "a-b-c", "9lives"])
def test_valid_names(database: Database, name: str) -> None:
    resource = _create(database, name)
    assert resource.name == name


@pytest.mark.parametrize("name", ["", "A", "Tenant", "-a", "a-", "a_b", "a.b", "a b", "a" * 64, "ü"])
def test_invalid_names(database: Database, name: str) -> None:
    with pytest.raises(BadRequest) as excinfo:
        _create(database, name)
    assert excinfo.value.target == "name"
    assert excinfo.value.code == "InvalidResourceName"
    with database.session() as session:
        assert service.list_resources(session) == []


def test_created_resource(database: Database) -> None:
    resource = _create(database, "tenant", "https://SMS.Example.com:8443/some/path")
    assert resource.endpoint == "https://SMS.Example.com:8443/"
    assert resource.endpoint_host == "sms.example.com:8443"
    keys = [base64.b64decode(resource.primary_key, validate=True), base64.b64decode(resource.secondary_key)]
    assert [len(k) for k in keys] == [32, 32]
    assert keys[0] != keys[1]
    assert resource.created_at.tzinfo is not None
    with database.session() as session:
        stored = service.get_resource(session, "tenant")
        assert (stored.id, stored.primary_key, stored.secondary_key) == (
            resource.id,
            resource.primary_key,
            resource.secondary_key,
        )
        assert stored.created_at == resource.created_at
        assert service.get_resource(session, resource.id).name == "tenant"


@pytest.mark.parametrize(
    "endpoint", ["http://sms.example.com/", "sms.example.com", "https://", "https://h/?q=1", "https://h/#f"]
)
def test_invalid_endpoints(database: Database, endpoint: str) -> None:
    with pytest.raises(BadRequest) as excinfo:
        _create(database, "tenant", endpoint)
    assert excinfo.value.target == "endpoint"


def test_duplicate_name_conflicts(database: Database) -> None:
    _create(database, "tenant")
    with pytest.raises(Conflict) as excinfo:
        _create(database, "tenant", "https://other.example.com/")
    assert excinfo.value.code == "ResourceAlreadyExists"
    with database.session() as session:
        assert len(service.list_resources(session)) == 1


def test_concurrent_create_of_one_name(database: Database) -> None:
    """Two creates racing on one name: one resource, and the other caller gets a Conflict."""
    flushed, release = threading.Event(), threading.Event()
    outcomes: dict[str, object] = {}

    def first() -> None:
        with database.session() as session:
            service.create_resource(session, "race", ENDPOINT)
            flushed.set()
            release.wait(10)

    def second() -> None:
        try:
            _create(database, "race")
            outcomes["second"] = "created"
        except Conflict as exc:
            outcomes["second"] = exc

    one = threading.Thread(target=first)
    one.start()
    assert flushed.wait(10)
    two = threading.Thread(target=second)
    two.start()
    two.join(0.3)  # give the second create time to block on the first's write
    release.set()
    one.join(10)
    two.join(10)
    assert isinstance(outcomes.get("second"), Conflict)
    with database.session() as session:
        assert [r.name for r in service.list_resources(session)] == ["race"]


def test_list_is_ordered_by_creation(database: Database) -> None:
    for name in ("zeta", "alpha", "mid"):
        _create(database, name)
    with database.session() as session:
        assert [r.name for r in service.list_resources(session)] == ["zeta", "alpha", "mid"]


def test_get_missing(database: Database) -> None:
    with database.session() as session, pytest.raises(NotFound) as excinfo:
        service.get_resource(session, "nope")
    assert excinfo.value.code == "ResourceNotFound"


def test_delete_cascades_to_identities(database: Database) -> None:
    doomed, kept = _create(database, "doomed"), _create(database, "kept")
    with database.session() as session:
        session.add_all(
            [
                Identity(id="8:acs:doomed_1", resource_id=doomed.id),
                Identity(id="8:acs:kept_1", resource_id=kept.id),
            ]
        )
    with database.session() as session:
        service.delete_resource(session, "doomed")
    with database.session() as session:
        assert [r.name for r in service.list_resources(session)] == ["kept"]
        assert session.get(Identity, "8:acs:doomed_1") is None
        assert session.get(Identity, "8:acs:kept_1") is not None
        with pytest.raises(NotFound):
            service.delete_resource(session, "doomed")


@pytest.mark.parametrize("key_type", list(KeyType))
def test_regenerate_one_key(database: Database, key_type: KeyType) -> None:
    before = _create(database, "tenant")
    with database.session() as session:
        after = service.regenerate_key(session, before.id, key_type)
    changed, unchanged = (
        ("primary_key", "secondary_key") if key_type is KeyType.PRIMARY else ("secondary_key", "primary_key")
    )
    with database.session() as session:
        stored = service.get_resource(session, "tenant")
    assert getattr(stored, changed) == getattr(after, changed) != getattr(before, changed)
    assert len(base64.b64decode(getattr(stored, changed))) == 32
    assert getattr(stored, unchanged) == getattr(before, unchanged)
    assert stored.keys_rotated_at > before.keys_rotated_at


def test_regenerate_missing(database: Database) -> None:
    with database.session() as session, pytest.raises(NotFound):
        service.regenerate_key(session, "nope", KeyType.PRIMARY)


def test_connection_string() -> None:
    assert service.connection_string(ENDPOINT, "a2V5") == f"endpoint={ENDPOINT};accesskey=a2V5"


def test_generated_keys_are_random() -> None:
    keys = {service.generate_access_key() for _ in range(50)}
    assert len(keys) == 50
    assert all(len(base64.b64decode(k, validate=True)) == 32 for k in keys)
