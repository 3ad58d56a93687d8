"""webhooks.ingest: every event is validated before any is queued; problems name `events[i].field`."""

from __future__ import annotations

import json
from typing import Any

import pytest
from pydantic import ValidationError

from webhooks import queues
from webhooks.errors import InvalidInput, PayloadTooLarge, Unavailable
from webhooks.events import OpenEvent
from webhooks.ingest import MAX_EVENT_BYTES, IngestMessage, enqueue, validate_events

OPEN = {"type": "open", "id": "msg-1", "recipient": "jane@example.com", "time": 1795428060}


def bounce_with_mime(mime: str) -> dict[str, Any]:
    return {"type": "bounce", "id": "m", "recipient": "a@b.c", "envelope": "e@b.c", "mime": mime}


def problems(raw_events: list[dict[str, Any]]) -> list[str]:
    with pytest.raises(InvalidInput) as caught:
        validate_events(raw_events)
    return [field for field, _ in caught.value.fields]


# --------------------------------------------------------------------------------------------------
# validate_events


def test_valid_events_come_back_parsed_in_order(sample_events: dict[str, Any]) -> None:
    parsed = validate_events([sample_events["click"], sample_events["open"], sample_events["delete"]])
    assert [e.type for e in parsed] == ["click", "open", "delete"]


def test_missing_field_is_named_events_index_field() -> None:
    event = dict(OPEN)
    del event["recipient"]
    assert problems([OPEN, event]) == ["events[1].recipient"]


def test_wrong_type_of_field_is_named_with_its_index() -> None:
    failure = {
        "type": "failure",
        "id": "m",
        "recipient": "a@b.c",
        "action": "failed",
        "state": "r",
        "code": "550",
    }
    assert problems([failure]) == ["events[0].code"]


def test_problem_inside_a_list_names_the_item() -> None:
    assert problems([{**OPEN, "tags": ["ok", 5]}]) == ["events[0].tags[1]"]


def test_unknown_field_is_named() -> None:
    assert problems([{**OPEN, "colour": "red"}]) == ["events[0].colour"]


def test_several_problems_of_several_events_are_all_named() -> None:
    first = {**OPEN, "colour": "red"}
    del first["recipient"]
    second = {**OPEN, "time": "soon"}
    assert sorted(problems([first, OPEN, second])) == [
        "events[0].colour",
        "events[0].recipient",
        "events[2].time",
    ]


def test_problem_carries_the_reason_in_words() -> None:
    with pytest.raises(InvalidInput) as caught:
        validate_events([{**OPEN, "time": "soon"}])
    assert caught.value.fields == [("events[0].time", "must be a whole number")]
    assert caught.value.status == 422


def test_disagreeing_timestamp_and_time_are_named_on_the_event() -> None:
    with pytest.raises(InvalidInput) as caught:
        validate_events([{**OPEN, "timestamp": "2026-11-23 10:00:00"}])
    [(field, reason)] = caught.value.fields
    assert field == "events[0]"
    assert "timestamp and time disagree" in reason


@pytest.mark.parametrize(
    "event",
    [
        {**OPEN, "type": "bonce"},
        {k: v for k, v in OPEN.items() if k != "type"},
        {**OPEN, "type": ["open"]},
        {**OPEN, "type": 7},
        {**OPEN, "type": None},
    ],
)
def test_unknown_or_missing_type_is_named_events_index_type(event: dict[str, Any]) -> None:
    assert problems([event]) == ["events[0].type"]


def test_a_types_field_errors_are_named_without_the_type() -> None:
    assert problems([{"type": "delivery", "id": "m", "recipient": "a@b.c", "code": "250"}]) == [
        "events[0].code"
    ]


def test_event_over_the_size_limit_is_payload_too_large() -> None:
    with pytest.raises(PayloadTooLarge) as caught:
        validate_events([OPEN, bounce_with_mime("x" * MAX_EVENT_BYTES)])
    assert caught.value.status == 413
    assert caught.value.field == "events[1]"


def test_bounce_with_the_largest_mime_is_within_the_size_limit() -> None:
    assert validate_events([bounce_with_mime("x" * 262_144)])[0].type == "bounce"


def test_event_size_counts_utf8_bytes_not_json_escapes() -> None:
    mime = "é" * 100_000  # 200,000 bytes of UTF-8
    assert validate_events([bounce_with_mime(mime)])[0].type == "bounce"


# --------------------------------------------------------------------------------------------------
# IngestMessage


def test_ingest_message_without_event_id_gets_a_random_evt_id() -> None:
    first = IngestMessage(account="acct-1", event=OPEN)
    second = IngestMessage(account="acct-1", event=OPEN)
    assert first.event_id.startswith("evt_")
    assert first.event_id != second.event_id


def test_ingest_message_with_unknown_keys_is_rejected() -> None:
    with pytest.raises(ValidationError, match="extra"):
        IngestMessage.model_validate({"account": "acct-1", "event": OPEN, "hook": "h"})


def test_ingest_message_without_account_is_rejected() -> None:
    with pytest.raises(ValidationError, match="account"):
        IngestMessage.model_validate({"account": "", "event": OPEN})


# --------------------------------------------------------------------------------------------------
# enqueue, with the queue replaced


class FakeQueue:
    def __init__(self, refuse: int = 0) -> None:
        self.sent: list[tuple[str, list[queues.Outgoing]]] = []
        self.refuse = refuse

    def __call__(self, queue_url: str, messages: list[queues.Outgoing]) -> list[str]:
        self.sent.append((queue_url, list(messages)))
        return [m.id for m in messages[: self.refuse]]


def test_enqueue_sends_each_event_with_its_id_grouped_by_account(monkeypatch: pytest.MonkeyPatch) -> None:
    queue = FakeQueue()
    monkeypatch.setattr(queues, "send", queue)
    events = [OpenEvent.model_validate(OPEN), OpenEvent.model_validate({**OPEN, "id": "msg-2"})]
    event_ids = enqueue("acct-1", events, "https://sqs/ingest")
    [(url, outgoing)] = queue.sent
    assert url == "https://sqs/ingest"
    assert [m.id for m in outgoing] == event_ids
    assert {m.group for m in outgoing} == {"acct-1"}
    first = json.loads(outgoing[0].body)
    assert first == {
        "account": "acct-1",
        "event_id": event_ids[0],
        "event": {
            "type": "open",
            "id": "msg-1",
            "recipient": "jane@example.com",
            "timestamp": "2026-11-23 10:01:00",
            "time": 1795428060,
            "ip": "",
            "useragent": "",
            "referer": "",
            "tags": [],
        },
    }


def test_enqueue_that_could_not_queue_all_is_unavailable_and_names_the_indexes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(queues, "send", FakeQueue(refuse=2))
    events = [OpenEvent.model_validate({**OPEN, "id": f"msg-{i}"}) for i in range(3)]
    with pytest.raises(Unavailable) as caught:
        enqueue("acct-1", events, "https://sqs/ingest")
    assert caught.value.status == 503
    assert "2 of 3 events were not queued" in caught.value.message
    assert "[0, 1]" in caught.value.message
