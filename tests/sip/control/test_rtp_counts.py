"""sip/control/rtp_counts.py: packets new since the last report, and legs that ended silent."""

from __future__ import annotations

from sip.control.rtp_counts import RtpCounts, Silence


def test_reports_give_what_is_new_and_never_go_back() -> None:
    counts = RtpCounts()
    assert counts.report("a", 10, 10) is None  # not connected here
    counts.connected("a")
    assert counts.legs() == ["a"]
    assert counts.report("a", 50, 40) == (50, 40)
    assert counts.report("a", 120, 90) == (70, 50)
    assert counts.report("a", 100, 95) == (0, 5)  # a counter read lower adds nothing
    assert counts.report("a", 130, 95) == (10, 0)
    assert counts.ended("a") is None
    assert counts.legs() == []


def test_a_leg_that_ended_with_a_silent_direction_is_named() -> None:
    counts = RtpCounts()
    for leg in ("deaf", "mute", "dead", "unpolled"):
        counts.connected(leg)
    counts.report("deaf", 0, 250)
    counts.report("mute", 250, 0)
    counts.report("dead", 0, 0)
    counts.report("dead", 0, 0)
    assert counts.ended("deaf") == Silence("received", 0, 250)
    assert counts.ended("mute") == Silence("sent", 250, 0)
    assert counts.ended("dead") == Silence("both", 0, 0)
    assert counts.ended("unpolled") is None  # no report came: nothing is known
    assert counts.ended("deaf") is None  # ended once
