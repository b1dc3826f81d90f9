"""Rendering the Kamailio edge's config and dispatcher list, and its RPC requests."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sip.edge import (
    TEMPLATE,
    Destination,
    DialogRef,
    EdgeConfig,
    EdgeTls,
    destinations,
    dialogs_of,
    render_config,
    render_dispatcher_list,
    render_tls_config,
    rpc_set_state,
)
from tests.sip.support import require

LINE = re.compile(r"^1 sip:(?P<host>[0-9.]+):(?P<port>\d+) 0 0 duid=(?P<duid>w\d+);maxload=4$")


@given(st.integers(1, 200), st.integers(1024, 60000))
def test_dispatcher_list_has_one_line_per_worker_with_duid_and_maxload(workers: int, port: int) -> None:
    text = render_dispatcher_list(destinations("127.0.0.1", port, workers))
    lines = [line for line in text.splitlines() if not line.startswith("#")]
    assert len(lines) == workers
    for index, line in enumerate(lines):
        match = LINE.match(line)
        assert match, line
        assert (int(match["port"]), match["duid"]) == (port + index, f"w{index}")


def test_bad_destinations_are_refused() -> None:
    with pytest.raises(ValueError):
        render_dispatcher_list([Destination("127.0.0.1", 5070, "w 0")])
    with pytest.raises(ValueError):
        render_dispatcher_list([Destination("127.0.0.1", 5070, "w0", maxload=0)])


def config(**overrides: object) -> EdgeConfig:
    values: dict[str, object] = {
        "listen_host": "127.0.0.1",
        "listen_port": 5060,
        "rpc_host": "127.0.0.1",
        "rpc_port": 5061,
        "dispatcher_list": "/tmp/x/dispatcher.list",
    }
    values.update(overrides)
    return EdgeConfig(**values)  # type: ignore[arg-type]


def test_config_fills_every_token() -> None:
    text = render_config(config(), TEMPLATE.read_text())
    assert "__" not in text
    assert "listen=udp:127.0.0.1:5060" in text
    assert 'modparam("jsonrpcs", "dgram_socket", "udp:127.0.0.1:5061")' in text
    assert 'modparam("dispatcher", "list_file", "/tmp/x/dispatcher.list")' in text
    assert 'ds_select_dst("1", "10")' in text  # call-load algorithm
    assert 't_check_status("486|503")' in text  # failover


def test_workers_get_the_short_branch_timeout_and_carriers_the_long_one() -> None:
    text = render_config(config(branch_timeout_ms=1500, carrier_timeout_ms=9000), TEMPLATE.read_text())
    assert 'modparam("tm", "fr_timer", 9000)' in text  # relays to carriers
    # each INVITE branch to a worker, the first and the failover ones
    assert text.count("t_set_fr(0, 1500);") == 2
    route = text[text.index("request_route {") : text.index("route[WITHIN_DIALOG]")]
    assert route.index("t_set_fr(0, 1500);") > route.index('ds_select_dst("1", "10")')


def test_config_refuses_unsafe_values_and_unknown_tokens() -> None:
    with pytest.raises(ValueError):
        render_config(config(dispatcher_list='/tmp/"x'), TEMPLATE.read_text())
    with pytest.raises(ValueError):
        render_config(config(), TEMPLATE.read_text() + "\n# __NOPE__\n")


@pytest.mark.sip
def test_kamailio_accepts_the_rendered_config(tmp_path: Path) -> None:
    binary = require("kamailio")
    (tmp_path / "dispatcher.list").write_text(render_dispatcher_list(destinations("127.0.0.1", 5070, 3)))
    cfg = tmp_path / "kamailio.cfg"
    cfg.write_text(
        render_config(config(dispatcher_list=str(tmp_path / "dispatcher.list")), TEMPLATE.read_text())
    )
    check = subprocess.run([binary, "-c", "-f", str(cfg)], capture_output=True, timeout=30, check=False)
    assert check.returncode == 0, check.stderr.decode()


def test_tls_is_in_the_config_only_when_a_port_is_given() -> None:
    plain = render_config(config(), TEMPLATE.read_text())
    assert "#!define WITHOUT_TLS" in plain
    assert "#!define WITH_TLS\n" not in plain
    with_tls = render_config(config(tls_port=5062, tls_config="/tmp/x/tls.cfg"), TEMPLATE.read_text())
    assert with_tls.startswith("#!KAMAILIO\n#!define WITH_TLS\n")
    assert "listen=tls:127.0.0.1:5062" in with_tls
    assert 'modparam("tls", "config", "/tmp/x/tls.cfg")' in with_tls


def test_tls_config_verifies_carriers_unless_told_not_to() -> None:
    text = render_tls_config(EdgeTls("/c/cert.pem", "/c/key.pem", "/c/ca.pem"))
    client = text.split("[client:default]", 1)[1]
    assert "verify_certificate = yes" in client
    assert "ca_list = /c/ca.pem" in client
    server = text.split("[server:default]", 1)[1].split("[client:default]", 1)[0]
    assert "require_certificate = no" in server  # carriers are told apart by address
    assert "certificate = /c/cert.pem" in server
    assert "method = TLSv1.2+" in server
    relaxed = render_tls_config(EdgeTls("/c/cert.pem", "/c/key.pem", verify_carriers=False))
    assert "verify_certificate = no" in relaxed.split("[client:default]", 1)[1]
    for bad in ("", "/c/a\nb", "/c/a=b"):
        with pytest.raises(ValueError):
            render_tls_config(EdgeTls(bad, "/c/key.pem"))


@pytest.mark.sip
def test_kamailio_accepts_the_rendered_tls_config(tmp_path: Path) -> None:
    binary = require("kamailio")
    from gateway.core.tls import ensure_local_tls

    files = ensure_local_tls(tmp_path / "tls", ["127.0.0.1"])
    (tmp_path / "dispatcher.list").write_text(render_dispatcher_list(destinations("127.0.0.1", 5070, 1)))
    (tmp_path / "tls.cfg").write_text(render_tls_config(EdgeTls(str(files.cert_file), str(files.key_file))))
    cfg = tmp_path / "kamailio.cfg"
    edge = config(
        dispatcher_list=str(tmp_path / "dispatcher.list"), tls_port=5062, tls_config=str(tmp_path / "tls.cfg")
    )
    cfg.write_text(render_config(edge, TEMPLATE.read_text()))
    check = subprocess.run([binary, "-c", "-f", str(cfg)], capture_output=True, timeout=30, check=False)
    assert check.returncode == 0, check.stderr.decode()


@given(st.booleans(), st.integers(1, 10**6))
def test_set_state_request(active: bool, request_id: int) -> None:
    body = json.loads(rpc_set_state(Destination("127.0.0.1", 5071, "w1"), active, request_id))
    assert body == {
        "jsonrpc": "2.0",
        "method": "dispatcher.set_state",
        "params": ["a" if active else "i", 1, "sip:127.0.0.1:5071"],
        "id": request_id,
    }


def test_an_inactive_worker_is_listed_with_flag_1() -> None:
    text = render_dispatcher_list([Destination("127.0.0.1", 5070, "w0", active=False)])
    assert text.splitlines()[-1] == "1 sip:127.0.0.1:5070 1 0 duid=w0;maxload=4"


def dialog(h_id: int, caller: str, callee: str, state: int = 4) -> dict[str, object]:
    return {
        "h_entry": 7,
        "h_id": h_id,
        "state": state,
        "caller": {"contact": caller},
        "callee": {"contact": callee},
    }


def test_dialogs_of_a_worker_are_found_by_contact() -> None:
    worker = Destination("127.0.0.1", 15071, "w1")
    dialogs = [
        dialog(1, "sip:+1555@10.0.0.9:5060", "sip:trunkline@127.0.0.1:15071"),  # inbound to w1
        dialog(2, "<sip:+1777@127.0.0.1:15071;ob>", "sip:callee@10.0.0.9:5060"),  # outbound from w1
        dialog(3, "sip:+1555@10.0.0.9:5060", "sip:trunkline@127.0.0.1:15070"),  # w0's
        dialog(4, "sip:+1555@10.0.0.9:5060", "sip:trunkline@127.0.0.1:150710"),  # not a prefix match
        dialog(5, "sip:+1555@10.0.0.9:5060", "sip:trunkline@127.0.0.1:15071", state=3),  # early
        {"h_entry": 7, "h_id": 6},  # fields missing
    ]
    assert dialogs_of(worker, dialogs) == [DialogRef(7, 1), DialogRef(7, 2)]


@given(
    st.lists(
        st.fixed_dictionaries({"state": st.integers(0, 6), "caller": st.dictionaries(st.text(), st.text())})
    )
)
def test_dialogs_of_never_raises_on_odd_listings(dialogs: list[dict[str, object]]) -> None:
    for entry in dialogs:
        entry.update(h_entry=1, h_id=2)
    dialogs_of(Destination("127.0.0.1", 5070, "w0"), dialogs)
