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


# A token is named, in listings and to revoke it, by the start of its hash: enough to tell tokens apart,
# nothing to sign in with.
TOKEN_ID_LENGTH = 16


def hash_token(token: str) -> str:
    # Tokens carry 256 random bits, so a fast hash is enough (no password stretching needed).
    return hashlib.sha256(token.encode()).hexdigest()


def bearer_token(header: str | None) -> str | None:
    match = _BEARER.match((header or "").strip())
    return match.group(1) if match else None


def allow_all_policy(principal: str, method_arn: str, context: dict[str, str]) -> dict[str, Any]:
    """A TOKEN authorizer's answer allowing every method and path of the stage `method_arn` is in,
    so that API Gateway can cache it for every route of the token."""
    # methodArn: arn:{partition}:execute-api:{region}:{aws_account}:{api_id}/{stage}/{method}/{path}
    arn, _, path = method_arn.partition("/")
    _, partition, _, region, aws_account, api_id = arn.split(":")
    stage = path.split("/")[0]
    return {
        "principalId": principal,
        "policyDocument": {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Action": "execute-api:Invoke",
                    "Effect": "Allow",
                    "Resource": [f"arn:{partition}:execute-api:{region}:{aws_account}:{api_id}/{stage}/*/*"],
                }
            ],
        },
        "context": context,
    }


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

    def tokens(self, account: str | None = None) -> list[dict[str, Any]]:
        """Every token (of `account`, if given) as `{id, account, description, created_at, revoked_at}`,
        oldest first; never the token itself, which is not stored."""
        return sorted(
            (_listed(item) for item in self._items(account)), key=lambda t: (t["created_at"], t["id"])
        )

    def revoke(self, token_id: str) -> dict[str, Any]:
        """Revokes the one token whose hash starts with `token_id` (its id, as listed); returns it as
        listed. LookupError when no token or more than one matches. Revoking twice keeps the first time."""
        prefix = token_id.strip().lower()
        if len(prefix) < 8:
            raise LookupError("give the token's id as `make tokens` lists it (at least 8 characters)")
        matches = [item for item in self._items() if str(item["token_hash"]).startswith(prefix)]
        if len(matches) != 1:
            raise LookupError(f"{len(matches)} tokens have the id {prefix!r}; give exactly one token's id")
        [item] = matches
        answer = self.table.update_item(
            Key={"token_hash": item["token_hash"]},
            UpdateExpression="SET revoked = if_not_exists(revoked, :now)",
            ExpressionAttributeValues={":now": int(time.time())},
            ReturnValues="ALL_NEW",
        )
        return _listed(answer["Attributes"])

    def _items(self, account: str | None = None) -> list[dict[str, Any]]:
        # A scan: tokens are few (people and producers, not customers' end users), and listing is rare.
        if account is None:
            return aws.every_item(self.table.scan)
        return aws.every_item(
            self.table.scan, FilterExpression="account = :a", ExpressionAttributeValues={":a": account}
        )


def _listed(item: dict[str, Any]) -> dict[str, Any]:
    revoked = item.get("revoked")
    return {
        "id": str(item["token_hash"])[:TOKEN_ID_LENGTH],
        "account": str(item["account"]),
        "description": str(item.get("description", "")),
        "created_at": int(item.get("created_at", 0)),
        "revoked_at": int(revoked) if revoked else None,
    }
