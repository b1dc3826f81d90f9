"""bench/calls.py's media run (issue 13): an IVR's calls on the platform stack.

The stack is the platform mode's (tests/e2e/calls/stack.py: ``trunkline api``, ``trunkline
worker``, ``trunkline sip --edge kamailio --workers N``, PostgreSQL, Redis, an https app). SIPp
calls in through Kamailio; the app answers each IncomingCall with the official
``CallAutomationClient`` and, on CallConnected, starts ``:recognize`` (DTMF, 4 tones, the prompt
played first, ``interruptPromptAndStartRecognition``). The prompt is a ``FileSource``: a WAV
the app serves over https (every call the same URL, so the gateway fetches and converts it once
and plays it from its cache after that; the warm-up calls take the miss), or with ``--prompt
text`` a ``TextSource`` (espeak-ng once, cached by text and voice).

The carrier's RTP is bench/calls_media_peer.py's (one Python socket per call): it stamps the
first audible packet of the prompt, then presses 4 digits as RFC 2833 telephone-events. Joined
per call by SIP Call-ID (SIPp's log) and callConnectionId (the database's call leg):
- ``:recognize`` sent (the SDK's ``raw_request_hook``) → the prompt's first audible packet at
  the carrier;
- the last digit's first end packet sent (where the worker reports a digit) → RecognizeCompleted
  received by the app; and from the last digit's last packet.
"""

from __future__ import annotations

import argparse
import io
import math
import shutil
import struct
import subprocess
import sys
import tempfile
import threading
import time
import wave
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from azure.communication.callautomation import (
    FileSource,
    PhoneNumberIdentifier,
    RecognizeInputType,
    TextSource,
)
from azure.core.messaging import CloudEvent
from sqlalchemy import select

from bench.calls_carrier import HOST, Carrier, CarrierLoad, CarrierResult, failures_by_status, sipp_binary
from bench.calls_media_peer import RtpPeer
from bench.calls_platform import PlatformGroups, first_attempts, stack_options
from bench.procstat import Sample
from gateway.calls.models import CallLeg
from gateway.events.models import OutboxEvent
from tests.e2e.calls.stack import NUMBER, SipMetrics, VoiceStack, running_voice_stack
from tests.sip.support import free_udp_block

SCENARIO = Path(__file__).resolve().parent / "scenarios" / "carrier_media_call.xml"
CALLER = PhoneNumberIdentifier("+15551230000")  # the scenario's From
DIGITS = "1479"
TONES = {"1": "one", "4": "four", "7": "seven", "9": "nine"}
PROMPT_PATH = "/prompt.wav"
PREFIX = "Microsoft.Communication."
RECOGNIZED = PREFIX + "RecognizeCompleted"


def prompt_wav(seconds: float = 6.0) -> bytes:
    """The prompt: a 440 Hz tone, 8 kHz mono 16-bit, loud from its first sample."""
    rate = 8000
    frames = b"".join(
        struct.pack("<h", int(12000 * math.sin(2 * math.pi * 440 * n / rate)))
        for n in range(int(seconds * rate))
    )
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(frames)
    return buffer.getvalue()


@dataclass
class AppCall:
    """What the app saw and did for one call (``time.time()`` stamps)."""

    connected_at: float | None = None
    recognize_sent: float | None = None
    recognize_returned: float | None = None
    recognize_error: str = ""
    events: dict[str, float] = field(default_factory=dict)  # first of each type
    tones: list[str] = field(default_factory=list)
    failure: str = ""  # RecognizeFailed / PlayFailed with its result codes


