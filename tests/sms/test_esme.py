"""sms.esme.Esme, the sans-IO ESME: every PDU's answer, the window, sequence numbers, keepalive,
throttling and the bind's state machine; property-tested without a socket, a thread or a clock."""

from __future__ import annotations

import itertools
import struct
from dataclasses import dataclass, field
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sms import pdu
from sms.bind_types import BindConfig, BindState, SessionRole, SubmitOutcome, SubmitRequest, SubmitResult
from sms.esme import (
    DELIVERY_REFUSED,
    MAX_SEQUENCE,
    TRANSITIONS,
    Action,
    BindEvent,
    Delivery,
    DeliveryKind,
    Drop,
    DropCause,
    Esme,
    InvalidTransition,
    Link,
    Reply,
    Signal,
    Throttled,
    next_state,
    reconnect_delay,
)
from sms.status import DEFAULT_TRANSIENT_STATUSES, THROTTLING_STATUSES
from sms.window import Pending

ESME_RINVDSTADR = 0x0B
STATUSES = [pdu.ESME_ROK, pdu.ESME_RTHROTTLED, pdu.ESME_RMSGQFUL, pdu.ESME_RSYSERR, ESME_RINVDSTADR]


def bind_config(**overrides: Any) -> BindConfig:
    return BindConfig(**{"name": "t", "host": "h", "port": 1, "system_id": "u", "password": "p", **overrides})


def bound_esme(**overrides: Any) -> tuple[Esme[int], Link]:
    esme: Esme[int] = Esme(bind_config(**overrides))
    link = Link(SessionRole.TRANSCEIVER)
    esme.handle(BindEvent.CONNECT)
    esme.bound([link], now=0.0)
    return esme, link


def write(esme: Esme[int], item: int, now: float = 0.0) -> Pending[int, SubmitResult]:
    assert esme.window.reserve()
    return esme.submit_sm(item, b"body", now, bytearray())


def receive(esme: Esme[int], link: Link, data: bytes, now: float = 0.0) -> list[Action[int, Link]]:
    actions: list[Action[int, Link]] = []
    esme.receive_data(link, data, now, actions)
    return actions


def submit_resp(sequence: int, status: int = pdu.ESME_ROK) -> bytes:
    body = f"id{sequence}\x00".encode() if status == pdu.ESME_ROK else b""
    return pdu.build_pdu(pdu.SUBMIT_SM_RESP, sequence, status, body)


def deliver_sm_body(short_message: bytes, esm_class: int = 0) -> bytes:
    return (
        b"\x00"  # service_type
        + b"\x01\x01447700900123\x00"
        + b"\x01\x0115550001111\x00"
        + bytes([esm_class, 0, 0])  # esm_class, protocol_id, priority_flag
        + b"\x00\x00"  # schedule_delivery_time, validity_period
        + b"\x00\x00\x00\x00"  # registered_delivery, replace_if_present, data_coding, sm_default_msg_id
        + bytes([len(short_message)])
        + short_message
    )


# what each PDU is answered with -------------------------------------------------------------------


def test_submit_sm_goes_out_under_a_new_sequence_number_with_the_connection_defaults() -> None:
    esme, _ = bound_esme(source_ton=5, source_npi=0)
    body = esme.encode_submit(SubmitRequest("TRUNK", "447700900123", b"hi", dest_ton=2))
    assert esme.window.reserve()
    out = bytearray(b"already queued")
    entry = esme.submit_sm(7, body, 3.0, out)
    assert out[:14] == b"already queued"
    header = pdu.parse_header(out[14:])
    assert (header.command_id, header.status, header.sequence) == (pdu.SUBMIT_SM, 0, entry.sequence)
    assert out[14 + pdu.HEADER_SIZE :] == body
    assert body[1:3] == b"\x05\x00"  # source TON/NPI from the connection
    assert (entry.item, entry.deadline, entry.result) == (7, 3.0 + esme.config.response_timeout, None)


