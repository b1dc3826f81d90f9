"""The operator's console pages: status, message log, subscriptions and dead letters (with a
replay button), carriers and their binds. Thin: the domains' services gather, Jinja2 renders.

Who may look: a request with ``Authorization: Bearer <operator token>``, or a browser holding
the session cookie the login form sets (HttpOnly, Secure, SameSite=Strict). Anyone else gets
401 with the login page. A POST from a cookie session carries the session's CSRF token. The
pages are left out of the OpenAPI document: they are HTML for people, not API.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, FileSystemLoader, select_autoescape

from gateway.console import session as console_session
from gateway.core import hmac_auth
from gateway.core.auth import AppDatabase, AppSettings
from gateway.core.db import utcnow
from gateway.core.errors import AcsError
from gateway.core.settings import Settings
from gateway.events import history as events_history
from gateway.events import subscriptions as events_subscriptions
from gateway.numbers.inventory import list_carriers
from gateway.sms.bind_status import connections_with_status
from gateway.sms.history import list_messages
from gateway.status import gather_status

PREFIX = "/admin/console"
MAX_FORM_BYTES = 4096
_SINGLE_HEADERS = frozenset({b"authorization", b"host"})

_templates = Environment(
    loader=FileSystemLoader(Path(__file__).parent / "templates"),
    autoescape=select_autoescape(default=True),
    auto_reload=False,
)

router = APIRouter(prefix=PREFIX, include_in_schema=False)


def _operator_token(settings: Settings) -> str:
    return settings.operator_token.get_secret_value() if settings.operator_token else ""


def _page(name: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    html = _templates.get_template(name).render(prefix=PREFIX, **context)
    response = HTMLResponse(html, status_code=status_code)
    response.headers["Cache-Control"] = "no-store"
    response.headers["Content-Security-Policy"] = (
        "default-src 'none'; style-src 'self' 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'"
    )
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["Referrer-Policy"] = "no-referrer"
    return response


def _login_page(status_code: int, error: str | None = None) -> HTMLResponse:
    response = _page("login.html", status_code=status_code, error=error)
    if status_code == 401:
        response.headers["WWW-Authenticate"] = 'Bearer realm="trunkline-admin"'
    return response


class _Viewer:
    """Who is looking: ``session`` is the cookie session (None for a Bearer request)."""

    def __init__(self, session: str | None, csrf: str) -> None:
        self.session = session
        self.csrf = csrf


def _viewer(request: Request, settings: Settings) -> _Viewer | None:
    token = _operator_token(settings)
    if not token or hmac_auth.repeated_header(request.scope.get("headers", ()), _SINGLE_HEADERS):
        return None  # as the operator API: a repeated Authorization or Host is refused
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer":
        return _Viewer(None, "") if console_session.token_matches(token, given) else None
    cookie = request.cookies.get(console_session.COOKIE_NAME, "")
    if cookie and console_session.valid_session(token, cookie):
        return _Viewer(cookie, console_session.csrf_token(token, cookie))
    return None


async def _form(request: Request) -> dict[str, str]:
    body = await request.body()
    if len(body) > MAX_FORM_BYTES:
        return {}
    try:
        fields = parse_qs(body.decode("utf-8"), max_num_fields=8)
    except (UnicodeDecodeError, ValueError):
        return {}
    return {name: values[0] for name, values in fields.items() if values}


@router.get("/login")
def login_form() -> HTMLResponse:
    return _login_page(200)


@router.post("/login")
async def login(request: Request, settings: AppSettings) -> Response:
    token = _operator_token(settings)
    given = (await _form(request)).get("token", "")
    if not console_session.token_matches(token, given):
        return _login_page(401, "That is not the operator token.")
    response = RedirectResponse(PREFIX, status_code=303)
    response.set_cookie(
        console_session.COOKIE_NAME,
        console_session.new_session(token),
        max_age=console_session.MAX_AGE_SECONDS,
        path="/",
        secure=True,
        httponly=True,
        samesite="strict",
    )
    return response


@router.post("/logout")
def logout() -> Response:
    response = RedirectResponse(f"{PREFIX}/login", status_code=303)
    response.delete_cookie(
        console_session.COOKIE_NAME, path="/", secure=True, httponly=True, samesite="strict"
    )
    return response


@router.get("")
def status_page(request: Request, settings: AppSettings, database: AppDatabase) -> HTMLResponse:
    viewer = _viewer(request, settings)
    if viewer is None:
        return _login_page(401)
    with database.session() as session:
        data = gather_status(session, settings, utcnow())
    return _page("status.html", viewer=viewer, active="status", status=data)


@router.get("/messages")
def messages_page(
    request: Request,
    settings: AppSettings,
    database: AppDatabase,
    to: str = "",
    sender: str = "",
    status: str = "",
) -> HTMLResponse:
    viewer = _viewer(request, settings)
    if viewer is None:
        return _login_page(401)
    error = None
    rows: list[dict[str, Any]] = []
    try:
        with database.session() as session:
            rows = list_messages(
                session,
                to_number=to.strip() or None,
                from_number=sender.strip() or None,
                status=status.strip() or None,
                limit=200,
            )
    except AcsError as exc:
        error = exc.message
    search = {"to": to, "sender": sender, "status": status}
    return _page("messages.html", viewer=viewer, active="messages", rows=rows, search=search, error=error)


@router.get("/subscriptions")
def subscriptions_page(request: Request, settings: AppSettings, database: AppDatabase) -> HTMLResponse:
    viewer = _viewer(request, settings)
    if viewer is None:
        return _login_page(401)
    notice = request.query_params.get("replayed")
    with database.session() as session:
        subscriptions = []
        for sub in events_subscriptions.list_subscriptions(session):
            dead = events_history.list_deliveries(session, sub.id, status="deadLettered", limit=50)
            subscriptions.append(
                {
                    "id": sub.id,
                    "resourceId": sub.resource_id,
                    "endpoint": sub.endpoint_url,
                    "status": sub.status,
                    "eventTypes": ", ".join(sub.event_types),
                    "deadLetters": [
                        {
                            "eventId": delivery.event_id,
                            "eventType": event.event_type,
                            "reason": delivery.dead_letter_reason,
                            "attempts": delivery.attempts,
                        }
                        for delivery, event in dead
                    ],
                }
            )
    return _page(
        "subscriptions.html",
        viewer=viewer,
        active="subscriptions",
        subscriptions=subscriptions,
        notice=notice,
    )


@router.post("/subscriptions/{subscription_id}/replay")
async def replay(
    subscription_id: str, request: Request, settings: AppSettings, database: AppDatabase
) -> Response:
    viewer = _viewer(request, settings)
    if viewer is None:
        return _login_page(401)
    form = await _form(request)
    if viewer.session is not None and not console_session.valid_csrf(
        _operator_token(settings), viewer.session, form.get("csrf", "")
    ):
        return _page(
            "error.html", status_code=403, viewer=viewer, active="", error="The form expired: reload."
        )
    try:
        with database.session() as session:
            replayed = events_history.replay(session, subscription_id)
    except AcsError as exc:
        return _page("error.html", status_code=exc.status_code, viewer=viewer, active="", error=exc.message)
    return RedirectResponse(f"{PREFIX}/subscriptions?replayed={len(replayed)}", status_code=303)


@router.get("/carriers")
def carriers_page(request: Request, settings: AppSettings, database: AppDatabase) -> HTMLResponse:
    viewer = _viewer(request, settings)
    if viewer is None:
        return _login_page(401)
    with database.session() as session:
        carriers = [
            {"name": c.carrier.name, "kind": c.carrier.kind, "numbers": c.numbers}
            for c in list_carriers(session)
        ]
        connections = connections_with_status(session, utcnow())
    return _page(
        "carriers.html", viewer=viewer, active="carriers", carriers=carriers, connections=connections
    )
