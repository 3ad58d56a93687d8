"""The hook: a URL an account registered for some event types, and its lifecycle."""

from __future__ import annotations

import time
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from webhooks.encoding import Format
from webhooks.event_types import EventType


class HookStatus(StrEnum):
    PENDING_VALIDATION = "pending_validation"
    ACTIVE = "active"
    VALIDATION_FAILED = "validation_failed"
    DISABLED = "disabled"


class LocationCheck(BaseModel):
    """What one check saw at one place the verification file may be."""

    url: str
    found: bool = Field(description="The file is there with the right contents")
    status: int | None = Field(default=None, description="The HTTP status answered; absent without an answer")
    problem: str | None = Field(
        default=None,
        description="Why the file was not found there: `HTTP 404`, `connection refused`, `contents differ`, "
        "`redirected to another host, not followed`, …",
    )


class ValidationCheck(BaseModel):
    """The last look for the verification file (the state machine's latest check of this validation)."""

    at: int = Field(description="When (Unix seconds)")
    attempt: int = Field(description="Which check of this validation: 1 is the first")
    found: bool
    locations: list[LocationCheck]


class Hook(BaseModel):
    """A hook as stored. `secret` and the verification token never leave through list views."""

    model_config = ConfigDict(extra="ignore")

    account: str
    id: str
    url: str
    events: list[EventType]
    database: str | None = None
    collection: str | None = None
    format: Format = Format.FORM
    description: str | None = None
    status: HookStatus = HookStatus.PENDING_VALIDATION
    disabled_reason: str | None = None
    # Deliveries per second the receiver accepts; None means unlimited.
    rate_limit: int | None = None
    # Batching (JSON hooks only): up to this many events per POST, waiting at most batch_max_wait
    # seconds for a batch to fill. None means one event per POST.
    batch_max_events: int | None = None
    batch_max_wait: int = 0

    secret: str
    # The secret a rotation replaced keeps signing beside the new one until it expires.
    previous_secret: str | None = None
    previous_secret_expires_at: int | None = None

    verification_file: str
    verification_contents: str
    # A new validation (new hook, new URL, restart) gets a new id; an older state-machine execution
    # that sees a different id knows it is stale and may not change the hook.
    validation_id: str
    validated_at: int | None = None
    # What the latest check of the current validation saw, and when the next one runs (None when none
    # is scheduled): a customer can see why a hook is not validated without reading the service's log.
    last_check: ValidationCheck | None = None
    next_check_at: int | None = None

    # Disabling after days of failures needs only the moment the failing started.
    failing_since: int | None = None
    last_success_at: int | None = None

    # Created under an Idempotency-Key: the digest of the request, so that the same request sent again
    # finds this hook, and another request under the same key is refused.
    request_fingerprint: str | None = None

    created_at: int = Field(default_factory=lambda: int(time.time()))
    updated_at: int = Field(default_factory=lambda: int(time.time()))
    version: int = 1

    def signing_secrets(self, now: float | None = None) -> list[str]:
        now = time.time() if now is None else now
        if self.previous_secret and (self.previous_secret_expires_at or 0) > now:
            return [self.secret, self.previous_secret]
        return [self.secret]

    def subscribes_to(self, event_type: str, database: str | None, collection: str | None) -> bool:
        """A hook filtered on a database (or collection) only hears events of that database."""
        if event_type not in self.events:
            return False
        if self.database is not None and self.database != database:
            return False
        return self.collection is None or self.collection == collection

    def to_item(self) -> dict[str, Any]:
        item: dict[str, Any] = self.model_dump(mode="json", exclude_none=True)
        # Sparse index key: only active hooks are in the ActiveHooks index that fan-out reads.
        if self.status is HookStatus.ACTIVE:
            item["active_account"] = self.account
        return item
