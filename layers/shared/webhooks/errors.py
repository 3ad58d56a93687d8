"""Domain errors. The API maps each to one HTTP status in one place (functions/api/app.py)."""

from __future__ import annotations

from collections.abc import Iterable


class WebhooksError(Exception):
    status = 400
    code = "bad_request"

    def __init__(
        self, message: str, *, field: str | None = None, fields: list[tuple[str, str]] | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        # Every (field, reason) the caller has to fix; one error may name several.
        self.fields = fields if fields is not None else ([(field, message)] if field else [])

    @classmethod
    def of_fields(cls, problems: Iterable[tuple[str, str]]) -> WebhooksError:
        problems = list(problems)
        summary = "; ".join(f"{field}: {reason}" for field, reason in problems[:5])
        return cls(f"invalid input: {summary}", fields=problems)


class NotFound(WebhooksError):
    status = 404
    code = "not_found"


class InvalidInput(WebhooksError):
    status = 422
    code = "invalid"


class PayloadTooLarge(WebhooksError):
    status = 413
    code = "too_large"


class Conflict(WebhooksError):
    status = 409
    code = "conflict"


class Unavailable(WebhooksError):
    """A dependency failed and the request was rolled back: safe to retry."""

    status = 503
    code = "unavailable"


def describe_invalid(exc: Exception) -> str:
    """Why a message could not be read, for the log: where and what kind, never the values (an event's
    fields are customer data)."""
    errors = getattr(exc, "errors", None)
    if callable(errors):
        try:
            found = errors(include_input=False, include_url=False, include_context=False)
        except TypeError:
            found = None
        if found is not None:
            return "; ".join(".".join(str(part) for part in e["loc"]) + f": {e['type']}" for e in found[:10])
    return type(exc).__name__
