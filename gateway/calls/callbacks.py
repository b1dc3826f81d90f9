"""What the calls domain publishes, pure: the IncomingCall event (to the resource's
subscriptions) and the call-automation callbacks (to the call's ``callbackUri``).

Callbacks are CloudEvents whose ``source`` and ``subject`` are ``calling/callConnections/{id}``
and whose ``data`` carries ``callConnectionId``, ``serverCallId``, ``correlationId``,
``operationContext`` and ``resultInformation`` (CallAutomation 2026-03-12's event definitions);
the events pipeline posts them as a JSON array, as ACS does, with a bearer JWT
(gateway.events.callback_auth).
"""

from __future__ import annotations

import base64
import secrets
from dataclasses import dataclass
from typing import Any

from gateway.calls.lifecycle import Callback
from gateway.events import builder

EVENT_PREFIX = "Microsoft.Communication."


def callback_type(callback: Callback) -> str:
    return EVENT_PREFIX + callback.value


def callback_subject(call_connection_id: str) -> str:
    """ACS's ``source``/``subject`` of a call's callbacks."""
    return f"calling/callConnections/{call_connection_id}"


def new_server_call_id() -> str:
    """An opaque serverCallId (ACS's are base64 of an internal URL)."""
    return base64.urlsafe_b64encode(f"trunkline:call:{secrets.token_hex(12)}".encode()).decode().rstrip("=")


@dataclass(frozen=True, slots=True)
class CallIds:
    call_connection_id: str
    server_call_id: str
    correlation_id: str


def result_information(
    code: int, subcode: int, message: str, sip_status: int | None = None
) -> dict[str, Any]:
    info: dict[str, Any] = {"code": code, "subCode": subcode, "message": message}
    if sip_status is not None:
        info["sipDetails"] = {"code": sip_status, "message": message}
    return info


def callback_data(
    ids: CallIds, operation_context: str | None, result: dict[str, Any] | None = None
) -> dict[str, Any]:
    data: dict[str, Any] = {
        "callConnectionId": ids.call_connection_id,
        "serverCallId": ids.server_call_id,
        "correlationId": ids.correlation_id,
    }
    if operation_context is not None:
        data["operationContext"] = operation_context
    if result is not None:
        data["resultInformation"] = result
    return data


def incoming_call_event(
    ids: CallIds,
    caller: str,
    callee: str,
    display_name: str,
    context: str,
    sip_headers: dict[str, str] | None = None,
) -> tuple[str, dict[str, Any]]:
    """(subject, data) of the IncomingCall event for a PSTN call from ``caller`` to ``callee``.

    The subject is ``/caller/4:+1.../recipient/4:+1...``: a subscription takes the calls to one
    number with ``subjectEndsWith: "/recipient/4:+1..."``.
    """
    to, from_ = builder.phone_identifier(callee), builder.phone_identifier(caller)
    subject = builder.incoming_call_subject(from_["rawId"], to["rawId"])
    data = builder.incoming_call_data(
        to,
        from_,
        ids.server_call_id,
        context,
        ids.correlation_id,
        caller_display_name=display_name,
        sip_headers=sip_headers,
    )
    return subject, data
