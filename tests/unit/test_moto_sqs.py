"""The local stack's moto SQS patch: moto's behaviour kept, without its per-message scans."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from devstack import moto_sqs


@pytest.fixture
def patched() -> Iterator[None]:
    moto_sqs.install()
    try:
        yield
    finally:
        moto_sqs.uninstall()


def _queues(sqs: Any) -> tuple[str, str]:
    dlq = sqs.create_queue(QueueName="dlq")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    queue = sqs.create_queue(
        QueueName="work",
        Attributes={
            "VisibilityTimeout": "30",
            "RedrivePolicy": json.dumps({"deadLetterTargetArn": arn, "maxReceiveCount": 3}),
        },
    )["QueueUrl"]
    return queue, dlq


def _seen(messages: list[dict[str, Any]]) -> list[tuple[str, str, str | None]]:
    return [
        (m["Body"], m["Attributes"]["ApproximateReceiveCount"], m["Attributes"].get("MessageGroupId"))
        for m in messages
    ]


def _scenario() -> list[Any]:
    """A script over every path the patch touches; returns what a client could observe."""
    observed: list[Any] = []
    with mock_aws():
        sqs = boto3.client("sqs", region_name="us-east-1")
        queue, dlq = _queues(sqs)

        def receive(n: int, url: str = queue, **extra: Any) -> list[dict[str, Any]]:
            got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=n, AttributeNames=["All"], **extra)
            return list(got.get("Messages", []))

        def counts() -> dict[str, str]:
            names = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
            names.append("ApproximateNumberOfMessagesDelayed")
            return dict(sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=names)["Attributes"])

        entries = [
            {"Id": str(i), "MessageBody": f"m{i}", "MessageGroupId": f"g{i % 2}"} for i in range(9)
        ] + [{"Id": "9", "MessageBody": "late", "DelaySeconds": 60}]
        observed.append(len(sqs.send_message_batch(QueueUrl=queue, Entries=entries)["Successful"]))
        observed.append(counts())
        first = receive(4)
        observed.append(_seen(first))
        observed.append(counts())
        rest = receive(10)
        observed.append(_seen(rest))
        observed.append(receive(10))  # all hidden or delayed
        # Two made visible again come back, counted twice.
        sqs.change_message_visibility_batch(
            QueueUrl=queue,
            Entries=[
                {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"], "VisibilityTimeout": 0}
                for i, m in enumerate(first[:2])
            ],
        )
        again = receive(10)
        observed.append(_seen(again))
        # An older receipt handle of a message still deletes it; a made-up one is refused.
        deleted = sqs.delete_message_batch(
            QueueUrl=queue,
            Entries=[
                {"Id": "old", "ReceiptHandle": first[0]["ReceiptHandle"]},
                {"Id": "new", "ReceiptHandle": again[1]["ReceiptHandle"]},
                {"Id": "bad", "ReceiptHandle": "not-a-handle"},
            ],
        )
        observed.append(sorted(s["Id"] for s in deleted["Successful"]))
        observed.append(sorted(f["Id"] for f in deleted.get("Failed", [])))
        # Deleting twice is fine, as on SQS.
        sqs.delete_message(QueueUrl=queue, ReceiptHandle=first[0]["ReceiptHandle"])
        observed.append(counts())
        with pytest.raises(sqs.exceptions.ReceiptHandleIsInvalid):
            sqs.change_message_visibility(QueueUrl=queue, ReceiptHandle="nope", VisibilityTimeout=0)
        # Redrive: a message received maxReceiveCount times moves to the DLQ on the next receive.
        sqs.send_message(QueueUrl=queue, MessageBody="doomed")
        for _ in range(3):
            observed.append(_seen(receive(10, VisibilityTimeout=0)))
        observed.append(_seen(receive(10, VisibilityTimeout=0)))
        observed.append(_seen(receive(10, url=dlq)))
        attributes = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["All"])["Attributes"]
        observed.append(
            {k: v for k, v in attributes.items() if k not in ("CreatedTimestamp", "LastModifiedTimestamp")}
        )
    return observed


def test_the_patch_keeps_what_moto_does() -> None:
    plain = _scenario()
    moto_sqs.install()
    try:
        fast = _scenario()
    finally:
        moto_sqs.uninstall()
    assert fast == plain
    # And what moto does is what SQS does, so this comparison is not of two empty lists.
    assert plain[1] == {
        "ApproximateNumberOfMessages": "9",
        "ApproximateNumberOfMessagesNotVisible": "0",
        "ApproximateNumberOfMessagesDelayed": "1",
    }
    assert plain[2] == [("m0", "1", "g0"), ("m1", "1", "g1"), ("m2", "1", "g0"), ("m3", "1", "g1")]
    assert [body for body, _, _ in plain[4]] == ["m4", "m5", "m6", "m7", "m8"]
    assert plain[5] == []
    assert plain[6] == [("m0", "2", "g0"), ("m1", "2", "g1")]
    assert plain[7] == ["new", "old"]
    assert plain[8] == ["bad"]
    assert plain[-3] == []  # the fourth receive found it over the limit
    assert plain[-2] == [("doomed", "4", None)]
    assert json.loads(plain[-1]["RedrivePolicy"])["maxReceiveCount"] == 3


def _work_per_call(queued: int) -> dict[str, int]:
    """Messages moto looks at for each call, with `queued` messages waiting."""
    work: dict[str, int] = {}
    with mock_aws():
        sqs = boto3.client("sqs", region_name="us-east-1")
        queue, _ = _queues(sqs)
        backend = moto_sqs.models.sqs_backends["123456789012"]["us-east-1"]
        for i in range(queued):
            backend.send_message("work", f"backlog {i}", group_id="flood")

        def measure(name: str, call: Any) -> Any:
            before = moto_sqs.examined.value
            result = call()
            work[name] = moto_sqs.examined.value - before
            return result

        entries = [{"Id": str(i), "MessageBody": f"new {i}", "MessageGroupId": "other"} for i in range(10)]
        measure("send", lambda: sqs.send_message_batch(QueueUrl=queue, Entries=entries))
        got = measure(
            "receive", lambda: sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10)["Messages"]
        )
        measure(
            "hide",
            lambda: sqs.change_message_visibility_batch(
                QueueUrl=queue,
                Entries=[
                    {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"], "VisibilityTimeout": 60}
                    for i, m in enumerate(got[:5])
                ],
            ),
        )
        measure(
            "delete",
            lambda: sqs.delete_message_batch(
                QueueUrl=queue,
                Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(got[5:])],
            ),
        )
        measure("receive again", lambda: sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10))
    return work


@pytest.mark.usefixtures("patched")
def test_each_call_costs_the_same_with_10_or_10000_queued() -> None:
    small = _work_per_call(10)
    large = _work_per_call(10_000)
    assert large == small
    # A receive looks at the messages it returns, and the second time also at those still hidden at the
    # head of each group's line.
    assert large == {"send": 0, "receive": 10, "hide": 0, "delete": 0, "receive again": 20}


@pytest.mark.usefixtures("patched")
def test_a_receive_takes_the_groups_in_turn_as_fair_queues_do() -> None:
    with mock_aws():
        sqs = boto3.client("sqs", region_name="us-east-1")
        queue, _ = _queues(sqs)
        backend = moto_sqs.models.sqs_backends["123456789012"]["us-east-1"]
        for i in range(1000):
            backend.send_message("work", f"flood {i}", group_id="flooded")
        sqs.send_message(QueueUrl=queue, MessageBody="quiet", MessageGroupId="neighbour")
        got = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10)["Messages"]
    # moto alone would hand out the ten oldest, all of the flood; SQS fair queues serve the quiet group.
    assert "quiet" in [m["Body"] for m in got]
    assert [m["Body"] for m in got if m["Body"] != "quiet"] == [f"flood {i}" for i in range(9)]
