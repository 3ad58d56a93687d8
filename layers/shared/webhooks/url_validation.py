"""One check of the UrlValidation state machine, and the final status it leads to.

The state machine owns the waiting (Wait states cost nothing while they wait); this task only
looks for the file once and tells the machine what to do next.
"""

from __future__ import annotations

import time
from typing import Any

from aws_lambda_powertools import Logger
from botocore.exceptions import ClientError
from pydantic import BaseModel, ConfigDict, Field

from webhooks import verification
from webhooks.errors import NotFound
from webhooks.hook_store import HookStore
from webhooks.hooks import HookStatus, ValidationCheck
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
    seen = verification.check(hook.url, file, policy)
    found = any(place.found for place in seen)
    detail = next(place.url for place in seen if place.found) if found else verification.summary(seen)
    logger.info(
        "verification file checked",
        extra={"hook_id": hook.id, "attempt": request.attempt + 1, "found": found, "detail": detail},
    )
    now = int(time.time())
    schedule = settings.validation_schedule
    next_attempt = request.attempt + 1
    exhausted = not found and next_attempt >= len(schedule)
    wait_seconds = 0 if exhausted or found else schedule[next_attempt]
    last_check = ValidationCheck(at=now, attempt=next_attempt, found=found, locations=seen)
    next_check_at = None if found or exhausted else now + wait_seconds
    try:
        store.record_check(hook, last_check, next_check_at)
    except ClientError:
        # What the customer sees of the check is worth less than the check itself: carry on.
        logger.warning("the check could not be recorded on the hook", exc_info=True)
    result = {
        **base,
        "attempt": next_attempt,
        "outcome": "valid" if found else "missing",
        "detail": detail,
        "exhausted": exhausted,
        "checked_at": str(now),  # a DynamoDB number, as the machine passes it on
        "wait_seconds": wait_seconds,
    }
    if not found:
        # The machine writes this as the hook's disabled_reason when the checks are spent: the truth
        # of the last check, not a guess.
        result["reason"] = (
            f"validation failed after {next_attempt} checks; the last saw {detail}. Publish the file at "
            "one of the verification urls, then restart with POST /hooks/{id}/validate"
        )
    return result
