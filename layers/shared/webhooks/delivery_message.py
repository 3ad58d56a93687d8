"""A delivery: one event to one hook, as it travels through the delivery queue."""

from __future__ import annotations

import time

from pydantic import BaseModel, ConfigDict, Field


class DeliveryMessage(BaseModel):
    model_config = ConfigDict(extra="ignore")

    delivery_id: str
    event_id: str
    account: str
    hook_id: str
    type: str
    payload: dict[str, object]
    # Attempts made before this message was (re)sent: a delivery delayed by throttling is sent
    # again as a new message, whose receive count starts over.
    attempts: int = Field(default=0, ge=0)
    created_at: float = Field(default_factory=time.time)

    def to_body(self) -> str:
        return self.model_dump_json()
