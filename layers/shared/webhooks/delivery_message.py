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
    # The slot on its hook's timeline it was delayed to by flow control (webhooks.health): back then,
    # it is sent in its turn instead of taking a new one.
    slot_at: float | None = None
    # It waited behind its hook's open breaker: its schedule's span then bounds when it is given up.
    waited: bool = False
    # 0 for the first delivery, n for its n-th replay: the log tells the runs apart.
    run: int = Field(default=0, ge=0)

    @property
    def group(self) -> str:
        """Its fair-queue group: one per hook, so that one hook's backlog never holds up another's."""
        return f"{self.account}#{self.hook_id}"

    def to_body(self) -> str:
        return self.model_dump_json()
