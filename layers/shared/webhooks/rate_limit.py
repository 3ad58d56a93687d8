"""Per-hook rate limits shared by every concurrent delivery function.

One-second windows counted in DynamoDB: a batch takes what it needs for a hook with one UpdateItem
(`ADD used :n`), whatever the number of records, and learns from the new count how many it got.
No read, no retry loop, no coordination between functions beyond the atomic counter. Counters
expire through the table's TTL a minute after their window.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any

from webhooks import aws

WINDOW_SECONDS = 1
KEEP_SECONDS = 60


class RateLimiter:
    def __init__(self, table_name: str, clock: Callable[[], float] = time.time) -> None:
        self.table_name = table_name
        self.clock = clock

    @property
    def table(self) -> Any:
        return aws.table(self.table_name)

    def take(self, account: str, hook_id: str, limit: int, wanted: int) -> tuple[int, float]:
        """Takes up to `wanted` of this second's `limit` deliveries; returns (granted, seconds until
        the next window opens)."""
        now = self.clock()
        window = math.floor(now / WINDOW_SECONDS)
        response = self.table.update_item(
            Key={"hook": f"{account}#{hook_id}", "window": window},
            UpdateExpression="ADD used :n SET expires_at = :e",
            ExpressionAttributeValues={":n": wanted, ":e": window * WINDOW_SECONDS + KEEP_SECONDS},
            ReturnValues="UPDATED_NEW",
        )
        used_before = int(response["Attributes"]["used"]) - wanted
        granted = max(0, min(wanted, limit - used_before))
        return granted, (window + 1) * WINDOW_SECONDS - now
