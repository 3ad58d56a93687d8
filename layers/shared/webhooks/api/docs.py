"""The API's documentation for people: Swagger UI at /docs over /openapi.json, its files served from the
`swagger-ui-bundle` package by this same API (no CDN, so the page works wherever the API does)."""

from __future__ import annotations

from functools import cache
from typing import Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.api_gateway import Router

from webhooks.api.common import error

router = Router()

# The files of the bundle the page loads, with their content types; nothing else is served.
ASSETS = {
    "swagger-ui.css": "text/css; charset=utf-8",
    "swagger-ui-bundle.js": "application/javascript; charset=utf-8",
}
# Browsers may keep the files a day: they change only with the package's pinned version.
CACHE = "public, max-age=86400"

# Relative URLs throughout: on AWS the page is /<stage>/docs, locally /docs. The OpenAPI document has no
# `servers` (it is the same file everywhere), so the page tells Swagger UI where the API is: the path the
# page was served from, less `/docs`.
PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>Webhooks API</title>
  <link rel="stylesheet" href="docs/swagger-ui.css">
  <link rel="icon" href="data:,">
</head>
<body>
  <div id="swagger-ui"></div>
  <script src="docs/swagger-ui-bundle.js"></script>
  <script>
    fetch("openapi.json").then((answer) => answer.json()).then((spec) => {
      spec.servers = [{url: window.location.pathname.replace(/\\/docs\\/?$/, "") || "/"}];
      window.ui = SwaggerUIBundle({spec: spec, dom_id: "#swagger-ui", deepLinking: true});
    });
  </script>
</body>
</html>
"""


@router.get("/docs", include_in_schema=False)
def docs_page() -> Response[str]:
    return Response(200, "text/html; charset=utf-8", PAGE, headers={"Cache-Control": "no-cache"})


@router.get("/docs/<asset>", include_in_schema=False)
def docs_asset(asset: str) -> Response[Any]:
    if asset not in ASSETS:
        return error(404, "not_found", f"no file {asset} in the docs", [("asset", "not a file of the docs")])
    return Response(200, ASSETS[asset], _read(asset), headers={"Cache-Control": CACHE})


@cache
def _read(asset: str) -> str:
    # Imported on first use: only these routes need the package.
    from swagger_ui_bundle import swagger_ui_path

    return str((swagger_ui_path / asset).read_text(encoding="utf-8"))
