"""What every scenario needs: the template's stack on moto, hooks, Lambda-shaped SQS events, the
handlers loaded as Lambda loads them, their logs swallowed (but counted), and AWS calls counted.

Import this module only after `bench.__main__` has prepared the process environment: the handlers'
loggers and settings read it once, at import, as on Lambda.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
from moto import mock_aws

from bench import calc
from bench.moto_process import MotoProcess
from devstack.poller import lambda_event, queue_arn
from devstack.template import Stack
from webhooks import aws, ids, safe_http, settings, signing
from webhooks.delivery_message import DeliveryMessage
from webhooks.events import parse_event
from webhooks.hook_store import HookStore
from webhooks.hooks import Hook, HookStatus

ROOT = Path(__file__).resolve().parent.parent
EVENTS = ROOT / "events"
PRICES = Path(__file__).resolve().parent / "prices.json"
MOTO_CONFIG: Any = {"stepfunctions": {"execute_state_machine": True}, "lambda": {"use_docker": False}}
# The receivers live on 127.0.0.1; nothing else about the template is changed.
OVERRIDES = {"AllowHttpTargets": "true", "AllowPrivateTargets": "true"}
ACCOUNT = "acct-bench"

# What an AWS call from Lambda to DynamoDB or SQS in the same region takes, typically; moto answers
# much slower, so figures judged on time replace moto's with this.
AWS_CALL_SECONDS = 0.010


def sample_payloads(kind: str | None = None) -> list[dict[str, Any]]:
    """The payloads of events/platform_events.json (one per event type), or of one type only."""
    raw = json.loads((EVENTS / "platform_events.json").read_text())["events"]
    return [parse_event(e).payload() for e in raw if kind is None or e["type"] == kind]


def sample_events(kind: str | None = None) -> list[dict[str, Any]]:
    raw = json.loads((EVENTS / "platform_events.json").read_text())["events"]
    return [e for e in raw if kind is None or e["type"] == kind]


def prices() -> dict[str, Any]:
    return dict(json.loads(PRICES.read_text()))


# ------------------------------------------------------------------------------------------ logs


class LogSink(io.TextIOBase):
    """Where the handlers' log lines go: formatted as on Lambda, then counted and dropped."""

    def __init__(self) -> None:
        self.chars = 0
        self.lines = 0
        self._lock = threading.Lock()

    def writable(self) -> bool:
        return True

    def reset(self) -> None:
        with self._lock:
            self.chars = self.lines = 0

    def write(self, text: str) -> int:
        with self._lock:
            self.chars += len(text)
            self.lines += text.count("\n")
        return len(text)


# Everything the functions write to stdout (log lines, EMF metrics) during a scenario ends here:
# `bench.__main__` redirects stdout to it, and the loggers' handlers are pointed at it.
LOGS = LogSink()


def capture_logs(sink: LogSink) -> None:
    """Points every stream handler of the functions' loggers at `sink` (they write to stdout)."""
    service = os.environ.get("POWERTOOLS_SERVICE_NAME", "webhooks")
    for name in (service, "aws_lambda_powertools"):
        for handler in logging.getLogger(name).handlers:
            if isinstance(handler, logging.StreamHandler):
                handler.setStream(sink)


# ------------------------------------------------------------------------------------------ AWS calls


