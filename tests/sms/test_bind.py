"""sms.bind.SmppBind against the real node-smpp SMSC (tests/smsc/smsc.js)."""

from __future__ import annotations

import itertools
import socket
import ssl
import threading
import time
from concurrent.futures import Future, wait
from pathlib import Path

import pytest
from prometheus_client import REGISTRY

from gateway.core.tls import ensure_local_tls
from sms.bind import SmppBind
from sms.bind_dispatch import DeliverAnswer
from sms.bind_types import BindMode, BindState, SubmitOutcome, SubmitRequest, SubmitResult
from sms.pdu import ESME_ROK, DeliverSm
from sms.tlsstream import TlsStream
from tests.sms.conftest import BindFactory, bind_config
from tests.support.smsc import ESME_RINVDSTADR, ESME_RMSGQFUL, ESME_RSYSERR, ESME_RTHROTTLED, SmscProcess

pytestmark = pytest.mark.smsc

SOURCE = "15550001111"
DEST = "447700900123"


def request(text: bytes = b"hello", **fields: object) -> SubmitRequest:
    return SubmitRequest(SOURCE, DEST, text, **fields)  # type: ignore[arg-type]


def results(futures: list[Future[SubmitResult]], timeout: float = 10.0) -> list[SubmitResult]:
    _, pending = wait(futures, timeout)
    assert not pending, f"{len(pending)} submits never resolved"
    return [future.result() for future in futures]


class Deliveries:
    """Collects what on_deliver hands over."""

    def __init__(self) -> None:
        self.items: list[DeliverSm] = []
        self.event = threading.Condition()

    def __call__(self, deliver: DeliverSm) -> None:
        with self.event:
            self.items.append(deliver)
            self.event.notify_all()

    def wait(self, count: int, timeout: float = 5.0) -> list[DeliverSm]:
        with self.event:
            assert self.event.wait_for(lambda: len(self.items) >= count, timeout), self.items
            return list(self.items)


# binding ------------------------------------------------------------------------------------------


def test_transceiver_bind_and_graceful_unbind(smsc: SmscProcess, make_bind: BindFactory) -> None:
    bind = make_bind(system_type="TRK")
    assert bind.state is BindState.BOUND
    (pdu,) = smsc.pdus("bind_transceiver")
    assert (pdu["system_id"], pdu["password"], pdu["system_type"]) == ("test", "secret", "TRK")
    assert pdu["interface_version"] == 0x34
    bind.stop()
    assert bind.stats().state is BindState.STOPPED
    assert len(smsc.pdus("unbind")) == 1
    smsc.wait_for(lambda s: not s.stats()["sessions"])


def test_transmitter_plus_receiver(smsc: SmscProcess, make_bind: BindFactory) -> None:
    deliveries = Deliveries()
    bind = make_bind(start=False, mode=BindMode.TRANSMITTER_RECEIVER)
    bind.on_deliver(deliveries)
    bind.start()
    assert bind.wait_bound(5)
    assert sorted(s["bound"] for s in smsc.bound_sessions()) == ["receiver", "transmitter"]
    result = bind.submit(request()).result(5)
    assert result.ok
    transmitter = next(s["id"] for s in smsc.bound_sessions() if s["bound"] == "transmitter")
    assert smsc.pdus("submit_sm")[0]["session"] == transmitter
    assert smsc.mo(DEST, SOURCE, b"reply")["command_status"] == 0
    assert deliveries.wait(1)[0].short_message == b"reply"
    bind.stop()
    assert len(smsc.pdus("unbind")) == 2


def test_wrong_password_is_rejected_and_retried_with_backoff(
    smsc: SmscProcess, make_bind: BindFactory
) -> None:
    bind = make_bind(wait=False, password="wrong", reconnect_backoff_initial=0.1, reconnect_backoff_max=0.2)
    assert not bind.wait_bound(0.6)
    failures = smsc.counter("bind_failures")
    assert 2 <= failures <= 6  # 0.1 s, then 0.2 s apart (±20% jitter), not a tight loop
    assert bind.stats().bind_failures == failures
    assert bind.state in (BindState.BACKOFF, BindState.CONNECTING)


