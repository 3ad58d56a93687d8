"""A hook's health: how fast it is served (adaptive flow control), whether it is served at all (circuit
breaker), and when it is disabled.

Flow control, like TCP's congestion control but per hook and learned from the receiver's answers:

- The *window* is how many POSTs may be in flight to the hook at once. It doubles per batch at first
  (slow start), then grows by GROWTH per batch that filled it with quick successes, and is multiplied
  by BACKOFF on a sign of overload: 429, 502, 503, 504, a timeout, a refused or reset connection, or
  a median latency above LATENCY_FACTOR times the receiver's own baseline (and LATENCY_MIN_RISE_MS
  above it). Within a batch the same cut applies at once (at most once per round of POSTs), so a
  receiver that says "busy" is not asked again by the POSTs queued behind.
- The *rate* follows from it (Little's law): window / baseline latency deliveries a second. Each
  delivery gets a slot on the hook's timeline at that rate; those whose slot falls within HORIZON
  seconds go now, the rest go back to the queue delayed to their slot (attempts untouched), so a
  flood spreads over time and leaves the queue's head to the other hooks. A batch sends at most
  HORIZON seconds' worth of the pace; deliveries that came due faster than they were served take
  new slots, so a backlog never piles up at the queue's head.
- An overload answer (429 or 503) to a POST sent while others to the hook were in flight is our
  pace's doing: the delivery is sent again later, its attempt not spent.

The breaker: BREAKER_FAILURES failed attempts in a row (no answer, 5xx, 429) at the smallest window
open it. While open, the hook's deliveries wait and one probe at a time (claimed atomically) tries
the receiver every `probe_interval` seconds, doubling from PROBE_FIRST to PROBE_MAX. A probe that
succeeds closes it, and the window starts over. A delivery still waiting once its retry schedule's
span has passed is given up (dead-lettered, logged failed, replayable), as its attempts would have
been.

The state of a hook's pace lives in the rate-limits table (its window-0 item), read for all hooks of
a batch with one BatchGetItem and written once per hook per batch, only when it changed.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit

from webhooks import aws
from webhooks.hook_store import HookStore
from webhooks.hooks import Hook, HookStatus

logger = Logger(child=True)
# Powertools' Metrics share one buffer per namespace: these land beside the delivery function's.
metrics = Metrics(namespace="Webhooks")

MIN_WINDOW = 1.0
INITIAL_WINDOW = 2.0
MAX_WINDOW = 256.0
GROWTH = 0.5
BACKOFF = 0.7
LATENCY_FACTOR = 3.0
# ... and at least this much above it: a fast receiver's 1 ms becoming 4 ms is noise, not overload.
LATENCY_MIN_RISE_MS = 50.0
# The baseline is the lowest median latency seen, drifting up by this much per batch, so that a
# receiver that became slower for good is judged against what it is now.
BASE_DRIFT = 1.02
HORIZON = 1.0
BREAKER_FAILURES = 5
PROBE_FIRST = 5.0
PROBE_MAX = 300.0
OVERLOAD_STATUSES = frozenset({429, 502, 503, 504})
# SQS delays a message at most 15 minutes; a longer wait is made of several.
MAX_DELAY = 900
# The pace item's sort key: rate-limit windows are epoch seconds, never 0.
PACE_WINDOW = 0
# A pace untouched for a week is forgotten (the table's TTL).
PACE_KEEP_SECONDS = 7 * 86_400


@dataclass(frozen=True)
class Pace:
    """The shared flow state of one hook."""

    window: float = INITIAL_WINDOW
    slow_start: bool = True
    base_ms: float | None = None
    # Where the hook's next free delivery slot is (epoch seconds).
    next_slot: float = 0.0
    failures: int = 0
    # The breaker is open while this is set: the next probe is due then.
    probe_at: float | None = None
    probe_interval: float = 0.0

    @property
    def open(self) -> bool:
        return self.probe_at is not None

    def rate(self, rate_limit: int | None = None) -> float:
        """Deliveries a second this pace allows (before the receiver's first answer, only the window
        limits them)."""
        rate = self.window * 1000.0 / self.base_ms if self.base_ms else math.inf
        return min(rate, float(rate_limit)) if rate_limit else rate

    def view(self, rate_limit: int | None = None) -> dict[str, Any]:
        """What the API shows of it."""
        return {
            "window": round(self.window, 2),
            "rate_per_second": None if math.isinf(rate := self.rate(rate_limit)) else round(rate, 1),
            "baseline_ms": None if self.base_ms is None else round(self.base_ms, 1),
            "breaker": "open" if self.open else "closed",
            "next_probe_at": self.probe_at,
        }


@dataclass(frozen=True)
class Waiting:
    """What planning needs of one delivery."""

    slot_at: float | None  # its slot, if one was reserved when it was delayed
    deadline: float  # when its retry schedule would have given it up


@dataclass(frozen=True)
class Deferral:
    index: int
    delay: int
    slot_at: float | None = None


@dataclass(frozen=True)
class HookPlan:
    """One hook's share of a batch: which deliveries go now, which wait, which are given up."""

    send: list[int]
    deferred: list[Deferral]
    given_up: list[int]
    probe: bool  # `send` is a single probe of an open breaker (to be claimed first)
    window: float
    pace: Pace  # with the slots reserved


