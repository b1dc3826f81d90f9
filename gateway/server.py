"""Start the HTTPS API server (``trunkline api``)."""

from __future__ import annotations

import os
from typing import Any

import structlog
import uvicorn
from fastapi import FastAPI

from gateway.core.http_protocol import ConnectionLimits, GuardedHttpToolsProtocol
from gateway.core.logging import configure_logging
from gateway.core.settings import Settings
from gateway.core.startup import freeze_startup_objects
from gateway.core.storage import prepare_storage

log = structlog.get_logger("trunkline.api")


def serve_api(settings: Settings) -> None:
    from gateway.app import create_app
    from gateway.core.tls import resolve_tls
    from gateway.identity.tokens import Keyring

    configure_logging(settings.log_level, settings.log_json_output)
    prepare_storage(settings)
    tls = resolve_tls(
        settings.tls_cert_file,
        settings.tls_key_file,
        settings.tls_dir,
        [settings.api_host, settings.public_host.rsplit(":", 1)[0]],
    )
    if tls.ca_file is not None:
        log.info(
            "serving with a locally generated certificate; clients must trust its CA",
            ca_file=str(tls.ca_file),
            hint=f"export REQUESTS_CA_BUNDLE={tls.ca_file} SSL_CERT_FILE={tls.ca_file}",
        )
    log.info(
        "api starting",
        endpoint=settings.effective_public_endpoint,
        host=settings.api_host,
        port=settings.api_port,
    )
    common: dict[str, Any] = {
        "host": settings.api_host,
        "port": settings.api_port,
        "ssl_certfile": str(tls.cert_file),
        "ssl_keyfile": str(tls.key_file),
        "log_config": None,
        "access_log": False,
        "server_header": False,
        "timeout_graceful_shutdown": 10,
        # Read timeouts, a per-client cap and ACS-shaped 400s for malformed framing.
        "http": GuardedHttpToolsProtocol,
    }
    GuardedHttpToolsProtocol.configure(ConnectionLimits.from_settings(settings))
    if settings.api_workers == 1:
        app = create_app(settings)
        freeze_startup_objects()
        uvicorn.Server(uvicorn.Config(app, **common)).run()
        return
    # Several processes on one socket: each builds its app from the environment, so the
    # settings given on the command line travel there. The signing key must exist before they
    # start, or each would make its own.
    Keyring(
        settings.effective_token_keys_dir,
        settings.token_signing_key.get_secret_value() if settings.token_signing_key else None,
    ).keys()
    os.environ.update(
        TRUNKLINE_API_HOST=settings.api_host,
        TRUNKLINE_API_PORT=str(settings.api_port),
        TRUNKLINE_DATA_DIR=str(settings.data_dir),
    )
    uvicorn.run("gateway.server:worker_app", factory=True, workers=settings.api_workers, **common)


def worker_app() -> FastAPI:
    """The app of one of several API worker processes (``trunkline api --workers N``)."""
    from gateway.app import create_app
    from gateway.core.settings import get_settings

    settings = get_settings()
    configure_logging(settings.log_level, settings.log_json_output)
    GuardedHttpToolsProtocol.configure(ConnectionLimits.from_settings(settings))
    app = create_app(settings)
    freeze_startup_objects()
    return app
