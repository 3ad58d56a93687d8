"""What the management API accepts and answers; also the source of its OpenAPI document.

Every model says `defer_build=True`: its schema is built when a request first needs it, so a cold
start builds what the one route it serves uses, not all nineteen models (the error models below
only describe the hand-written error answers of functions/api/app.py in the OpenAPI document).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationInfo, field_validator

from webhooks.encoding import Format
from webhooks.errors import worded
from webhooks.event_types import EventType
from webhooks.hooks import Hook, HookStatus, ValidationCheck
from webhooks.verification import locations

MAX_URL_LENGTH = 2048
MAX_EVENTS_PER_REQUEST = 500

Url = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=MAX_URL_LENGTH)]
# Database and collection ids of the platform: numbers or short names; stored as text.
Ref = (
    Annotated[
        str,
        StringConstraints(pattern=worded(r"^[A-Za-z0-9_.-]{1,64}$", "1-64 letters, digits, '_', '.' or '-'")),
    ]
    | Annotated[int, Field(ge=0)]
)
Description = Annotated[str, StringConstraints(max_length=1000)]
RateLimit = Annotated[int, Field(ge=1, le=10_000, description="Deliveries per second the receiver accepts")]
EventList = Annotated[
    list[EventType], Field(min_length=1, max_length=len(EventType), json_schema_extra={"uniqueItems": True})
]


class BatchOptions(BaseModel, defer_build=True):
    """Several events per POST, as a JSON array of `{"id", "event"}` objects (JSON hooks only)."""

    model_config = ConfigDict(extra="forbid")

    max_events: Annotated[int, Field(ge=2, le=100, description="Events per POST at most")]
    max_wait_seconds: Annotated[
        int, Field(ge=0, le=300, description="Wait at most this long to fill a batch")
    ] = 10


def _unique(events: list[EventType] | None) -> list[EventType] | None:
    if events is not None and len(set(events)) != len(events):
        raise ValueError("event types must not repeat")
    return events


class HookCreate(BaseModel, defer_build=True):
    model_config = ConfigDict(extra="forbid")

    url: Url
    events: EventList
    database: Ref | None = None
    collection: Ref | None = None
    format: Format = Format.FORM
    description: Description | None = None
    rate_limit: RateLimit | None = None
    batch: BatchOptions | None = None

    _events_unique = field_validator("events")(_unique)

    @field_validator("batch")
    @classmethod
    def _batching(cls, batch: BatchOptions | None, info: ValidationInfo) -> BatchOptions | None:
        if batch is not None and info.data.get("format") is not Format.JSON:
            raise ValueError("batching needs format json (a batch is a JSON array)")
        return batch


class HookUpdate(BaseModel, defer_build=True):
    """Only the fields sent change. `null` clears what may be absent (database, collection, description,
    rate_limit, batch); url, events, format and status cannot be null."""

    model_config = ConfigDict(extra="forbid")

    # Defaults of None without None in the type: leaving a field out keeps it, sending null is refused.
    url: Url = None  # type: ignore[assignment]
    events: EventList = None  # type: ignore[assignment]
    database: Ref | None = None
    collection: Ref | None = None
    format: Format = None  # type: ignore[assignment]
    description: Description | None = None
    rate_limit: RateLimit | None = None
    batch: BatchOptions | None = Field(default=None, description="null turns batching off")
    status: Literal["active", "disabled"] = Field(
        default=None,  # type: ignore[arg-type]
        description="`disabled` pauses deliveries; `active` resumes them (re-validating if needed)",
    )

    _events_unique = field_validator("events")(_unique)


class VerificationView(BaseModel, defer_build=True):
    file_name: str
    contents: str
    urls: list[str] = Field(description="Put the file at one of these")


class PaceView(BaseModel, defer_build=True):
    """How the hook is served right now: learned from its receiver's answers (adaptive flow control)."""

    window: float = Field(description="POSTs allowed in flight at once")
    rate_per_second: float | None = Field(description="deliveries a second; null before the first answer")
    baseline_ms: float | None = Field(description="the receiver's own latency when it keeps up")
    breaker: Literal["closed", "open"] = Field(description="open: the receiver seems down; deliveries wait")
    next_probe_at: float | None = Field(description="while open: when one delivery next tries it (Unix s)")


