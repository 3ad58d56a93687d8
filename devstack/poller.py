"""SQS -> handler with Lambda's event-source-mapping semantics, for the local stack and the tests.

Receives up to the mapping's batch size (waiting up to its batching window to fill it), hands the
handler a Lambda-shaped SQS event, and deletes exactly the records that succeeded: all of them,
or all but the `batchItemFailures` when the mapping reports them. Failed records stay in the
queue and come back after their visibility timeout; the queue's redrive policy moves them to the
dead-letter queue after maxReceiveCount receives, as on AWS.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from devstack.lambda_router import Context
from devstack.template import AWS_ACCOUNT, REGION, SqsSource

Handler = Callable[[dict[str, Any], Any], Any]

logger = logging.getLogger(__name__)


def lambda_event(messages: list[dict[str, Any]], queue_arn: str) -> dict[str, Any]:
    return {
        "Records": [
            {
                "messageId": m["MessageId"],
                "receiptHandle": m["ReceiptHandle"],
                "body": m["Body"],
                "attributes": m.get("Attributes", {}),
                "messageAttributes": {},
                "md5OfBody": m.get("MD5OfBody", ""),
                "eventSource": "aws:sqs",
                "eventSourceARN": queue_arn,
                "awsRegion": REGION,
            }
            for m in messages
        ]
    }


def queue_arn(queue_url: str) -> str:
    return f"arn:aws:sqs:{REGION}:{AWS_ACCOUNT}:{queue_url.rsplit('/', 1)[-1]}"


def poll_once(
    sqs: Any,
    queue_url: str,
    handler: Handler,
    *,
    function_name: str,
    batch_size: int = 10,
    window_seconds: float = 0.0,
    report_failures: bool = True,
    wait_seconds: int = 0,
) -> int:
    """One invocation's worth: returns how many records the handler was given (0 when none)."""
    messages: list[dict[str, Any]] = []
    deadline = time.monotonic() + window_seconds
    while len(messages) < batch_size:
        received = sqs.receive_message(
            QueueUrl=queue_url,
            MaxNumberOfMessages=min(10, batch_size - len(messages)),
            WaitTimeSeconds=wait_seconds if not messages else 0,
            AttributeNames=["All"],
        ).get("Messages", [])
        messages.extend(received)
        if not received and (not messages or time.monotonic() >= deadline):
            break
        if not received:
            time.sleep(0.05)
    if not messages:
        return 0
    try:
        response = handler(lambda_event(messages, queue_arn(queue_url)), Context(function_name))
    except Exception:
        # An invocation error fails the whole batch: every record comes back after its timeout.
        logger.exception(
            "%s failed; its %d records come back after their visibility timeout", function_name, len(messages)
        )
        return len(messages)
    failed: set[str] = set()
    if report_failures and isinstance(response, dict):
        failed = {item["itemIdentifier"] for item in response.get("batchItemFailures", [])}
    done = [m for m in messages if m["MessageId"] not in failed]
    for start in range(0, len(done), 10):
        sqs.delete_message_batch(
            QueueUrl=queue_url,
            Entries=[
                {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]}
                for i, m in enumerate(done[start : start + 10])
            ],
        )
    return len(messages)


class Poller:
    """One event source mapping, run until `stop` is set: invocations follow one another.

    One invocation at a time per source, not Lambda's scaling out: moto's ReceiveMessage is not
    atomic across concurrent callers, so parallel pollers could both receive one message. Each
    invocation is concurrent inside (the delivery handler POSTs a whole batch at once).
    """

    def __init__(
        self,
        sqs: Any,
        queue_url: str,
        handler: Handler,
        *,
        function_name: str,
        source: SqsSource,
        stop: threading.Event,
        wait_seconds: int = 1,
    ) -> None:
        self.sqs = sqs
        self.queue_url = queue_url
        self.handler = handler
        self.function_name = function_name
        self.source = source
        self.stop = stop
        # Short long-polls: a stop request is noticed within this (plus one batching window).
        self.wait_seconds = wait_seconds
        self.thread = threading.Thread(target=self._run, name=f"poll-{source.queue}", daemon=True)

    def start(self) -> Poller:
        self.thread.start()
        return self

    def join(self, timeout: float) -> bool:
        self.thread.join(timeout)
        return not self.thread.is_alive()

    def _run(self) -> None:
        while not self.stop.is_set():
            try:
                poll_once(
                    self.sqs,
                    self.queue_url,
                    self.handler,
                    function_name=self.function_name,
                    batch_size=self.source.batch_size,
                    window_seconds=self.source.window_seconds,
                    report_failures=self.source.report_failures,
                    wait_seconds=self.wait_seconds,
                )
            except Exception:
                if self.stop.is_set():
                    return
                # moto unreachable or refusing: Lambda's poller backs off and tries again too.
                logger.exception("polling %s failed; trying again", self.source.queue)
                self.stop.wait(1.0)