def plan(pace: Pace, waiting: Sequence[Waiting], now: float, rate_limit: int | None = None) -> HookPlan:
    """Pure: decides for each waiting delivery of a hook (in queue order)."""
    send: list[int] = []
    deferred: list[Deferral] = []
    given_up: list[int] = []
    if pace.open:
        assert pace.probe_at is not None
        probing = now >= pace.probe_at
        for index, item in enumerate(waiting):
            if probing and not send:
                send.append(index)
            elif now >= item.deadline:
                given_up.append(index)
            else:
                # Back for the next probe, or its deadline, whichever is first.
                until_probe = pace.probe_at - now if not probing else pace.probe_interval
                wait = min(until_probe, item.deadline - now)
                deferred.append(Deferral(index, delay(wait)))
        return HookPlan(send, deferred, given_up, probing and bool(send), MIN_WINDOW, pace)

    spacing = 1.0 / pace.rate(rate_limit)
    cursor = max(pace.next_slot, now)  # the next free slot
    # A hair over the horizon, so that float steps do not decide whether its last slot is in it.
    horizon = now + HORIZON + 1e-6
    # What one batch sends of a hook: its pace over the horizon, even when more are due (a backlog
    # that came due faster than it was served takes new slots, and the queue's head moves on).
    cap = math.inf if spacing == 0 else max(1, math.ceil(HORIZON / spacing))
    for index, item in enumerate(waiting):
        if item.slot_at is not None and (item.slot_at > horizon or len(send) < cap):
            slot = item.slot_at  # reserved when it was delayed: its turn, not a new one
        else:
            if len(send) >= cap:
                cursor = max(cursor, horizon + spacing)
            slot = cursor
            cursor += spacing
        if slot <= horizon and len(send) < cap:
            send.append(index)
        else:
            deferred.append(Deferral(index, delay(slot - now), slot))
    next_slot = cursor if cursor > max(pace.next_slot, now) else pace.next_slot
    return HookPlan(send, deferred, given_up, False, pace.window, replace(pace, next_slot=next_slot))


def delay(seconds: float) -> int:
    return max(1, min(MAX_DELAY, math.ceil(seconds)))


@dataclass(frozen=True)
class Answer:
    """What planning's settle step needs of one POST."""

    status: int | None
    duration_ms: int
    crowded: bool = False  # others to the hook were in flight when it was sent

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300

    @property
    def overload(self) -> bool:
        return self.status is None or self.status in OVERLOAD_STATUSES

    @property
    def failure(self) -> bool:
        """Counts toward the breaker: the receiver is not there or not coping."""
        return self.status is None or self.status >= 500 or self.status == 429

    @property
    def paced(self) -> bool:
        """Our pace's doing, not the delivery's: sent again later, the attempt not spent."""
        return self.crowded and self.status in (429, 503)


