"""SIPp as the carrier of bench/calls.py: one uac process calling at a rate, holding each call.

The scenario (``scenarios/carrier_call_hold.xml``) sends an INVITE with a PCMA offer, waits for
the 200 OK, ACKs, sends G.711 audio for the whole hold and hangs up with a BYE.

The audio is Debian sip-tester's A-law sample, sent one of two ways (``--carrier-rtp``):
- ``stream`` (the default): SIPp's ``rtp_stream`` action loops the sample's payload, taken out
  of the pcap once, as 20 ms packets; a few RTP threads serve every call (``-rtp_threadtasks``).
- ``pcap``: ``play_pcap_audio`` replays the pcap (30 ms packets) and again after each pause. SIPp
  starts a thread per call for it and sends through a raw socket per call; while 400 raw UDP
  sockets are open, the kernel offers every UDP datagram on the machine to each of them
  (``raw_local_deliver``: a sixth of all CPU samples in a 400-call run, most of it charged to
  the workers' clock threads sending their RTP; perf, docs/performance.md). A carrier on
  another host costs the gateway nothing of the kind, so it is kept only for comparison.

Each call logs the wall-clock time of its INVITE and of its 200 OK by SIP Call-ID (microseconds),
which is how the benchmark joins them with the app's own timestamps. SIPp's periodic
statistics file gives successful/failed calls, retransmissions and the calls it held.
"""

from __future__ import annotations

import math
import re
import shutil
import struct
import subprocess
from dataclasses import dataclass
from pathlib import Path

SCENARIO = Path(__file__).resolve().parent / "scenarios" / "carrier_call_hold.xml"
PCAP = Path("/usr/share/sip-tester/g711a.pcap")  # Debian sip-tester's G.711 A-law sample
HOST = "127.0.0.1"


@dataclass(frozen=True, slots=True)
class CarrierLoad:
    """What SIPp offers: ``calls`` in all at ``rate`` per second, at most ``concurrent`` at once."""

    rate: float
    concurrent: int
    calls: int
    hold_seconds: float

    def expected_seconds(self) -> float:
        """How long the run should take: arrivals limited by the rate or by freed slots, then a hold."""
        steady_rate = min(self.rate, self.concurrent / max(self.hold_seconds, 0.1))
        return self.calls / steady_rate + self.hold_seconds


@dataclass(frozen=True, slots=True)
class CallSetup:
    """One call's INVITE sent and 200 OK received, wall clock (``time.time()`` scale)."""

    invite_at: float
    ok_at: float | None
    ringing_at: float | None = None  # 180 Ringing received (the platform committed the offer)


@dataclass(frozen=True, slots=True)
class CarrierResult:
    exit_code: int | None  # None: killed at the deadline
    successful: int
    failed: int
    retransmissions: int
    peak_calls: int  # the most calls SIPp held at a statistics tick (1 s)
    mean_setup_ms: float  # SIPp's own ResponseTime1 average (ms resolution)
    setups: dict[str, CallSetup]  # by SIP Call-ID
    errors: str  # the tail of SIPp's error log, empty when clean


def pcap_seconds(path: Path = PCAP) -> float:
    """Duration of a classic little-endian pcap file (first to last packet)."""
    data = path.read_bytes()
    offset, stamps = 24, []
    while offset + 16 <= len(data):
        seconds, micros, length, _ = struct.unpack_from("<IIII", data, offset)
        stamps.append(seconds + micros / 1e6)
        offset += 16 + length
    return stamps[-1] - stamps[0] if len(stamps) > 1 else 0.0


RTP_MODES = ("stream", "pcap")


def pcap_payload(path: Path = PCAP) -> bytes:
    """The RTP payloads of a classic little-endian Ethernet pcap, concatenated (raw G.711)."""
    data = path.read_bytes()
    offset, payload = 24, bytearray()
    while offset + 16 <= len(data):
        length = struct.unpack_from("<I", data, offset + 8)[0]
        frame = data[offset + 16 : offset + 16 + length]
        offset += 16 + length
        ip = frame[14:]
        rtp = ip[(ip[0] & 0x0F) * 4 + 8 :]  # past the IPv4 and UDP headers
        payload += rtp[12 + 4 * (rtp[0] & 0x0F) :]  # past the RTP header and its CSRCs
    return bytes(payload)


def render_scenario(hold_seconds: float, pcap: Path = PCAP, *, stream: Path | None = None) -> str:
    """The scenario with the hold's audio: ``stream`` looped by SIPp's RTP threads for the whole
    hold, or else the pcap replayed, a play and a pause at a time."""
    hold_ms = int(hold_seconds * 1000)
    if stream is not None:
        media = (
            f'  <nop><action><exec rtp_stream="{stream},-1,8"/></action></nop>\n'
            f'  <pause milliseconds="{max(hold_ms, 1)}"/>\n'
        )
        return SCENARIO.read_text().replace("  <!-- MEDIA -->\n", media)
    play = f'  <nop><action><exec play_pcap_audio="{pcap}"/></action></nop>\n'
    length_ms = max(1, int(pcap_seconds(pcap) * 1000))
    media = ""
    for start in range(0, max(hold_ms, 1), length_ms):
        media += play + f'  <pause milliseconds="{min(length_ms, hold_ms - start)}"/>\n'
    return SCENARIO.read_text().replace("  <!-- MEDIA -->\n", media)


def sipp_binary() -> str:
    path = shutil.which("sipp")
    if path is None:
        raise RuntimeError("sipp is missing (Debian sip-tester): run scripts/bootstrap.sh --dev")
    return path


