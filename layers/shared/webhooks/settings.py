"""Configuration: template Parameters -> function environment -> these settings, read once per cold start.

A missing or malformed variable fails the cold start with a clear message instead of failing the
first request that happens to need it. Plain Python rather than a pydantic model: every function
reads its settings at cold start, and the authorizer needs pydantic for nothing else.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache

# Retry delays hide an SQS message, which SQS allows for at most 12 hours.
MAX_RETRY_DELAY = 43_200
# Validation delays are Step Functions Wait states: bounded only by an execution's year.
MAX_VALIDATION_WAIT = 31_536_000
_PREFIX = re.compile(r"[a-z0-9][a-z0-9-]{0,31}")
_TRUE = frozenset({"1", "true", "yes", "on"})


class InvalidSettings(ValueError):
    """The function's environment lacks a variable, or has one that cannot be read."""


@dataclass(frozen=True, kw_only=True)
class Settings:
    hooks_table: str
    tokens_table: str = ""
    deliveries_table: str
    rate_limits_table: str = ""
    event_bus_name: str = "default"
    ingest_queue_url: str
    delivery_queue_url: str
    delivery_dlq_url: str
    # Only the management API starts validations; the state machine cannot be in every function's
    # environment because it references the validation function itself.
    validation_state_machine_arn: str = ""

    # Delay before each delivery attempt; its length is the number of attempts.
    retry_schedule: list[int] = field(default_factory=lambda: [0, 5, 300, 1800, 7200, 18000, 36000, 36000])
    # Delay before each check of the verification file; its length is the number of checks.
    validation_schedule: list[int] = field(default_factory=lambda: [0, 60, 300, 900, 3600, 21600, 86400])
    allow_http: bool = False
    allow_private: bool = False
    verification_prefix: str = "smtpeter"
    delivery_log_days: int = 30
    secret_grace_seconds: int = 86_400
    delivery_concurrency: int = 100
    # A hook with no successful delivery for this long is disabled (default 5 days).
    disable_after_seconds: int = 432_000
    # The delivery queue's maxReceiveCount: a backstop for records whose settling never finished.
    # The handler parks exhausted deliveries itself, so it must allow more receives than attempts.
    max_receive_count: int = 12
    # Returned mail: the domain of return paths (empty when the intake is not deployed) and the secret
    # (Secrets Manager id) keying their tags.
    return_path_domain: str = ""
    return_path_secret_id: str = ""

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """The settings in `environ` (the process environment by default); raises InvalidSettings
        naming every variable that is missing or malformed. Other variables are ignored."""
        read = _Reader(os.environ if environ is None else environ)
        # The fields' defaults, for the variables that are not set.
        defaults = cls(
            hooks_table="",
            deliveries_table="",
            ingest_queue_url="",
            delivery_queue_url="",
            delivery_dlq_url="",
        )
        settings = cls(
            hooks_table=read.text("HOOKS_TABLE"),
            tokens_table=read.text("TOKENS_TABLE", defaults.tokens_table),
            deliveries_table=read.text("DELIVERIES_TABLE"),
            rate_limits_table=read.text("RATE_LIMITS_TABLE", defaults.rate_limits_table),
            event_bus_name=read.text("EVENT_BUS_NAME", defaults.event_bus_name),
            ingest_queue_url=read.text("INGEST_QUEUE_URL"),
            delivery_queue_url=read.text("DELIVERY_QUEUE_URL"),
            delivery_dlq_url=read.text("DELIVERY_DLQ_URL"),
            validation_state_machine_arn=read.text(
                "VALIDATION_STATE_MACHINE_ARN", defaults.validation_state_machine_arn
            ),
            retry_schedule=read.seconds("RETRY_SCHEDULE", defaults.retry_schedule, MAX_RETRY_DELAY),
            validation_schedule=read.seconds(
                "VALIDATION_SCHEDULE", defaults.validation_schedule, MAX_VALIDATION_WAIT
            ),
            allow_http=read.flag("ALLOW_HTTP_TARGETS"),
            allow_private=read.flag("ALLOW_PRIVATE_TARGETS"),
            verification_prefix=read.text("VERIFICATION_FILE_PREFIX", defaults.verification_prefix, _PREFIX),
            delivery_log_days=read.integer("DELIVERY_LOG_DAYS", defaults.delivery_log_days, 1, 365),
            secret_grace_seconds=read.integer("SECRET_GRACE_SECONDS", defaults.secret_grace_seconds, 0),
            delivery_concurrency=read.integer("DELIVERY_CONCURRENCY", defaults.delivery_concurrency, 1, 256),
            disable_after_seconds=read.integer("DISABLE_AFTER_SECONDS", defaults.disable_after_seconds, 60),
            max_receive_count=read.integer("DELIVERY_MAX_RECEIVE_COUNT", defaults.max_receive_count, 1),
            return_path_domain=read.text("RETURN_PATH_DOMAIN", defaults.return_path_domain).lower(),
            return_path_secret_id=read.text("RETURN_PATH_SECRET_ID", defaults.return_path_secret_id),
        )
        read.done()
        if settings.max_receive_count <= len(settings.retry_schedule):
            raise InvalidSettings(
                f"DELIVERY_MAX_RECEIVE_COUNT ({settings.max_receive_count}) must exceed the number of "
                f"attempts in RETRY_SCHEDULE ({len(settings.retry_schedule)})"
            )
        return settings


class _Reader:
    """Reads variables, noting every problem; `done()` raises them all at once."""

    def __init__(self, environ: Mapping[str, str]) -> None:
        self.environ = environ
        self.problems: list[str] = []

    def done(self) -> None:
        if self.problems:
            raise InvalidSettings("invalid configuration: " + "; ".join(self.problems))

    def text(self, name: str, default: str | None = None, pattern: re.Pattern[str] | None = None) -> str:
        value = self.environ.get(name, default)
        if value is None:
            self.problems.append(f"{name} is required")
            return ""
        if pattern is not None and not pattern.fullmatch(value):
            self.problems.append(f"{name} must match {pattern.pattern}, not {value!r}")
        return value

    def integer(self, name: str, default: int, least: int, most: int | None = None) -> int:
        raw = self.environ.get(name)
        if raw is None:
            return default
        try:
            value = int(raw)
        except ValueError:
            self.problems.append(f"{name} must be a whole number, not {raw!r}")
            return default
        if value < least or (most is not None and value > most):
            bounds = f"between {least} and {most}" if most is not None else f"at least {least}"
            self.problems.append(f"{name} must be {bounds}, not {value}")
        return value

    def seconds(self, name: str, default: list[int], most: int) -> list[int]:
        """A comma-separated list of seconds, such as `0, 5, 300`."""
        raw = self.environ.get(name)
        if raw is None:
            return list(default)
        try:
            values = [int(part) for part in raw.replace(" ", "").split(",") if part]
        except ValueError:
            self.problems.append(f"{name} must be a comma-separated list of whole seconds, not {raw!r}")
            return list(default)
        if not values:
            self.problems.append(f"{name} needs at least one delay")
        elif any(not 0 <= value <= most for value in values):
            self.problems.append(f"{name}: every delay must lie between 0 and {most} seconds, not {raw!r}")
        return values

    def flag(self, name: str) -> bool:
        return self.environ.get(name, "").strip().lower() in _TRUE


@cache
def get_settings() -> Settings:
    return Settings.from_env()