class IvrApp:
    """Answers IncomingCall; on CallConnected, ``:recognize`` with the prompt (its own threads)."""

    def __init__(self, stack: VoiceStack, prompt: FileSource | TextSource) -> None:
        self.stack = stack
        self.prompt = prompt
        self.calls: dict[str, AppCall] = {}  # by callConnectionId
        self.answer_errors: list[str] = []
        self.lock = threading.Lock()

    def _call(self, call_connection_id: str) -> AppCall:
        with self.lock:
            return self.calls.setdefault(call_connection_id, AppCall())

    def on_incoming(self, event: dict[str, Any]) -> None:
        client = self.stack.app.client
        assert client is not None
        try:
            client.answer_call(event["incomingCallContext"], self.stack.app.callback_url)
        except Exception as exc:  # counted and shown, the run goes on
            self.answer_errors.append(repr(exc)[:300])

    def on_call_event(self, event: CloudEvent[Any], at: float) -> None:
        data = event.data or {}
        call = self._call(str(data.get("callConnectionId", "")))
        kind = event.type.removeprefix(PREFIX)
        call.events.setdefault(kind, at)
        if kind == "CallConnected" and call.connected_at is None:
            call.connected_at = at
            threading.Thread(
                target=self._recognize, args=(data["callConnectionId"], call), daemon=True
            ).start()
        elif kind == "RecognizeCompleted":
            call.tones = list((data.get("dtmfResult") or {}).get("tones") or [])
        elif kind in ("RecognizeFailed", "PlayFailed") and not call.failure:
            result = data.get("resultInformation") or {}
            call.failure = f"{kind} {result.get('code')}/{result.get('subCode')}"

    def _recognize(self, call_connection_id: str, call: AppCall) -> None:
        client = self.stack.app.client
        assert client is not None

        def sent(_request: object) -> None:
            call.recognize_sent = time.time()

        try:
            client.get_call_connection(call_connection_id).start_recognizing_media(
                RecognizeInputType.DTMF,
                CALLER,
                play_prompt=self.prompt,
                interrupt_prompt=True,
                initial_silence_timeout=15,
                dtmf_inter_tone_timeout=5,
                dtmf_max_tones_to_collect=len(DIGITS),
                operation_context="bench-pin",
                raw_request_hook=sent,
            )
        except Exception as exc:
            call.recognize_error = repr(exc)[:300]
        call.recognize_returned = time.time()


class MediaCarrier(Carrier):
    """SIPp placing the media run's calls: signalling only, each call's RTP at its peer port."""

    def __init__(self, directory: Path, target: str, load: CarrierLoad, ports: list[int]) -> None:
        self.directory = directory
        self.load = load
        scenario = directory / "carrier_media_call.xml"
        scenario.write_text(SCENARIO.read_text().replace("HOLD_MS", str(int(load.hold_seconds * 1000))))
        injection = directory / "ports.csv"
        injection.write_text("SEQUENTIAL\n" + "".join(f"{p};\n" for p in ports))
        self.stats_file = directory / "sipp-stats.csv"
        self.deadline_seconds = load.expected_seconds() + 60
        command = [
            sipp_binary(), target,
            "-sf", str(scenario), "-inf", str(injection),
            "-s", NUMBER,
            "-i", HOST, "-p", str(free_udp_block(1)),
            "-r", f"{load.rate:g}", "-rp", "1000",
            "-l", str(load.concurrent), "-m", str(load.calls),
            "-nostdin",
            "-timeout", f"{int(self.deadline_seconds)}s", "-timeout_error",
            "-trace_stat", "-stf", str(self.stats_file), "-fd", "1",
            "-trace_logs", "-trace_err",
        ]  # fmt: skip
        self.stderr_file = directory / "sipp-stderr.log"
        with self.stderr_file.open("wb") as stderr:
            self.process = subprocess.Popen(command, cwd=directory, stdout=subprocess.DEVNULL, stderr=stderr)

    def ports_by_call_id(self) -> dict[str, int]:
        found: dict[str, int] = {}
        for path in self.directory.glob("*_logs.log"):
            for line in path.read_text(errors="replace").splitlines():
                fields = line.split()
                if len(fields) == 3 and fields[0] == "media":
                    found[fields[1]] = int(fields[2])
        return found