class Carrier:
    """One SIPp uac process in ``directory`` calling ``target`` (HOST:PORT); killed by pid if late."""

    def __init__(
        self,
        directory: Path,
        target: str,
        load: CarrierLoad,
        *,
        port: int,
        media_port: int,
        number: str,
        rtp: str = "stream",
    ) -> None:
        if rtp not in RTP_MODES:
            raise ValueError(f"carrier RTP {rtp!r}: one of {', '.join(RTP_MODES)}")
        self.directory = directory
        self.load = load
        stream: Path | None = None
        if rtp == "stream":
            stream = directory / "carrier-audio.alaw"
            stream.write_bytes(pcap_payload())
        scenario = directory / "carrier_call_hold.xml"
        scenario.write_text(render_scenario(load.hold_seconds, stream=stream))
        self.stats_file = directory / "sipp-stats.csv"
        self.deadline_seconds = load.expected_seconds() + 60
        command = [
            sipp_binary(),
            target,
            "-sf", str(scenario),
            "-s", number,
            "-i", HOST, "-p", str(port),
            "-mi", HOST, "-mp", str(media_port),
            "-r", f"{load.rate:g}", "-rp", "1000",
            "-l", str(load.concurrent),
            "-m", str(load.calls),
            "-nostdin",
            "-timeout", f"{int(self.deadline_seconds)}s", "-timeout_error",
            "-trace_stat", "-stf", str(self.stats_file), "-fd", "1",
            "-trace_logs",
            "-trace_err",
        ]  # fmt: skip
        self.stderr_file = directory / "sipp-stderr.log"
        with self.stderr_file.open("wb") as stderr:  # a file: a pipe nobody reads could block SIPp
            self.process = subprocess.Popen(command, cwd=directory, stdout=subprocess.DEVNULL, stderr=stderr)

    @property
    def pid(self) -> int:
        return self.process.pid

    def running(self) -> bool:
        return self.process.poll() is None

    def wait(self) -> int | None:
        """SIPp's exit code (0: every call succeeded); None if it had to be killed at the deadline."""
        try:
            return self.process.wait(self.deadline_seconds + 30)
        except subprocess.TimeoutExpired:
            self.kill()
            return None

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(5)

    def result(self, exit_code: int | None) -> CarrierResult:
        rows = read_stats(self.stats_file)
        last = rows[-1] if rows else {}
        errors = "".join(p.read_text(errors="replace") for p in self.directory.glob("*_errors.log"))
        stderr = self.stderr_file.read_text(errors="replace")
        return CarrierResult(
            exit_code=exit_code,
            successful=int(last.get("SuccessfulCall(C)", 0)),
            failed=int(last.get("FailedCall(C)", 0)),
            retransmissions=int(last.get("Retransmissions(C)", 0)),
            peak_calls=max((int(r.get("CurrentCall", 0)) for r in rows), default=0),
            mean_setup_ms=_duration_ms(last.get("ResponseTime1(C)", "")),
            setups=read_setups(self.directory),
            errors=((stderr if exit_code != 0 else "") + errors)[-3000:],
        )


def read_stats(path: Path) -> list[dict[str, str]]:
    """SIPp's ``-trace_stat`` CSV (';'-separated, one row per ``-fd`` period and a last one)."""
    if not path.exists():
        return []
    lines = [line for line in path.read_text(errors="replace").splitlines() if line.strip()]
    if not lines:
        return []
    header = lines[0].rstrip(";").split(";")
    return [dict(zip(header, line.rstrip(";").split(";"), strict=False)) for line in lines[1:]]


def read_setups(directory: Path) -> dict[str, CallSetup]:
    """Per SIP Call-ID, the INVITE, 180 and 200 OK times from the scenario's log lines.

    A line reads ``invite CALL-ID DATE TIME EPOCH`` (SIPp's ``[timestamp]``; ``ringing`` and
    ``ok`` alike); the epoch with microseconds is the last field.
    """
    stamps: dict[str, dict[str, float]] = {"invite": {}, "ringing": {}, "ok": {}}
    for path in directory.glob("*_logs.log"):
        for line in path.read_text(errors="replace").splitlines():
            fields = line.split()
            if len(fields) < 3 or fields[0] not in stamps:
                continue
            stamps[fields[0]][fields[1]] = float(fields[-1])
    return {
        call: CallSetup(at, stamps["ok"].get(call), stamps["ringing"].get(call))
        for call, at in stamps["invite"].items()
    }


def _duration_ms(text: str) -> float:
    """SIPp's ``HH:MM:SS:micros`` duration in milliseconds (nan when absent)."""
    parts = text.strip().split(":")
    if len(parts) != 4:
        return math.nan
    hours, minutes, seconds, micros = (int(p) for p in parts)
    return ((hours * 60 + minutes) * 60 + seconds) * 1000 + micros / 1000


_UNEXPECTED = re.compile(r"received 'SIP/2\.0 (\d{3})")


def failures_by_status(directory: Path) -> dict[str, int]:
    """SIPp's failed calls by what ended them: the SIP status it did not expect, or a timeout."""
    found: dict[str, int] = {}
    for path in directory.glob("*_errors.log"):
        for line in path.read_text(errors="replace").splitlines():
            match = _UNEXPECTED.search(line)
            if match:
                key = match[1]
            elif "timeout" in line.lower() or "timed out" in line.lower():
                key = "timeout"
            else:
                continue
            found[key] = found.get(key, 0) + 1
    return found
