"""Identifiers: random where they must be unguessable, derived where retries must reuse them."""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
from typing import Any


def _b32(raw: bytes) -> str:
    return base64.b32encode(raw).decode().rstrip("=").lower()


def new_id(prefix: str, nbytes: int = 16) -> str:
    """`prefix_` + 128 bits of randomness, URL- and file-name-safe."""
    return f"{prefix}_{_b32(secrets.token_bytes(nbytes))}"


def keyed_id(prefix: str, *parts: str) -> str:
    """`prefix_` + 128 bits of SHA-256 over `parts`: the same parts always give the same id, for what
    a repeated request or a second run must find again."""
    digest = hashlib.sha256("\x00".join(parts).encode()).digest()
    return f"{prefix}_{_b32(digest[:16])}"


def delivery_id(event_id: str, hook_id: str) -> str:
    """The same event fanned out to the same hook always gets the same id, so a fan-out that runs
    twice produces deliveries a receiver can de-duplicate on `webhook-id`."""
    return keyed_id("msg", event_id, hook_id)


def event_id(account: str, idempotency_key: str, index: int, event: Any) -> str:
    """The id of the event at `index` of a batch sent with an Idempotency-Key: sent again under the
    same key, the same event gets the same id, and so do its deliveries (delivery_id), so receivers
    de-duplicate a producer's retry on `webhook-id`. The event's content is hashed in as well, so a
    key reused for other events gives them ids of their own: never taken for repeats and dropped."""
    content = json.dumps(event, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return keyed_id("evt", account, idempotency_key, str(index), content)
