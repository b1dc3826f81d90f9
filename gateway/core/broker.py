"""Which Celery broker a process uses, and whether it is reachable.

Production: Redis at ``TRUNKLINE_BROKER_URL``. ``trunkline up`` without a broker URL: kombu's
filesystem transport under the data dir, a real cross-process queue that needs no server (one
machine only).
"""

from __future__ import annotations

import os
import time
import uuid
from pathlib import Path
from typing import Any

from kombu.exceptions import ChannelError
from kombu.transport import filesystem
from kombu.utils.json import dumps

from gateway.core.settings import Settings

LOCAL_BROKER_SCHEME = "filesystem://"
# kombu's filesystem transport, with messages that appear whole (see _AtomicChannel).
LOCAL_BROKER_TRANSPORT = "gateway.core.broker:AtomicFilesystemTransport"


class _AtomicChannel(filesystem.Channel):
    """kombu's filesystem channel, but a message file appears under its queue's name only once
    written: kombu creates ``<time>_<uuid>.<queue>.msg`` and then writes it, and a consumer
    polling the folder may move and read it in between (its write lock is advisory, and the
    move ignores it). The consumer then fails on an empty body and the message is gone: seen as
    a lost send job in CI. Here it is written under a name no queue matches, then renamed."""

    def _put(self, queue: Any, payload: Any, **kwargs: Any) -> None:  # type: ignore[override]  # kombu filesystem.Channel._put's own signature
        folder = self.data_folder_out
        # kombu's name: its consumers take a queue's messages in the order of these names
        name = f"{round(time.monotonic() * 1000)}_{uuid.uuid4()}.{queue}.msg"
        partial = os.path.join(folder, f"writing-{uuid.uuid4()}")  # no '.': matches no queue
        try:
            with open(partial, "wb") as handle:
                handle.write(dumps(payload).encode())  # type: ignore[no-untyped-call]  # kombu.utils.json
            os.replace(partial, os.path.join(folder, name))
        except OSError as exc:
            raise ChannelError(f"Cannot add file {name!r} to directory") from exc


class AtomicFilesystemTransport(filesystem.Transport):
    Channel = _AtomicChannel

    @property
    def default_connection_params(self) -> dict[str, Any]:
        # A folder has no host: without this, kombu warns "No hostname was supplied. Reverting
        # to default 'localhost'" at every connection.
        return {"port": None, "hostname": None}


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
