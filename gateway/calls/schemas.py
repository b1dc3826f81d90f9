"""The operator's SIP trunk and route specifications, as the admin API, the CLI and the config file
give them, and the sentences that say what is wrong with one.

(The tenant's SipRouting bodies are merge patches, parsed in sip_configuration.py.)
"""

from __future__ import annotations

import ipaddress
import re
from typing import Any, Literal

from pydantic import ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic.alias_generators import to_camel

from gateway.calls.routing import parse_networks
from gateway.core import input_errors
from gateway.core.text import InputModel

CODECS = ("PCMU", "PCMA", "G722", "GSM", "opus")
DEFAULT_CODECS = ("PCMU", "PCMA")
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,62}")
_HOSTNAME = re.compile(
    r"(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.?"
)
_PREFIX = re.compile(r"\+[0-9]{0,15}")


# PATCH /sip (SipRouting 2023-03-01's SipConfigurationUpdate): a JSON merge patch, parsed in
# sip_configuration.py (trunks by FQDN, null deletes one; routes replace the list).
SIP_CONFIGURATION_PATCH_SCHEMA: dict[str, Any] = {
    "title": "SipConfigurationUpdate",
    "type": "object",
    "properties": {
        "trunks": {
            "type": "object",
            "additionalProperties": {
                "anyOf": [
                    {"type": "object", "properties": {"sipSignalingPort": {"type": "integer"}}},
                    {"type": "null"},
                ]
            },
        },
        "routes": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["name", "numberPattern"],
                "properties": {
                    "name": {"type": "string"},
                    "description": {"type": "string"},
                    "numberPattern": {"type": "string"},
                    "trunks": {"type": "array", "items": {"type": "string"}},
                },
            },
        },
    },
}


