"""Returned mail in the local stack: an SMTP listener on 127.0.0.1 (aiosmtpd) that stores each message
where SES would, in the local (moto) bucket, whose notification puts it on the template's returned-mail
queue; the poller of that queue runs the same function as on AWS.

The bucket (with its notification), the queue and the secret are the template's: `create_intake` reads
them from it. The return-path secret and domain of the local stack come from
`WEBHOOKS_RETURN_PATH_SECRET` and `WEBHOOKS_RETURN_PATH_DOMAIN` (fixed defaults, so `make return-path`
works without a running stack); the listener's port from `WEBHOOKS_SMTP_PORT`.
"""

from __future__ import annotations

import asyncio
import logging
import os
import uuid
from collections.abc import Mapping
from email.utils import formatdate
from typing import Any

import boto3
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

from devstack.template import REGION, Stack

logger = logging.getLogger("devstack.smtp")

DEFAULT_SMTP_PORT = 2525
DEFAULT_DOMAIN = "bounces.localhost"
# Not a secret: it keys the local stack's return paths only. Deployed stacks generate theirs.
DEFAULT_SECRET = "local-return-path-secret"
# SES takes messages up to 40 MB.
MAX_MESSAGE_BYTES = 40 * 1024 * 1024
# Where the SES receipt rule stores mail (its S3Action's ObjectKeyPrefix).
KEY_PREFIX = "mail/"


def secret(environ: Mapping[str, str] = os.environ) -> str:
    return environ.get("WEBHOOKS_RETURN_PATH_SECRET") or DEFAULT_SECRET


def domain(environ: Mapping[str, str] = os.environ) -> str:
    return (environ.get("WEBHOOKS_RETURN_PATH_DOMAIN") or DEFAULT_DOMAIN).lower()


def port(environ: Mapping[str, str] = os.environ) -> int:
    raw = environ.get("WEBHOOKS_SMTP_PORT") or str(DEFAULT_SMTP_PORT)
    if not raw.isdigit() or not 0 < int(raw) <= 65535:
        raise ValueError(f"WEBHOOKS_SMTP_PORT={raw!r}: must be a port number")
    return int(raw)


def stack_overrides(environ: Mapping[str, str] = os.environ) -> dict[str, str]:
    """The template parameters that deploy the intake locally."""
    return {"ReturnPathDomain": domain(environ)}


def _logical_id(stack: Stack, kind: str) -> str:
    [found] = [k for k, r in stack.template["Resources"].items() if r["Type"] == kind]
    return found


def create_intake(stack: Stack, *, secret_value: str, endpoint_url: str | None = None) -> str:
    """Creates the template's return-path secret and returned-mail bucket (with its notification to
    the queue) on moto; returns the bucket's name."""
    session = boto3.Session(region_name=REGION)
    secret_id = _logical_id(stack, "AWS::SecretsManager::Secret")
    session.client("secretsmanager", endpoint_url=endpoint_url).create_secret(
        Name=stack.physical[secret_id]["Ref"], SecretString=secret_value
    )
    bucket_id = _logical_id(stack, "AWS::S3::Bucket")
    bucket = stack.physical[bucket_id]["Ref"].lower()  # S3 names are lowercase
    stack.physical[bucket_id]["Ref"] = bucket
    s3 = session.client("s3", endpoint_url=endpoint_url)
    s3.create_bucket(Bucket=bucket)
    notification = stack.resolve(
        stack.template["Resources"][bucket_id]["Properties"]["NotificationConfiguration"]
    )
    s3.put_bucket_notification_configuration(
        Bucket=bucket,
        NotificationConfiguration={
            "QueueConfigurations": [
                {
                    "QueueArn": q["Queue"],
                    "Events": [q["Event"]],
                    "Filter": {"Key": {"FilterRules": q["Filter"]["S3Key"]["Rules"]}},
                }
                for q in notification["QueueConfigurations"]
            ]
        },
    )
    return bucket


class _StoreInBucket:
    """aiosmtpd handler: takes mail for the return-path domain only, as the SES receipt rule does,
    and stores each message once, with a Received header naming its recipients as SES's does."""

    def __init__(self, s3: Any, bucket: str, domain: str) -> None:
        self.s3 = s3
        self.bucket = bucket
        self.domain = domain

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, rcpt_options: list[str]
    ) -> str:
        if not address.lower().endswith("@" + self.domain):
            return "550 5.1.1 mailbox unavailable: not a return path of this stack"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        received = (
            f"Received: from {session.host_name or 'unknown'} ({session.peer[0]})\r\n"
            f" by smtp.{self.domain} (webhooks local stack) with SMTP id {uuid.uuid4().hex}\r\n"
            f" for {', '.join(envelope.rcpt_tos)}; {formatdate(usegmt=True)}\r\n"
        ).encode()
        content = envelope.original_content or b""
        key = f"{KEY_PREFIX}{uuid.uuid4().hex}"
        loop = asyncio.get_running_loop()
        try:
            await loop.run_in_executor(
                None, lambda: self.s3.put_object(Bucket=self.bucket, Key=key, Body=received + content)
            )
        except Exception:  # the sender keeps the mail and tries again, as with any MTA
            logger.exception("could not store returned mail")
            return "451 4.3.0 could not store the message, try again later"
        logger.info("returned mail stored as s3://%s/%s (%d bytes)", self.bucket, key, len(content))
        return "250 2.0.0 stored"


class SmtpListener:
    def __init__(self, bucket: str, *, port: int, domain: str, endpoint_url: str | None = None) -> None:
        s3 = boto3.Session(region_name=REGION).client("s3", endpoint_url=endpoint_url)
        self.port = port
        self.controller = Controller(
            _StoreInBucket(s3, bucket, domain),
            hostname="127.0.0.1",
            port=port,
            data_size_limit=MAX_MESSAGE_BYTES,
        )

    def start(self) -> SmtpListener:
        self.controller.start()
        return self

    def stop(self) -> None:
        self.controller.stop()
