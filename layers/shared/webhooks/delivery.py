"""Delivering a batch of the delivery queue: POST each to its hook, concurrently, then settle.

Per record: 2xx -> done. Any other answer, a timeout or a connection error -> tried again after
the retry schedule's next delay (the record is hidden with ChangeMessageVisibility and reported
failed, so SQS hands it back then). 410 Gone disables the hook. When the attempts are spent, the
delivery goes to the dead-letter queue and into the delivery log as failed, replayable by API.

Receivers are protected: a hook's rate limit is taken once per batch for all of its records; what
it does not allow is sent back to the queue with a delay (a new message carrying its attempt
count, so throttling never spends a retry). A batching hook's records are POSTed together, or
held back the same way until the batch fills or its oldest record has waited long enough.

All AWS writes of a batch are batched: one log write per 25 attempts (sent as soon as 25 are
settled, while the other POSTs are still out), one visibility change or re-send per 10 records,
one rate-limit update per hook.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections import defaultdict
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit

from webhooks import aws, encoding, queues, safe_http, signing
from webhooks.delivery_log import BATCH_WRITE_ITEMS, Attempt, DeliveryLog
from webhooks.delivery_message import DeliveryMessage
from webhooks.errors import describe_invalid
from webhooks.hook_store import HookStore
from webhooks.hooks import Hook, HookStatus
from webhooks.rate_limit import RateLimiter
from webhooks.retry import next_delay, retry_after
from webhooks.settings import Settings

logger = Logger(child=True)
# The namespace is fixed here, not read from the environment at import (which tests may run first).
metrics = Metrics(namespace="Webhooks")

USER_AGENT = "webhooks-delivery/1.0"
ERROR_BODY_CHARS = 500
# SQS delays a message at most 15 minutes; a longer hold is made of several.
MAX_RESEND_DELAY = 900
# Delivery-log writes (BatchWriteItem) in flight at once per function instance.
LOG_WRITERS = 4
# When the hooks table cannot be read, a batch comes back after this long.
LOOKUP_RETRY_SECONDS = 30


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


@dataclass
class _Item:
    record: queues.QueueRecord
    message: DeliveryMessage
    attempt: int  # the number of the attempt this receive would make


@dataclass
class _Post:
    """One POST: a single delivery, or several of a batching hook."""

    hook: Hook
    items: list[_Item]
    sent: Sent | None = None

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


@dataclass
class _Settlement:
    retries: list[tuple[queues.QueueRecord, int]] = field(default_factory=list)
    # Sent back as new messages with a delay: throttled or held for a batch; no attempt was made.
    resends: list[tuple[_Item, int, str]] = field(default_factory=list)
    finals: list[tuple[queues.QueueRecord, DeliveryMessage, str]] = field(default_factory=list)
    attempts: list[Attempt] = field(default_factory=list)
    failed_records: set[str] = field(default_factory=set)


class HookLookup:
    """Hooks by (account, id), cached for `ttl` seconds per warm container: a rotated secret or a
    new URL takes effect within it. Misses of a batch are read with one BatchGetItem."""

    def __init__(
        self, store: HookStore, ttl: float = 15.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.store = store
        self.ttl = ttl
        self.clock = clock
        self._entries: dict[tuple[str, str], tuple[float, Hook | None]] = {}

    def get_many(self, keys: Iterable[tuple[str, str]]) -> dict[tuple[str, str], Hook | None]:
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


class Deliverer:
    def __init__(
        self,
        settings: Settings,
        store: HookStore | None = None,
        log: DeliveryLog | None = None,
        limiter: RateLimiter | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self.store = store or HookStore(settings.hooks_table)
        self.log = log or DeliveryLog(settings.deliveries_table, settings.delivery_log_days)
        self.limiter = limiter or RateLimiter(settings.rate_limits_table)
        self.clock = clock
        self.hooks = HookLookup(self.store)
        self.policy = safe_http.OutboundPolicy(
            allow_http=settings.allow_http, allow_private=settings.allow_private
        )
        self.pool = ThreadPoolExecutor(
            max_workers=settings.delivery_concurrency, thread_name_prefix="deliver"
        )
        # The delivery log's writes, apart from the POSTs so that they never queue behind them.
        self.log_pool = ThreadPoolExecutor(max_workers=LOG_WRITERS, thread_name_prefix="deliver-log")
        self.max_attempts = len(settings.retry_schedule)

    def process(self, records: list[queues.QueueRecord]) -> dict[str, Any]:
        settle = _Settlement()
        by_hook: dict[tuple[str, str], list[_Item]] = defaultdict(list)
        parsed: list[_Item] = []
        for record in records:
            try:
                message = DeliveryMessage.model_validate_json(record.body)
            except ValueError as exc:
                logger.error(
                    "unreadable delivery message",
                    extra={"message_id": record.message_id, "error": describe_invalid(exc)},
                )
                settle.failed_records.add(record.message_id)
                continue
            parsed.append(_Item(record, message, message.attempts + record.receive_count))
        try:
            hooks = self.hooks.get_many((i.message.account, i.message.hook_id) for i in parsed)
        except Exception:
            # Nothing can be sent without the hooks. Failing the batch would count a receive, and so
            # an attempt, against every record: send them back for later instead, attempts untouched.
            logger.exception("hooks not readable; batch sent back", extra={"records": len(parsed)})
            settle.resends += [(item, LOOKUP_RETRY_SECONDS, "held") for item in parsed]
            self._resend(settle)
            return queues.partial_response(settle.failed_records)

        for item in parsed:
            hook = hooks[(item.message.account, item.message.hook_id)]
            if hook is None:
                # The customer deleted the hook: there is nobody to deliver to any more.
                logger.info("hook gone; delivery dropped", extra={"delivery_id": item.message.delivery_id})
            elif hook.status is not HookStatus.ACTIVE:
                settle.finals.append((item.record, item.message, f"hook is {hook.status.value}"))
            elif item.attempt > self.max_attempts:
                # Received again after its last attempt (the settling of that attempt did not finish).
                settle.finals.append((item.record, item.message, "attempts exhausted"))
            else:
                by_hook[(hook.account, hook.id)].append(item)

        posts: list[_Post] = []
        for key, items in by_hook.items():
            hook = hooks[key]
            assert hook is not None
            posts += self._plan(hook, items, settle)

        log_writes: list[tuple[Future[None], int]] = []
        logged = 0
        for planned, sent in zip(posts, self.pool.map(self._send, posts), strict=True):
            planned.sent = sent
            for item in planned.items:
                self._settle(planned.hook, item, sent, settle)
            # Each full chunk of attempts is logged now, while the batch's other POSTs are still out.
            while len(settle.attempts) - logged >= BATCH_WRITE_ITEMS:
                chunk = settle.attempts[logged : logged + BATCH_WRITE_ITEMS]
                log_writes.append((self.log_pool.submit(self.log.write_attempts, chunk), len(chunk)))
                logged += len(chunk)
        if len(settle.attempts) > logged:
            rest = settle.attempts[logged:]
            log_writes.append((self.log_pool.submit(self.log.write_attempts, rest), len(rest)))
        self._apply(settle, posts, log_writes)
        return queues.partial_response(settle.failed_records)

    # -- planning: batching and rate limits ------------------------------------------------------

    def _plan(self, hook: Hook, items: list[_Item], settle: _Settlement) -> list[_Post]:
        """The POSTs to make now for one hook; the rest is sent back with a delay."""
        now = self.clock()
        size = hook.batch_max_events or 1
        if size > 1:
            items.sort(key=lambda i: i.message.created_at)
            oldest_wait = now - items[0].message.created_at
            if len(items) < size and oldest_wait < hook.batch_max_wait:
                # Not full and nobody has waited long enough: wait for more, together.
                delay = max(1, round(hook.batch_max_wait - oldest_wait))
                settle.resends += [(item, delay, "held") for item in items]
                return []
        units = [items[start : start + size] for start in range(0, len(items), size)]
        if hook.rate_limit:
            try:
                granted, next_window = self.limiter.take(hook.account, hook.id, hook.rate_limit, len(units))
            except Exception:
                # Without the shared count the limit cannot be kept: hold this hook's deliveries back
                # a little rather than flood its receiver or fail (and so re-receive) the whole batch.
                logger.exception("rate limit not available", extra={"hook_id": hook.id})
                granted, next_window = 0, 1.0
            for position, unit in enumerate(units[granted:]):
                # Spread the backlog over the windows to come instead of all retrying next second.
                delay = min(MAX_RESEND_DELAY, int(next_window + 0.999) + position // hook.rate_limit)
                settle.resends += [(item, delay, "throttled") for item in unit]
            units = units[:granted]
        return [_Post(hook, unit) for unit in units]

    def _send(self, planned: _Post) -> Sent:
        return post(planned.hook, planned.delivery_id, planned.payload, self.policy)

    # -- settling ----------------------------------------------------------------------------------

    def _settle(self, hook: Hook, item: _Item, sent: Sent, settle: _Settlement) -> None:
        message = item.message
        if sent.ok:
            outcome = "succeeded"
        elif sent.status == 410:
            outcome = "failed"
            settle.finals.append((item.record, message, "receiver answered 410 Gone; hook disabled"))
        else:
            delay = next_delay(self.settings.retry_schedule, item.attempt, sent.retry_after)
            if delay is None:
                outcome = "failed"
                settle.finals.append(
                    (item.record, message, f"{item.attempt} attempts failed; last: {sent.error}")
                )
            else:
                outcome = "retrying"
                settle.retries.append((item.record, delay))
                settle.failed_records.add(item.record.message_id)
        # Successes are in the delivery log table already; at INFO they would cost more in CloudWatch
        # Logs than the whole delivery does in DynamoDB.
        (logger.debug if sent.ok else logger.info)(
            "delivery attempt",
            extra={
                "delivery_id": message.delivery_id,
                "hook_id": message.hook_id,
                "attempt": item.attempt,
                "status": sent.status,
                "outcome": outcome,
                "duration_ms": sent.duration_ms,
                "error": sent.error,
            },
        )
        settle.attempts.append(
            Attempt(
                account=message.account,
                hook_id=message.hook_id,
                delivery_id=message.delivery_id,
                event_id=message.event_id,
                type=message.type,
                attempt=item.attempt,
                at=self.clock(),
                outcome=outcome,
                status=sent.status,
                duration_ms=sent.duration_ms,
                error=None if sent.ok else _describe(sent),
            )
        )

    def _apply(
        self, settle: _Settlement, posts: list[_Post], log_writes: list[tuple[Future[None], int]]
    ) -> None:
        for written, count in log_writes:
            try:
                written.result()
            except Exception:
                # The log is for people; failing the batch over it would POST everything again.
                logger.exception("delivery log not written", extra={"attempts": count})
        queues.change_visibility(self.settings.delivery_queue_url, settle.retries)
        self._resend(settle)
        if settle.finals:
            dead = [
                queues.Outgoing(
                    id=record.message_id, body=message.model_copy(update={"attempts": 0}).to_body()
                )
                for record, message, _ in settle.finals
            ]
            not_sent = set(queues.send(self.settings.delivery_dlq_url, dead))
            self.log.write_failed(
                [(m, reason) for r, m, reason in settle.finals if r.message_id not in not_sent]
            )
            # Not parked yet: the record comes back and is settled again, never lost.
            settle.failed_records |= not_sent
        self._track_hooks(posts)
        outcomes: dict[str, int] = defaultdict(int)
        for attempt in settle.attempts:
            outcomes[attempt.outcome] += 1
        for item in settle.resends:
            outcomes[item[2]] += 1
        for name, count in outcomes.items():
            metrics.add_metric(name=f"Deliveries{name.capitalize()}", unit=MetricUnit.Count, value=count)

    def _resend(self, settle: _Settlement) -> None:
        """Sends delayed copies of the records that were not attempted; acks the originals."""
        if not settle.resends:
            return
        by_id = {item.record.message_id: (item, delay) for item, delay, _ in settle.resends}
        outgoing = [
            queues.Outgoing(
                id=item.record.message_id,
                # This receive made no attempt: the copy carries the attempts made so far.
                body=item.message.model_copy(update={"attempts": item.attempt - 1}).to_body(),
                group=item.message.account,
                delay_seconds=delay,
            )
            for item, delay in by_id.values()
        ]
        not_sent = queues.send(self.settings.delivery_queue_url, outgoing)
        # Could not re-send: keep the original, hidden for the delay (this costs it a receive).
        queues.change_visibility(
            self.settings.delivery_queue_url, [(by_id[m][0].record, by_id[m][1]) for m in not_sent]
        )
        settle.failed_records |= set(not_sent)

    def _track_hooks(self, posts: list[_Post]) -> None:
        now = int(self.clock())
        by_hook: dict[tuple[str, str], list[_Post]] = defaultdict(list)
        for planned in posts:
            by_hook[(planned.hook.account, planned.hook.id)].append(planned)
        for planned_posts in by_hook.values():
            hook = planned_posts[0].hook
            sent = [p.sent for p in planned_posts if p.sent is not None]
            if any(s.status == 410 for s in sent):
                self._disable(hook, "receiver answered 410 Gone")
            elif any(s.ok for s in sent):
                if hook.failing_since is not None:
                    self.store.record_outcomes(hook.account, hook.id, succeeded_at=now, failed_at=None)
                    self.hooks.remember(
                        hook.model_copy(update={"failing_since": None, "last_success_at": now})
                    )
            elif hook.failing_since is None:
                self.store.record_outcomes(hook.account, hook.id, succeeded_at=None, failed_at=now)
                self.hooks.remember(hook.model_copy(update={"failing_since": now}))
            elif now - hook.failing_since >= self.settings.disable_after_seconds:
                days = self.settings.disable_after_seconds / 86_400
                self._disable(hook, f"no successful delivery for {days:g} days")

    def _disable(self, hook: Hook, reason: str) -> None:
        self.hooks.remember(
            hook.model_copy(update={"status": HookStatus.DISABLED, "disabled_reason": reason})
        )
        if not self.store.set_status(hook.account, hook.id, HookStatus.DISABLED, reason=reason):
            return
        logger.warning("hook disabled", extra={"hook_id": hook.id, "account": hook.account, "reason": reason})
        metrics.add_metric(name="HooksDisabled", unit=MetricUnit.Count, value=1)
        try:
            aws.client("events").put_events(
                Entries=[
                    {
                        "Source": "webhooks",
                        "DetailType": "Hook Disabled",
                        "Detail": json.dumps(
                            {"account": hook.account, "hook_id": hook.id, "url": hook.url, "reason": reason}
                        ),
                        "EventBusName": self.settings.event_bus_name,
                    }
                ]
            )
        except Exception:
            # The hook is disabled either way; the event is a courtesy to whoever listens.
            logger.exception("could not publish the Hook Disabled event", extra={"hook_id": hook.id})


def _describe(sent: Sent) -> str:
    detail = sent.error or ""
    if sent.body:
        detail += ": " + sent.body[:ERROR_BODY_CHARS].decode("utf-8", errors="replace")
    return detail
