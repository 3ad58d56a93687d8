"""What every route module shares: the account of the caller, the service, error answers, parameter types."""

from __future__ import annotations

import json
from functools import cache
from typing import Annotated, Any

from aws_lambda_powertools.event_handler import Response, content_types
from aws_lambda_powertools.event_handler.api_gateway import BaseRouter
from aws_lambda_powertools.event_handler.openapi.params import Header, Path, Query

from webhooks.api import examples
from webhooks.api_models import ErrorResponse
from webhooks.errors import worded
from webhooks.management import Management
from webhooks.settings import get_settings

HookId = Annotated[
    str,
    Path(
        min_length=1,
        max_length=64,
        description="The hook's id, as `POST /hooks` answered it",
        openapi_examples={"hook": {"value": examples.HOOK_ID}},
    ),
]
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


def answers(status: int, description: str, model: Any = None, example: Any = None) -> dict[int, Any]:
    """An operation's answers for its OpenAPI document: its success (with the model and an example of
    it), then every error answer."""
    success: dict[str, Any] = {"description": description}
    if model is not None:
        success["content"] = {
            "application/json": {"model": model, "examples": {"example": {"value": example}}}
        }
    return {status: success, **ERRORS}


def request_example(summary: str, value: Any) -> dict[str, Any]:
    """A request body's example, as `Body(openapi_examples=...)` takes it."""
    return {"example": {"summary": summary, "value": value}}


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
        # One pattern holds the length too, so every bad key gets the same words (not three messages).
        pattern=worded(r"^[\x21-\x7e]{1,255}$", "1-255 visible ASCII characters (no spaces)"),
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
