"""A flood of opens to a receiver of small capacity, with a neighbour hook beside it, through `make dev`'s
stack: the template on moto's server, its queues and event source mappings played by the local
pollers, the API on loopback (devstack.LocalStack, in a process of its own).

N opens are POSTed to /events for one hook whose receiver has K workers of W seconds and answers 503
at once when all are busy (no `rate_limit` set: the service has to learn the capacity). Meanwhile a
second hook of the same account, on a fast receiver, gets one event a second. Measured: overload
answers (503s) per delivered open, the time to deliver all N against N / capacity, dead letters, and
the neighbour's latency from POST /events to its receiver.
"""

from __future__ import annotations

import contextlib
import json
import multiprocessing
import os
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

from bench import calc
from bench.receivers import QuietHandler, Server

N = 2000
WORKERS = 4
WORK_SECONDS = 0.04
CAPACITY = WORKERS / WORK_SECONDS  # deliveries a second the flooded receiver can take
NEIGHBOUR_EVERY = 1.0
TOKEN = "bench-flood-token"
# Bounds: the whole drive, and the wait for the neighbour's last event once the flood is through.
DRIVE_LIMIT_SECONDS = 6 * N / CAPACITY + 60
TAIL_SECONDS = 10.0
TARGETS = {"overload_per_delivery": 0.05, "capacity_time_ratio": 2.0, "neighbour_p50_s": 2.0}
ROOT = Path(__file__).resolve().parent.parent


# -- the receivers (a process of their own) ----------------------------------------------------------


def _receivers(conn: Any) -> None:
    lock = threading.Lock()
    stats: dict[str, Any] = {"ok": 0, "busy": 0, "peak": 0, "in_house": 0, "ids": set(), "neighbour": {}}

    def answer(handler: BaseHTTPRequestHandler, status: int, body: bytes) -> None:
        reason = b"OK" if status == 200 else b"Service Unavailable"
        head = b"HTTP/1.1 %d %s\r\nContent-Length: %d\r\n\r\n" % (status, reason, len(body))
        handler.wfile.write(head + body)

    class Flooded(QuietHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            with lock:
                stats["in_house"] += 1
                stats["peak"] = max(stats["peak"], stats["in_house"])
                full = stats["in_house"] > WORKERS
                if full:
                    stats["in_house"] -= 1
                    stats["busy"] += 1
            if full:
                answer(self, 503, b"busy")
                return
            time.sleep(WORK_SECONDS)
            with lock:
                # The worker is free before the answer leaves, as a PHP-FPM worker is.
                stats["in_house"] -= 1
                stats["ok"] += 1
                stats["ids"].add(json.loads(body)["id"])
            answer(self, 200, b"ok")

        def do_GET(self) -> None:
            with lock:
                shown = {k: (len(v) if k == "ids" else v) for k, v in stats.items()}
            answer(self, 200, json.dumps(shown).encode())

    class Neighbour(Flooded):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            with lock:
                stats["neighbour"].setdefault(json.loads(body)["id"], time.time())
            answer(self, 200, b"ok")

    servers = [Server(("127.0.0.1", 0), Flooded), Server(("127.0.0.1", 0), Neighbour)]
    for server in servers:
        threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.5}, daemon=True).start()
    conn.send([s.server_address[1] for s in servers])
    with contextlib.suppress(EOFError, OSError):
        conn.poll(DRIVE_LIMIT_SECONDS + 120)
    for server in servers:
        server.shutdown()
        server.server_close()


def _stats(port: int) -> dict[str, Any]:
    import http.client

    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.request("GET", "/stats")
        return dict(json.loads(connection.getresponse().read()))
    finally:
        connection.close()


# -- the stack and the drive (another process) ----------------------------------------------------------


def _drive(conn: Any, flooded_port: int, neighbour_port: int) -> None:
    for path in (str(ROOT), str(ROOT / "layers" / "shared")):
        if path not in sys.path:
            sys.path.insert(0, path)
    # The handlers log to stdout as on Lambda, moto's server a line per request: not into the output.
    sys.stdout = open(os.devnull, "w")  # noqa: SIM115 (for the life of this process)
    import logging

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    import requests

    from devstack.server import Config, LocalStack

    stack = LocalStack(Config(port=0, moto_port=0, tokens=(("bench", TOKEN),))).start()
    try:
        conn.send(_flood(stack, requests.Session(), flooded_port, neighbour_port))
    except Exception as exc:
        conn.send({"error": f"{type(exc).__name__}: {exc}"})
    finally:
        stack.stop()


