"""The body of one worker process: the owner loop between its pipe and its ``UserAgent``.

One thread (the process's main thread) polls pjsua2, reads commands from the pipe between
polls and sends the events the callbacks queued. The pipe carries ``messages.encode`` bytes.
The process ends on ``Shutdown``, SIGTERM, or when the supervisor's end of the pipe closes.
"""

from __future__ import annotations

import os
import signal
from multiprocessing.connection import Connection

from sip.worker.config import WorkerConfig
from sip.worker.messages import MessageError, Shutdown, WorkerReady, decode, encode, is_command

COMMANDS_PER_POLL = 32


def run_worker(config: WorkerConfig, conn: Connection) -> None:
    """Entry point of a worker process (``multiprocessing`` target)."""
    from sip.worker.ua import UserAgent  # pjsua2 loads only in worker processes

    stopping = False

    def stop(signum: int, frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the supervisor decides
    agent = UserAgent(config)
    try:
        conn.send_bytes(encode(WorkerReady(config.index, config.sip_port, os.getpid())))
        while not stopping:
            agent.poll()
            for _ in range(COMMANDS_PER_POLL):
                if not conn.poll(0):
                    break
                try:
                    message = decode(conn.recv_bytes())
                except MessageError:
                    continue
                if isinstance(message, Shutdown):
                    stopping = True
                    break
                if is_command(message):
                    agent.execute(message)  # type: ignore[arg-type]
            for event in agent.take_events():
                conn.send_bytes(encode(event))
    except (EOFError, BrokenPipeError, ConnectionResetError):
        pass  # the supervisor is gone: hang up and leave
    finally:
        agent.close()
