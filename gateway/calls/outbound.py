"""CallAutomation 2026-03-12's createCall to a PSTN number, the API side.

The request names one PSTN target and, as its caller id, a number the resource owns with
outbound calling. The call's destinations are the route plan (sip_routing.outbound_plan: the
tenant's routes, then the operator's) frozen into the call row; the first INVITE goes to the
SIP processes' shared queue, the one that takes it records itself on the leg and the call
(repository.claim_placement), and failover to the next destination (transitions.dial) happens there.
A number with no route is a call that fails at once: 201, then ``CreateCallFailed``.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from gateway.calls import callbacks, repository, sip_routing, transitions
from gateway.calls.connections import Done, optional_text, phone_target, request_object, required_text
from gateway.calls.lifecycle import CallState, Direction, LegEnded, Transition
from gateway.calls.models import Call
from gateway.calls.routing import Destination, RouteSource
from gateway.core.errors import AcsError, BadRequest
from gateway.events import subscriptions
from gateway.events.ssrf import Policy
from gateway.events.subscriptions import Limits
from gateway.numbers.purchased import owned_number

OUTBOUND_CAPABILITIES = frozenset({"outbound", "inbound+outbound"})
NO_ROUTE_STATUS = 404  # the SIP status a call to a number no route takes ends with


class CallerIdNotAllowed(AcsError):
    """403: the caller id is not a number of this resource with outbound calling."""

    def __init__(self, number: str) -> None:
        super().__init__(
            403,
            "Forbidden",
            f"{number} is not a phone number of this resource with outbound calling.",
            "sourceCallerIdNumber",
        )


def call_target(body: dict[str, Any]) -> str:
    targets = body.get("targets")
    if not isinstance(targets, list) or not targets:
        raise BadRequest("targets is required: one PSTN phone number.", "targets")
    if len(targets) != 1:
        raise BadRequest("Only one target is supported: a PSTN phone number.", "targets")
    try:
        return phone_target(targets[0])
    except BadRequest as exc:
        raise BadRequest(exc.message, "targets") from exc


def caller_id(body: dict[str, Any]) -> str:
    raw = body.get("sourceCallerIdNumber")
    value = raw.get("value") if isinstance(raw, dict) else None
    if not isinstance(value, str) or not value:
        raise BadRequest("sourceCallerIdNumber is required to call a PSTN number.", "sourceCallerIdNumber")
    try:
        return phone_target({"phoneNumber": {"value": value}})
    except BadRequest as exc:
        raise BadRequest(
            "sourceCallerIdNumber must be an E.164 phone number.", "sourceCallerIdNumber"
        ) from exc


def destination_json(destination: Destination, username: str | None) -> dict[str, Any]:
    """One destination as the call row keeps it (no password: transitions.dial reads it from
    the operator's trunk when it places the INVITE)."""
    data: dict[str, Any] = {
        "source": destination.source.value,
        "route": destination.route,
        "trunk": destination.trunk,
        "host": destination.host,
        "port": destination.port,
        "transport": destination.transport.value,
    }
    if username:
        data["username"] = username
    return data


def create_call(
    session: Session,
    resource_id: str,
    body: Any,
    policy: Policy,
    limits: Limits,
    now: datetime,
) -> Done:
    """Check the request, store the call (DIALING) and return the first INVITE to place, or
    the call already failed (no route)."""
    body = request_object(body)
    callback_uri = required_text(body, "callbackUri")
    target = call_target(body)
    caller = caller_id(body)
    display_name = optional_text(body, "sourceDisplayName") or ""
    operation_context = optional_text(body, "operationContext")
    owned = owned_number(session, resource_id, caller)
    if owned is None or owned.calling not in OUTBOUND_CAPABILITIES:
        raise CallerIdNotAllowed(caller)
    subscription_id = subscriptions.callback_subscription_id(
        session, resource_id, callback_uri, policy, limits
    )
    plan = sip_routing.outbound_plan(session, resource_id, target)
    destinations = []
    for destination in plan.destinations:
        username = None
        if destination.source is RouteSource.OPERATOR:
            trunk = repository.trunk_by_name(session, destination.trunk)
            username = trunk.username if trunk is not None else None
        destinations.append(destination_json(destination, username))
    call = Call(
        id=str(uuid.uuid4()),
        resource_id=resource_id,
        direction=Direction.OUTBOUND.value,
        state=CallState.DIALING.value,
        server_call_id=callbacks.new_server_call_id(),
        correlation_id=str(uuid.uuid4()),
        source_number=caller,
        target_number=target,
        caller_display_name=display_name,
        callback_uri=callback_uri,
        callback_subscription_id=subscription_id,
        operation_context=operation_context,
        sip_process="",  # set by the SIP process that takes the first INVITE
        destinations=destinations,
        destination_index=0,
        created_at=now,
    )
    repository.add_call(session, call, None)
    if not destinations:
        failed = LegEnded(NO_ROUTE_STATUS, f"No route to {target}.")
        return Done(call, transitions.apply(session, call, failed, now))
    command = transitions.dial(session, call, now)
    return Done(call, transitions.Applied(Transition(CallState.DIALING), "", command))
