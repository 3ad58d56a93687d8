"""webhooks.health: the pure planning and settling of a hook's pace and breaker (no AWS, no fakes)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from webhooks import health
from webhooks.health import Answer, Pace, Waiting

NOW = 1_000_000.0
FAR = NOW + 10_000  # a deadline that does not matter


def waiting(n: int, *, deadline: float = FAR) -> list[Waiting]:
    return [Waiting(slot_at=None, deadline=deadline) for _ in range(n)]


def ok(ms: int = 40, crowded: bool = False) -> Answer:
    return Answer(200, ms, crowded)


def busy(crowded: bool = True) -> Answer:
    return Answer(503, 1, crowded)


# Planning


def test_before_the_first_answer_only_the_window_limits_a_batch() -> None:
    decided = health.plan(Pace(), waiting(100), NOW)
    assert (len(decided.send), decided.deferred, decided.window) == (100, [], health.INITIAL_WINDOW)


def test_a_flood_beyond_a_second_of_the_pace_waits_for_its_slots() -> None:
    pace = Pace(window=4, base_ms=40.0)  # 100 deliveries a second
    decided = health.plan(pace, waiting(250), NOW)
    assert len(decided.send) == 100  # slots at 0, 10 ms, ... 990 ms
    delays = [d.delay for d in decided.deferred]
    assert delays == sorted(delays)
    assert (delays[0], delays[-1]) == (2, 3)
    assert decided.pace.next_slot == pytest.approx(NOW + 2.51, abs=0.01)


def test_the_next_batch_takes_the_slots_after_those_reserved() -> None:
    first = health.plan(Pace(window=4, base_ms=40.0), waiting(250), NOW)
    second = health.plan(first.pace, waiting(10), NOW + 0.1)
    assert second.send == []
    assert second.deferred[0].slot_at == pytest.approx(NOW + 2.51, abs=0.01)


def test_a_backlog_that_came_due_faster_than_it_was_served_takes_new_slots() -> None:
    pace = Pace(window=4, base_ms=40.0, next_slot=NOW + 30)
    late = [Waiting(slot_at=NOW - 5 + i * 0.01, deadline=FAR) for i in range(300)]
    decided = health.plan(pace, late, NOW)
    # A second's worth goes; the rest goes to the end of the line, not to the queue's head again.
    assert len(decided.send) == 100
    assert min(d.slot_at or 0 for d in decided.deferred) >= NOW + 30


def test_a_delivery_back_at_its_reserved_slot_goes_without_taking_a_new_one() -> None:
    pace = Pace(window=4, base_ms=40.0, next_slot=NOW + 60)
    decided = health.plan(pace, [Waiting(slot_at=NOW - 0.1, deadline=FAR)], NOW)
    assert (decided.send, decided.pace.next_slot) == ([0], NOW + 60)


def test_a_rate_limit_caps_the_pace() -> None:
    decided = health.plan(Pace(window=50, base_ms=1.0), waiting(10), NOW, rate_limit=4)
    assert len(decided.send) == 4  # 0, 250, 500, 750 ms
    assert Pace(window=50, base_ms=1.0).rate(4) == 4


def test_an_open_breaker_holds_everything_until_the_probe_is_due() -> None:
    pace = Pace(window=1, base_ms=40.0, probe_at=NOW + 7, probe_interval=10)
    decided = health.plan(pace, waiting(300), NOW)
    assert (decided.send, decided.probe, decided.given_up) == ([], False, [])
    assert {d.delay for d in decided.deferred} == {7}


def test_a_due_probe_is_one_delivery_the_rest_waits_for_the_next() -> None:
    pace = Pace(window=1, base_ms=40.0, probe_at=NOW - 1, probe_interval=10)
    decided = health.plan(pace, waiting(300), NOW)
    assert (decided.send, decided.probe) == ([0], True)
    assert len(decided.deferred) == 299
    assert {d.delay for d in decided.deferred} == {10}


def test_behind_an_open_breaker_a_delivery_is_given_up_at_its_schedules_end_not_later() -> None:
    pace = Pace(window=1, probe_at=NOW + 200, probe_interval=300)
    decided = health.plan(pace, [Waiting(None, NOW + 30), Waiting(None, NOW - 1)], NOW)
    assert decided.given_up == [1]
    # The other comes back at its deadline, not at the probe 200 s later.
    assert [(d.index, d.delay) for d in decided.deferred] == [(0, 30)]


# Settling: the window


def test_slow_start_doubles_a_filled_window_without_overload() -> None:
    settled = health.settle(Pace(window=2), [ok()] * 10, NOW, probe=False, filled=True, cut_to=2)
    assert (settled.pace.window, settled.pace.base_ms) == (4, 40.0)


def test_a_window_not_filled_does_not_grow() -> None:
    settled = health.settle(Pace(window=8), [ok()] * 3, NOW, probe=False, filled=False, cut_to=8)
    assert settled.pace.window == 8


def test_overload_cuts_the_window_and_ends_slow_start_then_it_grows_by_steps() -> None:
    cut = health.settle(Pace(window=8), [ok(), busy()], NOW, probe=False, filled=True, cut_to=8).pace
    assert (cut.window, cut.slow_start) == (8 * health.BACKOFF, False)
    grown = health.settle(cut, [ok()] * 5, NOW, probe=False, filled=True, cut_to=cut.window).pace
    assert grown.window == cut.window + health.GROWTH


def test_the_batchs_own_cuts_are_kept() -> None:
    settled = health.settle(Pace(window=8), [busy()] * 3, NOW, probe=False, filled=True, cut_to=2.7)
    assert settled.pace.window == 2.7


def test_latency_far_above_the_baseline_is_overload_too() -> None:
    pace = Pace(window=8, slow_start=False, base_ms=40.0)
    settled = health.settle(pace, [ok(200)] * 5, NOW, probe=False, filled=True, cut_to=8)
    assert settled.pace.window == 8 * health.BACKOFF


def test_the_window_never_goes_below_one() -> None:
    settled = health.settle(Pace(window=1), [busy()], NOW, probe=False, filled=True, cut_to=1)
    assert settled.pace.window == health.MIN_WINDOW


def test_only_an_overload_answer_sent_among_others_is_our_pace_s_doing() -> None:
    assert busy(crowded=True).paced
    assert not busy(crowded=False).paced
    assert not Answer(500, 1, True).paced
    assert Answer(429, 1, True).paced


# Settling: the breaker


def test_a_run_of_failures_at_the_smallest_window_opens_the_breaker() -> None:
    pace = Pace(window=1, slow_start=False, failures=3)
    failures = [Answer(None, 2), Answer(502, 2)]
    settled = health.settle(pace, failures, NOW, probe=False, filled=True, cut_to=1)
    assert settled.opened
    assert (settled.pace.probe_at, settled.pace.probe_interval) == (
        NOW + health.PROBE_FIRST,
        health.PROBE_FIRST,
    )


def test_a_success_ends_the_run() -> None:
    pace = Pace(window=1, slow_start=False, failures=4)
    settled = health.settle(pace, [Answer(None, 2), ok()], NOW, probe=False, filled=True, cut_to=1)
    assert (settled.opened, settled.pace.failures) == (False, 0)


def test_4xx_answers_are_not_the_receiver_being_down() -> None:
    pace = Pace(window=1, slow_start=False, failures=4)
    settled = health.settle(pace, [Answer(404, 2)] * 5, NOW, probe=False, filled=True, cut_to=1)
    assert not settled.opened


def test_a_failed_probe_doubles_the_interval_up_to_the_maximum() -> None:
    pace = Pace(window=1, probe_at=NOW - 1, probe_interval=10)
    settled = health.settle(pace, [Answer(None, 2)], NOW, probe=True, filled=False, cut_to=1)
    assert (settled.pace.probe_at, settled.pace.probe_interval) == (NOW + 20, 20)
    longest = replace(pace, probe_interval=health.PROBE_MAX)
    assert health.settle(
        longest, [Answer(None, 2)], NOW, probe=True, filled=False, cut_to=1
    ).pace.probe_interval == (health.PROBE_MAX)


def test_a_probe_that_succeeds_closes_the_breaker_and_starts_slowly() -> None:
    pace = Pace(window=1, base_ms=40.0, probe_at=NOW - 1, probe_interval=40)
    settled = health.settle(pace, [ok()], NOW, probe=True, filled=False, cut_to=1)
    assert settled.closed
    assert (settled.pace.open, settled.pace.window, settled.pace.slow_start) == (
        False,
        health.INITIAL_WINDOW,
        True,
    )


# Failing streaks and disabling


def test_streak_decisions() -> None:
    day = 86_400
    assert health.streak(None, [410], 100, 5 * day).disable == "receiver answered 410 Gone"
    assert health.streak(None, [500], 100, 5 * day) == health.Streak(failing_since=100)
    assert health.streak(50, [200, 500], 100, 5 * day) == health.Streak(succeeded_at=100)
    assert health.streak(None, [200], 100, 5 * day) == health.Streak()
    assert health.streak(0, [None], 5 * day, 5 * day).disable == "no successful delivery for 5 days"
    assert health.streak(1, [None], 5 * day, 5 * day) == health.Streak()


def test_only_real_changes_are_written() -> None:
    pace = Pace(window=4, base_ms=40.0)
    assert not health.changed(pace, replace(pace, base_ms=41.0))
    assert health.changed(pace, replace(pace, base_ms=50.0))
    assert health.changed(pace, replace(pace, window=4.5))
