"""DynamoDB access for hooks. Keys: (account, id); the sparse ActiveHooks index (active_account, id)
holds only active hooks, so fan-out reads an account's deliverable hooks in one query."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterable
from typing import Any

from boto3.dynamodb.conditions import Attr, Key
from botocore.exceptions import ClientError

from webhooks import aws
from webhooks.errors import Conflict, InvalidInput, NotFound
from webhooks.hooks import Hook, HookStatus, ValidationCheck

ACTIVE_INDEX = "ActiveHooks"


def _conditional_failed(exc: ClientError) -> bool:
    return exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException"


def encode_cursor(key: dict[str, Any] | None) -> str | None:
    return base64.urlsafe_b64encode(json.dumps(key).encode()).decode() if key else None


def decode_cursor(cursor: str | None, account: str) -> dict[str, Any] | None:
    if not cursor:
        return None
    try:
        key = json.loads(base64.urlsafe_b64decode(cursor.encode()))
    except ValueError:
        raise InvalidInput("not a cursor this API returned", field="cursor") from None
    # A cursor is only ever a key of the caller's own partition.
    if not isinstance(key, dict) or key.get("account") != account or set(key) != {"account", "id"}:
        raise InvalidInput("not a cursor this API returned", field="cursor")
    return key


class HookStore:
    def __init__(self, table_name: str) -> None:
        self.table_name = table_name

    @property
    def table(self) -> Any:
        # Resolved per use (cheap), so a store built at import time follows aws.reset() in tests.
        return aws.table(self.table_name)

    def create(self, hook: Hook) -> bool:
        """False, writing nothing, when the account has a hook of that id already."""
        try:
            self.table.put_item(Item=hook.to_item(), ConditionExpression=Attr("id").not_exists())
        except ClientError as exc:
            if _conditional_failed(exc):
                return False
            raise
        return True

    def get(self, account: str, hook_id: str) -> Hook:
        item = self.table.get_item(Key={"account": account, "id": hook_id}, ConsistentRead=True).get("Item")
        if item is None:
            raise NotFound(f"no hook {hook_id}", field="id")
        return Hook.model_validate(item)

    def get_many(self, keys: Iterable[tuple[str, str]]) -> dict[tuple[str, str], Hook]:
        wanted = [{"account": a, "id": h} for a, h in dict.fromkeys(keys)]
        found: dict[tuple[str, str], Hook] = {}
        for start in range(0, len(wanted), 100):
            request: dict[str, Any] = {self.table.name: {"Keys": wanted[start : start + 100]}}
            while request:
                response = aws.dynamodb().batch_get_item(RequestItems=request)
                for item in response["Responses"].get(self.table.name, []):
                    hook = Hook.model_validate(item)
                    found[(hook.account, hook.id)] = hook
                request = response.get("UnprocessedKeys") or {}
        return found

    def save(self, hook: Hook) -> Hook:
        """Writes a changed hook if nobody else changed it since it was read (optimistic locking)."""
        expected = hook.version
        changed = hook.model_copy(update={"version": expected + 1, "updated_at": int(time.time())})
        try:
            self.table.put_item(
                Item=changed.to_item(),
                ConditionExpression=Attr("version").eq(expected),
            )
        except ClientError as exc:
            if _conditional_failed(exc):
                raise Conflict("the hook was changed by another request; read it again", field="id") from None
            raise
        return changed

    def delete(self, account: str, hook_id: str) -> None:
        try:
            self.table.delete_item(
                Key={"account": account, "id": hook_id}, ConditionExpression=Attr("id").exists()
            )
        except ClientError as exc:
            if _conditional_failed(exc):
                raise NotFound(f"no hook {hook_id}", field="id") from None
            raise

    def page(
        self, account: str, *, limit: int, cursor: str | None, filter_expression: Any = None
    ) -> tuple[list[Hook], str | None]:
        """One page of the account's hooks. Filters apply after the page is read, so a filtered page
        may be short while a cursor still follows; clients page until no cursor comes back."""
        query: dict[str, Any] = {"KeyConditionExpression": Key("account").eq(account), "Limit": limit}
        start = decode_cursor(cursor, account)
        if start:
            query["ExclusiveStartKey"] = start
        if filter_expression is not None:
            query["FilterExpression"] = filter_expression
        response = self.table.query(**query)
        hooks = [Hook.model_validate(item) for item in response.get("Items", [])]
        return hooks, encode_cursor(response.get("LastEvaluatedKey"))

    def active_hooks(self, account: str) -> list[Hook]:
        items = aws.every_item(
            self.table.query, IndexName=ACTIVE_INDEX, KeyConditionExpression=Key("active_account").eq(account)
        )
        return [Hook.model_validate(item) for item in items]

    def set_status(
        self,
        account: str,
        hook_id: str,
        status: HookStatus,
        *,
        reason: str | None = None,
    ) -> bool:
        """Moves a hook to `status`; returns False when the hook is gone."""
        now = int(time.time())
        names = {"#s": "status"}
        values: dict[str, Any] = {":s": status.value, ":now": now, ":one": 1}
        sets = ["#s = :s", "updated_at = :now", "version = version + :one"]
        removes = []
        if status is HookStatus.ACTIVE:
            sets += ["active_account = account", "validated_at = :now"]
            removes += ["disabled_reason", "failing_since"]
        else:
            removes.append("active_account")
        if reason:
            sets.append("disabled_reason = :r")
            values[":r"] = reason
        elif status is not HookStatus.ACTIVE:
            removes.append("disabled_reason")
        expression = "SET " + ", ".join(sets) + (" REMOVE " + ", ".join(removes) if removes else "")
        return self._update_if(
            Key={"account": account, "id": hook_id},
            UpdateExpression=expression,
            ConditionExpression=Attr("id").exists(),
            ExpressionAttributeNames=names,
            ExpressionAttributeValues=values,
        )

    def _update_if(self, **update: Any) -> bool:
        """An UpdateItem with a condition; False, changing nothing, when the condition does not hold."""
        try:
            self.table.update_item(**update)
        except ClientError as exc:
            if _conditional_failed(exc):
                return False
            raise
        return True

    def record_check(self, hook: Hook, check: ValidationCheck, next_check_at: int | None) -> bool:
        """Shows a validation check on the hook, if that validation is still the hook's current one
        (returns False otherwise). Not a change of the hook's settings: version and updated_at stay, so
        a PATCH in flight does not fail for it."""
        values: dict[str, Any] = {
            ":check": check.model_dump(mode="json", exclude_none=True),
            ":validation": hook.validation_id,
            ":pending": HookStatus.PENDING_VALIDATION.value,
        }
        expression = "SET last_check = :check"
        if next_check_at is None:
            expression += " REMOVE next_check_at"
        else:
            expression += ", next_check_at = :next"
            values[":next"] = next_check_at
        return self._update_if(
            Key={"account": hook.account, "id": hook.id},
            UpdateExpression=expression,
            ConditionExpression="validation_id = :validation AND #s = :pending",
            ExpressionAttributeNames={"#s": "status"},
            ExpressionAttributeValues=values,
        )

    def record_outcomes(
        self, account: str, hook_id: str, *, succeeded_at: int | None, failed_at: int | None
    ) -> None:
        """Tracks the failing streak that disables a hook: a success ends it, the first failure starts it."""
        if succeeded_at is not None:
            self.table.update_item(
                Key={"account": account, "id": hook_id},
                UpdateExpression="SET last_success_at = :t REMOVE failing_since",
                ConditionExpression=Attr("id").exists(),
                ExpressionAttributeValues={":t": succeeded_at},
            )
        elif failed_at is not None:
            try:
                self.table.update_item(
                    Key={"account": account, "id": hook_id},
                    UpdateExpression="SET failing_since = :t",
                    ConditionExpression=Attr("id").exists() & Attr("failing_since").not_exists(),
                    ExpressionAttributeValues={":t": failed_at},
                )
            except ClientError as exc:
                if not _conditional_failed(exc):
                    raise
