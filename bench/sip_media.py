"""Media figures of one SIP worker: a play's start latency and the CPU of playing and bridged calls.

One worker (the pool's supervisor runs here), SIPp as the carrier placing ``--calls`` (≤ 4)
calls whose audio goes to RTP peers of this process (``tests.sip.support.RtpPeer``: they
record and decode what the worker sends). Figures:
- ``Play`` → ``PlayStarted`` (the command's and the event's trip through the supervisor) and
  ``Play`` → the first packet of the prompt at the far end (found by its tone), p50/p99 over
  ``--plays`` plays;
- the silence between two files of one play (20 ms frames), a file's end being seen on
  pjmedia's thread and the next file opened by the owner after its poll;
- the worker process's CPU (one core = 100%) over ``--seconds`` with the calls connected and
  silent, all playing a looping prompt, and bridged in pairs.

    .venv/bin/python -m bench.sip_media [--calls 4] [--plays 20] [--seconds 5]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from bench.procstat import cpu_seconds
from sip.worker.config import PoolConfig
from sip.worker.messages import (
    Answer,
    Bridge,
    CallState,
    Hangup,
    IncomingCall,
    Play,
    PlayFinished,
    PlayStarted,
    StopPlay,
)
from sip.worker.pool import WorkerPool
from tests.sip.audio import FRAME, dominant_tones, g711_decode, runs, tone, tone_share, write_wav
from tests.sip.support import HOST, SCENARIOS, RtpPeer, Sipp, events_until, free_udp_block, next_event

PROMPT_HZ = 1000
OTHER_HZ = 1500


def first_prompt_packet(peer: RtpPeer, since: float) -> float | None:
    """Seconds from ``since`` to the first packet carrying the prompt's tone."""
    with peer._lock:
        packets = [p for p in peer.packets if p[0] >= since]
    for arrival, payload_type, payload in packets:
        samples = g711_decode(payload_type, payload)
        if len(samples) == FRAME and tone_share(samples, PROMPT_HZ) > 0.5:
            return arrival - since
    return None


def worker_cpu(pool: WorkerPool, seconds: float) -> float:
    pid = pool.pid(0)
    assert pid is not None
    before, start = cpu_seconds(pid) or 0.0, time.monotonic()
    time.sleep(seconds)
    return ((cpu_seconds(pid) or 0.0) - before) / (time.monotonic() - start)


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def run(calls: int, plays: int, seconds: float, work: Path) -> None:
    pool = WorkerPool(
        PoolConfig(workers=1, host=HOST, sip_port=free_udp_block(1), rtp_port=free_udp_block(40))
    )
    pool.start()
    peers = [RtpPeer() for _ in range(calls)]
    sipps: list[Sipp] = []
    prompt = write_wav(work / "prompt.wav", tone(PROMPT_HZ, 0.2))
    try:
        print(f"worker CPU idle, no call: {100 * worker_cpu(pool, seconds):.1f}%")
        call_ids = []
        hold_ms = str(int((4 * seconds + plays * 0.5 + 10) * 1000))
        for index, peer in enumerate(peers):
            log_dir = work / f"sipp-{index}"
            log_dir.mkdir()
            target = f"{HOST}:{pool.config.sip_port}"
            sipps.append(
                Sipp(log_dir, SCENARIOS / "carrier_call.xml", "-s", "+15550001", "-key", "rtp_sink",
                     str(peer.port), "-d", hold_ms, target=target)
            )  # fmt: skip
            incoming = next_event(pool, IncomingCall)
            pool.send(Answer(incoming.call_id))
            events_until(pool, incoming.call_id, CallState.CONNECTED)
            call_ids.append(incoming.call_id)
        time.sleep(0.5)
        print(f"worker CPU, {calls} calls connected, silent: {100 * worker_cpu(pool, seconds):.1f}%")

        to_event: list[float] = []
        to_audio: list[float] = []
        for number in range(plays):
            since = time.monotonic()
            pool.send(Play(call_ids[0], f"p{number}", (str(prompt),)))
            next_event(pool, PlayStarted, call_ids[0])
            to_event.append(time.monotonic() - since)
            next_event(pool, PlayFinished, call_ids[0])
            time.sleep(0.1)
            heard = first_prompt_packet(peers[0], since)
            if heard is not None:
                to_audio.append(heard)
        ms = [1000 * v for v in to_event]
        print(f"Play -> PlayStarted ms: p50 {percentile(ms, 0.5):.1f} p99 {percentile(ms, 0.99):.1f}")
        ms = [1000 * v for v in to_audio]
        print(
            f"Play -> first prompt packet at the far end ms: p50 {percentile(ms, 0.5):.1f} "
            f"p99 {percentile(ms, 0.99):.1f} ({len(ms)}/{plays} heard)"
        )

        other = write_wav(work / "other.wav", tone(OTHER_HZ, 0.2))
        gaps: list[int] = []
        for number in range(max(1, plays // 4)):
            since = time.monotonic()
            pool.send(Play(call_ids[0], f"s{number}", (str(prompt), str(other))))
            next_event(pool, PlayFinished, call_ids[0])
            time.sleep(0.1)
            frames = runs(dominant_tones(peers[0].pcm(since), [PROMPT_HZ, OTHER_HZ]))
            tones = [i for i, (freq, _) in enumerate(frames) if freq is not None]
            if len(tones) >= 2:
                gaps.append(sum(count for freq, count in frames[tones[0] + 1 : tones[-1]]))
        print(f"silent 20 ms frames between two files of a play: {sorted(gaps)}")

        for call_id in call_ids:
            pool.send(Play(call_id, "loop", (str(prompt),), loop=True))
        time.sleep(0.5)
        print(f"worker CPU, {calls} calls playing: {100 * worker_cpu(pool, seconds):.1f}%")
        for call_id in call_ids:
            pool.send(StopPlay(call_id))
        for a, b in zip(call_ids[::2], call_ids[1::2], strict=False):
            pool.send(Bridge(a, b))
        time.sleep(0.5)
        print(f"worker CPU, {calls} calls bridged in pairs: {100 * worker_cpu(pool, seconds):.1f}%")
        for call_id in call_ids:
            pool.send(Hangup(call_id))
    finally:
        for sipp in sipps:
            sipp.kill()
        for peer in peers:
            peer.close()
        pool.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--calls", type=int, default=4, choices=range(1, 5))
    parser.add_argument("--plays", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=5.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="sip-media-") as work:
        run(args.calls, args.plays, args.seconds, Path(work))


if __name__ == "__main__":
    main()
