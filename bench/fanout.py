"""One `open` event to an account with 1,000 active hooks subscribed to it: the DynamoDB reads and
SQS calls the fan-out makes, counted with botocore's event hooks, in a cold container (a fresh
handler module) and then warm (a second event within the hook cache's lifetime)."""

from __future__ import annotations

import time
import uuid
from typing import Any

from bench.harness import ACCOUNT, moto_stack, sample_events
from devstack.poller import lambda_event, queue_arn
from webhooks import aws
from webhooks.ingest import IngestMessage

HOOKS = 1000
READS = ("Query", "GetItem", "BatchGetItem", "Scan")


def _event(url: str) -> dict[str, Any]:
    body = IngestMessage(account=ACCOUNT, event=sample_events("open")[0]).model_dump_json()
    message = {"MessageId": str(uuid.uuid4()), "ReceiptHandle": "bench", "Body": body, "Attributes": {}}
    return lambda_event([message], queue_arn(url))


def run(previous: dict[str, dict[str, Any]]) -> dict[str, Any]:
    with moto_stack() as bench:
        # Real URLs are never called here: fan-out only queues deliveries.
        hooks = [bench.new_hook(f"http://127.0.0.1:9/hook/{i}") for i in range(HOOKS)]
        bench.add_hooks(hooks)
        handler = bench.handler("FanoutFunction")
        context = bench.context("FanoutFunction")
        queue = bench.url("DeliveryQueue")
        figures: dict[str, dict[str, Any]] = {}
        queued = []
        for phase in ("cold", "warm"):
            bench.counter.reset()
            started = time.perf_counter()
            with bench.counter.acting("fanout"):
                answer = handler(_event(bench.url("IngestQueue")), context)
            seconds = time.perf_counter() - started
            counter = bench.counter
            figures[phase] = {
                "dynamodb_reads": counter.total("fanout", "dynamodb", READS),
                "dynamodb_read_units": counter.read_units["fanout"],
                "sqs_calls": counter.total("fanout", "sqs"),
                "sqs_billed_requests": counter.sqs_billed["fanout"],
                "deliveries_queued": counter.sqs_sent["fanout"],
                "calls": counter.by_operation("fanout"),
                "failed_records": len(answer["batchItemFailures"]),
                "seconds": round(seconds, 3),
            }
            # What SQS holds, independently of the counting; then emptied (once: SQS allows one purge
            # a minute), because moto's SQS scans the whole queue for every message sent.
            queued.append(_queue_depth(queue))
            if phase == "cold":
                aws.client("sqs").purge_queue(QueueUrl=queue)
    cold, warm = figures["cold"], figures["warm"]
    meets = (
        cold["dynamodb_reads"] <= 1
        and warm["dynamodb_reads"] <= 1
        and cold["sqs_calls"] <= cold["deliveries_queued"] / 10
        and cold["deliveries_queued"] == HOOKS
        and queued == [HOOKS, HOOKS]
    )
    return {
        "scenario": "fanout",
        "hooks": HOOKS,
        "events": 1,
        "accounts": 1,
        "dynamodb_reads": cold["dynamodb_reads"],
        "sqs_calls": cold["sqs_calls"],
        "deliveries_queued": cold["deliveries_queued"],
        "sqs_calls_per_delivery": round(cold["sqs_calls"] / max(1, cold["deliveries_queued"]), 4),
        "cold": cold,
        "warm": warm,
        "messages_in_delivery_queue": queued,
        "messages_expected": [HOOKS, HOOKS],
        "measured": "functions/fanout/app.py lambda_handler on a one-record SQS event; cold = fresh module",
        "target": "<= 1 DynamoDB read per account per invocation; SQS calls <= deliveries / 10",
        "meets_target": meets,
    }


def _queue_depth(url: str) -> int:
    attributes = aws.client("sqs").get_queue_attributes(
        QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"]
    )["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"])


def row(r: dict[str, Any]) -> list[str]:
    figure = (
        f"1 event to {r['hooks']} hooks: {r['dynamodb_reads']} DynamoDB read(s) "
        f"({r['cold']['dynamodb_read_units']} RCU), {r['sqs_calls']} SQS calls for "
        f"{r['deliveries_queued']} deliveries ({r['sqs_calls_per_delivery']}/delivery); warm: "
        f"{r['warm']['dynamodb_reads']} reads; {r['cold']['seconds']} s cold on moto"
    )
    return ["fanout", figure, "<= 1 read/account/invocation, SQS calls <= deliveries/10",
            "yes" if r["meets_target"] else "NO"]  # fmt: skip