def test_rejected_binds_recover(smsc: SmscProcess, make_bind: BindFactory) -> None:
    smsc.configure(reject_binds=2)
    bind = make_bind(wait=False)
    assert bind.wait_bound(5)
    assert bind.stats().bind_failures == 2
    assert bind.submit(request()).result(5).ok


def test_tcp_nodelay_is_set(make_bind: BindFactory) -> None:
    bind = make_bind()
    (sock,) = bind.sockets()
    assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) == 1


# submitting ---------------------------------------------------------------------------------------


def test_submit_sm_fields_reach_the_smsc(smsc: SmscProcess, make_bind: BindFactory) -> None:
    bind = make_bind()
    udh = bytes.fromhex("0500030a0201")
    first = bind.submit(
        request(
            udh + "héllo".encode("utf-16-be"),
            data_coding=0x08,
            esm_class=0x40,
            registered_delivery=1,
            tlvs={"sar_msg_ref_num": 10, "sar_total_segments": 2, "sar_segment_seqnum": 1},
            source_ton=5,
            source_npi=0,
        )
    )
    second = bind.submit(SubmitRequest("TRUNK", DEST, b"", tlvs={"message_payload": b"x" * 300}, dest_ton=2))
    assert first.result(5).ok
    assert second.result(5).ok
    one, two = smsc.pdus("submit_sm")
    assert (one["source_addr"], one["source_addr_ton"], one["source_addr_npi"]) == (SOURCE, 5, 0)
    assert (one["destination_addr"], one["dest_addr_ton"], one["dest_addr_npi"]) == (DEST, 1, 1)
    assert (one["data_coding"], one["esm_class"], one["registered_delivery"]) == (8, 0x40, 1)
    assert one["udh_hex"] == udh.hex()
    assert bytes.fromhex(one["payload_hex"]).decode("utf-16-be") == "héllo"
    assert one["tlvs"] == {"sar_msg_ref_num": 10, "sar_total_segments": 2, "sar_segment_seqnum": 1}
    assert (two["source_addr"], two["dest_addr_ton"], two["short_message_hex"]) == ("TRUNK", 2, "")
    assert two["tlvs"]["message_payload"] == (b"x" * 300).hex()
    assert first.result().message_id != second.result().message_id


def test_window_is_never_exceeded(smsc: SmscProcess, make_bind: BindFactory) -> None:
    smsc.configure(submit_latency_ms=300)
    bind = make_bind(window_size=5)
    futures = [bind.submit(request()) for _ in range(12)]
    smsc.wait_for(lambda s: s.counter("submits") >= 5)
    time.sleep(0.1)
    assert smsc.counter("submits") == 5
    assert bind.stats().window_in_use == 5
    assert bind.stats().queued == 6  # and one more held by the sender, waiting for a slot
    assert all(r.ok for r in results(futures))
    assert bind.stats().window_in_use == 0


def test_out_of_order_resps_resolve_the_right_submits(smsc: SmscProcess, make_bind: BindFactory) -> None:
    smsc.configure(reverse_batch=10)
    bind = make_bind(window_size=10)
    futures = [bind.submit(request(f"m{i}".encode())) for i in range(100)]
    outcome = results(futures)
    assert all(r.ok for r in outcome)
    # The SMSC numbers message ids in arrival order; submits are written in order, so each
    # future must carry the id of its own submit even though every batch of resps came reversed.
    ids = [int(r.message_id or "", 16) for r in outcome]
    assert ids == list(range(ids[0], ids[0] + 100))
    sent = smsc.pdus("submit_sm")
    by_sequence = {p["sequence_number"]: bytes.fromhex(p["short_message_hex"]) for p in sent}
    assert sorted(by_sequence.values()) == sorted(f"m{i}".encode() for i in range(100))


def test_per_request_timeout(smsc: SmscProcess, make_bind: BindFactory) -> None:
    smsc.configure(submit_latency_ms=1500)
    bind = make_bind(response_timeout=0.3)
    started = time.monotonic()
    result = bind.submit(request()).result(5)
    assert 0.25 <= time.monotonic() - started < 1.0
    assert result.outcome is SubmitOutcome.UNKNOWN
    assert result.retryable
    assert result.maybe_submitted
    assert "submit_sm_resp" in result.detail
    smsc.configure(submit_latency_ms=0)
    time.sleep(1.4)  # the late resp arrives and is ignored
    assert bind.submit(request()).result(5).ok
    assert bind.stats().unknown == 1


