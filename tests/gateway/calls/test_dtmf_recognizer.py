"""The DTMF recognizer: its outcomes, ACS's codes for them, and properties over any input."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from gateway.calls import dtmf_recognizer as dtmf
from gateway.calls.dtmf_recognizer import DtmfOptions, Outcome, Recognizer

DIGITS = "0123456789*#ABCD"


def feed(
    options: DtmfOptions, script: list[tuple[str | None, float]]
) -> tuple[Recognizer, list[dtmf.Result]]:
    """Listen at 0, then each (digit or None for a tick, seconds after the previous input)."""
    recognizer = dtmf.listen(Recognizer(options), 0.0)
    results = []
    now = 0.0
    for digit, gap in script:
        now += gap
        if digit is None:
            recognizer, result = dtmf.tick(recognizer, now)
        else:
            recognizer, result = dtmf.digit(recognizer, digit, now)
        if result is not None:
            results.append(result)
    return recognizer, results


def test_max_tones_completes_with_8531_and_acs_tone_names() -> None:
    _, results = feed(DtmfOptions(max_tones=3), [("1", 0.5), ("#", 0.5), ("0", 0.5), ("9", 0.5)])
    assert results == [dtmf.Result(Outcome.MAX_TONES, ("1", "#", "0"))]
    assert results[0].tone_names() == ["one", "pound", "zero"]
    code = results[0].code
    assert (code.completed, code.code, code.subcode) == (True, 200, 8531)


def test_a_stop_tone_completes_with_8514_without_the_stop_tone() -> None:
    _, results = feed(
        DtmfOptions(max_tones=10, stop_tones=frozenset("#")), [("4", 0.1), ("2", 0.1), ("#", 0.1)]
    )
    assert results == [dtmf.Result(Outcome.STOP_TONE, ("4", "2"))]
    assert (results[0].code.code, results[0].code.subcode) == (200, 8514)


def test_initial_silence_fails_with_8510_at_its_deadline_not_before() -> None:
    options = DtmfOptions(initial_silence_timeout=5)
    recognizer, results = feed(options, [(None, 4.99)])
    assert results == []
    assert recognizer.deadline() == 5.0
    _, results = feed(options, [(None, 5.0)])
    assert results == [dtmf.Result(Outcome.INITIAL_SILENCE, ())]
    assert (results[0].code.completed, results[0].code.code, results[0].code.subcode) == (False, 400, 8510)


def test_the_inter_tone_timeout_fails_with_8532_counting_from_the_last_tone() -> None:
    options = DtmfOptions(max_tones=4, inter_tone_timeout=2, initial_silence_timeout=5)
    _, results = feed(options, [("1", 4.0), ("2", 1.9), (None, 1.9)])
    assert results == []
    _, results = feed(options, [("1", 4.0), ("2", 1.9), (None, 2.0)])
    assert results == [dtmf.Result(Outcome.INTER_TONE_TIMEOUT, ("1", "2"))]
    assert (results[0].code.completed, results[0].code.subcode) == (False, 8532)


def test_nothing_is_heard_before_listening_and_no_timer_runs() -> None:
    recognizer = Recognizer(DtmfOptions(initial_silence_timeout=1))
    assert dtmf.digit(recognizer, "1", 0.0) == (recognizer, None)
    assert dtmf.tick(recognizer, 100.0) == (recognizer, None)
    assert recognizer.deadline() is None


def test_zero_initial_silence_waits_for_ever() -> None:
    _, results = feed(DtmfOptions(initial_silence_timeout=0), [(None, 10_000.0)])
    assert results == []


@st.composite
def scripts(draw: st.DrawFn) -> tuple[DtmfOptions, list[tuple[str | None, float]]]:
    options = DtmfOptions(
        max_tones=draw(st.integers(1, 6)),
        inter_tone_timeout=draw(st.integers(1, 5)),
        initial_silence_timeout=draw(st.integers(0, 8)),
        stop_tones=frozenset(draw(st.sets(st.sampled_from("#*"), max_size=2))),
    )
    steps = st.tuples(st.none() | st.sampled_from(DIGITS), st.floats(0, 6, allow_nan=False))
    return options, draw(st.lists(steps, max_size=20))


@given(scripts())
def test_one_result_at_most_and_it_respects_the_options(
    case: tuple[DtmfOptions, list[tuple[str | None, float]]],
) -> None:
    options, script = case
    recognizer, results = feed(options, script)
    assert len(results) <= 1
    if not results:
        assert recognizer.result is None
        return
    result = results[0]
    assert recognizer.result == result
    assert not recognizer.listening
    fed = [digit for digit, _ in script if digit is not None]
    assert list(result.tones) == fed[: len(result.tones)]  # the first digits, in order
    assert len(result.tones) <= options.max_tones
    assert not set(result.tones) & options.stop_tones
    assert (result.outcome is Outcome.MAX_TONES) == (len(result.tones) == options.max_tones)
    if result.outcome is Outcome.STOP_TONE:
        assert fed[len(result.tones)] in options.stop_tones
    if result.outcome is Outcome.INITIAL_SILENCE:
        assert result.tones == ()
        assert options.initial_silence_timeout > 0
    if result.outcome is Outcome.INTER_TONE_TIMEOUT:
        assert result.tones
    assert result.code is dtmf.RESULTS[result.outcome]
    # After the result, nothing changes it.
    assert dtmf.digit(recognizer, "1", 1e9) == (recognizer, None)
    assert dtmf.tick(recognizer, 1e9) == (recognizer, None)


@given(scripts())
def test_a_timer_fires_exactly_when_no_tone_came_within_its_timeout(
    case: tuple[DtmfOptions, list[tuple[str | None, float]]],
) -> None:
    """Without timeouts in play (long ones), digits alone decide; every result is a digit's."""
    options, script = case
    patient = DtmfOptions(options.max_tones, 1e6, 0, options.stop_tones)
    _, results = feed(patient, script)
    for result in results:
        assert result.outcome in (Outcome.MAX_TONES, Outcome.STOP_TONE)
