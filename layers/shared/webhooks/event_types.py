"""The event type names: the value of an event's `type` and of a hook's `events` list.

Apart from events.py (the models of every type), so that what only needs the names (hooks,
the delivery function) does not build every event model at cold start.
"""

from __future__ import annotations

from enum import StrEnum


class EventType(StrEnum):
    CLICK = "click"
    OPEN = "open"
    BOUNCE = "bounce"
    FAILURE = "failure"
    DELIVERY = "delivery"
    CREATE = "create"
    UPDATE = "update"
    DELETE = "delete"
    UNSUBSCRIBE = "unsubscribe"
    ABUSE = "abuse"
