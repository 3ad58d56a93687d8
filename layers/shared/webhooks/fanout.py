"""Fan-out: each event becomes one delivery per active hook of its account that subscribes to it.

Hooks are read once per account and cached for a few seconds, so a flood of opens costs one
DynamoDB query per account, not one per event. Deliveries of the whole batch are sent together,
ten per SendMessageBatch; an ingest record is reported failed only if one of its deliveries could
not be queued (re-running it produces the same delivery ids, which receivers de-duplicate).
"""

from __future__ import annotations

import json
import time
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from aws_lambda_powertools import Logger
from pydantic import ValidationError

from webhooks import ids, queues
from webhooks.delivery_message import DeliveryMessage
from webhooks.errors import describe_invalid
from webhooks.events import parse_event
from webhooks.hook_store import HookStore
from webhooks.hooks import Hook
from webhooks.ingest import IngestMessage

logger = Logger(child=True)


@dataclass
class HookCache:
    """Active hooks per account, kept `ttl` seconds: a new or disabled hook takes effect within it."""

    load: Callable[[str], list[Hook]]
    ttl: float = 15.0
    clock: Callable[[], float] = time.monotonic
    _entries: dict[str, tuple[float, list[Hook]]] = field(default_factory=dict)

    def get(self, account: str) -> list[Hook]:
        now = self.clock()
        cached = self._entries.get(account)
        if cached is None or cached[0] <= now:
            cached = (now + self.ttl, self.load(account))
            self._entries[account] = cached
        return cached[1]


def deliveries_for(message: IngestMessage, hooks: Iterable[Hook]) -> list[DeliveryMessage]:
    event = parse_event(message.event)
    database, collection = event.routing
    payload = event.payload()
    return [
        DeliveryMessage(
            delivery_id=ids.delivery_id(message.event_id, hook.id),
            event_id=message.event_id,
            account=message.account,
            hook_id=hook.id,
            type=event.type,
            payload=payload,
        )
        for hook in hooks
        if hook.subscribes_to(event.type, database, collection)
    ]


class Fanout:
    def __init__(self, store: HookStore, delivery_queue_url: str, cache_ttl: float = 15.0) -> None:
        self.cache = HookCache(store.active_hooks, ttl=cache_ttl)
        self.queue_url = delivery_queue_url

    def process(self, records: list[queues.QueueRecord]) -> dict[str, Any]:
        """Returns Lambda's partial batch response: the ingest records to receive again."""
        failed: set[str] = set()
        outgoing: list[queues.Outgoing] = []
        owner: dict[str, str] = {}
        per_account: dict[str, int] = defaultdict(int)
        for record in records:
            try:
                message = IngestMessage.model_validate(json.loads(record.body))
                deliveries = deliveries_for(message, self.cache.get(message.account))
            except (ValueError, ValidationError) as exc:
                # A malformed message fails again on every try; the redrive policy parks it in the DLQ.
                logger.error(
                    "unreadable ingest message",
                    extra={"message_id": record.message_id, "error": describe_invalid(exc)},
                )
                failed.add(record.message_id)
                continue
            except Exception:
                logger.exception("fan-out failed", extra={"message_id": record.message_id})
                failed.add(record.message_id)
                continue
            per_account[message.account] += len(deliveries)
            for delivery in deliveries:
                owner[delivery.delivery_id] = record.message_id
                outgoing.append(
                    queues.Outgoing(id=delivery.delivery_id, body=delivery.to_body(), group=delivery.group)
                )
        for delivery_id in queues.send(self.queue_url, outgoing):
            failed.add(owner[delivery_id])
        logger.info(
            "fanned out",
            extra={"records": len(records), "deliveries": len(outgoing), "failed_records": len(failed)},
        )
        return queues.partial_response(failed)
