"""The console pages through the app (both databases): who may look, what each page shows,
the login cookie's attributes, replay with and without the CSRF token, hostile search text."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from gateway.console.session import COOKIE_NAME
from gateway.core.db import Database
from gateway.core.settings import Settings
from tests.gateway.test_status import seed
from tests.support.acs import OPERATOR_TOKEN, admin_headers

PAGES = (
    "/admin/console",
    "/admin/console/messages",
    "/admin/console/subscriptions",
    "/admin/console/carriers",
)


@pytest.fixture
def browser(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app, base_url="https://testserver") as client:
        yield client


@pytest.fixture
def seeded(browser: TestClient, database: Database, settings: Settings) -> str:
    created = browser.post("/admin/resources", json={"name": "console"}, headers=admin_headers())
    resource_id: str = created.json()["id"]
    seed(database, settings, resource_id)
    return resource_id


def login(browser: TestClient) -> None:
    response = browser.post("/admin/console/login", data={"token": OPERATOR_TOKEN}, follow_redirects=False)
    assert response.status_code == 303
    cookie = response.headers["set-cookie"]
    assert cookie.startswith(f"{COOKIE_NAME}=")
    attributes = {part.strip().lower() for part in cookie.split(";")}
    assert {"httponly", "secure", "samesite=strict", "path=/"} <= attributes


@pytest.mark.parametrize("path", PAGES)
def test_no_token_is_401_with_the_login_page(browser: TestClient, path: str) -> None:
    for headers in ({}, admin_headers("wrong-token"), {"Authorization": "Basic abc"}):
        response = browser.get(path, headers=headers)
        assert response.status_code == 401
        assert "Operator login" in response.text
        assert "webhook deliveries" not in response.text
    twice = [("authorization", f"Bearer {OPERATOR_TOKEN}"), ("authorization", f"Bearer {OPERATOR_TOKEN}")]
    assert browser.get(path, headers=twice).status_code == 401
    browser.cookies.set(COOKIE_NAME, "1.forged.cafe")
    assert browser.get(path).status_code == 401


def test_wrong_token_at_login_sets_no_cookie(browser: TestClient) -> None:
    response = browser.post("/admin/console/login", data={"token": "nope"}, follow_redirects=False)
    assert response.status_code == 401
    assert "set-cookie" not in response.headers
    assert "not the operator token" in response.text


@pytest.mark.usefixtures("seeded")
def test_bearer_and_cookie_see_every_page(browser: TestClient) -> None:
    for path in PAGES:
        response = browser.get(path, headers=admin_headers())
        assert response.status_code == 200, path
        assert response.headers["content-type"].startswith("text/html")
        assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
    login(browser)
    status = browser.get("/admin/console")
    assert status.status_code == 200
    assert "ESME_RBINDFAIL" in status.text
    assert "smsc-a" in browser.get("/admin/console/carriers").text
    messages = browser.get("/admin/console/messages", params={"status": "queued"})
    assert messages.text.count("Outgoing_status_") == 2
    assert "Outgoing_status_3" in browser.get("/admin/console/messages", params={"status": "delivered"}).text
    refused = browser.get("/admin/console/messages", params={"status": "bogus"})
    assert refused.status_code == 200
    assert "is not one of" in refused.text


@pytest.mark.usefixtures("seeded")
def test_replay_needs_the_csrf_token_from_a_cookie_session(browser: TestClient) -> None:
    login(browser)
    page = browser.get("/admin/console/subscriptions").text
    assert page.count("Replay dead letters") == 1
    actions = [part.split('"', 1)[0] for part in page.split('action="')[1:]]
    (action,) = [a for a in actions if a.endswith("/replay")]
    csrf = page.split('name="csrf" value="', 1)[1].split('"', 1)[0]
    refused = browser.post(action, data={"csrf": "forged"}, follow_redirects=False)
    assert refused.status_code == 403
    done = browser.post(action, data={"csrf": csrf}, follow_redirects=False)
    assert done.status_code == 303
    assert done.headers["location"].endswith("replayed=2")
    assert "Replay dead letters" not in browser.get("/admin/console/subscriptions").text


def test_hostile_search_text_is_escaped_not_an_error(browser: TestClient) -> None:
    for text in ("<script>alert(1)</script>", "'; DROP TABLE sms_messages; --", "+" * 5000, "\u202e\ufeff"):
        params = {"to": text, "sender": text, "status": ""}
        response = browser.get("/admin/console/messages", params=params, headers=admin_headers())
        assert response.status_code == 200, text
        assert "<script>alert(1)</script>" not in response.text
    for control in ("\x00", "\x1b[31m"):  # the gateway's text rule refuses these before any route
        response = browser.get("/admin/console/messages", params={"to": control}, headers=admin_headers())
        assert response.status_code in (200, 400), control
    junk = browser.post(
        "/admin/console/login",
        content=b"\xff\xfe" * 10,
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert junk.status_code == 401
    huge = browser.post("/admin/console/login", data={"token": "x" * 10_000})
    assert huge.status_code == 401


def test_console_is_deliberately_not_in_the_openapi_document(browser: TestClient) -> None:
    paths = browser.get("/openapi.json").json()["paths"]
    assert not [path for path in paths if path.startswith("/admin/console")]


@pytest.mark.usefixtures("seeded")
@pytest.mark.parametrize("autovacuum", [True, False])
def test_the_status_page_warns_when_autovacuum_is_off(
    browser: TestClient, monkeypatch: pytest.MonkeyPatch, autovacuum: bool
) -> None:
    monkeypatch.setattr("gateway.status.autovacuum_enabled", lambda session: autovacuum)
    login(browser)
    page = browser.get("/admin/console").text
    assert ('id="autovacuum-off"' in page) is (not autovacuum)
