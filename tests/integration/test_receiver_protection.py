"""Receivers are protected: per-hook rate limits across the whole delivery path, and batching."""

from __future__ import annotations

import json
import time
from typing import Any

from standardwebhooks import Webhook

from tests.conftest import LocalStack
from tests.integration.test_pipeline import active_hook
from tests.receiver import Receiver


def opens(count: int) -> list[dict[str, Any]]:
    return [{"type": "open", "id": f"msg-{i}", "recipient": f"r{i}@example.com"} for i in range(count)]


def drain_until(local: LocalStack, receiver: Receiver, count: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while len(receiver.posts) < count and time.monotonic() < deadline:
        local.drain(timeout=1)
        time.sleep(0.05)


def test_a_rate_limited_hook_gets_at_most_its_rate_and_in_the_end_everything(
    local: LocalStack, receiver: Receiver
) -> None:
    limit, total = 4, 16
    _, token = local.token()
    hook = active_hook(local, receiver, token, events=["open"], rate_limit=limit, format="json")
    local.call("POST", "/events", token, {"events": opens(total)})
    drain_until(local, receiver, total, timeout=30)

    posts = receiver.posts
    ids = [json.loads(p.body)["id"] for p in posts]
    assert sorted(ids) == sorted(e["id"] for e in opens(total))  # all of them, once each: none dropped
    for post in posts:
        Webhook(hook["secret"]).verify(post.body, post.headers)
    # At most `limit` per second, on average over the run and in every second of the limiter's clock
    # (arrivals may straddle a second boundary by a few milliseconds, so the receiver's per-second
    # count may show two adjacent windows: never more than 2 x limit).
    arrivals = sorted(p.at for p in posts)
    assert arrivals[-1] - arrivals[0] >= (total / limit - 1) - 0.2
    assert max(sum(1 for t in arrivals if start <= t < start + 1) for start in arrivals) <= 2 * limit
    # Throttling is not a failed attempt: every delivery succeeded at its first attempt.
    log = local.call("GET", f"/hooks/{hook['id']}/deliveries?limit=100", token).json()["attempts"]
    assert {(a["attempt"], a["outcome"]) for a in log} == {(1, "succeeded")}
    assert len(log) == total


def test_other_hooks_are_not_slowed_by_a_rate_limited_one(local: LocalStack, receiver: Receiver) -> None:
    _, token = local.token()
    active_hook(local, receiver, token, events=["open"], rate_limit=1)
    other = Receiver().start()
    try:
        active_hook(local, other, token, events=["open"])
        local.call("POST", "/events", token, {"events": opens(5)})
        local.pump("IngestQueue")
        local.pump("DeliveryQueue")
        assert len(other.posts) == 5
        assert len(receiver.posts) == 1
    finally:
        other.stop()


def test_a_batching_hook_gets_events_together_as_a_signed_json_array(
    local: LocalStack, receiver: Receiver
) -> None:
    _, token = local.token()
    hook = active_hook(local, receiver, token, events=["open"], format="json", batch={"max_events": 5})
    local.call("POST", "/events", token, {"events": opens(12)})
    local.pump("IngestQueue")
    local.pump("DeliveryQueue")
    posts = receiver.posts
    assert sorted(len(json.loads(p.body)) for p in posts) == [2, 5, 5]
    events = []
    for post in posts:
        batch = Webhook(hook["secret"]).verify(post.body, post.headers)
        assert all(set(item) == {"id", "event"} for item in batch)
        events += [item["event"]["id"] for item in batch]
    assert sorted(events) == sorted(e["id"] for e in opens(12))


def test_a_batch_that_does_not_fill_is_sent_after_its_wait(local: LocalStack, receiver: Receiver) -> None:
    _, token = local.token()
    active_hook(
        local,
        receiver,
        token,
        events=["open"],
        format="json",
        batch={"max_events": 10, "max_wait_seconds": 2},
    )
    started = time.monotonic()
    local.call("POST", "/events", token, {"events": opens(3)})
    local.pump("IngestQueue")
    local.pump("DeliveryQueue")
    assert receiver.posts == []  # held, waiting for more
    drain_until(local, receiver, 1, timeout=10)
    [post] = receiver.posts
    assert len(json.loads(post.body)) == 3
    assert time.monotonic() - started >= 1.5


def test_batching_needs_json(local: LocalStack, receiver: Receiver) -> None:
    _, token = local.token()
    answer = local.call(
        "POST", "/hooks", token, {"url": receiver.url + "/x", "events": ["open"], "batch": {"max_events": 5}}
    )
    assert answer.status == 422
    assert answer.json()["error"]["fields"][0]["field"] == "batch"


def test_get_hook_shows_the_pace_learned_from_the_receiver(local: LocalStack, receiver: Receiver) -> None:
    _, token = local.token()
    hook = active_hook(local, receiver, token, events=["open"])
    fresh = local.call("GET", f"/hooks/{hook['id']}", token).json()["pace"]
    assert fresh == {
        "window": 2.0,
        "rate_per_second": None,
        "baseline_ms": None,
        "breaker": "closed",
        "next_probe_at": None,
    }
    local.call("POST", "/events", token, {"events": opens(20)})
    drain_until(local, receiver, 20, timeout=30)
    learned = local.call("GET", f"/hooks/{hook['id']}", token).json()["pace"]
    assert learned["baseline_ms"] is not None
    assert learned["window"] > 2.0  # it kept up: slow start doubled the window
    assert learned["breaker"] == "closed"
