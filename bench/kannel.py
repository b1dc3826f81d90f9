"""Kannel (bearerbox + smsbox) for bench/sms_vs_kannel.py: installed when missing, configured
in a temporary directory, started, watched through bearerbox's status page, stopped.

Kannel is the Debian package ``kannel``; :func:`ensure_kannel` installs it with apt-get as
scripts/bootstrap.sh's ``ensure_apt`` does (bench/apt.py). Nothing of Kannel's is
kept in the repository: its configuration is written by :func:`kannel_config` for each run.
"""

from __future__ import annotations

import re
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from bench.apt import ensure_apt
from tests.e2e.helpers import free_port

PASSWORD = "bench"  # admin, status and sendsms-user password of a box bound to 127.0.0.1 only
SENDSMS_USER = "bench"


def ensure_kannel() -> None:
    """Install the Debian package ``kannel`` unless ``bearerbox`` and ``smsbox`` are there."""
    # The package's init script may start a system Kannel; the bench runs its own boxes on
    # free ports, so that one is left alone (its ports are not ours).
    ensure_apt("kannel", "bearerbox", "smsbox")


@dataclass(frozen=True, slots=True)
class KannelPorts:
    admin: int  # bearerbox's HTTP admin/status page
    smsbox: int  # bearerbox <-> smsbox
    sendsms: int  # smsbox's sendsms HTTP interface


def kannel_config(
    directory: Path,
    ports: KannelPorts,
    smsc_host: str,
    smsc_port: int,
    system_id: str,
    password: str,
    window: int,
) -> str:
    """kannel.conf for one bearerbox with one SMPP transceiver bind and one smsbox.

    ``window`` is ``max-pending-submits`` (the bind's window). Reports are kept in bearerbox's
    memory (``dlr-storage = internal``); the message store is a file (Kannel's default kind),
    which Kannel writes without fsync. Logs at level 4 (errors only), no access logs.
    """
    return f"""group = core
admin-port = {ports.admin}
admin-password = {PASSWORD}
status-password = {PASSWORD}
admin-allow-ip = "127.0.0.1"
smsbox-port = {ports.smsbox}
box-allow-ip = "127.0.0.1"
log-file = "{directory}/bearerbox.log"
log-level = 4
dlr-storage = internal
store-type = file
store-location = "{directory}/kannel.store"

group = smsc
smsc = smpp
smsc-id = bench
host = {smsc_host}
port = {smsc_port}
receive-port = 0
transceiver-mode = true
smsc-username = "{system_id}"
smsc-password = "{password}"
system-type = ""
max-pending-submits = {window}
log-level = 4

group = smsbox
bearerbox-host = 127.0.0.1
bearerbox-port = {ports.smsbox}
sendsms-port = {ports.sendsms}
sendsms-interface = 127.0.0.1
log-file = "{directory}/smsbox.log"
log-level = 4

group = sendsms-user
username = {SENDSMS_USER}
password = {PASSWORD}
max-messages = 1

group = sms-service
keyword = default
text = "unused"
catch-all = true
"""


@dataclass(frozen=True, slots=True)
class KannelStatus:
    """What bearerbox's status.txt says about messages, reports and the bind."""

    sms_received: int  # mobile-originated, from the SMSC
    sms_sent: int  # submitted to the SMSC and answered
    dlr_received: int  # delivery reports from the SMSC
    dlr_sent: int  # delivery reports passed on to smsbox
    dlr_queued: int  # reports still waited for (in memory)
    smsc_online: bool


_NUMBERS = {
    "sms": re.compile(r"^SMS: received (\d+) \(\d+ queued\), sent (\d+)", re.MULTILINE),
    "dlr": re.compile(r"^DLR: received (\d+), sent (\d+)", re.MULTILINE),
    "dlr_queued": re.compile(r"^DLR: (\d+) queued", re.MULTILINE),
}


def parse_status(text: str) -> KannelStatus:
    """Parse bearerbox's ``/status.txt``; ValueError when a figure is missing (another
    version's layout, or an error page)."""
    found = {name: pattern.search(text) for name, pattern in _NUMBERS.items()}
    missing = [name for name, match in found.items() if match is None]
    if missing:
        raise ValueError(f"not a bearerbox status page (no {', '.join(missing)} line): {text[:200]!r}")
    sms, dlr, queued = found["sms"], found["dlr"], found["dlr_queued"]
    assert sms is not None
    assert dlr is not None
    assert queued is not None
    connections = text.partition("SMSC connections:")[2]
    return KannelStatus(
        sms_received=int(sms.group(1)),
        sms_sent=int(sms.group(2)),
        dlr_received=int(dlr.group(1)),
        dlr_sent=int(dlr.group(2)),
        dlr_queued=int(queued.group(1)),
        smsc_online=re.search(r"\(online \d+s", connections) is not None,
    )


@dataclass
class Kannel:
    bearerbox: subprocess.Popen[bytes]
    smsbox: subprocess.Popen[bytes]
    ports: KannelPorts
    directory: Path

    def status(self) -> KannelStatus:
        url = f"http://127.0.0.1:{self.ports.admin}/status.txt?password={PASSWORD}"
        with urllib.request.urlopen(url, timeout=10) as answer:
            return parse_status(answer.read().decode(errors="replace"))

    def sendsms_url(self) -> str:
        return f"http://127.0.0.1:{self.ports.sendsms}"


@contextmanager
def running_kannel(
    directory: Path, smsc_host: str, smsc_port: int, system_id: str, password: str, window: int
) -> Iterator[Kannel]:
    """bearerbox and smsbox up, the bind online and smsbox connected; stopped afterwards."""
    ports = KannelPorts(free_port(), free_port(), free_port())
    config = directory / "kannel.conf"
    config.write_text(kannel_config(directory, ports, smsc_host, smsc_port, system_id, password, window))
    log = (directory / "boxes.out").open("wb")
    boxes: list[subprocess.Popen[bytes]] = []
    try:
        boxes.append(subprocess.Popen(["bearerbox", str(config)], stdout=log, stderr=subprocess.STDOUT))
        _wait_online(ports, boxes[0])
        boxes.append(subprocess.Popen(["smsbox", str(config)], stdout=log, stderr=subprocess.STDOUT))
        kannel = Kannel(boxes[0], boxes[1], ports, directory)
        deadline = time.monotonic() + 30
        while not _sendsms_answers(ports.sendsms):
            if time.monotonic() > deadline or boxes[1].poll() is not None:
                raise RuntimeError(f"smsbox did not come up; see {directory}/smsbox.log")
            time.sleep(0.1)
        yield kannel
    finally:
        for box in reversed(boxes):  # smsbox first, then bearerbox
            if box.poll() is None:
                box.terminate()
                try:
                    box.wait(15)
                except subprocess.TimeoutExpired:
                    box.kill()
                    box.wait(5)
        log.close()


def _wait_online(ports: KannelPorts, bearerbox: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    url = f"http://127.0.0.1:{ports.admin}/status.txt?password={PASSWORD}"
    while True:
        if bearerbox.poll() is not None:
            raise RuntimeError(f"bearerbox exited with {bearerbox.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2) as answer:
                status = parse_status(answer.read().decode(errors="replace"))
            if status.smsc_online:
                return
        except (OSError, ValueError):
            pass
        if time.monotonic() > deadline:
            raise RuntimeError("bearerbox's SMSC bind did not come online within 30 s")
        time.sleep(0.1)


def _sendsms_answers(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=1):
            return True
    except urllib.error.HTTPError:
        return True  # smsbox answers (404 for an unknown path): it is listening
    except OSError:
        return False
