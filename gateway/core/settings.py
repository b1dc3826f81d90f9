"""Process settings, read from ``TRUNKLINE_*`` environment variables and an optional TOML file.

The file is named by ``TRUNKLINE_CONFIG_FILE``; its top-level keys are the field names below
(``database_url = "..."``). Environment variables win over the file.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

# Secrets that ship in examples and tutorials; a production process must not run with them.
KNOWN_WEAK_SECRETS = frozenset(
    {"", "changeme", "change-me", "secret", "password", "token", "trunkline", "admin"}
)
MIN_SECRET_LENGTH = 24
# A random token of MIN_SECRET_LENGTH url-safe characters has ~20 distinct ones; "aaaa…" has one.
MIN_SECRET_DISTINCT_CHARACTERS = 10

CommaList = Annotated[list[str], NoDecode]


DEFAULT_API_PORT = 8443


def home_data_dir() -> Path | None:
    """``$XDG_DATA_HOME/trunkline``, else ``~/.local/share/trunkline``; None without a HOME
    that is a writable directory."""
    xdg = os.environ.get("XDG_DATA_HOME")
    if xdg:
        return Path(xdg) / "trunkline"
    try:
        home = Path.home()
    except RuntimeError:  # no HOME and no password-database entry
        return None
    if home.is_dir() and os.access(home, os.W_OK):
        return home / ".local" / "share" / "trunkline"
    return None


def default_data_dir() -> Path:
    """``$XDG_DATA_HOME/trunkline``, else ``~/.local/share/trunkline``, else ``./trunkline-data``
    (the commands and ``trunkline up`` say so when it comes to that)."""
    return home_data_dir() or Path.cwd() / "trunkline-data"


class InsecureSettingsError(RuntimeError):
    """Raised when a production role would start with a missing or well-known secret."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="TRUNKLINE_", extra="ignore", validate_default=True)

    data_dir: Path = Field(default_factory=default_data_dir)
    database_url: str | None = None
    # Database connections an API process keeps. A request's work runs in Starlette's thread pool
    # (40 threads), each holding one connection at a time; with SQLAlchemy's default of 5 kept
    # (+10 overflow), every burst past 5 opened connections and closed them again on return:
    # 7% of the API's GIL samples under load (py-spy, bench.sms part c), and a backend fork each.
    api_database_pool_size: int = Field(default=40, ge=1, le=200)
    broker_url: str | None = None
    operator_token: SecretStr | None = None

    # Where clients reach the API. The connection strings handed to tenants use public_endpoint,
    # which defaults to https://api_host:api_port/.
    api_host: str = "127.0.0.1"
    api_port: int = Field(default=DEFAULT_API_PORT, ge=1, le=65535)
    public_endpoint: str | None = None
    # API processes sharing the listening socket; more than one uses more cores on one node.
    api_workers: int = Field(default=1, ge=1, le=64)
    tls_cert_file: Path | None = None
    tls_key_file: Path | None = None
    # Slow clients (gateway/core/http_protocol.py): a request's headers must arrive within this
    # long of its first byte; its body may pause this long between bytes; a client address may
    # hold this many connections at once (0: no cap).
    api_header_timeout_seconds: float = Field(default=10.0, gt=0, le=600)
    api_body_timeout_seconds: float = Field(default=30.0, gt=0, le=3600)
    api_max_connections_per_client: int = Field(default=100, ge=0)

    # Data-plane HMAC: how far x-ms-date may be from the server clock.
    hmac_max_clock_skew_seconds: int = Field(default=900, ge=1)

    # Access tokens (Identity API).
    token_issuer: str = "trunkline"  # noqa: S105 - an issuer name, not a secret
    token_keys_dir: Path | None = None
    token_signing_key: SecretStr | None = None  # PEM of a P-256 key; overrides the key directory

    # Secrets at rest (gateway/core/secrets.py): the keys that encrypt access keys, SMPP and SIP
    # passwords and webhook secrets in the database. Base64 keys of 32 bytes separated by commas,
    # the first encrypts; ahead of the key files of secrets_keys_dir (default DATA_DIR/secrets-keys).
    secrets_keys: SecretStr | None = None
    secrets_keys_dir: Path | None = None

    # Relay (TURN/STUN) credentials, coturn "use-auth-secret" scheme.
    turn_urls: CommaList = Field(default_factory=list)
    turn_nearest_urls: CommaList = Field(default_factory=list)
    turn_secret: SecretStr | None = None
    turn_max_ttl_seconds: int = Field(default=172800, ge=1, le=172800)

    # Largest request body accepted (413 above it); SMS and numbers requests are far smaller.
    max_request_bytes: int = Field(default=1024 * 1024, ge=1024)
    # The operator API takes inventory files (about 60 bytes a number); the CLI streams larger ones.
    max_admin_request_bytes: int = Field(default=256 * 1024 * 1024, ge=1024)

    # Phone numbers: how long a search holds its numbers, how long a released number rests before
    # it returns to inventory, when an unfinished long-running operation counts as abandoned (its
    # GET then runs it again), and which countries need agreeToNotResell.
    numbers_search_hold_minutes: float = Field(default=15, gt=0, le=24 * 60)
    numbers_release_quarantine_minutes: float = Field(default=30 * 24 * 60, ge=0)
    numbers_operation_stale_seconds: float = Field(default=30, gt=0)
    numbers_max_search_quantity: int = Field(default=1000, ge=1)
    numbers_browse_max_results: int = Field(default=20, ge=1, le=1000)
    numbers_not_resell_countries: CommaList = Field(default_factory=list)

    # Events and webhook delivery (gateway/events).
    # CIDR list of destinations exempt from the SSRF guard; inside them plain http:// is allowed.
    webhook_allowed_networks: CommaList = Field(default_factory=list)
    # Extra CA certificates (PEM) trusted for https webhook destinations, on top of the system store.
    webhook_ca_bundle: Path | None = None
    webhook_timeout_seconds: float = Field(default=30.0, gt=0, le=300)
    webhook_connect_timeout_seconds: float = Field(default=10.0, gt=0, le=60)
    webhook_max_response_bytes: int = Field(default=64 * 1024, ge=0)
    # Defaults for new subscriptions, Event Grid's: 30 attempts within 24 hours.
    events_max_delivery_attempts: int = Field(default=30, ge=1, le=30)
    events_ttl_minutes: int = Field(default=1440, ge=1, le=1440)
    # Backoff before retry n: base * 2**(n-1) seconds, capped at max, +-20% jitter.
    events_retry_base_seconds: float = Field(default=10.0, gt=0)
    events_retry_max_seconds: float = Field(default=3600.0, gt=0)
    # Celery (Redis) visibility timeout: an unacknowledged delivery is handed to another worker
    # after this long. Must exceed webhook_timeout_seconds plus a little (a claim's length).
    # Retries wait in the database, not as Celery countdowns, so no countdown ever exceeds it.
    events_visibility_timeout_seconds: int = Field(default=300, ge=2)
    events_unacked_restore_interval_seconds: int = Field(default=10, ge=1)
    events_dispatch_interval_seconds: float = Field(default=0.1, gt=0)
    # How often the dispatcher looks for retries that came due, lost tasks and handshakes: their
    # waits are seconds long, and looking at every pass (every wake-up by a prompt event) cost
    # two transactions per call event (docs/performance.md, voice).
    events_schedule_interval_seconds: float = Field(default=1.0, gt=0)
    events_delivery_concurrency: int = Field(default=16, ge=1, le=512)
    # A worker that runs the dispatcher and deliveries sends its dispatcher's tasks on its own
    # threads instead of through the broker (gateway.events.local); off: every task via Celery.
    events_local_deliveries: bool = True
    # Deliveries of one subscription handed to a worker in one task (one claim, one record).
    events_delivery_batch_size: int = Field(default=50, ge=1, le=500)
    # How the topic/source of events names a resource, in ACS's ARM form.
    events_topic_subscription_id: str = "00000000-0000-0000-0000-000000000000"
    events_topic_resource_group: str = "trunkline"
    # Finished events (delivered or dead-lettered everywhere) and their attempt logs are deleted
    # this long after they were fanned out.
    events_retention_days: float = Field(default=30.0, gt=0)
    # How long the previous signing secret keeps signing after a rotation.
    events_secret_rotation_overlap_hours: float = Field(default=24.0, ge=0)

    # SMS (gateway/sms and the SMPP process).
    # Send quotas, to stop SMS pumping: messages accepted per resource per minute, and per
    # resource per destination country per minute (0: no limit).
    sms_quota_per_resource_per_minute: int = Field(default=6000, ge=0)
    sms_quota_per_country_per_minute: int = Field(default=1200, ge=0)
    # Per-country overrides of that quota, ISO 3166 alpha-2: "GB=100,NG=0" (0: no limit).
    sms_country_quotas: CommaList = Field(default_factory=list)
    # How long a repeatabilityRequestId is remembered (its first result answered again).
    sms_repeatability_window_hours: float = Field(default=24.0, gt=0)
    # A final delivery receipt is awaited this long when the request gives no
    # deliveryReportTimeoutInSeconds; then the message expires with a Failed (timeout) report.
    sms_delivery_report_timeout_seconds: int = Field(default=3600, ge=1, le=43200)
    # Opt-out keywords of inbound messages (STOP ..., START ..., HELP ...), and optional replies.
    sms_optout_keywords: CommaList = Field(
        default_factory=lambda: ["STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT"]
    )
    sms_optin_keywords: CommaList = Field(default_factory=lambda: ["START", "UNSTOP", "YES"])
    sms_help_keywords: CommaList = Field(default_factory=lambda: ["HELP", "INFO"])
    sms_optout_reply: str = ""
    sms_optin_reply: str = ""
    sms_help_reply: str = ""
    # The SMPP process: how long a claimed message is its own before another process may take
    # it over (a process that died mid-batch), how many it claims at once.
    sms_claim_lease_seconds: float = Field(default=60.0, ge=1)
    # Send jobs come through Celery (gateway/sms/jobs.py); the reconciler, a poll of the table
    # every sms_reconcile_interval_seconds, claims due retries, and first attempts whose job
    # has not come sms_job_grace_seconds after they were due (a job lost with the broker).
    sms_job_grace_seconds: float = Field(default=5.0, ge=0)
    sms_reconcile_interval_seconds: float = Field(default=1.0, gt=0)
    # The broker queue of send jobs (one per deployment sharing a Redis).
    sms_job_queue: str = "trunkline.sms.submit"
    # How long an API process gathers the ids of its requests into one send job: a Celery
    # publish costs a millisecond or two of CPU, so one per request would cost more than the
    # request's own work; 20 ms adds little to an SMS's delivery time.
    sms_job_flush_seconds: float = Field(default=0.02, gt=0, le=1)
    # Threads of an API process that store POST /sms requests in batches (gateway/sms/admission.py).
    sms_admission_threads: int = Field(default=2, ge=1, le=32)
    sms_claim_batch: int = Field(default=500, ge=1, le=10000)
    # Messages held (claimed, not yet recorded) at most: this many windows of the bound binds.
    sms_claim_windows: int = Field(default=8, ge=1, le=100)
    # The SMPP process records outcomes (resps, receipts, MOs) in batches, one transaction each;
    # a batch may wait this long for more work after its first item (as Kafka's linger.ms).
    # 0: a batch is what came while the previous one was being written. Measured (bench.sms):
    # 10 ms cost part (b) a sixth of its rate (the claim window waits on the recording) and
    # gave part (c) nothing once deliveries stopped waiting for their commit one by one.
    sms_write_linger_seconds: float = Field(default=0.0, ge=0, le=1)
    sms_retry_base_seconds: float = Field(default=1.0, gt=0)
    sms_retry_max_seconds: float = Field(default=60.0, gt=0)
    # A TOML file of SMPP connections and routes (``[[connections]]``, ``[[routes]]``) that
    # ``trunkline smpp`` (and so ``trunkline up``) applies to the database when it starts.
    smpp_config_file: Path | None = None
    # A TOML file of SIP trunks and routes (``[[trunks]]``, ``[[routes]]``, infra/sip.toml.example)
    # that ``trunkline sip`` applies when it starts (``trunkline sip apply FILE`` applies one now).
    sip_config_file: Path | None = None
    # An unanswered IncomingCall is refused with 480 after this long; its context then stops working.
    call_ring_timeout_seconds: float = Field(default=30.0, gt=0, le=600)
    # Play sources (gateway/calls/play_sources.py): prompts downloaded or spoken, converted to
    # 8 kHz WAV and cached in DATA_DIR/play-cache, least recently used first out past the bound.
    play_cache_max_bytes: int = Field(default=512 * 1024 * 1024, ge=1024 * 1024)
    play_fetch_timeout_seconds: float = Field(default=30.0, gt=0, le=600)
    play_fetch_connect_timeout_seconds: float = Field(default=10.0, gt=0, le=60)
    play_max_download_bytes: int = Field(default=50 * 1024 * 1024, ge=1024)
    # The longest prompt played (after decoding); an hour of 8 kHz audio is 58 MB in the cache.
    play_max_seconds: float = Field(default=1800.0, gt=0, le=4 * 3600)
    play_speech_timeout_seconds: float = Field(default=20.0, gt=0, le=300)
    # The espeak-ng language of a text or SSML source that names no locale or voice.
    play_speech_default_language: str = "en-us"
    # SIP TLS at the Kamailio edge (trunks of --transport tls): Kamailio listens for TLS on this
    # port of the --listen host (`trunkline sip --tls-port` too); none: no SIP TLS. Its
    # certificate and key, else a certificate from the data directory's own CA (sip-tls/).
    sip_tls_port: int | None = Field(default=None, ge=1, le=65535)
    sip_tls_cert_file: Path | None = None
    sip_tls_key_file: Path | None = None
    # The CAs Kamailio checks a carrier's certificate against when it calls a tls trunk, and
    # whether it checks at all.
    sip_tls_ca_file: Path = Path("/etc/ssl/certs/ca-certificates.crt")
    sip_tls_verify_carriers: bool = True
    # The calls' sweeper (gateway.calls.sweeper, in `trunkline worker`): an outbound call whose
    # INVITE no SIP process took within this long ends with CreateCallFailed.
    call_place_timeout_seconds: float = Field(default=10.0, gt=0, le=600)
    # A SIP process whose heartbeat (written every second) is older than this is lost: its calls
    # end with CallDisconnected.
    sip_process_lost_seconds: float = Field(default=10.0, ge=3, le=600)
    # Threads of a SIP process handling its workers' events, each for its own workers (sip/control/lanes.py).
    sip_event_lanes: int = Field(default=4, ge=1, le=64)
    # A call left answering or disconnecting this long (its worker command was lost) ends. Past
    # SIP's own 32 s transaction timers, so a slow carrier's ACK or BYE answer is not cut short.
    call_command_timeout_seconds: float = Field(default=40.0, gt=0, le=600)
    # Inbound segments of a concatenated message are awaited this long.
    sms_reassembly_timeout_seconds: float = Field(default=300.0, gt=0)

    log_level: str = "INFO"
    # auto: human-readable coloured lines on a terminal, JSON lines otherwise.
    log_format: Literal["auto", "json", "console"] = "auto"
    log_json: bool | None = None  # the older switch: true/false wins over auto

    @property
    def log_json_output(self) -> bool:
        """Whether this process logs JSON lines (see gateway.core.logging)."""
        from gateway.core.logging import json_output

        return json_output(self.log_format, self.log_json)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        config_file = os.environ.get("TRUNKLINE_CONFIG_FILE")
        if config_file:
            path = Path(config_file)
            if not path.is_file():
                raise FileNotFoundError(f"TRUNKLINE_CONFIG_FILE points at {path}, which is not a file")
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=path))
        return tuple(sources)

    @field_validator(
        "turn_urls",
        "turn_nearest_urls",
        "numbers_not_resell_countries",
        "webhook_allowed_networks",
        "sms_optout_keywords",
        "sms_optin_keywords",
        "sms_help_keywords",
        "sms_country_quotas",
        mode="before",
    )
    @classmethod
    def _split_commas(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("webhook_allowed_networks", mode="after")
    @classmethod
    def _cidrs(cls, value: list[str]) -> list[str]:
        import ipaddress

        for item in value:
            try:
                ipaddress.ip_network(item, strict=False)
            except ValueError as exc:
                raise ValueError(f"not a CIDR network: {item!r}") from exc
        return value

    @field_validator("sms_country_quotas", mode="after")
    @classmethod
    def _country_quotas(cls, value: list[str]) -> list[str]:
        for item in value:
            country, _, limit = item.partition("=")
            if len(country.strip()) != 2 or not limit.strip().isdigit():
                raise ValueError(f"not COUNTRY=LIMIT: {item!r}")
        return value

    def sms_country_quota(self, country: str) -> int:
        """Messages a resource may send to ``country`` a minute (0: no limit)."""
        for item in self.sms_country_quotas:
            code, _, limit = item.partition("=")
            if code.strip().upper() == country.upper():
                return int(limit)
        return self.sms_quota_per_country_per_minute

    @field_validator("data_dir", mode="after")
    @classmethod
    def _absolute_data_dir(cls, value: Path) -> Path:
        return value.expanduser().resolve()

    # Derived values -------------------------------------------------------------------------

    @property
    def effective_database_url(self) -> str:
        return self.database_url or f"sqlite:///{self.data_dir / 'trunkline.db'}"

    @property
    def effective_public_endpoint(self) -> str:
        if self.public_endpoint:
            return self.public_endpoint.rstrip("/") + "/"
        host = self.api_host
        if host in ("0.0.0.0", "::", ""):  # noqa: S104 - a bind-all address is never a reachable endpoint
            host = "127.0.0.1"
        if ":" in host and not host.startswith("["):
            host = f"[{host}]"
        return f"https://{host}:{self.api_port}/"

    @property
    def public_host(self) -> str:
        return urlsplit(self.effective_public_endpoint).netloc

    @property
    def effective_token_keys_dir(self) -> Path:
        return self.token_keys_dir or self.data_dir / "keys"

    @property
    def effective_secrets_keys_dir(self) -> Path:
        return self.secrets_keys_dir or self.data_dir / "secrets-keys"

    def has_secrets_key(self) -> bool:
        """Whether a key to encrypt stored secrets with is configured (variable or key file)."""
        from gateway.core.secrets import key_files

        configured = self.secrets_keys is not None and self.secrets_keys.get_secret_value().strip()
        return bool(configured) or bool(key_files(self.effective_secrets_keys_dir))

    @property
    def tls_dir(self) -> Path:
        return self.data_dir / "tls"

    @property
    def operator_token_file(self) -> Path:
        return self.data_dir / "operator-token"

    @property
    def sip_tls_dir(self) -> Path:
        """The SIP edge's own CA and certificate when no sip_tls_cert_file is given."""
        return self.data_dir / "sip-tls"

    @property
    def sip_status_file(self) -> Path:
        """Where `trunkline sip` rewrites its workers' status every second (`trunkline sip status`)."""
        return self.data_dir / "sip-status.json"

    @property
    def play_cache_dir(self) -> Path:
        """Where prepared prompts are cached (gateway/calls/play_cache.py)."""
        return self.data_dir / "play-cache"

    def require_production_secrets(self) -> None:
        """Refuse to run a production role with a missing or well-known secret."""
        problems: list[str] = []
        if not is_strong_secret(self.operator_token):
            problems.append(
                f"TRUNKLINE_OPERATOR_TOKEN must be a random value of at least {MIN_SECRET_LENGTH} varied "
                "characters (for example: python -c 'import secrets; print(secrets.token_urlsafe(32))')"
            )
        if (self.turn_urls or self.turn_nearest_urls) and not is_strong_secret(self.turn_secret):
            problems.append(
                "TRUNKLINE_TURN_SECRET must be the TURN server's static-auth-secret "
                f"(at least {MIN_SECRET_LENGTH} characters) when TURN URLs are configured"
            )
        if self.secrets_keys is not None:
            from gateway.core.secrets import parse_keys

            try:
                parse_keys(self.secrets_keys.get_secret_value())
            except ValueError as exc:  # checked here, not by a validator, whose error quotes the value
                problems.append(f"TRUNKLINE_SECRETS_KEYS: {exc}")
        if not self.has_secrets_key():
            problems.append(
                "a key to encrypt stored secrets is needed: set TRUNKLINE_SECRETS_KEYS, or create a key file "
                f"in {self.effective_secrets_keys_dir} with `trunkline secrets rotate`"
            )
        if problems:
            raise InsecureSettingsError("; ".join(problems))


def is_strong_secret(secret: SecretStr | None) -> bool:
    if secret is None:
        return False
    value = secret.get_secret_value()
    return (
        value.strip().lower() not in KNOWN_WEAK_SECRETS
        and len(value) >= MIN_SECRET_LENGTH
        and len(set(value)) >= MIN_SECRET_DISTINCT_CHARACTERS
    )


# Values an offline command takes from the running local gateway (gateway.core.local_state)
# where the environment gives none; empty in every other process.
_command_defaults: dict[str, Any] = {}


def set_command_defaults(values: dict[str, Any]) -> None:
    """Settings for this command that the environment does not set (it wins where it does)."""
    global _command_defaults  # noqa: PLW0603 - one command per process
    _command_defaults = dict(values)
    get_settings.cache_clear()


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings(**_command_defaults)
