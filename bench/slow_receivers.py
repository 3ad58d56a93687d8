"""One delivery batch of 100 records to 100 hooks on 100 receivers that each take 200 ms to answer:
the wall time of the batch, and its ratio to one receiver's latency.

The batch goes through the Deliverer as the handler builds it (template settings, delivery log to
DynamoDB on moto), first with fresh connections and hooks not cached (a cold container, the figure
judged), then again warm. The same batch is also run at other concurrencies than the template's
DeliveryConcurrency, to show which would meet the target.
"""

from __future__ import annotations

import dataclasses
import math
import time
from typing import Any

from bench.harness import AWS_CALL_SECONDS, BenchStack, moto_stack, sample_payloads
from bench.receivers import ReceiverProcess
from webhooks import safe_http
from webhooks.delivery import Deliverer
from webhooks.queues import QueueRecord

RECEIVERS = 100
LATENCY = 0.2
TARGET_RATIO = 3.0
OTHER_CONCURRENCIES = (50, 100)


def run(previous: dict[str, dict[str, Any]]) -> dict[str, Any]:
    with ReceiverProcess(ports=RECEIVERS, delay=LATENCY) as receivers, moto_stack(remote=True) as bench:
        return _run(bench, receivers)


def _batch(bench: BenchStack, deliverer: Deliverer, hooks: list[Any]) -> tuple[float, float, int, int]:
    """Wall seconds of one batch, the part of it spent in AWS calls (moto), failed records, and the
    waves of AWS calls (calls made together count once)."""
    event = bench.delivery_event(hooks, sample_payloads("open"), len(hooks))
    records = [QueueRecord.of(r) for r in event["Records"]]
    bench.counter.reset()
    started = time.perf_counter()
    with bench.counter.acting("deliver"):
        failed = len(deliverer.process(records)["batchItemFailures"])
    seconds = time.perf_counter() - started
    return seconds, bench.counter.seconds["deliver"], failed, bench.counter.waves["deliver"]


def _measure(bench: BenchStack, hooks: list[Any], concurrency: int) -> dict[str, Any]:
    safe_http.clear_caches()  # no kept-alive connection from an earlier run
    settings = dataclasses.replace(bench.settings, delivery_concurrency=concurrency)
    deliverer = Deliverer(settings)
    try:
        cold, cold_aws, failed_cold, cold_calls = _batch(bench, deliverer, hooks)
        warm, warm_aws, failed_warm, _ = _batch(bench, deliverer, hooks)
    finally:
        deliverer.pool.shutdown(wait=True)
    return {
        "concurrency": concurrency,
        "wall_s": round(cold, 3),
        "ratio": round(cold / LATENCY, 2),
        # AWS calls are made before (hook lookup) and after (log) the POSTs, never during them.
        "moto_s": round(cold_aws, 3),
        "aws_call_waves": cold_calls,
        "ratio_without_moto": round((cold - cold_aws) / LATENCY, 2),
        # The judged figure: moto's time replaced by a typical AWS call's, as in the cost scenario.
        "ratio_with_aws_latency": round((cold - cold_aws + AWS_CALL_SECONDS * cold_calls) / LATENCY, 2),
        "warm_wall_s": round(warm, 3),
        "warm_ratio": round(warm / LATENCY, 2),
        "warm_moto_s": round(warm_aws, 3),
        "failed_records": failed_cold + failed_warm,
        "meets_target_as_measured_on_moto": cold / LATENCY <= TARGET_RATIO,
        "meets_target": (cold - cold_aws + AWS_CALL_SECONDS * cold_calls) / LATENCY <= TARGET_RATIO,
        "meets_target_without_moto": (cold - cold_aws) / LATENCY <= TARGET_RATIO,
    }


def _run(bench: BenchStack, receivers: ReceiverProcess) -> dict[str, Any]:
    hooks = [bench.new_hook(receivers.url(i)) for i in range(RECEIVERS)]
    bench.add_hooks(hooks)
    default = bench.settings.delivery_concurrency
    served_before = receivers.served()
    concurrencies = [default, *(c for c in OTHER_CONCURRENCIES if c != default)]
    runs = [_measure(bench, hooks, c) for c in concurrencies]
    served = receivers.served() - served_before
    main = runs[0]
    # Whole waves of POSTs that fit in the target with room for any overhead at all.
    max_waves = max(1, math.ceil(TARGET_RATIO) - 1)
    notes = []
    if not main["meets_target"]:
        meeting = [r["concurrency"] for r in runs[1:] if r["meets_target"]]
        meeting_aws = [r["concurrency"] for r in runs[1:] if r["meets_target_without_moto"]]
        least = math.ceil(RECEIVERS / max_waves)
        notes.append(
            f"slow_receivers: with DeliveryConcurrency={default} a batch of {RECEIVERS} takes "
            f"{math.ceil(RECEIVERS / default)} waves of {LATENCY * 1000:.0f} ms ({main['wall_s']} s = "
            f"{main['ratio']}x, {main['ratio_without_moto']}x without its {main['moto_s']} s in moto). "
            f"Meeting the target: concurrency {_listed(meeting)} as measured, {_listed(meeting_aws)} without "
            f"moto's time; it takes at least {least} to need only {max_waves} waves"
        )
    return {
        "scenario": "slow_receivers",
        "records": RECEIVERS,
        "receivers": RECEIVERS,
        "receiver_latency_s": LATENCY,
        "delivery_concurrency": default,
        "wall_s": main["wall_s"],
        "ratio_to_latency": main["ratio"],
        "moto_s": main["moto_s"],
        "aws_call_waves": main["aws_call_waves"],
        "ratio_without_moto": main["ratio_without_moto"],
        "ratio_with_aws_latency": main["ratio_with_aws_latency"],
        "judged": "the cold batch with moto's seconds replaced by 10 ms per wave of AWS calls (as in cost)",
        "warm_wall_s": main["warm_wall_s"],
        "warm_ratio_to_latency": main["warm_ratio"],
        "by_concurrency": runs,
        "receiver_served": served,
        "receiver_expected": 2 * RECEIVERS * len(runs),
        "measured": "Deliverer.process of one batch, cold: new connections, hooks read with BatchGetItem",
        "target": f"wall <= {TARGET_RATIO} x {LATENCY} s at the template's DeliveryConcurrency",
        "meets_target": main["meets_target"] and served == 2 * RECEIVERS * len(runs),
        "notes": notes,
    }


def _listed(values: list[int]) -> str:
    return " and ".join(str(v) for v in values) if values else "none of those tried"


def row(r: dict[str, Any]) -> list[str]:
    others = "; ".join(
        f"{x['concurrency']}: {x['wall_s']} s = {x['ratio']}x ({x['ratio_without_moto']}x without moto)"
        for x in r["by_concurrency"][1:]
    )
    figure = (
        f"{r['records']} deliveries to {r['receivers']} receivers at "
        f"{r['receiver_latency_s'] * 1000:.0f} ms, "
        f"concurrency {r['delivery_concurrency']}: {r['ratio_with_aws_latency']}x latency with AWS calls at "
        f"10 ms ({r['wall_s']} s = {r['ratio_to_latency']}x as measured, {r['moto_s']} s of it in moto; "
        f"warm {r['warm_wall_s']} s). "
        f"Concurrency {others}"
    )
    return ["slow_receivers", figure, f"<= {TARGET_RATIO}x latency", "yes" if r["meets_target"] else "NO"]
