"""The dashboard: its page and assets (functions/dashboard/static/), wiring only."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from webhooks.dashboard import Assets

logger = Logger()
assets = Assets(Path(__file__).resolve().parent / "static")


@logger.inject_lambda_context(
    correlation_id_path=correlation_paths.API_GATEWAY_REST, log_event=False, clear_state=True
)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return assets.answer(event)
