"""webhooks.queues: batches of at most 10 entries and 1 MiB, resends, Lambda's partial batch answer."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from webhooks import aws, queues
from webhooks.queues import Outgoing, QueueRecord, _chunks, partial_response, send

MIB = 1_048_576


def messages(count: int, size: int = 10, char: str = "x") -> list[Outgoing]:
    return [Outgoing(id=f"m{i}", body=char * size) for i in range(count)]


def sizes(chunks: list[list[Outgoing]]) -> list[int]:
    return [len(chunk) for chunk in chunks]


# --------------------------------------------------------------------------------------------------
# _chunks


def test_chunks_hold_at_most_10_entries() -> None:
    assert sizes(_chunks(messages(25))) == [10, 10, 5]


def test_exactly_10_entries_are_one_chunk() -> None:
    assert sizes(_chunks(messages(10))) == [10]


def test_no_messages_no_chunks() -> None:
    assert _chunks([]) == []


def test_chunks_hold_at_most_1_mib_of_bodies() -> None:
    assert sizes(_chunks(messages(5, size=400_000))) == [2, 2, 1]


def test_bodies_of_exactly_1_mib_share_a_chunk() -> None:
    assert sizes(_chunks(messages(2, size=MIB // 2))) == [2]


def test_one_byte_over_1_mib_starts_a_new_chunk() -> None:
    batch = [Outgoing(id="a", body="x" * (MIB // 2)), Outgoing(id="b", body="x" * (MIB // 2 + 1))]
    assert sizes(_chunks(batch)) == [1, 1]


def test_chunks_count_utf8_bytes_not_characters() -> None:
    # 300,000 characters of 2 bytes each: two do not fit in 1 MiB.
    assert sizes(_chunks(messages(2, size=300_000, char="é"))) == [1, 1]


def test_a_body_over_1_mib_travels_alone() -> None:
    batch = [
        Outgoing(id="small", body="x"),
        Outgoing(id="big", body="x" * (MIB + 1)),
        Outgoing(id="s2", body="x"),
    ]
    assert [[m.id for m in chunk] for chunk in _chunks(batch)] == [["small"], ["big"], ["s2"]]


def test_chunks_keep_the_order_of_messages() -> None:
    batch = messages(12)
    assert [m.id for chunk in _chunks(batch) for m in chunk] == [m.id for m in batch]


# --------------------------------------------------------------------------------------------------
# partial_response and QueueRecord


def test_partial_response_lists_each_failed_record_once_sorted() -> None:
    assert partial_response(["b", "a", "b"]) == {
        "batchItemFailures": [{"itemIdentifier": "a"}, {"itemIdentifier": "b"}]
    }


def test_partial_response_without_failures_is_an_empty_list() -> None:
    assert partial_response([]) == {"batchItemFailures": []}


def test_queue_record_reads_lambdas_sqs_record() -> None:
    record = QueueRecord.of(
        {
            "messageId": "m1",
            "body": "{}",
            "receiptHandle": "rh",
            "attributes": {"ApproximateReceiveCount": "3"},
        }
    )
    assert record == QueueRecord(message_id="m1", body="{}", receipt_handle="rh", receive_count=3)


def test_queue_record_without_attributes_was_received_once() -> None:
    assert QueueRecord.of({"messageId": "m1", "body": "{}"}).receive_count == 1


# --------------------------------------------------------------------------------------------------
# send, against a fake SQS client


class FakeSqs:
    """Answers each SendMessageBatch from a script: a list of Failed entries, or an exception."""

    def __init__(self, script: list[Any] | None = None) -> None:
        self.script = list(script or [])
        self.calls: list[dict[str, Any]] = []

    def send_message_batch(self, QueueUrl: str, Entries: list[dict[str, Any]]) -> dict[str, Any]:
        self.calls.append({"QueueUrl": QueueUrl, "Entries": Entries})
        answer = self.script.pop(0) if self.script else []
        if isinstance(answer, Exception):
            raise answer
        return {"Failed": answer}


@pytest.fixture
def sqs(monkeypatch: pytest.MonkeyPatch) -> FakeSqs:
    fake = FakeSqs()
    monkeypatch.setattr(aws, "client", lambda service: fake)
    return fake


def test_send_batches_entries_with_group_and_capped_delay(sqs: FakeSqs) -> None:
    assert (
        send("https://sqs/q", [Outgoing("a", "A", group="acct-1", delay_seconds=5000), Outgoing("b", "B")])
        == []
    )
    assert sqs.calls == [
        {
            "QueueUrl": "https://sqs/q",
            "Entries": [
                {"Id": "0", "MessageBody": "A", "MessageGroupId": "acct-1", "DelaySeconds": 900},
                {"Id": "1", "MessageBody": "B"},
            ],
        }
    ]


def test_send_makes_one_call_per_chunk(sqs: FakeSqs) -> None:
    send("https://sqs/q", messages(23))
    assert sorted(len(call["Entries"]) for call in sqs.calls) == [3, 10, 10]


class SlowSqs:
    """Takes a while over each call, counting the calls in flight at once."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.in_flight = 0
        self.most_in_flight = 0
        self.sent: list[str] = []

    def send_message_batch(self, QueueUrl: str, Entries: list[dict[str, Any]]) -> dict[str, Any]:
        with self.lock:
            self.in_flight += 1
            self.most_in_flight = max(self.most_in_flight, self.in_flight)
        time.sleep(0.05)
        with self.lock:
            self.in_flight -= 1
            self.sent.extend(entry["MessageBody"] for entry in Entries)
        return {"Failed": []}

    def change_message_visibility_batch(self, QueueUrl: str, Entries: list[dict[str, Any]]) -> dict[str, Any]:
        return self.send_message_batch(
            QueueUrl, [{"MessageBody": entry["ReceiptHandle"]} for entry in Entries]
        )


