"""CallAutomation 2026-03-12's ``CallMedia_*`` operations, the API side: play, recognize (DTMF),
continuous DTMF recognition, send DTMF, hold, unhold and cancel all media operations.

Each checks the request and the call, resolves where the operation's callbacks go (its
``operationCallbackUri`` becomes a callback subscription, as a call's callbackUri does; else the
call's own) and returns the :class:`~gateway.calls.media_requests.MediaRequest` the router
publishes to the SIP process holding the call. What happens next (queueing, recognizing, the
callbacks) is the SIP process's, through gateway.calls.media_operations. Errors are ACS's shape.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from gateway.calls import dtmf_recognizer, repository
from gateway.calls.connections import optional_text, request_object
from gateway.calls.lifecycle import CallState
from gateway.calls.media_requests import Action, MediaRequest
from gateway.calls.models import Call, CallLeg
from gateway.calls.party_legs import leg_dtmf_mode
from gateway.calls.play_sources import parse_play_sources, play_source_body
from gateway.core.db import new_uuid
from gateway.core.errors import AcsError, BadRequest, NotFound
from gateway.events import subscriptions
from gateway.events.ssrf import Policy
from gateway.events.subscriptions import Limits

MAX_TONES_TO_COLLECT = 100  # Trunkline's bound: the spec sets none
MAX_TONES_TO_SEND = 18  # ACS's
MAX_OPERATION_CONTEXT = 5000


@dataclass(frozen=True)
class Callbacks:
    """What resolving callbacks needs: the SSRF policy and the subscription limits."""

    policy: Policy
    limits: Limits


@dataclass(frozen=True)
class Planned:
    """A checked media request and the SIP process to send it to."""

    process: str
    request: MediaRequest


def connected_call(session: Session, resource_id: str, call_id: str) -> Call:
    """The resource's call, which must be connected: 404 for an unknown or ended one (ACS no
    longer knows a disconnected call), 400 for one not (or no longer) established."""
    call = repository.find_call(session, call_id, resource_id)
    if call is None or CallState(call.state) in (CallState.OFFERED, CallState.ENDED):
        raise NotFound(f"Call {call_id} not found.", "callConnectionId", "CallNotFound")
    if CallState(call.state) is not CallState.CONNECTED or not call.sip_process:
        raise BadRequest(
            f"Action is not valid when the call is not established (the call is {call.state}).",
            "callConnectionId",
            "CallNotEstablished",
        )
    return call


def plan(
    session: Session, resource_id: str, call_id: str, action: Action, body: Any, callbacks: Callbacks
) -> Planned:
    """Check ``body`` for ``action`` on the call and build its request."""
    body = request_object({} if body is None else body)
    call = connected_call(session, resource_id, call_id)
    options = _CHECKS[action](body, call)
    leg = _party_leg(session, call, options.pop("_target", None))
    if action in (Action.RECOGNIZE, Action.START_CONTINUOUS_DTMF):
        # Only what listens for digits needs it (a query or two): the worker taps the audio for
        # in-band tones as the leg's trunk's DTMF mode says (sip.dtmf_mode).
        options["dtmf_mode"] = leg_dtmf_mode(session, call, leg).value
    context = optional_text(body, "operationContext")
    if context is not None and len(context) > MAX_OPERATION_CONTEXT:
        raise BadRequest(
            f"operationContext is longer than {MAX_OPERATION_CONTEXT} characters.", "operationContext"
        )
    subscription_id = call.callback_subscription_id
    uri = optional_text(body, "operationCallbackUri")
    if uri is not None:
        try:
            subscription_id = subscriptions.callback_subscription_id(
                session, resource_id, uri, callbacks.policy, callbacks.limits
            )
        except AcsError as exc:
            raise BadRequest(exc.message, "operationCallbackUri") from exc
    request = MediaRequest(
        action=action,
        call_id=call.id,
        leg_id=leg.id,
        resource_id=call.resource_id,
        server_call_id=call.server_call_id,
        correlation_id=call.correlation_id,
        operation_id=new_uuid().replace("-", ""),
        subscription_id=subscription_id,
        operation_context=context,
        **options,
    )
    return Planned(call.sip_process, request)


# Checks of each action's body: its MediaRequest fields --------------------------------------------


def _play(body: dict[str, Any], call: Call) -> dict[str, Any]:
    """One party in ``playTo`` hears the play; else (all, several) the call's own party."""
    target: tuple[str, str] | None = None
    play_to = body.get("playTo")
    if play_to is not None:
        if not isinstance(play_to, list):
            raise BadRequest("playTo must be an array of participants.", "playTo")
        numbers = [_participant(target, call, f"playTo[{index}]") for index, target in enumerate(play_to)]
        if len(numbers) == 1:
            target = numbers[0]
    play_options = body.get("playOptions")
    loop = False
    if play_options is not None:
        if not isinstance(play_options, dict):
            raise BadRequest("playOptions must be an object.", "playOptions")
        loop = _boolean(play_options, "loop", "playOptions.loop")
    return {
        "_target": target,
        "sources": tuple(_sources(body.get("playSources"), "playSources")),
        "loop": loop,
        "interrupt": _boolean(body, "interruptCallMediaOperation"),
    }


