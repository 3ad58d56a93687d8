"""The delivery log: every attempt, and every delivery that failed for good (kept for replay).

One table, partitioned by hook:
  hook `account#hook_id#a<shard>`, sk `a#<newest ms>#<pack>`
      a pack of up to 25 of the hook's attempts settled together (status, duration, error each),
      compressed: one write unit for what was 25. A write unit is what the delivery path paid per
      attempt; packed, the log costs a few cents per million attempts instead of $0.625. Packs are
      spread over ATTEMPT_SHARDS partitions, since one partition takes about 1,000 writes a second
  hook `account#hook_id`, sk `f#<ms>#<delivery>`
      a delivery that failed for good, with its message, compressed, for replay
Both expire through the table's TTL after the configured number of days. A pack's attempts are at
most PACK_SPAN_MS apart (the writer splits a pack that would be wider), so a hook's attempts, newest
first, are the packs of the shards' queries merged: a pack whose newest attempt is older than the
page's oldest cannot hold one newer.
"""

from __future__ import annotations

import base64
import heapq
import json
import time
import uuid
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from boto3.dynamodb.conditions import Key

from webhooks import aws
from webhooks.delivery_message import DeliveryMessage
from webhooks.errors import InvalidInput

BATCH_WRITE_ITEMS = 25
UNPROCESSED_RETRIES = 6


ATTEMPT_SHARDS = 4
# Every attempt's sort key sorts below this ("$" follows "#"): the first page's upper bound.
_ABOVE_ATTEMPTS = "a$"
# The attempts of one pack are settled by one batch, at most this far apart.
PACK_SPAN_MS = 300_000
PACK_ATTEMPTS = BATCH_WRITE_ITEMS
# Packs read per query while merging a page.
PACKS_PER_QUERY = 10
_FIELDS = (
    "delivery_id", "event_id", "type", "attempt", "at", "outcome", "status", "duration_ms", "error",
    "of", "next_at", "run",
)  # fmt: skip


def partition(account: str, hook_id: str) -> str:
    return f"{account}#{hook_id}"


def attempt_partition(account: str, hook_id: str, shard: int) -> str:
    return f"{account}#{hook_id}#a{shard}"


def attempt_shard(delivery_id: str) -> int:
    """A pack's shard, from its first delivery: spread like the deliveries, the same on every run."""
    return zlib.crc32(delivery_id.encode()) % ATTEMPT_SHARDS


def attempt_key(ms: int, delivery_id: str, attempt: int) -> str:
    """Where an attempt sorts: the cursor of a page is the last one's."""
    return f"a#{ms:013d}#{delivery_id}#{attempt:03d}"


# What an attempt came to. `delayed`: busy because of our own pace (a 429/503 among others in flight),
# tried again later and not counted as an attempt.
Outcome = Literal["succeeded", "retrying", "failed", "delayed"]
# The attempts that did not succeed, final ones included: what "failures only" shows.
UNSUCCESSFUL: frozenset[Outcome] = frozenset({"retrying", "failed"})


