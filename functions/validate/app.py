"""The UrlValidation state machine's task: look for the verification file once.

The machine itself marks the hook active or validation_failed (a conditional DynamoDB update).
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from webhooks.hook_store import HookStore
from webhooks.settings import get_settings
from webhooks.url_validation import CheckInput, check

logger = Logger()
settings = get_settings()
store = HookStore(settings.hooks_table)


@logger.inject_lambda_context(log_event=False, clear_state=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    request = CheckInput.model_validate(event)
    logger.append_keys(hook_id=request.hook_id, validation_id=request.validation_id)
    return check(request, settings, store)
