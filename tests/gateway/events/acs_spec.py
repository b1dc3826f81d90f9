"""Checks event ``data`` against the ACS Event Grid swagger definitions in ../shared/specs.

azure-eventgrid 4.22 no longer ships the system-event models (AcsSmsReceivedEventData, ...), so
the tests validate against the definitions those models were generated from. Keys match
case-insensitively, as the SDK deserialisers did.
"""

from __future__ import annotations

import json
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any

SPEC_DIR = (
    Path(__file__).resolve().parents[3].parent
    / "shared"
    / "specs"
    / "acs"
    / "EventGrid-Communication"
    / "2018-01-01"
)
MODEL_FOR_TYPE = {
    "Microsoft.Communication.SMSReceived": "AcsSmsReceivedEventData",
    "Microsoft.Communication.SMSDeliveryReportReceived": "AcsSmsDeliveryReportReceivedEventData",
    "Microsoft.Communication.IncomingCall": "AcsIncomingCallEventData",
}


@cache
def definitions() -> dict[str, Any]:
    spec = json.loads((SPEC_DIR / "AzureCommunicationServices.json").read_text())
    return dict(spec["definitions"])


def _flatten(schema: dict[str, Any]) -> tuple[dict[str, Any], set[str]]:
    properties: dict[str, Any] = {}
    required: set[str] = set()
    for part in schema.get("allOf", []):
        props, req = _flatten(_resolve(part))
        properties.update(props)
        required |= req
    properties.update(schema.get("properties", {}))
    required |= set(schema.get("required", []))
    return properties, required


def _resolve(schema: dict[str, Any]) -> dict[str, Any]:
    ref = schema.get("$ref")
    if ref is None:
        return schema
    if ref.startswith("#/definitions/"):
        return dict(definitions()[ref.removeprefix("#/definitions/")])
    if ref.endswith("CommunicationIdentifierModel"):
        return {
            "type": "object",
            "properties": {
                "kind": {"type": "string"},
                "rawId": {"type": "string"},
                "communicationUser": {"type": "object"},
                "phoneNumber": {"type": "object"},
                "microsoftTeamsUser": {"type": "object"},
                "microsoftTeamsApp": {"type": "object"},
                "teamsExtensionUser": {"type": "object"},
            },
            "required": ["rawId"],
        }
    raise AssertionError(f"unresolvable $ref {ref}")


def validate(value: Any, schema: dict[str, Any], where: str = "data") -> None:
    schema = _resolve(schema)
    kind = schema.get("type", "object" if ("properties" in schema or "allOf" in schema) else None)
    if kind == "object":
        assert isinstance(value, dict), f"{where}: expected object, got {value!r}"
        properties, required = _flatten(schema)
        lowered = {k.lower(): k for k in properties}
        present = {k.lower(): v for k, v in value.items()}
        for name in required:
            assert name.lower() in present, f"{where}: missing required {name}"
        extra = schema.get("additionalProperties")
        for key, item in value.items():
            if key.lower() in lowered:
                validate(item, properties[lowered[key.lower()]], f"{where}.{key}")
            elif properties:
                assert isinstance(extra, dict), f"{where}: unexpected property {key}"
                validate(item, extra, f"{where}.{key}")
            elif isinstance(extra, dict):
                validate(item, extra, f"{where}.{key}")
    elif kind == "string":
        assert isinstance(value, str), f"{where}: expected string, got {value!r}"
        if schema.get("format") == "date-time":
            datetime.fromisoformat(value.replace("Z", "+00:00"))
        if "enum" in schema:
            assert value in schema["enum"], f"{where}: {value!r} not in {schema['enum']}"
    elif kind == "integer":
        assert isinstance(value, int), f"{where}: expected integer"
        assert not isinstance(value, bool), f"{where}: expected integer"
    elif kind == "number":
        assert isinstance(value, int | float), f"{where}: expected number"
        assert not isinstance(value, bool), f"{where}: expected number"
    elif kind == "boolean":
        assert isinstance(value, bool), f"{where}: expected boolean"
    elif kind == "array":
        assert isinstance(value, list), f"{where}: expected array"
        for index, item in enumerate(value):
            validate(item, schema.get("items", {}), f"{where}[{index}]")


def validate_event_data(event_type: str, data: Any) -> None:
    validate(data, {"$ref": f"#/definitions/{MODEL_FOR_TYPE[event_type]}"})