@dataclass(frozen=True)
class Settled:
    pace: Pace
    opened: bool  # the breaker opened with this batch
    closed: bool  # a probe succeeded


def settle(
    pace: Pace, answers: Sequence[Answer], now: float, *, probe: bool, filled: bool, cut_to: float
) -> Settled:
    """Pure: the hook's pace after a batch's answers (in the order they came).

    `filled`: the window was the limit at some moment (growing only makes sense then); `cut_to`:
    the window the batch's own cuts left."""
    if not answers:
        return Settled(pace, False, False)
    if probe:
        if answers[0].ok:
            return Settled(replace(Pace(), next_slot=pace.next_slot, base_ms=pace.base_ms), False, True)
        interval = min(PROBE_MAX, max(PROBE_FIRST, pace.probe_interval * 2))
        return Settled(replace(pace, probe_at=now + interval, probe_interval=interval), False, False)

    failures = pace.failures
    for answer in answers:
        failures = failures + 1 if answer.failure else 0 if answer.ok else failures
    oks = [a.duration_ms for a in answers if a.ok]
    base = pace.base_ms
    slow = False
    if oks:
        median = _median(oks)
        slow = base is not None and median > LATENCY_FACTOR * base and median - base >= LATENCY_MIN_RISE_MS
        base = median if base is None else min(base * BASE_DRIFT, median)
    overloaded = slow or any(a.overload for a in answers)
    window, slow_start = pace.window, pace.slow_start
    if overloaded:
        window, slow_start = max(MIN_WINDOW, min(window * BACKOFF, cut_to)), False
    elif filled:
        window = min(MAX_WINDOW, window * 2 if slow_start else window + GROWTH)
    after = replace(pace, window=window, slow_start=slow_start, base_ms=base, failures=failures)
    if failures >= BREAKER_FAILURES and window <= MIN_WINDOW:
        opened = replace(after, probe_at=now + PROBE_FIRST, probe_interval=PROBE_FIRST, failures=0)
        return Settled(opened, True, False)
    return Settled(after, False, False)


def _median(values: list[int]) -> float:
    ordered = sorted(values)
    middle = len(ordered) // 2
    return float(ordered[middle]) if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2


def cut(window: float) -> float:
    """The window after one sign of overload."""
    return max(MIN_WINDOW, window * BACKOFF)


def changed(before: Pace, after: Pace) -> bool:
    """Worth a write: anything but the baseline's small drift."""
    if before.base_ms is None or after.base_ms is None:
        return before != after
    drift = abs(after.base_ms - before.base_ms) > 0.1 * before.base_ms
    return drift or replace(before, base_ms=after.base_ms) != after


# -- state in DynamoDB -------------------------------------------------------------------------------


def _key(account: str, hook_id: str) -> dict[str, Any]:
    return {"hook": f"{account}#{hook_id}", "window": PACE_WINDOW}