def test_accepted_resp_carries_the_message_id_and_frees_the_slot() -> None:
    esme, link = bound_esme(window_size=1)
    entry = write(esme, 1)
    assert not esme.window.reserve()
    (done,) = receive(esme, link, submit_resp(entry.sequence))
    assert done is entry
    assert entry.result == SubmitResult(SubmitOutcome.ACCEPTED, message_id=f"id{entry.sequence}")
    assert esme.window.idle()


@pytest.mark.parametrize(
    ("status", "outcome", "throttles"),
    [
        (pdu.ESME_RTHROTTLED, SubmitOutcome.RETRY, True),
        (pdu.ESME_RMSGQFUL, SubmitOutcome.RETRY, True),
        (pdu.ESME_RSYSERR, SubmitOutcome.RETRY, False),
        (ESME_RINVDSTADR, SubmitOutcome.FAILED, False),
    ],
)
def test_refused_submits(status: int, outcome: SubmitOutcome, throttles: bool) -> None:
    esme, link = bound_esme(throttle_backoff_initial=0.5)
    entry = write(esme, 1)
    actions = receive(esme, link, submit_resp(entry.sequence, status), now=10.0)
    assert actions[-1] is entry
    assert entry.result is not None
    assert (entry.result.outcome, entry.result.status) == (outcome, status)
    assert entry.result.status_name is not None
    assert entry.result.status_name in entry.result.detail
    assert actions[:-1] == ([Throttled(0.5)] if throttles else [])
    assert esme.paused_until == (10.5 if throttles else 0.0)


def test_generic_nack_fails_the_submit_and_a_stray_one_is_only_logged() -> None:
    esme, link = bound_esme()
    entry = write(esme, 1)
    assert (
        receive(esme, link, pdu.build_pdu(pdu.GENERIC_NACK, entry.sequence + 1000, pdu.ESME_RINVCMDLEN)) == []
    )
    assert receive(esme, link, submit_resp(entry.sequence + 1000)) == []  # stray resp
    (done,) = receive(esme, link, pdu.build_pdu(pdu.GENERIC_NACK, entry.sequence, pdu.ESME_RINVCMDLEN))
    assert done is entry
    assert entry.result is not None
    assert entry.result.outcome is SubmitOutcome.FAILED
    assert entry.result.detail.startswith("generic_nack ESME_RINVCMDLEN")
    assert receive(esme, link, submit_resp(entry.sequence)) == []  # already resolved


def test_requests_from_the_smsc_are_answered() -> None:
    esme, link = bound_esme()
    assert receive(esme, link, pdu.build_pdu(pdu.ENQUIRE_LINK, 5)) == [
        Reply(pdu.build_pdu(pdu.ENQUIRE_LINK_RESP, 5))
    ]
    assert receive(esme, link, pdu.build_pdu(0x00000111, 6, body=b"\x00" * 8)) == [
        Reply(pdu.build_pdu(pdu.GENERIC_NACK, 6, pdu.ESME_RINVCMDID))
    ]
    assert receive(esme, link, pdu.build_pdu(pdu.UNBIND, 7)) == [
        Drop(DropCause.UNBIND, "unbind from the SMSC", pdu.build_pdu(pdu.UNBIND_RESP, 7))
    ]
    assert receive(esme, link, pdu.build_pdu(pdu.UNBIND_RESP, 8)) == [Signal.UNBIND_ANSWERED]
    assert receive(esme, link, pdu.build_pdu(pdu.ALERT_NOTIFICATION, 9, body=b"\x00" * 8)) == []
    assert receive(esme, link, pdu.build_pdu(pdu.DELIVER_SM_RESP, 10, body=b"\x00")) == []


