"""Per-process state shared by the delivery tasks and the dispatcher: settings, database,
webhook client, retry policy. Created lazily from the environment in worker processes."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from gateway.core.db import Database
from gateway.core.settings import Settings, get_settings
from gateway.events.backoff import Backoff
from gateway.events.builder import TopicNamer
from gateway.events.callback_auth import callback_token, issuer_of
from gateway.events.http import WebhookClient
from gateway.events.ssrf import Policy, parse_networks
from gateway.events.subscriptions import Limits
from gateway.identity.tokens import Keyring

# How long a callback token signed for a resource is reused (it is valid 10 minutes,
# callback_auth.CALLBACK_TOKEN_LIFETIME): an ES256 signature per callback was 3% of the events
# worker's CPU in the media benchmark.
CALLBACK_TOKEN_REUSE = timedelta(minutes=1)
_MOST_TOKENS = 10_000

# Time between the end of a visibility timeout and the scheduler re-enqueueing, and the slack
# between a claim and the task's own hard limits.
LEASE_MARGIN = timedelta(seconds=2)


def policy_from_settings(settings: Settings) -> Policy:
    return Policy(parse_networks(settings.webhook_allowed_networks))


def limits_from_settings(settings: Settings) -> Limits:
    return Limits(
        max_delivery_attempts=settings.events_max_delivery_attempts,
        event_ttl_minutes=settings.events_ttl_minutes,
        rotation_overlap=timedelta(hours=settings.events_secret_rotation_overlap_hours),
    )


def keyring_from_settings(settings: Settings) -> Keyring:
    """The gateway's token signing keys, as the API holds them."""
    pem = settings.token_signing_key.get_secret_value() if settings.token_signing_key else None
    return Keyring(settings.effective_token_keys_dir, pem)


def topic_namer(settings: Settings) -> TopicNamer:
    return TopicNamer(settings.events_topic_subscription_id, settings.events_topic_resource_group)


@dataclass
class Runtime:
    settings: Settings
    database: Database
    client: WebhookClient
    backoff: Backoff
    topic_of: TopicNamer
    stop: threading.Event = field(default_factory=threading.Event)
    _keyring: Keyring | None = None
    # (signing key id, resource) -> (signed at, token)
    _tokens: dict[tuple[str, str], tuple[datetime, str]] = field(default_factory=dict)

    def callback_token(self, resource_id: str, now: datetime) -> str:
        """The bearer JWT of a callback to one of ``resource_id``'s calls: signed by the current
        key, reused for up to ``CALLBACK_TOKEN_REUSE`` (so it has 9 of its 10 minutes left)."""
        if self._keyring is None:
            self._keyring = keyring_from_settings(self.settings)
        key = self._keyring.signing_key
        cached = self._tokens.get((key.kid, resource_id))
        if cached is not None and timedelta(0) <= now - cached[0] < CALLBACK_TOKEN_REUSE:
            return cached[1]
        issuer = issuer_of(self.settings.effective_public_endpoint)
        token = callback_token(key, issuer, resource_id, now)
        if len(self._tokens) >= _MOST_TOKENS:
            self._tokens.clear()
        self._tokens[(key.kid, resource_id)] = (now, token)
        return token

    @property
    def visibility(self) -> timedelta:
        return timedelta(seconds=self.settings.events_visibility_timeout_seconds)

    @property
    def enqueue_lease(self) -> timedelta:
        """How long a queued task is trusted to exist before the scheduler sends another."""
        restore = timedelta(seconds=self.settings.events_unacked_restore_interval_seconds)
        return self.visibility + restore + LEASE_MARGIN

    @property
    def claim_for(self) -> timedelta:
        return timedelta(seconds=self.settings.webhook_timeout_seconds) + LEASE_MARGIN

    @classmethod
    def from_settings(cls, settings: Settings, database: Database | None = None) -> Runtime:
        return cls(
            settings=settings,
            database=database
            or Database(
                settings.effective_database_url,
                # every delivery thread (Celery's and the local ones), the dispatcher and a
                # little headroom; connections open only when a thread needs one
                pool_size=settings.events_delivery_concurrency * 2 + 2,
                max_overflow=4,
            ),
            client=WebhookClient(
                policy_from_settings(settings),
                ca_bundle=settings.webhook_ca_bundle,
                timeout=settings.webhook_timeout_seconds,
                connect_timeout=settings.webhook_connect_timeout_seconds,
                max_response_bytes=settings.webhook_max_response_bytes,
                max_connections=max(10, settings.events_delivery_concurrency * 2),
            ),
            backoff=Backoff(settings.events_retry_base_seconds, settings.events_retry_max_seconds),
            topic_of=topic_namer(settings),
        )


_runtime: Runtime | None = None
_lock = threading.Lock()


def runtime() -> Runtime:
    global _runtime  # noqa: PLW0603 - one per process
    with _lock:
        if _runtime is None:
            _runtime = Runtime.from_settings(get_settings())
        return _runtime


def set_runtime(value: Runtime | None) -> None:
    global _runtime  # noqa: PLW0603
    with _lock:
        _runtime = value
