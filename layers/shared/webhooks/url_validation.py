"""One check of the UrlValidation state machine, and the final status it leads to.

The state machine owns the waiting (Wait states cost nothing while they wait); this task only
looks for the file once and tells the machine what to do next.
"""

from __future__ import annotations

import time
from typing import Any

from aws_lambda_powertools import Logger
from pydantic import BaseModel, ConfigDict, Field

from webhooks import verification
from webhooks.errors import NotFound
from webhooks.hook_store import HookStore
from webhooks.hooks import HookStatus
from webhooks.outbound_policy import OutboundPolicy
from webhooks.settings import Settings

logger = Logger(child=True)


class CheckInput(BaseModel):
    model_config = ConfigDict(extra="ignore")

    account: str
    hook_id: str
    validation_id: str
    attempt: int = Field(ge=0)


def check(request: CheckInput, settings: Settings, store: HookStore) -> dict[str, Any]:
    """Returns the state for the machine: `outcome` (valid | missing | stale), and on a miss the next
    `wait_seconds` or `exhausted`."""
    base = request.model_dump()
    try:
        hook = store.get(request.account, request.hook_id)
    except NotFound:
        return {**base, "outcome": "stale", "exhausted": True}
    if hook.validation_id != request.validation_id or hook.status is not HookStatus.PENDING_VALIDATION:
        return {**base, "outcome": "stale", "exhausted": True}

    policy = OutboundPolicy(allow_http=settings.allow_http, allow_private=settings.allow_private)
    file = verification.VerificationFile(hook.verification_file, hook.verification_contents)
    outcome, detail = verification.check(hook.url, file, policy)
    logger.info(
        "verification file checked",
        extra={
            "hook_id": hook.id,
            "attempt": request.attempt + 1,
            "outcome": outcome.value,
            "detail": detail,
        },
    )
    schedule = settings.validation_schedule
    next_attempt = request.attempt + 1
    exhausted = outcome is not verification.Outcome.VALID and next_attempt >= len(schedule)
    return {
        **base,
        "attempt": next_attempt,
        "outcome": outcome.value,
        "detail": detail,
        "exhausted": exhausted,
        "checked_at": str(int(time.time())),  # a DynamoDB number, as the machine passes it on
        "wait_seconds": 0 if exhausted or outcome is verification.Outcome.VALID else schedule[next_attempt],
    }