def test_rate_limit_is_honoured(smsc: SmscProcess, make_bind: BindFactory) -> None:
    bind = make_bind(max_submits_per_second=100, rate_burst=5, window_size=50)
    started = time.monotonic()
    outcome = results([bind.submit(request()) for _ in range(105)])
    elapsed = time.monotonic() - started
    assert all(r.ok for r in outcome)
    # 5 at once, then 100 more at 100/s: one second. Never faster; slower only by scheduling
    # (a busy 2-core machine has taken 1.3 s).
    assert 0.9 <= elapsed <= 2.0
    arrivals = sorted(p["at"] for p in smsc.pdus("submit_sm"))
    in_any_half_second = max(sum(1 for t in arrivals if start <= t < start + 0.5) for start in arrivals)
    assert in_any_half_second <= 5 + 50 + 3


def test_cancelled_before_written_is_not_sent(smsc: SmscProcess, make_bind: BindFactory) -> None:
    smsc.configure(submit_latency_ms=300)
    bind = make_bind(window_size=1)
    first = bind.submit(request(b"first"))
    second = bind.submit(request(b"second"))
    assert second.cancel()
    assert first.result(5).ok
    time.sleep(0.1)
    assert [bytes.fromhex(p["short_message_hex"]) for p in smsc.pdus("submit_sm")] == [b"first"]


# errors from the SMSC -----------------------------------------------------------------------------


@pytest.mark.parametrize("status", [ESME_RTHROTTLED, ESME_RMSGQFUL])
def test_throttling_is_retryable_and_backs_off(
    smsc: SmscProcess, make_bind: BindFactory, status: int
) -> None:
    smsc.fault(status, count=1)
    bind = make_bind(throttle_backoff_initial=0.3)
    throttled = bind.submit(request(b"one")).result(5)
    after = bind.submit(request(b"two")).result(5)
    assert throttled.outcome is SubmitOutcome.RETRY
    assert throttled.retryable
    assert not throttled.maybe_submitted
    assert throttled.status == status
    assert throttled.status_name
    assert throttled.status_name in throttled.detail
    assert after.ok
    first, second = smsc.pdus("submit_sm")
    assert second["at"] - first["at"] >= 0.25  # the bind paused before writing again
    assert bind.stats().throttled == 1


def test_throttle_backoff_grows_while_throttled(smsc: SmscProcess, make_bind: BindFactory) -> None:
    smsc.fault(ESME_RTHROTTLED, count=3)
    bind = make_bind(throttle_backoff_initial=0.1, window_size=1)
    outcome = results([bind.submit(request()) for _ in range(4)])
    assert [r.outcome for r in outcome] == [SubmitOutcome.RETRY] * 3 + [SubmitOutcome.ACCEPTED]
    times = [p["at"] for p in smsc.pdus("submit_sm")]
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert gaps[0] >= 0.08  # 0.1 s
    assert gaps[1] >= 0.18  # 0.2 s
    assert gaps[2] >= 0.35  # 0.4 s


def test_permanent_error_names_the_status(smsc: SmscProcess, make_bind: BindFactory) -> None:
    smsc.fault(ESME_RINVDSTADR, count=1)
    bind = make_bind()
    result = bind.submit(request()).result(5)
    assert result.outcome is SubmitOutcome.FAILED
    assert not result.retryable
    assert result.status == ESME_RINVDSTADR
    assert result.status_name == "ESME_RINVDSTADR"
    assert "ESME_RINVDSTADR" in result.detail
    assert bind.submit(request()).result(5).ok  # no back-off for permanent errors


# deliveries ---------------------------------------------------------------------------------------


