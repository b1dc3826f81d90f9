"""SMPP delivery receipts: parsing, message states, message id notations. Pure protocol core.

An SMSC reports the fate of a submitted part with a ``deliver_sm`` whose esm_class message type
is "SMSC delivery receipt" (SMPP 3.4 §5.2.12). Its state comes in two forms:

* the text in ``short_message``, whose format SMPP 3.4 Appendix B gives only as an example and
  every SMSC varies: ``id:IIIIIIIIII sub:SSS dlvrd:DDD submit date:YYMMDDhhmm done
  date:YYMMDDhhmm stat:DDDDDDD err:E text: ...``;
* the TLVs ``receipted_message_id`` (0x001E), ``message_state`` (0x0427) and
  ``network_error_code`` (0x0423), SMPP 3.4 §5.3.2.

When both are present the TLVs win: they are typed, where the text is free-form. What a receipt
means for an ACS delivery report is the gateway's business (gateway/sms/delivery_status.py).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import IntEnum, StrEnum

TLV_RECEIPTED_MESSAGE_ID = 0x001E
TLV_MESSAGE_STATE = 0x0427
TLV_NETWORK_ERROR_CODE = 0x0423

_ESM_MESSAGE_TYPE_MASK = 0x3C
ESM_SMSC_DELIVERY_RECEIPT = 0x04
ESM_INTERMEDIATE_NOTIFICATION = 0x20


def is_delivery_receipt(esm_class: int) -> bool:
    """True for an SMSC delivery receipt or an intermediate delivery notification (SMPP 3.4 §5.2.12)."""
    return (esm_class & _ESM_MESSAGE_TYPE_MASK) in (ESM_SMSC_DELIVERY_RECEIPT, ESM_INTERMEDIATE_NOTIFICATION)


class MessageState(IntEnum):
    """``message_state`` values (SMPP 3.4 §5.2.28; SCHEDULED and SKIPPED added by SMPP 5.0 §4.7.15)."""

    SCHEDULED = 0
    ENROUTE = 1
    DELIVERED = 2
    EXPIRED = 3
    DELETED = 4
    UNDELIVERABLE = 5
    ACCEPTED = 6
    UNKNOWN = 7
    REJECTED = 8
    SKIPPED = 9


STAT_TEXT: dict[MessageState, str] = {
    MessageState.SCHEDULED: "SCHEDUL",
    MessageState.ENROUTE: "ENROUTE",
    MessageState.DELIVERED: "DELIVRD",
    MessageState.EXPIRED: "EXPIRED",
    MessageState.DELETED: "DELETED",
    MessageState.UNDELIVERABLE: "UNDELIV",
    MessageState.ACCEPTED: "ACCEPTD",
    MessageState.UNKNOWN: "UNKNOWN",
    MessageState.REJECTED: "REJECTD",
    MessageState.SKIPPED: "SKIPPED",
}
"""The seven-letter ``stat:`` forms of SMPP 3.4 Appendix B (SMPP 5.0 for SCHEDUL/SKIPPED)."""

_STAT_ALIASES: dict[str, MessageState] = {
    **{text: state for state, text in STAT_TEXT.items()},
    **{state.name: state for state in MessageState},
    # Spellings seen from real SMSCs.
    "DELIVERD": MessageState.DELIVERED,
    "UNDELIVERED": MessageState.UNDELIVERABLE,
    "UNDELIVRD": MessageState.UNDELIVERABLE,
    "FAILED": MessageState.UNDELIVERABLE,
    "EXPIRD": MessageState.EXPIRED,
    "REJECT": MessageState.REJECTED,
    "ENROUTED": MessageState.ENROUTE,
}

SUCCESS_STATES: frozenset[MessageState] = frozenset({MessageState.DELIVERED, MessageState.ACCEPTED})
"""Final states in which the part reached (or was accepted on behalf of) the recipient.