@dataclass
class MediaStamps:
    sip_call_id: str
    ok: bool  # SIPp got its 200 OK
    app: AppCall | None
    recognize_sent: float | None = None
    prompt_at: float | None = None
    last_digit_end: float | None = None  # the 4th digit's first end packet
    last_packet: float | None = None  # its last end packet
    completed: float | None = None  # RecognizeCompleted at the app
    written: float | None = None  # its outbox row created (the controller took DtmfReceived)
    dispatched: float | None = None  # the dispatcher fanned it out
    post_started: float | None = None  # the events worker began the HTTP POST
    digits_sent: int = 0
    rtp_packets: int | None = None  # what the carrier's socket for it received (None: no socket)


@dataclass(frozen=True, slots=True)
class MediaRun:
    carrier: CarrierResult
    sip_failures: dict[str, int]
    stamps: list[MediaStamps]
    answer_errors: list[str]
    samples: list[Sample]
    peak_calls: int
    prompt: str
    load: CarrierLoad
    workers: int
    prepares: dict[str, float]  # the prompt's preparations in the run, by outcome
    dtmf_lag: list[float | None]  # digit at the worker → the controller: p50, p90, p99 bucket bounds
    idle: tuple[Sample, Sample] | None  # before the calls


def prompt_prepares(before: SipMetrics, after: SipMetrics) -> dict[str, float]:
    """The play source preparations between two reads, by outcome (converted, cache_hit, ...)."""
    found: dict[str, float] = {}
    for (name, labels), value in after.items():
        if name == "trunkline_play_source_prepares_total":
            outcome = dict(labels)["outcome"]
            found[outcome] = found.get(outcome, 0.0) + value - before.get((name, labels), 0.0)
    return found


def dtmf_lag_bounds(
    before: SipMetrics, after: SipMetrics, quantiles: tuple[float, ...]
) -> list[float | None]:
    """Upper bounds (seconds) of the quantiles of digit arrival at the worker → the controller's
    decision between two reads, from the histogram's buckets; None past the last finite one."""
    name = "trunkline_sip_dtmf_lag_seconds_bucket"
    buckets = sorted(
        (float(dict(labels)["le"]), value - before.get((n, labels), 0.0))
        for (n, labels), value in after.items()
        if n == name
    )
    total = buckets[-1][1] if buckets else 0.0
    if total <= 0:
        return [None for _ in quantiles]
    return [
        next((le for le, count in buckets if count >= q * total and le != math.inf), None) for q in quantiles
    ]


def _place(
    stack: VoiceStack, directory: Path, load: CarrierLoad, delay: float
) -> tuple[MediaCarrier, RtpPeer]:
    directory.mkdir()
    peer = RtpPeer(load.calls, DIGITS, delay)
    peer.start()
    return MediaCarrier(directory, f"127.0.0.1:{stack.sip_port}", load, peer.ports), peer


def run_media(args: argparse.Namespace, load: CarrierLoad) -> MediaRun:
    """The run, in a temp dir removed afterwards unless ``--keep`` (as the other modes do)."""
    directory = Path(tempfile.mkdtemp(prefix="trunkline-bench-media-"))
    try:
        return _run_media(args, load, directory)
    finally:
        if args.keep:
            print(f"kept {directory}", file=sys.stderr)
        else:
            shutil.rmtree(directory, ignore_errors=True)