@pytest.mark.parametrize("ack_after_callbacks", [False, True])
def test_deliveries_are_answered_at_once_or_after_the_callbacks(ack_after_callbacks: bool) -> None:
    esme, link = bound_esme(ack_after_callbacks=ack_after_callbacks)
    mo = pdu.build_pdu(pdu.DELIVER_SM, 11, body=deliver_sm_body(b"hello"))
    receipt = pdu.build_pdu(pdu.DELIVER_SM, 12, body=deliver_sm_body(b"id:1 stat:DELIVRD", esm_class=0x04))
    data_sm = pdu.build_pdu(
        pdu.DATA_SM,
        13,
        body=b"\x00\x01\x01447700900123\x00\x01\x0115550001111\x00\x00\x00\x00"
        + struct.pack(">HH", 0x0424, 2)
        + b"hi",
    )
    actions = receive(esme, link, mo + receipt + data_sm)
    assert [a.kind for a in actions if isinstance(a, Delivery)] == [
        DeliveryKind.MO,
        DeliveryKind.RECEIPT,
        DeliveryKind.DATA_SM,
    ]
    for action, command, sequence in zip(
        actions, (pdu.DELIVER_SM_RESP, pdu.DELIVER_SM_RESP, pdu.DATA_SM_RESP), (11, 12, 13), strict=True
    ):
        assert isinstance(action, Delivery)
        at_once = pdu.build_pdu(command, sequence, body=b"\x00")
        if ack_after_callbacks:
            assert (action.link, action.reply) == (link, b"")
        else:
            assert (action.link, action.reply) == (None, at_once)
        assert action.answer(pdu.ESME_RX_T_APPN) == pdu.build_pdu(
            command, sequence, pdu.ESME_RX_T_APPN, b"\x00"
        )


def test_a_malformed_delivery_is_refused_for_good() -> None:
    esme, link = bound_esme()
    assert receive(esme, link, pdu.build_pdu(pdu.DELIVER_SM, 5, body=b"\x00\x01\x01123")) == [
        Reply(pdu.build_pdu(pdu.DELIVER_SM_RESP, 5, DELIVERY_REFUSED, b"\x00"))
    ]


def test_unframeable_data_drops_the_session() -> None:
    esme, link = bound_esme()
    entry = write(esme, 1)
    actions = receive(esme, link, submit_resp(entry.sequence) + b"\x00\x00\x00\x03junk")
    assert actions[0] is entry  # what came before the garbage still counts
    assert isinstance(actions[1], Drop)
    assert actions[1].cause is DropCause.UNFRAMEABLE
    assert not link.buffer


# any order of resps, nacks, unbinds, timeouts and lost links ----------------------------------------


@dataclass
class Run:
    """Drives an Esme as the runtime does, through a stream of SMSC octets cut anywhere."""

    esme: Esme[int]
    link: Link = field(default_factory=lambda: Link(SessionRole.TRANSCEIVER))
    now: float = 0.0
    written: list[Pending[int, SubmitResult]] = field(default_factory=list)
    completed: list[Pending[int, SubmitResult]] = field(default_factory=list)
    throttles: int = 0
    stream: bytearray = field(default_factory=bytearray)  # sent by the SMSC, not yet read

    def take(self, actions: list[Any]) -> None:
        for action in actions:
            if isinstance(action, Pending):
                self.completed.append(action)
            elif isinstance(action, Throttled):
                self.throttles += 1
            elif isinstance(action, Drop):
                self.lose_link(action.reason)
        assert self.esme.window.in_use() <= self.esme.window.size

    def read(self, count: int) -> None:
        data = bytes(self.stream[:count])
        del self.stream[:count]
        self.take(receive(self.esme, self.link, data, self.now))

    def lose_link(self, reason: str) -> None:
        self.esme.handle(BindEvent.LINK_LOST)
        self.completed += self.esme.drain(f"link lost ({reason})")
        self.stream.clear()  # what was in flight died with the socket
        self.link = Link(SessionRole.TRANSCEIVER)
        self.esme.handle(BindEvent.WAIT)
        self.esme.handle(BindEvent.CONNECT)
        self.esme.bound([self.link], self.now)


events = st.lists(
    st.one_of(
        st.tuples(st.just("submit"), st.integers(1, 3)),
        st.tuples(st.just("resp"), st.integers(0, 40), st.sampled_from(STATUSES)),
        st.tuples(st.just("nack"), st.integers(0, 40), st.sampled_from(STATUSES)),
        st.tuples(st.just("read"), st.integers(1, 60)),
        st.tuples(st.just("tick"), st.floats(0, 3)),
        st.tuples(st.just("write_failed"), st.integers(0, 40)),
        st.tuples(st.just("unbind"), st.just(0)),
        st.tuples(st.just("enquire_link"), st.integers(1, 1000)),
    ),
    max_size=80,
)


