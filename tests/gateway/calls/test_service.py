"""calls.service on both databases: the config file, what the SIP side reads of the operator's
trunks and routes, and a deleted carrier taking its trunks with it."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.calls import service
from gateway.calls.routing import Transport, trunk_for_source
from gateway.calls.schemas import RouteSpec, TrunkSpec
from gateway.core.db import Database
from gateway.core.errors import AcsError
from gateway.numbers.models import Carrier

EXAMPLE = Path(__file__).resolve().parents[3] / "infra" / "sip.toml.example"


def test_the_example_config_file_applies_and_reapplies(database: Database) -> None:
    for _ in range(2):
        with database.session() as session:
            assert service.apply_config_file(session, EXAMPLE) == service.AppliedConfig(trunks=2, routes=2)
    with database.session() as session:
        trunks = {t["name"]: t for t in service.list_trunks(session)}
        assert sorted(trunks) == ["carrier-a-east", "carrier-b"]
        assert trunks["carrier-a-east"]["register"] is True
        assert trunks["carrier-b"]["srtp"] == "mandatory"
        assert (trunks["carrier-a-east"]["dtmf"], trunks["carrier-b"]["dtmf"]) == ("auto", "inband")
        assert service.list_routes(session) == [
            {"prefix": "+", "trunks": ["carrier-b"]},
            {"prefix": "+1", "trunks": ["carrier-a-east", "carrier-b"]},
        ]
        routes, by_name = service.operator_routing(session)
        assert by_name["carrier-b"].transport is Transport.TLS
        # carrier-b gives no allow-list: its host (an IP address) is what it allows.
        assert trunk_for_source("198.51.100.20", by_name.values()).trunk == "carrier-b"
        assert trunk_for_source("192.0.2.5", by_name.values()).trunk == "carrier-a-east"
        assert not trunk_for_source("203.0.113.1", by_name.values()).allowed
        assert [r.prefix for r in routes] == ["+", "+1"]


def test_a_file_sets_each_listed_prefix_exactly(database: Database, tmp_path: Path) -> None:
    with database.session() as session:
        service.apply_config_file(session, EXAMPLE)
    path = tmp_path / "sip.toml"
    path.write_text('[[routes]]\nprefix = "+1"\ntrunks = ["carrier-b", "carrier-a-east"]\n')
    with database.session() as session:
        assert service.apply_config_file(session, path) == service.AppliedConfig(trunks=0, routes=1)
        assert service.list_routes(session)[1] == {"prefix": "+1", "trunks": ["carrier-b", "carrier-a-east"]}


@pytest.mark.parametrize(
    ("text", "words"),
    [
        (
            "[[trunks]]\nname = 'x'\nhost = 'a.example'\n",
            "[[trunks]] number 1 ('x'): The carrier is required.",
        ),
        ("[[routes]]\nprefix = '1'\ntrunks = ['x']\n", "[[routes]] number 1 ('1'): The prefix '1' must be"),
        ("[[routes]]\nprefix = '+1'\ntrunks = ['nope']\n", "There is no SIP trunk named 'nope'."),
        ("[[lines]]\n", "unknown section(s) lines"),
        ("trunks = [\n", "is not valid TOML"),
    ],
)
def test_a_bad_file_says_what_is_wrong_and_changes_nothing(
    database: Database, tmp_path: Path, text: str, words: str
) -> None:
    path = tmp_path / "sip.toml"
    path.write_text(text)
    with pytest.raises(AcsError) as caught, database.session() as session:
        service.apply_config_file(session, path)
    assert words in caught.value.message
    with database.session() as session:
        assert service.list_trunks(session) == []


def test_a_deleted_carrier_takes_its_trunks_and_routes(database: Database) -> None:
    with database.session() as session:
        session.add(Carrier(name="acme", kind="both"))
        session.flush()
        service.add_trunk(session, TrunkSpec(name="t", carrier="acme", host="a.example"))
        service.add_route(session, RouteSpec(prefix="+", trunks=["t"]))
    with database.session() as session:
        carrier = session.query(Carrier).filter_by(name="acme").one()
        session.delete(carrier)
    with database.session() as session:
        assert service.list_trunks(session) == []
        assert service.list_routes(session) == []
