"""What the submitter and the binds hand to the writer thread, which records it in batches."""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import NamedTuple

from sms.bind_dispatch import DeliverAnswer
from sms.bind_types import SubmitResult
from sms.pdu import DeliverSm
from sms.receipts import DeliveryReceipt, parse_delivery_receipt


class PartResult(NamedTuple):
    """The outcome of one part's submit_sm."""

    sequence: int
    result: SubmitResult


@dataclass
class SubmitBatch:
    """The outcomes of the parts one claim submitted of a message, handed over with the last."""

    message_id: str
    connection_id: str
    results: list[PartResult]
    total: int = 0  # parts the message has in the coding it was sent in
    data_coding: int = 0
    # First claim of the message (no segment rows yet) and its report window: such a batch whose
    # every part was accepted is recorded with two bulk statements instead of the ORM.
    first_attempt: bool = False
    report_timeout_seconds: int = 0


@dataclass
class NoRoute:
    """A claimed message of which nothing was submitted: for good (``permanent``: no route, every
    connection refused it, the codecs refuse it), or for now (no connection of its route bound)."""

    message_id: str
    reason: str
    permanent: bool


@dataclass
class Inbound:
    """A deliver_sm or data_sm from a bind: a delivery receipt, or an MO message (part)."""

    connection_id: str
    pdu: DeliverSm

    @functools.cached_property
    def receipt(self) -> DeliveryReceipt | None:
        """The delivery receipt it carries (None: not a receipt, or unparseable); parsed once,
        though the bulk path, the prefetch and the general path each look at it."""
        if not self.pdu.is_receipt:
            return None
        network = self.pdu.tlvs.get("network_error_code")
        return parse_delivery_receipt(
            self.pdu.payload,
            receipted_message_id=self.pdu.receipted_message_id,
            message_state=self.pdu.message_state,
            network_error_code=network if isinstance(network, bytes) else None,
        )


@dataclass(frozen=True)
class WakeUp:
    """Nothing to record: wakes the writer so that it sees the process stopping."""


WorkItem = SubmitBatch | NoRoute | Inbound | WakeUp


@dataclass
class Work:
    item: WorkItem
    answer: DeliverAnswer | None = None  # a delivery's: its deliver_sm_resp, sent after the commit
    error: list[BaseException] = field(default_factory=list)
