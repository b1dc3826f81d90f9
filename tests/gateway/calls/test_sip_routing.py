"""calls.sip_routing on both databases: the tenant's configuration stored and read back, and the
outbound plan that puts it before the operator's routes."""

from __future__ import annotations

import pytest

from gateway.calls import service, sip_routing
from gateway.calls.routing import RouteSource
from gateway.calls.schemas import RouteSpec, TrunkSpec
from gateway.core.db import Database
from gateway.numbers.models import Carrier
from gateway.resources import service as resources


@pytest.fixture
def resource_id(database: Database) -> str:
    with database.session() as session:
        return resources.create_resource(session, "tenant", "https://gw.example.test/").id


def test_outbound_plan_is_tenant_route_then_operator_route(database: Database, resource_id: str) -> None:
    with database.session() as session:
        session.add(Carrier(name="acme", kind="sip"))
        session.flush()
        for name in ("op1", "op2"):
            service.add_trunk(session, TrunkSpec(name=name, carrier="acme", host=f"{name}.example"))
        service.add_route(session, RouteSpec(prefix="+1", trunks=["op2", "op1"]))
        sip_routing.patch_configuration(
            session,
            resource_id,
            {
                "trunks": {"sbc.tenant.example": {"sipSignalingPort": 5067}},
                "routes": [{"name": "us", "numberPattern": r"^\+1\d{10}$", "trunks": ["sbc.tenant.example"]}],
            },
        )
    with database.read_session() as session:
        plan = sip_routing.outbound_plan(session, resource_id, "+14255550123")
        other = sip_routing.outbound_plan(session, resource_id, "+1425")
        nowhere = sip_routing.outbound_plan(session, resource_id, "+4420")
    assert [(d.source, d.trunk, d.port) for d in plan.destinations] == [
        (RouteSource.TENANT, "sbc.tenant.example", 5067),
        (RouteSource.OPERATOR, "op2", 5060),
        (RouteSource.OPERATOR, "op1", 5060),
    ]
    assert [d.trunk for d in other.destinations] == ["op2", "op1"]
    assert not nowhere.routable


def test_a_patch_writes_only_what_changed_and_reads_back_in_order(
    database: Database, resource_id: str
) -> None:
    trunks = {f"t{i}.example.com": {"sipSignalingPort": 5060 + i} for i in range(5)}
    routes = [
        {"name": f"r{i}", "numberPattern": f"^\\+{i}\\d*$", "trunks": [f"t{i}.example.com"]} for i in range(5)
    ]
    with database.session() as session:
        sip_routing.patch_configuration(session, resource_id, {"trunks": trunks, "routes": routes[::-1]})
    with database.session() as session:
        after = sip_routing.patch_configuration(
            session, resource_id, {"trunks": {"t9.example.com": {"sipSignalingPort": 5099}}}
        )
    with database.read_session() as session:
        assert sip_routing.get_configuration(session, resource_id) == after
    assert [r["name"] for r in after["routes"]] == ["r4", "r3", "r2", "r1", "r0"]
    assert after["trunks"]["t9.example.com"] == {"sipSignalingPort": 5099}
    assert len(after["trunks"]) == 6


def test_a_deleted_resource_takes_its_configuration(database: Database, resource_id: str) -> None:
    with database.session() as session:
        sip_routing.patch_configuration(
            session, resource_id, {"trunks": {"a.example.com": {"sipSignalingPort": 1}}}
        )
    with database.session() as session:
        resources.delete_resource(session, "tenant")
    with database.read_session() as session:
        assert sip_routing.get_configuration(session, resource_id) == {"trunks": {}, "routes": []}
