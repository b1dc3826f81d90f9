"""bench/calls_carrier.py: the carrier's audio taken out of a pcap, and the scenario it renders."""

from __future__ import annotations

import struct
from pathlib import Path

from bench.calls_carrier import pcap_payload, render_scenario


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
