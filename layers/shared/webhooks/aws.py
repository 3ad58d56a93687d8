"""boto3 clients and resources, created once per process and shared by every module.

Creating a client costs milliseconds and memory; a warm Lambda reuses these across invocations.
Tests reset them with `reset()` after moto starts, so the clients talk to the mock.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from typing import Any

import boto3
from botocore.config import Config

# Short timeouts and adaptive retries: a throttled AWS call is retried, a hung one does not eat the
# function's whole timeout.
_CONFIG = Config(
    connect_timeout=3,
    read_timeout=10,
    retries={"max_attempts": 5, "mode": "adaptive"},
    max_pool_connections=64,
)


@cache
def client(service: str, *, validate: bool = True) -> Any:
    """`validate=False` skips botocore's client-side check of the parameters against the API model,
    for hot paths whose requests are built by code (the service checks them all the same)."""
    config = _CONFIG if validate else _CONFIG.merge(Config(parameter_validation=False))
    return boto3.client(service, config=config)  # type: ignore[call-overload]


@cache
def dynamodb() -> Any:
    return boto3.resource("dynamodb", config=_CONFIG)


def table(name: str) -> Any:
    return dynamodb().Table(name)


def every_item(operation: Callable[..., Any], **request: Any) -> list[dict[str, Any]]:
    """All the items of a DynamoDB query or scan (`table.query`, `table.scan`), page after page."""
    items: list[dict[str, Any]] = []
    while True:
        page = operation(**request)
        items.extend(page.get("Items", []))
        if "LastEvaluatedKey" not in page:
            return items
        request["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def reset() -> None:
    client.cache_clear()
    dynamodb.cache_clear()
