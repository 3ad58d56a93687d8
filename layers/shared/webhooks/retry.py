"""When to try a failed delivery again."""

from __future__ import annotations

import random
from collections.abc import Mapping
from email.utils import parsedate_to_datetime

# SQS can hide a message for at most 12 hours.
MAX_DELAY = 43_200
JITTER = 0.2
# An IMF-fixdate is 29 characters; the obsolete forms are no longer.
_MAX_DATE_LENGTH = 64


def retry_after(headers: Mapping[str, str], now: float) -> int | None:
    """Seconds asked for by a `Retry-After` header (seconds or an HTTP date), if any, at most MAX_DELAY.

    The value is a stranger's: whatever its shape (thousands of digits, a date in year 99999, junk),
    it reads as a delay within the cap or as None, never as an exception.
    """
    value = headers.get("retry-after") or headers.get("Retry-After")
    if not value:
        return None
    value = value.strip()
    if value.isascii() and value.isdigit():
        digits = value.lstrip("0") or "0"
        # int() refuses more than 4,300 digits; anything past the cap's length is past the cap.
        return MAX_DELAY if len(digits) > len(str(MAX_DELAY)) else min(int(digits), MAX_DELAY)
    if len(value) > _MAX_DATE_LENGTH:
        return None
    try:
        moment = parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError, OverflowError, IndexError):
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