def test_receipt_before_submit_sm_resp_reaches_the_callback(
    smsc: SmscProcess, make_bind: BindFactory
) -> None:
    smsc.configure(receipts="before_resp")
    deliveries = Deliveries()
    bind = make_bind(start=False)
    bind.on_deliver(deliveries)
    bind.start()
    assert bind.wait_bound(5)
    result = bind.submit(request(registered_delivery=1)).result(5)
    assert result.ok
    (receipt,) = deliveries.wait(1)
    assert receipt.is_receipt
    assert receipt.receipted_message_id == result.message_id
    assert receipt.message_state == 2
    assert f"id:{result.message_id} ".encode() in receipt.short_message
    assert b"stat:DELIVRD" in receipt.short_message
    commands = [p["command"] for p in smsc.pdus() if p["command"] in ("deliver_sm_resp", "submit_sm")]
    assert commands == ["submit_sm", "deliver_sm_resp"]
    assert smsc.pdus("deliver_sm_resp")[0]["command_status"] == 0


def test_mo_with_udh_and_with_sar_tlvs(smsc: SmscProcess, make_bind: BindFactory) -> None:
    deliveries = Deliveries()
    bind = make_bind(start=False)
    bind.on_deliver(deliveries)
    bind.start()
    assert bind.wait_bound(5)
    udh_part = bytes.fromhex("050003070201") + b"first half "
    assert smsc.mo(DEST, SOURCE, udh_part, esm_class=0x40)["command_status"] == 0
    sar = {"sar_msg_ref_num": 513, "sar_total_segments": 2, "sar_segment_seqnum": 2}
    assert smsc.mo(DEST, SOURCE, "ünï".encode("utf-16-be"), data_coding=8, tlvs=sar)["command_status"] == 0
    first, second = deliveries.wait(2)
    assert not first.is_receipt
    assert first.has_udh
    assert first.short_message == udh_part
    assert (first.source, first.source_ton, first.destination) == (DEST, 1, SOURCE)
    assert second.data_coding == 8
    assert second.short_message.decode("utf-16-be") == "ünï"
    assert {k: second.tlvs[k] for k in sar} == sar


def test_data_sm_is_answered_and_delivered(smsc: SmscProcess, make_bind: BindFactory) -> None:
    deliveries = Deliveries()
    bind = make_bind(start=False)
    bind.on_deliver(deliveries)
    bind.start()
    assert bind.wait_bound(5)
    resp = smsc.data_sm(DEST, SOURCE, b"payload")
    assert (resp["command"], resp["command_status"]) == ("data_sm_resp", 0)
    (deliver,) = deliveries.wait(1)
    assert deliver.command == "data_sm"
    assert deliver.payload == b"payload"


def test_a_failing_callback_does_not_stop_deliveries(smsc: SmscProcess, make_bind: BindFactory) -> None:
    deliveries = Deliveries()
    bind = make_bind(start=False)

    def broken(_: DeliverSm) -> None:
        raise RuntimeError("boom")

    bind.on_deliver(broken)
    bind.on_deliver(deliveries)
    bind.start()
    assert bind.wait_bound(5)
    for text in (b"a", b"b"):
        assert smsc.mo(DEST, SOURCE, text)["command_status"] == 0
    assert [d.short_message for d in deliveries.wait(2)] == [b"a", b"b"]


# keepalive and link loss --------------------------------------------------------------------------


def test_enquire_link_both_ways(smsc: SmscProcess, make_bind: BindFactory) -> None:
    bind = make_bind(enquire_link_interval=0.2)
    smsc.wait_for(lambda s: len(s.pdus("enquire_link")) >= 2, timeout=2)
    (resp,) = smsc.enquire_link()
    assert (resp["command"], resp["command_status"]) == ("enquire_link_resp", 0)
    smsc.configure(enquire_link_interval_ms=100)  # the SMSC's own keepalive
    smsc.wait_for(lambda s: len(s.pdus("enquire_link_resp")) >= 4, timeout=2)
    assert all(p["command_status"] == 0 for p in smsc.pdus("enquire_link_resp"))
    assert bind.state is BindState.BOUND
    assert bind.stats().reconnects == 0


def test_missing_enquire_link_resp_reconnects(smsc: SmscProcess, make_bind: BindFactory) -> None:
    smsc.configure(answer_enquire_link=False)
    bind = make_bind(enquire_link_interval=0.2, enquire_link_timeout=0.3)
    smsc.wait_for(lambda s: s.counter("binds") >= 2, timeout=3)
    stats = bind.stats()
    assert stats.enquire_link_timeouts >= 1
    assert stats.reconnects >= 1
    smsc.configure(answer_enquire_link=True)
    assert bind.wait_bound(3)
    assert bind.submit(request()).result(5).ok