class HookView(BaseModel, defer_build=True):
    id: str
    url: str
    events: list[EventType]
    database: str | None
    collection: str | None
    format: Format
    description: str | None
    status: HookStatus
    disabled_reason: str | None
    rate_limit: int | None
    batch: BatchOptions | None
    verification: VerificationView
    last_check: ValidationCheck | None = Field(
        default=None,
        description="What the latest check for the verification file saw, per place; absent before the first",
    )
    next_check_at: int | None = Field(
        default=None,
        description="When the next check runs (Unix seconds); absent when none is scheduled",
    )
    created_at: int
    updated_at: int
    # What the delivery function already tracks, so a list shows failing hooks without reading the log.
    failing_since: int | None = Field(
        default=None, description="Deliveries have failed since then (Unix seconds); absent once one succeeds"
    )
    pace: PaceView | None = Field(default=None, description="on GET /hooks/{id} only")

    @classmethod
    def of(cls, hook: Hook, pace: dict[str, Any] | None = None) -> HookView:
        batch = (
            BatchOptions(max_events=hook.batch_max_events, max_wait_seconds=hook.batch_max_wait)
            if hook.batch_max_events
            else None
        )
        return cls(
            **hook.model_dump(include=set(cls.model_fields) - {"verification", "batch", "pace"}),
            batch=batch,
            pace=PaceView.model_validate(pace) if pace is not None else None,
            verification=VerificationView(
                file_name=hook.verification_file,
                contents=hook.verification_contents,
                urls=locations(hook.url, hook.verification_file),
            ),
        )


class HookCreated(HookView, defer_build=True):
    secret: str = Field(description="Signing secret (Standard Webhooks `whsec_…`); shown only now")

    @classmethod
    def of_secret(cls, hook: Hook) -> HookCreated:
        return cls(**HookView.of(hook).model_dump(), secret=hook.secret)


class HookList(BaseModel, defer_build=True):
    hooks: list[HookView]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; absent on the last")


class SecretView(BaseModel, defer_build=True):
    secret: str
    previous_secret_expires_at: int | None = Field(
        default=None, description="Until then the previous secret signs too (both signatures are sent)"
    )


class EventsIn(BaseModel, defer_build=True):
    model_config = ConfigDict(extra="forbid")

    events: Annotated[list[dict[str, Any]], Field(min_length=1, max_length=MAX_EVENTS_PER_REQUEST)]


class EventsAccepted(BaseModel, defer_build=True):
    accepted: int
    event_ids: list[str]


class TestIn(BaseModel, defer_build=True):
    model_config = ConfigDict(extra="forbid")

    data: dict[str, Any] = Field(description="Posted as is, in the hook's format, signed like any delivery")


class TestResult(BaseModel, defer_build=True):
    delivery_id: str
    status: int | None
    duration_ms: int
    body: str | None = Field(description="The receiver's answer, truncated")
    error: str | None


class AttemptView(BaseModel, defer_build=True):
    delivery_id: str
    event_id: str | None = None
    type: str | None = None
    attempt: int
    attempt_of: int | None = Field(default=None, description="the attempts the retry schedule allows")
    at: float = Field(description="Unix seconds")
    attempted_at: str = Field(description="the same moment, RFC 3339 (UTC)")
    outcome: str = Field(
        description="succeeded | retrying | failed | delayed (busy because of our own pace: tried again "
        "later, the attempt not counted)"
    )
    next_attempt_at: str | None = Field(default=None, description="retrying or delayed: when, RFC 3339 (UTC)")
    run: int = Field(default=0, description="0: the first delivery; n: its n-th replay")
    # The log omits what an attempt did not have: no status without an answer, no error on success.
    status: int | None = None
    duration_ms: int | None = None
    error: str | None = None

    @classmethod
    def of(cls, row: dict[str, Any]) -> AttemptView:
        at = float(row["at"])
        next_at = row.get("next_at")
        return cls.model_validate(
            {
                **row,
                "at": at,
                "attempted_at": rfc3339(at),
                "attempt_of": row.get("of"),
                "next_attempt_at": None if next_at is None else rfc3339(float(next_at)),
            }
        )


def rfc3339(moment: float) -> str:
    """`2026-11-23T10:02:03.456Z`: what a person reads, and what every language parses."""
    return datetime.fromtimestamp(moment, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class AttemptList(BaseModel, defer_build=True):
    attempts: list[AttemptView]
    next_cursor: str | None


class ReplayIn(BaseModel, defer_build=True):
    model_config = ConfigDict(extra="forbid")

    since: Annotated[int, Field(ge=0)] | None = Field(default=None, description="Unix seconds, inclusive")
    until: Annotated[int, Field(ge=0)] | None = Field(default=None, description="Unix seconds, exclusive")


class ReplayResult(BaseModel, defer_build=True):
    replayed: int


class FieldError(BaseModel, defer_build=True):
    field: str
    reason: str


class ErrorBody(BaseModel, defer_build=True):
    code: str
    message: str
    fields: list[FieldError] = []


class ErrorResponse(BaseModel, defer_build=True):
    error: ErrorBody
