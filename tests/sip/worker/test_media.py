"""What the far end hears: plays, bridges, mute, hold and bridge_with, against SIPp and RTP peers.

SIPp carries the signalling; the calls' audio goes to ``RtpPeer``s of the test, which record
what the worker sends (decoded from G.711) and send tones of their own. A proof here is a tone
or a prompt found in the recorded audio, never only an event.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from sip.worker.messages import (
    Answer,
    Bridge,
    CallState,
    CallStateChanged,
    CommandFailed,
    Event,
    Hangup,
    Hold,
    IncomingCall,
    MakeCall,
    MediaActive,
    Mute,
    Play,
    PlayFinished,
    PlayOutcome,
    PlayStarted,
    StopPlay,
    Unbridge,
)
from sip.worker.pool import WorkerPool
from tests.sip.audio import best_correlation, dominant_tones, runs, tone, write_wav
from tests.sip.conftest import PoolFactory
from tests.sip.support import HOST, SCENARIOS, RtpPeer, Sipp, events_until, next_event

pytestmark = [pytest.mark.sip, pytest.mark.timeout(120)]

NUMBER = "+15550001"
PROMPT_TONES = (600, 1100, 1700)  # the prompt: 0.3 s of each, in this order
A_TONE, B_TONE, HOLD_TONE = 700, 1300, 1900


def worker_uri(pool: WorkerPool) -> str:
    return f"{HOST}:{pool.config.sip_port}"


def answered_call(pool: WorkerPool, tmp_path: Path, peer: RtpPeer, seconds: float) -> tuple[str, Sipp]:
    """A carrier call (SIPp) with its audio at ``peer``, answered; SIPp hangs up after ``seconds``."""
    log_dir = tmp_path / f"sipp-{peer.port}"
    log_dir.mkdir()
    sipp = Sipp(
        log_dir, SCENARIOS / "carrier_call.xml", "-s", NUMBER, "-key", "rtp_sink", str(peer.port),
        "-d", str(int(seconds * 1000)), target=worker_uri(pool),
    )  # fmt: skip
    incoming = next_event(pool, IncomingCall)
    pool.send(Answer(incoming.call_id))
    events_until(pool, incoming.call_id, CallState.CONNECTED)
    return incoming.call_id, sipp


def tone_share(peer: RtpPeer, freq: float, *, seconds: float = 0.4, settle: float = 0.3) -> float:
    """The share of 20 ms frames in which the peer heard ``freq``, over ``seconds`` after ``settle``."""
    time.sleep(settle)
    since = time.monotonic()
    time.sleep(seconds)
    frames = dominant_tones(peer.pcm(since), [freq, A_TONE, B_TONE, HOLD_TONE, *PROMPT_TONES])
    return sum(1 for f in frames if f == freq) / max(1, len(frames))


@pytest.fixture
def peers() -> Iterator[list[RtpPeer]]:
    made: list[RtpPeer] = []
    yield made
    for peer in made:
        peer.close()


def test_a_played_prompt_reaches_the_far_end(pool: WorkerPool, tmp_path: Path, peers: list[RtpPeer]) -> None:
    prompt = [s for freq in PROMPT_TONES for s in tone(freq, 0.3)]
    wav = write_wav(tmp_path / "prompt.wav", prompt)
    peers.append(peer := RtpPeer())
    call_id, sipp = answered_call(pool, tmp_path, peer, 4.0)
    try:
        time.sleep(0.3)
        since = time.monotonic()
        pool.send(Play(call_id, "op-1", (str(wav),)))
        next_event(pool, PlayStarted, call_id)
        started = time.monotonic() - since
        finished = next_event(pool, PlayFinished, call_id)
        assert (finished.operation_id, finished.outcome) == ("op-1", PlayOutcome.COMPLETED)
        time.sleep(0.3)  # the jitter of the last packets
        heard = peer.pcm(since)
        found = [f for f, count in runs(dominant_tones(heard, PROMPT_TONES)) if f and count >= 10]
        assert found == list(PROMPT_TONES), runs(dominant_tones(heard, PROMPT_TONES))
        onset = next(i for i, f in enumerate(dominant_tones(heard, PROMPT_TONES)) if f) * 160
        score, _ = best_correlation(heard, prompt, range(max(0, onset - 200), onset + 200))
        assert score > 0.9, score  # the samples of the prompt, not only its pitches
        print(f"PlayStarted after {started * 1000:.1f} ms; correlation {score:.3f}")
        assert next_event(pool, CallStateChanged, call_id).state is CallState.DISCONNECTED
        assert sipp.wait() == 0, sipp.errors()
    finally:
        sipp.kill()


def test_plays_loop_stop_replace_fail_and_end_with_the_call(
    pool: WorkerPool, tmp_path: Path, peers: list[RtpPeer]
) -> None:
    first = write_wav(tmp_path / "first.wav", tone(PROMPT_TONES[0], 0.2))
    second = write_wav(tmp_path / "second.wav", tone(PROMPT_TONES[2], 0.2))
    wideband = write_wav(tmp_path / "wideband.wav", tone(500, 0.2, 8000) * 2, rate=16000)
    peers.append(peer := RtpPeer())
    call_id, sipp = answered_call(pool, tmp_path, peer, 6.0)
    try:
        since = time.monotonic()
        pool.send(Play(call_id, "loop", (str(first), str(second)), loop=True))
        next_event(pool, PlayStarted, call_id)
        time.sleep(1.3)
        pool.send(StopPlay(call_id, "loop"))
        stopped = next_event(pool, PlayFinished, call_id)
        assert (stopped.operation_id, stopped.outcome) == ("loop", PlayOutcome.STOPPED)
        order = [f for f, count in runs(dominant_tones(peer.pcm(since), PROMPT_TONES)) if f and count >= 5]
        assert order[:4] == [PROMPT_TONES[0], PROMPT_TONES[2]] * 2, order  # both files, twice
        assert tone_share(peer, PROMPT_TONES[0]) + tone_share(peer, PROMPT_TONES[2]) == 0.0  # silent now

        pool.send(Play(call_id, "old", (str(first),), loop=True))
        next_event(pool, PlayStarted, call_id)
        pool.send(Play(call_id, "new", (str(second),), loop=True))  # replaces the running play
        replaced = next_event(pool, PlayFinished, call_id)
        assert (replaced.operation_id, replaced.outcome) == ("old", PlayOutcome.STOPPED)
        assert next_event(pool, PlayStarted, call_id).operation_id == "new"
        assert tone_share(peer, PROMPT_TONES[2]) > 0.8

        pool.send(Play(call_id, "missing", (str(tmp_path / "nope.wav"),)))
        assert next_event(pool, PlayFinished, call_id).operation_id == "new"  # stopped by it
        failed = next_event(pool, PlayFinished, call_id)
        assert (failed.operation_id, failed.outcome) == ("missing", PlayOutcome.FAILED)
        assert "nope.wav" in failed.reason
        pool.send(Play(call_id, "16k", (str(wideband),)))
        failed = next_event(pool, PlayFinished, call_id)
        assert (failed.outcome, "16000 Hz" in failed.reason) == (PlayOutcome.FAILED, True), failed

        pool.send(Play(call_id, "till-bye", (str(first),), loop=True))
        next_event(pool, PlayStarted, call_id)
        ended = next_event(pool, PlayFinished, call_id, timeout=10)  # SIPp's BYE ends the call
        assert (ended.operation_id, ended.outcome) == ("till-bye", PlayOutcome.STOPPED)
        assert next_event(pool, CallStateChanged, call_id).state is CallState.DISCONNECTED
        assert sipp.wait() == 0, sipp.errors()
    finally:
        sipp.kill()


def test_bridged_calls_hear_each_other_until_muted_held_or_unbridged(
    pool: WorkerPool, tmp_path: Path, peers: list[RtpPeer]
) -> None:
    peers.extend([peer_a := RtpPeer(tone(A_TONE, 1.0)), peer_b := RtpPeer(tone(B_TONE, 1.0))])
    a, sipp_a = answered_call(pool, tmp_path, peer_a, 12.0)
    b, sipp_b = answered_call(pool, tmp_path, peer_b, 12.0)
    music = write_wav(tmp_path / "music.wav", tone(HOLD_TONE, 0.5))
    try:
        assert tone_share(peer_b, A_TONE) == 0.0  # not bridged yet: silence
        pool.send(Bridge(a, b))
        assert tone_share(peer_b, A_TONE) > 0.8
        assert tone_share(peer_a, B_TONE) > 0.8

        pool.send(Mute(a, True))  # what a's far end says reaches nobody; a still hears b
        assert tone_share(peer_b, A_TONE) == 0.0
        assert tone_share(peer_a, B_TONE) > 0.8
        pool.send(Mute(a, False))
        assert tone_share(peer_b, A_TONE) > 0.8

        pool.send(Hold(b, True))  # neither way; a play still reaches the held call
        pool.send(Play(b, "music", (str(music),), loop=True))
        next_event(pool, PlayStarted, b)
        assert tone_share(peer_b, A_TONE) == 0.0
        assert tone_share(peer_a, B_TONE) == 0.0
        assert tone_share(peer_b, HOLD_TONE) > 0.8
        pool.send(StopPlay(b))
        next_event(pool, PlayFinished, b)
        pool.send(Hold(b, False))
        assert tone_share(peer_b, A_TONE) > 0.8
        assert tone_share(peer_a, B_TONE) > 0.8

        pool.send(Unbridge(b, a))
        assert tone_share(peer_b, A_TONE) == 0.0
        assert tone_share(peer_a, B_TONE) == 0.0
        pool.send(Bridge(a, "nope"))
        assert next_event(pool, CommandFailed, a).reason == "no such call nope"
        for call_id in (a, b):
            pool.send(Hangup(call_id))
            events_until(pool, call_id, CallState.DISCONNECTED)
    finally:
        sipp_a.kill()
        sipp_b.kill()


def test_a_leg_made_beside_a_call_is_placed_with_it_and_bridged(
    make_pool: PoolFactory, tmp_path: Path, peers: list[RtpPeer]
) -> None:
    pool = make_pool(2)
    peers.extend([caller := RtpPeer(tone(A_TONE, 1.0)), callee := RtpPeer(tone(B_TONE, 1.0))])
    call_id, sipp = answered_call(pool, tmp_path, caller, 8.0)
    callee_dir = tmp_path / "callee"
    callee_dir.mkdir()
    callee_sipp = Sipp(callee_dir, SCENARIOS / "callee_rtp.xml", "-key", "rtp_sink", str(callee.port))
    busy: Sipp | None = None
    try:
        time.sleep(0.3)
        holder = pool.holder(call_id)
        target = f"sip:+15551112222@{HOST}:{callee_sipp.port}"
        leg = MakeCall("leg-1", target, "sip:+15557770000@trunkline.invalid", bridge_with=call_id)
        assert pool.send(leg) == holder  # not the idle worker the pool would pick otherwise
        events_until(pool, "leg-1", CallState.CONNECTED)
        assert tone_share(callee, A_TONE) > 0.8
        assert tone_share(caller, B_TONE) > 0.8

        assert pool.send(MakeCall("leg-2", target, "sip:+1@x.invalid", bridge_with="gone")) is None
        assert next_event(pool, CommandFailed, "leg-2").reason == "no such call gone"

        # Two more legs beside the call fill its worker (slots are reserved when sent); a fifth
        # is refused even though the other worker is idle.
        busy_dir = tmp_path / "busy"
        busy_dir.mkdir()
        busy = Sipp(busy_dir, SCENARIOS / "callee_busy.xml", calls=2)
        time.sleep(0.3)
        busy_target = f"sip:+15551112222@{HOST}:{busy.port}"
        caller_id = "sip:+15557770000@trunkline.invalid"
        for leg_id in ("fill-1", "fill-2"):
            assert pool.send(MakeCall(leg_id, busy_target, caller_id, bridge_with=call_id)) == holder
        assert pool.send(MakeCall("fill-3", busy_target, caller_id, bridge_with=call_id)) is None
        assert next_event(pool, CommandFailed, "fill-3").reason == f"no free call slot beside {call_id}"
        for leg_id in ("fill-1", "fill-2"):
            assert events_until(pool, leg_id, CallState.DISCONNECTED)[-1].status == 486  # type: ignore[union-attr]
        assert busy.wait() == 0, busy.errors()
        pool.send(Hangup("leg-1"))
        events_until(pool, "leg-1", CallState.DISCONNECTED)
        assert tone_share(caller, B_TONE) == 0.0
        pool.send(Hangup(call_id))
        events_until(pool, call_id, CallState.DISCONNECTED)
        assert callee_sipp.wait() == 0, callee_sipp.errors()
    finally:
        sipp.kill()
        callee_sipp.kill()
        if busy is not None:
            busy.kill()


def test_plays_end_with_their_calls_under_slot_churn(pool: WorkerPool, tmp_path: Path) -> None:
    """12 calls, 3 at a time, through 4 slots, each looping a play until the far end's BYE."""
    calls = 12
    prompt = write_wav(tmp_path / "prompt.wav", tone(PROMPT_TONES[1], 0.1))
    sipp = Sipp(
        tmp_path, SCENARIOS / "carrier_call.xml", "-s", NUMBER, "-key", "rtp_sink", "9", "-d", "400",
        "-l", "3", "-r", "20", target=worker_uri(pool), calls=calls,
    )  # fmt: skip
    try:
        started: set[str] = set()
        finished: dict[str, PlayFinished] = {}
        ended: set[str] = set()
        while len(ended) < calls:
            event = next_event(pool, Event, timeout=20)  # type: ignore[type-abstract]
            if isinstance(event, IncomingCall):
                pool.send(Answer(event.call_id))
            elif isinstance(event, MediaActive):
                pool.send(Play(event.call_id, "loop", (str(prompt),), loop=True))
            elif isinstance(event, PlayStarted):
                started.add(event.call_id)
            elif isinstance(event, PlayFinished):
                finished[event.call_id] = event
            elif isinstance(event, CallStateChanged) and event.state is CallState.DISCONNECTED:
                assert event.status == 200, event
                assert event.call_id in finished  # the play ended before the call's last event
                ended.add(event.call_id)
        assert started == ended
        assert {(f.outcome, f.reason) for f in finished.values()} == {(PlayOutcome.STOPPED, "the call ended")}
        assert sipp.wait() == 0, sipp.errors()
        status = pool.status()[0]
        assert (status.free, status.restarts) == (4, 0)
    finally:
        sipp.kill()