@dataclass
class CallCounter:
    """Counts AWS API calls by (who, service, operation) with botocore's event hooks, and with
    `detail` the billing units they consume: DynamoDB write/read units from the items on the wire,
    SQS requests as billed (per 64 KiB chunk). `who` says on whose behalf calls are made now."""

    detail: bool = True
    who: str = "setup"
    calls: Counter[tuple[str, str, str]] = field(default_factory=Counter)
    write_units: Counter[str] = field(default_factory=Counter)
    read_units: Counter[str] = field(default_factory=Counter)
    sqs_billed: Counter[str] = field(default_factory=Counter)
    sqs_sent: Counter[str] = field(default_factory=Counter)
    sqs_received: Counter[str] = field(default_factory=Counter)
    # Wall seconds during which at least one call of `who` was in flight (calls made together count
    # once), and waves: how many times calls started from none in flight. Replacing moto's time by
    # AWS's is then: seconds - covered + waves x AWS_CALL_SECONDS.
    seconds: Counter[str] = field(default_factory=Counter)
    waves: Counter[str] = field(default_factory=Counter)
    item_sizes: list[int] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _in_flight: Counter[str] = field(default_factory=Counter)
    _since: dict[str, float] = field(default_factory=dict)

    def install(self, session: boto3.Session) -> None:
        session.events.register("before-call", self._before, unique_id="bench-count-before")
        session.events.register("after-call", self._after, unique_id="bench-count-after")

    def reset(self) -> None:
        with self._lock:
            for counter in (
                self.calls,
                self.write_units,
                self.read_units,
                self.sqs_billed,
                self.sqs_sent,
                self.sqs_received,
                self.seconds,
                self.waves,
                self._in_flight,
            ):
                counter.clear()
            self.item_sizes.clear()

    @contextlib.contextmanager
    def acting(self, who: str) -> Iterator[None]:
        previous, self.who = self.who, who
        try:
            yield
        finally:
            self.who = previous

    def total(self, who: str | None = None, service: str | None = None, ops: Sequence[str] = ()) -> int:
        return sum(
            n
            for (w, s, o), n in self.calls.items()
            if (who is None or w == who) and (service is None or s == service) and (not ops or o in ops)
        )

    def by_operation(self, who: str | None = None) -> dict[str, int]:
        found: Counter[str] = Counter()
        for (w, s, o), n in self.calls.items():
            if who is None or w == who:
                found[f"{s}:{o}"] += n
        return dict(sorted(found.items()))

    def _before(self, model: Any, params: Any, context: Any, **_: Any) -> None:
        service, op, who = model.service_model.service_name, model.name, self.who
        context["bench_who"] = who
        context["bench_started"] = True
        with self._lock:
            self.calls[(who, service, op)] += 1
            if not self._in_flight[who]:
                self._since[who] = time.perf_counter()
                self.waves[who] += 1
            self._in_flight[who] += 1
        if not self.detail:
            return
        body = _json(params.get("body"))
        context["bench_body"] = body
        with self._lock:
            if service == "dynamodb":
                self._writes(who, op, body)
            elif service == "sqs":
                if op == "SendMessageBatch":
                    entries = body.get("Entries", [])
                    payload = sum(len(e.get("MessageBody", "").encode()) for e in entries)
                    self.sqs_billed[who] += calc.sqs_billed_requests(payload)
                    self.sqs_sent[who] += len(entries)
                elif op == "SendMessage":
                    self.sqs_billed[who] += calc.sqs_billed_requests(
                        len(body.get("MessageBody", "").encode())
                    )
                    self.sqs_sent[who] += 1
                elif op != "ReceiveMessage":  # billed by its answer, below
                    self.sqs_billed[who] += 1

    def _writes(self, who: str, op: str, body: dict[str, Any]) -> None:
        if op == "BatchWriteItem":
            for requests in body.get("RequestItems", {}).values():
                for request in requests:
                    if "PutRequest" in request:
                        size = calc.item_size(request["PutRequest"]["Item"])
                        self.item_sizes.append(size)
                        self.write_units[who] += calc.write_units(size)
                    else:
                        self.write_units[who] += 1  # a delete: the old item's size, assumed < 1 KB
        elif op == "PutItem":
            self.write_units[who] += calc.write_units(calc.item_size(body.get("Item", {})))
        elif op in ("UpdateItem", "DeleteItem"):
            self.write_units[who] += 1  # the item's size is not on the wire; hooks are < 1 KB

    def _after(self, model: Any, http_response: Any, context: Any, **_: Any) -> None:
        who = context.get("bench_who", self.who)
        started = context.get("bench_started")
        service, op = model.service_model.service_name, model.name
        with self._lock:
            if started is not None and self._in_flight[who] > 0:
                self._in_flight[who] -= 1
                if not self._in_flight[who]:
                    self.seconds[who] += time.perf_counter() - self._since[who]
        if not self.detail:
            return
        request = context.get("bench_body") or {}
        if service == "dynamodb" and op in ("Query", "Scan", "GetItem", "BatchGetItem"):
            answer = _json(http_response.content)
            with self._lock:
                self.read_units[who] += _read_units(op, request, answer)
        elif service == "sqs" and op == "ReceiveMessage":
            messages = _json(http_response.content).get("Messages", [])
            payload = sum(len(m.get("Body", "").encode()) for m in messages)
            with self._lock:
                self.sqs_billed[who] += calc.sqs_billed_requests(payload)
                self.sqs_received[who] += len(messages)


