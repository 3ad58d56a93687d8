"""Returned mail stored in S3 (by SES receiving, or the local stack's SMTP listener) → its events on the
ingest queue, for the account its return path names, exactly as `POST /events` queues them.

A message whose return path is missing, forged or altered is attributed to nobody: it delivers nothing,
stays in the bucket for operators (until the bucket's lifecycle expires it), is counted
(`UnattributedReturnedMail` EMF metric) and logged with its object key and the reason, never its
contents. Event ids derive from the object key, so a message handled twice (an SQS redelivery) gives
the same events, which receivers drop as repeats on `webhook-id`.
"""

from __future__ import annotations

import email.parser
import email.policy
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote_plus

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit

from webhooks import aws, ids, ingest
from webhooks.queues import QueueRecord, partial_response
from webhooks.returned_mail import return_path
from webhooks.returned_mail.intake import events_for
from webhooks.returned_mail.notices import ADDRESS

logger = Logger(child=True)
metrics = Metrics(namespace="Webhooks")

# Headers that carry the envelope recipient (the return path the mail came back to): SES and most MTAs
# write it in the first Received header's "for" clause; the others are there when the MTA adds them.
_ENVELOPE_HEADERS = ("Received", "Delivered-To", "X-Original-To", "X-Envelope-To", "To", "Cc")
MAX_HEADER_BYTES = 64 * 1024


@dataclass(frozen=True, slots=True)
class StoredMail:
    bucket: str
    key: str

    @property
    def where(self) -> str:
        return f"s3://{self.bucket}/{self.key}"


@dataclass(frozen=True, slots=True)
class Owner:
    account: str
    message: str
    address: str


class Unattributed(Exception):
    """Returned mail that no account's return path claims (missing, forged or altered)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def stored_mail(body: str) -> list[StoredMail]:
    """The objects an S3 event notification (an SQS message body) names; none for S3's test event."""
    document: Any = json.loads(body)
    found = []
    for record in document.get("Records", []) if isinstance(document, dict) else []:
        s3 = record.get("s3", {}) if isinstance(record, dict) else {}
        bucket = s3.get("bucket", {}).get("name")
        key = s3.get("object", {}).get("key")
        if (
            isinstance(bucket, str)
            and isinstance(key, str)
            and str(record.get("eventName", "")).startswith("ObjectCreated")
        ):
            found.append(StoredMail(bucket, unquote_plus(key)))  # S3 URL-encodes keys in notifications
    return found


def envelope_candidates(raw: bytes) -> list[str]:
    """Addresses the message's headers say it was delivered to, most telling first."""
    head = raw[:MAX_HEADER_BYTES].decode("utf-8", errors="replace")
    headers = email.parser.HeaderParser(policy=email.policy.compat32).parsestr(head, headersonly=True)
    found: list[str] = []
    for name in _ENVELOPE_HEADERS:
        for value in headers.get_all(name) or []:
            text = str(value)
            if name == "Received":
                text = text.split(" for ", 1)[1] if " for " in text else ""
            found.extend(m.group(0).lower() for m in ADDRESS.finditer(text))
    return list(dict.fromkeys(found))


def owner_of(raw: bytes, *, secret: bytes, domain: str) -> Owner:
    """The account and message whose return path the mail came back to; raises Unattributed."""
    candidates = envelope_candidates(raw)
    ours = [address for address in candidates if return_path.looks_like_one(address, domain)]
    for address in ours:
        read = return_path.read(address, secret=secret, domain=domain)
        if read is not None:
            return Owner(account=read[0], message=read[1], address=address)
    raise Unattributed("forged or altered return path" if ours else "no return path")


class ReturnedMail:
    """Handles the S3 notifications of one SQS record; dependencies are passed in, so tests and the
    local stack use the same code with their own S3."""

    def __init__(
        self,
        *,
        fetch: Callable[[StoredMail], bytes],
        secret: Callable[[], bytes],
        domain: str,
        ingest_queue_url: str,
    ) -> None:
        self._fetch = fetch
        self._secret = secret
        self._domain = domain
        self._queue_url = ingest_queue_url

    def handle_notification(self, body: str) -> None:
        for stored in stored_mail(body):
            self.handle(stored, self._fetch(stored))

    def process(self, records: list[QueueRecord]) -> dict[str, Any]:
        """A batch of the returned-mail queue: a record whose message cannot be read or queued comes back
        (partial batch failure), then goes to the dead-letter queue; the others are done.

        Not Powertools' BatchProcessor: its import (asyncio, every event class) would add ~75 ms to each
        cold start for what these lines do."""
        failed = []
        for record in records:
            try:
                self.handle_notification(record.body)
            except Exception:
                logger.exception("returned-mail record failed", extra={"message_id": record.message_id})
                failed.append(record.message_id)
        return partial_response(failed)

    def handle(self, stored: StoredMail, raw: bytes) -> list[str]:
        """Queues the message's events for its owner; returns their ids (none when unattributed)."""
        try:
            owner = owner_of(raw, secret=self._secret(), domain=self._domain)
        except Unattributed as exc:
            metrics.add_metric(name="UnattributedReturnedMail", unit=MetricUnit.Count, value=1)
            logger.warning(
                "returned mail attributed to nobody: kept, not delivered",
                extra={"object": stored.where, "reason": exc.reason, "bytes": len(raw)},
            )
            return []
        events = ingest.validate_events(events_for(raw, message_id=owner.message, envelope=owner.address))
        event_ids = [ids.keyed_id("evt", stored.where, str(index)) for index in range(len(events))]
        queued = ingest.enqueue(owner.account, events, self._queue_url, event_ids)
        metrics.add_metric(name="ReturnedMail", unit=MetricUnit.Count, value=1)
        logger.info(
            "returned mail queued",
            extra={
                "object": stored.where,
                "account": owner.account,
                "message_id": owner.message,
                "types": [event.type for event in events],
            },
        )
        return queued


def fetch_from_s3(stored: StoredMail) -> bytes:
    body: bytes = aws.client("s3").get_object(Bucket=stored.bucket, Key=stored.key)["Body"].read()
    return body


class SecretsManagerSecret:
    """The return-path secret, read from Secrets Manager on first use and kept for the process."""

    def __init__(self, secret_id: str) -> None:
        self._secret_id = secret_id
        self._value: bytes | None = None

    def __call__(self) -> bytes:
        if self._value is None:
            answer = aws.client("secretsmanager").get_secret_value(SecretId=self._secret_id)
            self._value = str(answer["SecretString"]).encode()
        return self._value