def test_smsc_unbind_is_answered_then_rebinds(smsc: SmscProcess, make_bind: BindFactory) -> None:
    bind = make_bind()
    (resp,) = smsc.unbind()
    assert (resp["command"], resp["command_status"]) == ("unbind_resp", 0)
    smsc.wait_for(lambda s: s.counter("binds") >= 2, timeout=3)
    assert bind.wait_bound(3)
    assert bind.stats().reconnects == 1
    assert bind.submit(request()).result(5).ok


def test_connection_dropped_mid_batch(smsc: SmscProcess, make_bind: BindFactory) -> None:
    smsc.configure(drop_after_submits=60, submit_latency_ms=20)
    bind = make_bind(window_size=20)
    futures = [bind.submit(request(f"{i}".encode())) for i in range(300)]
    outcome = results(futures, timeout=20)
    accepted = [r for r in outcome if r.ok]
    lost = [r for r in outcome if not r.ok]
    assert lost, "the drop should have caught submits in flight"
    assert all(r.outcome is SubmitOutcome.UNKNOWN and r.retryable and r.maybe_submitted for r in lost)
    assert all("link lost" in r.detail for r in lost)
    assert len(lost) <= 20  # at most one window was in flight
    assert len(accepted) + len(lost) == 300
    assert bind.stats().reconnects == 1
    assert smsc.counter("binds") == 2
    # Every accepted submit reached the SMSC; the SMSC saw each text at most once.
    texts = [bytes.fromhex(p["short_message_hex"]) for p in smsc.pdus("submit_sm")]
    assert len(texts) == len(set(texts))


def test_stop_waits_for_outstanding_resps(smsc: SmscProcess, make_bind: BindFactory) -> None:
    smsc.configure(submit_latency_ms=200)
    bind = make_bind(window_size=5, drain_timeout=2.0)
    futures = [bind.submit(request()) for _ in range(5)]
    smsc.wait_for(lambda s: s.counter("submits") == 5)
    queued_late = [bind.submit(request()) for _ in range(3)]
    bind.stop()
    assert all(r.ok for r in results(futures, timeout=0))
    assert all(r.outcome is SubmitOutcome.RETRY and not r.maybe_submitted for r in results(queued_late, 0))
    commands = [p["command"] for p in smsc.pdus()]
    assert commands[-1] == "unbind"
    assert bind.submit(request()).result(0).outcome is SubmitOutcome.RETRY


def test_submits_wait_for_the_bind_and_expire_in_the_queue(smsc: SmscProcess) -> None:
    bind = SmppBind(bind_config(smsc, queue_timeout=0.3))
    future = bind.submit(request())  # not started: nothing can be written
    bind.start()
    assert bind.wait_bound(5)
    assert future.result(5).ok
    bind.stop()
    down = SmppBind(bind_config(smsc, port=1, queue_timeout=0.3))  # nothing listens on port 1
    down.start()
    try:
        result = down.submit(request()).result(3)
        assert result.outcome is SubmitOutcome.RETRY
        assert "queue_timeout" in result.detail
    finally:
        down.stop()


def test_tls_bind_verifies_the_smsc_certificate(tmp_path: Path) -> None:
    files = ensure_local_tls(tmp_path, [])
    assert files.ca_file is not None
    with SmscProcess.start(tls=(files.key_file, files.cert_file), receipts="immediate") as smsc:
        deliveries = Deliveries()
        trusted = ssl.create_default_context(cafile=str(files.ca_file))
        bind = SmppBind(bind_config(smsc, tls=trusted, window_size=20))
        bind.on_deliver(deliveries)
        bind.start()
        try:
            assert bind.wait_bound(5)
            (sock,) = bind.sockets()
            assert isinstance(sock, TlsStream)
            assert sock.version() in ("TLSv1.2", "TLSv1.3")
            assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) == 1
            outcome = results([bind.submit(request(registered_delivery=1)) for _ in range(2000)])
            assert all(r.ok for r in outcome)
            assert len(deliveries.wait(2000)) == 2000
            assert bind.stats().reconnects == 0
        finally:
            bind.stop()
        untrusted = SmppBind(bind_config(smsc, tls=ssl.create_default_context(), reconnect_backoff_initial=1))
        untrusted.start()
        try:
            assert not untrusted.wait_bound(0.5)
            assert untrusted.stats().bind_failures >= 1
        finally:
            untrusted.stop()


