"""Fixtures shared by the unit tests: hooks, the sample platform events, a frozen clock, settings."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest

from tests.conftest import sample_event
from webhooks import events
from webhooks.hooks import Hook

# Two fixed signing secrets (base64 of bytes 0..31 and 32..63), so hooks built in tests are stable.
SECRET = "whsec_AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="
OLD_SECRET = "whsec_ICEiIyQlJicoKSorLC0uLzAxMjM0NTY3ODk6Ozw9Pj8="

# The moment the frozen clock shows: 2026-11-23 10:02:03.456789 UTC.
FROZEN_TIMESTAMP = "2026-11-23 10:02:03"
FROZEN_TIME = 1795428123

ALL_EVENT_TYPES = [
    "click", "open", "bounce", "failure", "delivery", "create", "update", "delete", "unsubscribe", "abuse",
]  # fmt: skip

# The environment a function gets from the template, reduced to the required variables.
REQUIRED_ENV = {
    "HOOKS_TABLE": "hooks-table",
    "DELIVERIES_TABLE": "deliveries-table",
    "INGEST_QUEUE_URL": "https://sqs.us-east-1.amazonaws.com/123456789012/ingest",
    "DELIVERY_QUEUE_URL": "https://sqs.us-east-1.amazonaws.com/123456789012/delivery",
    "DELIVERY_DLQ_URL": "https://sqs.us-east-1.amazonaws.com/123456789012/delivery-dlq",
}


@pytest.fixture
def make_hook() -> Callable[..., Hook]:
    """Builds an active hook subscribed to every type; keyword arguments override any field."""

    def make(**overrides: Any) -> Hook:
        fields: dict[str, Any] = {
            "account": "acct-1",
            "id": "hook-1",
            "url": "https://receiver.example.com/hooks/script.php",
            "events": ALL_EVENT_TYPES,
            "status": "active",
            "secret": SECRET,
            "verification_file": "smtpeter-00112233445566778899aabbccddeeff.txt",
            "verification_contents": "contents-token",
            "validation_id": "val-1",
        }
        fields.update(overrides)
        return Hook.model_validate(fields)

    return make


@pytest.fixture
def sample_events() -> dict[str, dict[str, Any]]:
    """events/platform_events.json by type: one event of each of the ten types."""
    return {event["type"]: event for event in sample_event("platform_events.json")["events"]}


class _FrozenDatetime(datetime):
    @classmethod
    def now(cls, tz: Any = None) -> _FrozenDatetime:
        return cls(2026, 11, 23, 10, 2, 3, 456789, tzinfo=UTC)


@pytest.fixture
def frozen_now(monkeypatch: pytest.MonkeyPatch) -> None:
    """Events without timestamp and time get 2026-11-23 10:02:03.456789 UTC as their moment."""
    monkeypatch.setattr(events, "datetime", _FrozenDatetime)


@pytest.fixture
def env() -> dict[str, str]:
    return dict(REQUIRED_ENV)


class Clock:
    """A clock the test moves by hand: `clock.now += ttl`."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now
