"""Proving a URL is the customer's: a random file they publish next to their script or at the web root."""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass
from enum import StrEnum
from urllib.parse import urljoin, urlsplit, urlunsplit

from webhooks import safe_http

MAX_SAME_HOST_REDIRECTS = 3


@dataclass(frozen=True)
class VerificationFile:
    file_name: str
    contents: str


class Outcome(StrEnum):
    VALID = "valid"
    MISSING = "missing"


def new_file(prefix: str) -> VerificationFile:
    # 128 bits in the name, a different 256 bits in the contents: knowing one reveals nothing of the other.
    return VerificationFile(
        file_name=f"{prefix}-{secrets.token_hex(16)}.txt", contents=secrets.token_urlsafe(32)
    )


def locations(hook_url: str, file_name: str) -> list[str]:
    """The directory of the hook script, then the web root (one URL when they are the same)."""
    parts = urlsplit(hook_url)
    directory = parts.path.rsplit("/", 1)[0] + "/" if "/" in parts.path else "/"
    urls = [
        urlunsplit((parts.scheme, parts.netloc, directory + file_name, "", "")),
        urlunsplit((parts.scheme, parts.netloc, "/" + file_name, "", "")),
    ]
    return list(dict.fromkeys(urls))


def _fetch(url: str, policy: safe_http.OutboundPolicy) -> safe_http.Response:
    origin = urlsplit(url)[:2]
    for _ in range(MAX_SAME_HOST_REDIRECTS + 1):
        response = safe_http.request("GET", url, policy=policy)
        location = response.headers.get("location")
        if response.status not in (301, 302, 303, 307, 308) or not location:
            return response
        target = urljoin(url, location)
        # A redirect may move the file on the same server, never to another one.
        if urlsplit(target)[:2] != origin:
            return response
        url = target
    return response


def check(hook_url: str, file: VerificationFile, policy: safe_http.OutboundPolicy) -> tuple[Outcome, str]:
    """Looks for the file in both places; returns the outcome and, on a miss, why (for the customer)."""
    reasons = []
    for url in locations(hook_url, file.file_name):
        try:
            response = _fetch(url, policy)
        except safe_http.OutboundError as exc:  # an UnsafeUrl included
            reasons.append(f"{url}: {exc}")
            continue
        if not 200 <= response.status < 300:
            reasons.append(f"{url}: HTTP {response.status}")
            continue
        body = response.body.decode("utf-8", errors="replace").strip()
        if hmac.compare_digest(body.encode(), file.contents.encode()):
            return Outcome.VALID, url
        reasons.append(f"{url}: contents do not match")
    return Outcome.MISSING, "; ".join(reasons)
