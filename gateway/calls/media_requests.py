"""A media request from the API to the SIP process holding the call, and its wire form.

The API checks the app's request (gateway.calls.media), resolves where its callbacks go and
publishes one :class:`MediaRequest` on the SIP process's command queue (beside the worker
commands, gateway.calls.commands); the SIP process (sip.control.media) carries it out. The
request carries what the callbacks need (the call's ids, the resource, the subscription), so the
SIP process answers without reading the call again. On the wire: one JSON object tagged
``{"type": "MediaRequest", ...}``; encode and decode are pure and round-trip.
"""

from __future__ import annotations

import dataclasses
import enum
import json
from dataclasses import dataclass
from typing import Any

from sip.dtmf_mode import DtmfMode

TYPE_TAG = "MediaRequest"


class Action(enum.StrEnum):
    PLAY = "play"
    RECOGNIZE = "recognize"
    CANCEL_ALL = "cancelAllMediaOperations"
    START_CONTINUOUS_DTMF = "startContinuousDtmfRecognition"
    STOP_CONTINUOUS_DTMF = "stopContinuousDtmfRecognition"
    SEND_DTMF = "sendDtmfTones"
    HOLD = "hold"
    UNHOLD = "unhold"


@dataclass(frozen=True, slots=True)
class MediaRequest:
    action: Action
    call_id: str
    leg_id: str
    resource_id: str
    server_call_id: str
    correlation_id: str
    operation_id: str
    subscription_id: str | None = None  # where the callbacks go (operationCallbackUri's, else the call's)
    operation_context: str | None = None
    sources: tuple[dict[str, Any], ...] = ()  # PlaySource bodies, checked; a recognize's prompts; hold music
    loop: bool = False
    interrupt: bool = False  # interruptCallMediaOperation
    interrupt_prompt: bool = False
    max_tones: int = 1
    inter_tone_timeout: float = 2.0
    initial_silence_timeout: float = 5.0
    stop_tones: str = ""  # digits
    tones: str = ""  # digits to send
    # A listening request's (recognize, continuous DTMF): its leg's trunk's DTMF mode
    # (sip.dtmf_mode.DtmfMode's value), which decides whether the worker taps the audio for
    # in-band tones; "" on the others.
    dtmf_mode: str = ""


class MediaRequestError(ValueError):
    """A message that is not a well-formed media request."""


def is_media_request(body: Any) -> bool:
    return isinstance(body, dict) and body.get("type") == TYPE_TAG


def encode(request: MediaRequest) -> str:
    body: dict[str, Any] = {"type": TYPE_TAG}
    for item in dataclasses.fields(request):
        value = getattr(request, item.name)
        if item.name == "dtmf_mode" and not value:
            continue  # left out unless set: a SIP process of the release before takes the rest
        body[item.name] = list(value) if isinstance(value, tuple) else value
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False)


_FIELDS = {item.name: item for item in dataclasses.fields(MediaRequest)}


def decode(body: dict[str, Any]) -> MediaRequest:
    if not is_media_request(body):
        raise MediaRequestError("not a media request")
    values: dict[str, Any] = {}
    for name, value in body.items():
        if name == "type":
            continue
        if name not in _FIELDS:
            raise MediaRequestError(f"unknown field {name}")
        values[name] = value
    try:
        values["action"] = Action(values["action"])
        if values.get("dtmf_mode"):
            values["dtmf_mode"] = DtmfMode(values["dtmf_mode"]).value
        if "sources" in values:
            sources = values["sources"]
            if not isinstance(sources, list) or not all(isinstance(s, dict) for s in sources):
                raise MediaRequestError("sources must be a list of objects")
            values["sources"] = tuple(sources)
        return MediaRequest(**values)
    except (KeyError, TypeError, ValueError) as exc:
        raise MediaRequestError(f"not a media request: {exc}") from exc
