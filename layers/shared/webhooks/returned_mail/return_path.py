"""The return path: the envelope sender the platform gives each mail, naming its account and message,
so that whatever comes back to it can be told whose it is. Tamper-proof: it carries an HMAC tag keyed by
the deployment's secret, and an address whose tag does not match is attributed to nobody.

Format (all lowercase, as MTAs may lowercase a local part):

    rp=<account>=<message>=<tag>@<return-path domain>

- `<account>` and `<message>` as they are when they consist of `a-z 0-9 . _ -` and start with a letter or
  digit; otherwise `_` followed by their UTF-8 bytes in base32 (RFC 4648, lowercase, no padding).
- `<tag>`: the first 80 bits of HMAC-SHA256(secret, "rp1" NUL account NUL message), base32, 16 characters.

RFC 5321 allows 64 characters in a local part; most MTAs take more, but keep account and message ids
short (together up to about 40 characters) for the rest.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re

PREFIX = "rp"
# What the events can carry: an account (ingest's) and a message id (an event's `id`).
MAX_ACCOUNT = 64
MAX_MESSAGE = 255
_PLAIN = re.compile(r"[a-z0-9][a-z0-9._-]*")
_TAG_CHARS = 16
_ADDRESS = re.compile(r"rp=([a-z0-9._-]+)=([a-z0-9._-]+)=([a-z2-7]{16})@([a-z0-9.-]+)", re.IGNORECASE)


class ReturnPathError(ValueError):
    """An account or message id that cannot be put in a return path."""


def _tag(secret: bytes, account: str, message: str) -> str:
    mac = hmac.new(secret, b"\x00".join([b"rp1", account.encode(), message.encode()]), hashlib.sha256)
    return base64.b32encode(mac.digest()[:10]).decode().lower()


def _encode(value: str) -> str:
    if _PLAIN.fullmatch(value):
        return value
    return "_" + base64.b32encode(value.encode()).decode().rstrip("=").lower()


def _decode(value: str) -> str | None:
    if not value.startswith("_"):
        return value if _PLAIN.fullmatch(value) else None
    body = value[1:].upper()
    try:
        return base64.b32decode(body + "=" * (-len(body) % 8)).decode()
    except (binascii.Error, ValueError):
        return None


def make(account: str, message: str, *, secret: bytes, domain: str) -> str:
    """The return path for `message` of `account`."""
    if not account or not message:
        raise ReturnPathError("account and message are required")
    if len(account) > MAX_ACCOUNT or len(message) > MAX_MESSAGE:
        raise ReturnPathError(f"account is at most {MAX_ACCOUNT} characters, message at most {MAX_MESSAGE}")
    if not secret:
        raise ReturnPathError("the return-path secret is empty")
    return f"{PREFIX}={_encode(account)}={_encode(message)}={_tag(secret, account, message)}@{domain.lower()}"


def read(address: str, *, secret: bytes, domain: str) -> tuple[str, str] | None:
    """(account, message) when `address` is a return path of `domain` made with `secret`; None when
    it is not one, or is forged or altered."""
    found = _ADDRESS.fullmatch(address.strip().strip("<>").lower())
    if found is None or found.group(4) != domain.lower() or not secret:
        return None
    account, message = _decode(found.group(1)), _decode(found.group(2))
    if (
        account is None
        or message is None
        or not 0 < len(account) <= MAX_ACCOUNT
        or not 0 < len(message) <= MAX_MESSAGE
    ):
        return None
    if not hmac.compare_digest(_tag(secret, account, message), found.group(3)):
        return None
    return account, message


def looks_like_one(address: str, domain: str) -> bool:
    """Whether `address` is at the return-path domain: mail there that does not `read` is forged."""
    return address.strip().strip("<>").lower().endswith("@" + domain.lower())
