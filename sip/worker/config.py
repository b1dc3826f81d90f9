"""Plain configuration of one SIP worker process and of the pool (picklable, no settings import)."""

from __future__ import annotations

import enum
import shutil
from dataclasses import dataclass
from pathlib import Path

MAX_CALLS_PER_WORKER = 4  # PJSUA_MAX_CALLS of the pjsua2-python wheel
# The longest a worker sleeps in pjsua2's poll (`trunkline sip --poll-ms`). SIP traffic and the
# supervisor's wake-up datagram with each command end the poll at once (sip.worker.pool), so
# this bounds only a lost wake-up's delay, while each idle wake-up costs CPU in every worker:
# 1.33% of a core per idle worker at 10 ms, 0.80% at 20, 0.47% at 50, 0.40% at 100 (the 8 kHz
# bridge clock is the floor); docs/performance.md.
# The owner loop's longest wait in pjsua2 while nothing happens. It need not be short: a SIP
# message ends the wait, and so does a datagram (``WAKE_UP``) that the supervisor sends with each
# command and that a pjsua2 callback on another thread sends itself (sip.worker.ua); pjsua2's
# timers shorten it by themselves. Every wake-up costs the loop's Python: at 50 ms the idle
# polls of 102 workers took a third of a core (docs/performance.md, voice).
DEFAULT_POLL_MS = 200
# A SIP keep-alive (RFC 5626's CRLF ping): pjsip reads and drops it, and its poll returns.
WAKE_UP = b"\r\n\r\n"
MIN_POLL_MS, MAX_POLL_MS = 1, 200
# How often the SIP process asks for every connected call's RTP counters (`trunkline sip
# --media-poll-seconds`): one QueryMedia and one MediaStats per held call each time, 400 of each a
# second at 400 calls if it were 1 s, for a Prometheus counter scraped every 15 s or so.
DEFAULT_MEDIA_POLL_SECONDS = 5.0


NO_EDGE_HINT = (
    "SIP: one worker faces the trunk directly and holds at most {calls} calls; "
    "install Kamailio (apt-get install kamailio) and run `trunkline sip --edge kamailio --workers N` "
    "for N x {calls} calls"
)


def kamailio_available() -> bool:
    """Whether the Kamailio edge can run here (Debian's ``kamailio`` is installed)."""
    return shutil.which("kamailio") is not None or Path("/usr/sbin/kamailio").exists()


class EdgeKind(enum.StrEnum):
    """What faces the trunks: Kamailio in front of the pool, or one worker alone."""

    KAMAILIO = "kamailio"
    NONE = "none"


@dataclass(frozen=True, slots=True)
class WorkerConfig:
    """One worker: its pjsua2 endpoint's SIP port and RTP port range, on ``host``.

    ``outbound_proxy`` (a SIP URI, e.g. Kamailio's) routes the worker's own INVITEs;
    ``trust_source_header`` takes the carrier's address from the edge's X-Trunkline-Source
    header, which only the edge may set (workers listen on loopback behind it).
    """

    index: int
    host: str
    sip_port: int
    rtp_port: int
    rtp_port_range: int = 40
    max_calls: int = MAX_CALLS_PER_WORKER
    poll_ms: int = DEFAULT_POLL_MS
    outbound_proxy: str | None = None
    trust_source_header: bool = False
    log_level: int = 1


@dataclass(frozen=True, slots=True)
class PoolConfig:
    """N workers on consecutive SIP ports from ``sip_port`` and RTP ranges from ``rtp_port``."""

    workers: int
    host: str = "127.0.0.1"
    sip_port: int = 5070
    rtp_port: int = 20000
    rtp_ports_per_worker: int = 40
    poll_ms: int = DEFAULT_POLL_MS
    outbound_proxy: str | None = None
    trust_source_header: bool = False
    log_level: int = 1

    def worker(self, index: int) -> WorkerConfig:
        return WorkerConfig(
            index=index,
            host=self.host,
            sip_port=self.sip_port + index,
            rtp_port=self.rtp_port + index * self.rtp_ports_per_worker,
            rtp_port_range=self.rtp_ports_per_worker,
            poll_ms=self.poll_ms,
            outbound_proxy=self.outbound_proxy,
            trust_source_header=self.trust_source_header,
            log_level=self.log_level,
        )
