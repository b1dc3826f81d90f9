"""TLS over a plain socket that one thread may read while another writes.

An ``ssl.SSLSocket`` wraps one OpenSSL ``SSL`` object, and CPython releases the GIL around
``SSL_read`` and ``SSL_write`` without a lock of its own, so a reader thread blocked in ``recv``
and a writer thread in ``sendall`` use that object at the same time, which OpenSSL does not
allow: under load the stream breaks (seen here as the SMSC dropping the link with EPIPE after
a corrupt record). This class keeps TLS in memory (``ssl.SSLObject`` on two ``MemoryBIO``s)
behind a lock that is never held during network I/O, and does the network I/O on the plain
socket, which is safe to read and write from two threads.

It has the few socket methods smpplib's Client and the bind use: connect, sendall, recv,
settimeout, setsockopt/getsockopt, shutdown, close.
"""

from __future__ import annotations

import socket
import ssl
import threading
from typing import Any

READ_SIZE = 65536


class TlsStream:
    def __init__(self, raw: socket.socket, context: ssl.SSLContext, server_hostname: str) -> None:
        self._raw = raw
        self._incoming = ssl.MemoryBIO()
        self._outgoing = ssl.MemoryBIO()
        self._tls = context.wrap_bio(self._incoming, self._outgoing, server_hostname=server_hostname)
        self._tls_lock = threading.Lock()  # the SSLObject and its BIOs; never held during I/O
        self._send_lock = threading.Lock()  # keeps TLS records on the wire in the order made

    # the socket surface ---------------------------------------------------------------------

    def connect(self, address: tuple[str, int]) -> None:
        """Connect the TCP socket and complete the TLS handshake (within the socket timeout)."""
        self._raw.connect(address)
        while True:
            with self._tls_lock:
                try:
                    self._tls.do_handshake()
                    done = True
                except ssl.SSLWantReadError:
                    done = False
            self._flush()
            if done:
                return
            data = self._raw.recv(READ_SIZE)
            if not data:
                raise ConnectionResetError("connection closed during the TLS handshake")
            with self._tls_lock:
                self._incoming.write(data)

    def sendall(self, data: bytes) -> None:
        with self._send_lock:
            with self._tls_lock:
                self._tls.write(data)
                records = self._outgoing.read()
            self._raw.sendall(records)

    def recv(self, size: int) -> bytes:
        """Up to ``size`` plaintext octets; b"" at the end of the stream; raises on timeout."""
        while True:
            with self._tls_lock:
                try:
                    return self._tls.read(size)
                except ssl.SSLWantReadError:
                    pending = self._outgoing.pending
                except (ssl.SSLZeroReturnError, ssl.SSLEOFError):
                    return b""
            if pending:  # e.g. the answer to a TLS 1.3 KeyUpdate
                self._flush()
            data = self._raw.recv(READ_SIZE)
            with self._tls_lock:
                if data:
                    self._incoming.write(data)
                else:
                    self._incoming.write_eof()

    def _flush(self) -> None:
        with self._send_lock:
            with self._tls_lock:
                records = self._outgoing.read()
            if records:
                self._raw.sendall(records)

    def settimeout(self, timeout: float | None) -> None:
        self._raw.settimeout(timeout)

    def setsockopt(self, level: int, option: int, value: int) -> None:
        self._raw.setsockopt(level, option, value)

    def getsockopt(self, level: int, option: int) -> int:
        return self._raw.getsockopt(level, option)

    def shutdown(self, how: int) -> None:
        self._raw.shutdown(how)

    def close(self) -> None:
        self._raw.close()

    # TLS details ----------------------------------------------------------------------------

    def version(self) -> str | None:
        with self._tls_lock:
            return self._tls.version()

    def getpeercert(self) -> dict[str, Any] | None:
        with self._tls_lock:
            cert: dict[str, Any] | None = self._tls.getpeercert()
            return cert
