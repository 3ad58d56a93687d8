"""Request bodies: the original product's form encoding, or JSON."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from enum import StrEnum
from typing import Any
from urllib.parse import quote_plus


class Format(StrEnum):
    FORM = "form"
    JSON = "json"


CONTENT_TYPES = {
    Format.FORM: "application/x-www-form-urlencoded",
    Format.JSON: "application/json",
}


def _pairs(key: str, value: Any, out: list[tuple[str, str]]) -> None:
    # PHP's convention, which the original receivers parse: fields[name]=v, tags[]=a, a[b][c]=v.
    if isinstance(value, Mapping):
        for name, item in value.items():
            _pairs(f"{key}[{name}]", item, out)
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            # tags[]=a for scalars; a nested array needs its index to stay one element (a[0][b]=v).
            _pairs(f"{key}[{index}]" if isinstance(item, Mapping | list | tuple) else f"{key}[]", item, out)
    elif value is None:
        out.append((key, ""))
    elif isinstance(value, bool):
        out.append((key, "1" if value else "0"))
    else:
        out.append((key, str(value)))


# What quote_plus leaves as it is: most ids, types and numbers of a payload are made of these only.
_UNRESERVED = re.compile(r"[A-Za-z0-9_.~-]*")


def _quote(text: str) -> str:
    return text if _UNRESERVED.fullmatch(text) else quote_plus(text)


def encode_form(payload: Mapping[str, Any]) -> bytes:
    """application/x-www-form-urlencoded, exactly as urllib.parse.urlencode writes it."""
    pairs: list[tuple[str, str]] = []
    for key, value in payload.items():
        _pairs(key, value, pairs)
    return "&".join(f"{_quote(key)}={_quote(value)}" for key, value in pairs).encode()


def encode_json(payload: Any) -> bytes:
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()


def encode(payload: Any, fmt: Format) -> tuple[bytes, str]:
    """The body and its content type. A list (a batch) is always JSON."""
    if fmt is Format.FORM and isinstance(payload, Mapping):
        return encode_form(payload), CONTENT_TYPES[Format.FORM]
    return encode_json(payload), CONTENT_TYPES[Format.JSON]
