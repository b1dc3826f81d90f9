"""bench/kannel.py's pure parts: bearerbox's status page and the generated configuration."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.kannel import KannelPorts, kannel_config, parse_status

# bearerbox 1.4.5's /status.txt as it answered during a bench run (one bind, one smsbox).
STATUS = """Kannel bearerbox version `1.4.5'.
Compiler `12.2.0'.

Status: running, uptime 0d 0h 0m 7s

WDP: received 0 (0 queued), sent 0 (0 queued)

SMS: received 3 (1 queued), sent 1998 (2 queued), store size 0
SMS: inbound (0.00,0.00,0.00) msg/sec, outbound (285.43,285.43,285.43) msg/sec

DLR: received 1990, sent 1987
DLR: inbound (284.29,284.29,284.29) msg/sec, outbound (0.00,0.00,0.00) msg/sec
DLR: 8 queued, using internal storage

Box connections:
    smsbox:(none), IP 127.0.0.1 (0 queued), (on-line 0d 0h 0m 6s)


SMSC connections:
    bench[bench]    SMPP:127.0.0.1:40833/40833:test: (online 7s, rcvd: sms 0 (0.00,0.00,0.00) / dlr \
1990 (284.29,284.29,284.29), sent: sms 1998 (285.43,285.43,285.43) / dlr 0 (0.00,0.00,0.00), failed 0, \
queued 0 msgs)
"""


def test_status_figures() -> None:
    status = parse_status(STATUS)
    assert (status.sms_received, status.sms_sent) == (3, 1998)
    assert (status.dlr_received, status.dlr_sent, status.dlr_queued) == (1990, 1987, 8)
    assert status.smsc_online


def test_a_bind_re_connecting_is_not_online() -> None:
    text = STATUS.replace("(online 7s,", "(re-connecting,")
    assert not parse_status(text).smsc_online


def test_a_page_without_figures_is_refused() -> None:
    with pytest.raises(ValueError, match="dlr"):
        parse_status(STATUS.replace("DLR: received", "DLR: got"))
    with pytest.raises(ValueError, match="not a bearerbox status page"):
        parse_status("<html>Denied</html>")


def test_config_binds_once_with_the_window_and_keeps_reports_in_memory(tmp_path: Path) -> None:
    text = kannel_config(tmp_path, KannelPorts(13000, 13001, 13013), "127.0.0.1", 2775, "test", "secret", 100)
    groups = [line for line in text.splitlines() if line.startswith("group = ")]
    assert groups.count("group = smsc") == 1
    assert groups.count("group = core") == groups.count("group = smsbox") == 1
    assert "max-pending-submits = 100" in text
    assert "dlr-storage = internal" in text
    assert "transceiver-mode = true" in text
    assert "sendsms-port = 13013" in text
    assert "admin-port = 13000" in text
    assert f'log-file = "{tmp_path}/bearerbox.log"' in text
