"""The tenant's SipRouting API (``GET``/``PATCH /sip``, 2023-03-01) and the outbound route plan
that uses it: reading and writing the configuration around the pure rules of
sip_configuration.py and routing.py, and ACS's error shape for a refused patch."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from gateway.calls import repository, service
from gateway.calls.routing import OutboundPlan, plan_outbound
from gateway.calls.sip_configuration import (
    InvalidConfiguration,
    Problem,
    apply_patch,
    configuration_json,
    parse_patch,
)
from gateway.core.errors import AcsError

# ACS answers these two with 400 and every other refused configuration with 422.
_BAD_REQUEST = frozenset(
    {Problem.INVALID_BODY, Problem.DUPLICATED_ROUTE, Problem.ROUTE_WITH_DUPLICATED_TRUNK}
)
# ACS's inner messages (its outer one is the sentence about the input).
_INNER_MESSAGES = {
    Problem.EMPTY_PATCH: "Patch with no data provided.",
    Problem.INVALID_TRUNK_FQDN: "Trunk with an invalid FQDN.",
    Problem.INVALID_TRUNK_PORT: "Trunk with an invalid SIP signaling port.",
    Problem.INVALID_ROUTE_NAME: "Route with an invalid name.",
    Problem.INVALID_ROUTE_NUMBER_PATTERN: "Route with an invalid number pattern.",
    Problem.MISSING_TRUNK: "Route targeting a missing trunk.",
    Problem.DUPLICATED_ROUTE: "There is a duplicated route.",
    Problem.ROUTE_WITH_DUPLICATED_TRUNK: "There is a duplicated trunk in a route.",
}


class ConfigurationRefused(AcsError):
    """A refused SIP configuration, in ACS's shape: ``UnprocessableConfiguration`` with the reason
    as ``innererror``."""

    def __init__(self, problem: InvalidConfiguration) -> None:
        status = 400 if problem.problem in _BAD_REQUEST else 422
        super().__init__(status, "UnprocessableConfiguration", problem.message, problem.target)
        self.inner_code = problem.problem.value
        self.inner_message = _INNER_MESSAGES.get(problem.problem, problem.message)

    def body(self) -> dict[str, Any]:
        data = super().body()
        data["error"]["innererror"] = {"code": self.inner_code, "message": self.inner_message}
        return data


def get_configuration(session: Session, resource_id: str) -> dict[str, Any]:
    return configuration_json(repository.tenant_configuration(session, resource_id))


def patch_configuration(session: Session, resource_id: str, body: Any) -> dict[str, Any]:
    """Apply a merge patch to the resource's configuration; the configuration after it."""
    try:
        patch = parse_patch(body)
        repository.lock_resource(session, resource_id)
        before = repository.tenant_configuration(session, resource_id)
        after = apply_patch(before, patch)
    except InvalidConfiguration as exc:
        raise ConfigurationRefused(exc) from exc
    repository.save_tenant_configuration(session, resource_id, before, after)
    return configuration_json(after)


def outbound_plan(session: Session, resource_id: str, number: str) -> OutboundPlan:
    """Where a call of the resource to ``number`` (E.164) goes, in failover order."""
    routes, trunks = service.operator_routing(session)
    return plan_outbound(number, repository.tenant_configuration(session, resource_id), routes, trunks)
