"""The delivery log as the API shows it: a hook's attempts, packed several to an item, are spread over
several DynamoDB partitions (one takes ~1,000 writes a second), and read back as one list, newest first,
page by page."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from tests.conftest import LocalStack
from tests.integration.test_pipeline import active_hook
from tests.receiver import Receiver
from webhooks.delivery_log import ATTEMPT_SHARDS, Attempt, DeliveryLog

NOW = 1_795_428_000.0


def attempts(account: str, hook_id: str, count: int, prefix: str) -> list[Attempt]:
    return [
        Attempt(
            account=account,
            hook_id=hook_id,
            delivery_id=f"msg_{prefix}{n:03d}",
            event_id=f"evt_{prefix}{n:03d}",
            type="open",
            attempt=1 + n % 3,
            at=NOW + n * 0.25,
            outcome="succeeded",
            status=200,
            duration_ms=n,
        )
        for n in range(count)
    ]


def test_a_hooks_attempts_span_its_shards_and_page_back_newest_first_once_each(
    local: LocalStack, receiver: Receiver
) -> None:
    account, token = local.token()
    hook = active_hook(local, receiver, token, events=["open"])
    other = active_hook(local, receiver, token, events=["open"])
    log = DeliveryLog(local.url("DeliveriesTable"), keep_days=30)
    # Written as delivery functions write them: a few settled attempts at a time, several hooks mixed.
    mine_written, others = attempts(account, hook["id"], 57, "h"), attempts(account, other["id"], 9, "o")
    for start in range(0, 57, 5):
        log.write_attempts(mine_written[start : start + 5] + others[start // 5 : start // 5 + 1])

    partitions = {item["hook"] for item in local.table("DeliveriesTable").scan()["Items"]}
    mine = {p for p in partitions if p.startswith(f"{account}#{hook['id']}#")}
    assert len(mine) == ATTEMPT_SHARDS > 1

    seen: list[dict[str, Any]] = []
    cursor, pages = None, 0
    while pages < 20:
        query = "?limit=10" + (f"&cursor={cursor}" if cursor else "")
        page = local.call("GET", f"/hooks/{hook['id']}/deliveries{query}", token).json()
        seen += page["attempts"]
        pages += 1
        cursor = page["next_cursor"]
        if not cursor:
            break

    assert pages == 6
    assert [a["delivery_id"] for a in seen] == [f"msg_h{n:03d}" for n in reversed(range(57))]
    assert [a["at"] for a in seen] == sorted((a["at"] for a in seen), reverse=True)
    assert seen[0] | {"at": None} == {
        "delivery_id": "msg_h056",
        "event_id": "evt_h056",
        "type": "open",
        "attempt": 1 + 56 % 3,
        "attempt_of": None,
        "at": None,
        "attempted_at": "2026-11-23T10:00:14.000Z",
        "outcome": "succeeded",
        "next_attempt_at": None,
        "run": 0,
        "status": 200,
        "duration_ms": 56,
        "error": None,
    }


def test_failed_only_pages_back_exactly_the_attempts_that_did_not_succeed_once_each(
    local: LocalStack, receiver: Receiver
) -> None:
    account, token = local.token()
    hook = active_hook(local, receiver, token, events=["open"])
    # Few failures, far apart: most shard reads (3 attempts each) find none, and pages come back short.
    written = [
        replace(a, outcome="failed" if n % 2 else "retrying", status=500, error="HTTP 500")
        if n % 13 == 4
        else a
        for n, a in enumerate(attempts(account, hook["id"], 57, "h"))
    ]
    DeliveryLog(local.url("DeliveriesTable"), keep_days=30).write_attempts(written)

    seen: list[dict[str, Any]] = []
    cursor, pages = None, 0
    while pages < 100:
        query = "?failed_only=true&limit=3" + (f"&cursor={cursor}" if cursor else "")
        page = local.call("GET", f"/hooks/{hook['id']}/deliveries{query}", token).json()
        assert len(page["attempts"]) <= 3
        seen += page["attempts"]
        pages += 1
        cursor = page["next_cursor"]
        if not cursor:
            break

    failing = [a.delivery_id for a in reversed(written) if a.outcome != "succeeded"]
    assert [a["delivery_id"] for a in seen] == failing
    assert {a["outcome"] for a in seen} == {"failed", "retrying"}


def test_attempts_are_packed_one_item_per_hook_per_write_and_none_is_lost(local: LocalStack) -> None:
    log = DeliveryLog(local.url("DeliveriesTable"), keep_days=30)
    log.write_attempts(attempts("acct-p", "hook-a", 25, "a") + attempts("acct-p", "hook-b", 3, "b"))
    items = local.table("DeliveriesTable").scan()["Items"]
    assert sorted(i["hook"].rsplit("#", 1)[0] for i in items) == ["acct-p#hook-a", "acct-p#hook-b"]
    listed, cursor = log.attempts("acct-p", "hook-a", limit=100, cursor=None)
    assert [a["delivery_id"] for a in listed] == [f"msg_a{n:03d}" for n in reversed(range(25))]
    assert cursor is None


def test_a_page_holds_the_newest_attempts_even_when_packs_overlap_in_time(local: LocalStack) -> None:
    log = DeliveryLog(local.url("DeliveriesTable"), keep_days=30)
    # Two functions' packs of the same seconds, interleaved in time.
    evens = [a for a in attempts("acct-o", "hook-a", 40, "x") if int(a.delivery_id[-3:]) % 2 == 0]
    odds = [a for a in attempts("acct-o", "hook-a", 40, "x") if int(a.delivery_id[-3:]) % 2 == 1]
    log.write_attempts(evens)
    log.write_attempts(odds)
    seen: list[str] = []
    cursor = None
    for _ in range(10):
        page, cursor = log.attempts("acct-o", "hook-a", limit=7, cursor=cursor)
        seen += [a["delivery_id"] for a in page]
        if cursor is None:
            break
    assert seen == [f"msg_x{n:03d}" for n in reversed(range(40))]
