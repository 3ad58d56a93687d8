"""Delivering a batch of the delivery queue, in stages (svix's worker is the model):

1. read    the batch's hooks (cached) and their paces (one BatchGetItem)            -- I/O
2. plan    which deliveries go now, which wait, which are given up                  -- pure
3. send    the POSTs, each hook's in flight kept within its window; rate limits     -- the I/O step
4. settle  each delivery's outcome, then each hook's new pace and failing streak    -- pure
5. apply   log writes, visibility changes, re-sends, dead letters, pace writes      -- I/O

Per delivery: 2xx -> done. Any other answer, a timeout or a connection error -> tried again after
the retry schedule's next delay (the record is hidden with ChangeMessageVisibility and reported
failed, so SQS hands it back then). 410 Gone disables the hook. When the attempts are spent, the
delivery goes to the dead-letter queue and into the delivery log as failed, replayable by API.

What a hook's pace (webhooks.health), its rate limit or its batching does not allow now is sent back
to the queue with a delay, as a new message carrying its attempt count: waiting never spends a retry.

All AWS writes of a batch are batched: one log write per 25 attempts (sent as soon as 25 are settled,
while the other POSTs are still out), one visibility change or re-send per 10 records, one rate-limit
update and at most one pace write per hook.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.metrics import MetricUnit

from webhooks import encoding, health, queues, safe_http, signing
from webhooks.delivery_log import BATCH_WRITE_ITEMS, Attempt, DeliveryLog, Outcome
from webhooks.delivery_message import DeliveryMessage
from webhooks.errors import describe_invalid
from webhooks.health import Answer, HookPlan, Pace, PaceStore, Waiting, metrics
from webhooks.hook_store import HookStore
from webhooks.hooks import Hook, HookStatus
from webhooks.rate_limit import RateLimiter
from webhooks.retry import JITTER, next_delay, retry_after
from webhooks.settings import Settings

__all__ = ["Deliverer", "HookLookup", "Sent", "metrics", "post"]

logger = Logger(child=True)

USER_AGENT = "webhooks-delivery/1.0"
ERROR_BODY_CHARS = 500
# SQS delays a message at most 15 minutes; a longer hold is made of several.
MAX_RESEND_DELAY = 900
# Delivery-log writes (BatchWriteItem) in flight at once per function instance.
LOG_WRITERS = 4
# When the hooks table cannot be read, a batch comes back after this long.
LOOKUP_RETRY_SECONDS = 30

HookKey = tuple[str, str]


@dataclass(frozen=True)
class Sent:
    """What one POST did."""

    status: int | None
    duration_ms: int
    error: str | None = None
    body: bytes = b""
    retry_after: int | None = None

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


def post(hook: Hook, delivery_id: str, payload: Any, policy: safe_http.OutboundPolicy) -> Sent:
    """One signed POST of `payload` to the hook, never raising for what the receiver or the network did."""
    body, content_type = encoding.encode(payload, hook.format)
    now = time.time()
    headers = signing.signature_headers(hook.signing_secrets(now), delivery_id, int(now), body)
    headers["content-type"] = content_type
    headers["user-agent"] = USER_AGENT
    started = time.perf_counter()
    try:
        response = safe_http.request("POST", hook.url, body=body, headers=headers, policy=policy)
        asked = retry_after(response.headers, now) if response.status in (429, 503) else None
    except (safe_http.UnsafeUrl, safe_http.OutboundError) as exc:
        return Sent(status=None, duration_ms=int((time.perf_counter() - started) * 1000), error=str(exc))
    except Exception as exc:  # one record's surprise must not fail the whole batch
        logger.exception("POST failed unexpectedly", extra={"hook_id": hook.id, "delivery_id": delivery_id})
        took = int((time.perf_counter() - started) * 1000)
        return Sent(status=None, duration_ms=took, error=f"internal error: {type(exc).__name__}")
    error = None if 200 <= response.status < 300 else f"HTTP {response.status}"
    return Sent(response.status, response.elapsed_ms, error, response.body, asked)


# -- the types the stages pass on ----------------------------------------------------------------------


@dataclass(frozen=True)
class Delivery:
    """A record of the batch, read."""

    record: queues.QueueRecord
    message: DeliveryMessage
    attempt: int  # the number of the attempt this receive would make


@dataclass
class Post:
    """One POST: a single delivery, or several of a batching hook."""

    hook: Hook
    items: list[Delivery]
    probe: bool = False

    @property
    def key(self) -> HookKey:
        return (self.hook.account, self.hook.id)

    @property
    def delivery_id(self) -> str:
        if len(self.items) == 1:
            return self.items[0].message.delivery_id
        ids = "\n".join(sorted(i.message.delivery_id for i in self.items))
        return "msg_batch_" + hashlib.sha256(ids.encode()).hexdigest()[:26]

    @property
    def payload(self) -> Any:
        if self.hook.batch_max_events:
            return [{"id": i.message.delivery_id, "event": i.message.payload} for i in self.items]
        return self.items[0].message.payload


@dataclass(frozen=True)
class Resend:
    """Sent back as a new message with a delay: no attempt was spent."""

    item: Delivery
    delay: int
    reason: str  # held (batching, lookup), throttled (rate limit), paced (flow control), waiting (breaker)
    slot_at: float | None = None


@dataclass(frozen=True)
class Final:
    record: queues.QueueRecord
    message: DeliveryMessage
    reason: str


@dataclass
class Plan:
    """What planning decided for a batch."""

    posts: list[Post] = field(default_factory=list)
    resends: list[Resend] = field(default_factory=list)
    finals: list[Final] = field(default_factory=list)
    hooks: dict[HookKey, Hook] = field(default_factory=dict)
    paces: dict[HookKey, HookPlan] = field(default_factory=dict)


@dataclass(frozen=True)
class Exchange:
    """What one POST of the send step did."""

    post: Post
    sent: Sent
    crowded: bool  # others to the hook were in flight when it went


@dataclass
class Settlement:
    """What settling decided; applied in one go."""

    retries: list[tuple[queues.QueueRecord, int]] = field(default_factory=list)
    resends: list[Resend] = field(default_factory=list)
    finals: list[Final] = field(default_factory=list)
    attempts: list[Attempt] = field(default_factory=list)
    failed_records: set[str] = field(default_factory=set)
    paces: dict[HookKey, tuple[Pace, Pace]] = field(default_factory=dict)  # (before, after)
    streaks: list[tuple[Hook, health.Streak]] = field(default_factory=list)
    breakers_opened: int = 0


@dataclass(frozen=True)
class Context:
    """What the stages need, in one place."""

    settings: Settings
    store: HookStore
    log: DeliveryLog
    limiter: RateLimiter
    paces: PaceStore
    hooks: HookLookup
    clock: Callable[[], float]
    policy: safe_http.OutboundPolicy

    @property
    def schedule(self) -> list[int]:
        return self.settings.retry_schedule


class HookLookup:
    """Hooks by (account, id), cached for `ttl` seconds per warm container: a rotated secret or a
    new URL takes effect within it. Misses of a batch are read with one BatchGetItem."""

    def __init__(
        self, store: HookStore, ttl: float = 15.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.store = store
        self.ttl = ttl
        self.clock = clock
        self._entries: dict[HookKey, tuple[float, Hook | None]] = {}

    def get_many(self, keys: Iterable[HookKey]) -> dict[HookKey, Hook | None]:
        now = self.clock()
        keys = set(keys)
        missing = [k for k in keys if k not in self._entries or self._entries[k][0] <= now]
        if missing:
            found = self.store.get_many(missing)
            for key in missing:
                self._entries[key] = (now + self.ttl, found.get(key))
        return {key: self._entries[key][1] for key in keys}

    def remember(self, hook: Hook) -> None:
        self._entries[(hook.account, hook.id)] = (self.clock() + self.ttl, hook)


# -- 2. plan (pure) ------------------------------------------------------------------------------------


def plan(
    items: list[Delivery],
    hooks: dict[HookKey, Hook | None],
    paces: dict[HookKey, Pace],
    now: float,
    schedule: list[int],
) -> Plan:
    """Pure: which deliveries are POSTed now, which wait (and how long), which are given up."""
    result = Plan()
    span = sum(schedule)
    by_hook: dict[HookKey, list[Delivery]] = defaultdict(list)
    for item in items:
        key = (item.message.account, item.message.hook_id)
        hook = hooks.get(key)
        if hook is None:
            # The customer deleted the hook: there is nobody to deliver to any more.
            logger.info("hook gone; delivery dropped", extra={"delivery_id": item.message.delivery_id})
        elif hook.status is not HookStatus.ACTIVE:
            result.finals.append(Final(item.record, item.message, f"hook is {hook.status.value}"))
        elif item.attempt > len(schedule):
            # Received again after its last attempt (the settling of that attempt did not finish).
            result.finals.append(Final(item.record, item.message, "attempts exhausted"))
        else:
            result.hooks[key] = hook
            by_hook[key].append(item)

    for key, hook_items in by_hook.items():
        hook = result.hooks[key]
        units = _units(hook, hook_items, now, result)
        waiting = [
            Waiting(
                slot_at=unit[0].message.slot_at,
                deadline=min(i.message.created_at for i in unit) + span,
            )
            for unit in units
        ]
        decided = health.plan(paces.get(key, Pace()), waiting, now, hook.rate_limit)
        result.paces[key] = decided
        for index in decided.send:
            result.posts.append(Post(hook, units[index], probe=decided.probe))
        for deferral in decided.deferred:
            reason = "waiting" if decided.pace.open else "paced"
            result.resends += [
                Resend(i, deferral.delay, reason, deferral.slot_at) for i in units[deferral.index]
            ]
        for index in decided.given_up:
            result.finals += [
                Final(i.record, i.message, "the receiver stayed down for the whole retry schedule")
                for i in units[index]
            ]
    # Hooks take turns, so that a flooded hook's POSTs do not queue up the others' behind them.
    result.posts = _interleave(result.posts)
    return result


def _units(hook: Hook, items: list[Delivery], now: float, result: Plan) -> list[list[Delivery]]:
    """The hook's POSTs: one delivery each, or a batching hook's full (or waited-for) batches."""
    size = hook.batch_max_events or 1
    if size == 1:
        return [[item] for item in items]
    items = sorted(items, key=lambda i: i.message.created_at)
    oldest_wait = now - items[0].message.created_at
    if len(items) < size and oldest_wait < hook.batch_max_wait:
        # Not full and nobody has waited long enough: wait for more, together.
        delay = max(1, round(hook.batch_max_wait - oldest_wait))
        result.resends += [Resend(item, delay, "held") for item in items]
        return []
    return [items[start : start + size] for start in range(0, len(items), size)]


def _interleave(posts: list[Post]) -> list[Post]:
    queues_by_hook: dict[HookKey, list[Post]] = defaultdict(list)
    for planned in posts:
        queues_by_hook[planned.key].append(planned)
    lines = list(queues_by_hook.values())
    return [line[i] for i in range(max(map(len, lines), default=0)) for line in lines if i < len(line)]


# -- 4. settle (pure) ----------------------------------------------------------------------------------


def settle_post(exchange: Exchange, now: float, schedule: list[int], into: Settlement) -> None:
    """Pure: the outcome of each delivery of one POST, added to `into`."""
    sent = exchange.sent
    answer = Answer(sent.status, sent.duration_ms, exchange.crowded)
    for item in exchange.post.items:
        message = item.message
        attempt = item.attempt
        next_at: float | None = None
        outcome: Outcome
        if sent.ok:
            outcome = "succeeded"
        elif sent.status == 410:
            outcome = "failed"
            into.finals.append(Final(item.record, message, "receiver answered 410 Gone; hook disabled"))
        elif answer.paced and not exchange.post.probe:
            # Busy because of our own pace: later, in its turn, this attempt not counted.
            outcome = "delayed"
            wait = max(1, sent.retry_after or 1)
            into.resends.append(Resend(item, wait, "paced"))
            next_at = now + wait
        else:
            delay = next_delay(schedule, attempt, sent.retry_after)
            # Attempts that waited behind an open breaker do not stretch the schedule: the delivery is
            # given up by the latest moment its schedule (with jitter) could have taken. A receiver's
            # Retry-After is its own word, and honoured.
            latest = message.created_at + sum(schedule) * (1 + JITTER) - now
            if delay is not None and message.waited and sent.retry_after is None and delay > latest:
                delay = int(latest) if latest >= 1 else None
            if delay is None:
                outcome = "failed"
                into.finals.append(
                    Final(item.record, message, f"{attempt} attempts failed; last: {sent.error}")
                )
            else:
                outcome = "retrying"
                into.retries.append((item.record, delay))
                next_at = now + delay
                into.failed_records.add(item.record.message_id)
        # Successes are in the delivery log table already; at INFO they would cost more in CloudWatch
        # Logs than the whole delivery does in DynamoDB.
        (logger.debug if sent.ok else logger.info)(
            "delivery attempt",
            extra={
                "delivery_id": message.delivery_id,
                "hook_id": message.hook_id,
                "attempt": attempt,
                "status": sent.status,
                "outcome": outcome,
                "duration_ms": sent.duration_ms,
                "error": sent.error,
            },
        )
        into.attempts.append(
            Attempt(
                account=message.account,
                hook_id=message.hook_id,
                delivery_id=message.delivery_id,
                event_id=message.event_id,
                type=message.type,
                attempt=attempt,
                at=now,
                outcome=outcome,
                status=sent.status,
                duration_ms=sent.duration_ms,
                error=None if sent.ok else _describe(sent),
                of=len(schedule),
                next_at=next_at,
                run=message.run,
            )
        )


def settle_hooks(
    plan_: Plan,
    exchanges: list[Exchange],
    gates: dict[HookKey, Gate],
    now: float,
    disable_after: int,
    into: Settlement,
) -> None:
    """Pure: each hook's pace after the batch, and its failing streak."""
    by_hook: dict[HookKey, list[Exchange]] = defaultdict(list)
    for exchange in exchanges:
        by_hook[exchange.post.key].append(exchange)
    for key, decided in plan_.paces.items():
        done = by_hook.get(key, [])
        gate = gates.get(key)
        answers = [Answer(e.sent.status, e.sent.duration_ms, e.crowded) for e in done]
        settled = health.settle(
            decided.pace,
            answers,
            now,
            probe=decided.probe and bool(done),
            filled=gate.filled if gate else False,
            cut_to=gate.limit if gate else decided.window,
        )
        into.paces[key] = (decided.pace, settled.pace)
        into.breakers_opened += settled.opened
        if done:
            hook = plan_.hooks[key]
            decision = health.streak(
                hook.failing_since, [e.sent.status for e in done], int(now), disable_after
            )
            into.streaks.append((hook, decision))


