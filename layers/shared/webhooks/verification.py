"""Proving a URL is the customer's: a random file they publish next to their script or at the web root."""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import urljoin, urlsplit, urlunsplit

from webhooks.hooks import LocationCheck
from webhooks.outbound_policy import OutboundError, OutboundPolicy

if TYPE_CHECKING:
    from webhooks.safe_http import Response

MAX_SAME_HOST_REDIRECTS = 3


@dataclass(frozen=True)
class VerificationFile:
    file_name: str
    contents: str


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


def _fetch(url: str, policy: OutboundPolicy) -> tuple[Response, str | None]:
    """The answer at `url`, following redirects on the same server; and why a redirect was not followed."""
    # Imported here: the API needs this module for the file's name and places only, and the HTTP
    # client with its framing library is ~50 ms of a cold start (the validation function has it warm).
    from webhooks import safe_http

    origin = urlsplit(url)[:2]
    for _ in range(MAX_SAME_HOST_REDIRECTS + 1):
        response = safe_http.request("GET", url, policy=policy)
        location = response.headers.get("location")
        if response.status not in (301, 302, 303, 307, 308) or not location:
            return response, None
        target = urljoin(url, location)
        # A redirect may move the file on the same server, never to another one.
        if urlsplit(target)[:2] != origin:
            return response, f"redirected to another host ({_origin(target)}), not followed"
        url = target
    return response, f"more than {MAX_SAME_HOST_REDIRECTS} redirects, not followed"


def _origin(url: str) -> str:
    scheme, netloc = urlsplit(url)[:2]
    return f"{scheme}://{netloc}"


def _look(url: str, file: VerificationFile, policy: OutboundPolicy) -> LocationCheck:
    try:
        response, refused = _fetch(url, policy)
    except OutboundError as exc:  # an UnsafeUrl included
        return LocationCheck(url=url, found=False, problem=str(exc))
    if refused:
        return LocationCheck(url=url, found=False, status=response.status, problem=refused)
    if not 200 <= response.status < 300:
        return LocationCheck(url=url, found=False, status=response.status, problem=f"HTTP {response.status}")
    body = response.body.decode("utf-8", errors="replace").strip()
    if hmac.compare_digest(body.encode(), file.contents.encode()):
        return LocationCheck(url=url, found=True, status=response.status)
    return LocationCheck(url=url, found=False, status=response.status, problem="contents differ")


def check(hook_url: str, file: VerificationFile, policy: OutboundPolicy) -> list[LocationCheck]:
    """Looks for the file in both places, the script's directory first; stops at the first that has it.
    Each place says what it answered and, on a miss, why (for the customer)."""
    seen = []
    for url in locations(hook_url, file.file_name):
        seen.append(_look(url, file, policy))
        if seen[-1].found:
            break
    return seen


def summary(seen: list[LocationCheck]) -> str:
    """One line of why the file was not found: every place and its problem."""
    return "; ".join(f"{place.url}: {place.problem}" for place in seen if not place.found)
