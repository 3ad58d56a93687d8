"""webhooks.retry: the default schedule with ±20 % jitter, Retry-After, the 12-hour cap."""

from __future__ import annotations

import pytest

from webhooks import retry
from webhooks.retry import next_delay, retry_after

# SPEC: at once, 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h.
DEFAULT_SCHEDULE = [0, 5, 300, 1800, 7200, 18000, 36000, 36000]
# (attempts made, lowest delay, highest delay): ±20 %, capped at 12 hours.
BOUNDS = [
    (1, 4, 6),
    (2, 240, 360),
    (3, 1440, 2160),
    (4, 5760, 8640),
    (5, 14400, 21600),
    (6, 28800, 43200),
    (7, 28800, 43200),
]
HTTP_DATE = "Wed, 21 Oct 2015 07:28:00 GMT"
HTTP_DATE_EPOCH = 1445412480


@pytest.fixture
def lowest_jitter(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(retry.random, "uniform", lambda low, high: low)


@pytest.fixture
def highest_jitter(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(retry.random, "uniform", lambda low, high: high)


# --------------------------------------------------------------------------------------------------
# next_delay


@pytest.mark.parametrize(("attempts_made", "low", "high"), BOUNDS)
def test_delay_after_each_attempt_is_its_schedule_entry_within_20_percent(
    attempts_made: int, low: int, high: int
) -> None:
    for _ in range(200):
        delay = next_delay(DEFAULT_SCHEDULE, attempts_made)
        assert delay is not None
        assert low <= delay <= high


@pytest.mark.usefixtures("lowest_jitter")
def test_lowest_jitter_is_80_percent_of_the_schedule() -> None:
    assert [next_delay(DEFAULT_SCHEDULE, n) for n in range(8)] == [
        0, 4, 240, 1440, 5760, 14400, 28800, 28800,
    ]  # fmt: skip


@pytest.mark.usefixtures("highest_jitter")
def test_highest_jitter_is_120_percent_of_the_schedule_capped_at_12_hours() -> None:
    assert [next_delay(DEFAULT_SCHEDULE, n) for n in range(8)] == [
        0, 6, 360, 2160, 8640, 21600, 43200, 43200,
    ]  # fmt: skip


def test_jitter_spreads_the_delays() -> None:
    assert len({next_delay(DEFAULT_SCHEDULE, 3) for _ in range(50)}) > 1


@pytest.mark.usefixtures("highest_jitter")
def test_zero_delay_stays_zero() -> None:
    assert next_delay(DEFAULT_SCHEDULE, 0) == 0


@pytest.mark.parametrize("attempts_made", [8, 9, 100])
def test_no_delay_after_the_last_attempt(attempts_made: int) -> None:
    assert next_delay(DEFAULT_SCHEDULE, attempts_made) is None


def test_no_delay_after_the_last_attempt_even_when_retry_after_asks() -> None:
    assert next_delay(DEFAULT_SCHEDULE, 8, asked=60) is None


def test_retry_after_longer_than_the_schedule_raises_the_delay() -> None:
    assert next_delay(DEFAULT_SCHEDULE, 1, asked=120) == 120


@pytest.mark.usefixtures("lowest_jitter")
def test_retry_after_shorter_than_the_schedule_does_not_lower_the_delay() -> None:
    assert next_delay(DEFAULT_SCHEDULE, 3, asked=10) == 1440


def test_retry_after_is_capped_at_12_hours() -> None:
    assert next_delay(DEFAULT_SCHEDULE, 1, asked=100_000) == 43200


@pytest.mark.usefixtures("highest_jitter")
def test_schedule_entry_over_12_hours_is_capped() -> None:
    assert next_delay([50_000], 0) == 43200


# --------------------------------------------------------------------------------------------------
# retry_after


@pytest.mark.parametrize(("value", "seconds"), [("120", 120), (" 120 ", 120), ("0", 0)])
def test_retry_after_reads_seconds(value: str, seconds: int) -> None:
    assert retry_after({"retry-after": value}, now=0) == seconds


def test_retry_after_reads_the_capitalised_header_name() -> None:
    assert retry_after({"Retry-After": "30"}, now=0) == 30


def test_retry_after_seconds_are_capped_at_12_hours() -> None:
    assert retry_after({"retry-after": "99999"}, now=0) == 43200


def test_retry_after_reads_an_http_date_as_seconds_from_now() -> None:
    assert retry_after({"retry-after": HTTP_DATE}, now=HTTP_DATE_EPOCH - 90) == 90


def test_retry_after_date_in_the_past_is_zero() -> None:
    assert retry_after({"retry-after": HTTP_DATE}, now=HTTP_DATE_EPOCH + 3600) == 0


def test_retry_after_date_far_ahead_is_capped_at_12_hours() -> None:
    assert retry_after({"retry-after": HTTP_DATE}, now=HTTP_DATE_EPOCH - 86400) == 43200


@pytest.mark.parametrize("value", ["soon", "-5", "1.5", "12 34", "", "Mon, 32 Foo 2020 99:00:00 GMT"])
def test_retry_after_ignores_garbage(value: str) -> None:
    assert retry_after({"retry-after": value}, now=0) is None


def test_retry_after_absent_is_none() -> None:
    assert retry_after({"content-type": "text/plain"}, now=0) is None


def test_retry_after_ignores_a_superscript_digit() -> None:
    assert retry_after({"retry-after": "\u00b2"}, now=0) is None


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("9" * 5_000, 43200),  # more digits than int() converts
        ("0" * 4_999 + "7", 7),
        ("1" + "0" * 40, 43200),
        ("Fri, 31 Dec 9999 23:59:59 GMT", 43200),
        ("Mon, 01 Jan 0001 00:00:00 GMT", 0),
    ],
    ids=["5000-digits", "5000-digits-small", "huge", "year-9999", "year-1"],
)
def test_retry_after_of_any_size_is_read_within_the_cap(value: str, seconds: int) -> None:
    assert retry_after({"retry-after": value}, now=HTTP_DATE_EPOCH) == seconds


@pytest.mark.parametrize(
    "value",
    [
        "-" + "9" * 5_000,
        "Fri, 31 Dec 99999 23:59:59 GMT",
        "Fri, 31 Dec 1999 23:59:59 +99999",
        "Mon, 01 Jan 2020 00:00:00 GMT" * 200,
        "\x00\xff" * 3_000,
        "\u0663\u0660",  # Arabic-Indic digits: isdigit() says yes, HTTP does not
    ],
    ids=["negative-5000", "year-99999", "huge-zone", "repeated-date", "binary", "non-ascii-digits"],
)
def test_retry_after_of_a_hostile_shape_is_ignored_without_raising(value: str) -> None:
    assert retry_after({"retry-after": value}, now=HTTP_DATE_EPOCH) is None
