"""The events one returned message makes, in order: its `bounce` (always), a `failure` per failed
recipient, a `delivery` per recipient a DSN reports delivered, or its `abuse` for a feedback report.

The `bounce` and `abuse` events carry the whole message as `mime` when it fits the event size limit
(`MAX_MIME_BYTES` of JSON); a larger one is cut there and ends with `TRUNCATED_MARKER` saying how much of
it was kept, so the event still fits `ingest.MAX_EVENT_BYTES` and is never refused.
"""

from __future__ import annotations

import json
from email.utils import getaddresses
from typing import Any

from webhooks.returned_mail.parser import Report, parse

# What a bounce's `mime` may take, JSON-encoded: the event's other fields fit in the rest of the
# 320 KiB an event may have (ingest.MAX_EVENT_BYTES), and the model's own cap is 262,144 characters.
MAX_MIME_BYTES = 240 * 1024
TRUNCATED_MARKER = "\n\n[truncated by the webhooks service: {kept} of {total} bytes kept]\n"
# A bounce whose recipient cannot be told still needs one (the event model asks for 3 characters).
UNKNOWN_RECIPIENT = "unknown"
MAX_ADDRESS_CHARS = 320


def mime_of(raw: bytes) -> str:
    """The message as text for an event: whole when it fits, else cut with `TRUNCATED_MARKER`."""
    # Every byte of the message is at least one byte of its JSON: a longer one cannot fit, and only
    # its head is decoded (a 30 MB message is not turned into a 30 MB string to be cut).
    text = raw[: MAX_MIME_BYTES + 1].decode("utf-8", errors="replace")
    if len(raw) <= MAX_MIME_BYTES and len(_json(text)) <= MAX_MIME_BYTES:
        return text
    budget = MAX_MIME_BYTES - 200
    kept = text[:budget]
    # JSON escapes can make a character up to 6 bytes (control characters, in junk): halve until it fits.
    while len(_json(kept)) > budget:
        kept = kept[: len(kept) // 2]
    return kept + TRUNCATED_MARKER.format(kept=len(kept.encode("utf-8", errors="replace")), total=len(raw))


def _json(text: str) -> bytes:
    return json.dumps(text, ensure_ascii=False).encode("utf-8", errors="replace")


def _usable(address: str) -> bool:
    """An address an event may carry (the event models' bounds); what a mangled notice yields beyond them
    ('--', a line of junk) names nobody."""
    return 3 <= len(address) <= MAX_ADDRESS_CHARS


def events_for(
    raw: bytes, *, message_id: str, envelope: str, report: Report | None = None
) -> list[dict[str, Any]]:
    """The producer-shaped events (as `POST /events` takes them) for one returned message.

    `message_id` is the original message's id (from the return path), `envelope` the return path the
    message came back to."""
    report = parse(raw) if report is None else report
    mime = mime_of(raw)
    if report.kind == "abuse":
        complainant = report.complainant or _first_address(raw) or UNKNOWN_RECIPIENT
        return [{"type": "abuse", "id": message_id, "emailfrom": complainant, "mime": mime}]
    named = [f.recipient for f in (*report.failures, *report.delivered) if _usable(f.recipient)]
    first = named[0] if named else None
    events: list[dict[str, Any]] = [
        {
            "type": "bounce",
            "id": message_id,
            "recipient": first or UNKNOWN_RECIPIENT,
            "envelope": envelope,
            "mime": mime,
        }
    ]
    for failure in report.failures:
        if not _usable(failure.recipient):  # junk, not an address anyone was sent to
            continue
        event: dict[str, Any] = {
            "type": "failure",
            "id": message_id,
            "recipient": failure.recipient,
            "action": "failed",
            "state": "bounce",
        }
        if failure.code is not None:
            event["code"] = failure.code
        if failure.extended is not None:
            event["extended"] = failure.extended
        if failure.description:
            event["description"] = failure.description
        events.append(event)
    for delivered in report.delivered:
        if not _usable(delivered.recipient):
            continue
        events.append(
            {
                "type": "delivery",
                "id": message_id,
                "recipient": delivered.recipient,
                "code": delivered.code if delivered.code is not None else 250,
                "extended": delivered.extended or "2.0.0",
                "description": delivered.description,
            }
        )
    return events


def _first_address(raw: bytes) -> str | None:
    # The reporter's own From, when a feedback report names no complainant.
    head = raw[:16384].decode("utf-8", errors="replace")
    for line in head.splitlines():
        if line.lower().startswith("from:"):
            for _, address in getaddresses([line[5:]]):
                if "@" in address:
                    return address.lower()
    return None