# -- 3. send: the one I/O step -------------------------------------------------------------------------


class Gate:
    """A hook's POSTs in flight within one batch: at most its window, cut at once on overload (at
    most once per round: answers to POSTs sent before a cut do not cut again). It trips like the
    breaker does, so that a receiver found down mid-batch is not tried by every POST behind."""

    def __init__(self, window: float, failures: int = 0) -> None:
        self.limit = window
        self.in_flight = 0
        self.filled = False
        self.failures = failures
        self._started = 0
        self._cut_before = 0
        self._changed = threading.Condition()

    @property
    def tripped(self) -> bool:
        return self.failures >= health.BREAKER_FAILURES and self.limit <= health.MIN_WINDOW

    def enter(self) -> tuple[int, bool] | None:
        """Waits for room; returns (ticket, whether others are in flight), or None once tripped."""
        with self._changed:
            self._changed.wait_for(lambda: self.tripped or self.in_flight < max(1, int(self.limit)))
            if self.tripped:
                return None
            self.in_flight += 1
            self.filled = self.filled or self.in_flight >= int(self.limit)
            ticket = self._started
            self._started += 1
            return ticket, self.in_flight > 1

    def leave(self, ticket: int, answer: Answer) -> None:
        with self._changed:
            self.in_flight -= 1
            self.failures = self.failures + 1 if answer.failure else 0 if answer.ok else self.failures
            if answer.overload and ticket >= self._cut_before:
                self.limit = health.cut(self.limit)
                self._cut_before = self._started
            # One slot freed: one waiter may go (waking all of a hundred waiting threads per answer
            # would cost a fast receiver's batch more CPU than its POSTs); once tripped, all of them.
            if self.tripped:
                self._changed.notify_all()
            else:
                self._changed.notify()


