"""Platform events: the types a hook subscribes to and exactly the fields POSTed for each.

A producer sends `{"type": ..., <fields>, "database"?, "collection"?}`. Each type has one model
that forbids unknown fields, fills `timestamp`/`time` from each other (or from the clock), and
knows which of its fields are posted, in the original product's order. `database` and
`collection` on mail events only route the event to hooks filtered on them; on profile events
they are part of the payload as well.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, ClassVar, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, StrictInt, ValidationError, model_validator
from pydantic_core import InitErrorDetails

from webhooks.errors import worded
from webhooks.event_types import EventType as EventType  # re-exported: the types belong with their models

TIMESTAMP_FORMAT = "%Y-%m-%d %H:%M:%S"
# Unix seconds an event's `time` may take (1970 up to the year 3000); `timestamp` is held to the same.
MAX_TIME = 32_503_680_000


Text = Annotated[str, Field(max_length=2048)]
LongText = Annotated[str, Field(max_length=65_536)]
# Whole MIME messages; the event as a whole is also capped (see ingest.MAX_EVENT_BYTES).
Mime = Annotated[str, Field(max_length=262_144)]
Ref = Annotated[StrictInt | Annotated[str, Field(min_length=1, max_length=64)], Field()]
Tags = Annotated[list[Annotated[str, Field(max_length=256)]], Field(max_length=100)]
Timestamp = Annotated[
    str, Field(pattern=worded(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$", "YYYY-MM-DD HH:MM:SS (UTC)"))
]
Scalar = StrictInt | float | bool | str | None


class _Event(BaseModel):
    # defer_build: a type's schema is built when the first event of that type arrives (parse_event
    # dispatches on `type` itself), not at import: a cold start builds the one or two types its
    # batch holds, not all ten, and the bases never.
    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)

    # Fields posted to receivers, in order; subclasses may add conditional ones in posted_fields().
    POSTED: ClassVar[tuple[str, ...]]

    timestamp: Timestamp | None = None
    time: Annotated[StrictInt, Field(ge=0, le=MAX_TIME)] | None = None

    @model_validator(mode="after")
    def _fill_times(self) -> _Event:
        if self.time is None and self.timestamp is None:
            moment = datetime.now(UTC).replace(microsecond=0)
        elif self.time is not None:
            moment = datetime.fromtimestamp(self.time, UTC)
            if self.timestamp is not None and self.timestamp != moment.strftime(TIMESTAMP_FORMAT):
                raise ValueError("timestamp and time disagree; send one of them or both for the same moment")
        else:
            assert self.timestamp is not None
            try:
                moment = datetime.strptime(self.timestamp, TIMESTAMP_FORMAT).replace(tzinfo=UTC)
            except ValueError as exc:
                raise ValueError(f"timestamp is not a valid date and time: {exc}") from None
            if not 0 <= moment.timestamp() <= MAX_TIME:
                raise ValueError("timestamp must lie between 1970-01-01 00:00:00 and 3000-01-01 00:00:00")
        object.__setattr__(self, "timestamp", moment.strftime(TIMESTAMP_FORMAT))
        object.__setattr__(self, "time", int(moment.timestamp()))
        return self

    def posted_fields(self) -> tuple[str, ...]:
        return self.POSTED

    def payload(self) -> dict[str, Any]:
        """The event exactly as receivers get it."""
        values = self.model_dump()
        return {name: values[name] for name in self.posted_fields() if values.get(name) is not None}

    @property
    def routing(self) -> tuple[str | None, str | None]:
        """(database, collection) used to match hooks filtered on them."""
        database = getattr(self, "database", None)
        collection = getattr(self, "collection", None)
        return (
            None if database is None else str(database),
            None if collection is None else str(collection),
        )


class _MailEvent(_Event):
    id: Annotated[str, Field(min_length=1, max_length=255)]
    recipient: Annotated[str, Field(min_length=3, max_length=320)]
    tags: Tags = []
    # Routing only: not posted for mail events.
    database: Ref | None = None
    collection: Ref | None = None


class ClickEvent(_MailEvent):
    POSTED = (
        "id",
        "type",
        "timestamp",
        "time",
        "recipient",
        "ip",
        "original",
        "useragent",
        "referer",
        "tags",
    )
    type: Literal["click"]
    original: Annotated[str, Field(min_length=1, max_length=8192)]
    ip: Annotated[str, Field(max_length=45)] = ""
    useragent: Text = ""
    referer: Text = ""


class OpenEvent(_MailEvent):
    POSTED = ("id", "type", "timestamp", "time", "recipient", "ip", "useragent", "referer", "tags")
    type: Literal["open"]
    ip: Annotated[str, Field(max_length=45)] = ""
    useragent: Text = ""
    referer: Text = ""


class BounceEvent(_MailEvent):
    POSTED = ("id", "type", "timestamp", "time", "recipient", "envelope", "mime", "tags")
    type: Literal["bounce"]
    envelope: Text
    mime: Mime


class FailureEvent(_MailEvent):
    POSTED = (
        "id", "type", "timestamp", "time", "recipient", "action", "state",
        "code", "extended", "description", "tags",
    )  # fmt: skip
    type: Literal["failure"]
    action: Literal["failure", "failed"]
    state: Annotated[str, Field(min_length=1, max_length=64)]
    code: StrictInt | None = None
    extended: Annotated[str, Field(max_length=32)] | None = None
    description: LongText | None = None


class DeliveryEvent(_MailEvent):
    POSTED = ("id", "type", "timestamp", "time", "recipient", "code", "extended", "description", "tags")
    type: Literal["delivery"]
    code: StrictInt
    extended: Annotated[str, Field(max_length=32)] = ""
    description: LongText = ""


class _ProfileEvent(_Event):
    profile: Ref
    database: Ref
    subprofile: Ref | None = None
    collection: Ref | None = None
    fields: Annotated[dict[Annotated[str, Field(max_length=255)], Scalar], Field(max_length=1000)] = {}

    @model_validator(mode="after")
    def _subprofile_has_collection(self) -> _ProfileEvent:
        if (self.subprofile is None) != (self.collection is None):
            raise ValueError("subprofile and collection go together: a subprofile event has both")
        return self

    @property
    def is_subprofile(self) -> bool:
        return self.subprofile is not None


class _ProfileChangeEvent(_ProfileEvent):
    parameters: Annotated[dict[Annotated[str, Field(max_length=255)], Any], Field(max_length=1000)] = {}
    created: Timestamp
    modified: Timestamp
    interests: Annotated[list[Annotated[str, Field(max_length=255)]], Field(max_length=1000)] | None = None

    @model_validator(mode="after")
    def _no_interests_on_subprofiles(self) -> _ProfileChangeEvent:
        if self.is_subprofile and self.interests is not None:
            raise ValueError("subprofile events have no interests")
        return self

    def posted_fields(self) -> tuple[str, ...]:
        common = ("type", "parameters", "timestamp", "time", "profile")
        if self.is_subprofile:
            return (*common, "subprofile", "database", "collection", "created", "modified", "fields")
        return (*common, "database", "created", "modified", "fields", "interests")

    def payload(self) -> dict[str, Any]:
        payload = super().payload()
        if not self.is_subprofile:
            payload.setdefault("interests", [])
        return payload


class CreateEvent(_ProfileChangeEvent):
    type: Literal["create"]


class UpdateEvent(_ProfileChangeEvent):
    type: Literal["update"]


class DeleteEvent(_ProfileEvent):
    type: Literal["delete"]

    def posted_fields(self) -> tuple[str, ...]:
        if self.is_subprofile:
            return ("type", "timestamp", "time", "profile", "subprofile", "database", "collection", "fields")
        return ("type", "timestamp", "time", "profile", "database", "fields")


class UnsubscribeEvent(_Event):
    POSTED = ("id", "type", "timestamp", "time", "database", "profile", "mailing")
    type: Literal["unsubscribe"]
    id: Annotated[str, Field(min_length=1, max_length=255)]
    database: Ref
    profile: Ref
    mailing: Ref


class AbuseEvent(_Event):
    POSTED = ("id", "type", "emailfrom", "mime")
    type: Literal["abuse"]
    id: Annotated[str, Field(min_length=1, max_length=255)]
    emailfrom: Annotated[str, Field(min_length=3, max_length=320)]
    mime: Mime
    database: Ref | None = None
    collection: Ref | None = None


PlatformEvent = (
    ClickEvent
    | OpenEvent
    | BounceEvent
    | FailureEvent
    | DeliveryEvent
    | CreateEvent
    | UpdateEvent
    | DeleteEvent
    | UnsubscribeEvent
    | AbuseEvent
)

_MODELS: dict[str, type[PlatformEvent]] = {
    get_args(model.model_fields["type"].annotation)[0]: model for model in get_args(PlatformEvent)
}
_EXPECTED_TAGS = ", ".join(f"'{tag}'" for tag in _MODELS)


def parse_event(data: Any) -> PlatformEvent:
    """Validates one producer event with its type's model; raises pydantic.ValidationError naming the
    field. A missing or unknown `type` gets the errors a discriminated union would give."""
    if not isinstance(data, dict):
        raise _error("model_attributes_type", data)
    if "type" not in data:
        raise _error("union_tag_not_found", data, discriminator="'type'")
    tag = data["type"]
    model = _MODELS.get(tag) if isinstance(tag, str) else None
    if model is None:
        raise _error(
            "union_tag_invalid", data, discriminator="'type'", tag=str(tag), expected_tags=_EXPECTED_TAGS
        )
    return model.model_validate(data)


def _error(kind: str, data: Any, **context: str) -> ValidationError:
    details: InitErrorDetails = {"type": kind, "loc": (), "input": data}
    if context:
        details["ctx"] = context
    return ValidationError.from_exception_data("PlatformEvent", [details])
