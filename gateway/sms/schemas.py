"""Request bodies of the SMS API (2021-03-07 and 2026-01-23) and of the operator's SMPP API."""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import ConfigDict, Field, field_validator
from pydantic.alias_generators import to_camel

from gateway.core.db import stored_length
from gateway.core.text import InputModel
from gateway.sms.models import SmsMessage

SMS_API_VERSIONS = ("2021-03-07", "2026-01-23")
OPTOUT_API_VERSION = "2026-01-23"
# The versions whose 400s for a malformed body are validation problem documents
# (BadRequestErrorResponse), not {"error": ...}.
VALIDATION_PROBLEM_VERSIONS = ("2026-01-23",)


class Model(InputModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="ignore")


class SmsRecipient(Model):
    to: str
    repeatability_request_id: str | None = Field(
        default=None, max_length=stored_length(SmsMessage.repeatability_request_id)
    )
    repeatability_first_sent: str | None = Field(
        default=None, max_length=stored_length(SmsMessage.repeatability_first_sent)
    )


class MessagingConnectOptions(Model):
    partner: str = Field(min_length=1)
    partner_params: dict[str, Any] = Field(min_length=1)


class SmsSendOptions(Model):
    enable_delivery_report: bool  # required in both versions' SmsSendOptions
    tag: str | None = Field(default=None, max_length=stored_length(SmsMessage.tag))
    delivery_report_timeout_in_seconds: int | None = Field(default=None, ge=60, le=43200)
    # Sms 2021-03-07 (int32): how long the message may be retried and its report awaited; also
    # the submit_sm's validity_period, so the SMSC stops trying when the app's interest ends.
    validity_period_seconds: int | None = Field(default=None, ge=1, le=2**31 - 1)
    # Sms 2026-01-23: delivery through an ACS Messaging Connect partner; refused here (see
    # send._plan), after its form is checked as the spec gives it.
    messaging_connect: MessagingConnectOptions | None = None


class SendMessageRequest(Model):
    from_: str = Field(alias="from", min_length=1)
    sms_recipients: list[SmsRecipient] = Field(min_length=1, max_length=100)
    message: str = Field(max_length=2048)
    sms_send_options: SmsSendOptions | None = None


class OptOutRecipient(Model):
    to: str = Field(min_length=1)


class OptOutRequest(Model):
    from_: str = Field(alias="from", min_length=1)
    recipients: list[OptOutRecipient] = Field(min_length=1, max_length=100)


CONNECTION_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]*$"
ROUTE_PREFIX_PATTERN = r"^\+[0-9]{0,15}$"


class ConnectionCreate(Model):
    # The pattern is checked by _name (to say what is wrong in words) and shown in the schema.
    name: str = Field(min_length=1, max_length=63, json_schema_extra={"pattern": CONNECTION_NAME_PATTERN})
    host: str = Field(min_length=1, max_length=255)
    port: int = Field(ge=1, le=65535)
    tls: bool = False
    system_id: str = Field(min_length=1, max_length=15)
    password: str = Field(max_length=63)
    system_type: str = Field(default="", max_length=12)
    bind_mode: Literal["transceiver", "transmitter+receiver"] = "transceiver"
    source_ton: int = Field(default=1, ge=0, le=255)
    source_npi: int = Field(default=1, ge=0, le=255)
    dest_ton: int = Field(default=1, ge=0, le=255)
    dest_npi: int = Field(default=1, ge=0, le=255)
    window_size: int = Field(default=10, ge=1, le=1000)
    max_submits_per_second: float = Field(default=0.0, ge=0)
    enquire_link_interval: float = Field(default=30.0, gt=0)
    reconnect_backoff_initial: float = Field(default=1.0, gt=0)
    # at most this between bind attempts: an SMSC back from an outage is bound again within it
    reconnect_backoff_max: float = Field(default=10.0, gt=0)
    default_data_coding: Literal["auto", "gsm7", "ucs2"] = "auto"
    resp_id_format: Literal["as-is", "hex", "decimal"] = "as-is"
    receipt_id_format: Literal["as-is", "hex", "decimal"] = "as-is"

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if value and not re.fullmatch(CONNECTION_NAME_PATTERN, value):
            raise ValueError(
                f"The connection name '{value}' must be letters, digits, dots, dashes or underscores, "
                "starting with a letter or digit."
            )
        return value


class RouteCreate(Model):
    prefix: str = Field(json_schema_extra={"pattern": ROUTE_PREFIX_PATTERN})
    connection: str = Field(min_length=1)
    priority: int | None = None

    @field_validator("prefix")
    @classmethod
    def _prefix(cls, value: str) -> str:
        if not re.fullmatch(ROUTE_PREFIX_PATTERN, value):
            raise ValueError(
                f"The prefix '{value}' must be '+' followed by up to 15 digits (such as +1 or +4420; "
                "'+' alone matches every destination)."
            )
        return value
