"""Returned mail in the local stack: an SMTP listener on 127.0.0.1 (aiosmtpd) that stores each message
where SES would, in the local (moto) bucket, whose notification puts it on the template's returned-mail
queue; the poller of that queue runs the same function as on AWS.

The return-path secret and domain of the local stack come from `WEBHOOKS_RETURN_PATH_SECRET` and
`WEBHOOKS_RETURN_PATH_DOMAIN` (fixed defaults, so `make return-path` works without a running stack).
"""

from __future__ import annotations

import os
from collections.abc import Mapping

DEFAULT_SMTP_PORT = 2525
DEFAULT_DOMAIN = "bounces.localhost"
# Not a secret: it keys the local stack's return paths only. Deployed stacks generate theirs.
DEFAULT_SECRET = "local-return-path-secret"


def secret(environ: Mapping[str, str] = os.environ) -> str:
    return environ.get("WEBHOOKS_RETURN_PATH_SECRET") or DEFAULT_SECRET


def domain(environ: Mapping[str, str] = os.environ) -> str:
    return (environ.get("WEBHOOKS_RETURN_PATH_DOMAIN") or DEFAULT_DOMAIN).lower()
