"""The dashboard's files, served by its own function through the API (same origin as the API, so no CORS
and the bearer token goes nowhere else).

Every answer carries the security headers: a strict Content-Security-Policy (our own scripts and styles
only, no inline script, no eval, no framing), nosniff and no referrer.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self'",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    )
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    # Without file hashes in the names, a browser must ask again so that a deploy shows at once.
    "Cache-Control": "no-cache",
}
CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
}
INDEX = "index.html"


class Assets:
    """The files of one folder (not its subfolders), read once and kept in memory: a warm function
    answers without touching the disk. Only names listed in the folder are served, so a path cannot
    climb out of it."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._files: dict[str, bytes] | None = None

    def files(self) -> dict[str, bytes]:
        if self._files is None:
            self._files = {
                path.name: path.read_bytes()
                for path in sorted(self.folder.iterdir())
                if path.is_file() and path.suffix in CONTENT_TYPES
            }
        return self._files

    def answer(self, event: dict[str, Any]) -> dict[str, Any]:
        """The API Gateway proxy answer for `GET /` (the page) or `GET /dashboard/{asset}`."""
        name = ((event.get("pathParameters") or {}).get("asset")) or INDEX
        if event.get("resource") == "/":
            # The page's links are relative: at `…/dev` (no slash) they would resolve outside the stage.
            seen = str((event.get("requestContext") or {}).get("path") or "/")
            if not seen.endswith("/"):
                return _answer(308, {"Location": seen + "/"}, "")
        body = self.files().get(name)
        if body is None:
            error = {"error": {"code": "not_found", "message": f"no file {name}", "fields": []}}
            return _answer(404, {"Content-Type": "application/json"}, json.dumps(error))
        return _answer(200, {"Content-Type": CONTENT_TYPES[Path(name).suffix]}, body.decode())


def _answer(status: int, headers: dict[str, str], body: str) -> dict[str, Any]:
    return {"statusCode": status, "headers": {**SECURITY_HEADERS, **headers}, "body": body}
