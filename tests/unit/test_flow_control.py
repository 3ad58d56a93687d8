"""Flow control and the breaker, end to end through Deliverer.process, counted (never timed).

A real receiver on 127.0.0.1 answers; the queue is an in-memory one with SQS's semantics on a clock
the test moves (visibility, delays, receive counts), so that minutes of retries and probes pass
in a moment and every count is exact.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from tests.receiver import Receiver
from tests.unit.test_delivery import FakeEvents, FakeLog, FakePaces, FakeStore
from webhooks import aws, delivery, queues, safe_http
from webhooks.delivery import Deliverer
from webhooks.delivery_message import DeliveryMessage
from webhooks.hooks import Hook
from webhooks.rate_limit import RateLimiter
from webhooks.settings import Settings

MakeHook = Callable[..., Hook]
START = 1_795_428_000.0
QUEUE = "https://sqs/delivery"
DLQ = "https://sqs/dlq"
VISIBILITY = 720


@dataclass
class Message:
    id: str
    body: str
    visible_at: float
    receives: int = 0


@dataclass
class SimQueue:
    """SQS on a hand-moved clock: what a delivery function sends, hides and deletes."""

    now: float = START
    messages: dict[str, Message] = field(default_factory=dict)
    dead: list[tuple[float, DeliveryMessage]] = field(default_factory=list)
    serial: int = 0

    def put(self, body: str, delay: int = 0) -> None:
        self.serial += 1
        self.messages[f"m{self.serial}"] = Message(f"m{self.serial}", body, self.now + delay)

    def send(self, queue_url: str, outgoing: list[queues.Outgoing]) -> list[str]:
        for m in outgoing:
            if queue_url == DLQ:
                self.dead.append((self.now, DeliveryMessage.model_validate_json(m.body)))
            else:
                self.put(m.body, m.delay_seconds)
        return []

    def change_visibility(self, queue_url: str, delays: list[tuple[queues.QueueRecord, int]]) -> None:
        for record, delay in delays:
            self.messages[record.message_id].visible_at = self.now + delay

    def receive(self, limit: int) -> list[queues.QueueRecord]:
        visible = sorted(
            (m for m in self.messages.values() if m.visible_at <= self.now), key=lambda m: m.visible_at
        )
        records = []
        for m in visible[:limit]:
            m.receives += 1
            m.visible_at = self.now + VISIBILITY
            records.append(queues.QueueRecord(m.id, m.body, f"rh-{m.id}", m.receives))
        return records

    def next_visible(self) -> float | None:
        return min((m.visible_at for m in self.messages.values()), default=None)


@dataclass
class World:
    queue: SimQueue
    deliverer: Deliverer
    receiver: Receiver
    paces: FakePaces
    log: FakeLog

    def run(self, *, until: float, batch: int = 100, rounds: int = 500) -> list[float]:
        """Delivery invocations one after another, the clock jumping to the next visible message;
        returns the clock at each invocation."""
        moments = []
        for _ in range(rounds):
            records = self.queue.receive(batch)
            if not records:
                upcoming = self.queue.next_visible()
                if upcoming is None or upcoming > until:
                    break
                self.queue.now = max(self.queue.now, upcoming)
                continue
            moments.append(self.queue.now)
            failed = {f["itemIdentifier"] for f in self.deliverer.process(records)["batchItemFailures"]}
            for r in records:
                if r.message_id not in failed:
                    del self.queue.messages[r.message_id]
            self.queue.now += 0.5  # the invocation took a while
        return moments

    def delivered(self) -> list[str]:
        return [json.loads(p.body)["id"] for p in self.receiver.posts]


@pytest.fixture
def world(
    env: dict[str, str], make_hook: MakeHook, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Callable[..., World]]:
    made: list[World] = []

    def make(schedule: str = "0,60,600,3600", **hook_fields: Any) -> World:
        receiver = Receiver().start()
        safe_http.clear_caches()
        settings = Settings.from_env(
            {
                **env,
                "DELIVERY_QUEUE_URL": QUEUE,
                "DELIVERY_DLQ_URL": DLQ,
                "RETRY_SCHEDULE": schedule,
                "DELIVERY_MAX_RECEIVE_COUNT": str(len(schedule.split(",")) + 1),
                "ALLOW_HTTP_TARGETS": "true",
                "ALLOW_PRIVATE_TARGETS": "true",
            }
        )
        queue = SimQueue()
        hook = make_hook(id="flooded", url=f"{receiver.url}/hook", format="json", **hook_fields)
        paces, log = FakePaces(), FakeLog()
        monkeypatch.setattr(queues, "send", queue.send)
        monkeypatch.setattr(queues, "change_visibility", queue.change_visibility)
        monkeypatch.setattr(aws, "client", lambda service: FakeEvents())
        limiter = RateLimiter("unused")
        deliverer = Deliverer(
            settings,
            store=FakeStore([hook]),
            log=log,
            limiter=limiter,
            clock=lambda: queue.now,
            paces=paces,  # type: ignore[arg-type]
        )
        for n in range(events):
            queue.put(
                DeliveryMessage(
                    delivery_id=f"msg_{n}",
                    event_id=f"evt_{n}",
                    account="acct-1",
                    hook_id="flooded",
                    type="open",
                    payload={"id": f"e{n}"},
                    created_at=START,
                ).to_body()
            )
        world = World(queue, deliverer, receiver, paces, log)
        made.append(world)
        return world

    events = 0

    def with_events(count: int, **kwargs: Any) -> World:
        nonlocal events
        events = count
        return make(**kwargs)

    yield with_events
    for w in made:
        w.receiver.stop()
    delivery.metrics.clear_metrics()


def test_a_receiver_of_capacity_k_sees_about_k_at_once_and_gets_every_event(
    world: Callable[..., World],
) -> None:
    w = world(300)
    w.receiver.capacity, w.receiver.delay = 3, 0.02
    w.run(until=START + 3600)
    # Every event, once (503s are answered before the receiver looks at the body).
    assert sorted(w.delivered()) == sorted(f"e{n}" for n in range(300))
    assert w.queue.dead == []
    # The window settles at the receiver's capacity: probing one above it now and then.
    assert w.receiver.peak <= 3 + 1
    assert w.receiver.busy <= 0.05 * 300
    # A 503 our own pace caused spent no attempt: every delivery succeeded at its first.
    assert {(a.attempt, a.outcome) for a in w.log.attempts} <= {(1, "succeeded"), (1, "delayed")}


def test_a_down_receiver_gets_one_probe_per_interval_then_everything_when_it_is_back(
    world: Callable[..., World],
) -> None:
    w = world(300)
    w.receiver.status = 502
    moments = w.run(until=START + 200)
    pace = w.paces.paces[("acct-1", "flooded")]
    assert pace.open
    # The run of failures that opened the breaker, then one probe per interval while 300 wait.
    first_batch = len(w.receiver.posts) - (len(moments) - 1)
    probes = w.receiver.posts[-(len(moments) - 1) :] if len(moments) > 1 else []
    assert len(w.receiver.posts) <= 5 + 6  # 5 to open it, then probes at 5, 10, 20, 40, 80, 160 s
    assert len(probes) >= 3
    assert first_batch <= 5 + 1
    # The receiver comes back: the next probe succeeds and everything follows.
    w.receiver.status = 200
    w.run(until=START + 3600)
    assert sorted(w.delivered()[-300:]) == sorted(f"e{n}" for n in range(300))
    assert w.queue.dead == []
    assert not w.paces.paces[("acct-1", "flooded")].open


def test_a_receiver_that_never_comes_back_has_its_deliveries_dead_lettered_within_the_schedule(
    world: Callable[..., World],
) -> None:
    w = world(200, schedule="0,30,60")
    w.receiver.status = 502
    w.run(until=START + 3600)
    assert sorted(m.delivery_id for _, m in w.queue.dead) == sorted(f"msg_{n}" for n in range(200))
    span = 90
    # No earlier than the schedule's span (less its jitter), and not much later.
    assert min(t for t, _ in w.queue.dead) >= START + 0.8 * span - 1
    assert max(t for t, _ in w.queue.dead) <= START + 1.2 * span + 5
    # Far fewer POSTs than attempts the schedule allows (3 x 200): the breaker held them back.
    assert len(w.receiver.posts) < 30