@settings(max_examples=300)
@given(window_size=st.integers(1, 6), plan=events)
def test_every_submit_gets_exactly_one_result(window_size: int, plan: list[tuple[Any, ...]]) -> None:
    esme, link = bound_esme(window_size=window_size, response_timeout=4.0, enquire_link_interval=2.0)
    run = Run(esme, link)
    items = itertools.count()
    for event, *args in plan:
        if event == "submit":
            for _ in range(args[0]):
                if esme.window.reserve():
                    run.written.append(esme.submit_sm(next(items), b"body", run.now, bytearray()))
        elif event in ("resp", "nack") and run.written:
            sequence = run.written[args[0] % len(run.written)].sequence
            command = pdu.SUBMIT_SM_RESP if event == "resp" else pdu.GENERIC_NACK
            body = f"id{sequence}\x00".encode() if event == "resp" and args[1] == 0 else b""
            run.stream += pdu.build_pdu(command, sequence, args[1], body)
        elif event == "read":
            run.read(args[0])
        elif event == "tick":
            run.now += args[0]
            run.completed += esme.expire(run.now)
            check = esme.keepalive(run.link, run.now)
            if isinstance(check, Drop):
                run.lose_link(check.reason)
            elif check is not None:  # the SMSC answers it, later in the stream
                run.stream += pdu.build_pdu(pdu.ENQUIRE_LINK_RESP, pdu.parse_header(check.pdu).sequence)
        elif event == "write_failed" and run.written:
            run.completed += esme.write_failed([run.written[args[0] % len(run.written)]], "write failed")
        elif event == "unbind":
            run.stream += pdu.build_pdu(pdu.UNBIND, 99)
        elif event == "enquire_link":
            run.stream += pdu.build_pdu(pdu.ENQUIRE_LINK, args[0])
    run.read(len(run.stream))
    run.completed += esme.drain("bind stopped")
    assert esme.window.idle()

    # every submit written got exactly one result, and it is the one its first answer called for
    assert sorted(entry.item for entry in run.completed) == sorted(entry.item for entry in run.written)
    for entry in run.completed:
        result = entry.result
        assert result is not None
        if result.outcome is SubmitOutcome.ACCEPTED:
            assert result.message_id == f"id{entry.sequence}"
        elif result.outcome is SubmitOutcome.RETRY:
            assert result.status in THROTTLING_STATUSES | DEFAULT_TRANSIENT_STATUSES
        elif result.outcome is SubmitOutcome.FAILED:
            assert result.status not in THROTTLING_STATUSES | DEFAULT_TRANSIENT_STATUSES
        else:
            assert result.status is None
            assert result.maybe_submitted
    throttled = [e for e in run.completed if e.result is not None and e.result.status in THROTTLING_STATUSES]
    assert run.throttles == len(throttled)


@given(
    pieces=st.lists(st.integers(1, 40), max_size=30),
    ack_after_callbacks=st.booleans(),
)
def test_where_the_octets_are_cut_changes_nothing(pieces: list[int], ack_after_callbacks: bool) -> None:
    def fresh() -> tuple[Esme[int], Link, list[Pending[int, SubmitResult]]]:
        esme, link = bound_esme(window_size=5, ack_after_callbacks=ack_after_callbacks)
        return esme, link, [write(esme, item) for item in range(5)]

    whole, whole_link, written = fresh()
    stream = b"".join(
        [
            submit_resp(written[3].sequence),
            pdu.build_pdu(pdu.ENQUIRE_LINK, 77),
            submit_resp(written[0].sequence, pdu.ESME_RTHROTTLED),
            pdu.build_pdu(pdu.DELIVER_SM, 78, body=deliver_sm_body(b"x" * 100)),
            pdu.build_pdu(pdu.GENERIC_NACK, written[1].sequence, pdu.ESME_RSYSERR),
            pdu.build_pdu(0x00000111, 79),
            submit_resp(written[4].sequence),
        ]
    )

    def outline(actions: list[Action[int, Link]]) -> list[object]:
        return [
            (a.sequence, a.result)
            if isinstance(a, Pending)
            else (a.kind, a.header, a.reply, a.link is None)
            if isinstance(a, Delivery)
            else a
            for a in actions
        ]

    expected = outline(receive(whole, whole_link, stream))
    cut, cut_link, _ = fresh()
    got: list[Action[int, Link]] = []
    offset = 0
    for size in [*pieces, len(stream)]:
        cut.receive_data(cut_link, stream[offset : offset + size], 0.0, got)
        offset += size
    assert outline(got) == expected
    assert len(expected) == 8  # 4 submits resolved, 1 Throttled, 1 delivery, 2 replies