def test_abrupt_drop_while_idle_reconnects(smsc: SmscProcess, make_bind: BindFactory) -> None:
    bind = make_bind()
    assert len(smsc.drop()) == 1
    smsc.wait_for(lambda s: s.counter("binds") >= 2, timeout=3)
    assert bind.wait_bound(3)
    assert bind.stats().reconnects == 1
    assert bind.submit(request()).result(5).ok


def test_delayed_receipts_and_a_share_of_errors(smsc: SmscProcess, make_bind: BindFactory) -> None:
    smsc.configure(receipts="delayed", receipt_delay_ms=300)
    smsc.fault(ESME_RINVDSTADR, share=0.3)
    deliveries = Deliveries()
    bind = make_bind(start=False, window_size=20)
    bind.on_deliver(deliveries)
    bind.start()
    assert bind.wait_bound(5)
    outcome = results([bind.submit(request(registered_delivery=1)) for _ in range(200)])
    accepted = {r.message_id for r in outcome if r.ok}
    failed = [r for r in outcome if not r.ok]
    assert all(r.status_name == "ESME_RINVDSTADR" for r in failed)
    assert 20 <= len(failed) <= 100  # 30% of 200, loosely
    assert len(deliveries.items) < len(accepted)  # receipts lag their resps by 300 ms
    receipts = deliveries.wait(len(accepted), timeout=5)
    assert {d.receipted_message_id for d in receipts} == accepted


def test_a_full_queue_answers_retry_at_once(smsc: SmscProcess) -> None:
    bind = SmppBind(bind_config(smsc, max_queued=2))  # not started: the queue only fills
    first, second, third = (bind.submit(request()) for _ in range(3))
    assert not first.done()
    assert not second.done()
    assert third.result(0).outcome is SubmitOutcome.RETRY
    assert "queue is full" in third.result(0).detail
    bind.stop()
    assert first.result(0).outcome is SubmitOutcome.RETRY


def test_stop_from_a_deliver_callback(smsc: SmscProcess, make_bind: BindFactory) -> None:
    bind = make_bind(start=False)
    stopped = threading.Event()

    def stop_on_first(_: DeliverSm) -> None:
        bind.stop()
        stopped.set()

    bind.on_deliver(stop_on_first)
    bind.start()
    assert bind.wait_bound(5)
    smsc.mo(DEST, SOURCE, b"STOP")
    assert stopped.wait(10)
    assert bind.state is BindState.STOPPED
    assert len(smsc.pdus("unbind")) == 1


def test_ack_after_callbacks_lets_a_failing_callback_refuse(
    smsc: SmscProcess, make_bind: BindFactory
) -> None:
    bind = make_bind(start=False, ack_after_callbacks=True)
    seen: list[str | None] = []
    answered_when_called: list[int] = []

    def persist(deliver: DeliverSm) -> None:
        answered_when_called.append(len(smsc.pdus("deliver_sm_resp")))
        seen.append(deliver.receipted_message_id)
        if deliver.receipted_message_id == "bad":
            raise RuntimeError("database down")

    bind.on_deliver(persist)
    bind.start()
    assert bind.wait_bound(5)
    assert smsc.receipt("abc")["command_status"] == 0
    assert smsc.receipt("bad")["command_status"] == 0x64  # ESME_RX_T_APPN: the SMSC resends
    assert seen == ["abc", "bad"]
    assert answered_when_called == [0, 1]  # each callback ran before its deliver_sm_resp


