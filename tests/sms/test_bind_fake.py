"""sms.bind.SmppBind against a scripted Python fake, for what node-smpp will not send.

The fake accepts one connection, answers the bind, then lets the test write raw octets and read
what the bind wrote back: unknown commands, malformed and vendor-TLV deliveries, generic_nack,
stray resps, PDUs split into single octets.
"""

from __future__ import annotations

import logging
import socket
import struct
import threading
from collections.abc import Iterator

import pytest

from sms import bind as bind_module
from sms import bind_session, pdu
from sms.bind import SmppBind
from sms.bind_types import BindConfig, SubmitOutcome, SubmitRequest
from sms.pdu import DeliverSm


class FakeSmsc:
    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.conn: socket.socket | None = None
        self.buffer = bytearray()
        self.accepted = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        conn, _ = self.listener.accept()
        conn.settimeout(5)
        self.conn = conn
        bind = self.read()
        self.send(pdu.build_pdu(bind.command_id | pdu.RESPONSE_BIT, bind.sequence, body=b"FAKE\x00"))
        self.accepted.set()

    def read(self) -> pdu.Header:
        return pdu.parse_header(self.read_frame())

    def read_frame(self) -> bytes:
        assert self.conn is not None
        while True:
            frames = list(pdu.split_frames(self.buffer))
            if frames:
                (frame, *rest) = frames
                # keep anything after the first frame for the next read
                self.buffer[:0] = b"".join(rest)
                return frame
            chunk = self.conn.recv(65536)
            assert chunk, "the bind closed the connection"
            self.buffer += chunk

    def read_until(self, command_id: int) -> tuple[pdu.Header, bytes]:
        while True:
            frame = self.read_frame()
            header = pdu.parse_header(frame)
            if header.command_id == command_id:
                return header, frame

    def send(self, data: bytes, one_octet_at_a_time: bool = False) -> None:
        assert self.conn is not None
        if one_octet_at_a_time:
            for octet in data:
                self.conn.sendall(bytes([octet]))
        else:
            self.conn.sendall(data)

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
        self.listener.close()


@pytest.fixture
def fake() -> Iterator[tuple[FakeSmsc, SmppBind, list[DeliverSm]]]:
    smsc = FakeSmsc()
    bind = SmppBind(
        BindConfig(
            name="fake",
            host="127.0.0.1",
            port=smsc.port,
            system_id="u",
            password="p",
            reconnect_backoff_initial=5.0,  # one connection only: the fake accepts once
            drain_timeout=0.2,
            unbind_timeout=0.2,
        )
    )
    delivered: list[DeliverSm] = []
    bind.on_deliver(delivered.append)
    bind.start()
    assert smsc.accepted.wait(5)
    assert bind.wait_bound(5)
    yield smsc, bind, delivered
    bind.stop(timeout=3)
    smsc.close()


def deliver_sm_body(short_message: bytes, esm_class: int = 0) -> bytes:
    return (
        b"\x00"  # service_type
        + b"\x01\x01447700900123\x00"
        + b"\x01\x0115550001111\x00"
        + bytes([esm_class, 0, 0])  # esm_class, protocol_id, priority_flag
        + b"\x00\x00"  # schedule_delivery_time, validity_period
        + b"\x00\x00\x00\x00"  # registered_delivery, replace_if_present, data_coding, sm_default_msg_id
        + bytes([len(short_message)])
        + short_message
    )


def test_unknown_command_from_the_smsc_gets_generic_nack(
    fake: tuple[FakeSmsc, SmppBind, list[DeliverSm]],
) -> None:
    smsc, bind, _ = fake
    smsc.send(pdu.build_pdu(0x00000111, 77, body=b"\x00" * 8))  # broadcast_sm: not for an ESME
    header, _ = smsc.read_until(pdu.GENERIC_NACK)
    assert (header.sequence, header.status) == (77, pdu.ESME_RINVCMDID)
    assert bind.stats().reconnects == 0


def test_malformed_deliver_sm_is_refused_permanently_and_the_bind_stays_up(
    fake: tuple[FakeSmsc, SmppBind, list[DeliverSm]],
) -> None:
    smsc, bind, delivered = fake
    smsc.send(pdu.build_pdu(pdu.DELIVER_SM, 5, body=b"\x00\x01\x01123"))  # ends inside source_addr
    header, _ = smsc.read_until(pdu.DELIVER_SM_RESP)
    assert (header.sequence, header.status) == (5, pdu.ESME_RX_P_APPN)
    assert not delivered
    smsc.send(pdu.build_pdu(pdu.ENQUIRE_LINK, 6))
    header, _ = smsc.read_until(pdu.ENQUIRE_LINK_RESP)
    assert header.sequence == 6
    assert bind.stats().reconnects == 0