def _recognize(body: dict[str, Any], call: Call) -> dict[str, Any]:
    kind = body.get("recognizeInputType")
    if kind in ("speech", "speechOrDtmf", "choices"):
        raise BadRequest(
            f"recognizeInputType {kind} needs a speech engine, which this gateway does not have; "
            "only dtmf is recognized.",
            "recognizeInputType",
            "UnsupportedRecognizeInputType",
        )
    if kind != "dtmf":
        raise BadRequest("recognizeInputType is required and must be dtmf.", "recognizeInputType")
    options = body.get("recognizeOptions")
    if not isinstance(options, dict):
        raise BadRequest("recognizeOptions is required and must be an object.", "recognizeOptions")
    target = _participant(options.get("targetParticipant"), call, "recognizeOptions.targetParticipant")
    silence = _integer(options, "initialSilenceTimeoutInSeconds", 0, 300, "recognizeOptions")
    dtmf_options = options.get("dtmfOptions") or {}
    if not isinstance(dtmf_options, dict):
        raise BadRequest("recognizeOptions.dtmfOptions must be an object.", "recognizeOptions.dtmfOptions")
    where = "recognizeOptions.dtmfOptions"
    inter_tone = _integer(dtmf_options, "interToneTimeoutInSeconds", 1, 60, where)
    max_tones = _integer(dtmf_options, "maxTonesToCollect", 1, MAX_TONES_TO_COLLECT, where)
    stop_tones = _tones(dtmf_options.get("stopTones"), f"{where}.stopTones", allow_empty=True)
    prompts: list[Any] = []
    if body.get("playPrompts") is not None:
        prompts = _sources(body["playPrompts"], "playPrompts")
    elif body.get("playPrompt") is not None:
        prompts = _sources([body["playPrompt"]], "playPrompt")
    return {
        "_target": target,
        "sources": tuple(prompts),
        "interrupt": _boolean(body, "interruptCallMediaOperation"),
        "interrupt_prompt": _boolean(options, "interruptPrompt", "recognizeOptions.interruptPrompt"),
        "max_tones": dtmf_recognizer.DEFAULT_MAX_TONES if max_tones is None else max_tones,
        "inter_tone_timeout": dtmf_recognizer.DEFAULT_INTER_TONE_TIMEOUT
        if inter_tone is None
        else inter_tone,
        "initial_silence_timeout": (
            dtmf_recognizer.DEFAULT_INITIAL_SILENCE_TIMEOUT if silence is None else silence
        ),
        "stop_tones": stop_tones,
    }


def _continuous(body: dict[str, Any], call: Call) -> dict[str, Any]:
    return {"_target": _participant(body.get("targetParticipant"), call, "targetParticipant")}


def _send_dtmf(body: dict[str, Any], call: Call) -> dict[str, Any]:
    target = _participant(body.get("targetParticipant"), call, "targetParticipant")
    tones = _tones(body.get("tones"), "tones", allow_empty=False)
    if len(tones) > MAX_TONES_TO_SEND:
        raise BadRequest(
            f"tones has {len(tones)} tones; at most {MAX_TONES_TO_SEND} are sent at once.", "tones"
        )
    return {"_target": target, "tones": tones}


