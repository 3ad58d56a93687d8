"""Identifiers: random where they must be unguessable, derived where retries must reuse them."""

from __future__ import annotations

import base64
import hashlib
import secrets


def _b32(raw: bytes) -> str:
    return base64.b32encode(raw).decode().rstrip("=").lower()


def new_id(prefix: str, nbytes: int = 16) -> str:
    """`prefix_` + 128 bits of randomness, URL- and file-name-safe."""
    return f"{prefix}_{_b32(secrets.token_bytes(nbytes))}"


def delivery_id(event_id: str, hook_id: str) -> str:
    """The same event fanned out to the same hook always gets the same id, so a fan-out that runs
    twice produces deliveries a receiver can de-duplicate on `webhook-id`."""
    digest = hashlib.sha256(f"{event_id}\x00{hook_id}".encode()).digest()
    return f"msg_{_b32(digest[:16])}"
