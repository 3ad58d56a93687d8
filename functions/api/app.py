"""Management API: hooks, their validation, secrets, delivery log and replay, and event ingestion.

Every route is scoped to the account the authorizer found for the bearer token. Domain errors
become HTTP answers here and only here.
"""

from __future__ import annotations

import base64
import json
from typing import Annotated, Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response, content_types
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError
from aws_lambda_powertools.event_handler.openapi.params import Body, Header, Path, Query
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from webhooks.api_models import (
    AttemptList,
    ErrorResponse,
    EventsAccepted,
    EventsIn,
    HookCreate,
    HookCreated,
    HookList,
    HookUpdate,
    HookView,
    ReplayIn,
    ReplayResult,
    SecretView,
    TestIn,
    TestResult,
)
from webhooks.errors import WebhooksError
from webhooks.event_types import EventType
from webhooks.management import Management
from webhooks.settings import get_settings

logger = Logger()
app = APIGatewayRestResolver(enable_validation=True)
service = Management(get_settings())

HookId = Annotated[str, Path(min_length=1, max_length=64)]
Ref = Annotated[str | None, Query(max_length=64)]


def _idempotency_header(description: str) -> Header:
    return Header(
        alias="idempotency-key",
        min_length=1,
        max_length=255,
        pattern=r"^[\x21-\x7e]+$",
        description=description,
    )


EventsKey = Annotated[
    str | None,
    _idempotency_header(
        "Send a retried request with the key of the first: each event then keeps the id it got the first "
        "time, and so does each delivery's `webhook-id`, so receivers can drop the repeats"
    ),
]
HookKey = Annotated[
    str | None,
    _idempotency_header(
        "Send a retried request with the key of the first: it answers the hook the first one created "
        "instead of registering another; a different request under the same key is a 409"
    ),
]
ERRORS: dict[int, Any] = {
    status: {"description": text, "content": {"application/json": {"model": ErrorResponse}}}
    for status, text in {
        400: "Malformed request",
        404: "No such hook in this account",
        409: "Conflicting change",
        413: "Too large",
        415: "Not JSON",
        422: "Invalid input: the fields and why",
        503: "A dependency failed; nothing was changed",
    }.items()
}
OK: dict[int, Any] = {200: {"description": "OK"}, **ERRORS}
UNAUTHORIZED: dict[str, Any] = {
    "description": "Missing or unknown bearer token (answered by API Gateway's authorizer)",
    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorResponse"}}},
}


def _error_body(code: str, message: str, fields: list[tuple[str, str]] | None = None) -> str:
    problems = [{"field": field, "reason": reason} for field, reason in fields or []]
    return json.dumps({"error": {"code": code, "message": message, "fields": problems}})


def _error(
    status: int, code: str, message: str, fields: list[tuple[str, str]] | None = None
) -> Response[Any]:
    return Response(status, content_types.APPLICATION_JSON, _error_body(code, message, fields))


@app.not_found
def _no_route(exc: Exception) -> Response[Any]:
    return _error(404, "not_found", f"no route {app.current_event.http_method} {app.current_event.path}")


@app.exception_handler(WebhooksError)
def _domain_error(exc: WebhooksError) -> Response[Any]:
    return _error(exc.status, exc.code, exc.message, exc.fields)


@app.exception_handler(RequestValidationError)
def _invalid_request(exc: RequestValidationError) -> Response[Any]:
    problems = []
    for error in exc.errors():
        loc = [str(part) for part in error.get("loc", ())]
        if error.get("type") == "json_invalid":
            return _error(400, "malformed", "the body is not valid JSON", [("body", "not valid JSON")])
        # ("body", "events", 0) -> "events[0]"; ("query", "limit") -> "limit"
        path = ""
        for part in loc[1:] if loc and loc[0] in ("body", "query", "path", "header") else loc:
            path += f"[{part}]" if part.isdigit() else (f".{part}" if path else part)
        problems.append((path or "body", str(error.get("msg", error.get("type", "invalid")))))
    return _error(422, "invalid", "the request is not valid", problems)


def account() -> str:
    authorizer = app.current_event.raw_event.get("requestContext", {}).get("authorizer") or {}
    return str(authorizer["account"])


@app.post("/hooks", responses={201: {"description": "Created; validation started"}, **ERRORS})
def create_hook(hook: HookCreate, idempotency_key: HookKey = None) -> Response[HookCreated]:
    created = service.registry.create(account(), hook, idempotency_key)
    return Response(201, content_types.APPLICATION_JSON, HookCreated.of_secret(created))


