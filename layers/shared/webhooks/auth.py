"""Bearer tokens: each maps to one account. Only a hash is stored, so a leaked table leaks no token."""

from __future__ import annotations

import hashlib
import re
import secrets
import time
from typing import Any

from webhooks import aws

TOKEN_PREFIX = "wht_"
_BEARER = re.compile(r"^Bearer\s+(\S{8,512})$", re.IGNORECASE)
ACCOUNT_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"


def hash_token(token: str) -> str:
    # Tokens carry 256 random bits, so a fast hash is enough (no password stretching needed).
    return hashlib.sha256(token.encode()).hexdigest()


def bearer_token(header: str | None) -> str | None:
    match = _BEARER.match((header or "").strip())
    return match.group(1) if match else None


class TokenStore:
    def __init__(self, table_name: str) -> None:
        self.table_name = table_name

    @property
    def table(self) -> Any:
        # Resolved per use (cheap), so a store built at import time follows aws.reset() in tests.
        return aws.table(self.table_name)

    def create(self, account: str, description: str = "", token: str | None = None) -> str:
        if not re.match(ACCOUNT_PATTERN, account):
            raise ValueError(f"account must match {ACCOUNT_PATTERN}")
        token = token or TOKEN_PREFIX + secrets.token_urlsafe(32)
        self.table.put_item(
            Item={
                "token_hash": hash_token(token),
                "account": account,
                "description": description,
                "created_at": int(time.time()),
            }
        )
        return token

    def account_for(self, token: str) -> str | None:
        item = self.table.get_item(Key={"token_hash": hash_token(token)}).get("Item")
        if not item or item.get("revoked"):
            return None
        return str(item["account"])
