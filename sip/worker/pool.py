"""The supervisor of N SIP worker processes: start, route commands, collect events, replace the dead.

Each worker is a fresh interpreter (``python -m sip.worker.process``, so it imports only the
worker and pjsua2, not the parent's modules) with one socketpair, wrapped as a
``multiprocessing`` Connection carrying ``wire.encode`` bytes; its pidfd tells its death.
One reader thread waits on every pipe and every pidfd (one epoll set kept across wake-ups:
building a fresh one from 2N descriptors on each wake-up cost 0.3 ms at 100 workers): it
forwards events to ``events`` (a queue of ``WorkerEvent``), keeps the ``CallLedger`` and, when
a worker dies, reports its calls ended ("worker died") and starts a replacement on the same
ports. ``send`` routes a command to the worker holding its call id, then wakes that worker.
A worker sleeps in pjsua2's poll, which returns early only for its own sockets: a CRLF
keep-alive datagram (RFC 5626; pjsip drops it) to its SIP port ends the poll at once, so the
worker reads the command without waiting out its idle poll period.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import os
import queue
import selectors
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import Connection

from sip.worker.config import WAKE_UP, PoolConfig
from sip.worker.edge_writer import EdgeWriter
from sip.worker.ledger import CallLedger, EdgeState
from sip.worker.messages import (
    Command,
    CommandFailed,
    Event,
    MakeCall,
    Register,
    Shutdown,
    Unregister,
    WorkerReady,
)
from sip.worker.status import WorkerStatus
from sip.worker.wire import MessageError, decode, encode

log = logging.getLogger(__name__)

# Start-up: N fresh interpreters importing pjsua2 at once; 102 workers took 14.9 s to become
# ready on a loaded 2-core machine, so the wait grows with the pool.
READY_TIMEOUT = 15.0
READY_TIMEOUT_PER_WORKER = 0.3
HEALTHY_AFTER = 10.0  # seconds up after which a death is not counted as a crash loop
BACKOFF_FIRST = 0.5
BACKOFF_MAX = 30.0
NO_CAPACITY = "no worker has a free call slot"
NO_ROOM_BESIDE = "no free call slot beside"
REGISTRAR_WORKER = 0  # the worker that keeps the trunks' registrations


@dataclass(frozen=True, slots=True)
class WorkerEvent:
    """An event and the index of the worker it came from (or is about, for 'worker died')."""

    worker: int
    event: Event


class _Handle:
    def __init__(self, index: int, process: subprocess.Popen[bytes], conn: Connection) -> None:
        self.index = index
        self.process = process
        self.conn = conn
        self.lock = threading.Lock()
        self.pid: int | None = process.pid
        self.sentinel = os.pidfd_open(process.pid)  # readable once the process has exited
        self.dead = False
        self.ready_at: float | None = None

    def is_alive(self) -> bool:
        return self.process.poll() is None

    def close(self) -> None:
        self.conn.close()
        with contextlib.suppress(OSError):
            os.close(self.sentinel)


EdgeHook = Callable[[EdgeState], None]


class WorkerPool:
    """N worker processes on ``config``'s ports; thread-safe ``send``; events on ``events``."""

    def __init__(
        self,
        config: PoolConfig,
        edge: EdgeHook | None = None,
        end_calls: Callable[[int], object] | None = None,
    ) -> None:
        """``edge`` gets each worker's active/inactive change; ``end_calls(worker)`` is called
        when a worker died, to end its calls toward the carriers (Kamailio's dialogs)."""
        self.config = config
        self._end_calls = end_calls
        self.events: queue.Queue[WorkerEvent] = queue.Queue()
        self._edge = EdgeWriter(edge) if edge is not None else None
        self._ledger = CallLedger(config.workers)
        self._lock = threading.Lock()  # guards the ledger and the handles
        self._handles: list[_Handle] = []
        self._restarts = [0] * config.workers
        self._quick_deaths = [0] * config.workers  # consecutive deaths soon after start
        self._respawn_at: dict[int, float] = {}
        self._starting = True
        self._start_failure: str | None = None
        self._stopping = False
        self._reader: threading.Thread | None = None
        self._selector = selectors.DefaultSelector()  # the reader thread's own
        self._ready = [threading.Event() for _ in range(config.workers)]
        family = socket.AF_INET6 if ":" in config.host else socket.AF_INET
        self._waker = socket.socket(family, socket.SOCK_DGRAM)
        self._waker.setblocking(False)

    # lifecycle --------------------------------------------------------------------------------

    def start(self, timeout: float | None = None) -> None:
        """Start every worker and wait until all report ready; a worker that exits first fails it.

        ``timeout`` defaults to READY_TIMEOUT plus READY_TIMEOUT_PER_WORKER per worker.
        """
        if timeout is None:
            timeout = READY_TIMEOUT + READY_TIMEOUT_PER_WORKER * self.config.workers
        if self._edge is not None:
            self._edge.start()
        self._handles = [self._spawn(i) for i in range(self.config.workers)]
        self._reader = threading.Thread(target=self._read_loop, name="sip-pool-reader", daemon=True)
        self._reader.start()
        deadline = time.monotonic() + timeout
        try:
            while not all(ready.is_set() for ready in self._ready):
                if self._start_failure is not None:
                    raise RuntimeError(self._start_failure)
                if time.monotonic() > deadline:
                    late = [i for i, ready in enumerate(self._ready) if not ready.is_set()]
                    raise TimeoutError(f"SIP workers {late} did not start within {timeout:.0f}s")
                time.sleep(0.02)
        except BaseException:
            self.stop()
            raise
        self._starting = False

    def stop(self, timeout: float = 5.0) -> None:
        """Ask every worker to hang up and exit; kill those that do not. Idempotent."""
        if self._stopping:
            return
        self._stopping = True
        for handle in self._handles:
            self._write(handle, Shutdown())
        deadline = time.monotonic() + timeout
        for handle in self._handles:
            try:
                handle.process.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                handle.process.kill()
                handle.process.wait(2)
        if self._reader is not None:
            self._reader.join(2)
        if self._edge is not None:
            self._edge.close()
        for handle in self._handles:
            handle.close()
        self._waker.close()

    def edge_settled(self, timeout: float) -> bool:
        """Whether the edge has every worker's latest state within ``timeout`` seconds."""
        return self._edge is None or self._edge.settled(timeout)

    def wait_ready(self, worker: int, timeout: float) -> bool:
        return self._ready[worker].wait(timeout)

    # commands ---------------------------------------------------------------------------------

    def send(self, command: Command) -> int | None:
        """Route a command to the worker holding its call (MakeCall: the least loaded worker;
        Register/Unregister: worker 0).

        Returns the worker index, or None after queueing a ``CommandFailed`` event (unknown
        call, no capacity, worker gone).
        """
        call_id = getattr(command, "call_id", "")
        with self._lock:
            if isinstance(command, MakeCall):
                if command.bridge_with:  # the leg must share the conference bridge of its call
                    worker = self._ledger.place_beside(call_id, command.bridge_with)
                    reason = self._no_room_beside(command.bridge_with)
                else:
                    worker, reason = self._ledger.place(call_id), NO_CAPACITY
                edge = self._ledger.placed(worker, call_id) if worker is not None else []
            elif isinstance(command, Register | Unregister):
                # one worker keeps every registration (it needs no call slot); its replacement
                # gets them again from the control plane on its WorkerReady
                worker, edge, reason = REGISTRAR_WORKER, [], "no registrar worker"
            else:
                worker, edge, reason = self._ledger.holder(call_id), [], "no such call"
            handle = self._handles[worker] if worker is not None else None
        self._apply_edge(edge)
        if worker is None or handle is None or not self._write(handle, command):
            failed = CommandFailed(
                call_id, type(command).__name__, reason if worker is None else "worker gone"
            )
            self.events.put(WorkerEvent(-1 if worker is None else worker, failed))
            return None
        return worker

    def _no_room_beside(self, call_id: str) -> str:
        if self._ledger.holder(call_id) is None:
            return f"no such call {call_id}"
        return f"{NO_ROOM_BESIDE} {call_id}"

    def holder(self, call_id: str) -> int | None:
        with self._lock:
            return self._ledger.holder(call_id)

    def status(self) -> list[WorkerStatus]:
        """Each worker's pid, calls and free capacity (for `trunkline sip status`)."""
        with self._lock:
            return [
                WorkerStatus(
                    index=i,
                    pid=h.pid,
                    sip_port=self.config.sip_port + i,
                    up=self._ledger.is_up(i),
                    calls=len(self._ledger.calls(i)),
                    free=self._ledger.free(i),
                    restarts=self._restarts[i],
                )
                for i, h in enumerate(self._handles)
            ]

    def pid(self, worker: int) -> int | None:
        return self._handles[worker].pid

    # internals --------------------------------------------------------------------------------

    def _spawn(self, index: int) -> _Handle:
        parent, child = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        config = json.dumps(dataclasses.asdict(self.config.worker(index)))
        process = subprocess.Popen(  # noqa: S603 - this interpreter, our module
            [sys.executable, "-m", "sip.worker.process", str(child.fileno()), config],
            pass_fds=(child.fileno(),),
            stdin=subprocess.DEVNULL,
        )
        child.close()
        return _Handle(index, process, Connection(parent.detach()))

    def _write(self, handle: _Handle, command: Command) -> bool:
        try:
            with handle.lock:
                handle.conn.send_bytes(encode(command))
        except (OSError, ValueError):
            return False
        self._wake(handle.index)
        return True

    def _wake(self, index: int) -> None:
        """End the worker's current poll (see the module docstring); a lost datagram only
        means the command waits for the poll period."""
        with contextlib.suppress(OSError):
            self._waker.sendto(WAKE_UP, (self.config.host, self.config.worker(index).sip_port))

    def _watch(self, handle: _Handle) -> None:
        """Add a worker's pipe and pidfd to the reader's epoll set (reader thread only)."""
        self._selector.register(handle.conn.fileno(), selectors.EVENT_READ, (False, handle))
        self._selector.register(handle.sentinel, selectors.EVENT_READ, (True, handle))

    def _unwatch(self, handle: _Handle) -> None:
        for fd in (handle.conn.fileno(), handle.sentinel):
            with contextlib.suppress(KeyError, ValueError, OSError):
                self._selector.unregister(fd)

    def _read_loop(self) -> None:
        for handle in self._handles:
            self._watch(handle)
        try:
            while not self._stopping or any(h.is_alive() for h in self._handles):
                self._respawn_due()
                if not self._selector.get_map():
                    time.sleep(0.05)
                    continue
                ready = [key.data for key, _ in self._selector.select(timeout=0.2)]
                for is_death, handle in ready:
                    if not is_death:  # pipes first: a dead worker's last events count
                        self._drain(handle.index, handle.conn)
                for is_death, handle in ready:
                    if is_death:
                        self._on_death(handle.index, handle)
        finally:
            self._selector.close()

    def _respawn_due(self) -> None:
        now = time.monotonic()
        for index, when in list(self._respawn_at.items()):
            if when <= now and not self._stopping:
                del self._respawn_at[index]
                replacement = self._spawn(index)
                with self._lock:
                    self._handles[index] = replacement
                self._watch(replacement)

    def _drain(self, index: int, conn: Connection) -> None:
        try:
            while conn.poll(0):
                self._on_message(index, conn.recv_bytes())
        except (EOFError, OSError):
            pass

    def _on_message(self, index: int, data: bytes) -> None:
        try:
            event = decode(data)
        except MessageError:
            log.warning("worker %d sent an unreadable message", index)
            return
        if isinstance(event, WorkerReady):
            with self._lock:
                self._handles[index].pid = event.pid
                self._handles[index].ready_at = time.monotonic()
                edge = self._ledger.worker_ready(index)
            self._apply_edge(edge)
            self._ready[index].set()
        else:
            with self._lock:
                edge = self._ledger.on_event(index, event)  # type: ignore[arg-type]
            self._apply_edge(edge)
        self.events.put(WorkerEvent(index, event))  # type: ignore[arg-type]

    def _on_death(self, index: int, handle: _Handle) -> None:
        if self._handles[index] is not handle or handle.dead:
            return
        handle.dead = True
        self._unwatch(handle)
        self._drain(index, handle.conn)  # events it sent before dying
        handle.process.wait()
        with self._lock:
            ended, edge = self._ledger.worker_died(index)
        self._ready[index].clear()
        self._apply_edge(edge)
        for event in ended:
            self.events.put(WorkerEvent(index, event))
        if ended and self._end_calls is not None and not self._stopping:
            try:
                self._end_calls(index)
            except Exception:  # the edge being down must not stop the pool
                log.exception("could not end the calls of worker %d at the edge", index)
        handle.close()
        code = handle.process.returncode
        if self._starting and handle.ready_at is None:
            self._start_failure = f"SIP worker {index} exited with {code} before it was ready"
        if self._stopping or self._start_failure is not None:
            return
        healthy = handle.ready_at is not None and time.monotonic() - handle.ready_at > HEALTHY_AFTER
        self._quick_deaths[index] = 0 if healthy else self._quick_deaths[index] + 1
        delay = 0.0 if healthy else min(BACKOFF_MAX, BACKOFF_FIRST * 2 ** (self._quick_deaths[index] - 1))
        log.warning(
            "SIP worker %d (pid %s) died with %s; replacing it in %.1fs", index, handle.pid, code, delay
        )
        self._restarts[index] += 1
        self._respawn_at[index] = time.monotonic() + delay

    def _apply_edge(self, changes: list[EdgeState]) -> None:
        if self._edge is not None and changes:
            self._edge.submit(changes)  # written by the edge writer's thread, not this one