def _run_media(args: argparse.Namespace, load: CarrierLoad, directory: Path) -> MediaRun:
    extra_env, sip_args = stack_options(args)
    with running_voice_stack(
        directory,
        edge="kamailio",
        workers=args.workers,
        database_prefix="trunkline_bench_media",
        extra_env=extra_env,
        sip_args=sip_args,
    ) as stack:
        if args.prompt == "file":
            stack.app.files[PROMPT_PATH] = ("audio/wav", prompt_wav())
            prompt: FileSource | TextSource = FileSource(
                url=stack.app.events_url.replace("/events", PROMPT_PATH)
            )
        else:
            prompt = TextSource(text="Welcome. Please enter your four digit PIN now.")
        app = IvrApp(stack, prompt)
        stack.app.on_incoming = app.on_incoming
        stack.app.on_call_event = app.on_call_event
        if args.warmup_calls:  # the pools' first connections and the prompt's cache miss
            warm = CarrierLoad(5, args.warmup_calls, args.warmup_calls, 4.0)
            carrier, peer = _place(stack, directory / "warmup", warm, args.digits_delay)
            try:
                carrier.wait()
            finally:
                carrier.kill()
                peer.stop()
            time.sleep(1.0)
        groups = PlatformGroups(stack)
        sampler = groups.sampler()
        idle_first = sampler.sample()
        time.sleep(args.idle_seconds)
        idle = (idle_first, sampler.sample())
        sampler.samples.clear()
        metrics_before = stack.sip_metrics()
        sampler.sample()
        carrier, peer = _place(stack, directory / "sipp", load, args.digits_delay)
        groups.carrier = carrier
        sampler.start()
        peak = 0
        try:
            while carrier.running():
                time.sleep(1.0)
                peak = max(peak, groups.calls())
            exit_code = carrier.wait()
            time.sleep(2.0)  # the last callbacks
        finally:
            carrier.kill()
            peer.stop()
            sampler.stop()
        sampler.sample()
        result = carrier.result(exit_code)
        stamps = _join(stack, app, carrier, peer)
        metrics_after = stack.sip_metrics()
        return MediaRun(
            result,
            failures_by_status(carrier.directory),
            stamps,
            app.answer_errors,
            list(sampler.samples),
            peak,
            "FileSource (WAV over https, cached by URL)"
            if args.prompt == "file"
            else "TextSource (espeak-ng, cached)",
            load,
            args.workers,
            prompt_prepares(metrics_before, metrics_after),
            dtmf_lag_bounds(metrics_before, metrics_after, (0.5, 0.9, 0.99)),
            idle,
        )


def _join(stack: VoiceStack, app: IvrApp, carrier: MediaCarrier, peer: RtpPeer) -> list[MediaStamps]:
    setups = carrier.result(carrier.process.returncode).setups
    ports = carrier.ports_by_call_id()
    by_port = {c.port: c for c in peer.calls}
    with stack.database.read_session() as session:
        legs = {leg.sip_call_id: leg.call_id for leg in session.scalars(select(CallLeg))}
        outbox = {
            event.data.get("callConnectionId"): event
            for event in session.scalars(select(OutboxEvent).where(OutboxEvent.event_type == RECOGNIZED))
        }
        first_attempt = first_attempts(session)
        recognized = {
            connection: (
                event.created_at.timestamp(),
                event.dispatched_at.timestamp() if event.dispatched_at else None,
                first_attempt.get(event.id),
            )
            for connection, event in outbox.items()
        }
    found = []
    for sip_call_id, setup in setups.items():
        connection = legs.get(sip_call_id)
        call = app.calls.get(connection) if connection is not None else None
        stamp = MediaStamps(sip_call_id, setup.ok_at is not None, call)
        media = by_port.get(ports.get(sip_call_id, -1))
        if media is not None:
            stamp.prompt_at = media.prompt_at
            stamp.rtp_packets = media.packets
            stamp.digits_sent = len(media.digit_started)
            stamp.last_digit_end = media.digit_ended[-1] if len(media.digit_ended) == len(DIGITS) else None
            stamp.last_packet = media.last_sent_at
        if call is not None:
            stamp.recognize_sent = call.recognize_sent
            stamp.completed = call.events.get("RecognizeCompleted")
        if connection in recognized:
            stamp.written, stamp.dispatched, stamp.post_started = recognized[connection]
        found.append(stamp)
    return found
