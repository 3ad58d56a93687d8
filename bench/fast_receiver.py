"""Deliveries per second against a receiver that answers at once, beside two baselines measured in
the same run against the same receiver: a bare keep-alive `requests.Session` loop (the ceiling of a
sequential Python sender) and a naive deliverer (sequential, `requests.post`, a new connection per
POST). Bodies and headers of the baselines are the handler's own (an `open` event, form-encoded,
signed), computed once, so the baselines do strictly less work per POST than the handler.

The handler is measured as deployed, its delivery log written to DynamoDB, and this is the figure
judged. AWS is remote, so AWS here is moto's server in a process of its own, reached over
127.0.0.1: a call is a wait on a socket that frees the GIL for the handler's HTTP threads, as a
call to DynamoDB does. (moto in this process would answer under this process's GIL, stalling those
threads as no AWS call does.) moto still takes CPU on this machine, which Lambda would not share
with DynamoDB: its CPU seconds during the handler's runs are reported, and so are the same runs with
the seconds spent in AWS calls replaced by a typical AWS call's (harness.AWS_CALL_SECONDS). A
further run swaps the delivery log for a no-op, which leaves no AWS call on the success path: the
HTTP side of the hot path alone.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import requests

from bench import calc
from bench.harness import AWS_CALL_SECONDS, BenchStack, moto_stack, sample_payloads
from bench.receivers import ReceiverProcess
from webhooks import delivery, encoding, signing
from webhooks.delivery import USER_AGENT, Deliverer
from webhooks.queues import QueueRecord

POSTS = 1500
WARMUP = 300
ROUNDS = 3
# Issues 11 and 12: the handler, log and flow control included, at least the keep-alive ceiling.
CEILING_TARGET = 1.0
NAIVE_TARGET = 1.5
# Every timed loop stops after this long, whatever its count.
LOOP_SECONDS = 30.0


class _NoLog:
    """A delivery log that writes nothing: the success path then makes no AWS call at all."""

    def write_attempts(self, attempts: Any) -> None:
        pass

    def write_failed(self, failures: Any) -> None:
        pass


def _timed(count: int, one: Callable[[], None]) -> tuple[int, float]:
    started = time.perf_counter()
    deadline = started + LOOP_SECONDS
    done = 0
    while done < count and time.perf_counter() < deadline:
        one()
        done += 1
    return done, time.perf_counter() - started


def ceiling(url: str, body: bytes, headers: dict[str, str], count: int) -> float:
    with requests.Session() as session:

        def one() -> None:
            response = session.post(url, data=body, headers=headers, timeout=15)
            response.raise_for_status()

        _timed(min(WARMUP, count), one)
        done, seconds = _timed(count, one)
    return calc.rate(done, seconds)


def naive(url: str, body: bytes, headers: dict[str, str], count: int) -> float:
    def one() -> None:
        response = requests.post(url, data=body, headers=headers, timeout=15)
        response.raise_for_status()

    _timed(min(WARMUP // 3, count), one)
    done, seconds = _timed(count, one)
    return calc.rate(done, seconds)


def handler_rate(
    run_batch: Callable[[dict[str, Any]], dict[str, Any]], events: list[dict[str, Any]]
) -> tuple[float, int]:
    """Deliveries/s over all `events` (batches), and how many records came back failed."""
    failed = 0
    delivered = 0
    started = time.perf_counter()
    deadline = started + LOOP_SECONDS
    for event in events:
        failed += len(run_batch(event)["batchItemFailures"])
        delivered += len(event["Records"])
        if time.perf_counter() > deadline:
            break
    return calc.rate(delivered, time.perf_counter() - started), failed


def run(previous: dict[str, dict[str, Any]]) -> dict[str, Any]:
    with ReceiverProcess(ports=1) as receiver, moto_stack(detail=False, remote=True) as bench:
        return _run(bench, receiver)


def _run(bench: BenchStack, receiver: ReceiverProcess) -> dict[str, Any]:
    url = receiver.url()
    hook = bench.new_hook(url)
    bench.add_hooks([hook])
    payloads = sample_payloads("open")
    batch = bench.batch_size("DeliverFunction")
    handler = bench.handler("DeliverFunction")
    context = bench.context("DeliverFunction")
    no_log = Deliverer(bench.settings, log=_NoLog())  # type: ignore[arg-type]

    body, content_type = encoding.encode(payloads[0], hook.format)
    headers = signing.signature_headers(hook.signing_secrets(), "msg_baseline", int(time.time()), body)
    headers.update({"content-type": content_type, "user-agent": USER_AGENT})

    def events(count: int) -> list[dict[str, Any]]:
        return [bench.delivery_event([hook], payloads, batch) for _ in range(count // batch)]

    def via_handler(event: dict[str, Any]) -> dict[str, Any]:
        return dict(handler(event, context))

    # The handler's decorator flushes the delivery metrics once per invocation; so does this.
    flush = getattr(getattr(delivery, "metrics", None), "flush_metrics", lambda: None)

    def via_no_log(event: dict[str, Any]) -> dict[str, Any]:
        answer = no_log.process([QueueRecord.of(r) for r in event["Records"]])
        flush()
        return answer

    handler_rate(via_handler, events(WARMUP))
    handler_rate(via_no_log, events(WARMUP))
    served_before = receiver.served()
    bench.counter.reset()
    bench.logs.lines = bench.logs.chars = 0

    results: dict[str, list[float]] = {
        "ceiling": [],
        "naive": [],
        "handler": [],
        "http_only": [],
        "handler_aws_at_10ms": [],
    }
    failed = 0
    aws_seconds = {"handler": 0.0, "http_only": 0.0}
    handler_seconds = 0.0
    moto_cpu = 0.0
    posts = POSTS // batch * batch
    for _ in range(ROUNDS):
        results["ceiling"].append(ceiling(url, body, headers, POSTS))
        results["naive"].append(naive(url, body, headers, POSTS))
        for name, run_batch in (("handler", via_handler), ("http_only", via_no_log)):
            batches = events(POSTS)
            aws_before = bench.counter.seconds[name]
            waves_before = bench.counter.waves[name]
            cpu_before = bench.moto_cpu_seconds()
            with bench.counter.acting(name):
                per_s, bad = handler_rate(run_batch, batches)
            results[name].append(per_s)
            failed += bad
            if name == "handler":
                moto_cpu += bench.moto_cpu_seconds() - cpu_before
                seconds = posts / per_s if per_s else 0.0
                handler_seconds += seconds
                # The same run with its seconds in AWS calls (the delivery log's BatchWriteItem)
                # replaced by a typical AWS call's. The writes overlap the batch's later POSTs, and
                # those overlapping seconds are taken out too: an upper bound, not an estimate.
                waited = bench.counter.seconds[name] - aws_before
                waves = bench.counter.waves[name] - waves_before
                results["handler_aws_at_10ms"].append(
                    calc.rate(posts, seconds - waited + AWS_CALL_SECONDS * waves)
                )
    per_round = (
        (min(WARMUP, POSTS) + POSTS) + (min(WARMUP // 3, POSTS) + POSTS) + 2 * (POSTS // batch * batch)
    )
    expected = ROUNDS * per_round
    served = receiver.served() - served_before
    for name in aws_seconds:
        aws_seconds[name] = round(bench.counter.seconds[name], 3)

    # Ratios are taken within each round (its four measurements follow one another, so they share
    # the machine's load of the moment), and the median round is the figure.
    def ratio(name: str, base: str) -> float:
        return round(
            calc.median(calc.ratio(a, b) for a, b in zip(results[name], results[base], strict=True)), 3
        )

    median = {name: round(calc.median(values), 1) for name, values in results.items()}
    handler_vs_ceiling = ratio("handler", "ceiling")
    handler_vs_naive = ratio("handler", "naive")
    http_vs_ceiling = ratio("http_only", "ceiling")
    http_vs_naive = ratio("http_only", "naive")
    at_10ms_vs_ceiling = ratio("handler_aws_at_10ms", "ceiling")
    at_10ms_vs_naive = ratio("handler_aws_at_10ms", "naive")
    complete = failed == 0 and served == expected
    meets = complete and handler_vs_ceiling >= CEILING_TARGET and handler_vs_naive >= NAIVE_TARGET
    meets_http = complete and http_vs_ceiling >= CEILING_TARGET and http_vs_naive >= NAIVE_TARGET
    return {
        "scenario": "fast_receiver",
        "posts_per_measurement": POSTS,
        "rounds": ROUNDS,
        "figures": "median of the rounds; ratios = median of the per-round ratios",
        "batch_size": batch,
        "delivery_concurrency": bench.settings.delivery_concurrency,
        "ceiling_per_s": median["ceiling"],
        "naive_per_s": median["naive"],
        "handler_per_s": median["handler"],
        "handler_http_only_per_s": median["http_only"],
        "handler_aws_at_10ms_per_s": median["handler_aws_at_10ms"],
        "handler_vs_ceiling": handler_vs_ceiling,
        "handler_vs_naive": handler_vs_naive,
        "http_only_vs_ceiling": http_vs_ceiling,
        "http_only_vs_naive": http_vs_naive,
        "handler_aws_at_10ms_vs_ceiling": at_10ms_vs_ceiling,
        "handler_aws_at_10ms_vs_naive": at_10ms_vs_naive,
        "all_rounds": results,
        "handler_aws_calls": bench.counter.by_operation("handler"),
        "http_only_aws_calls": bench.counter.by_operation("http_only"),
        "handler_seconds_in_aws_calls": aws_seconds["handler"],
        "handler_aws_call_share": calc.ratio(aws_seconds["handler"], handler_seconds),
        "moto_process_cpu_seconds_in_handler_runs": round(moto_cpu, 3),
        "moto_process_cpu_share": calc.ratio(moto_cpu, handler_seconds),
        "failed_records": failed,
        "receiver_served": served,
        "receiver_expected": expected,
        "log_lines_per_delivery": calc.ratio(bench.logs.lines, 2 * ROUNDS * (POSTS // batch * batch)),
        "handler": "functions/deliver/app.py lambda_handler, template settings, INFO logs to a null sink; "
        "delivery handler with AWS (moto) in its own process, as AWS is remote (moto's server on 127.0.0.1, "
        "AWS_ENDPOINT_URL); the figure judged",
        "http_only": "the same Deliverer with a no-op delivery log: no AWS call but the hook lookup's "
        "BatchGetItem when its 15 s cache expires",
        "handler_aws_at_10ms": "the handler's runs with their seconds in AWS calls (sent to moto, answered "
        f"in its own process) replaced by {AWS_CALL_SECONDS * 1000:.0f} ms per wave of calls made together; "
        "an upper bound, since the log writes overlap the batch's later POSTs and those seconds go too; "
        "not judged",
        "aws": "moto's server in a spawned process of its own on 127.0.0.1; its CPU is this machine's "
        "(2 cores shared with the receiver and the handler), which DynamoDB's is not on Lambda",
        "receiver": "ThreadingHTTPServer in its own process, HTTP/1.1 keep-alive, Nagle off, one write",
        "target": f"handler >= {CEILING_TARGET} x ceiling and >= {NAIVE_TARGET} x naive",
        "meets_target": meets,
        "meets_target_http_only": meets_http,
        "meets_target_aws_at_10ms": complete
        and at_10ms_vs_ceiling >= CEILING_TARGET
        and at_10ms_vs_naive >= NAIVE_TARGET,
    }


def row(r: dict[str, Any]) -> list[str]:
    figure = (
        f"handler (AWS = moto in its own process) {calc.thousands(r['handler_per_s'])}/s = "
        f"{r['handler_vs_ceiling']}x ceiling ({calc.thousands(r['ceiling_per_s'])}/s), "
        f"{r['handler_vs_naive']}x naive ({calc.thousands(r['naive_per_s'])}/s); "
        f"an AWS call in flight {r['handler_aws_call_share']:.0%} of its time, moto's CPU "
        f"{r['moto_process_cpu_share']:.0%} of it; with AWS calls at {AWS_CALL_SECONDS * 1000:.0f} ms "
        "(an upper bound) "
        f"{calc.thousands(r['handler_aws_at_10ms_per_s'])}/s = {r['handler_aws_at_10ms_vs_ceiling']}x, "
        f"{r['handler_aws_at_10ms_vs_naive']}x; HTTP side alone "
        f"{calc.thousands(r['handler_http_only_per_s'])}/s = {r['http_only_vs_ceiling']}x ceiling, "
        f"{r['http_only_vs_naive']}x naive"
    )
    met = "yes" if r["meets_target"] else "NO"
    target = (
        f">= {CEILING_TARGET}x ceiling, >= {NAIVE_TARGET}x naive (rates: median of {r['rounds']} rounds; "
    )
    target += "ratios: median of the per-round ratios)"
    return ["fast_receiver", figure, target, met]
