"""What the management API does beyond registering hooks: ingest, test tool, delivery log, replay."""

from __future__ import annotations

import time
from typing import Any

from aws_lambda_powertools import Logger

from webhooks import ids, ingest, queues
from webhooks.api_models import AttemptList, AttemptView, ReplayResult, SecretView, TestResult
from webhooks.delivery_log import UNSUCCESSFUL, DeliveryLog, Outcome, restore
from webhooks.errors import Conflict, InvalidInput
from webhooks.hooks import HookStatus
from webhooks.registration import Registry
from webhooks.settings import Settings

logger = Logger(child=True)

TEST_BODY_CHARS = 4096


class Management:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.registry = Registry(settings)
        self.log = DeliveryLog(settings.deliveries_table, settings.delivery_log_days)

    def ingest(
        self, account: str, raw_events: list[dict[str, Any]], idempotency_key: str | None = None
    ) -> list[str]:
        events = ingest.validate_events(raw_events)
        event_ids = (
            [ids.event_id(account, idempotency_key, i, raw) for i, raw in enumerate(raw_events)]
            if idempotency_key is not None
            else None
        )
        return ingest.enqueue(account, events, self.settings.ingest_queue_url, event_ids)

    def secret(self, account: str, hook_id: str) -> SecretView:
        hook = self.registry.get(account, hook_id)
        expires = hook.previous_secret_expires_at if len(hook.signing_secrets()) > 1 else None
        return SecretView(secret=hook.secret, previous_secret_expires_at=expires)

    def test(self, account: str, hook_id: str, data: dict[str, Any]) -> TestResult:
        """POSTs `data` now, signed, and reports what the receiver said. Only to a proven URL."""
        hook = self.registry.get(account, hook_id)
        if hook.validated_at is None or hook.status not in (HookStatus.ACTIVE, HookStatus.DISABLED):
            raise Conflict("the hook's URL is not validated yet; nothing is sent to it before", field="id")
        # Imported here: the test tool is the API's only use of the delivery module (and its metrics,
        # rate limiter and retry rules), and a rare one, so the API's cold start does without it.
        from webhooks.delivery import post

        delivery_id = ids.new_id("msg")
        sent = post(hook, delivery_id, data, self.registry.policy)
        return TestResult(
            delivery_id=delivery_id,
            status=sent.status,
            duration_ms=sent.duration_ms,
            body=sent.body[:TEST_BODY_CHARS].decode("utf-8", errors="replace")
            if sent.status is not None
            else None,
            error=sent.error,
        )

    def attempts(
        self,
        account: str,
        hook_id: str,
        *,
        limit: int,
        cursor: str | None,
        outcome: Outcome | None = None,
        event_type: str | None = None,
        failed_only: bool = False,
    ) -> AttemptList:
        self.registry.get(account, hook_id)
        outcomes: frozenset[Outcome] | None = frozenset({outcome}) if outcome is not None else None
        if failed_only:
            outcomes = (outcomes or UNSUCCESSFUL) & UNSUCCESSFUL

        def wanted(row: dict[str, Any]) -> bool:
            return (outcomes is None or row.get("outcome") in outcomes) and (
                event_type is None or row.get("type") == event_type
            )

        where = wanted if outcomes is not None or event_type is not None else None
        items, next_cursor = self.log.attempts(account, hook_id, limit=limit, cursor=cursor, where=where)
        return AttemptList(attempts=[AttemptView.of(item) for item in items], next_cursor=next_cursor)

    def replay(self, account: str, hook_id: str, *, since: int | None, until: int | None) -> ReplayResult:
        """Queues the hook's failed deliveries again, with fresh attempts and their original ids."""
        if since is not None and until is not None and since >= until:
            raise InvalidInput("must be later than since", field="until")
        hook = self.registry.get(account, hook_id)
        if hook.status is not HookStatus.ACTIVE:
            raise Conflict(f"the hook is {hook.status.value}; activate it before replaying", field="id")
        items = self.log.failed(account, hook_id, since, until)
        now = time.time()
        outgoing = []
        for item in items:
            message = restore(item)
            # A fresh start, as the next run: its attempts, and the retry schedule's span counted from now.
            fresh = {
                "attempts": 0,
                "created_at": now,
                "slot_at": None,
                "waited": False,
                "run": message.run + 1,
            }
            outgoing.append(
                queues.Outgoing(
                    id=item["sk"], body=message.model_copy(update=fresh).to_body(), group=message.group
                )
            )
        not_sent = set(queues.send(self.settings.delivery_queue_url, outgoing))
        self.log.forget_failed([item for item in items if item["sk"] not in not_sent])
        logger.info("replayed", extra={"hook_id": hook_id, "deliveries": len(items) - len(not_sent)})
        return ReplayResult(replayed=len(items) - len(not_sent))