def test_deferred_callback_answers_when_told_and_takes_the_next_meanwhile(
    smsc: SmscProcess, make_bind: BindFactory
) -> None:
    bind = make_bind(start=False, ack_after_callbacks=True)
    waiting: dict[str, DeliverAnswer] = {}
    arrived = threading.Condition()

    def persist_later(deliver: DeliverSm, answer: DeliverAnswer) -> None:
        if deliver.receipted_message_id == "raises":
            raise RuntimeError("queue full")
        with arrived:
            waiting[deliver.receipted_message_id or ""] = answer
            arrived.notify_all()

    bind.on_deliver_deferred(persist_later)
    bind.start()
    assert bind.wait_bound(5)
    statuses: dict[str, int] = {}

    def send(message_id: str) -> None:
        statuses[message_id] = smsc.receipt(message_id)["command_status"]

    senders = [threading.Thread(target=send, args=(name,)) for name in ("a", "b", "c")]
    for sender in senders:
        sender.start()
    with arrived:
        # all three handed over while none was answered: the dispatcher did not wait
        assert arrived.wait_for(lambda: len(waiting) == 3, timeout=10)
    assert smsc.pdus("deliver_sm_resp") == []
    waiting["c"](ESME_ROK)
    waiting["b"](0x64)
    waiting["b"](ESME_ROK)  # a second answer is ignored
    waiting["a"](ESME_ROK)
    for sender in senders:
        sender.join(10)
    assert statuses == {"a": ESME_ROK, "b": 0x64, "c": ESME_ROK}
    assert len(smsc.pdus("deliver_sm_resp")) == 3
    assert smsc.receipt("raises")["command_status"] == 0x64  # ESME_RX_T_APPN: the SMSC resends


def test_transient_status_is_retry_without_back_off(smsc: SmscProcess, make_bind: BindFactory) -> None:
    smsc.fault(ESME_RSYSERR, count=1)
    bind = make_bind(throttle_backoff_initial=1.0)
    first = bind.submit(request()).result(5)
    started = time.monotonic()
    assert bind.submit(request()).result(5).ok
    assert time.monotonic() - started < 0.5  # no throttling pause
    assert first.outcome is SubmitOutcome.RETRY
    assert first.status_name == "ESME_RSYSERR"
    assert bind.stats().throttled == 0
    strict = make_bind(name="strict", transient_statuses=frozenset())
    smsc.fault(ESME_RSYSERR, count=1)
    assert strict.submit(request()).result(5).outcome is SubmitOutcome.FAILED


def test_prometheus_metrics(smsc: SmscProcess, make_bind: BindFactory) -> None:
    name = "metrics-test"

    def sample(metric: str, **labels: str) -> float:
        return REGISTRY.get_sample_value(metric, {"bind": name, **labels}) or 0.0

    smsc.configure(submit_latency_ms=200)
    smsc.fault(ESME_RTHROTTLED, count=1)
    bind = make_bind(name=name, throttle_backoff_initial=0.01)
    assert sample("trunkline_smpp_bound") == 1
    futures = [bind.submit(request()) for _ in range(3)]
    smsc.wait_for(lambda s: s.counter("submits") == 3)
    assert sample("trunkline_smpp_window_in_use") >= 1
    results(futures)
    assert sample("trunkline_smpp_submits_total", outcome="accepted") == 2
    assert sample("trunkline_smpp_submits_total", outcome="retry") == 1
    assert sample("trunkline_smpp_throttles_total") == 1
    assert sample("trunkline_smpp_submit_errors_total", status="ESME_RTHROTTLED") == 1
    assert sample("trunkline_smpp_window_in_use") == 0
    smsc.mo(DEST, SOURCE, b"hi")
    assert sample("trunkline_smpp_delivers_total", kind="mo") == 1
    bind.stop()
    assert sample("trunkline_smpp_bound") == 0


def test_reconnect_backoff_grows_with_jitter_and_a_cap(smsc: SmscProcess) -> None:
    bind = SmppBind(
        bind_config(smsc, reconnect_backoff_initial=1.0, reconnect_backoff_max=8.0, reconnect_jitter=0.2)
    )
    for attempt, base in ((1, 1.0), (2, 2.0), (3, 4.0), (4, 8.0), (10, 8.0)):
        delays = [bind._backoff(attempt) for _ in range(200)]
        assert all(0.8 * base <= d <= 1.2 * base for d in delays)
        assert max(delays) - min(delays) > 0.1 * base  # jittered, not synchronised
