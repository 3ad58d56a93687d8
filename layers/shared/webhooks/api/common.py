"""What every route module shares: the account of the caller, the service, error answers, parameter types."""

from __future__ import annotations

import json
from functools import cache
from typing import Annotated, Any

from aws_lambda_powertools.event_handler import Response, content_types
from aws_lambda_powertools.event_handler.api_gateway import BaseRouter
from aws_lambda_powertools.event_handler.openapi.params import Header, Path, Query

from webhooks.api_models import ErrorResponse
from webhooks.management import Management
from webhooks.settings import get_settings

HookId = Annotated[str, Path(min_length=1, max_length=64)]
Ref = Annotated[str | None, Query(max_length=64)]
Limit = Annotated[int, Query(ge=1, le=100)]
Cursor = Annotated[str | None, Query(max_length=2048)]

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


@cache
def service() -> Management:
    """The one Management of this container, built from the settings on first use (the handler calls it
    at import, so a bad configuration fails the cold start)."""
    return Management(get_settings())


def account(router: BaseRouter) -> str:
    authorizer = router.current_event.raw_event.get("requestContext", {}).get("authorizer") or {}
    return str(authorizer["account"])


def idempotency_header(description: str) -> Header:
    return Header(
        alias="idempotency-key",
        min_length=1,
        max_length=255,
        pattern=r"^[\x21-\x7e]+$",
        description=description,
    )


def error_body(code: str, message: str, fields: list[tuple[str, str]] | None = None) -> str:
    problems = [{"field": field, "reason": reason} for field, reason in fields or []]
    return json.dumps({"error": {"code": code, "message": message, "fields": problems}})


def error(status: int, code: str, message: str, fields: list[tuple[str, str]] | None = None) -> Response[Any]:
    return Response(status, content_types.APPLICATION_JSON, error_body(code, message, fields))


def error_answer(status: int, code: str, message: str, fields: list[tuple[str, str]]) -> dict[str, Any]:
    """An error as a Lambda proxy answer, for what is refused before the resolver runs."""
    body = error_body(code, message, fields)
    return {"statusCode": status, "headers": {"Content-Type": content_types.APPLICATION_JSON}, "body": body}