@dataclass
class PaceStore:
    table_name: str
    reads: int = field(default=0, compare=False)

    @property
    def table(self) -> Any:
        return aws.table(self.table_name)

    def get_many(self, keys: Iterable[tuple[str, str]]) -> dict[tuple[str, str], Pace]:
        """The paces of these hooks (the default for a hook without one): one BatchGetItem per 100."""
        wanted = list(dict.fromkeys(keys))
        found: dict[tuple[str, str], Pace] = {key: Pace() for key in wanted}
        for start in range(0, len(wanted), 100):
            request: dict[str, Any] = {
                self.table_name: {
                    "Keys": [_key(a, h) for a, h in wanted[start : start + 100]],
                    "ConsistentRead": True,
                }
            }
            while request:
                response = aws.dynamodb().batch_get_item(RequestItems=request)
                for item in response["Responses"].get(self.table_name, []):
                    account, _, hook_id = str(item["hook"]).partition("#")
                    found[(account, hook_id)] = _pace(item.get("pace"))
                request = response.get("UnprocessedKeys") or {}
        return found

    def save_many(self, paces: Sequence[tuple[str, str, Pace]], now: float) -> None:
        """The batch's changed paces, 25 to a BatchWriteItem (a batch to many hooks learns each one's)."""
        with self.table.batch_writer() as batch:
            for account, hook_id, pace in paces:
                batch.put_item(Item=_item(account, hook_id, pace, now))

    def claim_probe(self, account: str, hook_id: str, pace: Pace, now: float) -> bool:
        """Takes the due probe for this function: moves the next one on, unless another took it."""
        assert pace.probe_at is not None
        moved = replace(pace, probe_at=now + max(pace.probe_interval, PROBE_FIRST))
        try:
            self.table.put_item(
                Item=_item(account, hook_id, moved, now),
                # Still the probe this function saw due: no other function moved it on meanwhile.
                ConditionExpression="probe_at = :seen",
                ExpressionAttributeValues={":seen": repr(pace.probe_at)},
            )
        except aws.dynamodb().meta.client.exceptions.ConditionalCheckFailedException:
            return False
        return True


def _item(account: str, hook_id: str, pace: Pace, now: float) -> dict[str, Any]:
    item = {
        **_key(account, hook_id),
        "pace": json.dumps(asdict(pace)),
        "expires_at": int(now) + PACE_KEEP_SECONDS,
    }
    if pace.probe_at is not None:
        item["probe_at"] = repr(pace.probe_at)
    return item


def _pace(raw: Any) -> Pace:
    if not raw:
        return Pace()
    try:
        data = json.loads(str(raw))
        return Pace(**{k: v for k, v in data.items() if k in Pace.__dataclass_fields__})
    except (ValueError, TypeError):
        logger.warning("unreadable pace; starting over", extra={"pace": str(raw)[:200]})
        return Pace()


# -- disabling -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Streak:
    """What a batch's answers mean for the hook's failing streak (pure decision)."""

    disable: str | None = None  # the reason, when the hook is to be disabled
    succeeded_at: int | None = None  # ends a failing streak
    failing_since: int | None = None  # starts one


def streak(failing_since: int | None, statuses: Sequence[int | None], now: int, disable_after: int) -> Streak:
    if any(s == 410 for s in statuses):
        return Streak(disable="receiver answered 410 Gone")
    if any(s is not None and 200 <= s < 300 for s in statuses):
        return Streak(succeeded_at=now) if failing_since is not None else Streak()
    if failing_since is None:
        return Streak(failing_since=now)
    if now - failing_since >= disable_after:
        return Streak(disable=f"no successful delivery for {disable_after / 86_400:g} days")
    return Streak()


def disable(store: HookStore, hook: Hook, reason: str, event_bus: str) -> bool:
    """Disables the hook and says so on the event bus; False when the hook was gone."""
    if not store.set_status(hook.account, hook.id, HookStatus.DISABLED, reason=reason):
        return False
    logger.warning("hook disabled", extra={"hook_id": hook.id, "account": hook.account, "reason": reason})
    metrics.add_metric(name="HooksDisabled", unit=MetricUnit.Count, value=1)
    try:
        aws.client("events").put_events(
            Entries=[
                {
                    "Source": "webhooks",
                    "DetailType": "Hook Disabled",
                    "Detail": json.dumps(
                        {"account": hook.account, "hook_id": hook.id, "url": hook.url, "reason": reason}
                    ),
                    "EventBusName": event_bus,
                }
            ]
        )
    except Exception:
        # The hook is disabled either way; the event is a courtesy to whoever listens.
        logger.exception("could not publish the Hook Disabled event", extra={"hook_id": hook.id})
    return True