# sequence numbers ---------------------------------------------------------------------------------------


@given(start=st.integers(0, MAX_SEQUENCE), count=st.integers(1, 50))
def test_sequence_numbers_stay_in_range_and_wrap_to_one(start: int, count: int) -> None:
    esme: Esme[int] = Esme(bind_config(), last_sequence=start)
    previous = start
    for _ in range(count):
        sequence = esme.next_sequence()
        assert 1 <= sequence <= MAX_SEQUENCE
        assert sequence == (previous + 1 if 1 <= previous < MAX_SEQUENCE else 1)
        assert esme.sequence == sequence
        previous = sequence


@given(behind=st.integers(0, 8), stale=st.sets(st.integers(1, 8), max_size=4), more=st.integers(1, 12))
def test_after_a_wrap_no_submit_gets_a_number_still_in_the_window(
    behind: int, stale: set[int], more: int
) -> None:
    esme: Esme[int] = Esme(bind_config(window_size=20), last_sequence=MAX_SEQUENCE - behind)
    for sequence in stale:  # entries from before the wrap that never got their resp
        assert esme.window.reserve()
        esme.window.register(sequence, -sequence, now=0.0, timeout=1e9)
    numbers = [write(esme, item).sequence for item in range(more)]
    assert len(set(numbers)) == len(numbers)
    assert not set(numbers) & stale
    assert all(1 <= n <= MAX_SEQUENCE for n in numbers)


# keepalive --------------------------------------------------------------------------------------------


def test_enquire_link_every_interval_and_a_drop_when_unanswered() -> None:
    esme, link = bound_esme(enquire_link_interval=30.0, enquire_link_timeout=10.0)
    assert esme.keepalive(link, 29.9) is None
    check = esme.keepalive(link, 30.0)
    assert isinstance(check, Reply)
    header = pdu.parse_header(check.pdu)
    assert header.command_id == pdu.ENQUIRE_LINK
    assert esme.keepalive(link, 35.0) is None  # waiting for its resp, not sending another
    assert receive(esme, link, pdu.build_pdu(pdu.ENQUIRE_LINK_RESP, header.sequence + 1)) == []
    assert esme.keepalive(link, 40.0) is None  # a resp to another number does not count
    drop = esme.keepalive(link, 40.1)
    assert isinstance(drop, Drop)
    assert drop.cause is DropCause.ENQUIRE_LINK_TIMEOUT
    assert drop.reason == "no enquire_link_resp within 10.0s"


@given(steps=st.lists(st.tuples(st.floats(0.01, 20), st.booleans()), max_size=60))
def test_an_answered_keepalive_never_drops_and_one_is_outstanding_at_most(
    steps: list[tuple[float, bool]],
) -> None:
    esme, link = bound_esme(enquire_link_interval=5.0, enquire_link_timeout=3.0)
    now, sent_at, answered = 0.0, None, True
    for step, answer in steps:
        now += step
        check = esme.keepalive(link, now)
        if isinstance(check, Drop):
            assert sent_at is not None
            assert not answered
            assert now - sent_at > 3.0
            return
        if isinstance(check, Reply):
            assert answered  # never a second enquire_link while one is outstanding
            sent_at, answered = now, False
            if answer:
                sequence = pdu.parse_header(check.pdu).sequence
                receive(esme, link, pdu.build_pdu(pdu.ENQUIRE_LINK_RESP, sequence))
                answered = True


