"""The delivery log: every attempt, and every delivery that failed for good (kept for replay).

One table, partitioned by hook:
  hook `account#hook_id#a<shard>`, sk `a#<ms>#<delivery>#<attempt>`
      an attempt (status, duration, error); a hook's attempts are spread over ATTEMPT_SHARDS
      partitions by delivery id, since one partition takes about 1,000 writes a second and a
      flood of opens to one hook can bring more
  hook `account#hook_id`, sk `f#<ms>#<delivery>`
      a delivery that failed for good, with its message, compressed, for replay
Both expire through the table's TTL after the configured number of days. Sort keys begin with the
time, so a hook's attempts, newest first, are the shards' queries merged.
"""

from __future__ import annotations

import base64
import time
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from boto3.dynamodb.conditions import Attr, Key

from webhooks import aws
from webhooks.delivery_message import DeliveryMessage
from webhooks.errors import InvalidInput

BATCH_WRITE_ITEMS = 25
UNPROCESSED_RETRIES = 6


ATTEMPT_SHARDS = 4
# Every attempt's sort key sorts below this ("$" follows "#"): the first page's upper bound.
_ABOVE_ATTEMPTS = "a$"


def partition(account: str, hook_id: str) -> str:
    return f"{account}#{hook_id}"


def attempt_partition(account: str, hook_id: str, shard: int) -> str:
    return f"{account}#{hook_id}#a{shard}"


def attempt_shard(delivery_id: str) -> int:
    return zlib.crc32(delivery_id.encode()) % ATTEMPT_SHARDS


@dataclass(frozen=True)
class Attempt:
    account: str
    hook_id: str
    delivery_id: str
    event_id: str
    type: str
    attempt: int
    at: float
    outcome: str  # succeeded | retrying | failed (throttling is no attempt)
    status: int | None = None
    duration_ms: int | None = None
    error: str | None = None