def _flood(stack: Any, http: Any, flooded_port: int, neighbour_port: int) -> dict[str, Any]:
    import boto3

    from bench.harness import new_hook
    from webhooks.encoding import Format
    from webhooks.hook_store import HookStore
    from webhooks.hooks import Hook
    from webhooks.settings import get_settings

    settings = get_settings()
    store = HookStore(settings.hooks_table)

    def hook(port: int, events: list[str]) -> Hook:
        # JSON, so that the receivers read the event's id straight from the body.
        return new_hook(f"http://127.0.0.1:{port}/hook", "bench", events).model_copy(
            update={"format": Format.JSON}
        )

    for h in (hook(flooded_port, ["open"]), hook(neighbour_port, ["click"])):
        store.table.put_item(Item=h.to_item())
    api = stack.api.url
    headers = {"Authorization": f"Bearer {TOKEN}"}

    sent_at: dict[str, float] = {}
    done = threading.Event()

    def neighbour() -> None:
        for i in range(int(DRIVE_LIMIT_SECONDS / NEIGHBOUR_EVERY)):
            if done.wait(NEIGHBOUR_EVERY):
                return
            event_id = f"n{i}"
            sent_at[event_id] = time.time()
            http.post(
                f"{api}/events", headers=headers, json={"events": [_event("click", event_id)]}, timeout=30
            )

    started = time.time()
    for start in range(0, N, 500):
        events = [_event("open", f"o{i}") for i in range(start, min(N, start + 500))]
        http.post(f"{api}/events", headers=headers, json={"events": events}, timeout=60).raise_for_status()
    queued = time.time() - started
    thread = threading.Thread(target=neighbour, daemon=True)
    thread.start()
    stats: dict[str, Any] = {}
    while time.time() - started < DRIVE_LIMIT_SECONDS:
        stats = _stats(flooded_port)
        if stats["ids"] >= N:
            break
        time.sleep(0.5)
    elapsed = time.time() - started
    done.set()
    thread.join(30)
    # The neighbour's events still on their way.
    tail = time.time() + TAIL_SECONDS
    while time.time() < tail and len(_stats(neighbour_port)["neighbour"]) < len(sent_at):
        time.sleep(0.2)
    arrived = _stats(neighbour_port)["neighbour"]
    latencies = sorted(arrived[k] - sent_at[k] for k in sent_at if k in arrived)
    sqs = boto3.client("sqs", region_name="us-east-1", endpoint_url=os.environ["AWS_ENDPOINT_URL"])
    dead = int(
        sqs.get_queue_attributes(
            QueueUrl=settings.delivery_dlq_url, AttributeNames=["ApproximateNumberOfMessages"]
        )["Attributes"]["ApproximateNumberOfMessages"]
    )
    stats = _stats(flooded_port)
    return {
        "delivered": stats["ids"],
        "ok_answers": stats["ok"],
        "overload_answers": stats["busy"],
        "peak_concurrent": stats["peak"],
        "flood_seconds": round(elapsed, 1),
        "queueing_seconds": round(queued, 1),
        "dead_lettered": dead,
        "neighbour_sent": len(sent_at),
        "neighbour_arrived": len(latencies),
        "neighbour_latencies_s": [round(x, 2) for x in latencies],
    }


def _event(kind: str, event_id: str) -> dict[str, Any]:
    event: dict[str, Any] = {"type": kind, "id": event_id, "recipient": "jane@example.com"}
    if kind == "click":
        event["original"] = "https://shop.example.com"
    return event


def run(previous: dict[str, dict[str, Any]]) -> dict[str, Any]:
    context = multiprocessing.get_context("spawn")
    receivers_conn, receivers_child = context.Pipe()
    receivers = context.Process(
        target=_receivers, args=(receivers_child,), name="flood-receivers", daemon=True
    )
    receivers.start()
    try:
        if not receivers_conn.poll(30):
            raise RuntimeError("the receivers did not start")
        flooded_port, neighbour_port = receivers_conn.recv()
        drive_conn, drive_child = context.Pipe()
        driver = context.Process(
            target=_drive, args=(drive_child, flooded_port, neighbour_port), name="flood-stack", daemon=True
        )
        driver.start()
        try:
            if not drive_conn.poll(DRIVE_LIMIT_SECONDS + 120):
                raise RuntimeError("the flood did not finish in time")
            raw = drive_conn.recv()
        finally:
            driver.join(30)
            if driver.is_alive():
                driver.terminate()
    finally:
        with contextlib.suppress(OSError):
            receivers_conn.send("stop")
        receivers.join(10)
        if receivers.is_alive():
            receivers.terminate()
    if "error" in raw:
        raise RuntimeError(raw["error"])
    return _result(raw)


def _result(raw: dict[str, Any]) -> dict[str, Any]:
    latencies = raw.pop("neighbour_latencies_s")
    delivered = raw["delivered"]
    figures = {
        "overload_per_delivery": round(raw["overload_answers"] / max(1, delivered), 4),
        "capacity_time_ratio": round(raw["flood_seconds"] / (N / CAPACITY), 3),
        "neighbour_p50_s": round(calc.median(latencies), 3) if latencies else None,
        "neighbour_p90_s": round(latencies[int(0.9 * (len(latencies) - 1))], 3) if latencies else None,
    }
    meets = (
        delivered == N
        and raw["dead_lettered"] == 0
        and figures["overload_per_delivery"] <= TARGETS["overload_per_delivery"]
        and figures["capacity_time_ratio"] <= TARGETS["capacity_time_ratio"]
        and figures["neighbour_p50_s"] is not None
        and figures["neighbour_p50_s"] <= TARGETS["neighbour_p50_s"]
        and raw["neighbour_arrived"] == raw["neighbour_sent"]
    )
    return {
        "scenario": "flood",
        "opens": N,
        "receiver": f"{WORKERS} workers x {WORK_SECONDS * 1000:.0f} ms, 503 at once when busy, no rate_limit",
        "capacity_per_second": CAPACITY,
        **figures,
        **raw,
        "targets": TARGETS,
        "meets_target": meets,
    }


def row(r: dict[str, Any]) -> list[str]:
    figure = (
        f"{r['delivered']}/{r['opens']} opens to {r['receiver']}: {r['overload_answers']} 503s "
        f"({r['overload_per_delivery']}/delivery), {r['flood_seconds']} s = "
        f"{r['capacity_time_ratio']}x N/capacity, "
        f"{r['dead_lettered']} dead-lettered, peak {r['peak_concurrent']} in flight; neighbour (1 event/s, "
        f"same account) p50 {r['neighbour_p50_s']} s, p90 {r['neighbour_p90_s']} s "
        f"({r['neighbour_arrived']}/{r['neighbour_sent']})"
    )
    target = "<= 0.05 503s/delivery, all delivered, 0 dead, <= 2x N/capacity, neighbour p50 <= 2 s"
    return ["flood", figure, target, "yes" if r["meets_target"] else "NO"]
