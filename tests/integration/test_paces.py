"""webhooks.health.PaceStore on the template's rate-limits table (moto)."""

from __future__ import annotations

from dataclasses import replace

from tests.conftest import LocalStack
from webhooks.health import Pace, PaceStore


def test_paces_are_read_for_a_whole_batch_at_once_and_default_when_never_written(local: LocalStack) -> None:
    store = PaceStore(local.url("RateLimitsTable"))
    learned = Pace(window=3.5, slow_start=False, base_ms=41.0, next_slot=1000.5)
    store.save_many([("acct-1", "hook-a", learned)], now=1000.0)
    found = store.get_many([("acct-1", "hook-a"), ("acct-1", "hook-b")])
    assert found == {("acct-1", "hook-a"): learned, ("acct-1", "hook-b"): Pace()}


def test_a_due_probe_is_claimed_by_one_function_only(local: LocalStack) -> None:
    store = PaceStore(local.url("RateLimitsTable"))
    opened = Pace(window=1, probe_at=1000.0, probe_interval=10)
    store.save_many([("acct-1", "hook-a", opened)], now=990.0)
    # Two functions saw the same due probe; the first to claim it moves the next one on.
    assert store.claim_probe("acct-1", "hook-a", opened, now=1001.0)
    assert not store.claim_probe("acct-1", "hook-a", opened, now=1001.0)
    [after] = store.get_many([("acct-1", "hook-a")]).values()
    assert after == replace(opened, probe_at=1011.0)
