"""Delivering a batch of the delivery queue: POST each to its hook, concurrently, then settle.

Per record: 2xx -> done. Any other answer, a timeout or a connection error -> tried again after
the retry schedule's next delay (the record is hidden with ChangeMessageVisibility and reported
failed, so SQS hands it back then). 410 Gone disables the hook. When the attempts are spent, the
delivery goes to the dead-letter queue and into the delivery log as failed, replayable by API.
All AWS writes of a batch are batched: one log write per 25 attempts, one visibility change per
10 retries.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from aws_lambda_powertools import Logger

from webhooks import encoding, queues, safe_http, signing
from webhooks.delivery_log import Attempt, DeliveryLog
from webhooks.delivery_message import DeliveryMessage
from webhooks.hook_store import HookStore
from webhooks.hooks import Hook, HookStatus
from webhooks.retry import next_delay, retry_after
from webhooks.settings import Settings

logger = Logger(child=True)

USER_AGENT = "webhooks-delivery/1.0"
ERROR_BODY_CHARS = 500


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
    except (safe_http.UnsafeUrl, safe_http.OutboundError) as exc:
        return Sent(status=None, duration_ms=int((time.perf_counter() - started) * 1000), error=str(exc))
    error = None if 200 <= response.status < 300 else f"HTTP {response.status}"
    asked = retry_after(response.headers, now) if response.status in (429, 503) else None
    return Sent(response.status, response.elapsed_ms, error, response.body, asked)


@dataclass
class _Work:
    record: queues.QueueRecord
    message: DeliveryMessage
    hook: Hook
    attempt: int
    sent: Sent | None = None


@dataclass
class _Settlement:
    retries: list[tuple[queues.QueueRecord, int]] = field(default_factory=list)
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
        self, settings: Settings, store: HookStore | None = None, log: DeliveryLog | None = None
    ) -> None:
        self.settings = settings
        self.store = store or HookStore(settings.hooks_table)
        self.log = log or DeliveryLog(settings.deliveries_table, settings.delivery_log_days)
        self.hooks = HookLookup(self.store)
        self.policy = safe_http.OutboundPolicy(
            allow_http=settings.allow_http, allow_private=settings.allow_private
        )
        self.pool = ThreadPoolExecutor(
            max_workers=settings.delivery_concurrency, thread_name_prefix="deliver"
        )
        self.max_attempts = len(settings.retry_schedule)

    def process(self, records: list[queues.QueueRecord]) -> dict[str, Any]:
        settle = _Settlement()
        work: list[_Work] = []
        parsed: list[tuple[queues.QueueRecord, DeliveryMessage]] = []
        for record in records:
            try:
                parsed.append((record, DeliveryMessage.model_validate_json(record.body)))
            except ValueError as exc:
                logger.error(
                    "unreadable delivery message", extra={"message_id": record.message_id, "error": str(exc)}
                )
                settle.failed_records.add(record.message_id)
        hooks = self.hooks.get_many((m.account, m.hook_id) for _, m in parsed)

        for record, message in parsed:
            hook = hooks[(message.account, message.hook_id)]
            attempt = message.attempts + record.receive_count
            log_keys = {"delivery_id": message.delivery_id, "hook_id": message.hook_id}
            if hook is None:
                # The customer deleted the hook: there is nobody to deliver to any more.
                logger.info("hook gone; delivery dropped", extra=log_keys)
            elif hook.status is not HookStatus.ACTIVE:
                settle.finals.append((record, message, f"hook is {hook.status.value}"))
            elif attempt > self.max_attempts:
                # Received again after its last attempt (the settling of that attempt did not finish).
                settle.finals.append((record, message, "attempts exhausted"))
            else:
                work.append(_Work(record, message, hook, attempt))

        for item, sent in zip(work, self.pool.map(self._send, work), strict=True):
            item.sent = sent
            self._settle(item, settle)
        self._apply(settle, work)
        return queues.partial_response(settle.failed_records)

    def _send(self, item: _Work) -> Sent:
        return post(item.hook, item.message.delivery_id, item.message.payload, self.policy)

    def _settle(self, item: _Work, settle: _Settlement) -> None:
        sent, message = item.sent, item.message
        assert sent is not None
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
        logger.info(
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
                at=time.time(),
                outcome=outcome,
                status=sent.status,
                duration_ms=sent.duration_ms,
                error=sent.error if sent.ok else _describe(sent),
            )
        )

    def _apply(self, settle: _Settlement, work: list[_Work]) -> None:
        self.log.write_attempts(settle.attempts)
        queues.change_visibility(self.settings.delivery_queue_url, settle.retries)
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
        self._track_hooks(work)

    def _track_hooks(self, work: list[_Work]) -> None:
        now = int(time.time())
        by_hook: dict[tuple[str, str], list[_Work]] = {}
        for item in work:
            by_hook.setdefault((item.hook.account, item.hook.id), []).append(item)
        for items in by_hook.values():
            hook = items[0].hook
            sent = [i.sent for i in items if i.sent is not None]
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
        if self.store.set_status(hook.account, hook.id, HookStatus.DISABLED, reason=reason):
            logger.warning(
                "hook disabled", extra={"hook_id": hook.id, "account": hook.account, "reason": reason}
            )
        self.hooks.remember(
            hook.model_copy(update={"status": HookStatus.DISABLED, "disabled_reason": reason})
        )


def _describe(sent: Sent) -> str:
    detail = sent.error or ""
    if sent.body:
        detail += ": " + sent.body[:ERROR_BODY_CHARS].decode("utf-8", errors="replace")
    return detail
