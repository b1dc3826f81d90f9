"""The body of one worker process: the owner loop between its pipe and its ``UserAgent``.

One thread (the process's main thread) polls pjsua2, reads commands from the pipe between
polls and sends the events the callbacks queued. The pipe carries ``wire.encode`` bytes.
The process ends on ``Shutdown``, SIGTERM, or when the supervisor's end of the pipe closes.
"""

from __future__ import annotations

import json
import os
import select
import signal
import sys
from multiprocessing.connection import Connection

from sip.worker.config import WorkerConfig
from sip.worker.messages import (
    Shutdown,
    WorkerReady,
)
from sip.worker.wire import MessageError, decode, encode, is_command

COMMANDS_PER_POLL = 32
# The poll while a play or DTMF work is under way: the next file of a play and the in-band
# detector's feed run after each poll (UserAgent.poll), not on a socket's wake-up.
MEDIA_POLL_MS = 10


def main(argv: list[str]) -> None:
    """``python -m sip.worker.process FD CONFIG_JSON``: FD is the supervisor's socket."""
    fd, config = int(argv[0]), json.loads(argv[1])
    run_worker(WorkerConfig(**config), Connection(fd))


def run_worker(config: WorkerConfig, conn: Connection) -> None:
    """The worker's body: the owner loop until Shutdown, SIGTERM or the supervisor's exit."""
    from sip.worker.ua import UserAgent  # pjsua2 loads only in worker processes

    stopping = False

    def stop(signum: int, frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the supervisor decides
    agent = UserAgent(config)
    # Connection.poll builds a selector per call; this loop asks after every pjsua2 poll.
    pipe = select.poll()
    pipe.register(conn.fileno(), select.POLLIN)
    try:
        conn.send_bytes(encode(WorkerReady(config.index, config.sip_port, os.getpid())))
        more = False
        while not stopping:
            # The poll returns as soon as one of pjsua2's sockets has something: a SIP message,
            # or the supervisor's wake-up datagram sent with each command (sip.worker.pool), so
            # a command does not wait for the idle period; the period only bounds how long a
            # lost wake-up could delay one. Callbacks run inside the poll and their events go
            # out right after it; plays and DTMF get short polls while they run.
            agent.poll(0 if more else MEDIA_POLL_MS if agent.busy() else config.poll_ms)
            more = False
            for _ in range(COMMANDS_PER_POLL):
                more = bool(pipe.poll(0))
                if not more:
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


if __name__ == "__main__":
    main(sys.argv[1:])
