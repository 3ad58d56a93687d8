"""Configuration: template Parameters -> function environment -> this model, read once per cold start.

A missing or malformed variable fails the cold start with a clear message instead of failing the
first request that happens to need it.
"""

from __future__ import annotations

import os
from functools import cache
from typing import Annotated

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator


def _seconds_list(value: object) -> object:
    if isinstance(value, str):
        return [int(part) for part in value.replace(" ", "").split(",") if part]
    return value


def _flag(value: object) -> object:
    if isinstance(value, str):
        return value.strip().lower() in {"1", "true", "yes", "on"}
    return value


# Retry delays hide an SQS message, which SQS allows for at most 12 hours.
Seconds = Annotated[list[Annotated[int, Field(ge=0, le=43_200)]], BeforeValidator(_seconds_list)]
# Validation delays are Step Functions Wait states: bounded only by an execution's year.
WaitSeconds = Annotated[list[Annotated[int, Field(ge=0, le=31_536_000)]], BeforeValidator(_seconds_list)]
Flag = Annotated[bool, BeforeValidator(_flag)]


class Settings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore", populate_by_name=True)

    hooks_table: str = Field(alias="HOOKS_TABLE")
    tokens_table: str = Field(default="", alias="TOKENS_TABLE")
    deliveries_table: str = Field(alias="DELIVERIES_TABLE")
    rate_limits_table: str = Field(default="", alias="RATE_LIMITS_TABLE")
    event_bus_name: str = Field(default="default", alias="EVENT_BUS_NAME")
    ingest_queue_url: str = Field(alias="INGEST_QUEUE_URL")
    delivery_queue_url: str = Field(alias="DELIVERY_QUEUE_URL")
    delivery_dlq_url: str = Field(alias="DELIVERY_DLQ_URL")
    # Only the management API starts validations; the state machine cannot be in every function's
    # environment because it references the validation function itself.
    validation_state_machine_arn: str = Field(default="", alias="VALIDATION_STATE_MACHINE_ARN")

    # Delay before each delivery attempt; its length is the number of attempts.
    retry_schedule: Seconds = Field(
        default=[0, 5, 300, 1800, 7200, 18000, 36000, 36000], min_length=1, alias="RETRY_SCHEDULE"
    )
    # Delay before each check of the verification file; its length is the number of checks.
    validation_schedule: WaitSeconds = Field(
        default=[0, 60, 300, 900, 3600, 21600, 86400], min_length=1, alias="VALIDATION_SCHEDULE"
    )
    allow_http: Flag = Field(default=False, alias="ALLOW_HTTP_TARGETS")
    allow_private: Flag = Field(default=False, alias="ALLOW_PRIVATE_TARGETS")
    verification_prefix: str = Field(
        default="smtpeter", pattern=r"^[a-z0-9][a-z0-9-]{0,31}$", alias="VERIFICATION_FILE_PREFIX"
    )
    delivery_log_days: int = Field(default=30, ge=1, le=365, alias="DELIVERY_LOG_DAYS")
    secret_grace_seconds: int = Field(default=86_400, ge=0, alias="SECRET_GRACE_SECONDS")
    delivery_concurrency: int = Field(default=100, ge=1, le=256, alias="DELIVERY_CONCURRENCY")
    # A hook with no successful delivery for this long is disabled (default 5 days).
    disable_after_seconds: int = Field(default=432_000, ge=60, alias="DISABLE_AFTER_SECONDS")
    # The delivery queue's maxReceiveCount: a backstop for records whose settling never finished.
    # The handler parks exhausted deliveries itself, so it must allow more receives than attempts.
    max_receive_count: int = Field(default=12, ge=1, alias="DELIVERY_MAX_RECEIVE_COUNT")

    @model_validator(mode="after")
    def _receives_outlast_attempts(self) -> Settings:
        if self.max_receive_count <= len(self.retry_schedule):
            raise ValueError(
                f"DELIVERY_MAX_RECEIVE_COUNT ({self.max_receive_count}) must exceed the number of attempts "
                f"in RETRY_SCHEDULE ({len(self.retry_schedule)})"
            )
        return self

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> Settings:
        return cls.model_validate(dict(os.environ if environ is None else environ))


@cache
def get_settings() -> Settings:
    return Settings.from_env()