ACCEPTED is final per SMPP 3.4 §5.2.28 ("accepted on behalf of the subscriber by customer
service"), so it counts as delivered; an SMSC that sends ACCEPTD as an interim "the network
took it" is misusing it, and the report timeout covers a part that then never arrives.
"""
FAILURE_STATES: frozenset[MessageState] = frozenset(
    {
        MessageState.EXPIRED,
        MessageState.DELETED,
        MessageState.UNDELIVERABLE,
        MessageState.UNKNOWN,
        MessageState.REJECTED,
        MessageState.SKIPPED,
    }
)
FINAL_STATES: frozenset[MessageState] = SUCCESS_STATES | FAILURE_STATES
"""SCHEDULED and ENROUTE are the only interim states."""


def is_final_state(state: MessageState) -> bool:
    return state in FINAL_STATES


def message_state_from_stat(stat: str) -> MessageState | None:
    """The state a ``stat:`` value names (any case, short or long form), or None if unknown."""
    cleaned = re.sub(r"[^A-Z]", "", stat.upper())
    return _STAT_ALIASES.get(cleaned)


class NetworkType(IntEnum):
    """First octet of ``network_error_code`` (SMPP 3.4 §5.3.2.31)."""

    ANSI_136_ACCESS_DENIED = 1
    IS_95_ACCESS_DENIED = 2
    GSM = 3
    ANSI_136_CAUSE = 5
    IS_95_CAUSE = 6
    ANSI_41_ERROR = 7
    SMPP_ERROR = 8
    MESSAGE_CENTER_SPECIFIC = 9


@dataclass(frozen=True, slots=True)
class NetworkErrorCode:
    network_type: int
    error_code: int

    def describe(self) -> str:
        try:
            network = NetworkType(self.network_type).name
        except ValueError:
            network = f"network type {self.network_type}"
        return f"{network} error {self.error_code}"


def parse_network_error_code(value: bytes) -> NetworkErrorCode | None:
    """Three octets: network type, then the error code big-endian. Anything else is ignored."""
    if len(value) != 3:
        return None
    return NetworkErrorCode(value[0], int.from_bytes(value[1:], "big"))


@dataclass(frozen=True, slots=True)
class ReceiptText:
    """The fields of a receipt's text form. Every field is optional; SMSCs leave them out."""

    message_id: str | None = None
    submitted: int | None = None
    delivered: int | None = None
    submit_date: datetime | None = None
    """Naive: SMSCs write their own local time and do not say which."""
    done_date: datetime | None = None
    stat: str | None = None
    """The ``stat:`` value as written."""
    state: MessageState | None = None
    error: str | None = None
    """The ``err:`` value as written (usually three digits, SMSC-specific)."""
    text: str | None = None
    extra: Mapping[str, str] = field(default_factory=dict)
    """Fields not in Appendix B (lower-cased names), e.g. ``mccmnc``."""


_TEXT_KEY = re.compile(r"(?i)(?:^|(?<=\s))text\s*:")
_FIELD_NAME = r"(?:submit[ _]?date|done[ _]?date|[a-z_][a-z0-9_\-]*)"
# A value follows its colon directly, or after spaces unless what follows is the next field
# ("dlvrd: stat:DELIVRD" has an empty dlvrd, not a dlvrd of "stat:DELIVRD").
_FIELD = re.compile(rf"(?i)({_FIELD_NAME})\s*:(?:(?=\S)(\S*)|\s+(?!{_FIELD_NAME}\s*:)(\S*)|)")
_DATE_DIGITS = re.compile(r"\d+")


def _parse_int(value: str) -> int | None:
    return int(value) if value.isdecimal() else None


def parse_receipt_date(value: str) -> datetime | None:
    """``YYMMDDhhmm``, ``YYMMDDhhmmss`` or ``YYYYMMDDhhmmss``; None when it is not a valid date.

    The digits of ``value`` (anything else between them is ignored), sliced into ints: every
    field of these lengths is exactly two digits (four for a 14-digit year), and ``datetime``
    refuses what strptime refused (month 13, 30 February, second 60, year 0). A receipt carries
    two dates, and strptime cost more than the rest of its parsing.
    """
    if value.isdecimal() and value.isascii():
        digits = value
    else:
        digits = "".join(_DATE_DIGITS.findall(value))
        if not digits.isascii():
            # Other scripts' digits (only in a str given to us: bytes are decoded as Latin-1,
            # which has none): strptime's per-field patterns treat them unevenly, so ask it.
            return _strptime_receipt_date(digits)
    length = len(digits)
    if length == 14:
        year, rest = int(digits[:4]), digits[4:]
    elif length in (10, 12):
        year, rest = 2000 + int(digits[:2]), digits[2:]
    else:
        return None
    try:
        return datetime(
            year,
            int(rest[0:2]),
            int(rest[2:4]),
            int(rest[4:6]),
            int(rest[6:8]),
            int(rest[8:10]) if length != 10 else 0,
        )
    except ValueError:
        return None


def _strptime_receipt_date(digits: str) -> datetime | None:
    try:
        if len(digits) == 10:
            return datetime.strptime("20" + digits, "%Y%m%d%H%M")
        if len(digits) == 12:
            return datetime.strptime("20" + digits, "%Y%m%d%H%M%S")
        if len(digits) == 14:
            return datetime.strptime(digits, "%Y%m%d%H%M%S")
    except ValueError:
        return None
    return None


def parse_receipt_text(body: str | bytes) -> ReceiptText | None:
    """Parse the Appendix B text form tolerantly; None when it has neither ``id`` nor ``stat``.

    Only for PDUs :func:`is_delivery_receipt` flags: an ordinary message saying "my id: 5" would
    parse as a receipt too.

    Field names in any case, in any order, any of them missing, ``submit_date`` for
    ``submit date``; unknown fields kept in ``extra``; ``text:`` takes the rest of the body
    (it quotes the message, which may itself contain colons).
    """
    if isinstance(body, bytes):
        # Receipt text is ASCII in practice; Latin-1 never fails and keeps every octet visible.
        body = body.decode("latin-1")
    body = body.replace("\x00", "")
    text_match = _TEXT_KEY.search(body)
    head = body[: text_match.start()] if text_match else body
    quoted = body[text_match.end() :] if text_match else None

    fields: dict[str, str] = {}
    for match in _FIELD.finditer(head):
        name = match.group(1).lower()
        compact = re.sub(r"[ _]", "", name)
        name = {"submitdate": "submit date", "donedate": "done date"}.get(compact, name)
        fields.setdefault(name, match.group(2) or match.group(3) or "")

    if "id" not in fields and "stat" not in fields:
        return None
    stat = fields.pop("stat", None)
    submit_date = fields.pop("submit date", None)
    done_date = fields.pop("done date", None)
    submitted = fields.pop("sub", None)
    delivered = fields.pop("dlvrd", None)
    return ReceiptText(
        message_id=fields.pop("id", None) or None,
        submitted=_parse_int(submitted) if submitted is not None else None,
        delivered=_parse_int(delivered) if delivered is not None else None,
        submit_date=parse_receipt_date(submit_date) if submit_date else None,
        done_date=parse_receipt_date(done_date) if done_date else None,
        stat=stat,
        state=message_state_from_stat(stat) if stat else None,
        error=fields.pop("err", None),
        text=quoted.strip() if quoted is not None else None,
        extra=fields,
    )


def format_receipt_text(
    *,
    message_id: str,
    state: MessageState,
    submitted: int = 1,
    delivered: int | None = None,
    submit_date: datetime | None = None,
    done_date: datetime | None = None,
    error: str = "000",
    text: str = "",
    with_seconds: bool = False,
) -> str:
    """Write a receipt in the Appendix B form (for test SMSCs, and the inverse of the parser)."""
    date_format = "%y%m%d%H%M%S" if with_seconds else "%y%m%d%H%M"
    missing_date = "0000000000"
    if delivered is None:
        delivered = submitted if state in SUCCESS_STATES else 0
    return (
        f"id:{message_id} sub:{submitted:03d} dlvrd:{delivered:03d} "
        f"submit date:{submit_date.strftime(date_format) if submit_date else missing_date} "
        f"done date:{done_date.strftime(date_format) if done_date else missing_date} "
        f"stat:{STAT_TEXT[state]} err:{error} text:{text[:20]}"
    )


@dataclass(frozen=True, slots=True)
class DeliveryReceipt:
    """A receipt with its TLVs and text merged, the TLVs taking precedence."""

    message_id: str | None
    state: MessageState | None
    error: str | None
    network_error: NetworkErrorCode | None
    submit_date: datetime | None
    done_date: datetime | None
    submitted: int | None
    delivered: int | None
    text: ReceiptText | None

    @property
    def is_final(self) -> bool:
        return self.state is not None and is_final_state(self.state)


def _tlv_text(value: bytes | str | None) -> str | None:
    if value is None:
        return None
    if isinstance(value, bytes):
        value = value.decode("latin-1")
    value = value.split("\x00", 1)[0].strip()
    return value or None


def _tlv_state(value: int | bytes | None) -> MessageState | None:
    if isinstance(value, bytes):
        value = int.from_bytes(value, "big") if value else None
    if value is None:
        return None
    try:
        return MessageState(value)
    except ValueError:
        return None


def parse_delivery_receipt(
    short_message: bytes | str,
    *,
    receipted_message_id: bytes | str | None = None,
    message_state: int | bytes | None = None,
    network_error_code: bytes | None = None,
) -> DeliveryReceipt | None:
    """Merge a receipt's TLVs and text; None when neither identifies a receipt.

    ``receipted_message_id`` may be a C-string (trailing NUL dropped); ``message_state`` an int
    or its one octet; ``network_error_code`` the three raw octets.
    """
    text = parse_receipt_text(short_message) if short_message else None
    tlv_id = _tlv_text(receipted_message_id)
    tlv_state = _tlv_state(message_state)
    if text is None and tlv_id is None and tlv_state is None:
        return None
    return DeliveryReceipt(
        message_id=tlv_id or (text.message_id if text else None),
        state=tlv_state if tlv_state is not None else (text.state if text else None),
        error=text.error if text else None,
        network_error=parse_network_error_code(network_error_code) if network_error_code else None,
        submit_date=text.submit_date if text else None,
        done_date=text.done_date if text else None,
        submitted=text.submitted if text else None,
        delivered=text.delivered if text else None,
        text=text,
    )


class MessageIdFormat(StrEnum):
    """How an SMSC writes message ids in one place (submit_sm_resp, or receipts).

    SMSCs commonly answer ``submit_sm`` with a hex id and quote it in decimal in the receipt, or
    the reverse (Kannel's ``msg-id-type`` exists for this). Configure both per connection and
    compare :func:`canonical_message_id` values.
    """

    AS_IS = "as-is"
    DECIMAL = "decimal"
    HEX = "hex"


def canonical_message_id(message_id: str, id_format: MessageIdFormat = MessageIdFormat.AS_IS) -> str:
    """A form of the id that compares equal across the SMSC's notations.

    DECIMAL and HEX ids become the decimal number without leading zeros; AS_IS ids are only
    stripped and lower-cased. An id that does not parse in its declared base falls back to AS_IS.
    """
    cleaned = message_id.strip().lower()
    try:
        if id_format == MessageIdFormat.DECIMAL and cleaned.isdecimal():
            return str(int(cleaned, 10))
        if id_format == MessageIdFormat.HEX:
            return str(int(cleaned, 16))
    except ValueError:
        pass
    return cleaned


def message_id_candidates(message_id: str) -> frozenset[str]:
    """Every canonical form the id could have when its notation is not configured.

    For matching with no per-connection setting: a receipt matches a submitted part when their
    candidate sets intersect. Ambiguous by nature (decimal "18" equals hex "12"), so prefer a
    configured :class:`MessageIdFormat`.
    """
    forms = {canonical_message_id(message_id)}
    for id_format in (MessageIdFormat.DECIMAL, MessageIdFormat.HEX):
        forms.add(canonical_message_id(message_id, id_format))
    return frozenset(forms)
