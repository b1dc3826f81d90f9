from __future__ import annotations

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError
from starlette.concurrency import run_in_threadpool

from gateway.core.auth import AppDatabase, AppSettings
from gateway.core.broker import check_broker
from gateway.core.metrics import RoleMetrics

router = APIRouter(tags=["operations"])


@router.get("/health")
async def health() -> dict[str, str]:
    """Liveness: the process answers."""
    # async: FastAPI runs a plain def route, and then its response's validation, on the thread
    # pool, two thread hops for a constant (docs/performance.md, bench/http_server.py).
    return {"status": "ok"}


@router.get("/ready")
async def ready(database: AppDatabase, settings: AppSettings) -> JSONResponse:
    """Readiness: the database and the broker are reachable."""

    def check_database() -> tuple[bool, str]:
        try:
            with database.engine.connect() as connection:
                connection.execute(text("SELECT 1"))
        except SQLAlchemyError as exc:
            return False, f"{exc.__class__.__name__}: {str(exc).splitlines()[0]}"
        return True, database.engine.dialect.name

    db_ok, db_detail = await run_in_threadpool(check_database)
    broker_ok, broker_detail = await run_in_threadpool(check_broker, settings)
    ok = db_ok and broker_ok
    return JSONResponse(
        {
            "status": "ready" if ok else "unavailable",
            "checks": {
                "database": {"ok": db_ok, "detail": db_detail},
                "broker": {"ok": broker_ok, "detail": broker_detail},
            },
        },
        status_code=200 if ok else 503,
    )


@router.get(
    "/metrics",
    response_class=Response,
    responses={200: {"description": "Prometheus text format", "content": {"text/plain": {}}}},
)
def metrics() -> Response:
    """The API process's own metrics (gateway.core.metrics.RoleMetrics: no other role's)."""
    return Response(generate_latest(RoleMetrics("api")), media_type=CONTENT_TYPE_LATEST)
