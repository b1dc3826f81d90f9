"""Which Celery broker a process uses, and whether it is reachable.

Production: Redis at ``TRUNKLINE_BROKER_URL``. ``trunkline up`` without a broker URL: kombu's
filesystem transport under the data dir, a real cross-process queue that needs no server (one
machine only).
"""

from __future__ import annotations

import os
from pathlib import Path

from gateway.core.settings import Settings

LOCAL_BROKER_SCHEME = "filesystem://"


def broker_url(settings: Settings) -> str:
    return settings.broker_url or LOCAL_BROKER_SCHEME


def local_broker_dir(settings: Settings) -> Path:
    return settings.data_dir / "broker"


def check_broker(settings: Settings, timeout: float = 1.0) -> tuple[bool, str]:
    """(reachable, detail) for /ready."""
    url = broker_url(settings)
    if url.startswith(("redis://", "rediss://", "unix://")):
        import redis

        try:
            client = redis.Redis.from_url(url, socket_timeout=timeout, socket_connect_timeout=timeout)
            try:
                client.ping()
            finally:
                client.close()
        except redis.RedisError as exc:
            return False, f"redis: {exc.__class__.__name__}: {exc}"
        return True, "redis"
    if url == LOCAL_BROKER_SCHEME:
        folder = local_broker_dir(settings)
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            return False, f"filesystem broker: {exc}"
        if not os.access(folder, os.W_OK):
            return False, f"filesystem broker: {folder} is not writable"
        return True, "filesystem"
    return False, f"unsupported broker URL scheme in {url.split('://', 1)[0]}://"
