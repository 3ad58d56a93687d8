"""webhooks.delivery: one signed POST per attempt, and how a batch of the delivery queue is settled."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from standardwebhooks import Webhook

from tests.receiver import Receiver
from tests.unit.conftest import OLD_SECRET, SECRET, Clock, delivery_record
from webhooks import aws, delivery, queues, safe_http
from webhooks.delivery import USER_AGENT, Deliverer, HookLookup, Sent, post
from webhooks.delivery_log import Attempt
from webhooks.delivery_message import DeliveryMessage
from webhooks.health import Pace
from webhooks.hooks import Hook, HookStatus
from webhooks.safe_http import OutboundPolicy
from webhooks.settings import Settings

MakeHook = Callable[..., Hook]

LOOPBACK = OutboundPolicy(allow_http=True, allow_private=True, connect_timeout=2.0, total_timeout=5.0)
PAYLOAD = {"id": "msg-1", "type": "open", "time": 1795428060, "tags": ["a", "b"]}
FORM_BODY = b"id=msg-1&type=open&time=1795428060&tags%5B%5D=a&tags%5B%5D=b"
JSON_BODY = b'{"id":"msg-1","type":"open","time":1795428060,"tags":["a","b"]}'


# --------------------------------------------------------------------------------------------------
# post(), against a real receiver on 127.0.0.1


@pytest.fixture(scope="module")
def running_receiver() -> Iterator[Receiver]:
    receiver = Receiver().start()
    try:
        yield receiver
    finally:
        receiver.stop()


@pytest.fixture
def receiver(running_receiver: Receiver) -> Receiver:
    safe_http.clear_caches()
    running_receiver.posts.clear()
    running_receiver.status = 200
    running_receiver.extra_headers = {}
    return running_receiver


def test_post_sends_the_form_body_signed_for_standardwebhooks(
    receiver: Receiver, make_hook: MakeHook
) -> None:
    sent = post(make_hook(url=f"{receiver.url}/hook"), "msg_abc", PAYLOAD, LOOPBACK)
    assert (sent.ok, sent.status, sent.error, sent.body) == (True, 200, None, b"ok")
    [received] = receiver.posts
    assert received.path == "/hook"
    assert received.body == FORM_BODY
    assert received.headers["content-type"] == "application/x-www-form-urlencoded"
    assert received.headers["user-agent"] == USER_AGENT
    assert received.headers["webhook-id"] == "msg_abc"
    Webhook(SECRET).verify(received.body, received.headers, json_parse=False)


def test_post_sends_json_to_a_json_hook(receiver: Receiver, make_hook: MakeHook) -> None:
    post(make_hook(url=f"{receiver.url}/hook", format="json"), "msg_abc", PAYLOAD, LOOPBACK)
    [received] = receiver.posts
    assert received.body == JSON_BODY
    assert received.headers["content-type"] == "application/json"
    assert Webhook(SECRET).verify(received.body, received.headers) == PAYLOAD


@pytest.mark.parametrize("secret", [SECRET, OLD_SECRET])
def test_post_during_rotation_verifies_with_either_secret(
    receiver: Receiver, make_hook: MakeHook, secret: str
) -> None:
    hook = make_hook(
        url=f"{receiver.url}/hook",
        previous_secret=OLD_SECRET,
        previous_secret_expires_at=int(time.time()) + 60,
    )
    post(hook, "msg_abc", PAYLOAD, LOOPBACK)
    [received] = receiver.posts
    Webhook(secret).verify(received.body, received.headers, json_parse=False)


def test_post_after_rotation_grace_does_not_verify_with_the_old_secret(
    receiver: Receiver, make_hook: MakeHook
) -> None:
    hook = make_hook(
        url=f"{receiver.url}/hook",
        previous_secret=OLD_SECRET,
        previous_secret_expires_at=int(time.time()) - 1,
    )
    post(hook, "msg_abc", PAYLOAD, LOOPBACK)
    [received] = receiver.posts
    assert len(received.headers["webhook-signature"].split(" ")) == 1


def test_post_answered_500_is_a_failure_with_the_status_and_body(
    receiver: Receiver, make_hook: MakeHook
) -> None:
    receiver.status = 500
    sent = post(make_hook(url=f"{receiver.url}/hook"), "msg_abc", PAYLOAD, LOOPBACK)
    assert (sent.ok, sent.status, sent.error, sent.body, sent.retry_after) == (
        False,
        500,
        "HTTP 500",
        b"nope",
        None,
    )


@pytest.mark.parametrize("status", [429, 503])
def test_post_answered_429_or_503_reads_retry_after(
    receiver: Receiver, make_hook: MakeHook, status: int
) -> None:
    receiver.status = status
    receiver.extra_headers = {"Retry-After": "120"}
    assert post(make_hook(url=f"{receiver.url}/hook"), "msg_abc", PAYLOAD, LOOPBACK).retry_after == 120


def test_post_answered_500_ignores_retry_after(receiver: Receiver, make_hook: MakeHook) -> None:
    receiver.status = 500
    receiver.extra_headers = {"Retry-After": "120"}
    assert post(make_hook(url=f"{receiver.url}/hook"), "msg_abc", PAYLOAD, LOOPBACK).retry_after is None


def test_post_answered_with_a_redirect_is_a_failure_not_followed(
    receiver: Receiver, make_hook: MakeHook
) -> None:
    receiver.status = 302
    receiver.extra_headers = {"Location": "/elsewhere"}
    sent = post(make_hook(url=f"{receiver.url}/hook"), "msg_abc", PAYLOAD, LOOPBACK)
    assert (sent.ok, sent.status) == (False, 302)
    assert [p.path for p in receiver.posts] == ["/hook"]


def test_post_to_a_closed_port_is_a_failure_without_a_status(make_hook: MakeHook) -> None:
    sent = post(make_hook(url="http://127.0.0.1:9/hook"), "msg_abc", PAYLOAD, LOOPBACK)
    assert (sent.ok, sent.status) == (False, None)
    assert sent.error is not None


def test_post_to_a_forbidden_url_sends_nothing(receiver: Receiver, make_hook: MakeHook) -> None:
    sent = post(make_hook(url=f"{receiver.url}/hook"), "msg_abc", PAYLOAD, OutboundPolicy())
    assert (sent.ok, sent.status) == (False, None)
    assert sent.error is not None
    assert receiver.posts == []


def test_post_answered_429_with_a_superscript_retry_after_is_a_failure(
    receiver: Receiver, make_hook: MakeHook
) -> None:
    receiver.status = 429
    receiver.extra_headers = {"Retry-After": "\u00b2"}
    sent = post(make_hook(url=f"{receiver.url}/hook"), "msg_abc", PAYLOAD, LOOPBACK)
    assert (sent.status, sent.retry_after) == (429, None)


def test_post_to_a_receiver_that_closes_the_connection_succeeds(
    receiver: Receiver, make_hook: MakeHook
) -> None:
    receiver.extra_headers = {"Connection": "close"}
    sent = post(make_hook(url=f"{receiver.url}/hook"), "msg_abc", PAYLOAD, LOOPBACK)
    assert (sent.ok, sent.status, sent.error) == (True, 200, None)


# --------------------------------------------------------------------------------------------------
# Sent


@pytest.mark.parametrize(
    ("status", "ok"), [(200, True), (204, True), (299, True), (300, False), (199, False)]
)
def test_sent_is_ok_only_for_2xx(status: int, ok: bool) -> None:
    assert Sent(status=status, duration_ms=1).ok is ok


def test_sent_without_a_status_is_not_ok() -> None:
    assert not Sent(status=None, duration_ms=1, error="connection refused").ok


# --------------------------------------------------------------------------------------------------
# HookLookup


class FakeStore:
    def __init__(self, hooks: list[Hook]) -> None:
        self.hooks = {(h.account, h.id): h for h in hooks}
        self.reads: list[set[tuple[str, str]]] = []
        self.outcomes: list[tuple[str, str, int | None, int | None]] = []
        self.statuses: list[tuple[str, str, HookStatus, str | None]] = []

    def get_many(self, keys: Any) -> dict[tuple[str, str], Hook]:
        keys = set(keys)
        self.reads.append(keys)
        return {k: self.hooks[k] for k in keys if k in self.hooks}

    def record_outcomes(
        self, account: str, hook_id: str, *, succeeded_at: int | None, failed_at: int | None
    ) -> None:
        self.outcomes.append((account, hook_id, succeeded_at, failed_at))

    def set_status(
        self, account: str, hook_id: str, status: HookStatus, *, reason: str | None = None
    ) -> bool:
        self.statuses.append((account, hook_id, status, reason))
        return True


def test_lookup_reads_all_misses_of_a_batch_at_once(make_hook: MakeHook) -> None:
    store = FakeStore([make_hook(id="a"), make_hook(id="b")])
    found = HookLookup(store, clock=Clock()).get_many([("acct-1", "a"), ("acct-1", "b"), ("acct-1", "gone")])
    assert store.reads == [{("acct-1", "a"), ("acct-1", "b"), ("acct-1", "gone")}]
    assert found[("acct-1", "gone")] is None
    assert found[("acct-1", "a")] == make_hook(id="a")


def test_lookup_does_not_read_again_within_the_ttl(make_hook: MakeHook) -> None:
    store, clock = FakeStore([make_hook(id="a")]), Clock()
    lookup = HookLookup(store, ttl=15.0, clock=clock)
    lookup.get_many([("acct-1", "a"), ("acct-1", "gone")])
    clock.now += 14
    lookup.get_many([("acct-1", "a"), ("acct-1", "gone")])
    assert len(store.reads) == 1


def test_lookup_reads_again_after_the_ttl(make_hook: MakeHook) -> None:
    store, clock = FakeStore([make_hook(id="a")]), Clock()
    lookup = HookLookup(store, ttl=15.0, clock=clock)
    lookup.get_many([("acct-1", "a")])
    clock.now += 15
    lookup.get_many([("acct-1", "a")])
    assert len(store.reads) == 2


def test_lookup_remembers_a_hook_changed_by_delivery(make_hook: MakeHook) -> None:
    store = FakeStore([make_hook(id="a")])
    lookup = HookLookup(store, clock=Clock())
    lookup.remember(make_hook(id="a", status="disabled"))
    assert lookup.get_many([("acct-1", "a")])[("acct-1", "a")].status is HookStatus.DISABLED
    assert store.reads == []


# --------------------------------------------------------------------------------------------------
# Deliverer.process, with the store, the log, the limiter, the queues, AWS and the POST replaced

NOW = 1_795_428_000.0
DELIVERY_QUEUE = "https://sqs/delivery"
DLQ = "https://sqs/dlq"


@dataclass
class FakeLog:
    attempts: list[Attempt] = field(default_factory=list)
    failed: list[tuple[DeliveryMessage, str]] = field(default_factory=list)

    chunks: list[int] = field(default_factory=list)

    def write_attempts(self, attempts: list[Attempt]) -> None:
        self.chunks.append(len(attempts))
        self.attempts.extend(attempts)

    def write_failed(self, failures: list[tuple[DeliveryMessage, str]]) -> None:
        self.failed.extend(failures)


@dataclass
class FakeQueues:
    visibility: list[tuple[str, int]] = field(default_factory=list)
    sent: dict[str, list[queues.Outgoing]] = field(default_factory=dict)
    refuse: set[str] = field(default_factory=set)  # queue URLs that refuse every message

    def change_visibility(self, queue_url: str, delays: list[tuple[queues.QueueRecord, int]]) -> None:
        assert queue_url == DELIVERY_QUEUE
        self.visibility.extend((record.message_id, delay) for record, delay in delays)

    def send(self, queue_url: str, messages: list[queues.Outgoing]) -> list[str]:
        if queue_url in self.refuse:
            return [m.id for m in messages]
        self.sent.setdefault(queue_url, []).extend(messages)
        return []

    def messages(self, queue_url: str) -> list[DeliveryMessage]:
        return [DeliveryMessage.model_validate_json(m.body) for m in self.sent.get(queue_url, [])]


@dataclass
class FakeLimiter:
    """Grants `grant` POSTs per call; the next window opens in 0.4 s."""

    grant: int = 1_000
    calls: list[tuple[str, str, int, int]] = field(default_factory=list)

    def take(self, account: str, hook_id: str, limit: int, wanted: int) -> tuple[int, float]:
        self.calls.append((account, hook_id, limit, wanted))
        return min(self.grant, wanted), 0.4


@dataclass
class FakePaces:
    """The paces table in memory; `claims` answers probe claims (True: this function got it)."""

    paces: dict[tuple[str, str], Pace] = field(default_factory=dict)
    saves: list[tuple[str, Pace]] = field(default_factory=list)
    claims: bool = True

    def get_many(self, keys: Any) -> dict[tuple[str, str], Pace]:
        return {k: self.paces.get(k, Pace()) for k in keys}

    def save_many(self, paces: list[tuple[str, str, Pace]], now: float) -> None:
        for account, hook_id, pace in paces:
            self.paces[(account, hook_id)] = pace
            self.saves.append((hook_id, pace))

    def claim_probe(self, account: str, hook_id: str, pace: Pace, now: float) -> bool:
        return self.claims


@dataclass
class FakeEvents:
    entries: list[dict[str, Any]] = field(default_factory=list)

    def put_events(self, Entries: list[dict[str, Any]]) -> dict[str, Any]:
        self.entries.extend(Entries)
        return {"FailedEntryCount": 0}


@dataclass
class FakePost:
    """Answers each POST with the Sent scripted for its hook; records (hook id, delivery id, payload)."""

    answers: dict[str, Sent] = field(default_factory=dict)
    calls: list[tuple[str, str, Any]] = field(default_factory=list)
    # How long each POST is out, so that a hook's POSTs overlap as real ones do (never asserted on).
    pause: float = 0.0

    def __call__(self, hook: Hook, delivery_id: str, payload: Any, policy: OutboundPolicy) -> Sent:
        self.calls.append((hook.id, delivery_id, payload))
        if self.pause:
            time.sleep(self.pause)
        return self.answers.get(hook.id, Sent(status=200, duration_ms=3))


@dataclass
class Bench:
    deliverer: Deliverer
    store: FakeStore
    log: FakeLog
    queues: FakeQueues
    limiter: FakeLimiter
    events: FakeEvents
    post: FakePost
    paces: FakePaces


@pytest.fixture
def bench(env: dict[str, str], make_hook: MakeHook, monkeypatch: pytest.MonkeyPatch) -> Iterator[Bench]:
    settings = Settings.from_env(
        {
            **env,
            "DELIVERY_QUEUE_URL": DELIVERY_QUEUE,
            "DELIVERY_DLQ_URL": DLQ,
            "RETRY_SCHEDULE": "0,5,300",
            "DELIVERY_MAX_RECEIVE_COUNT": "4",
            "EVENT_BUS_NAME": "bus",
        }
    )
    store = FakeStore(
        [
            make_hook(id="hook-ok"),
            make_hook(id="hook-500"),
            make_hook(id="hook-503"),
            make_hook(id="hook-410"),
            make_hook(id="hook-off", status="disabled"),
            make_hook(id="hook-limited", rate_limit=2),
            make_hook(id="hook-batch", format="json", batch_max_events=3, batch_max_wait=10),
        ]
    )
    fakes = FakeQueues(), FakeLimiter(), FakeEvents(), FakePost(), FakeLog()
    fake_queues, limiter, events, fake_post, log = fakes
    fake_post.answers = {
        "hook-500": Sent(status=500, duration_ms=3, error="HTTP 500", body=b"nope"),
        "hook-503": Sent(status=503, duration_ms=3, error="HTTP 503", retry_after=600),
        "hook-410": Sent(status=410, duration_ms=3, error="HTTP 410"),
    }
    monkeypatch.setattr(queues, "change_visibility", fake_queues.change_visibility)
    monkeypatch.setattr(queues, "send", fake_queues.send)
    monkeypatch.setattr(aws, "client", lambda service: events)
    monkeypatch.setattr(delivery, "post", fake_post)
    paces = FakePaces()
    deliverer = Deliverer(settings, store=store, log=log, limiter=limiter, clock=lambda: NOW, paces=paces)  # type: ignore[arg-type]
    yield Bench(deliverer, store, log, fake_queues, limiter, events, fake_post, paces)
    # Metrics accumulate until a handler flushes them; these runs have no handler.
    delivery.metrics.clear_metrics()


def record(
    hook_id: str,
    message_id: str = "r1",
    *,
    receive_count: int = 1,
    attempts: int = 0,
    created_at: float = NOW,
    body: str | None = None,
) -> queues.QueueRecord:
    return delivery_record(
        hook_id,
        message_id,
        {**PAYLOAD, "id": message_id},
        receive_count=receive_count,
        attempts=attempts,
        created_at=created_at,
        body=body,
    )


def outcomes(bench: Bench) -> list[tuple[str, int, str]]:
    return sorted((a.delivery_id, a.attempt, a.outcome) for a in bench.log.attempts)


def test_success_is_not_received_again_and_is_logged(bench: Bench) -> None:
    assert bench.deliverer.process([record("hook-ok")]) == {"batchItemFailures": []}
    assert outcomes(bench) == [("msg_r1", 1, "succeeded")]
    assert (bench.queues.visibility, bench.queues.sent) == ([], {})


def test_attempts_are_logged_in_chunks_of_25_every_one_of_them(bench: Bench) -> None:
    records = [record("hook-ok", f"k{n}") for n in range(60)]
    assert bench.deliverer.process(records) == {"batchItemFailures": []}
    assert sorted(bench.log.chunks) == [10, 25, 25]  # written concurrently: in any order
    assert sorted(a.delivery_id for a in bench.log.attempts) == sorted(f"msg_k{n}" for n in range(60))


def test_each_delivery_is_posted_with_its_own_id_and_payload(bench: Bench) -> None:
    bench.deliverer.process([record("hook-ok", "a"), record("hook-ok", "b")])
    assert sorted(bench.post.calls) == [
        ("hook-ok", "msg_a", {**PAYLOAD, "id": "a"}),
        ("hook-ok", "msg_b", {**PAYLOAD, "id": "b"}),
    ]


def test_failure_is_received_again_after_the_next_delay_of_the_schedule(bench: Bench) -> None:
    assert bench.deliverer.process([record("hook-500")]) == {"batchItemFailures": [{"itemIdentifier": "r1"}]}
    [(message_id, delay)] = bench.queues.visibility
    assert message_id == "r1"
    assert 4 <= delay <= 6
    assert outcomes(bench) == [("msg_r1", 1, "retrying")]
    assert bench.log.attempts[0].error == "HTTP 500: nope"


def test_retry_after_of_a_503_sets_the_delay(bench: Bench) -> None:
    bench.deliverer.process([record("hook-503")])
    assert bench.queues.visibility == [("r1", 600)]


def test_failure_of_the_last_attempt_goes_to_the_dead_letter_queue_and_the_log(bench: Bench) -> None:
    assert bench.deliverer.process([record("hook-500", receive_count=3)]) == {"batchItemFailures": []}
    assert [(m.delivery_id, m.attempts) for m in bench.queues.messages(DLQ)] == [("msg_r1", 0)]
    assert [(m.delivery_id, reason) for m, reason in bench.log.failed] == [
        ("msg_r1", "3 attempts failed; last: HTTP 500")
    ]
    assert outcomes(bench) == [("msg_r1", 3, "failed")]


def test_attempts_made_before_a_resend_count_toward_the_last_attempt(bench: Bench) -> None:
    bench.deliverer.process([record("hook-500", attempts=2, receive_count=1)])
    assert outcomes(bench) == [("msg_r1", 3, "failed")]
    assert len(bench.queues.messages(DLQ)) == 1


def test_record_received_after_its_last_attempt_is_dead_lettered_without_a_post(bench: Bench) -> None:
    assert bench.deliverer.process([record("hook-ok", receive_count=4)]) == {"batchItemFailures": []}
    assert bench.post.calls == []
    assert [reason for _, reason in bench.log.failed] == ["attempts exhausted"]


def test_410_disables_the_hook_dead_letters_the_delivery_and_says_so_on_the_event_bus(bench: Bench) -> None:
    assert bench.deliverer.process([record("hook-410")]) == {"batchItemFailures": []}
    assert bench.store.statuses == [("acct-1", "hook-410", HookStatus.DISABLED, "receiver answered 410 Gone")]
    assert [reason for _, reason in bench.log.failed] == ["receiver answered 410 Gone; hook disabled"]
    assert outcomes(bench) == [("msg_r1", 1, "failed")]
    [entry] = bench.events.entries
    assert (entry["DetailType"], entry["EventBusName"]) == ("Hook Disabled", "bus")
    assert json.loads(entry["Detail"]) == {
        "account": "acct-1",
        "hook_id": "hook-410",
        "url": "https://receiver.example.com/hooks/script.php",
        "reason": "receiver answered 410 Gone",
    }


def test_delivery_to_a_deleted_hook_is_dropped(bench: Bench) -> None:
    assert bench.deliverer.process([record("hook-deleted")]) == {"batchItemFailures": []}
    assert (bench.post.calls, bench.queues.sent, bench.log.attempts) == ([], {}, [])


def test_delivery_to_a_disabled_hook_is_dead_lettered_without_a_post(bench: Bench) -> None:
    assert bench.deliverer.process([record("hook-off")]) == {"batchItemFailures": []}
    assert bench.post.calls == []
    assert [reason for _, reason in bench.log.failed] == ["hook is disabled"]


def test_unreadable_record_is_received_again(bench: Bench) -> None:
    answer = bench.deliverer.process([record("hook-ok", "bad", body="{"), record("hook-ok", "good")])
    assert answer == {"batchItemFailures": [{"itemIdentifier": "bad"}]}
    assert outcomes(bench) == [("msg_good", 1, "succeeded")]


def test_final_delivery_the_dead_letter_queue_refused_is_received_again(bench: Bench) -> None:
    bench.queues.refuse = {DLQ}
    assert bench.deliverer.process([record("hook-410")]) == {"batchItemFailures": [{"itemIdentifier": "r1"}]}
    assert bench.log.failed == []


def test_batch_settles_each_record_on_its_own(bench: Bench) -> None:
    answer = bench.deliverer.process(
        [record("hook-ok", "a"), record("hook-500", "b"), record("hook-ok", "c")]
    )
    assert answer == {"batchItemFailures": [{"itemIdentifier": "b"}]}
    assert outcomes(bench) == [("msg_a", 1, "succeeded"), ("msg_b", 1, "retrying"), ("msg_c", 1, "succeeded")]


# Failing streaks


def test_first_failure_of_a_hook_starts_its_failing_streak(bench: Bench) -> None:
    bench.deliverer.process([record("hook-500")])
    assert bench.store.outcomes == [("acct-1", "hook-500", None, int(NOW))]


def test_success_ends_a_failing_streak(bench: Bench, make_hook: MakeHook) -> None:
    bench.store.hooks[("acct-1", "hook-ok")] = make_hook(id="hook-ok", failing_since=int(NOW) - 60)
    bench.deliverer.process([record("hook-ok")])
    assert bench.store.outcomes == [("acct-1", "hook-ok", int(NOW), None)]


def test_success_without_a_failing_streak_writes_nothing_to_the_hook(bench: Bench) -> None:
    bench.deliverer.process([record("hook-ok")])
    assert bench.store.outcomes == []


def test_hook_failing_for_five_days_is_disabled(bench: Bench, make_hook: MakeHook) -> None:
    bench.store.hooks[("acct-1", "hook-500")] = make_hook(id="hook-500", failing_since=int(NOW) - 432_000)
    bench.deliverer.process([record("hook-500")])
    assert bench.store.statuses == [
        ("acct-1", "hook-500", HookStatus.DISABLED, "no successful delivery for 5 days")
    ]


def test_hook_failing_for_less_than_five_days_stays_active(bench: Bench, make_hook: MakeHook) -> None:
    bench.store.hooks[("acct-1", "hook-500")] = make_hook(id="hook-500", failing_since=int(NOW) - 431_999)
    bench.deliverer.process([record("hook-500")])
    assert bench.store.statuses == []


# Rate limits


def test_rate_limited_hook_takes_its_posts_of_the_batch_at_once(bench: Bench) -> None:
    bench.deliverer.process([record("hook-limited", f"r{i}") for i in range(3)])
    # Its pace is capped at 2/s: two slots fall within this batch's second, the third waits for the next.
    assert bench.limiter.calls == [("acct-1", "hook-limited", 2, 2)]
    [resent] = bench.queues.sent[DELIVERY_QUEUE]
    assert (resent.id, resent.delay_seconds) == ("r2", 2)


def test_hook_without_a_rate_limit_does_not_ask_the_limiter(bench: Bench) -> None:
    bench.deliverer.process([record("hook-ok")])
    assert bench.limiter.calls == []


def test_throttled_deliveries_are_resent_delayed_without_spending_an_attempt(bench: Bench) -> None:
    bench.limiter.grant = 2
    answer = bench.deliverer.process(
        [
            record("hook-limited", "r0"),
            record("hook-limited", "r1"),
            record("hook-limited", "r2", receive_count=2),
        ]
    )
    assert answer == {"batchItemFailures": []}
    assert sorted(d for _, d, _ in bench.post.calls) == ["msg_r0", "msg_r1"]
    [resent] = bench.queues.sent[DELIVERY_QUEUE]
    # One fair-queue group per hook: its backlog never holds up the account's other hooks.
    assert (resent.id, resent.group, resent.delay_seconds) == ("r2", "acct-1#hook-limited", 2)
    # Its second receive made no attempt: the copy counts the one attempt made before.
    assert DeliveryMessage.model_validate_json(resent.body).attempts == 1
    assert outcomes(bench) == [("msg_r0", 1, "succeeded"), ("msg_r1", 1, "succeeded")]


def test_throttled_backlog_is_spread_over_the_next_windows(bench: Bench) -> None:
    bench.limiter.grant = 0
    bench.deliverer.process([record("hook-limited", f"r{i}") for i in range(5)])
    # r0, r1: refused by the limiter, next window; r2-r4: beyond this second, in the pace's slots at 2/s.
    delays = {m.id: m.delay_seconds for m in bench.queues.sent[DELIVERY_QUEUE]}
    assert delays == {"r0": 1, "r1": 1, "r2": 2, "r3": 3, "r4": 3}


def test_throttled_delivery_that_could_not_be_resent_is_hidden_and_received_again(bench: Bench) -> None:
    bench.limiter.grant = 0
    bench.queues.refuse = {DELIVERY_QUEUE}
    assert bench.deliverer.process([record("hook-limited")]) == {
        "batchItemFailures": [{"itemIdentifier": "r1"}]
    }
    assert bench.queues.visibility == [("r1", 1)]


# Batching hooks


def test_batching_hook_holds_a_batch_that_is_not_full_yet(bench: Bench) -> None:
    answer = bench.deliverer.process(
        [record("hook-batch", "a", created_at=NOW - 4), record("hook-batch", "b")]
    )
    assert answer == {"batchItemFailures": []}
    assert bench.post.calls == []
    assert [(m.id, m.delay_seconds) for m in bench.queues.sent[DELIVERY_QUEUE]] == [("a", 6), ("b", 6)]
    assert bench.log.attempts == []


def test_batching_hook_posts_a_full_batch_as_one_json_array(bench: Bench) -> None:
    bench.deliverer.process([record("hook-batch", name) for name in "abc"])
    [(hook_id, delivery_id, payload)] = bench.post.calls
    assert hook_id == "hook-batch"
    assert delivery_id.startswith("msg_batch_")
    assert payload == [{"id": f"msg_{name}", "event": {**PAYLOAD, "id": name}} for name in "abc"]
    assert outcomes(bench) == [
        ("msg_a", 1, "succeeded"),
        ("msg_b", 1, "succeeded"),
        ("msg_c", 1, "succeeded"),
    ]


def test_batching_hook_posts_a_partial_batch_once_its_oldest_has_waited_long_enough(bench: Bench) -> None:
    bench.deliverer.process([record("hook-batch", "a", created_at=NOW - 10), record("hook-batch", "b")])
    [(_, _, payload)] = bench.post.calls
    assert [entry["id"] for entry in payload] == ["msg_a", "msg_b"]


def test_batch_id_is_the_same_for_the_same_deliveries(bench: Bench) -> None:
    bench.deliverer.process([record("hook-batch", name) for name in "abc"])
    bench.deliverer.process([record("hook-batch", name) for name in "cba"])
    assert bench.post.calls[0][1] == bench.post.calls[1][1]


def test_a_delivery_log_that_cannot_be_written_does_not_fail_the_batch(
    bench: Bench, monkeypatch: pytest.MonkeyPatch
) -> None:
    def unavailable(attempts: list[Attempt]) -> None:
        raise RuntimeError("DynamoDB is throttling")

    monkeypatch.setattr(bench.deliverer.ctx.log, "write_attempts", unavailable)
    # Failing the records would POST them again: the receiver already has them.
    records = [record("hook-ok", f"u{n}") for n in range(30)]
    assert bench.deliverer.process(records) == {"batchItemFailures": []}
    assert len(bench.post.calls) == 30


def test_a_rate_limit_that_cannot_be_read_holds_the_hooks_deliveries_back(
    bench: Bench, monkeypatch: pytest.MonkeyPatch
) -> None:
    def unavailable(*args: Any) -> tuple[int, float]:
        raise RuntimeError("DynamoDB is unavailable")

    monkeypatch.setattr(bench.limiter, "take", unavailable)
    answer = bench.deliverer.process([record("hook-limited", "r0"), record("hook-ok", "r1")])
    assert answer == {"batchItemFailures": []}
    assert [d for _, d, _ in bench.post.calls] == ["msg_r1"]  # the other hooks go on
    [held] = bench.queues.sent[DELIVERY_QUEUE]
    assert (held.id, held.delay_seconds) == ("r0", 1)
    assert DeliveryMessage.model_validate_json(held.body).attempts == 0


def test_a_batch_whose_hooks_cannot_be_read_is_sent_back_without_spending_attempts(
    bench: Bench, monkeypatch: pytest.MonkeyPatch
) -> None:
    def unavailable(keys: Any) -> dict[tuple[str, str], Hook]:
        raise RuntimeError("DynamoDB is unavailable")

    monkeypatch.setattr(bench.store, "get_many", unavailable)
    answer = bench.deliverer.process([record("hook-ok", "r0"), record("hook-ok", "r1", receive_count=3)])
    assert answer == {"batchItemFailures": []}
    assert bench.post.calls == []
    sent = {m.id: m for m in bench.queues.sent[DELIVERY_QUEUE]}
    assert sorted(sent) == ["r0", "r1"]
    assert {m.delay_seconds for m in sent.values()} == {30}
    # r1 had been received twice before (two attempts made); this receive made none.
    assert DeliveryMessage.model_validate_json(sent["r1"].body).attempts == 2


def test_post_answered_with_a_5000_digit_retry_after_is_a_failure_with_the_cap(
    receiver: Receiver, make_hook: MakeHook
) -> None:
    receiver.status = 429
    receiver.extra_headers = {"Retry-After": "9" * 5_000}
    sent = post(make_hook(url=f"{receiver.url}/hook"), "msg_abc", PAYLOAD, LOOPBACK)
    assert (sent.ok, sent.status, sent.retry_after) == (False, 429, 43200)


def test_post_that_fails_in_an_unexpected_way_is_a_failed_attempt_not_an_exception(
    receiver: Receiver, make_hook: MakeHook, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Whatever goes wrong inside one POST, the batch's other deliveries must still be settled.
    def broken(headers: Any, now: float) -> int:
        raise RuntimeError("a bug reading the answer")

    monkeypatch.setattr(delivery, "retry_after", broken)
    receiver.status = 503
    sent = post(make_hook(url=f"{receiver.url}/hook"), "msg_abc", PAYLOAD, LOOPBACK)
    assert (sent.ok, sent.status) == (False, None)
    assert sent.error == "internal error: RuntimeError"


# Flow control


def test_a_503_to_a_post_sent_among_others_is_delayed_without_spending_the_attempt(bench: Bench) -> None:
    bench.post.answers["hook-ok"] = Sent(status=503, duration_ms=1, error="HTTP 503", retry_after=7)
    bench.post.pause = 0.05
    bench.deliverer.process([record("hook-ok", f"r{i}") for i in range(4)])
    # Window 2: the first two went together, so their 503s were our pace's doing; the batch's own
    # cut left one at a time after them, whose 503s are the receiver's and spend the attempt.
    resent = {m.id: m for m in bench.queues.sent.get(DELIVERY_QUEUE, [])}
    assert all(m.delay_seconds == 7 for m in resent.values())
    assert all(DeliveryMessage.model_validate_json(m.body).attempts == 0 for m in resent.values())
    delayed = [a for a in bench.log.attempts if a.outcome == "delayed"]
    retrying = [a for a in bench.log.attempts if a.outcome == "retrying"]
    assert len(delayed) == len(resent) >= 1
    assert len(delayed) + len(retrying) == 4
    assert {d for d, _ in bench.queues.visibility} == {a.delivery_id.removeprefix("msg_") for a in retrying}


def test_the_hooks_new_pace_is_written_once_per_batch(bench: Bench) -> None:
    bench.post.pause = 0.02
    bench.deliverer.process([record("hook-ok", f"r{i}") for i in range(10)])
    assert [hook_id for hook_id, _ in bench.paces.saves] == ["hook-ok"]
    assert bench.paces.saves[0][1].window == 4  # slow start: the window was filled, no overload
