"""Reassembling inbound (MO) concatenated messages, sans IO.

Parts arrive as ``deliver_sm`` PDUs in any order, possibly more than once (an SMSC retries a
``deliver_sm`` whose response it missed). Each carries its place either in a UDH concatenation
element (TS 23.040 §9.2.3.24.1 / .8) or in the SMPP SAR TLVs (SMPP 3.4 §5.3.2.22-24). A set is
identified by (source, destination, reference, total).

The :class:`Reassembler` holds no clock: every call that depends on time takes ``now`` (any
monotonic seconds the caller chooses), so tests and the SMPP process decide what time it is.
Payloads of a set are joined before decoding, so a sender that split an escape sequence or a
surrogate pair across parts still yields the right text.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum

from sms.encoding import DataCoding, decode_payload
from sms.udh import ConcatInfo, MalformedUdhError, concat_info_from_udh, is_valid_concat, split_udh

DEFAULT_TIMEOUT_SECONDS = 600.0
DEFAULT_MAX_OPEN_SETS = 10_000


@dataclass(frozen=True, slots=True)
class InboundPart:
    """One ``deliver_sm`` of a mobile-originated message, its text octets separated from any UDH."""

    source: str
    destination: str
    data_coding: int
    payload: bytes
    concat: ConcatInfo | None
    udh: bytes = b""
    malformed_udh: bool = False
    """UDHI was set but the header did not parse; the octets were kept as text."""


def inbound_part_from_pdu(
    *,
    source: str,
    destination: str,
    esm_class: int,
    data_coding: int,
    short_message: bytes,
    message_payload: bytes | None = None,
    sar_msg_ref_num: int | None = None,
    sar_total_segments: int | None = None,
    sar_segment_seqnum: int | None = None,
) -> InboundPart:
    """Build an :class:`InboundPart` from the fields of a ``deliver_sm`` / ``data_sm``.

    The text is in ``message_payload`` when that TLV is present (SMPP 3.4 §5.3.2.32 forbids
    both). A valid UDH concatenation element wins over SAR TLVs; SAR values are used only when
    all three are present and consistent.
    """
    user_data = message_payload if message_payload else short_message
    udh = b""
    payload = user_data
    concat: ConcatInfo | None = None
    malformed = False
    if esm_class & 0x40:
        try:
            udh, payload = split_udh(user_data)
            concat = concat_info_from_udh(udh)
        except MalformedUdhError:
            udh, payload, concat, malformed = b"", user_data, None, True
    if concat is None and None not in (sar_msg_ref_num, sar_total_segments, sar_segment_seqnum):
        assert sar_msg_ref_num is not None
        assert sar_total_segments is not None
        assert sar_segment_seqnum is not None
        candidate = ConcatInfo(sar_msg_ref_num, sar_total_segments, sar_segment_seqnum, reference_bits=16)
        concat = candidate if is_valid_concat(candidate) else None
    return InboundPart(source, destination, data_coding, payload, concat, udh, malformed)


@dataclass(frozen=True, slots=True)
class ReassemblyKey:
    source: str
    destination: str
    reference: int
    total: int


@dataclass(frozen=True, slots=True)
class ReassembledMessage:
    source: str
    destination: str
    text: str
    segment_count: int
    decoded: bool
    """False when some part's data_coding was not a known text coding (see DecodedText)."""
    reference: int | None
    """The concatenation reference, None for a single-part message."""


class AddOutcome(StrEnum):
    COMPLETE = "complete"
    PENDING = "pending"
    DUPLICATE = "duplicate"


@dataclass(frozen=True, slots=True)
class AddResult:
    outcome: AddOutcome
    message: ReassembledMessage | None = None
    """Set when ``outcome`` is COMPLETE."""


@dataclass(frozen=True, slots=True)
class ExpiredSet:
    """An incomplete set given up on; its received parts are kept for logging or partial delivery."""

    key: ReassemblyKey
    received: tuple[int, ...]
    missing: tuple[int, ...]
    partial_text: str
    """The received parts decoded in order, with ``[missing part N]`` for each gap."""
    first_seen: float


@dataclass(slots=True)
class _OpenSet:
    first_seen: float
    parts: dict[int, InboundPart] = field(default_factory=dict)


def _decode_run(parts: Iterable[InboundPart], smsc_default: DataCoding) -> tuple[str, bool]:
    """Decode consecutive parts, joining the octets of neighbours that share a data_coding."""
    texts: list[str] = []
    decoded = True
    run: list[InboundPart] = []

    def flush() -> None:
        nonlocal decoded
        if run:
            joined = b"".join(part.payload for part in run)
            result = decode_payload(joined, run[0].data_coding, smsc_default=smsc_default)
            texts.append(result.text)
            decoded = decoded and result.decoded
            run.clear()

    for part in parts:
        if run and run[0].data_coding != part.data_coding:
            flush()
        run.append(part)
    flush()
    return "".join(texts), decoded


