"""AWS calls per delivery on the success path, counted, and what a million deliveries cost.

1,000 events go the whole way: a producer sends them to the ingest queue (SendMessageBatch, what
POST /events does), the template's event source mappings are played by the local poller (batch
sizes from the template), fan-out queues one delivery per event to one hook, delivery POSTs them
to a receiver on 127.0.0.1 that answers 200 at once. Every call our code makes is counted with
botocore's event hooks, with the units it is billed by (DynamoDB write/read units from the items
on the wire, SQS requests per 64 KiB chunk). One hook per event is the worst case per delivery:
nothing of ingest or fan-out is shared between deliveries.

The event source mapping's own calls (ReceiveMessage, DeleteMessageBatch) are made by Lambda on
AWS, not by our code; they are added per batch from the batch sizes seen: ceil(records / 10) of
each per invocation. Its empty long polls while a queue is idle are a fixed cost, not per delivery.
"""

from __future__ import annotations

import time
from typing import Any

from bench import calc
from bench.harness import ACCOUNT, AWS_CALL_SECONDS, BenchStack, moto_stack, prices, sample_events
from bench.receivers import ReceiverProcess
from devstack.poller import poll_once
from webhooks import aws, ingest

EVENTS = 1000
TARGET = 0.40  # dollars per million deliveries
# What one DynamoDB call takes from Lambda in the same region (an assumption, stated in the output).
# Bounds of the pumping loop: invocations per queue, and seconds in all.
MAX_INVOCATIONS = 200
PUMP_SECONDS = 120.0
FUNCTIONS = {"IngestQueue": "FanoutFunction", "DeliveryQueue": "DeliverFunction"}
ROLES = {"FanoutFunction": "fanout", "DeliverFunction": "deliver"}


def run(previous: dict[str, dict[str, Any]]) -> dict[str, Any]:
    with ReceiverProcess(ports=1) as receiver, moto_stack(remote=True) as bench:
        return _run(bench, receiver, previous.get("slow_receivers"))


def _pump(
    bench: BenchStack, raw: list[dict[str, Any]], invocations: dict[str, list[tuple[int, float]]]
) -> None:
    """A steady flow: the producer sends one ingest batch worth of events, then each event source
    mapping runs its function once (a full batch), until every event is delivered. Queues stay
    short, as in a steady flow (and moto's SQS, which scans the whole queue per message, stays fast)."""
    sqs = aws.client("sqs")
    deadline = time.monotonic() + PUMP_SECONDS
    mappings = []
    for queue, function in FUNCTIONS.items():
        handler = bench.handler(function)
        role = ROLES[function]

        def invoke(
            event: dict[str, Any], _context: Any, handler: Any = handler, role: str = role, fn: str = function
        ) -> Any:
            started = time.perf_counter()
            with bench.counter.acting(role):
                answer = handler(event, bench.context(fn))
            invocations[role].append((len(event["Records"]), time.perf_counter() - started))
            return answer

        source = next(s for s in bench.stack.sqs_sources() if s.queue == queue)
        mappings.append((queue, function, role, invoke, source))

    def poll_each() -> int:
        """One invocation per event source mapping, as Lambda's pollers make them; records handled."""
        received = 0
        for queue, function, role, invoke, source in mappings:
            with bench.counter.acting(f"esm-{role}"):
                received += poll_once(
                    sqs,
                    bench.url(queue),
                    invoke,
                    function_name=bench.functions[function].name,
                    batch_size=source.batch_size,
                    report_failures=source.report_failures,
                )
        return received

    chunk = mappings[0][4].batch_size
    for start in range(0, len(raw) + chunk, chunk):
        if time.monotonic() > deadline:
            raise TimeoutError(f"events not delivered within {PUMP_SECONDS} s")
        if start < len(raw):
            with bench.counter.acting("producer"):
                events = ingest.validate_events(raw[start : start + chunk])
                ingest.enqueue(ACCOUNT, events, bench.url("IngestQueue"))
        handled = poll_each()
        if start >= len(raw) and not handled:
            return
    for _ in range(MAX_INVOCATIONS):  # whatever is left (nothing, when every batch was full)
        if time.monotonic() > deadline:
            raise TimeoutError(f"queues not drained within {PUMP_SECONDS} s")
        if not poll_each():
            return


