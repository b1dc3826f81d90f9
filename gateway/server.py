"""Start the HTTPS API server (``trunkline api``)."""

from __future__ import annotations

import structlog
import uvicorn

from gateway.core.logging import configure_logging
from gateway.core.settings import Settings

log = structlog.get_logger("trunkline.api")


def prepare_storage(settings: Settings) -> None:
    """Create the data dir and bring the schema to the newest migration."""
    from gateway.core.db import make_engine
    from gateway.core.migrate import upgrade

    settings.data_dir.mkdir(parents=True, exist_ok=True)
    engine = make_engine(settings.effective_database_url)
    try:
        upgrade(engine)
    finally:
        engine.dispose()


def serve_api(settings: Settings) -> None:
    from gateway.app import create_app
    from gateway.core.tls import resolve_tls

    configure_logging(settings.log_level, settings.log_json)
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
    config = uvicorn.Config(
        create_app(settings),
        host=settings.api_host,
        port=settings.api_port,
        ssl_certfile=str(tls.cert_file),
        ssl_keyfile=str(tls.key_file),
        log_config=None,
        access_log=False,
        server_header=False,
        timeout_graceful_shutdown=10,
    )
    uvicorn.Server(config).run()