def _hold(body: dict[str, Any], call: Call) -> dict[str, Any]:
    target = _participant(body.get("targetParticipant"), call, "targetParticipant")
    music = body.get("playSourceInfo")
    return {
        "_target": target,
        "sources": tuple(_sources([music], "playSourceInfo")) if music is not None else (),
    }


def _nothing(body: dict[str, Any], call: Call) -> dict[str, Any]:
    return {}


_CHECKS = {
    Action.PLAY: _play,
    Action.RECOGNIZE: _recognize,
    Action.START_CONTINUOUS_DTMF: _continuous,
    Action.STOP_CONTINUOUS_DTMF: _continuous,
    Action.SEND_DTMF: _send_dtmf,
    Action.HOLD: _hold,
    Action.UNHOLD: _continuous,
    Action.CANCEL_ALL: _nothing,
}


def _sources(value: Any, field: str) -> list[dict[str, Any]]:
    """Play sources checked (gateway.calls.play_sources) and in their canonical wire form; a
    single source (``playPrompt``, ``playSourceInfo``) is checked as a list of one."""
    try:
        return [play_source_body(source) for source in parse_play_sources(value, field=field)]
    except BadRequest as exc:
        if field not in {"playPrompt", "playSourceInfo"}:
            raise
        target = (exc.target or field).replace(f"{field}[0]", field)
        raise BadRequest(exc.message.replace(f"{field}[0]", field), target, exc.code) from exc


def _participant(target: Any, call: Call, field: str) -> tuple[str, str]:
    """The phone number ``target`` names (its rawId or phoneNumber), and the field it came in."""
    if not isinstance(target, dict):
        raise BadRequest(f"{field} is required and must be a communication identifier.", field)
    phone = target.get("phoneNumber")
    raw = target.get("rawId")
    number = phone.get("value") if isinstance(phone, dict) else None
    if not isinstance(number, str) and isinstance(raw, str) and raw.startswith("4:"):
        number = raw[2:]
    if not isinstance(number, str) or not number:
        raise BadRequest(f"{field} is not a participant of call {call.id}.", field, "ParticipantNotFound")
    return number, field


def _party_leg(session: Session, call: Call, target: tuple[str, str] | None) -> CallLeg:
    """The leg of the party ``target`` names (the call's own, or an answered participant's);
    without a target, the call's own party."""
    legs = [
        leg
        for leg in repository.active_legs(session, call.id)
        if leg.role == "call" or leg.state == "connected"
    ]
    if target is None:
        own = repository.active_leg(session, call.id)
        if own is None:
            raise BadRequest(
                f"Call {call.id} has no connected party.", "callConnectionId", "CallNotEstablished"
            )
        return own
    number, field = target
    for leg in legs:
        if leg.number == number:
            return leg
    raise BadRequest(f"{field} is not a participant of call {call.id}.", field, "ParticipantNotFound")


def _boolean(body: dict[str, Any], name: str, field: str | None = None) -> bool:
    value = body.get(name, False)
    if value is None:
        return False
    if not isinstance(value, bool):
        raise BadRequest(f"{field or name} must be a boolean.", field or name)
    return value


def _integer(body: dict[str, Any], name: str, low: int, high: int, where: str) -> int | None:
    value = body.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise BadRequest(f"{where}.{name} must be an integer from {low} to {high}.", f"{where}.{name}")
    return value


def _tones(value: Any, field: str, *, allow_empty: bool) -> str:
    """ACS Tone names (``one``, ``pound``...) as the digits the worker sends and reports."""
    if value is None and allow_empty:
        return ""
    if not isinstance(value, list) or (not value and not allow_empty):
        raise BadRequest(f"{field} must be a non-empty array of tones.", field)
    digits = []
    for index, name in enumerate(value):
        digit = dtmf_recognizer.DIGITS_BY_NAME.get(name.lower()) if isinstance(name, str) else None
        if digit is None:
            raise BadRequest(
                f"{field}[{index}] is not a tone (zero-nine, a-d, pound, asterisk): {name!r}.",
                f"{field}[{index}]",
            )
        digits.append(digit)
    return "".join(digits)