def test_send_has_several_calls_in_flight_and_sends_each_message_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    slow = SlowSqs()
    monkeypatch.setattr(aws, "client", lambda service: slow)
    batch = [Outgoing(id=f"m{i}", body=f"body-{i}") for i in range(200)]
    assert send("https://sqs/q", batch) == []
    assert sorted(slow.sent) == sorted(m.body for m in batch)
    assert 1 < slow.most_in_flight <= queues.SEND_CONCURRENCY


def test_change_visibility_has_several_calls_in_flight_and_changes_each_record_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    slow = SlowSqs()
    monkeypatch.setattr(aws, "client", lambda service: slow)
    delays = [(QueueRecord(message_id=f"m{i}", body="", receipt_handle=f"rh{i}"), 60) for i in range(100)]
    queues.change_visibility("https://sqs/q", delays)
    assert sorted(slow.sent) == sorted(f"rh{i}" for i in range(100))
    assert 1 < slow.most_in_flight <= queues.SEND_CONCURRENCY


def test_send_resends_entries_sqs_failed_on_its_side(sqs: FakeSqs) -> None:
    sqs.script = [[{"Id": "1", "SenderFault": False, "Code": "InternalError"}]]
    assert send("https://sqs/q", messages(3)) == []
    assert [[e["MessageBody"] for e in call["Entries"]] for call in sqs.calls] == [["x" * 10] * 3, ["x" * 10]]


def test_send_returns_the_ids_sqs_refused_as_the_senders_fault_without_resending(sqs: FakeSqs) -> None:
    sqs.script = [[{"Id": "2", "SenderFault": True, "Code": "InvalidMessageContents"}]]
    assert send("https://sqs/q", messages(3)) == ["m2"]
    assert len(sqs.calls) == 1


def test_send_gives_up_after_three_rounds_and_returns_the_unsent_ids(sqs: FakeSqs) -> None:
    sqs.script = [RuntimeError("down")] * 3
    assert send("https://sqs/q", messages(2)) == ["m0", "m1"]
    assert len(sqs.calls) == 3


def test_send_recovers_when_a_failed_call_succeeds_on_the_next_round(sqs: FakeSqs) -> None:
    sqs.script = [RuntimeError("down")]
    assert send("https://sqs/q", messages(2)) == []
    assert len(sqs.calls) == 2


class FakeVisibility:
    def __init__(self) -> None:
        self.calls: list[list[dict[str, Any]]] = []

    def change_message_visibility_batch(self, QueueUrl: str, Entries: list[dict[str, Any]]) -> dict[str, Any]:
        self.calls.append(Entries)
        return {"Failed": []}


def test_change_visibility_hides_each_record_for_its_delay_ten_per_call(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fake = FakeVisibility()
    monkeypatch.setattr(aws, "client", lambda service: fake)
    delays = [(QueueRecord(message_id=f"m{i}", body="", receipt_handle=f"rh{i}"), 60 + i) for i in range(12)]
    queues.change_visibility("https://sqs/q", delays)
    calls = sorted(fake.calls, key=len, reverse=True)  # the calls run concurrently
    assert [len(call) for call in calls] == [10, 2]
    assert calls[1] == [
        {"Id": "0", "ReceiptHandle": "rh10", "VisibilityTimeout": 70},
        {"Id": "1", "ReceiptHandle": "rh11", "VisibilityTimeout": 71},
    ]
