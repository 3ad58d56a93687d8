"""When to try a failed delivery again."""

from __future__ import annotations

import random
from collections.abc import Mapping
from email.utils import parsedate_to_datetime

# SQS can hide a message for at most 12 hours.
MAX_DELAY = 43_200
JITTER = 0.2


def retry_after(headers: Mapping[str, str], now: float) -> int | None:
    """Seconds asked for by a `Retry-After` header (seconds or an HTTP date), if any."""
    value = headers.get("retry-after") or headers.get("Retry-After")
    if not value:
        return None
    value = value.strip()
    if value.isascii() and value.isdigit():
        return min(int(value), MAX_DELAY)
    try:
        moment = parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError):
        return None
    return max(0, min(int(moment - now), MAX_DELAY))


def next_delay(schedule: list[int], attempts_made: int, asked: int | None = None) -> int | None:
    """Seconds before the next attempt after `attempts_made` attempts, or None when they are spent.

    `schedule[i]` is the wait before attempt i+1; ±20 % jitter spreads the retries of a receiver
    that failed for everyone at once, so they do not all come back in the same second.
    """
    if attempts_made >= len(schedule):
        return None
    base = schedule[attempts_made]
    delay = round(base * random.uniform(1 - JITTER, 1 + JITTER)) if base else 0
    if asked is not None:
        delay = max(delay, asked)
    return min(delay, MAX_DELAY)
