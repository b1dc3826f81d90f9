"""The body of one worker process: the owner loop between its pipe and its ``UserAgent``.

One thread (the process's main thread) polls pjsua2, reads commands from the pipe between
polls and sends the events the callbacks queued. The pipe carries ``messages.encode`` bytes.
The process ends on ``Shutdown``, SIGTERM, or when the supervisor's end of the pipe closes.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from multiprocessing.connection import Connection

from sip.worker.config import WorkerConfig
from sip.worker.messages import (
    MediaStats,
    MessageError,
    QueryMedia,
    Shutdown,
    WorkerReady,
    decode,
    encode,
    is_command,
)

COMMANDS_PER_POLL = 32
BUSY_WINDOW = 0.2  # seconds of 1 ms polls after a command or an event
# The RTP counters the control plane asks for now and then: nothing waits on their answer, so
# they do not switch the worker to fast polls (one per held call each poll period would keep
# every busy worker polling every 1 ms).
_BACKGROUND = (QueryMedia, MediaStats)


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
    try:
        conn.send_bytes(encode(WorkerReady(config.index, config.sip_port, os.getpid())))
        busy_until = 0.0
        while not stopping:
            # A short poll right after traffic: the app's answer to an event we just sent
            # waits at most 1 ms for us instead of a whole idle poll.
            agent.poll(1 if time.monotonic() < busy_until else config.poll_ms)
            active = False
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
                    active = active or not isinstance(message, _BACKGROUND)
            for event in agent.take_events():
                conn.send_bytes(encode(event))
                active = active or not isinstance(event, _BACKGROUND)
            if active:
                busy_until = time.monotonic() + BUSY_WINDOW
    except (EOFError, BrokenPipeError, ConnectionResetError):
        pass  # the supervisor is gone: hang up and leave
    finally:
        agent.close()


if __name__ == "__main__":
    main(sys.argv[1:])
