"""SMPP ``command_status`` codes: names, descriptions, and what a sender should do about them.

Codes and names are those of SMPP 3.4 §5.1.3 (Table 5-2), plus the first SMPP 5.0 §4.7.6
additions. 0x0400-0x04FF are reserved for SMSC vendors, whose meanings only their documentation
knows.

A failed ``submit_sm_resp`` is either **transient** (the SMSC is busy or briefly broken: back
off and submit again, the message is not lost) or **permanent** (this message will never be
accepted as it is: fail it, naming the status). Anything not known to be transient is
permanent, so an unknown vendor code cannot make a message loop forever.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


@dataclass(frozen=True, slots=True)
class CommandStatus:
    code: int
    name: str
    description: str


_STATUSES: tuple[CommandStatus, ...] = (
    CommandStatus(0x00000000, "ESME_ROK", "No error"),
    CommandStatus(0x00000001, "ESME_RINVMSGLEN", "Message length is invalid"),
    CommandStatus(0x00000002, "ESME_RINVCMDLEN", "Command length is invalid"),
    CommandStatus(0x00000003, "ESME_RINVCMDID", "Invalid command ID"),
    CommandStatus(0x00000004, "ESME_RINVBNDSTS", "Incorrect bind status for the command"),
    CommandStatus(0x00000005, "ESME_RALYBND", "ESME already in bound state"),
    CommandStatus(0x00000006, "ESME_RINVPRTFLG", "Invalid priority flag"),
    CommandStatus(0x00000007, "ESME_RINVREGDLVFLG", "Invalid registered delivery flag"),
    CommandStatus(0x00000008, "ESME_RSYSERR", "System error"),
    CommandStatus(0x0000000A, "ESME_RINVSRCADR", "Invalid source address"),
    CommandStatus(0x0000000B, "ESME_RINVDSTADR", "Invalid destination address"),
    CommandStatus(0x0000000C, "ESME_RINVMSGID", "Message ID is invalid"),
    CommandStatus(0x0000000D, "ESME_RBINDFAIL", "Bind failed"),
    CommandStatus(0x0000000E, "ESME_RINVPASWD", "Invalid password"),
    CommandStatus(0x0000000F, "ESME_RINVSYSID", "Invalid system ID"),
    CommandStatus(0x00000011, "ESME_RCANCELFAIL", "cancel_sm failed"),
    CommandStatus(0x00000013, "ESME_RREPLACEFAIL", "replace_sm failed"),
    CommandStatus(0x00000014, "ESME_RMSGQFUL", "Message queue full"),
    CommandStatus(0x00000015, "ESME_RINVSERTYP", "Invalid service type"),
    CommandStatus(0x00000033, "ESME_RINVNUMDESTS", "Invalid number of destinations"),
    CommandStatus(0x00000034, "ESME_RINVDLNAME", "Invalid distribution list name"),
    CommandStatus(0x00000040, "ESME_RINVDESTFLAG", "Destination flag is invalid (submit_multi)"),
    CommandStatus(0x00000042, "ESME_RINVSUBREP", "Invalid 'submit with replace' request"),
    CommandStatus(0x00000043, "ESME_RINVESMCLASS", "Invalid esm_class field data"),
    CommandStatus(0x00000044, "ESME_RCNTSUBDL", "Cannot submit to distribution list"),
    CommandStatus(0x00000045, "ESME_RSUBMITFAIL", "submit_sm or submit_multi failed"),
    CommandStatus(0x00000048, "ESME_RINVSRCTON", "Invalid source address TON"),
    CommandStatus(0x00000049, "ESME_RINVSRCNPI", "Invalid source address NPI"),
    CommandStatus(0x00000050, "ESME_RINVDSTTON", "Invalid destination address TON"),
    CommandStatus(0x00000051, "ESME_RINVDSTNPI", "Invalid destination address NPI"),
    CommandStatus(0x00000053, "ESME_RINVSYSTYP", "Invalid system_type field"),
    CommandStatus(0x00000054, "ESME_RINVREPFLAG", "Invalid replace_if_present flag"),
    CommandStatus(0x00000055, "ESME_RINVNUMMSGS", "Invalid number of messages"),
    CommandStatus(0x00000058, "ESME_RTHROTTLED", "Throttling error: the ESME exceeded its message rate"),
    CommandStatus(0x00000061, "ESME_RINVSCHED", "Invalid scheduled delivery time"),
    CommandStatus(0x00000062, "ESME_RINVEXPIRY", "Invalid message validity period (expiry time)"),
    CommandStatus(0x00000063, "ESME_RINVDFTMSGID", "Predefined message invalid or not found"),
    CommandStatus(0x00000064, "ESME_RX_T_APPN", "ESME receiver temporary application error"),
    CommandStatus(0x00000065, "ESME_RX_P_APPN", "ESME receiver permanent application error"),
    CommandStatus(0x00000066, "ESME_RX_R_APPN", "ESME receiver reject message error"),
    CommandStatus(0x00000067, "ESME_RQUERYFAIL", "query_sm request failed"),
    CommandStatus(0x000000C0, "ESME_RINVOPTPARSTREAM", "Error in the optional part of the PDU body"),
    CommandStatus(0x000000C1, "ESME_ROPTPARNOTALLWD", "Optional parameter not allowed"),
    CommandStatus(0x000000C2, "ESME_RINVPARLEN", "Invalid parameter length"),
    CommandStatus(0x000000C3, "ESME_RMISSINGOPTPARAM", "Expected optional parameter missing"),
    CommandStatus(0x000000C4, "ESME_RINVOPTPARAMVAL", "Invalid optional parameter value"),
    CommandStatus(0x000000FE, "ESME_RDELIVERYFAILURE", "Delivery failure (data_sm_resp)"),
    CommandStatus(0x000000FF, "ESME_RUNKNOWNERR", "Unknown error"),
    CommandStatus(0x00000100, "ESME_RSERTYPUNAUTH", "ESME not authorised to use the service_type"),
    CommandStatus(0x00000101, "ESME_RPROHIBITED", "ESME prohibited from using the operation"),
    CommandStatus(0x00000102, "ESME_RSERTYPUNAVAIL", "The service_type is unavailable"),
    CommandStatus(0x00000103, "ESME_RSERTYPDENIED", "The service_type is denied"),
    CommandStatus(0x00000104, "ESME_RINVDCS", "Invalid data coding scheme"),
)

COMMAND_STATUSES: dict[int, CommandStatus] = {status.code: status for status in _STATUSES}
STATUS_CODES: dict[str, int] = {status.name: status.code for status in _STATUSES}

ESME_ROK = 0x00000000
ESME_RSYSERR = 0x00000008
ESME_RINVSRCADR = 0x0000000A
ESME_RINVDSTADR = 0x0000000B
ESME_RMSGQFUL = 0x00000014
ESME_RSUBMITFAIL = 0x00000045
ESME_RTHROTTLED = 0x00000058

VENDOR_SPECIFIC_RANGE = range(0x00000400, 0x00000500)


class StatusClass(StrEnum):
    OK = "ok"
    TRANSIENT = "transient"
    """Back off and submit the same PDU again."""
    PERMANENT = "permanent"
    """Fail the message, naming the status."""


DEFAULT_TRANSIENT_STATUSES: frozenset[int] = frozenset(
    {
        0x00000058,  # ESME_RTHROTTLED: we are over the SMSC's rate; slow down
        0x00000014,  # ESME_RMSGQFUL: the SMSC's queue (or the recipient's) is full for now
        0x00000008,  # ESME_RSYSERR: the SMSC failed internally, not on this message
        0x00000064,  # ESME_RX_T_APPN: temporary application error, by definition
        0x00000004,  # ESME_RINVBNDSTS: the bind is in the wrong state; rebind and retry
        0x00000102,  # ESME_RSERTYPUNAVAIL: the service is unavailable, not refused
    }
)
"""Statuses that say nothing is wrong with the message itself.