# throttling and back-off ----------------------------------------------------------------------------


@given(statuses=st.lists(st.sampled_from([pdu.ESME_ROK, pdu.ESME_RTHROTTLED, ESME_RINVDSTADR]), max_size=40))
def test_the_throttling_pause_doubles_while_throttled_and_resets_on_success(statuses: list[int]) -> None:
    esme, link = bound_esme(window_size=1, throttle_backoff_initial=0.1, throttle_backoff_max=1.0)
    streak, paused_until = 0, 0.0
    for now, status in enumerate(statuses):
        entry = write(esme, now)
        pauses = [
            a.pause
            for a in receive(esme, link, submit_resp(entry.sequence, status), float(now))
            if isinstance(a, Throttled)
        ]
        if status == pdu.ESME_RTHROTTLED:
            streak += 1
            assert pauses == [min(1.0, 0.1 * 2 ** (streak - 1))]
            paused_until = max(paused_until, now + pauses[0])
        else:
            assert pauses == []
            streak = 0 if status == pdu.ESME_ROK else streak
        assert esme.paused_until == paused_until


@given(attempt=st.integers(-5, 10_000), draw=st.floats(-1, 1))
def test_reconnect_delay_grows_to_its_cap_with_jitter_and_never_overflows(attempt: int, draw: float) -> None:
    config = bind_config(reconnect_backoff_initial=1.0, reconnect_backoff_max=60.0, reconnect_jitter=0.2)
    jitter = draw * config.reconnect_jitter
    base = min(60.0, 2.0 ** max(0, min(attempt, 64) - 1))
    delay = reconnect_delay(config, attempt, jitter)
    assert delay == pytest.approx(base * (1 + jitter))
    assert 0.8 * base <= delay <= 1.2 * base


# the bind's state machine ----------------------------------------------------------------------------


@given(plan=st.lists(st.sampled_from(list(BindEvent)), max_size=30))
def test_the_state_machine_follows_its_table_and_stopped_is_final(plan: list[BindEvent]) -> None:
    state = BindState.IDLE
    for event in plan:
        target = TRANSITIONS[state].get(event)
        if target is None:
            with pytest.raises(InvalidTransition):
                next_state(state, event)
            continue
        assert next_state(state, event) is target
        if target is BindState.BOUND:
            assert state is BindState.CONNECTING
        if state is BindState.STOPPED:
            assert target is BindState.STOPPED
        state = target


attempts = st.lists(st.sampled_from(["bind_failed", "lost", "lost_before_bound"]), max_size=10)


@given(attempts=attempts, end=st.sampled_from(["stop_while_bound", "stop_in_backoff", "stop_connecting"]))
def test_every_path_the_supervisor_takes_is_a_legal_one(attempts: list[str], end: str) -> None:
    """The events sms.bind's supervisor sends, in the orders it can send them."""
    esme: Esme[int] = Esme(bind_config())
    for attempt in attempts:
        esme.handle(BindEvent.CONNECT)
        if attempt == "bind_failed":
            esme.handle(BindEvent.WAIT)
            continue
        if attempt == "lost":
            esme.bound([], 0.0)
        assert esme.handle(BindEvent.LINK_LOST) is BindState.CONNECTING
        assert esme.handle(BindEvent.WAIT) is BindState.BACKOFF
    if end != "stop_in_backoff":
        esme.handle(BindEvent.CONNECT)
        if end == "stop_while_bound":
            assert esme.bound([], 0.0) is BindState.BOUND
        esme.handle(BindEvent.UNBIND)
        assert esme.state is BindState.UNBINDING
    esme.handle(BindEvent.STOP)
    esme.handle(BindEvent.STOP)  # stop() after the supervisor's own
    assert esme.state is BindState.STOPPED
    assert esme.handle(BindEvent.BOUND) is BindState.STOPPED  # a late event changes nothing
