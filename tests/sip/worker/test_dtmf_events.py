"""How the worker turns pjsua's DTMF callbacks into one DtmfReceived per key press (no endpoint:
the callbacks' parameters as the worker copies them, DtmfEventFields)."""

from __future__ import annotations

import dataclasses
import time

import pjsua2 as pj
from hypothesis import given
from hypothesis import strategies as st

from sip.worker.dtmf import DTMF_END, DtmfCalls, DtmfEventFields
from sip.worker.messages import DtmfMethod, DtmfReceived, Event

UPDATE = 1


def event(
    digit: str, stamp: int, flags: int = 0, duration: int = 0, method: int | None = None
) -> DtmfEventFields:
    method = pj.PJSUA_DTMF_METHOD_RFC2833 if method is None else method
    return DtmfEventFields(method, digit, stamp, flags, duration)


def press(digit: str, stamp: int, updates: int, end_packets: int) -> list[DtmfEventFields]:
    packets = [event(digit, stamp)]
    packets += [event(digit, stamp, UPDATE, 20 * (i + 1)) for i in range(updates)]
    packets += [event(digit, stamp, UPDATE | DTMF_END, 20 * (updates + 1)) for _ in range(end_packets)]
    return packets


def without_time(event: Event) -> Event:
    """A digit with its worker arrival stamp cleared (the tests compare the rest)."""
    return dataclasses.replace(event, received_at=0.0) if isinstance(event, DtmfReceived) else event


@given(
    presses=st.lists(
        st.tuples(st.sampled_from("0123456789*#ABCD"), st.integers(0, 10), st.integers(1, 5)),
        min_size=1,
        max_size=8,
    )
)
def test_each_press_is_one_digit_whatever_the_end_retransmissions(
    presses: list[tuple[str, int, int]],
) -> None:
    events: list[Event] = []
    dtmf = DtmfCalls(events.append)
    before = time.monotonic()
    for index, (digit, updates, ends) in enumerate(presses):
        for packet in press(digit, 1000 * (index + 1), updates, ends):
            dtmf.on_dtmf_event("c1", packet)
    assert [without_time(e) for e in events] == [
        DtmfReceived("c1", digit, DtmfMethod.RFC2833, 20 * (updates + 1)) for digit, updates, _ in presses
    ]
    stamps = [e.received_at for e in events if isinstance(e, DtmfReceived)]
    assert stamps == sorted(stamps)
    assert before <= stamps[0] <= stamps[-1] <= time.monotonic()


def test_a_press_whose_end_was_lost_is_reported_by_the_next_one_or_at_hangup() -> None:
    events: list[Event] = []
    dtmf = DtmfCalls(events.append)
    for packet in [*press("4", 100, 3, 0), *press("5", 900, 1, 3), *press("6", 1800, 2, 0)]:
        dtmf.on_dtmf_event("c1", packet)
    assert [e.digit for e in events if isinstance(e, DtmfReceived)] == ["4", "5"]
    dtmf.call_ended("c1")
    assert [(e.digit, e.duration_ms) for e in events if isinstance(e, DtmfReceived)] == [
        ("4", 60),
        ("5", 40),
        ("6", 40),
    ]


def test_sip_info_digits_are_reported_as_they_come() -> None:
    events: list[Event] = []
    dtmf = DtmfCalls(events.append)
    info = pj.PJSUA_DTMF_METHOD_SIP_INFO
    for digit in "1#1":
        dtmf.on_dtmf_event("c2", event(digit, 0, DTMF_END, 160, info))
    dtmf.on_dtmf_event("c2", event("x", 0, DTMF_END, 160, info))
    assert [without_time(e) for e in events] == [
        DtmfReceived("c2", d, DtmfMethod.SIP_INFO, 160) for d in "1#1"
    ]
