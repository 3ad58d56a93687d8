"""Delivery queue -> signed POSTs to the hooks' URLs, with retries, throttling and dead-lettering."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from webhooks.delivery import Deliverer, metrics
from webhooks.queues import QueueRecord
from webhooks.settings import get_settings

logger = Logger()
deliverer = Deliverer(get_settings())


@metrics.log_metrics
@logger.inject_lambda_context(log_event=False, clear_state=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return deliverer.process([QueueRecord.of(record) for record in event["Records"]])
