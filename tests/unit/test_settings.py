"""webhooks.settings: the environment read once; a bad configuration fails at cold start."""

from __future__ import annotations

from dataclasses import FrozenInstanceError

import pytest

from webhooks.settings import InvalidSettings, Settings


def test_required_variables_are_read(env: dict[str, str]) -> None:
    settings = Settings.from_env(env)
    assert settings.hooks_table == "hooks-table"
    assert settings.deliveries_table == "deliveries-table"
    assert settings.ingest_queue_url == "https://sqs.us-east-1.amazonaws.com/123456789012/ingest"
    assert settings.delivery_queue_url == "https://sqs.us-east-1.amazonaws.com/123456789012/delivery"
    assert settings.delivery_dlq_url == "https://sqs.us-east-1.amazonaws.com/123456789012/delivery-dlq"


def test_defaults_follow_the_spec(env: dict[str, str]) -> None:
    settings = Settings.from_env(env)
    assert settings.retry_schedule == [0, 5, 300, 1800, 7200, 18000, 36000, 36000]
    assert settings.validation_schedule == [0, 60, 300, 900, 3600, 21600, 86400]
    assert settings.verification_prefix == "smtpeter"
    assert (settings.allow_http, settings.allow_private) == (False, False)
    assert settings.max_receive_count == 12


@pytest.mark.parametrize(
    "variable",
    ["HOOKS_TABLE", "DELIVERIES_TABLE", "INGEST_QUEUE_URL", "DELIVERY_QUEUE_URL", "DELIVERY_DLQ_URL"],
)
def test_missing_required_variable_fails_naming_it(env: dict[str, str], variable: str) -> None:
    del env[variable]
    with pytest.raises(InvalidSettings, match=variable):
        Settings.from_env(env)


@pytest.mark.parametrize(
    ("value", "schedule"),
    [("0,1,1", [0, 1, 1]), (" 0, 5 ,300 ", [0, 5, 300]), ("0,5,", [0, 5]), ("60", [60])],
)
def test_retry_schedule_is_a_comma_list_of_seconds(
    env: dict[str, str], value: str, schedule: list[int]
) -> None:
    assert Settings.from_env({**env, "RETRY_SCHEDULE": value}).retry_schedule == schedule


def test_validation_schedule_is_a_comma_list_of_seconds(env: dict[str, str]) -> None:
    assert Settings.from_env({**env, "VALIDATION_SCHEDULE": "0,2,2"}).validation_schedule == [0, 2, 2]


def test_validation_wait_may_exceed_12_hours(env: dict[str, str]) -> None:
    assert Settings.from_env({**env, "VALIDATION_SCHEDULE": "0,86400"}).validation_schedule == [0, 86400]


@pytest.mark.parametrize("value", ["", ",", "0,5s", "0,-5"])
def test_retry_schedule_that_is_empty_or_not_seconds_fails(env: dict[str, str], value: str) -> None:
    with pytest.raises(InvalidSettings, match="RETRY_SCHEDULE"):
        Settings.from_env({**env, "RETRY_SCHEDULE": value})


def test_retry_schedule_entry_over_43200_fails(env: dict[str, str]) -> None:
    with pytest.raises(InvalidSettings, match="43200"):
        Settings.from_env({**env, "RETRY_SCHEDULE": "0,43201"})


def test_retry_schedule_entry_of_43200_is_accepted(env: dict[str, str]) -> None:
    assert Settings.from_env({**env, "RETRY_SCHEDULE": "0,43200"}).retry_schedule == [0, 43200]


@pytest.mark.parametrize(
    ("value", "expected"), [("true", True), ("TRUE", True), ("1", True), ("false", False), ("0", False)]
)
def test_flags_read_true_1_and_false_0(env: dict[str, str], value: str, expected: bool) -> None:
    settings = Settings.from_env({**env, "ALLOW_HTTP_TARGETS": value, "ALLOW_PRIVATE_TARGETS": value})
    assert (settings.allow_http, settings.allow_private) == (expected, expected)


@pytest.mark.parametrize(("receives", "schedule"), [("8", None), ("3", "0,1,1"), ("2", "0,1,1")])
def test_max_receive_count_not_above_the_number_of_attempts_fails(
    env: dict[str, str], receives: str, schedule: str | None
) -> None:
    env["DELIVERY_MAX_RECEIVE_COUNT"] = receives
    if schedule is not None:
        env["RETRY_SCHEDULE"] = schedule
    with pytest.raises(InvalidSettings, match="DELIVERY_MAX_RECEIVE_COUNT"):
        Settings.from_env(env)


def test_max_receive_count_one_above_the_number_of_attempts_is_accepted(env: dict[str, str]) -> None:
    settings = Settings.from_env({**env, "DELIVERY_MAX_RECEIVE_COUNT": "4", "RETRY_SCHEDULE": "0,1,1"})
    assert settings.max_receive_count == 4


@pytest.mark.parametrize("prefix", ["Smtpeter", "-x", "a b", "a" * 33])
def test_verification_prefix_that_is_not_lowercase_letters_digits_and_dashes_fails(
    env: dict[str, str], prefix: str
) -> None:
    with pytest.raises(InvalidSettings, match="VERIFICATION_FILE_PREFIX"):
        Settings.from_env({**env, "VERIFICATION_FILE_PREFIX": prefix})


def test_numbers_are_read_from_their_text(env: dict[str, str]) -> None:
    settings = Settings.from_env(
        {**env, "DELIVERY_LOG_DAYS": "7", "SECRET_GRACE_SECONDS": "3600", "DELIVERY_CONCURRENCY": "4"}
    )
    assert (settings.delivery_log_days, settings.secret_grace_seconds, settings.delivery_concurrency) == (
        7,
        3600,
        4,
    )


def test_unrelated_variables_are_ignored(env: dict[str, str]) -> None:
    assert (
        Settings.from_env({**env, "PATH": "/usr/bin", "AWS_REGION": "eu-west-1"}).hooks_table == "hooks-table"
    )


def test_settings_cannot_be_changed_after_reading(env: dict[str, str]) -> None:
    settings = Settings.from_env(env)
    with pytest.raises(FrozenInstanceError):
        settings.hooks_table = "other"  # type: ignore[misc]