def _read_units(op: str, request: dict[str, Any], answer: dict[str, Any]) -> float:
    if op in ("Query", "Scan"):
        size = sum(calc.item_size(item) for item in answer.get("Items", []))
        # Index queries are always eventually consistent.
        return calc.read_units(size, consistent=bool(request.get("ConsistentRead")))
    if op == "GetItem":
        size = calc.item_size(answer.get("Item") or {})
        return calc.read_units(size, consistent=bool(request.get("ConsistentRead")))
    units = 0.0
    for table, items in answer.get("Responses", {}).items():
        consistent = bool(request.get("RequestItems", {}).get(table, {}).get("ConsistentRead"))
        units += sum(calc.read_units(calc.item_size(item), consistent=consistent) for item in items)
    return units


def _json(raw: Any) -> dict[str, Any]:
    if isinstance(raw, bytes | bytearray):
        raw = raw.decode()
    if isinstance(raw, str) and raw.startswith("{"):
        value = json.loads(raw)
        return value if isinstance(value, dict) else {}
    return {}


# ------------------------------------------------------------------------------------------ the stack


@dataclass
class Context:
    """The parts of Lambda's context object that Powertools reads."""

    function_name: str
    memory_limit_in_mb: int = 512
    function_version: str = "$LATEST"
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))

    @property
    def invoked_function_arn(self) -> str:
        return f"arn:aws:lambda:us-east-1:123456789012:function:{self.function_name}"

    def get_remaining_time_in_millis(self) -> int:
        return 120_000


class BenchStack:
    """The template deployed on moto (in this process or its own), with counting and helpers."""

    def __init__(
        self, stack: Stack, counter: CallCounter, logs: LogSink, moto: MotoProcess | None = None
    ) -> None:
        self.stack = stack
        self.counter = counter
        self.logs = logs
        self.moto = moto  # moto's own process, when it has one
        self.functions = stack.functions()
        self.store = HookStore(self.url("HooksTable"))

    def url(self, logical_id: str) -> str:
        return self.stack.physical[logical_id]["Ref"]

    def moto_cpu_seconds(self) -> float:
        """CPU seconds moto's own process has used so far (0.0 when moto runs in this process)."""
        return self.moto.cpu_seconds() if self.moto is not None else 0.0

    @property
    def settings(self) -> settings.Settings:
        return settings.get_settings()

    def parameter(self, name: str) -> str:
        return self.stack.parameters[name]

    def memory_mb(self, logical_id: str) -> int:
        return memory_mb(self.stack, logical_id)

    def batch_size(self, logical_id: str) -> int:
        for source in self.stack.sqs_sources():
            if source.function == logical_id:
                return source.batch_size
        raise LookupError(logical_id)

    def handler(self, logical_id: str) -> Any:
        """The function's handler, imported afresh (a cold start), its logs going to the sink."""
        function = self.functions[logical_id]
        sys.modules.pop(f"_fn_{logical_id}_{function.handler.rsplit('.', 1)[0]}", None)
        handler = function.load()
        capture_logs(self.logs)
        return handler

    def context(self, logical_id: str) -> Context:
        return Context(self.functions[logical_id].name, self.memory_mb(logical_id))

    def new_hook(self, url: str, account: str = ACCOUNT, events: Sequence[str] = ("open",)) -> Hook:
        return new_hook(url, account, events)

    def add_hooks(self, hooks: Sequence[Hook]) -> None:
        """Straight into the hooks table, as active hooks (one BatchWriteItem per 25)."""
        with self.store.table.batch_writer() as batch:
            for hook in hooks:
                batch.put_item(Item=hook.to_item())

    def delivery_event(
        self, hooks: Sequence[Hook], payloads: Sequence[dict[str, Any]], count: int
    ) -> dict[str, Any]:
        return delivery_event(self.url("DeliveryQueue"), hooks, payloads, count)