def _run(bench: BenchStack, receiver: ReceiverProcess, slow: dict[str, Any] | None) -> dict[str, Any]:
    hook = bench.new_hook(receiver.url(), events=[e["type"] for e in sample_events()])
    bench.add_hooks([hook])
    samples = sample_events()
    raw = [samples[i % len(samples)] for i in range(EVENTS)]
    served_before = receiver.served()
    bench.counter.reset()
    bench.logs.reset()

    invocations: dict[str, list[tuple[int, float]]] = {"fanout": [], "deliver": []}
    _pump(bench, raw, invocations)

    delivered = receiver.served() - served_before
    counter = bench.counter
    n = delivered or 1
    left = {
        q: int(
            aws.client("sqs").get_queue_attributes(
                QueueUrl=bench.url(q), AttributeNames=["ApproximateNumberOfMessages"]
            )["Attributes"]["ApproximateNumberOfMessages"]
        )
        for q in ("IngestQueue", "DeliveryQueue", "DeliveryDLQ")
    }

    # Calls our code made, per delivery, by function and operation.
    ours = {who: counter.by_operation(who) for who in ("producer", "fanout", "deliver")}
    calls_per_delivery = {
        f"{who}: {op}": calc.per(count, n) for who, ops in ours.items() for op, count in ops.items()
    }
    # The event source mapping's, per batch.
    esm_requests = 0
    for role, runs in invocations.items():
        receives = deletes = 0
        for records, _ in runs:
            r, d = calc.esm_calls(records)
            receives, deletes = receives + r, deletes + d
        calls_per_delivery[f"esm-{role}: sqs:ReceiveMessage"] = calc.per(receives, n)
        calls_per_delivery[f"esm-{role}: sqs:DeleteMessageBatch"] = calc.per(deletes, n)
        esm_requests += receives + deletes
    esm_counted = {role: counter.by_operation(f"esm-{role}") for role in ROLES.values()}

    memory = {role: bench.memory_mb(function) for function, role in ROLES.items()}
    measured_gbs = sum(
        calc.gb_seconds(memory[role], seconds) for role, runs in invocations.items() for _, seconds in runs
    )
    lambda_requests = sum(len(runs) for runs in invocations.values())
    sqs_requests = sum(counter.sqs_billed[who] for who in ("producer", "fanout", "deliver")) + esm_requests
    base = {
        "lambda_requests": lambda_requests / n,
        "sqs_requests": sqs_requests / n,
        "dynamodb_write_units": sum(counter.write_units.values()) / n,
        "dynamodb_read_units": sum(counter.read_units.values()) / n,
        "log_bytes": bench.logs.chars / n,
    }
    table = prices()
    measured = calc.cost_per_million(calc.Usage(lambda_gb_seconds=measured_gbs / n, **base), table)

    # Delivery's duration as measured here is that of a receiver answering at once on loopback. With
    # receivers that take 200 ms, a batch lasts what slow_receivers measured (its time in moto replaced
    # by a DynamoDB round trip per call): that is the figure judged.
    slow_wall = slow_cost = None
    batch = bench.batch_size("DeliverFunction")
    judged_basis = ""
    if slow and "wall_s" in slow:
        slow_wall = round(slow["wall_s"] - slow["moto_s"] + AWS_CALL_SECONDS * slow["aws_call_waves"], 3)
        judged_basis = (
            f"; judged figure: delivery lasting {slow_wall} s per batch of {batch}, i.e. slow_receivers' "
            f"cold batch to receivers answering in 200 ms ({slow['wall_s']} s) with its {slow['moto_s']} s "
            f"in moto replaced by {AWS_CALL_SECONDS * 1000:.0f} ms per wave of AWS calls "
            f"({slow['aws_call_waves']})"
        )
        slow_gbs = sum(
            calc.gb_seconds(memory["fanout"], seconds) for _, seconds in invocations["fanout"]
        ) + sum(
            calc.gb_seconds(memory["deliver"], slow_wall * records / batch)
            for records, _ in invocations["deliver"]
        )
        slow_cost = calc.cost_per_million(calc.Usage(lambda_gb_seconds=slow_gbs / n, **base), table)
    judged = slow_cost if slow_cost is not None else measured

    durations = {
        role: round(sum(s for _, s in runs) / max(1, len(runs)), 3) for role, runs in invocations.items()
    }
    batches = {role: [r for r, _ in runs] for role, runs in invocations.items()}
    item_sizes = counter.item_sizes
    t = table
    assumptions = [
        f"us-east-1 list prices from bench/prices.json: Lambda ${t['lambda_requests_per_million']}/M "
        f"requests + ${t['lambda_gb_second_arm64']}/GB-s (arm64), SQS ${t['sqs_requests_per_million']}/M "
        f"requests (per 64 KiB), DynamoDB on-demand ${t['dynamodb_write_units_per_million']}/M WRU, "
        f"${t['dynamodb_read_units_per_million']}/M RRU; no free tier",
        f"{EVENTS} events, 1 account, 1 hook subscribed to every type: 1 delivery per event (worst case)",
        f"batches as the template sets them: ingest {batches['fanout'][:1]} records per fan-out, delivery "
        f"{batches['deliver'][:1]} per invocation (full batches, i.e. a steady flow; a trickle means smaller "
        "batches and more requests per delivery)",
        "event source mapping: ceil(records/10) ReceiveMessage + ceil(records/10) DeleteMessageBatch per "
        "batch, added (Lambda makes them, not our code); idle long polls are a fixed cost, left out",
        f"Lambda memory from the template: fan-out {memory['fanout']} MB, delivery {memory['deliver']} MB; "
        f"durations measured per invocation on this machine (fan-out {durations['fanout']} s, delivery "
        f"{durations['deliver']} s per batch, moto and a loopback receiver){judged_basis}",
        f"DynamoDB units from the items on the wire (1 WRU per KB or part of one): delivery-log items (packs "
        f"of up to 25 attempts) {min(item_sizes, default=0)}-{max(item_sizes, default=0)} bytes; hook reads "
        "eventually consistent, cached 15 s (here once per cold container, so counted once for the run); "
        "a hook's pace read strongly consistent once per batch, written only when it changed",
        f"not included: CloudWatch Logs (measured: {round(base['log_bytes'])} bytes of log lines and "
        f"metrics per delivery at INFO = ${judged['cloudwatch_logs']}/M at "
        f"${t['cloudwatch_logs_ingest_per_gb']}/GB), "
        "X-Ray traces (Tracing: Active, sampled), Lambda's START/END/REPORT lines, data transfer out, "
        "API Gateway for producers using POST /events instead of the queue",
    ]
    meets = judged["total"] <= TARGET and delivered == EVENTS
    notes = [f"cost assumptions: {a}" for a in assumptions]
    return {
        "scenario": "cost",
        "deliveries": delivered,
        "deliveries_expected": EVENTS,
        "left_in_queues": left,
        "calls_per_delivery": dict(sorted(calls_per_delivery.items())),
        "aws_calls_per_delivery": calc.per(
            sum(counter.total(who) for who in ("producer", "fanout", "deliver")) + esm_requests, n
        ),
        "esm_calls_counted_by_local_poller": esm_counted,
        "invocations": {role: len(runs) for role, runs in invocations.items()},
        "mean_invocation_s": durations,
        "usage_per_delivery": {
            **{k: round(v, 6) for k, v in base.items()},
            "lambda_gb_seconds_measured": round(measured_gbs / n, 7),
        },
        "cost_per_million": judged["total"],
        "cost_per_million_breakdown": judged,
        "cost_per_million_loopback_durations": measured,
        "cost_basis": f"delivery batches of {slow_wall} s: 200 ms receivers"
        if slow_cost is not None
        else "durations measured here (receiver answering at once)",
        "assumptions": assumptions,
        "target": f"<= ${TARGET:.2f} per million deliveries (Lambda, SQS, DynamoDB)",
        "meets_target": meets,
        "notes": notes,
    }


def row(r: dict[str, Any]) -> list[str]:
    b = r["cost_per_million_breakdown"]
    figure = (
        f"${r['cost_per_million']:.3f}/M deliveries ({r['cost_basis']}): DynamoDB writes "
        f"${b['dynamodb_writes']}, SQS ${b['sqs_requests']}, Lambda ${b['lambda_requests']} + "
        f"${b['lambda_duration']}, reads ${b['dynamodb_reads']}; {r['aws_calls_per_delivery']} AWS "
        f"calls/delivery incl. the event source mappings'; CloudWatch Logs would add ${b['cloudwatch_logs']}"
    )
    return ["cost", figure, f"<= ${TARGET:.2f}/M", "yes" if r["meets_target"] else "NO"]
