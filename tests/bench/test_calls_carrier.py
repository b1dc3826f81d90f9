"""bench/calls_carrier.py: the carrier's audio taken out of a pcap, and the scenario it renders."""

from __future__ import annotations

import struct
import subprocess
from pathlib import Path

import pytest

from bench.calls_carrier import pcap_payload, render_scenario
from tests.sip.support import HOST, free_udp_block, require

CALLEE = Path(__file__).parent / "scenarios" / "callee_ok_then_ringing.xml"


def _frame(payload: bytes, *, csrc: int = 0, ihl: int = 5) -> bytes:
    rtp = struct.pack("!BBHII", 0x80 | csrc, 8, 1, 160, 99) + b"\x00\x00\x00\x07" * csrc + payload
    udp = struct.pack("!HHHH", 4000, 6000, 8 + len(rtp), 0) + rtp
    ip = bytes([0x40 | ihl]) + bytes(ihl * 4 - 1) + udp
    return bytes(14) + ip  # an Ethernet header, its fields unread


def _pcap(path: Path, frames: list[bytes]) -> Path:
    data = bytearray(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
    for number, frame in enumerate(frames):
        data += (
            struct.pack("<IIII", 1000 + number // 50, 20_000 * (number % 50), len(frame), len(frame)) + frame
        )
    path.write_bytes(bytes(data))
    return path


def test_the_payloads_are_concatenated_past_every_header(tmp_path: Path) -> None:
    pcap = _pcap(
        tmp_path / "audio.pcap",
        [_frame(b"\x01" * 160), _frame(b"\x02" * 80, csrc=2), _frame(b"\x03" * 240, ihl=6)],
    )
    assert pcap_payload(pcap) == b"\x01" * 160 + b"\x02" * 80 + b"\x03" * 240


def test_a_streamed_hold_is_one_endless_stream_and_one_pause(tmp_path: Path) -> None:
    scenario = render_scenario(12.5, stream=tmp_path / "a.alaw")
    assert scenario.count(f'<exec rtp_stream="{tmp_path / "a.alaw"},-1,8"/>') == 1
    assert '<pause milliseconds="12500"/>' in scenario
    assert "play_pcap_audio" not in scenario


def test_a_pcap_hold_replays_the_pcap_after_each_pause(tmp_path: Path) -> None:
    pcap = _pcap(tmp_path / "audio.pcap", [_frame(b"\x01" * 160) for _ in range(51)])  # 1 s long
    scenario = render_scenario(2.5, pcap)
    assert scenario.count(f'play_pcap_audio="{pcap}"') == 3
    assert scenario.count('<pause milliseconds="1000"/>') == 2
    assert '<pause milliseconds="500"/>' in scenario
    assert "<exec rtp_stream" not in scenario


@pytest.mark.sip
def test_a_180_that_comes_after_the_200_ok_does_not_fail_the_call(tmp_path: Path) -> None:
    """Kamailio's UDP processes may forward a 180 after the 200 OK sent just behind it: the
    carrier discards it, as a UA does, instead of aborting the call."""
    callee_port, caller_port = free_udp_block(1), free_udp_block(1)
    caller_media, callee_media = free_udp_block(4), free_udp_block(4)  # SIPp binds port and port + 2
    audio = tmp_path / "audio.alaw"
    audio.write_bytes(bytes([0xD5]) * 8000)
    scenario = tmp_path / "carrier.xml"
    scenario.write_text(render_scenario(0.2, stream=audio))
    sipp = require("sipp")
    common = ["-i", HOST, "-m", "2", "-nostdin", "-timeout", "20s", "-timeout_error"]
    callee = subprocess.Popen(
        [sipp, "-sf", str(CALLEE), "-p", str(callee_port), "-mp", str(callee_media), *common],
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        caller = subprocess.run(
            [sipp, f"{HOST}:{callee_port}", "-sf", str(scenario), "-s", "+15550001", "-p", str(caller_port),
             "-mi", HOST, "-mp", str(caller_media), "-r", "2", "-trace_err", *common],
            cwd=tmp_path, capture_output=True, timeout=30, check=False,
        )  # fmt: skip
        errors = "".join(p.read_text(errors="replace") for p in tmp_path.glob("*_errors.log"))
        assert caller.returncode == 0, errors
    finally:
        callee.kill()
        callee.wait(5)