class Deliverer:
    def __init__(
        self,
        settings: Settings,
        store: HookStore | None = None,
        log: DeliveryLog | None = None,
        limiter: RateLimiter | None = None,
        clock: Callable[[], float] = time.time,
        paces: PaceStore | None = None,
        policy: safe_http.OutboundPolicy | None = None,
    ) -> None:
        store = store or HookStore(settings.hooks_table)
        self.ctx = Context(
            settings=settings,
            store=store,
            log=log or DeliveryLog(settings.deliveries_table, settings.delivery_log_days),
            limiter=limiter or RateLimiter(settings.rate_limits_table),
            paces=paces or PaceStore(settings.rate_limits_table),
            hooks=HookLookup(store),
            clock=clock,
            policy=policy
            or safe_http.OutboundPolicy(allow_http=settings.allow_http, allow_private=settings.allow_private),
        )
        self.pool = ThreadPoolExecutor(
            max_workers=settings.delivery_concurrency, thread_name_prefix="deliver"
        )
        # The delivery log's writes, apart from the POSTs so that they never queue behind them.
        self.log_pool = ThreadPoolExecutor(max_workers=LOG_WRITERS, thread_name_prefix="deliver-log")

    def process(self, records: list[queues.QueueRecord]) -> dict[str, Any]:
        ctx = self.ctx
        settlement = Settlement()
        items = _read(records, settlement)
        # 1. read
        try:
            hooks = ctx.hooks.get_many((i.message.account, i.message.hook_id) for i in items)
        except Exception:
            # Nothing can be sent without the hooks. Failing the batch would count a receive, and so
            # an attempt, against every record: send them back for later instead, attempts untouched.
            logger.exception("hooks not readable; batch sent back", extra={"records": len(items)})
            settlement.resends += [Resend(item, LOOKUP_RETRY_SECONDS, "held") for item in items]
            self._resend(settlement)
            return queues.partial_response(settlement.failed_records)
        keys = [key for key, hook in hooks.items() if hook is not None and hook.status is HookStatus.ACTIVE]
        paces_known = True
        try:
            paces = ctx.paces.get_many(keys) if keys else {}
        except Exception:
            # Without the shared pace each hook starts from the cautious default, and it is not saved.
            logger.exception("paces not readable; defaults used", extra={"hooks": len(keys)})
            paces, paces_known = {}, False
        # 2. plan
        now = ctx.clock()
        decided = plan(items, hooks, paces, now, ctx.schedule)
        settlement.resends += decided.resends
        settlement.finals += decided.finals
        # 3. send (and 4. settle each POST as it comes back)
        exchanges, gates, log_writes = self._send(decided, settlement)
        # 4. settle the hooks
        settle_hooks(decided, exchanges, gates, ctx.clock(), ctx.settings.disable_after_seconds, settlement)
        # 5. apply
        self._apply(settlement, log_writes, save_paces=paces_known)
        return queues.partial_response(settlement.failed_records)

    def _send(
        self, decided: Plan, settlement: Settlement
    ) -> tuple[list[Exchange], dict[HookKey, Gate], list[tuple[Future[None], int]]]:
        ctx = self.ctx
        posts = self._claim_probes(decided, settlement)
        posts = self._rate_limit(posts, settlement)
        gates = {key: Gate(p.window, p.pace.failures) for key, p in decided.paces.items()}

        def exchange(planned: Post) -> Exchange | None:
            gate = gates[planned.key]
            entered = gate.enter()
            if entered is None:
                return None
            ticket, crowded = entered
            sent = Sent(status=None, duration_ms=0, error="not sent")
            try:
                sent = post(planned.hook, planned.delivery_id, planned.payload, ctx.policy)
            finally:
                gate.leave(ticket, Answer(sent.status, sent.duration_ms))
            return Exchange(planned, sent, crowded)

        exchanges: list[Exchange] = []
        log_writes: list[tuple[Future[None], int]] = []
        logged = 0
        futures = {self.pool.submit(exchange, p): p for p in posts}
        for future in as_completed(futures):
            done = future.result()
            if done is None:
                # The hook's receiver is down: this one waits for the breaker's first probe.
                delay = health.delay(health.PROBE_FIRST)
                settlement.resends += [Resend(i, delay, "waiting") for i in futures[future].items]
                continue
            exchanges.append(done)
            settle_post(done, ctx.clock(), ctx.schedule, settlement)
            # Each full chunk of attempts is logged now, while the batch's other POSTs are still out.
            while len(settlement.attempts) - logged >= BATCH_WRITE_ITEMS:
                chunk = settlement.attempts[logged : logged + BATCH_WRITE_ITEMS]
                log_writes.append((self.log_pool.submit(ctx.log.write_attempts, chunk), len(chunk)))
                logged += len(chunk)
        if len(settlement.attempts) > logged:
            rest = settlement.attempts[logged:]
            log_writes.append((self.log_pool.submit(ctx.log.write_attempts, rest), len(rest)))
        return exchanges, gates, log_writes

    def _claim_probes(self, decided: Plan, settlement: Settlement) -> list[Post]:
        """A due probe goes out only from the function that claimed it; the others wait for the next."""
        now = self.ctx.clock()
        posts: list[Post] = []
        for planned in decided.posts:
            if planned.probe:
                pace = decided.paces[planned.key].pace
                try:
                    claimed = self.ctx.paces.claim_probe(planned.hook.account, planned.hook.id, pace, now)
                except Exception:
                    logger.exception("probe not claimable", extra={"hook_id": planned.hook.id})
                    claimed = False
                if not claimed:
                    delay = health.delay(max(pace.probe_interval, health.PROBE_FIRST))
                    settlement.resends += [Resend(i, delay, "waiting") for i in planned.items]
                    decided.paces.pop(planned.key)
                    continue
            posts.append(planned)
        return posts

    def _rate_limit(self, posts: list[Post], settlement: Settlement) -> list[Post]:
        """A hook's `rate_limit` caps its pace: one atomic count per hook for all of its POSTs."""
        by_hook: dict[HookKey, list[Post]] = defaultdict(list)
        for planned in posts:
            by_hook[planned.key].append(planned)
        kept: set[int] = set()
        for planned_posts in by_hook.values():
            hook = planned_posts[0].hook
            if not hook.rate_limit:
                kept |= {id(p) for p in planned_posts}
                continue
            try:
                granted, next_window = self.ctx.limiter.take(
                    hook.account, hook.id, hook.rate_limit, len(planned_posts)
                )
            except Exception:
                # Without the shared count the limit cannot be kept: hold this hook's deliveries back
                # a little rather than flood its receiver or fail (and so re-receive) the whole batch.
                logger.exception("rate limit not available", extra={"hook_id": hook.id})
                granted, next_window = 0, 1.0
            kept |= {id(p) for p in planned_posts[:granted]}
            for position, unit in enumerate(planned_posts[granted:]):
                # Spread the backlog over the windows to come instead of all retrying next second.
                delay = min(MAX_RESEND_DELAY, int(next_window + 0.999) + position // hook.rate_limit)
                settlement.resends += [Resend(item, delay, "throttled") for item in unit.items]
        return [p for p in posts if id(p) in kept]

    # -- 5. apply --------------------------------------------------------------------------------------

    def _apply(
        self, settlement: Settlement, log_writes: list[tuple[Future[None], int]], *, save_paces: bool
    ) -> None:
        ctx = self.ctx
        for written, count in log_writes:
            try:
                written.result()
            except Exception:
                # The log is for people; failing the batch over it would POST everything again.
                logger.exception("delivery log not written", extra={"attempts": count})
        queues.change_visibility(ctx.settings.delivery_queue_url, settlement.retries)
        self._resend(settlement)
        if settlement.finals:
            dead = [
                queues.Outgoing(
                    id=f.record.message_id, body=f.message.model_copy(update={"attempts": 0}).to_body()
                )
                for f in settlement.finals
            ]
            not_sent = set(queues.send(ctx.settings.delivery_dlq_url, dead))
            ctx.log.write_failed(
                [(f.message, f.reason) for f in settlement.finals if f.record.message_id not in not_sent]
            )
            # Not parked yet: the record comes back and is settled again, never lost.
            settlement.failed_records |= not_sent
        if save_paces:
            self._save_paces(settlement)
        self._track_hooks(settlement)
        outcomes: dict[str, int] = defaultdict(int)
        for attempt in settlement.attempts:
            outcomes[attempt.outcome] += 1
        for resend in settlement.resends:
            outcomes[resend.reason] += 1
        for name, count in outcomes.items():
            metrics.add_metric(name=f"Deliveries{name.capitalize()}", unit=MetricUnit.Count, value=count)
        if settlement.breakers_opened:
            metrics.add_metric(name="BreakersOpened", unit=MetricUnit.Count, value=settlement.breakers_opened)

    def _save_paces(self, settlement: Settlement) -> None:
        now = self.ctx.clock()
        changed = [
            (account, hook_id, after)
            for (account, hook_id), (before, after) in settlement.paces.items()
            if health.changed(before, after)
        ]
        if changed:
            try:
                self.ctx.paces.save_many(changed, now)
            except Exception:
                # The next batch starts from the paces it reads: a lost write costs one batch's learning.
                logger.exception("paces not saved", extra={"hooks": len(changed)})
        for (account, hook_id), (before, after) in settlement.paces.items():
            if after.open and not before.open:
                logger.warning("breaker opened", extra={"hook_id": hook_id, "account": account})

    def _resend(self, settlement: Settlement) -> None:
        """Sends delayed copies of the records that were not attempted; acks the originals."""
        if not settlement.resends:
            return
        by_id = {r.item.record.message_id: r for r in settlement.resends}
        outgoing = [
            queues.Outgoing(
                id=message_id,
                # This receive spent no attempt: the copy carries the attempts made so far.
                body=r.item.message.model_copy(
                    update={
                        "attempts": r.item.attempt - 1,
                        "slot_at": r.slot_at,
                        "waited": r.item.message.waited or r.reason == "waiting",
                    }
                ).to_body(),
                group=r.item.message.group,
                delay_seconds=r.delay,
            )
            for message_id, r in by_id.items()
        ]
        not_sent = queues.send(self.ctx.settings.delivery_queue_url, outgoing)
        # Could not re-send: keep the original, hidden for the delay (this costs it a receive).
        queues.change_visibility(
            self.ctx.settings.delivery_queue_url, [(by_id[m].item.record, by_id[m].delay) for m in not_sent]
        )
        settlement.failed_records |= set(not_sent)

    def _track_hooks(self, settlement: Settlement) -> None:
        ctx = self.ctx
        for hook, decision in settlement.streaks:
            if decision.disable:
                ctx.hooks.remember(
                    hook.model_copy(
                        update={"status": HookStatus.DISABLED, "disabled_reason": decision.disable}
                    )
                )
                health.disable(ctx.store, hook, decision.disable, ctx.settings.event_bus_name)
            elif decision.succeeded_at is not None:
                ctx.store.record_outcomes(
                    hook.account, hook.id, succeeded_at=decision.succeeded_at, failed_at=None
                )
                ctx.hooks.remember(
                    hook.model_copy(update={"failing_since": None, "last_success_at": decision.succeeded_at})
                )
            elif decision.failing_since is not None:
                ctx.store.record_outcomes(
                    hook.account, hook.id, succeeded_at=None, failed_at=decision.failing_since
                )
                ctx.hooks.remember(hook.model_copy(update={"failing_since": decision.failing_since}))


def _read(records: list[queues.QueueRecord], settlement: Settlement) -> list[Delivery]:
    items: list[Delivery] = []
    for record in records:
        try:
            message = DeliveryMessage.model_validate_json(record.body)
        except ValueError as exc:
            logger.error(
                "unreadable delivery message",
                extra={"message_id": record.message_id, "error": describe_invalid(exc)},
            )
            settlement.failed_records.add(record.message_id)
            continue
        items.append(Delivery(record, message, message.attempts + record.receive_count))
    return items


def _describe(sent: Sent) -> str:
    detail = sent.error or ""
    if sent.body:
        detail += ": " + sent.body[:ERROR_BODY_CHARS].decode("utf-8", errors="replace")
    return detail