@app.get("/hooks", responses=OK)
def list_hooks(
    database: Ref = None,
    collection: Ref = None,
    event: Annotated[EventType | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 50,
    cursor: Annotated[str | None, Query(max_length=2048)] = None,
) -> HookList:
    hooks, next_cursor = service.registry.list(
        account(), database=database, collection=collection, event=event, limit=limit, cursor=cursor
    )
    return HookList(hooks=[HookView.of(h) for h in hooks], next_cursor=next_cursor)


@app.get("/hooks/<hook_id>", responses=OK)
def get_hook(hook_id: HookId) -> HookView:
    return service.registry.view(account(), hook_id)


@app.patch("/hooks/<hook_id>", responses=OK)
def update_hook(hook_id: HookId, changes: HookUpdate) -> HookView:
    return HookView.of(service.registry.update(account(), hook_id, changes))


@app.delete("/hooks/<hook_id>", responses={204: {"description": "Deleted"}, **ERRORS})
def delete_hook(hook_id: HookId) -> Response[None]:
    service.registry.delete(account(), hook_id)
    return Response(204)


@app.post("/hooks/<hook_id>/validate", responses={202: {"description": "Validation restarted"}, **ERRORS})
def validate_hook(hook_id: HookId) -> Response[HookView]:
    hook = service.registry.restart_validation(account(), hook_id)
    return Response(202, content_types.APPLICATION_JSON, HookView.of(hook))


@app.get("/hooks/<hook_id>/secret", responses=OK)
def get_secret(hook_id: HookId) -> SecretView:
    return service.secret(account(), hook_id)


@app.post("/hooks/<hook_id>/secret/rotate", responses=OK)
def rotate_secret(hook_id: HookId) -> SecretView:
    hook = service.registry.rotate_secret(account(), hook_id)
    return SecretView(secret=hook.secret, previous_secret_expires_at=hook.previous_secret_expires_at)


@app.post("/hooks/<hook_id>/test", responses=OK)
def test_hook(hook_id: HookId, test: TestIn) -> TestResult:
    return service.test(account(), hook_id, test.data)


@app.get("/hooks/<hook_id>/deliveries", responses=OK)
def list_deliveries(
    hook_id: HookId,
    limit: Annotated[int, Query(ge=1, le=100)] = 50,
    cursor: Annotated[str | None, Query(max_length=2048)] = None,
) -> AttemptList:
    return service.attempts(account(), hook_id, limit=limit, cursor=cursor)


@app.post("/hooks/<hook_id>/replay", responses={202: {"description": "Queued again"}, **ERRORS})
def replay(hook_id: HookId, window: Annotated[ReplayIn | None, Body()] = None) -> Response[ReplayResult]:
    window = window or ReplayIn()
    result = service.replay(account(), hook_id, since=window.since, until=window.until)
    return Response(202, content_types.APPLICATION_JSON, result)


@app.post("/events", responses={202: {"description": "Queued for delivery"}, **ERRORS})
def ingest_events(batch: EventsIn, idempotency_key: EventsKey = None) -> Response[EventsAccepted]:
    event_ids = service.ingest(account(), batch.events, idempotency_key)
    return Response(
        202, content_types.APPLICATION_JSON, EventsAccepted(accepted=len(event_ids), event_ids=event_ids)
    )


@app.get("/openapi.json", include_in_schema=False)
def openapi() -> Response[str]:
    return Response(200, content_types.APPLICATION_JSON, openapi_document())


def openapi_document() -> str:
    # Imported here: the OpenAPI models take ~300 ms to import, and only this route needs them.
    from aws_lambda_powertools.event_handler.openapi.models import HTTPBearer

    document = json.loads(
        app.get_openapi_json_schema(
            title="Webhooks",
            version="1.0.0",
            description="Register URLs for mail and profile events; events are POSTed to them, signed.",
            security_schemes={"bearer": HTTPBearer()},
            security=[{"bearer": []}],
        )
    )
    for operations in document["paths"].values():
        for operation in operations.values():
            responses = operation["responses"]
            # What the resolver cannot know: a 204 has no body, and the authorizer answers 401 first.
            if "204" in responses:
                responses["204"].pop("content", None)
            responses["401"] = UNAUTHORIZED
    return json.dumps(document)


def _error_answer(status: int, code: str, message: str, fields: list[tuple[str, str]]) -> dict[str, Any]:
    """An error as a Lambda proxy answer, for what is refused before the resolver runs."""
    body = _error_body(code, message, fields)
    return {"statusCode": status, "headers": {"Content-Type": content_types.APPLICATION_JSON}, "body": body}


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
            return _error_answer(
                400, "malformed", "the body is not UTF-8 JSON", [("body", "not valid UTF-8")]
            )
    headers = {k.lower(): v for k, v in (event.get("headers") or {}).items()}
    content_type = (headers.get("content-type") or "").split(";")[0].strip().lower()
    if (
        event.get("httpMethod") in ("POST", "PATCH", "PUT")
        and event.get("body")
        and content_type != "application/json"
    ):
        return _error_answer(
            415, "unsupported_media_type", "send the body as application/json",
            [("content-type", "must be application/json")],
        )  # fmt: skip
    return app.resolve(event, context)
