"""/docs works offline: every asset the page references is served by the gateway itself."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient


def test_docs_reference_only_local_assets_that_are_served(client: TestClient) -> None:
    page = client.get("/docs")
    assert page.status_code == 200
    html = page.text
    assert "cdn." not in html
    references = re.findall(r"""(?:src|href)\s*=\s*["']([^"']+)["']""", html)
    assert len(references) >= 3  # the script, the stylesheet, the icon
    for reference in references:
        assert reference.startswith("/"), reference  # no other host
        asset = client.get(reference)
        assert asset.status_code == 200, reference
        assert asset.content
    assert client.get("/openapi.json").status_code == 200


def test_the_openapi_description_documents_the_hmac_scheme(client: TestClient) -> None:
    description = client.get("/openapi.json").json()["info"]["description"]
    for words in (
        "HMAC-SHA256",
        "x-ms-date",
        "x-ms-content-sha256",
        "SignedHeaders=x-ms-date;host;x-ms-content-sha256",
    ):
        assert words in description
    assert "TRUNKLINE_OPERATOR_TOKEN" in description