class DeliveryLog:
    def __init__(self, table_name: str, keep_days: int) -> None:
        self.table_name = table_name
        self.keep_seconds = keep_days * 86_400

    @property
    def table(self) -> Any:
        # Resolved per use (cheap), so a store built at import time follows aws.reset() in tests.
        return aws.table(self.table_name)

    def _expires(self, at: float) -> int:
        return int(at) + self.keep_seconds

    def write_attempts(self, attempts: Sequence[Attempt]) -> None:
        """One BatchWriteItem per 25 attempts. The delivery function calls this with each 25 as
        they are settled, while the rest of its POSTs are still out."""
        items = [self._attempt_item(a) for a in attempts]
        for start in range(0, len(items), BATCH_WRITE_ITEMS):
            self._write_chunk(items[start : start + BATCH_WRITE_ITEMS])

    def _attempt_item(self, a: Attempt) -> dict[str, Any]:
        """The item in DynamoDB's own typed form: built here once, not walked by boto3's serializer
        (which costs the delivery function more CPU than the POST it logs)."""
        item: dict[str, Any] = {
            "hook": {"S": attempt_partition(a.account, a.hook_id, attempt_shard(a.delivery_id))},
            "sk": {"S": f"a#{int(a.at * 1000):013d}#{a.delivery_id}#{a.attempt:03d}"},
            "delivery_id": {"S": a.delivery_id},
            "event_id": {"S": a.event_id},
            "type": {"S": a.type},
            "attempt": {"N": str(a.attempt)},
            "at": {"S": str(round(a.at, 3))},
            "outcome": {"S": a.outcome},
            "expires_at": {"N": str(self._expires(a.at))},
        }
        if a.status is not None:
            item["status"] = {"N": str(a.status)}
        if a.duration_ms is not None:
            item["duration_ms"] = {"N": str(a.duration_ms)}
        if a.error is not None:
            item["error"] = {"S": a.error}
        return item

    def _write_chunk(self, items: list[dict[str, Any]]) -> None:
        request: dict[str, Any] = {self.table_name: [{"PutRequest": {"Item": item}} for item in items]}
        for retry in range(UNPROCESSED_RETRIES):
            answer = aws.client("dynamodb", validate=False).batch_write_item(RequestItems=request)
            request = answer.get("UnprocessedItems") or {}
            if not request:
                return
            # Throttled (a hot hook's partition): back off before sending what was left.
            time.sleep(0.05 * 2**retry)
        raise RuntimeError(f"{len(request.get(self.table_name, []))} log items still unprocessed")

    def write_failed(self, failures: Sequence[tuple[DeliveryMessage, str]]) -> None:
        if not failures:
            return
        now = time.time()
        with self.table.batch_writer() as batch:
            for message, reason in failures:
                batch.put_item(
                    Item={
                        "hook": partition(message.account, message.hook_id),
                        "sk": f"f#{int(now * 1000):013d}#{message.delivery_id}",
                        "delivery_id": message.delivery_id,
                        "failed_at": int(now),
                        "reason": reason[:1000],
                        "message": zlib.compress(message.to_body().encode()),
                        "expires_at": self._expires(now),
                    }
                )

    def attempts(
        self, account: str, hook_id: str, *, limit: int, cursor: str | None, failed_only: bool = False
    ) -> tuple[list[dict[str, Any]], str | None]:
        """A page of the hook's attempts, newest first, and the cursor of the next page (None at
        the end). The cursor is a sort key: every shard goes on below it.

        A shard that stopped early (DynamoDB's Limit counts the items read, before `failed_only`
        filters them) was read only down to its last evaluated key; the page stops at the highest
        such key, so the next one, read below it, neither skips nor repeats an attempt. A filtered
        page may so be short, even empty, with a cursor still following."""
        below = _decode(cursor) if cursor else _ABOVE_ATTEMPTS
        items: list[dict[str, Any]] = []
        read_down_to = ""  # the highest sort key a shard that has more was read down to
        for shard in range(ATTEMPT_SHARDS):
            query: dict[str, Any] = {
                "KeyConditionExpression": Key("hook").eq(attempt_partition(account, hook_id, shard))
                & Key("sk").lt(below),
                "ScanIndexForward": False,
                "Limit": limit,
            }
            if failed_only:
                query["FilterExpression"] = Attr("outcome").ne("succeeded")
            response = self.table.query(**query)
            items += response.get("Items", [])
            if "LastEvaluatedKey" in response:
                read_down_to = max(read_down_to, str(response["LastEvaluatedKey"]["sk"]))
        items.sort(key=lambda item: str(item["sk"]), reverse=True)
        complete = [item for item in items if str(item["sk"]) >= read_down_to]
        page = complete[:limit]
        if len(complete) > limit:
            return page, _encode(str(page[-1]["sk"]))
        return page, (_encode(read_down_to) if read_down_to else None)

    def failed(
        self, account: str, hook_id: str, since: int | None, until: int | None
    ) -> list[dict[str, Any]]:
        low = f"f#{(since or 0) * 1000:013d}"
        high = f"f#{(until * 1000 if until is not None else 10**13 - 1):013d}"
        query: dict[str, Any] = {
            "KeyConditionExpression": Key("hook").eq(partition(account, hook_id))
            & Key("sk").between(low, high)
        }
        items: list[dict[str, Any]] = []
        while True:
            response = self.table.query(**query)
            items.extend(response.get("Items", []))
            if "LastEvaluatedKey" not in response:
                return items
            query["ExclusiveStartKey"] = response["LastEvaluatedKey"]

    def forget_failed(self, items: Sequence[dict[str, Any]]) -> None:
        with self.table.batch_writer() as batch:
            for item in items:
                batch.delete_item(Key={"hook": item["hook"], "sk": item["sk"]})


def restore(item: dict[str, Any]) -> DeliveryMessage:
    raw = item["message"]
    data = raw.value if hasattr(raw, "value") else raw
    return DeliveryMessage.model_validate_json(zlib.decompress(bytes(data)))


def _encode(sk: str) -> str:
    return base64.urlsafe_b64encode(sk.encode()).decode()


def _decode(cursor: str) -> str:
    try:
        sk = base64.urlsafe_b64decode(cursor.encode()).decode()
    except ValueError:
        raise InvalidInput("not a cursor this API returned", field="cursor") from None
    if not sk.startswith("a#"):
        raise InvalidInput("not a cursor this API returned", field="cursor")
    return sk
