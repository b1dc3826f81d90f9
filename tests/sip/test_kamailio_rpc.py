"""The Kamailio edge's RPC client under concurrent callers (no Kamailio: a UDP responder in its
place). The pool calls ``set_worker`` from several threads while others read the dispatcher."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from sip.kamailio import KamailioEdge


@pytest.fixture
def responder() -> Iterator[int]:
    """Answers each JSON-RPC request 5 ms later, with its id, on 127.0.0.1."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(0.1)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                data, peer = sock.recvfrom(65536)
            except TimeoutError:
                continue
            request = json.loads(data)
            time.sleep(0.005)
            reply = {"jsonrpc": "2.0", "id": request["id"], "result": {"echo": request["method"]}}
            sock.sendto(json.dumps(reply).encode(), peer)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield sock.getsockname()[1]
    stop.set()
    thread.join(2)
    sock.close()


def test_concurrent_rpcs_each_get_their_own_answer(responder: int, tmp_path: Path) -> None:
    edge = KamailioEdge([], listen_host="127.0.0.1", listen_port=9, rpc_port=responder, directory=tmp_path)
    errors: list[BaseException] = []
    answers: list[object] = []

    def caller(method: str) -> None:
        for _ in range(15):
            try:
                answers.append(edge.rpc(method, [], timeout=1.0))
            except Exception as exc:  # collected for the assertion
                errors.append(exc)

    threads = [threading.Thread(target=caller, args=(f"m{n}",)) for n in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == []
    assert len(answers) == 45
