"""The sockets of a bind: connecting and binding them with smpplib, then writing to them ourselves.

smpplib's Client provides the connection (TLS) and the bind handshake. Framing, dispatch and the
window are ours (``sms.esme``), because smpplib's reader drops the octets of a partly read PDU on
a socket timeout, it has no window, its sequence generator is not thread-safe and its
``listen()`` answers neither data_sm nor the SMSC's unbind; and so is TLS that tolerates a
reader and a writer thread (``sms.tlsstream``), because an ``ssl.SSLSocket`` breaks when one
thread reads while another writes.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
from typing import Any, Final

import smpplib.client
import smpplib.consts
import smpplib.exceptions

from sms.bind_types import BindConfig, SessionRole
from sms.esme import Esme, Link
from sms.status import command_status_name, describe_command_status
from sms.tlsstream import TlsStream

log = logging.getLogger("trunkline.smpp")

SMPPLIB_ERRORS: Final = (smpplib.exceptions.ConnectionError, smpplib.exceptions.PDUError)
Stream = socket.socket | TlsStream  # what a session reads and writes


class BindRejected(Exception):
    """The SMSC answered the bind with an error status (wrong credentials, ...)."""

    def __init__(self, status: int) -> None:
        super().__init__(f"bind rejected: {describe_command_status(status)}")
        self.status = status


class LockedSequence:
    """The core's sequence numbers for smpplib's bind PDUs, taken under the bind's lock: the
    supervisor binds while the sender and reader use the same series."""

    def __init__(self, esme: Esme[Any], lock: threading.Condition) -> None:
        self._esme = esme
        self._lock = lock

    @property
    def sequence(self) -> int:
        return self._esme.sequence

    def next_sequence(self) -> int:
        with self._lock:
            return self._esme.next_sequence()


class SmppClient(smpplib.client.Client):  # type: ignore[misc]
    """smpplib's client with TCP_NODELAY and TLS server-name checking on its socket."""

    def __init__(self, *args: Any, tcp_nodelay: bool = True, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.tcp_nodelay = tcp_nodelay

    def _create_socket(self) -> Stream:
        raw = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1 if self.tcp_nodelay else 0)
        raw.settimeout(self.timeout)
        if self._ssl_context is None:
            return raw
        # Not smpplib's ssl_context.wrap_socket(raw): it passes no server_hostname (a default
        # context refuses that), and an SSLSocket must not be read and written concurrently.
        return TlsStream(raw, self._ssl_context, server_hostname=self.host)

    @property
    def sock(self) -> Stream:
        sock: Stream | None = getattr(self, "_socket", None)
        if sock is None:
            raise ConnectionError("not connected")
        return sock

    def close_socket(self) -> None:
        sock: Stream | None = getattr(self, "_socket", None)
        self._socket = None
        self.state = smpplib.consts.SMPP_CLIENT_STATE_CLOSED
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()


class Session(Link):
    """One bound socket: its protocol state (a ``Link``), its write lock and its reader thread."""

    def __init__(self, role: SessionRole, client: SmppClient) -> None:
        super().__init__(role)
        self.client = client
        self.sock = client.sock
        self.write_lock = threading.Lock()
        self.alive = True
        self.reason = ""
        self.unbind_resp = threading.Event()
        self.reader: threading.Thread | None = None

    def write(self, data: bytes) -> None:
        with self.write_lock:
            self.sock.sendall(data)

    def mark_dead(self, reason: str) -> bool:
        """Record why the session ended; True the first time."""
        if not self.alive:
            return False
        self.alive = False
        self.reason = reason
        return True

    def close(self) -> None:
        self.mark_dead(self.reason or "closed")
        self.client.close_socket()


def open_sessions(config: BindConfig, sequence: LockedSequence) -> list[Session]:
    """Connect and bind every session the bind's mode needs; all of them, or none (raises)."""
    sessions: list[Session] = []
    try:
        for role in config.mode.roles:
            sessions.append(open_session(config, role, sequence))
    except BaseException:
        for session in sessions:
            session.client.close_socket()
        raise
    return sessions


def open_session(config: BindConfig, role: SessionRole, sequence: LockedSequence) -> Session:
    client = SmppClient(
        config.host,
        config.port,
        timeout=config.connect_timeout,
        sequence_generator=sequence,
        ssl_context=config.tls,
        allow_unknown_opt_params=True,
        logger_name=f"trunkline.smpp.{config.name}.{role}",
        tcp_nodelay=config.tcp_nodelay,
    )
    try:
        client.connect()
        bind = getattr(client, f"bind_{role}")
        bind(
            system_id=config.system_id,
            password=config.password,
            system_type=config.system_type,
            addr_ton=config.addr_ton,
            addr_npi=config.addr_npi,
            address_range=config.address_range,
        )
    except smpplib.exceptions.PDUError as exc:
        client.close_socket()
        if len(exc.args) > 1 and isinstance(exc.args[1], int):
            raise BindRejected(exc.args[1]) from exc
        raise
    except BaseException:
        client.close_socket()
        raise
    client.sock.settimeout(config.io_timeout)
    log.info("smpp %s: bound as %s to %s:%d", config.name, role, config.host, config.port)
    return Session(role, client)


def bind_error(exc: BaseException) -> str:
    """The last error an operator is shown for a failed bind attempt: the SMSC's status name
    (``ESME_RBINDFAIL``) when it refused the bind, else what went wrong."""
    if isinstance(exc, BindRejected):
        return command_status_name(exc.status)
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc) or type(exc).__name__
