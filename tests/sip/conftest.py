"""Fixtures of the SIP worker tests: a pool of pjsua2 workers on free loopback ports."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from sip.worker.config import PoolConfig
from sip.worker.ledger import EdgeState
from sip.worker.pool import WorkerPool
from tests.sip.support import HOST, free_udp_block

PoolFactory = Callable[..., WorkerPool]


@pytest.fixture
def make_pool() -> Iterator[PoolFactory]:
    """Start pools of N workers (SIP ports and RTP ranges nothing else uses); stopped after."""
    pools: list[WorkerPool] = []

    def make(
        workers: int = 1,
        edge: Callable[[EdgeState], None] | None = None,
        end_calls: Callable[[int], object] | None = None,
        **options: object,
    ) -> WorkerPool:
        options.setdefault("sip_port", free_udp_block(workers))
        options.setdefault("rtp_port", free_udp_block(workers * 40))
        config = PoolConfig(workers=workers, host=HOST, **options)  # type: ignore[arg-type]
        pool = WorkerPool(config, edge=edge, end_calls=end_calls)
        pools.append(pool)
        pool.start()
        return pool

    yield make
    for pool in pools:
        pool.stop()


@pytest.fixture
def pool(make_pool: PoolFactory) -> WorkerPool:
    return make_pool(1)
