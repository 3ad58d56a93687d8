"""`make dev` end to end for returned mail: a bounce sent over SMTP to account A's return path reaches
A's bounce and failure hooks, signed, and nothing of it reaches account B; a forged return path reaches
nobody and is counted; a record the function fails on stays queued, then is dead-lettered."""

from __future__ import annotations

import json
import secrets
import smtplib
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import boto3
import pytest
import requests

from devstack import smtp
from tests.e2e.test_local_stack import ROOT, DevStack, eventually, free_port, running, verify
from tests.receiver import Receiver
from tests.unit.test_returned_mail_parser import sample
from webhooks.returned_mail import return_path

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(90)]


class MailStack(DevStack):
    """The local stack with its SMTP listener on a free port and a second account, B."""

    def __init__(self, log: Path) -> None:
        self.a_token = f"e2e-{secrets.token_hex(16)}"
        self.b_token = f"e2e-b-{secrets.token_hex(16)}"
        self.smtp_port = free_port()
        super().__init__(
            log,
            extra_env={
                "WEBHOOKS_SMTP_PORT": str(self.smtp_port),
                "WEBHOOKS_DEV_TOKENS": f"e2e:{self.a_token},b:{self.b_token}",
            },
        )
        self.token = self.a_token
        self.http.headers["Authorization"] = f"Bearer {self.token}"


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[MailStack]:
    yield from running(MailStack(tmp_path / "stack.log"))


def _hook(stack: DevStack, token: str, receiver: Receiver, path: str, events: list[str]) -> dict[str, Any]:
    answer = requests.post(
        f"{stack.url}/hooks",
        json={"url": f"{receiver.url}{path}", "events": events},
        headers={"Authorization": f"Bearer {token}"},
        timeout=10,
    )
    assert answer.status_code == 201, answer.text
    hook: dict[str, Any] = answer.json()
    receiver.files[urlsplit(hook["verification"]["urls"][0]).path] = hook["verification"]["contents"]

    def active() -> bool | None:
        current = requests.get(
            f"{stack.url}/hooks/{hook['id']}", headers={"Authorization": f"Bearer {token}"}, timeout=10
        ).json()
        return True if current["status"] == "active" else None

    eventually(f"hook {hook['id']} becomes active", active, 20)
    return hook


def _send(port: int, to: str, raw: bytes) -> None:
    with smtplib.SMTP("127.0.0.1", port, timeout=10) as client:
        client.sendmail("", [to], raw)


def test_returned_mail_over_smtp_reaches_only_its_accounts_hooks(
    stack: MailStack, receiver: Receiver
) -> None:
    other = Receiver().start()
    try:
        scenario(stack, receiver, other)
    finally:
        other.stop()
        code = stack.stop()
    assert code == 0


def scenario(stack: MailStack, receiver: Receiver, other: Receiver) -> None:
    stack.wait_ready()
    port = stack.smtp_port
    a_hook = _hook(stack, stack.token, receiver, "/a/hook.php", ["bounce", "failure"])
    b_hook = _hook(stack, stack.b_token, other, "/b/hook.php", ["bounce", "failure", "abuse"])
    assert a_hook["id"] != b_hook["id"]

    address = return_path.make("e2e", "msg-e2e-1", secret=smtp.secret().encode(), domain=smtp.domain())
    forged = address.replace("rp=e2e=", "rp=b=")
    raw = sample("rhost-aol-03.eml")
    _send(port, forged, raw)
    _send(port, address, raw)

    posts = receiver.wait_for_posts(3, timeout=30)
    assert len(posts) == 3
    fields = []
    for post in posts:
        verify(a_hook["secret"], post)
        fields.append({k: v[0] for k, v in parse_qs(post.body.decode(), keep_blank_values=True).items()})
    by_type = sorted(fields, key=lambda f: (f["type"] != "bounce", f["recipient"]))
    bounce, *failures = by_type
    assert (bounce["type"], bounce["id"], bounce["recipient"], bounce["envelope"]) == (
        "bounce",
        "msg-e2e-1",
        "sabineko@example.jp",
        address,
    )
    assert raw.decode().replace("\r\n", "\n") in bounce["mime"].replace("\r\n", "\n")
    assert [
        (f["type"], f["id"], f["recipient"], f["action"], f["state"], f["code"], f["extended"])
        for f in failures
    ] == [
        ("failure", "msg-e2e-1", "mikeneko@example.jp", "failed", "bounce", "550", "5.1.1"),
        ("failure", "msg-e2e-1", "sabineko@example.jp", "failed", "bounce", "550", "5.2.2"),
    ]
    assert all("Mailbox Full" in f["description"] or "User Unknown" in f["description"] for f in failures)

    # The forged one was handled (it was sent first) and counted; B got nothing of either.
    def counted() -> bool | None:
        return True if "UnattributedReturnedMail" in stack.output() else None

    eventually("the forged return path is counted", counted, 10)
    assert other.posts == []
    assert "forged or altered return path" in stack.output()
    assert json.dumps(raw.decode())[:200] not in stack.output()

    dead_letters(stack)


def dead_letters(stack: MailStack) -> None:
    """A message the function cannot read (its object is gone) stays on the queue, comes back, and
    after the redrive policy's receives is in the dead-letter queue: nothing is lost."""
    sqs = boto3.client(
        "sqs",
        endpoint_url=f"http://127.0.0.1:{stack.moto_port}",
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    queue = sqs.get_queue_url(QueueName="webhooks-local-ReturnedMailQueue")["QueueUrl"]
    dlq = sqs.get_queue_url(QueueName="webhooks-local-ReturnedMailDLQ")["QueueUrl"]
    # Time passing: a failed record is visible again after 1 s instead of the template's 360.
    sqs.set_queue_attributes(QueueUrl=queue, Attributes={"VisibilityTimeout": "1"})
    # moto reads the timeout when a receive starts: let the poller's current long poll (1 s) end first.
    time.sleep(1.5)
    body = json.loads(
        json.loads((ROOT / "events" / "returned_mail_sqs.json").read_text())["Records"][0]["body"]
    )
    body["Records"][0]["s3"]["object"]["key"] = "mail/never-stored"
    sqs.send_message(QueueUrl=queue, MessageBody=json.dumps(body))

    def counts(url: str) -> int:
        attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
        return int(attributes["ApproximateNumberOfMessages"]) + int(
            attributes["ApproximateNumberOfMessagesNotVisible"]
        )

    eventually("the failing record is tried", lambda: True if "NoSuchKey" in stack.output() else None, 15)
    assert counts(queue) + counts(dlq) == 1  # still there, on one queue or the other
    eventually("the record is dead-lettered", lambda: True if counts(dlq) == 1 else None, 30)
    assert counts(queue) == 0
    [dead] = sqs.receive_message(QueueUrl=dlq, MaxNumberOfMessages=10)["Messages"]
    assert json.loads(dead["Body"]) == body
