"""The returned-mail function under moto: S3 notification -> the message from the bucket -> its events
on the ingest queue for the account of the return path; forged mail goes nowhere and is counted; a
record that cannot be handled comes back, then lands in the dead-letter queue."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest

from devstack import smtp
from devstack.lambda_router import Context
from tests.conftest import STACK_PARAMETERS, LocalStack, local_stack, sample_event
from tests.unit.test_returned_mail_parser import sample
from webhooks.returned_mail import return_path

SECRET = "integration-return-path-secret"
DOMAIN = STACK_PARAMETERS["ReturnPathDomain"]
SAMPLE_KEY = "mail/example-returned-message"


@pytest.fixture
def intake() -> Iterator[tuple[LocalStack, str]]:
    with local_stack() as local:
        yield local, smtp.create_intake(local.stack, secret_value=SECRET)


def _stored(address: str, eml: str = "rhost-aol-03.eml") -> bytes:
    # As SES stores it: its Received header names the recipient, the return path.
    return (
        f"Received: from mx.example.jp by inbound-smtp.us-east-1.amazonaws.com with SMTP id x\r\n"
        f" for {address}; Mon, 23 Nov 2026 10:00:00 +0000\r\n"
    ).encode() + sample(eml)


def _put(bucket: str, key: str, raw: bytes) -> None:
    boto3.client("s3", region_name="us-east-1").put_object(Bucket=bucket, Key=key, Body=raw)


def _invoke(local: LocalStack, event: dict[str, Any]) -> Any:
    function = local.functions["ReturnedMailFunction"]
    return local.handlers["ReturnedMailFunction"](event, Context(function.name))


def _ingested(local: LocalStack) -> list[dict[str, Any]]:
    return [json.loads(m["Body"]) for m in local.messages("IngestQueue")]


def test_the_sample_event_queues_bounce_and_failures_for_the_return_paths_account(
    intake: tuple[LocalStack, str],
) -> None:
    local, bucket = intake
    address = return_path.make("acme", "msg-1001", secret=SECRET.encode(), domain=DOMAIN)
    _put(bucket, SAMPLE_KEY, _stored(address))

    result = _invoke(local, sample_event("returned_mail_sqs.json"))

    assert result == {"batchItemFailures": []}
    queued = _ingested(local)
    assert {m["account"] for m in queued} == {"acme"}
    events = sorted((m["event"] for m in queued), key=lambda e: (e["type"] != "bounce", e.get("recipient")))
    assert [(e["type"], e["id"], e["recipient"]) for e in events] == [
        ("bounce", "msg-1001", "sabineko@example.jp"),
        ("failure", "msg-1001", "mikeneko@example.jp"),
        ("failure", "msg-1001", "sabineko@example.jp"),
    ]
    assert events[0]["envelope"] == address
    assert events[0]["mime"].endswith(sample("rhost-aol-03.eml").decode())
    assert {(e["code"], e["extended"], e["state"], e["action"]) for e in events[1:]} == {
        (550, "5.1.1", "bounce", "failed"),
        (550, "5.2.2", "bounce", "failed"),
    }


def test_the_same_message_handled_twice_gets_the_same_event_ids(intake: tuple[LocalStack, str]) -> None:
    local, bucket = intake
    _put(bucket, SAMPLE_KEY, _stored(return_path.make("acme", "m", secret=SECRET.encode(), domain=DOMAIN)))

    _invoke(local, sample_event("returned_mail_sqs.json"))
    first = sorted(m["event_id"] for m in _ingested(local))
    _invoke(local, sample_event("returned_mail_sqs.json"))
    second = sorted(m["event_id"] for m in _ingested(local))

    assert first == second
    assert len(first) == 3


def test_a_forged_return_path_delivers_nothing_and_is_counted_without_contents(
    intake: tuple[LocalStack, str], capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    local, bucket = intake
    genuine = return_path.make("acme", "msg-1001", secret=SECRET.encode(), domain=DOMAIN)
    forged = genuine.replace("rp=acme=", "rp=other=")
    _put(bucket, SAMPLE_KEY, _stored(forged))
    capsys.readouterr()

    result = _invoke(local, sample_event("returned_mail_sqs.json"))

    assert result == {"batchItemFailures": []}
    assert _ingested(local) == []
    output = capsys.readouterr().out
    metrics = [json.loads(line) for line in output.splitlines() if '"_aws"' in line]
    assert [m["UnattributedReturnedMail"] for m in metrics] in ([1.0], [[1.0]])
    [line] = [r for r in caplog.records if "attributed to nobody" in r.getMessage()]
    assert line.__dict__["reason"] == "forged or altered return path"
    assert line.__dict__["object"].endswith(SAMPLE_KEY)
    for text in (output, caplog.text, json.dumps([r.__dict__ for r in caplog.records], default=str)):
        assert "Mailbox Full" not in text
        assert "sabineko" not in text
    # kept for operators
    assert (
        boto3.client("s3", region_name="us-east-1").get_object(Bucket=bucket, Key=SAMPLE_KEY)["Body"].read()
    )


def test_mail_stored_in_the_bucket_reaches_the_queue_and_the_function(intake: tuple[LocalStack, str]) -> None:
    local, bucket = intake
    address = return_path.make("acme", "msg-7", secret=SECRET.encode(), domain=DOMAIN)
    _put(bucket, "mail/from-ses", _stored(address, "lhost-yahoo-01.eml"))

    while local.pump("ReturnedMailQueue"):
        pass

    events = [m["event"] for m in _ingested(local)]
    assert sorted((e["type"], e["id"]) for e in events) == [("bounce", "msg-7"), ("failure", "msg-7")]


def test_a_record_that_fails_comes_back_then_goes_to_the_dead_letter_queue(
    intake: tuple[LocalStack, str],
) -> None:
    local, bucket = intake
    _put(bucket, "mail/gone", b"placeholder")
    while local.pump("ReturnedMailQueue"):  # the notification of the put, handled (nobody's mail)
        pass
    boto3.client("s3", region_name="us-east-1").delete_object(Bucket=bucket, Key="mail/gone")
    notification = sample_event("returned_mail_sqs.json")["Records"][0]["body"].replace(
        SAMPLE_KEY, "mail/gone"
    )
    sqs = boto3.client("sqs", region_name="us-east-1")
    sqs.send_message(QueueUrl=local.url("ReturnedMailQueue"), MessageBody=notification)

    # Time passing: a failed record is visible again at once instead of after the queue's timeout.
    sqs.set_queue_attributes(QueueUrl=local.url("ReturnedMailQueue"), Attributes={"VisibilityTimeout": "0"})
    receives = 0
    for _ in range(10):  # bounded: the redrive policy allows 5 receives
        if not local.pump("ReturnedMailQueue"):
            break
        receives += 1

    dead = local.messages("ReturnedMailDLQ")
    assert [m["Body"] for m in dead] == [notification]
    assert receives >= 1  # with no visibility timeout one poll may receive it several times
    assert _ingested(local) == []
