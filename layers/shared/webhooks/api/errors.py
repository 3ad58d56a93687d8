"""Every error the API answers, mapped to HTTP in this one place: domain errors, validation, no route."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.exceptions import NotFoundError
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError

from webhooks.api.common import error
from webhooks.errors import WebhooksError

router = Router()


@router.exception_handler(NotFoundError)
def _no_route(exc: NotFoundError) -> Response[Any]:
    event = router.current_event
    return error(404, "not_found", f"no route {event.http_method} {event.path}")


@router.exception_handler(WebhooksError)
def _domain_error(exc: WebhooksError) -> Response[Any]:
    return error(exc.status, exc.code, exc.message, exc.fields)


@router.exception_handler(RequestValidationError)
def _invalid_request(exc: RequestValidationError) -> Response[Any]:
    problems = []
    for detail in exc.errors():
        loc = [str(part) for part in detail.get("loc", ())]
        if detail.get("type") == "json_invalid":
            return error(400, "malformed", "the body is not valid JSON", [("body", "not valid JSON")])
        # ("body", "events", 0) -> "events[0]"; ("query", "limit") -> "limit"
        path = ""
        for part in loc[1:] if loc and loc[0] in ("body", "query", "path", "header") else loc:
            path += f"[{part}]" if part.isdigit() else (f".{part}" if path else part)
        problems.append((path or "body", str(detail.get("msg", detail.get("type", "invalid")))))
    return error(422, "invalid", "the request is not valid", problems)