ESME_RSUBMITFAIL is not here: SMSCs use it for "we will not take this", and retrying it only
delays the failure; an operator whose SMSC means otherwise adds it via ``extra_transient``.
"""

THROTTLING_STATUSES: frozenset[int] = frozenset({0x00000058, 0x00000014})
"""Statuses that should also lower the bind's submit rate, not only delay this message."""


def command_status_name(code: int) -> str:
    """``ESME_RTHROTTLED`` for 0x58; a readable label for vendor-specific and unknown codes."""
    status = COMMAND_STATUSES.get(code)
    if status is not None:
        return status.name
    if code in VENDOR_SPECIFIC_RANGE:
        return f"VENDOR_0x{code:08X}"
    return f"UNKNOWN_0x{code:08X}"


def describe_command_status(code: int) -> str:
    """``ESME_RINVDSTADR (0x0000000B): Invalid destination address``, for failure messages."""
    status = COMMAND_STATUSES.get(code)
    if status is not None:
        description = status.description
    elif code in VENDOR_SPECIFIC_RANGE:
        description = "SMSC vendor-specific error"
    else:
        description = "Status not defined by SMPP"
    return f"{command_status_name(code)} (0x{code:08X}): {description}"


def classify_command_status(
    code: int,
    *,
    extra_transient: frozenset[int] = frozenset(),
    extra_permanent: frozenset[int] = frozenset(),
) -> StatusClass:
    """OK, TRANSIENT (retry with backoff) or PERMANENT (fail the message).

    ``extra_transient`` / ``extra_permanent`` let a connection's configuration reclassify codes
    its SMSC uses differently (vendor codes above all); permanent wins if a code is in both.
    """
    if code == ESME_ROK:
        return StatusClass.OK
    if code in extra_permanent:
        return StatusClass.PERMANENT
    if code in DEFAULT_TRANSIENT_STATUSES or code in extra_transient:
        return StatusClass.TRANSIENT
    return StatusClass.PERMANENT


def should_throttle(code: int) -> bool:
    """True when the status asks the sender to slow the whole bind down."""
    return code in THROTTLING_STATUSES


def backoff_delay(
    attempt: int, *, base_seconds: float = 1.0, cap_seconds: float = 60.0, jitter: float = 0.0
) -> float:
    """Exponential backoff before retry number ``attempt`` (1-based): base * 2**(attempt-1), capped.

    ``jitter`` in [0, 1) is a random fraction supplied by the caller (this module has no
    randomness of its own); it shortens the delay by up to that fraction so retries of many
    messages throttled together spread out.
    """
    if attempt < 1:
        raise ValueError("attempt counts from 1")
    if not 0.0 <= jitter < 1.0:
        raise ValueError("jitter must be in [0, 1)")
    delay = min(cap_seconds, base_seconds * 2.0 ** min(attempt - 1, 62))
    return delay * (1.0 - jitter)