def test_vendor_tlvs_and_octet_by_octet_delivery(fake: tuple[FakeSmsc, SmppBind, list[DeliverSm]]) -> None:
    smsc, _, delivered = fake
    body = deliver_sm_body(b"id:9 stat:DELIVRD", esm_class=0x04)
    body += struct.pack(">HH", 0x001E, 2) + b"9\x00"  # receipted_message_id
    body += struct.pack(">HHB", 0x0427, 1, 2)  # message_state DELIVERED
    body += struct.pack(">HH", 0x1403, 4) + b"\xde\xad\xbe\xef"  # vendor specific
    smsc.send(pdu.build_pdu(pdu.DELIVER_SM, 9, body=body), one_octet_at_a_time=True)
    header, frame = smsc.read_until(pdu.DELIVER_SM_RESP)
    assert (header.sequence, header.status, frame[16:]) == (9, 0, b"\x00")
    for _ in range(100):
        if delivered:
            break
        threading.Event().wait(0.02)
    (receipt,) = delivered
    assert receipt.receipted_message_id == "9"
    assert receipt.message_state == 2
    assert receipt.tlvs["0x1403"] == b"\xde\xad\xbe\xef"


def test_generic_nack_for_a_submit_fails_it_with_the_status(
    fake: tuple[FakeSmsc, SmppBind, list[DeliverSm]],
) -> None:
    smsc, bind, _ = fake
    future = bind.submit(SubmitRequest("1", "2", b"x"))
    header, _ = smsc.read_until(pdu.SUBMIT_SM)
    smsc.send(pdu.build_pdu(pdu.SUBMIT_SM_RESP, header.sequence + 1000, body=b"stray\x00"))  # ignored
    smsc.send(pdu.build_pdu(pdu.GENERIC_NACK, header.sequence, status=pdu.ESME_RINVCMDLEN))
    result = future.result(5)
    assert result.outcome is SubmitOutcome.FAILED
    assert result.status_name == "ESME_RINVCMDLEN"
    assert result.detail.startswith("generic_nack ")


def test_resps_in_any_order_on_one_segment(fake: tuple[FakeSmsc, SmppBind, list[DeliverSm]]) -> None:
    smsc, bind, _ = fake
    futures = [bind.submit(SubmitRequest("1", "2", bytes([i]))) for i in range(5)]
    sequences = [smsc.read_until(pdu.SUBMIT_SM)[0].sequence for _ in range(5)]
    burst = b"".join(
        pdu.build_pdu(pdu.SUBMIT_SM_RESP, sequence, body=f"id{sequence}\x00".encode())
        for sequence in reversed(sequences)
    )
    smsc.send(burst)
    assert [f.result(5).message_id for f in futures] == [f"id{s}" for s in sequences]


def test_unbind_from_the_smsc_is_answered_before_the_close(
    fake: tuple[FakeSmsc, SmppBind, list[DeliverSm]],
) -> None:
    smsc, bind, _ = fake
    smsc.send(pdu.build_pdu(pdu.UNBIND, 31))
    header, _ = smsc.read_until(pdu.UNBIND_RESP)
    assert (header.sequence, header.status) == (31, 0)
    assert smsc.conn is not None
    assert smsc.conn.recv(1) == b""  # then the bind closes its side
    for _ in range(100):
        if bind.stats().reconnects:
            break
        threading.Event().wait(0.02)
    assert bind.stats().reconnects == 1


def test_queued_submits_go_out_in_bursts_within_the_window(
    fake: tuple[FakeSmsc, SmppBind, list[DeliverSm]], monkeypatch: pytest.MonkeyPatch
) -> None:
    smsc, bind, _ = fake
    submits_per_write: list[int] = []
    original_write = bind_session.Session.write

    def counting_write(session: bind_session.Session, data: bytes) -> None:
        submits_per_write.append(sum(1 for _ in pdu.split_frames(bytearray(data))))
        original_write(session, data)

    monkeypatch.setattr(bind_session.Session, "write", counting_write)
    total, window = 200, bind.config.window_size
    futures = [bind.submit(SubmitRequest("1", "2", bytes([i % 256]))) for i in range(total)]
    answered = 0
    while answered < total:
        # take a full window, then free it at once: the next window goes out in few writes
        sequences = [smsc.read_until(pdu.SUBMIT_SM)[0].sequence for _ in range(min(window, total - answered))]
        smsc.send(
            b"".join(
                pdu.build_pdu(pdu.SUBMIT_SM_RESP, seq, body=f"id{seq}\x00".encode()) for seq in sequences
            )
        )
        answered += len(sequences)
    outcomes = [future.result(10) for future in futures]
    assert all(outcome.outcome is SubmitOutcome.ACCEPTED for outcome in outcomes)
    assert sum(submits_per_write) == total
    assert max(submits_per_write) <= window  # never past the window
    assert len(submits_per_write) < total  # some writes carried several submits


def test_the_smsc_closing_on_our_unbind_is_not_logged_as_its_doing(
    fake: tuple[FakeSmsc, SmppBind, list[DeliverSm]], monkeypatch: pytest.MonkeyPatch
) -> None:
    smsc, bind, _ = fake
    logged: list[tuple[int, str]] = []
    monkeypatch.setattr(
        bind_module.log, "log", lambda level, message, *args: logged.append((level, message % args))
    )

    def close_on_unbind() -> None:  # no unbind_resp: the bind sees the close while it waits
        smsc.read_until(pdu.UNBIND)
        assert smsc.conn is not None
        smsc.conn.close()

    closer = threading.Thread(target=close_on_unbind)
    closer.start()
    bind.stop(timeout=3)
    closer.join(5)
    lost = [(level, message) for level, message in logged if "session lost" in message]
    assert lost, logged
    assert all(level == logging.INFO for level, _ in lost), lost
    assert all("closed by the SMSC" not in message for _, message in lost), lost
