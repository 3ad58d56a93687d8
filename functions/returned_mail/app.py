"""Returned-mail queue (S3 notifications of mail stored by SES) -> bounce, failure and abuse events
on the ingest queue, for the account the return path names. Partial batch failures: a record whose
message cannot be read or queued comes back, then goes to the dead-letter queue."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from webhooks.queues import QueueRecord
from webhooks.returned_mail.service import ReturnedMail, SecretsManagerSecret, fetch_from_s3, metrics
from webhooks.settings import get_settings

logger = Logger()
settings = get_settings()
returned_mail = ReturnedMail(
    fetch=fetch_from_s3,
    secret=SecretsManagerSecret(settings.return_path_secret_id),
    domain=settings.return_path_domain,
    ingest_queue_url=settings.ingest_queue_url,
)


@metrics.log_metrics
@logger.inject_lambda_context(log_event=False, clear_state=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return returned_mail.process([QueueRecord.of(record) for record in event["Records"]])