def memory_mb(stack: Stack, logical_id: str) -> int:
    """The function's MemorySize in the template (its own, else the Globals')."""
    props = stack.template["Resources"][logical_id]["Properties"]
    default = stack.template.get("Globals", {}).get("Function", {}).get("MemorySize", 128)
    return int(props.get("MemorySize", default))


def new_hook(url: str, account: str = ACCOUNT, events: Sequence[str] = ("open",)) -> Hook:
    """An active hook, as validation leaves it."""
    return Hook(
        account=account,
        id=ids.new_id("hk"),
        url=url,
        events=list(events),  # type: ignore[arg-type]
        status=HookStatus.ACTIVE,
        secret=signing.new_secret(),
        verification_file="smtpeter-bench.txt",
        verification_contents="bench",
        validation_id=ids.new_id("val"),
        validated_at=int(time.time()),
    )


def delivery_event(
    queue_url: str, hooks: Sequence[Hook], payloads: Sequence[dict[str, Any]], count: int
) -> dict[str, Any]:
    """A Lambda SQS event of `count` first-attempt deliveries, round-robin over hooks and payloads.
    Receipt handles are fake: a delivery that succeeds makes no SQS call."""
    messages = []
    for i in range(count):
        hook, payload = hooks[i % len(hooks)], payloads[i % len(payloads)]
        message = DeliveryMessage(
            delivery_id=ids.new_id("msg"),
            event_id=ids.new_id("evt"),
            account=hook.account,
            hook_id=hook.id,
            type=str(payload["type"]),
            payload=payload,
        )
        messages.append(
            {
                "MessageId": str(uuid.uuid4()),
                "ReceiptHandle": f"bench-{uuid.uuid4().hex}",
                "Body": message.to_body(),
                "Attributes": {"ApproximateReceiveCount": "1"},
            }
        )
    return lambda_event(messages, queue_arn(queue_url))


@contextlib.contextmanager
def moto_stack(*, detail: bool = True, remote: bool = False) -> Iterator[BenchStack]:
    """The template's stack on moto, with the default session's calls counted. moto runs in this
    process (`mock_aws`), or with `remote` as moto's server in a process of its own, reached over
    127.0.0.1 (`AWS_ENDPOINT_URL`): its work is then a wait on a socket, as a call to AWS is, not
    CPU under this process's GIL. Either way it is gone on leaving, errors included."""
    with contextlib.ExitStack() as stack_of:
        moto: MotoProcess | None = None
        if remote:
            moto = stack_of.enter_context(MotoProcess(MOTO_CONFIG))
            stack_of.enter_context(_environ("AWS_ENDPOINT_URL", moto.url))
        else:
            stack_of.enter_context(mock_aws(config=MOTO_CONFIG))
        yield stack_of.enter_context(_stack(moto, detail))


@contextlib.contextmanager
def _environ(name: str, value: str) -> Iterator[None]:
    previous = os.environ.get(name)
    os.environ[name] = value
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = previous


@contextlib.contextmanager
def _stack(moto: MotoProcess | None, detail: bool) -> Iterator[BenchStack]:
    counter = CallCounter(detail=detail)
    logs = LOGS
    logs.reset()
    boto3.setup_default_session()
    assert boto3.DEFAULT_SESSION is not None
    counter.install(boto3.DEFAULT_SESSION)
    aws.reset()
    safe_http.clear_caches()
    try:
        stack = Stack.from_template(overrides=OVERRIDES)
        stack.create(endpoint_url=moto.url if moto is not None else None)
        os.environ.update(stack.environment())
        settings.get_settings.cache_clear()
        yield BenchStack(stack, counter, logs, moto)
    finally:
        aws.reset()
        safe_http.clear_caches()
        settings.get_settings.cache_clear()
        boto3.DEFAULT_SESSION = None
