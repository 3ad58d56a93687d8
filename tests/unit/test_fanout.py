"""webhooks.fanout: hooks read once per account within the cache's ttl; one delivery per subscribed hook."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from pydantic import ValidationError

from tests.unit.conftest import Clock
from webhooks import ids, queues
from webhooks.delivery_message import DeliveryMessage
from webhooks.fanout import Fanout, HookCache, deliveries_for
from webhooks.hooks import Hook
from webhooks.ingest import IngestMessage

MakeHook = Callable[..., Hook]


class CountingLoader:
    def __init__(self, hooks: dict[str, list[Hook]]) -> None:
        self.hooks = hooks
        self.calls: list[str] = []

    def __call__(self, account: str) -> list[Hook]:
        self.calls.append(account)
        return self.hooks.get(account, [])


@pytest.fixture
def clock() -> Clock:
    return Clock()


# --------------------------------------------------------------------------------------------------
# HookCache


def test_cache_loads_an_account_once_within_the_ttl(make_hook: MakeHook, clock: Clock) -> None:
    hook = make_hook()
    load = CountingLoader({"acct-1": [hook]})
    cache = HookCache(load, ttl=15.0, clock=clock)
    assert cache.get("acct-1") == [hook]
    clock.now += 14.9
    assert cache.get("acct-1") == [hook]
    assert load.calls == ["acct-1"]


def test_cache_loads_an_account_again_after_the_ttl(make_hook: MakeHook, clock: Clock) -> None:
    load = CountingLoader({"acct-1": [make_hook()]})
    cache = HookCache(load, ttl=15.0, clock=clock)
    cache.get("acct-1")
    clock.now += 15.0
    cache.get("acct-1")
    assert load.calls == ["acct-1", "acct-1"]


def test_cache_sees_a_new_hook_after_the_ttl(make_hook: MakeHook, clock: Clock) -> None:
    load = CountingLoader({"acct-1": []})
    cache = HookCache(load, ttl=15.0, clock=clock)
    assert cache.get("acct-1") == []
    load.hooks["acct-1"] = [make_hook()]
    assert cache.get("acct-1") == []
    clock.now += 16
    assert cache.get("acct-1") == [make_hook()]


def test_cache_loads_each_account_separately(make_hook: MakeHook, clock: Clock) -> None:
    load = CountingLoader({"acct-1": [make_hook(account="acct-1")], "acct-2": [make_hook(account="acct-2")]})
    cache = HookCache(load, ttl=15.0, clock=clock)
    assert [h.account for h in cache.get("acct-1")] == ["acct-1"]
    assert [h.account for h in cache.get("acct-2")] == ["acct-2"]
    cache.get("acct-1")
    cache.get("acct-2")
    assert load.calls == ["acct-1", "acct-2"]


def test_cache_remembers_an_account_without_hooks(clock: Clock) -> None:
    load = CountingLoader({})
    cache = HookCache(load, ttl=15.0, clock=clock)
    cache.get("acct-1")
    cache.get("acct-1")
    assert load.calls == ["acct-1"]


# --------------------------------------------------------------------------------------------------
# deliveries_for


def message(event: dict[str, Any], account: str = "acct-1", event_id: str = "evt_1") -> IngestMessage:
    return IngestMessage(account=account, event_id=event_id, event=event)


def test_each_subscribed_hook_gets_one_delivery(sample_events: dict[str, Any], make_hook: MakeHook) -> None:
    hooks = [make_hook(id="hook-a", events=["click"]), make_hook(id="hook-b", events=["click", "open"])]
    deliveries = deliveries_for(message(sample_events["click"]), hooks)
    assert [d.hook_id for d in deliveries] == ["hook-a", "hook-b"]


def test_delivery_carries_the_events_payload(sample_events: dict[str, Any], make_hook: MakeHook) -> None:
    [delivery] = deliveries_for(message(sample_events["click"]), [make_hook(events=["click"])])
    assert delivery.payload == {
        "id": "msg-1001",
        "type": "click",
        "timestamp": "2026-11-23 10:00:00",
        "time": 1795428000,
        "recipient": "jane@example.com",
        "ip": "203.0.113.7",
        "original": "https://shop.example.com/sale?utm=mail",
        "useragent": "Mozilla/5.0",
        "referer": "",
        "tags": ["newsletter", "november"],
    }
    assert list(delivery.payload) == [
        "id", "type", "timestamp", "time", "recipient", "ip", "original", "useragent", "referer", "tags",
    ]  # fmt: skip


def test_delivery_names_its_event_account_hook_and_type(
    sample_events: dict[str, Any], make_hook: MakeHook
) -> None:
    [delivery] = deliveries_for(
        message(sample_events["open"], account="acct-7", event_id="evt_42"),
        [make_hook(account="acct-7", id="hook-a")],
    )
    assert (delivery.event_id, delivery.account, delivery.hook_id, delivery.type, delivery.attempts) == (
        "evt_42",
        "acct-7",
        "hook-a",
        "open",
        0,
    )


def test_delivery_ids_are_the_same_when_an_event_fans_out_twice(
    sample_events: dict[str, Any], make_hook: MakeHook
) -> None:
    hooks = [make_hook(id="hook-a"), make_hook(id="hook-b")]
    first = deliveries_for(message(sample_events["open"]), hooks)
    again = deliveries_for(message(sample_events["open"]), hooks)
    assert [d.delivery_id for d in first] == [d.delivery_id for d in again]


def test_delivery_ids_differ_across_hooks_and_events(
    sample_events: dict[str, Any], make_hook: MakeHook
) -> None:
    hooks = [make_hook(id="hook-a"), make_hook(id="hook-b")]
    first = deliveries_for(message(sample_events["open"], event_id="evt_1"), hooks)
    second = deliveries_for(message(sample_events["open"], event_id="evt_2"), hooks)
    ids = {d.delivery_id for d in first + second}
    assert len(ids) == 4


def test_unsubscribed_hooks_get_no_delivery(sample_events: dict[str, Any], make_hook: MakeHook) -> None:
    hooks = [make_hook(id="hook-a", events=["open"]), make_hook(id="hook-b", events=["bounce"])]
    assert deliveries_for(message(sample_events["click"]), hooks) == []


def test_hook_filtered_on_another_database_gets_no_delivery(
    sample_events: dict[str, Any], make_hook: MakeHook
) -> None:
    # The sample click is of database 12.
    hooks = [make_hook(id="hook-12", database="12"), make_hook(id="hook-13", database="13")]
    assert [d.hook_id for d in deliveries_for(message(sample_events["click"]), hooks)] == ["hook-12"]


def test_subprofile_event_reaches_only_hooks_of_its_collection(
    sample_events: dict[str, Any], make_hook: MakeHook
) -> None:
    # The sample update is of database 12, collection 3.
    hooks = [
        make_hook(id="hook-db", database="12"),
        make_hook(id="hook-c3", database="12", collection="3"),
        make_hook(id="hook-c4", database="12", collection="4"),
    ]
    assert [d.hook_id for d in deliveries_for(message(sample_events["update"]), hooks)] == [
        "hook-db",
        "hook-c3",
    ]


def test_no_hooks_no_deliveries(sample_events: dict[str, Any]) -> None:
    assert deliveries_for(message(sample_events["open"]), []) == []


def test_invalid_event_raises_a_validation_error(make_hook: MakeHook) -> None:
    with pytest.raises(ValidationError):
        deliveries_for(message({"type": "open"}), [make_hook()])


# --------------------------------------------------------------------------------------------------
# Fanout.process, with the queue replaced


class FakeStore:
    def __init__(self, hooks: list[Hook]) -> None:
        self.hooks = hooks
        self.queries: list[str] = []

    def active_hooks(self, account: str) -> list[Hook]:
        self.queries.append(account)
        return [h for h in self.hooks if h.account == account]


class FakeQueue:
    def __init__(self, refuse: set[str] | None = None) -> None:
        self.sent: list[tuple[str, list[queues.Outgoing]]] = []
        self.refuse = refuse or set()

    def __call__(self, queue_url: str, messages: list[queues.Outgoing]) -> list[str]:
        self.sent.append((queue_url, list(messages)))
        return [m.id for m in messages if m.id in self.refuse]


def record(message_id: str, body: Any) -> queues.QueueRecord:
    return queues.QueueRecord(message_id=message_id, body=body if isinstance(body, str) else json.dumps(body))


def ingest_body(event: dict[str, Any], event_id: str, account: str = "acct-1") -> dict[str, Any]:
    return {"account": account, "event_id": event_id, "event": event}


def test_process_queues_one_delivery_per_hook_and_event_grouped_by_hook(
    sample_events: dict[str, Any], make_hook: MakeHook, monkeypatch: pytest.MonkeyPatch
) -> None:
    queue = FakeQueue()
    monkeypatch.setattr(queues, "send", queue)
    fanout = Fanout(FakeStore([make_hook(id="hook-a"), make_hook(id="hook-b")]), "https://sqs/delivery")
    answer = fanout.process(
        [
            record("r1", ingest_body(sample_events["open"], "evt_1")),
            record("r2", ingest_body(sample_events["click"], "evt_2")),
        ]
    )
    assert answer == {"batchItemFailures": []}
    [(url, outgoing)] = queue.sent
    assert url == "https://sqs/delivery"
    bodies = [DeliveryMessage.model_validate_json(m.body) for m in outgoing]
    assert [(b.event_id, b.hook_id) for b in bodies] == [
        ("evt_1", "hook-a"), ("evt_1", "hook-b"), ("evt_2", "hook-a"), ("evt_2", "hook-b"),
    ]  # fmt: skip
    assert [m.id for m in outgoing] == [b.delivery_id for b in bodies]
    # One fair-queue group per hook: a flood to one never holds up the others, of any account.
    assert {m.group for m in outgoing} == {"acct-1#hook-a", "acct-1#hook-b"}


def test_process_reads_the_hooks_of_an_account_once_per_batch(
    sample_events: dict[str, Any], make_hook: MakeHook, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(queues, "send", FakeQueue())
    store = FakeStore([make_hook()])
    Fanout(store, "https://sqs/delivery").process(
        [record(f"r{i}", ingest_body(sample_events["open"], f"evt_{i}")) for i in range(5)]
    )
    assert store.queries == ["acct-1"]


@pytest.mark.parametrize(
    "body", ["not json", {"account": "acct-1"}, {"account": "acct-1", "event": {"type": "x"}}]
)
def test_process_reports_an_unreadable_record_failed_and_keeps_the_others(
    body: Any, sample_events: dict[str, Any], make_hook: MakeHook, monkeypatch: pytest.MonkeyPatch
) -> None:
    queue = FakeQueue()
    monkeypatch.setattr(queues, "send", queue)
    answer = Fanout(FakeStore([make_hook()]), "https://sqs/delivery").process(
        [record("bad", body), record("good", ingest_body(sample_events["open"], "evt_1"))]
    )
    assert answer == {"batchItemFailures": [{"itemIdentifier": "bad"}]}
    assert len(queue.sent[0][1]) == 1


def test_process_reports_the_record_whose_delivery_was_not_queued(
    sample_events: dict[str, Any], make_hook: MakeHook, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(queues, "send", FakeQueue(refuse={ids.delivery_id("evt_2", "hook-1")}))
    answer = Fanout(FakeStore([make_hook()]), "https://sqs/delivery").process(
        [
            record("r1", ingest_body(sample_events["open"], "evt_1")),
            record("r2", ingest_body(sample_events["open"], "evt_2")),
        ]
    )
    assert answer == {"batchItemFailures": [{"itemIdentifier": "r2"}]}
