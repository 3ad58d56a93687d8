"""Accepting platform events: validate every event first, then queue them all for fan-out.

The ingest queue's message is `{"account", "event_id", "event"}`; internal producers may send the
same shape straight to the queue (SendMessageBatch), without `event_id` if they like.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from webhooks import ids, queues
from webhooks.errors import InvalidInput, PayloadTooLarge, Unavailable, problems_of
from webhooks.events import PlatformEvent, parse_event

# DynamoDB keeps failed deliveries for replay (400 KB per item), and bounces carry whole messages.
MAX_EVENT_BYTES = 320 * 1024


class IngestMessage(BaseModel):
    model_config = ConfigDict(extra="forbid")

    account: str = Field(min_length=1, max_length=64)
    event_id: str = Field(default_factory=lambda: ids.new_id("evt"), min_length=1, max_length=128)
    event: dict[str, Any]


def validate_events(raw_events: Sequence[dict[str, Any]]) -> list[PlatformEvent]:
    events = []
    problems: list[tuple[str, str]] = []
    for index, raw in enumerate(raw_events):
        size = len(json.dumps(raw, separators=(",", ":"), ensure_ascii=False).encode())
        if size > MAX_EVENT_BYTES:
            raise PayloadTooLarge(
                f"event is {size} bytes; at most {MAX_EVENT_BYTES}", field=f"events[{index}]"
            )
        try:
            events.append(parse_event(raw))
        except ValidationError as exc:
            problems.extend(problems_of(exc.errors(), prefix=f"events[{index}]"))
    if problems:
        raise InvalidInput.of_fields(problems)
    return events


def enqueue(
    account: str, events: Sequence[PlatformEvent], queue_url: str, event_ids: Sequence[str] | None = None
) -> list[str]:
    """Queues validated events, under `event_ids` if given (else new ones); returns their ids. All or
    an error saying which were not queued."""
    chosen = list(event_ids) if event_ids is not None else [ids.new_id("evt") for _ in events]
    messages = [
        IngestMessage(
            account=account, event_id=event_id, event=event.model_dump(mode="json", exclude_none=True)
        )
        for event, event_id in zip(events, chosen, strict=True)
    ]
    failed = set(
        queues.send(
            queue_url,
            [queues.Outgoing(id=m.event_id, body=m.model_dump_json(), group=account) for m in messages],
        )
    )
    if failed:
        queued = [i for i, m in enumerate(messages) if m.event_id not in failed]
        raise Unavailable(
            f"{len(failed)} of {len(messages)} events were not queued; send again the events at indexes "
            f"{sorted(set(range(len(messages))) - set(queued))}",
            field="events",
        )
    return [m.event_id for m in messages]