class Model(InputModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")


class TrunkSpec(Model):
    """One SIP trunk of the operator's (``trunkline sip trunk add``, ``POST /admin/sip/trunks``,
    ``[[trunks]]`` of the config file)."""

    name: str
    carrier: str = Field(min_length=1, max_length=63)
    host: str
    port: int = Field(default=5060, ge=1, le=65535)
    transport: Literal["udp", "tcp", "tls"] = "udp"
    allow: list[str] = Field(default_factory=list, max_length=100)
    username: str | None = Field(default=None, min_length=1, max_length=128)
    password: str | None = Field(default=None, min_length=1, max_length=128)
    register_with_carrier: bool = Field(default=False, alias="register")  # "register" is BaseModel's
    codecs: list[str] = Field(default_factory=lambda: list(DEFAULT_CODECS), min_length=1)
    srtp: Literal["off", "optional", "mandatory"] = "off"
    # The carrier takes REFER: a transfer of a call on this trunk is a REFER (default: a new leg
    # bridged in the gateway, which works with every carrier).
    refer: bool = False
    # How the carrier sends DTMF: auto taps the audio for in-band tones only when the far end's
    # SDP has no telephone-event; inband always; rfc2833 and info never (sip.dtmf_mode).
    dtmf: Literal["auto", "rfc2833", "info", "inband"] = "auto"
    enabled: bool = True

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not _NAME.fullmatch(value):
            raise ValueError(
                f"The trunk name '{value}' must be 1-63 letters, digits, dots, dashes or underscores, "
                "starting with a letter or digit."
            )
        return value

    @field_validator("host")
    @classmethod
    def _host(cls, value: str) -> str:
        value = value.strip()
        try:
            return str(ipaddress.ip_address(value.strip("[]")))
        except ValueError:
            pass
        if not _HOSTNAME.fullmatch(value):
            raise ValueError(f"The host '{value}' is neither a host name nor an IP address.")
        return value.rstrip(".").lower()

    @field_validator("allow")
    @classmethod
    def _allow(cls, value: list[str]) -> list[str]:
        normalised: list[str] = []
        for cidr in value:
            try:
                normalised.extend(str(network) for network in parse_networks([cidr]))
            except ValueError:
                raise ValueError(
                    f"'{cidr}' is not a network in CIDR notation (such as 192.0.2.0/24) or an IP address."
                ) from None
        return list(dict.fromkeys(normalised))

    @field_validator("codecs", mode="before")
    @classmethod
    def _codecs(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = [part for part in value.split(",") if part.strip()]
        if not isinstance(value, list):
            return value
        by_lower = {codec.lower(): codec for codec in CODECS}
        codecs: list[str] = []
        for item in value:
            codec = by_lower.get(str(item).strip().lower())
            if codec is None:
                raise ValueError(
                    f"'{item}' is not a codec the SIP side offers; choose among {', '.join(CODECS)}."
                )
            if codec in codecs:
                raise ValueError(f"The codec {codec} is listed twice.")
            codecs.append(codec)
        return codecs

    @model_validator(mode="after")
    def _credentials(self) -> TrunkSpec:
        if (self.username is None) != (self.password is None):
            raise ValueError("Digest credentials need both a username and a password.")
        if self.register_with_carrier and self.username is None:
            raise ValueError("Registering with the carrier (--register) needs a username and a password.")
        return self


class RouteSpec(Model):
    """A prefix and its trunks in failover order (``trunkline sip route add``,
    ``POST /admin/sip/routes``, ``[[routes]]`` of the config file)."""

    prefix: str
    trunks: list[str] = Field(min_length=1, max_length=50)

    @field_validator("prefix")
    @classmethod
    def _prefix(cls, value: str) -> str:
        value = value.strip()
        if not _PREFIX.fullmatch(value):
            raise ValueError(
                f"The prefix '{value}' must be '+' followed by up to 15 digits (such as +1 or +4420; "
                "'+' alone matches every number)."
            )
        return value

    @field_validator("trunks")
    @classmethod
    def _trunks(cls, value: list[str]) -> list[str]:
        for name in value:
            if value.count(name) > 1:
                raise ValueError(f"The trunk '{name}' is listed twice.")
        return value


_FIELD_LABELS = {"allow": "allow-list", "srtp": "SRTP setting", "dtmf": "DTMF mode"}


def describe(exc: ValidationError) -> str:
    """What is wrong with a spec, in sentences (no pydantic dump)."""
    return input_errors.describe(exc, _FIELD_LABELS)


# CallAutomation 2026-03-12's request bodies, as /openapi.json declares them (the routes read and
# check their bodies themselves; the spec's required fields and the ones Trunkline reads).
_IDENTIFIER: dict[str, Any] = {
    "type": "object",
    "properties": {
        "rawId": {"type": "string"},
        "kind": {"type": "string"},
        "phoneNumber": {"type": "object", "properties": {"value": {"type": "string"}}, "required": ["value"]},
        "communicationUser": {"type": "object", "properties": {"id": {"type": "string"}}, "required": ["id"]},
    },
}
_PHONE_NUMBER: dict[str, Any] = {
    "type": "object",
    "properties": {"value": {"type": "string"}},
    "required": ["value"],
}
CREATE_CALL_SCHEMA: dict[str, Any] = {
    "title": "CreateCallRequest",
    "type": "object",
    "properties": {
        "targets": {"type": "array", "items": _IDENTIFIER},
        "sourceCallerIdNumber": _PHONE_NUMBER,
        "sourceDisplayName": {"type": "string"},
        "operationContext": {"type": "string"},
        "callbackUri": {"type": "string"},
    },
    "required": ["callbackUri", "targets"],
}
ANSWER_CALL_SCHEMA: dict[str, Any] = {
    "title": "AnswerCallRequest",
    "type": "object",
    "properties": {
        "incomingCallContext": {"type": "string"},
        "callbackUri": {"type": "string"},
        "operationContext": {"type": "string"},
    },
    "required": ["callbackUri", "incomingCallContext"],
}
REJECT_CALL_SCHEMA: dict[str, Any] = {
    "title": "RejectCallRequest",
    "type": "object",
    "properties": {
        "incomingCallContext": {"type": "string"},
        "callRejectReason": {"type": "string", "enum": ["none", "busy", "forbidden"]},
    },
    "required": ["incomingCallContext"],
}
REDIRECT_CALL_SCHEMA: dict[str, Any] = {
    "title": "RedirectCallRequest",
    "type": "object",
    "properties": {"incomingCallContext": {"type": "string"}, "target": _IDENTIFIER},
    "required": ["incomingCallContext", "target"],
}


def _request(title: str, required: list[str], **properties: Any) -> dict[str, Any]:
    """A CallAutomation request body: its fields, plus the operation's context and callback URI."""
    properties.setdefault("operationContext", {"type": "string"})
    properties.setdefault("operationCallbackUri", {"type": "string"})
    return {"title": title, "type": "object", "properties": properties, "required": required}


_PLAY_SOURCE: dict[str, Any] = {
    "type": "object",
    "properties": {
        "kind": {"type": "string", "enum": ["file", "text", "ssml"]},
        "playSourceCacheId": {"type": "string"},
        "file": {"type": "object", "properties": {"uri": {"type": "string"}}, "required": ["uri"]},
        "text": {
            "type": "object",
            "properties": {
                "text": {"type": "string"},
                "sourceLocale": {"type": "string"},
                "voiceKind": {"type": "string"},
                "voiceName": {"type": "string"},
            },
            "required": ["text"],
        },
        "ssml": {"type": "object", "properties": {"ssmlText": {"type": "string"}}, "required": ["ssmlText"]},
    },
    "required": ["kind"],
}
_PLAY_SOURCES: dict[str, Any] = {"type": "array", "items": _PLAY_SOURCE}
_IDENTIFIERS: dict[str, Any] = {"type": "array", "items": _IDENTIFIER}
_DTMF_OPTIONS: dict[str, Any] = {
    "type": "object",
    "properties": {
        "interToneTimeoutInSeconds": {"type": "integer"},
        "maxTonesToCollect": {"type": "integer"},
        "stopTones": {"type": "array", "items": {"type": "string"}},
    },
}

# The CallMedia_* bodies by the action's name in the URL (``:play``), and CallConnection_*'s.
CALL_MEDIA_SCHEMAS: dict[str, dict[str, Any]] = {
    "play": _request(
        "PlayRequest",
        ["playSources"],
        playSources=_PLAY_SOURCES,
        playTo=_IDENTIFIERS,
        interruptCallMediaOperation={"type": "boolean"},
        playOptions={"type": "object", "properties": {"loop": {"type": "boolean"}}},
    ),
    "recognize": _request(
        "RecognizeRequest",
        ["recognizeInputType", "recognizeOptions"],
        recognizeInputType={"type": "string"},
        playPrompt=_PLAY_SOURCE,
        playPrompts=_PLAY_SOURCES,
        interruptCallMediaOperation={"type": "boolean"},
        recognizeOptions={
            "type": "object",
            "properties": {
                "interruptPrompt": {"type": "boolean"},
                "initialSilenceTimeoutInSeconds": {"type": "integer"},
                "targetParticipant": _IDENTIFIER,
                "dtmfOptions": _DTMF_OPTIONS,
            },
            "required": ["targetParticipant"],
        },
    ),
    "cancelAllMediaOperations": {
        "title": "CancelAllMediaOperationsRequest",
        "type": "object",
        "properties": {"operationContext": {"type": "string"}},
    },
    "startContinuousDtmfRecognition": _request(
        "ContinuousDtmfRecognitionRequest", ["targetParticipant"], targetParticipant=_IDENTIFIER
    ),
    "stopContinuousDtmfRecognition": _request(
        "ContinuousDtmfRecognitionRequest", ["targetParticipant"], targetParticipant=_IDENTIFIER
    ),
    "sendDtmfTones": _request(
        "SendDtmfTonesRequest",
        ["targetParticipant", "tones"],
        tones={"type": "array", "items": {"type": "string"}},
        targetParticipant=_IDENTIFIER,
    ),
    "hold": _request(
        "HoldRequest", ["targetParticipant"], targetParticipant=_IDENTIFIER, playSourceInfo=_PLAY_SOURCE
    ),
    "unhold": _request("UnholdRequest", ["targetParticipant"], targetParticipant=_IDENTIFIER),
}
TRANSFER_SCHEMA = _request(
    "TransferToParticipantRequest",
    ["targetParticipant"],
    targetParticipant=_IDENTIFIER,
    transferee=_IDENTIFIER,
    sourceCallerIdNumber=_PHONE_NUMBER,
)
ADD_PARTICIPANT_SCHEMA = _request(
    "AddParticipantRequest",
    ["participantToAdd"],
    participantToAdd=_IDENTIFIER,
    sourceCallerIdNumber=_PHONE_NUMBER,
    sourceDisplayName={"type": "string"},
    invitationTimeoutInSeconds={"type": "integer"},
)
REMOVE_PARTICIPANT_SCHEMA = _request(
    "RemoveParticipantRequest", ["participantToRemove"], participantToRemove=_IDENTIFIER
)
CANCEL_ADD_PARTICIPANT_SCHEMA = _request(
    "CancelAddParticipantRequest", ["invitationId"], invitationId={"type": "string"}
)
MUTE_PARTICIPANTS_SCHEMA: dict[str, Any] = {
    "title": "MuteParticipantsRequest",
    "type": "object",
    "properties": {"targetParticipants": _IDENTIFIERS, "operationContext": {"type": "string"}},
    "required": ["targetParticipants"],
}
