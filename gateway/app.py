"""The FastAPI application: every domain's router, shared error handling and middleware."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI

from gateway import __version__
from gateway.core.api_docs import API_DESCRIPTION, install_docs
from gateway.core.db import Database
from gateway.core.http_errors import install_error_handlers
from gateway.core.middleware import BodySizeLimitMiddleware, RequestContextMiddleware, UrlTextMiddleware
from gateway.core.openapi import complete_openapi
from gateway.core.sealed_columns import keyring_of, use_keyring
from gateway.core.settings import Settings, get_settings
from gateway.identity.service import IdentityService
from gateway.identity.tokens import Keyring
from gateway.resources.keys import ResourceKeyIndex


def create_app(settings: Settings | None = None, database: Database | None = None) -> FastAPI:
    settings = settings or get_settings()
    database = database or Database(
        settings.effective_database_url, pool_size=settings.api_database_pool_size, max_overflow=10
    )

    from gateway.core.celery_app import create_celery
    from gateway.sms.admission import SendAdmission
    from gateway.sms.jobs import SendJobPublisher

    # SMS send jobs, published after POST /sms commits; the Celery app is made on first use.
    sms_jobs = SendJobPublisher(
        lambda: create_celery(settings),
        queue=settings.sms_job_queue,
        flush_seconds=settings.sms_job_flush_seconds,
    )

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        yield
        sms_admission.close()  # answers what is queued
        sms_jobs.close()  # publishes what is buffered
        database.dispose()

    app = FastAPI(
        title="Trunkline",
        version=__version__,
        description=API_DESCRIPTION,
        lifespan=lifespan,
        docs_url=None,  # install_docs serves Swagger UI from the package, not a CDN
    )
    install_docs(app, "Trunkline")
    app.state.settings = settings
    # The keys stored secrets are sealed with (TRUNKLINE_SECRETS_KEYS, the key directory).
    use_keyring(keyring_of(settings))
    app.state.db = database
    app.state.sms_jobs = sms_jobs
    from gateway.calls.commands import CommandPublisher

    # Call commands to the SIP process holding each call (its own broker queue).
    app.state.call_commands = CommandPublisher(lambda: create_celery(settings))
    keyring = Keyring(
        settings.effective_token_keys_dir,
        settings.token_signing_key.get_secret_value() if settings.token_signing_key else None,
    )
    app.state.identity = IdentityService(keyring, settings.token_issuer)
    app.state.resource_keys = ResourceKeyIndex()
    sms_admission = SendAdmission(
        database, settings, app.state.resource_keys, sms_jobs, threads=settings.sms_admission_threads
    )
    app.state.sms_admission = sms_admission

    from gateway.events.metrics import install_backlog_collector

    install_backlog_collector(database, settings)

    install_error_handlers(app)
    app.add_middleware(
        BodySizeLimitMiddleware,
        max_bytes=settings.max_request_bytes,
        max_admin_bytes=settings.max_admin_request_bytes,
    )
    app.add_middleware(UrlTextMiddleware)
    # Added last, so outermost: its log line and metrics cover the 413s too.
    app.add_middleware(RequestContextMiddleware)

    _include_routers(app)

    from gateway.sms.router import document_send

    generate_openapi = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            complete_openapi(document_send(generate_openapi()))
        return app.openapi_schema or {}

    app.openapi = openapi  # type: ignore[method-assign]
    return app


def _include_routers(app: FastAPI) -> None:
    from gateway.calls.participants_router import participants_router
    from gateway.calls.router import admin_router as sip_admin_router
    from gateway.calls.router import calling_router
    from gateway.calls.router import router as sip_router
    from gateway.console.router import router as console_router
    from gateway.events.router import admin_router as events_admin_router
    from gateway.events.router import public_router as events_public_router
    from gateway.events.router import tenant_router as events_tenant_router
    from gateway.health.router import router as health_router
    from gateway.identity.router import public_router as identity_public_router
    from gateway.identity.router import router as identity_router
    from gateway.numbers.router import admin_router as numbers_admin_router
    from gateway.numbers.router import router as numbers_router
    from gateway.relay.router import router as relay_router
    from gateway.resources.router import router as resources_router
    from gateway.sms.router import admin_router as sms_admin_router
    from gateway.sms.router import router as sms_router

    # POST /sms first: routes are matched in this order, and it is the hot one.
    for router in (
        sms_router,
        health_router,
        resources_router,
        identity_router,
        identity_public_router,
        relay_router,
        numbers_router,
        numbers_admin_router,
        events_public_router,
        events_admin_router,
        events_tenant_router,
        sms_admin_router,
        sip_router,
        sip_admin_router,
        calling_router,
        participants_router,
        console_router,
    ):
        app.include_router(router)
