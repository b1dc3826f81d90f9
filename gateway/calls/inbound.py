"""An INVITE the carrier sent: whether to ring, and for whom.

The SIP process's controller calls :func:`offer` for each IncomingCall a worker reports. An
INVITE from an address no trunk allows is refused with 403 (and counted); to a number nobody
owns, or one without inbound calling, 404; to a resource with no subscription that would hear
of the call, 480 at once. Otherwise the call and its leg are written, an IncomingCall event
(with a signed incomingCallContext) goes to the outbox in the same transaction, and the worker
is told to send 180 Ringing.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from prometheus_client import Counter
from sqlalchemy.orm import Session

from gateway.calls import callbacks, context, repository
from gateway.calls.lifecycle import CallState, Direction
from gateway.calls.models import Call, CallLeg
from gateway.calls.routing import OperatorTrunk, trunk_for_source
from gateway.events import builder
from gateway.events.service import publish
from gateway.events.subscriptions import has_subscriber
from gateway.identity.tokens import SigningKey
from gateway.numbers.purchased import number_owner
from sip.worker.messages import IncomingCall

INBOUND_CAPABILITIES = frozenset({"inbound", "inbound+outbound"})

INVITES = Counter(
    "trunkline_sip_invites_total",
    "INVITEs from carriers, by what became of them (ringing, forbidden, not_found, no_subscriber).",
    ["verdict"],
)


class Verdict(StrEnum):
    RING = "ringing"
    FORBIDDEN = "forbidden"  # 403: no trunk allows the source address
    NOT_FOUND = "not_found"  # 404: not a purchased number with inbound calling
    NO_SUBSCRIBER = "no_subscriber"  # 480: nobody would hear of the call

    @property
    def sip_status(self) -> int:
        return {
            Verdict.RING: 180,
            Verdict.FORBIDDEN: 403,
            Verdict.NOT_FOUND: 404,
            Verdict.NO_SUBSCRIBER: 480,
        }[self]


@dataclass(frozen=True)
class Offer:
    verdict: Verdict
    call_id: str | None = None  # the call connection id, when it rings


@dataclass(frozen=True)
class OfferSettings:
    sip_process: str
    ring_timeout: timedelta
    issuer: str


def number_of(uri: str) -> str | None:
    """The E.164 number in a SIP/tel URI's user part (``sip:+15550001@host;user=phone``,
    ``<tel:+15550001>``, ``sip:15550001@host``); None if it is not a phone number."""
    text = uri.strip().strip("<>")
    scheme, _, rest = text.partition(":")
    if scheme.lower() not in ("sip", "sips", "tel") or not rest:
        return None
    user = rest.split("@", 1)[0].split(";", 1)[0].replace("-", "").replace(".", "")
    digits = user.removeprefix("+")
    if not digits.isdigit() or not 3 <= len(digits) <= 15:
        return None
    return "+" + digits


def source_host(source: str) -> str:
    """``ip:port`` or ``[v6]:port`` -> the address."""
    if source.startswith("["):
        return source[1:].split("]", 1)[0]
    host, _, _ = source.rpartition(":")
    return host or source


def offer(
    session: Session,
    invite: IncomingCall,
    worker: int,
    trunks: Iterable[OperatorTrunk],
    key: SigningKey,
    options: OfferSettings,
    now: datetime,
) -> Offer:
    verdict = _check(session, invite, trunks)
    if isinstance(verdict, Verdict):
        INVITES.labels(verdict.value).inc()
        return Offer(verdict)
    resource_id, callee, caller = verdict
    call_id = str(uuid.uuid4())
    ids = callbacks.CallIds(call_id, callbacks.new_server_call_id(), str(uuid.uuid4()))
    deadline = now + options.ring_timeout
    token = context.sign(context.IncomingCallContext(call_id, resource_id, deadline), key, options.issuer)
    subject, data = callbacks.incoming_call_event(
        ids, caller, callee, invite.display_name, token, _custom_headers(invite)
    )
    if not has_subscriber(session, resource_id, builder.INCOMING_CALL, subject):
        INVITES.labels(Verdict.NO_SUBSCRIBER.value).inc()
        return Offer(Verdict.NO_SUBSCRIBER)
    call = Call(
        id=call_id,
        resource_id=resource_id,
        direction=Direction.INBOUND.value,
        state=CallState.OFFERED.value,
        server_call_id=ids.server_call_id,
        correlation_id=ids.correlation_id,
        source_number=caller,
        target_number=callee,
        caller_display_name=invite.display_name,
        sip_process=options.sip_process,
        ring_deadline=deadline,
        destinations=[],
        destination_index=0,
        answered=False,
        created_at=now,
    )
    leg = CallLeg(
        id=invite.call_id,
        call_id=call_id,
        sip_process=options.sip_process,
        worker=worker,
        number=caller,
        sip_call_id=invite.sip_call_id,
        remote=invite.source,
        active=True,
        created_at=now,
    )
    repository.add_call(session, call, leg)
    publish(
        session,
        resource_id=resource_id,
        event_type=builder.INCOMING_CALL,
        subject=subject,
        data=data,
        event_time=now,
        prompt=True,  # the carrier is ringing: the app must hear of it now
    )
    INVITES.labels(Verdict.RING.value).inc()
    return Offer(Verdict.RING, call_id)


def _check(
    session: Session, invite: IncomingCall, trunks: Iterable[OperatorTrunk]
) -> Verdict | tuple[str, str, str]:
    if not trunk_for_source(source_host(invite.source), trunks).allowed:
        return Verdict.FORBIDDEN
    callee = number_of(invite.request_uri) or number_of(invite.to_uri)
    if callee is None:
        return Verdict.NOT_FOUND
    owned = number_owner(session, callee)
    if owned is None or owned.calling not in INBOUND_CAPABILITIES:
        return Verdict.NOT_FOUND
    caller = number_of(invite.from_uri) or "+0"
    return owned.resource_id, callee, caller


def _custom_headers(invite: IncomingCall) -> dict[str, str]:
    """ACS passes on User-to-User and X-MS-Custom-* headers as customContext.sipHeaders."""
    found: dict[str, str] = {}
    for name, value in invite.headers:
        lowered = name.lower()
        if lowered in ("user-to-user", "uui"):
            found["userToUser"] = value
        elif lowered.startswith("x-ms-custom-"):
            found[name] = value
    return found