class Reassembler:
    """Collects parts into messages; pure state, the caller supplies time.

    A set that is not complete ``timeout_seconds`` after its first part arrived is expired by
    :meth:`expire` (or, for its own key, by the next :meth:`add`). At most ``max_open_sets`` sets
    are held; past that the oldest is expired early, so a flood of orphan parts cannot grow
    memory without bound. Completed sets are remembered for one timeout so that a repeated part
    of a message already delivered is recognised as a duplicate, not a new set.

    Call :meth:`expire` regularly (:meth:`next_deadline` says when): sets given up on wait
    there, and the caller decides whether to log them or deliver their partial text.

    ``smsc_default`` is the alphabet this SMSC means by data_coding 0x00 (see
    :func:`sms.encoding.decode_payload`).
    """

    def __init__(
        self,
        timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS,
        max_open_sets: int = DEFAULT_MAX_OPEN_SETS,
        smsc_default: DataCoding = DataCoding.SMSC_DEFAULT,
    ) -> None:
        if timeout_seconds <= 0:
            raise ValueError("timeout_seconds must be positive")
        if max_open_sets < 1:
            raise ValueError("max_open_sets must be at least 1")
        self.timeout_seconds = timeout_seconds
        self.max_open_sets = max_open_sets
        self.smsc_default = smsc_default
        self._open: dict[ReassemblyKey, _OpenSet] = {}
        self._completed: dict[ReassemblyKey, tuple[float, dict[int, bytes]]] = {}
        self._expired: list[ExpiredSet] = []

    @property
    def open_set_count(self) -> int:
        return len(self._open)

    def add(self, part: InboundPart, now: float) -> AddResult:
        """Take one part; a part without (valid) concatenation info is a whole message."""
        if part.concat is None or part.concat.total == 1:
            text, decoded = _decode_run([part], self.smsc_default)
            reference = part.concat.reference if part.concat else None
            message = ReassembledMessage(part.source, part.destination, text, 1, decoded, reference)
            return AddResult(AddOutcome.COMPLETE, message)

        concat = part.concat
        key = ReassemblyKey(part.source, part.destination, concat.reference, concat.total)
        if self._is_repeat_of_completed(key, concat.sequence, part.payload, now):
            return AddResult(AddOutcome.DUPLICATE)

        open_set = self._open.get(key)
        if open_set is not None and now - open_set.first_seen >= self.timeout_seconds:
            self._expired.append(self._expired_set(key, self._open.pop(key)))
            open_set = None
        if open_set is None:
            self._make_room()
            open_set = self._open[key] = _OpenSet(first_seen=now)
        if concat.sequence in open_set.parts:
            return AddResult(AddOutcome.DUPLICATE)
        open_set.parts[concat.sequence] = part
        if len(open_set.parts) < concat.total:
            return AddResult(AddOutcome.PENDING)

        del self._open[key]
        ordered = [open_set.parts[sequence] for sequence in range(1, concat.total + 1)]
        self._completed[key] = (now, {seq: p.payload for seq, p in open_set.parts.items()})
        text, decoded = _decode_run(ordered, self.smsc_default)
        message = ReassembledMessage(
            part.source, part.destination, text, concat.total, decoded, concat.reference
        )
        return AddResult(AddOutcome.COMPLETE, message)

    def expire(self, now: float) -> list[ExpiredSet]:
        """Give up on sets older than the timeout; returns them (and any expired early)."""
        for key, open_set in list(self._open.items()):
            if now - open_set.first_seen >= self.timeout_seconds:
                self._expired.append(self._expired_set(key, self._open.pop(key)))
        for key, (completed_at, _) in list(self._completed.items()):
            if now - completed_at >= self.timeout_seconds:
                del self._completed[key]
        expired, self._expired = self._expired, []
        return expired

    def next_deadline(self) -> float | None:
        """The earliest ``now`` at which :meth:`expire` will have something to do."""
        if not self._open:
            return None
        return min(open_set.first_seen for open_set in self._open.values()) + self.timeout_seconds

    def _is_repeat_of_completed(self, key: ReassemblyKey, sequence: int, payload: bytes, now: float) -> bool:
        completed = self._completed.get(key)
        if completed is None:
            return False
        completed_at, payloads = completed
        if now - completed_at >= self.timeout_seconds:
            del self._completed[key]
            return False
        # The same reference reused for a new message carries different text; only an identical
        # part is a repeat.
        if payloads.get(sequence) == payload:
            return True
        del self._completed[key]
        return False

    def _make_room(self) -> None:
        while len(self._open) >= self.max_open_sets:
            # Sets are inserted as they start, so with a clock that does not go back the first
            # one is the oldest; O(1) matters here, as this runs under a flood of orphan parts.
            oldest_key = next(iter(self._open))
            self._expired.append(self._expired_set(oldest_key, self._open.pop(oldest_key)))

    def _expired_set(self, key: ReassemblyKey, open_set: _OpenSet) -> ExpiredSet:
        received = tuple(sorted(open_set.parts))
        missing = tuple(seq for seq in range(1, key.total + 1) if seq not in open_set.parts)
        pieces: list[str] = []
        run: list[InboundPart] = []
        for sequence in range(1, key.total + 1):
            part = open_set.parts.get(sequence)
            if part is not None:
                run.append(part)
                continue
            if run:
                pieces.append(_decode_run(run, self.smsc_default)[0])
                run = []
            pieces.append(f"[missing part {sequence}]")
        if run:
            pieces.append(_decode_run(run, self.smsc_default)[0])
        return ExpiredSet(key, received, missing, "".join(pieces), open_set.first_seen)
