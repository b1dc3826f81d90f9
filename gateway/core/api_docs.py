"""The API's documentation page: Swagger UI at ``/docs`` from the pinned ``swagger-ui-bundle-v2``
package (no CDN, so it works on a machine without internet), and the OpenAPI description that
explains how requests are authenticated.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse
from starlette.staticfiles import StaticFiles
from swagger_ui_bundle import swagger_ui_path

DOCS_PATH = "/docs"
ASSETS_PATH = "/docs/assets"

API_DESCRIPTION = """\
ACS-compatible PSTN/SMS gateway: the Azure Communication Services REST API over your own
carriers. The official ACS client libraries work against it with its connection string.

## Authentication

**Data plane** (`/sms`, `/identities`, `/phoneNumbers`, `/networkTraversal`, ...): ACS's
HMAC-SHA256 request signing, exactly as the SDKs do it with a resource's access key
(`trunkline resources create` prints its connection string `endpoint=...;accesskey=KEY`).
Every request carries:

* `x-ms-date`: the time of the request (RFC 1123, such as `Tue, 01 Dec 2026 10:00:00 GMT`);
  it may be at most `TRUNKLINE_HMAC_MAX_CLOCK_SKEW_SECONDS` (900) from the gateway's clock.
* `x-ms-content-sha256`: base64 of the SHA-256 of the body (of the empty string for a GET).
* `Authorization: HMAC-SHA256 SignedHeaders=x-ms-date;host;x-ms-content-sha256&Signature=SIG`

where `SIG` is base64(HMAC-SHA256(base64-decoded KEY, STRING)) and `STRING` is

```
VERB + "\\n" + path and query (as sent, such as /sms?api-version=2021-03-07) + "\\n"
     + x-ms-date value + ";" + host value + ";" + x-ms-content-sha256 value
```

(the values of the signed headers, in the order `SignedHeaders` lists them). Either of a
resource's two keys signs; a regenerated key stops working at once. A request without a valid
signature is answered 401.

**Operator API** (`/admin/...`): `Authorization: Bearer <TRUNKLINE_OPERATOR_TOKEN>` (in local
mode, the token in the data dir's `operator-token` file).
"""


def install_docs(app: FastAPI, title: str) -> None:
    """Serve Swagger UI at /docs with its assets from the installed package (FastAPI's own /docs,
    which loads them from a CDN, must be off: ``FastAPI(docs_url=None)``)."""
    app.mount(ASSETS_PATH, StaticFiles(directory=Path(str(swagger_ui_path))), name="docs-assets")

    @app.get(DOCS_PATH, include_in_schema=False)
    def swagger_ui() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=app.openapi_url or "/openapi.json",
            title=f"{title} API",
            swagger_js_url=f"{ASSETS_PATH}/swagger-ui-bundle.js",
            swagger_css_url=f"{ASSETS_PATH}/swagger-ui.css",
            swagger_favicon_url=f"{ASSETS_PATH}/favicon-32x32.png",
        )
