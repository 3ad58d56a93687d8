"""Shared fixtures: the template's stack on moto, the API in-process, real loopback receivers."""

from __future__ import annotations

import contextlib
import json
import os
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import boto3
import pytest
from moto import mock_aws

from devstack import lambda_router
from devstack.apigw import Gateway
from devstack.poller import poll_once
from devstack.template import Stack
from tests import loopback_only
from tests.receiver import Receiver

loopback_only.install()

ROOT = Path(__file__).resolve().parent.parent
EVENTS = ROOT / "events"

for key, value in {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "POWERTOOLS_SERVICE_NAME": "webhooks",
    "POWERTOOLS_LOG_LEVEL": "WARNING",
}.items():
    os.environ[key] = value

# Compressed schedules (moto's state-machine time is scaled down as well), and loopback allowed:
# the receivers of these tests live on 127.0.0.1. Every test uses the same values, because the
# handlers read their settings once, at import, as on Lambda.
STACK_PARAMETERS = {
    "RetrySchedule": "0,1,1",
    "ValidationSchedule": "0,2,2",
    "AllowHttpTargets": "true",
    "AllowPrivateTargets": "true",
    "DeliveryMaxReceiveCount": "6",
    "SecretGraceSeconds": "3600",
    "ReturnPathDomain": "bounces.example.com",
}
MOTO_CONFIG: Any = {"stepfunctions": {"execute_state_machine": True}, "lambda": {"use_docker": False}}
STATE_MACHINE_TIME_FACTOR = 0.05


def sample_event(name: str) -> dict[str, Any]:
    return json.loads((EVENTS / name).read_text())


@dataclass
class ApiAnswer:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


class LocalStack:
    """The template deployed on moto, with helpers to call the API and run the queues' functions."""

    def __init__(self, stack: Stack) -> None:
        self.stack = stack
        self.functions = stack.functions()
        self.handlers = {logical_id: f.load() for logical_id, f in self.functions.items()}
        self.gateway = Gateway(stack)
        self.sqs = boto3.client("sqs", region_name="us-east-1")
        self.dynamodb = boto3.resource("dynamodb", region_name="us-east-1")
        self.sfn = boto3.client("stepfunctions", region_name="us-east-1")

    def url(self, logical_id: str) -> str:
        return self.stack.physical[logical_id]["Ref"]

    def table(self, logical_id: str) -> Any:
        return self.dynamodb.Table(self.url(logical_id))

    def token(self, account: str | None = None) -> tuple[str, str]:
        from webhooks.auth import TokenStore

        account = account or f"acct-{uuid.uuid4().hex[:10]}"
        return account, TokenStore(self.url("TokensTable")).create(account, "test")

    def call(
        self,
        method: str,
        path: str,
        token: str | None = None,
        body: Any = None,
        *,
        raw: bytes | None = None,
        content_type: str = "application/json",
        headers: dict[str, str] | None = None,
    ) -> ApiAnswer:
        parts = urlsplit(path)
        headers = {"Content-Type": content_type, **(headers or {})}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None else b"")
        answer = self.gateway.handle(method, parts.path, headers, parse_qs(parts.query), data)
        return ApiAnswer(answer.status, answer.headers, answer.body)

    def pump(self, logical_id: str) -> int:
        """One invocation of the function behind this queue, as its event source mapping does it."""
        for source in self.stack.sqs_sources():
            if source.queue == logical_id:
                return poll_once(
                    self.sqs,
                    self.url(logical_id),
                    self.handlers[source.function],
                    function_name=self.functions[source.function].name,
                    batch_size=source.batch_size,
                    report_failures=source.report_failures,
                )
        raise LookupError(logical_id)

    def drain(self, timeout: float = 10.0) -> None:
        """Runs fan-out and delivery until both queues have nothing visible."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not (self.pump("IngestQueue") + self.pump("DeliveryQueue")):
                return

    def messages(self, logical_id: str) -> list[dict[str, Any]]:
        found = []
        for _ in range(10):
            batch = self.sqs.receive_message(
                QueueUrl=self.url(logical_id), MaxNumberOfMessages=10, AttributeNames=["All"]
            ).get("Messages", [])
            if not batch:
                break
            found.extend(batch)
        return found

    def wait_for_status(self, token: str, hook_id: str, wanted: str, timeout: float = 15.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        hook: dict[str, Any] = {}
        while time.monotonic() < deadline:
            hook = self.call("GET", f"/hooks/{hook_id}", token).json()
            if hook.get("status") == wanted:
                return hook
            time.sleep(0.05)
        raise AssertionError(f"hook {hook_id} is {hook.get('status')}, not {wanted}")

    def stop_executions(self) -> None:
        for machine in self.sfn.list_state_machines()["stateMachines"]:
            for execution in self.sfn.list_executions(
                stateMachineArn=machine["stateMachineArn"], statusFilter="RUNNING"
            )["executions"]:
                # moto: an execution between two states has no worker to stop; it ends by itself.
                with contextlib.suppress(AttributeError):
                    self.sfn.stop_execution(executionArn=execution["executionArn"])


@contextlib.contextmanager
def local_stack() -> Iterator[LocalStack]:
    """The template's stack on moto, for as long as the block runs (fixtures of any scope use it)."""
    with mock_aws(config=MOTO_CONFIG):
        from webhooks import aws, settings

        aws.reset()
        stack = Stack.from_template(overrides=STACK_PARAMETERS)
        stack.create()
        os.environ.update(stack.environment())
        settings.get_settings.cache_clear()
        lambda_router.install()
        lambda_router.scale_state_machine_time(STATE_MACHINE_TIME_FACTOR)
        local = LocalStack(stack)
        for logical_id, function in local.functions.items():
            lambda_router.register(function.name, local.handlers[logical_id])
        try:
            yield local
        finally:
            local.stop_executions()
            for function in local.functions.values():
                lambda_router.forget(function.name)
            aws.reset()


@pytest.fixture
def local() -> Iterator[LocalStack]:
    with local_stack() as stack:
        yield stack


@contextlib.contextmanager
def running_receiver() -> Iterator[Receiver]:
    """A receiver on 127.0.0.1 for as long as the block runs (fixtures of any scope use it)."""
    r = Receiver().start()
    try:
        yield r
    finally:
        r.stop()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with running_receiver() as r:
        yield r


def publish_verification_file(receiver: Receiver, hook: dict[str, Any], where: int = 0) -> None:
    """Puts the hook's verification file where the customer would: its directory (0) or the root (1)."""
    url = hook["verification"]["urls"][where]
    receiver.files[urlsplit(url).path] = hook["verification"]["contents"] + "\n"
