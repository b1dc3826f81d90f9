"""Request bodies of the Phone Numbers API (responses are built as dicts by the concern modules)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import ConfigDict, Field
from pydantic.alias_generators import to_camel

from gateway.core.text import InputModel

PhoneNumberType = Literal["geographic", "tollFree", "mobile"]
AssignmentType = Literal["person", "application"]
Capability = Literal["none", "inbound", "outbound", "inbound+outbound"]


class Model(InputModel):
    # Clients may echo read-only fields back; ignore what we do not know.
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="ignore")


class Capabilities(Model):
    calling: Capability
    sms: Capability


class OptionalCapabilities(Model):
    calling: Capability | None = None
    sms: Capability | None = None


class SearchRequest(Model):
    phone_number_type: PhoneNumberType
    assignment_type: AssignmentType
    capabilities: Capabilities
    area_code: str | None = Field(default=None, max_length=8)
    quantity: int = Field(default=1, ge=1, le=2147483647)


class PurchaseRequest(Model):
    search_id: str | None = None
    agree_to_not_resell: bool = False


class ReservationPurchaseRequest(Model):
    agree_to_not_resell: bool = False


class BrowseRequest(Model):
    phone_number_type: PhoneNumberType
    capabilities: OptionalCapabilities | None = None
    assignment_type: AssignmentType | None = None
    phone_number_prefixes: list[str] | None = Field(default=None, max_length=20)


class OperatorInformationOptions(Model):
    include_additional_operator_details: bool = False


class OperatorInformationRequest(Model):
    phone_numbers: list[str]
    options: OperatorInformationOptions | None = None


# PATCH availablePhoneNumbers/reservations/{id}: a merge patch of phone numbers by id (null
# removes one), read by reservations.upsert_reservation.
RESERVATION_PATCH_SCHEMA: dict[str, Any] = {
    "title": "PhoneNumbersReservationPatch",
    "type": "object",
    "properties": {
        "phoneNumbers": {
            "type": "object",
            "additionalProperties": {"anyOf": [{"type": "object"}, {"type": "null"}]},
        }
    },
}


class CarrierCreate(Model):
    name: str = Field(min_length=1, max_length=63)
    kind: Literal["sip", "smpp", "both"] = "both"
    notes: str = ""
