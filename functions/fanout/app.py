"""Ingest queue -> one delivery message per (event, subscribed active hook)."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from webhooks.fanout import Fanout
from webhooks.hook_store import HookStore
from webhooks.queues import QueueRecord
from webhooks.settings import get_settings

logger = Logger()
settings = get_settings()
fanout = Fanout(HookStore(settings.hooks_table), settings.delivery_queue_url)


@logger.inject_lambda_context(log_event=False, clear_state=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return fanout.process([QueueRecord.of(record) for record in event["Records"]])
