"""Pure arithmetic of the benchmark: billing units, costs, ratios, the results table. No I/O."""

from __future__ import annotations

import base64
import math
import statistics
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

SQS_MAX_BATCH = 10  # messages per ReceiveMessage / entries per DeleteMessageBatch


# ---------------------------------------------------------------------------------------- DynamoDB


def _number_size(text: str) -> int:
    digits = text.lstrip("+-").replace(".", "").split("e")[0].split("E")[0].strip("0")
    return math.ceil(max(len(digits), 1) / 2) + 1


def attribute_value_size(value: Mapping[str, Any]) -> int:
    """Size of one typed attribute value (`{"S": "x"}`, `{"N": "1"}`, ...) by DynamoDB's rules."""
    (kind, raw), *_ = value.items()
    if kind == "S":
        return len(str(raw).encode())
    if kind == "N":
        return _number_size(str(raw))
    if kind == "B":
        return len(base64.b64decode(raw)) if isinstance(raw, str) else len(raw)
    if kind in ("BOOL", "NULL"):
        return 1
    if kind == "SS":
        return sum(len(s.encode()) for s in raw)
    if kind == "NS":
        return sum(_number_size(n) for n in raw)
    if kind == "BS":
        return sum(len(base64.b64decode(b)) for b in raw)
    if kind == "L":
        return 3 + sum(1 + attribute_value_size(v) for v in raw)
    if kind == "M":
        return 3 + sum(1 + len(k.encode()) + attribute_value_size(v) for k, v in raw.items())
    raise ValueError(f"unknown DynamoDB type {kind}")


def item_size(item: Mapping[str, Mapping[str, Any]]) -> int:
    """Bytes DynamoDB bills an item by: attribute names plus values (wire format, typed JSON)."""
    return sum(len(name.encode()) + attribute_value_size(value) for name, value in item.items())


def write_units(size: int) -> int:
    """On-demand write request units of writing one item of `size` bytes (1 per KB, rounded up)."""
    return max(1, math.ceil(size / 1024))


def read_units(size: int, *, consistent: bool) -> float:
    """Read request units of reading `size` bytes in one request (4 KB units; eventual = half)."""
    units = max(1, math.ceil(size / 4096))
    return float(units) if consistent else units / 2


# ---------------------------------------------------------------------------------------- SQS


def sqs_billed_requests(payload_bytes: int, chunk: int = 65_536) -> int:
    """SQS bills every 64 KiB chunk of a request's payload as one request."""
    return max(1, math.ceil(payload_bytes / chunk))


def esm_calls(records: int) -> tuple[int, int]:
    """ReceiveMessage and DeleteMessageBatch calls Lambda's event source mapping makes for one
    batch of `records` that all succeed (at most 10 messages per call of either)."""
    calls = math.ceil(records / SQS_MAX_BATCH)
    return calls, calls


# ---------------------------------------------------------------------------------------- Lambda


def gb_seconds(memory_mb: int, duration_s: float) -> float:
    """Billed GB-s of one invocation: duration rounded up to the millisecond."""
    return memory_mb / 1024 * math.ceil(duration_s * 1000) / 1000


# ---------------------------------------------------------------------------------------- cost


@dataclass(frozen=True)
class Usage:
    """Billable usage per delivery."""

    lambda_requests: float = 0.0
    lambda_gb_seconds: float = 0.0
    sqs_requests: float = 0.0
    dynamodb_write_units: float = 0.0
    dynamodb_read_units: float = 0.0
    log_bytes: float = 0.0


def cost_per_million(usage: Usage, prices: Mapping[str, Any]) -> dict[str, float]:
    """Dollars per million deliveries, per line item; `total` excludes logs, `total_with_logs` not."""
    million = 1_000_000
    items = {
        "lambda_requests": usage.lambda_requests * prices["lambda_requests_per_million"],
        "lambda_duration": usage.lambda_gb_seconds * million * prices["lambda_gb_second_arm64"],
        "sqs_requests": usage.sqs_requests * prices["sqs_requests_per_million"],
        "dynamodb_writes": usage.dynamodb_write_units * prices["dynamodb_write_units_per_million"],
        "dynamodb_reads": usage.dynamodb_read_units * prices["dynamodb_read_units_per_million"],
    }
    total = sum(items.values())
    logs = usage.log_bytes * million / 1e9 * prices["cloudwatch_logs_ingest_per_gb"]
    return {
        **{k: round(v, 4) for k, v in items.items()},
        "total": round(total, 4),
        "cloudwatch_logs": round(logs, 4),
        "total_with_logs": round(total + logs, 4),
    }


# ---------------------------------------------------------------------------------------- figures


def rate(count: int, seconds: float) -> float:
    return round(count / seconds, 1) if seconds > 0 else 0.0


def ratio(value: float, base: float) -> float:
    return round(value / base, 3) if base else 0.0


def median(values: Iterable[float]) -> float:
    return float(statistics.median(list(values)))


def per(count: float, deliveries: int) -> float:
    return round(count / deliveries, 5) if deliveries else 0.0


def markdown_table(rows: Sequence[Sequence[str]], header: Sequence[str]) -> str:
    def line(cells: Sequence[str]) -> str:
        return "| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |"

    return "\n".join([line(header), line(["---"] * len(header)), *(line(r) for r in rows)])


def thousands(value: float, digits: int = 0) -> str:
    return f"{value:,.{digits}f}"
