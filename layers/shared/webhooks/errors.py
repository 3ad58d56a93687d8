"""Domain errors, and validation errors in words a person reads. The API maps each error to one HTTP
status in one place (webhooks/api/errors.py)."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from webhooks.event_types import EventType


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


# What a pattern the API checks means, in words: a person sending a bad value reads these, not the
# regular expression. Filled by `worded()` where each pattern is declared.
PATTERN_WORDS: dict[str, str] = {}

# Parts of a validation error's location that name a branch of a union (`Ref = str | int` gives
# `database.constrained-str` and `database.constrained-int`), not a field the caller sent.
_BRANCH = re.compile(r"^(constrained-|function-|nullable|lax-|json-or-python|tagged-union|union)|^(str|int)$")


def worded(pattern: str, words: str) -> str:
    """Declares a pattern together with what it means for a person; returns the pattern."""
    PATTERN_WORDS[pattern] = words
    return pattern


def _listed(values: Iterable[str]) -> str:
    return ", ".join(values)


def reason(detail: Mapping[str, Any]) -> str:
    """One pydantic error detail in words a person reads: what the value must be (no tags, regexes or
    validator names)."""
    kind = str(detail.get("type", ""))
    ctx: Mapping[str, Any] = detail.get("ctx") or {}
    value = detail.get("input")
    expected = str(ctx.get("expected", ""))
    if kind == "union_tag_invalid" or (kind == "enum" and _is_event_types(expected)):
        got = ctx.get("tag", value)
        return f"unknown event type '{got}'; expected one of {_listed(EventType)}"
    if kind == "union_tag_not_found":
        return f"required: the event type, one of {_listed(EventType)}"
    words = {
        "missing": "required",
        "extra_forbidden": "unknown field",
        "string_too_long": f"must be at most {ctx.get('max_length')} characters",
        "string_too_short": (
            "must not be empty"
            if ctx.get("min_length") == 1
            else f"must be at least {ctx.get('min_length')} characters"
        ),
        "too_long": f"must have at most {ctx.get('max_length')} items",
        "too_short": f"must have at least {ctx.get('min_length')} item(s)",
        "greater_than_equal": f"must be {ctx.get('ge')} or more",
        "greater_than": f"must be more than {ctx.get('gt')}",
        "less_than_equal": f"must be {ctx.get('le')} or less",
        "less_than": f"must be less than {ctx.get('lt')}",
        "int_parsing": "must be a whole number",
        "int_type": "must be a whole number",
        "int_from_float": "must be a whole number",
        "float_parsing": "must be a number",
        "float_type": "must be a number",
        "bool_parsing": "must be true or false",
        "bool_type": "must be true or false",
        "string_type": "must be text",
        "list_type": "must be a list",
        "dict_type": "must be a JSON object",
        "model_type": "must be a JSON object",
        "model_attributes_type": "must be a JSON object",
        "enum": f"must be {expected}",
        "literal_error": f"must be {expected}",
        "string_pattern_mismatch": "must be "
        + PATTERN_WORDS.get(str(ctx.get("pattern")), "made of allowed characters only"),
    }
    if kind in words:
        if value is None and kind.endswith("_type"):
            return "must not be null"
        return words[kind]
    message = str(detail.get("msg", kind or "invalid"))
    # A ValueError raised by one of our validators already speaks to people; pydantic prefixes it.
    return message.removeprefix("Value error, ").removeprefix("Assertion failed, ")


def _is_event_types(expected: str) -> bool:
    return bool(expected) and all(f"'{t}'" in expected for t in EventType)


def field_path(loc: Iterable[int | str], prefix: str = "") -> str:
    """("events", 0, "type") -> "events[0].type", without the names of union branches."""
    path = prefix
    for part in loc:
        text = str(part)
        if isinstance(part, int) or text.isdigit():
            path += f"[{text}]"
        elif path and _BRANCH.match(text):
            continue
        else:
            path += f".{text}" if path else text
    return path or "body"


def problems_of(
    details: Iterable[Mapping[str, Any]], prefix: str = "", skip: int = 0
) -> list[tuple[str, str]]:
    """(field, reason) for each field, a union's branches merged into one reason ("must be A or B")."""
    merged: dict[str, list[str]] = {}
    for detail in details:
        loc = list(detail.get("loc", ()))[skip:]
        if not loc and str(detail.get("type", "")).startswith("union_tag"):
            loc = ["type"]  # the type itself is missing or unknown
        said = merged.setdefault(field_path(loc, prefix), [])
        text = reason(detail)
        if text not in said:
            said.append(text)
    return [(field, " or ".join(_merge(reasons))) for field, reasons in merged.items()]


def _merge(reasons: list[str]) -> list[str]:
    # "must be A", "must be B" -> "must be A", "B": read together as "must be A or B".
    if len(reasons) > 1 and all(r.startswith("must be ") for r in reasons):
        return [reasons[0], *(r.removeprefix("must be ") for r in reasons[1:])]
    return reasons
