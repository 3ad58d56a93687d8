"""Management API: wiring only. The routes live in `webhooks.api` (one Router per concern), and so do the
error answers; what is checked here runs before the resolver.
"""

from __future__ import annotations

import base64
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response, content_types
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from webhooks.api import deliveries, errors, events, hooks, openapi
from webhooks.api.common import error_answer, service

logger = Logger()
app = APIGatewayRestResolver(enable_validation=True)
for module in (hooks, deliveries, events, errors):
    app.include_router(module.router)
service()  # a bad configuration fails the cold start, not the first request


@app.get("/openapi.json", include_in_schema=False)
def openapi_route() -> Response[str]:
    return Response(200, content_types.APPLICATION_JSON, openapi_document())


def openapi_document() -> str:
    return openapi.document(app)


@logger.inject_lambda_context(
    correlation_id_path=correlation_paths.API_GATEWAY_REST, log_event=False, clear_state=True
)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    # Checked before the resolver: its body validation would otherwise answer 422 for a form body,
    # and a body that is not UTF-8 would fail it outright.
    if event.get("isBase64Encoded") and event.get("body"):
        try:
            base64.b64decode(event["body"]).decode("utf-8")
        except (ValueError, UnicodeDecodeError):
            return error_answer(400, "malformed", "the body is not UTF-8 JSON", [("body", "not valid UTF-8")])
    headers = {k.lower(): v for k, v in (event.get("headers") or {}).items()}
    content_type = (headers.get("content-type") or "").split(";")[0].strip().lower()
    if (
        event.get("httpMethod") in ("POST", "PATCH", "PUT")
        and event.get("body")
        and content_type != "application/json"
    ):
        return error_answer(
            415, "unsupported_media_type", "send the body as application/json",
            [("content-type", "must be application/json")],
        )  # fmt: skip
    return app.resolve(event, context)