@dataclass(frozen=True)
class Attempt:
    account: str
    hook_id: str
    delivery_id: str
    event_id: str
    type: str
    attempt: int
    at: float
    outcome: Outcome
    status: int | None = None
    duration_ms: int | None = None
    error: str | None = None
    of: int | None = None  # the attempts the retry schedule allows
    next_at: float | None = None  # when it is tried again (retrying, delayed)
    run: int = 0  # 0: the first delivery; n: the n-th replay


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
        """One pack per hook of these attempts (split at PACK_ATTEMPTS and PACK_SPAN_MS), up to 25 packs
        per BatchWriteItem. The delivery function calls this with each 25 attempts as they are
        settled, while the rest of its POSTs are still out."""
        items = [self._pack_item(pack) for pack in _packs(attempts)]
        for start in range(0, len(items), BATCH_WRITE_ITEMS):
            self._write_chunk(items[start : start + BATCH_WRITE_ITEMS])

    def _pack_item(self, pack: list[Attempt]) -> dict[str, Any]:
        """The item in DynamoDB's own typed form: built here once, not walked by boto3's serializer
        (which costs the delivery function more CPU than the POST it logs)."""
        first = pack[0]
        pack_id = uuid.uuid4().hex[:16]
        newest = max(int(a.at * 1000) for a in pack)
        rows = [
            [
                *(a.delivery_id, a.event_id, a.type, a.attempt, round(a.at, 3), a.outcome, a.status),
                *(a.duration_ms, a.error, a.of, None if a.next_at is None else round(a.next_at, 3), a.run),
            ]
            for a in pack
        ]
        packed = zlib.compress(json.dumps(rows, separators=(",", ":")).encode())
        return {
            "hook": {"S": attempt_partition(first.account, first.hook_id, attempt_shard(first.delivery_id))},
            "sk": {"S": f"a#{newest:013d}#{pack_id}"},
            "attempts": {"B": packed},
            "expires_at": {"N": str(self._expires(max(a.at for a in pack)))},
        }

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
        self,
        account: str,
        hook_id: str,
        *,
        limit: int,
        cursor: str | None,
        where: Callable[[dict[str, Any]], bool] | None = None,
    ) -> tuple[list[dict[str, Any]], str | None]:
        """A page of the hook's attempts, newest first, and the cursor of the next page (None at
        the end). The cursor is the last attempt's key: the next page goes on below it."""
        below = _decode(cursor) if cursor else _ABOVE_ATTEMPTS
        # Packs whose newest attempt is less than a pack's span above the cursor may hold attempts below it.
        upper = below if below == _ABOVE_ATTEMPTS else f"a#{int(below[2:15]) + PACK_SPAN_MS:013d}"
        shards = [
            _Shard(self.table, attempt_partition(account, hook_id, n), upper) for n in range(ATTEMPT_SHARDS)
        ]
        # Packs by their newest attempt, newest first, across the shards.
        heap: list[tuple[int, int]] = []
        for n, shard in enumerate(shards):
            if shard.peek() is not None:
                heapq.heappush(heap, (-shard.newest_ms(), n))
        found: list[tuple[str, dict[str, Any]]] = []
        while heap:
            newest_ms, n = -heap[0][0], heap[0][1]
            if len(found) >= limit:
                found.sort(key=lambda pair: pair[0], reverse=True)
                # Enough, once every attempt of the page is newer than anything the next pack can hold.
                if int(found[limit - 1][0][2:15]) > newest_ms:
                    break
            heapq.heappop(heap)
            for row in _unpack(shards[n].pop()):
                key = attempt_key(int(float(row["at"]) * 1000), row["delivery_id"], int(row["attempt"]))
                if key < below and (where is None or where(row)):
                    found.append((key, row))
            if shards[n].peek() is not None:
                heapq.heappush(heap, (-shards[n].newest_ms(), n))
        found.sort(key=lambda pair: pair[0], reverse=True)
        page = found[:limit]
        more = len(found) > limit or bool(heap)
        return [row for _, row in page], (_encode(page[-1][0]) if more and page else None)

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


def _packs(attempts: Sequence[Attempt]) -> list[list[Attempt]]:
    by_hook: dict[tuple[str, str], list[Attempt]] = {}
    for a in attempts:
        by_hook.setdefault((a.account, a.hook_id), []).append(a)
    packs: list[list[Attempt]] = []
    for hook_attempts in by_hook.values():
        hook_attempts.sort(key=lambda a: a.at)
        pack: list[Attempt] = []
        for a in hook_attempts:
            if pack and (len(pack) == PACK_ATTEMPTS or (a.at - pack[0].at) * 1000 > PACK_SPAN_MS):
                packs.append(pack)
                pack = []
            pack.append(a)
        packs.append(pack)
    return packs


def _unpack(item: dict[str, Any]) -> list[dict[str, Any]]:
    if "attempts" not in item:
        # An attempt logged on its own, before attempts were packed (until its TTL takes it).
        return [{k: item[k] for k in _FIELDS if k in item}]
    raw = item["attempts"]
    data = raw.value if hasattr(raw, "value") else raw
    rows = json.loads(zlib.decompress(bytes(data)))
    # The log omits what an attempt did not have: no status without an answer, no error on success.
    # Rows may be shorter than _FIELDS (packs written before the last fields were added).
    return [{k: v for k, v in zip(_FIELDS, row, strict=False) if v is not None} for row in rows]


class _Shard:
    """One shard's packs below `upper`, newest first, read PACKS_PER_QUERY at a time."""

    def __init__(self, table: Any, partition_key: str, upper: str) -> None:
        self.table = table
        self.query: dict[str, Any] = {
            "KeyConditionExpression": Key("hook").eq(partition_key) & Key("sk").lt(upper),
            "ScanIndexForward": False,
            "Limit": PACKS_PER_QUERY,
        }
        self.items: list[dict[str, Any]] = []
        self.done = False

    def peek(self) -> dict[str, Any] | None:
        if not self.items and not self.done:
            response = self.table.query(**self.query)
            self.items = list(response.get("Items", []))
            if "LastEvaluatedKey" in response:
                self.query["ExclusiveStartKey"] = response["LastEvaluatedKey"]
            else:
                self.done = True
        return self.items[0] if self.items else None

    def newest_ms(self) -> int:
        """The time of the next pack's newest attempt (its sort key's)."""
        item = self.peek()
        assert item is not None
        return int(str(item["sk"])[2:15])

    def pop(self) -> dict[str, Any]:
        item = self.peek()
        assert item is not None
        self.items.pop(0)
        return item


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
