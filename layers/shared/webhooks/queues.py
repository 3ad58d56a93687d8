"""Sending to SQS in as few requests as the limits allow: 10 entries and 1 MiB per SendMessageBatch."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar

from aws_lambda_powertools import Logger

from webhooks import aws

logger = Logger(child=True)

MAX_BATCH_ENTRIES = 10
# The queues allow 1 MiB messages (bounce events carry whole MIME messages); a batch shares that.
MAX_BATCH_BYTES = 1_048_576
# Entries SQS failed on its side (not a malformed entry) are sent again, a bounded number of times.
RESEND_ROUNDS = 3
# SendMessageBatch calls in flight at once: a fan-out to thousands of hooks is hundreds of calls, each
# a round trip; one after another, they would hold up the deliveries and bill the wait.
SEND_CONCURRENCY = 8

_Chunk = TypeVar("_Chunk")
_Outcome = TypeVar("_Outcome")
_senders = ThreadPoolExecutor(max_workers=SEND_CONCURRENCY, thread_name_prefix="sqs-send")


@dataclass(frozen=True)
class QueueRecord:
    """An SQS record as Lambda's event source mapping hands it over."""

    message_id: str
    body: str
    receipt_handle: str = ""
    receive_count: int = 1

    @classmethod
    def of(cls, record: dict[str, Any]) -> QueueRecord:
        return cls(
            message_id=record["messageId"],
            body=record["body"],
            receipt_handle=record.get("receiptHandle", ""),
            receive_count=int(record.get("attributes", {}).get("ApproximateReceiveCount", 1)),
        )


def partial_response(failed_message_ids: Iterable[str]) -> dict[str, Any]:
    """Lambda's ReportBatchItemFailures answer: only these records come back."""
    return {
        "batchItemFailures": [
            {"itemIdentifier": message_id} for message_id in sorted(set(failed_message_ids))
        ]
    }


@dataclass(frozen=True)
class Outgoing:
    id: str  # unique within one send() call; reported back when the entry could not be sent
    body: str
    group: str | None = None  # fair-queue tenant key
    delay_seconds: int = 0


def _chunks(messages: Sequence[Outgoing]) -> list[list[Outgoing]]:
    chunks: list[list[Outgoing]] = []
    current: list[Outgoing] = []
    size = 0
    for message in messages:
        length = len(message.body.encode())
        if current and (len(current) == MAX_BATCH_ENTRIES or size + length > MAX_BATCH_BYTES):
            chunks.append(current)
            current, size = [], 0
        current.append(message)
        size += length
    if current:
        chunks.append(current)
    return chunks


def _entry(index: int, message: Outgoing) -> dict[str, Any]:
    entry: dict[str, Any] = {"Id": str(index), "MessageBody": message.body}
    if message.group:
        entry["MessageGroupId"] = message.group
    if message.delay_seconds:
        entry["DelaySeconds"] = min(message.delay_seconds, 900)
    return entry


def _each(call: Callable[[_Chunk], _Outcome], chunks: Sequence[_Chunk]) -> list[_Outcome]:
    """call(chunk) for every chunk, up to SEND_CONCURRENCY at once; a single chunk on this thread."""
    if len(chunks) > 1:
        return list(_senders.map(call, chunks))
    return [call(chunk) for chunk in chunks]


def send(queue_url: str, messages: Sequence[Outgoing]) -> list[str]:
    """Sends all messages, up to SEND_CONCURRENCY calls at a time; returns the ids of those that
    could not be sent (empty when all were)."""
    sqs = aws.client("sqs")
    pending = list(messages)
    failed: list[str] = []
    for _ in range(RESEND_ROUNDS):
        outcomes = _each(lambda chunk: _send_chunk(sqs, queue_url, chunk), _chunks(pending))
        pending = []
        for refused, again in outcomes:
            failed.extend(refused)
            pending.extend(again)
        if not pending:
            break
    return failed + [m.id for m in pending]


def _send_chunk(sqs: Any, queue_url: str, chunk: list[Outgoing]) -> tuple[list[str], list[Outgoing]]:
    """One SendMessageBatch: (ids SQS refused as the sender's fault, messages to send again)."""
    try:
        response = sqs.send_message_batch(
            QueueUrl=queue_url, Entries=[_entry(i, m) for i, m in enumerate(chunk)]
        )
    except Exception:
        logger.exception("SendMessageBatch failed", extra={"entries": len(chunk)})
        return [], chunk
    refused: list[str] = []
    again: list[Outgoing] = []
    for failure in response.get("Failed", []):
        message = chunk[int(failure["Id"])]
        if failure.get("SenderFault"):
            logger.error("SQS refused a message", extra={"id": message.id, "code": failure.get("Code")})
            refused.append(message.id)
        else:
            again.append(message)
    return refused, again


def change_visibility(queue_url: str, delays: Sequence[tuple[QueueRecord, int]]) -> None:
    """Hides each record for its delay: when it shows again, the next attempt runs. Best effort: a
    record whose change failed simply comes back after the queue's visibility timeout. Up to
    SEND_CONCURRENCY calls in flight, as in send()."""
    sqs = aws.client("sqs")
    chunks = [delays[start : start + MAX_BATCH_ENTRIES] for start in range(0, len(delays), MAX_BATCH_ENTRIES)]
    _each(lambda chunk: _change_chunk(sqs, queue_url, chunk), chunks)


def _change_chunk(sqs: Any, queue_url: str, chunk: Sequence[tuple[QueueRecord, int]]) -> None:
    try:
        response = sqs.change_message_visibility_batch(
            QueueUrl=queue_url,
            Entries=[
                {"Id": str(i), "ReceiptHandle": record.receipt_handle, "VisibilityTimeout": delay}
                for i, (record, delay) in enumerate(chunk)
            ],
        )
    except Exception:
        logger.exception("ChangeMessageVisibilityBatch failed", extra={"entries": len(chunk)})
        return
    for failure in response.get("Failed", []):
        logger.warning("visibility not changed", extra={"code": failure.get("Code")})
