"""What the local stack's dead-letter queues hold (`make dlq`): a count per queue and its messages, peeked at
(they stay in the queue, as they would on AWS for an operator to redrive).

    make dlq                       python -m devstack.dlq [--moto-port 5000] [--max 10]

The dead-letter queues are those the template's redrive policies name. A delivery dead-lettered after its
last retry is also in the delivery log as `failed`; `POST /hooks/{id}/replay` sends it again.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from typing import Any

import boto3

from devstack.template import REGION, Stack


def dead_letter_queues(stack: Stack) -> list[str]:
    """The logical ids of the queues a redrive policy sends messages to."""
    targets = []
    for props in stack.of_type("AWS::SQS::Queue").values():
        target = props.get("RedrivePolicy", {}).get("deadLetterTargetArn")
        if isinstance(target, dict) and "Fn::GetAtt" in target:
            targets.append(str(target["Fn::GetAtt"][0]))
    return sorted(set(targets))


def report(sqs: Any, stack: Stack, limit: int = 10) -> str:
    lines = []
    for logical_id in dead_letter_queues(stack):
        url = sqs.get_queue_url(QueueName=stack.physical[logical_id]["QueueName"])["QueueUrl"]
        count = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"])
        lines.append(f"{logical_id}: {count['Attributes']['ApproximateNumberOfMessages']} message(s)")
        # Visibility 0: a look, not a take; the messages stay for whoever redrives them.
        peeked = sqs.receive_message(
            QueueUrl=url, MaxNumberOfMessages=min(limit, 10), VisibilityTimeout=0, AttributeNames=["All"]
        ).get("Messages", [])
        for message in peeked:
            try:
                body: Any = json.loads(message["Body"])
            except ValueError:
                body = message["Body"]
            lines.append("  " + json.dumps(body, ensure_ascii=False)[:2000])
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devstack.dlq", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--moto-port",
        type=int,
        default=int(os.environ.get("WEBHOOKS_MOTO_PORT") or 5000),
        help="moto's port, as the stack's banner shows it (default: $WEBHOOKS_MOTO_PORT, else 5000)",
    )
    parser.add_argument("--max", type=int, default=10, help="messages shown per queue (at most 10)")
    args = parser.parse_args(argv)
    sqs = boto3.client(
        "sqs",
        endpoint_url=f"http://127.0.0.1:{args.moto_port}",
        region_name=REGION,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    try:
        print(report(sqs, Stack.from_template(), args.max))
    except Exception as exc:  # the stack is not running, or on another port
        print(f"no local stack on 127.0.0.1:{args.moto_port} ({type(exc).__name__}); is make dev running?")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