def test_a_worker_stopped_mid_play_exits_cleanly(make_pool: PoolFactory, tmp_path: Path) -> None:
    """No player, stream or call may be left for libDestroy (it would abort the worker)."""
    pool = make_pool(1)
    peer = RtpPeer()
    prompt = write_wav(tmp_path / "prompt.wav", tone(PROMPT_TONES[0], 0.2))
    try:
        a, sipp_a = answered_call(pool, tmp_path, peer, 10.0)
        pool.send(Play(a, "loop", (str(prompt),), loop=True))
        next_event(pool, PlayStarted, a)
        pool.stop()
        assert pool._handles[0].process.returncode == 0
        sipp_a.kill()
    finally:
        peer.close()


def test_a_play_sent_before_the_answer_starts_with_the_media(
    pool: WorkerPool, tmp_path: Path, peers: list[RtpPeer]
) -> None:
    prompt = write_wav(tmp_path / "prompt.wav", tone(PROMPT_TONES[1], 0.3))
    peers.append(peer := RtpPeer())
    sipp = Sipp(
        tmp_path, SCENARIOS / "carrier_call.xml", "-s", NUMBER, "-key", "rtp_sink", str(peer.port),
        "-d", "1500", target=worker_uri(pool),
    )  # fmt: skip
    try:
        call_id = next_event(pool, IncomingCall).call_id
        pool.send(Play(call_id, "early", (str(prompt),)))
        time.sleep(0.3)
        assert pool.events.empty()  # accepted, neither started nor finished: no media yet
        pool.send(Answer(call_id))
        assert next_event(pool, PlayStarted, call_id).operation_id == "early"
        assert next_event(pool, PlayFinished, call_id).outcome is PlayOutcome.COMPLETED
        time.sleep(0.2)
        frames = runs(dominant_tones(peer.pcm(), PROMPT_TONES))
        assert any(f == PROMPT_TONES[1] and count >= 12 for f, count in frames), frames
        assert sipp.wait() == 0, sipp.errors()
    finally:
        sipp.kill()
