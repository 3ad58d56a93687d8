"""The events a returned message makes: bounce first, then a failure per failed recipient, or abuse."""

from __future__ import annotations

import json

from tests.unit.test_returned_mail_parser import sample
from webhooks.events import parse_event
from webhooks.ingest import MAX_EVENT_BYTES
from webhooks.returned_mail.intake import MAX_MIME_BYTES, TRUNCATED_MARKER, events_for, mime_of

RETURN_PATH = "b-acme.msg1.tag@bounces.example.com"


def test_a_bounce_comes_first_then_a_failure_per_recipient_in_order() -> None:
    raw = sample("rhost-aol-03.eml")

    events = events_for(raw, message_id="msg-1", envelope=RETURN_PATH)

    assert [e["type"] for e in events] == ["bounce", "failure", "failure"]
    bounce, first, second = events
    assert bounce == {
        "type": "bounce",
        "id": "msg-1",
        "recipient": "sabineko@example.jp",
        "envelope": RETURN_PATH,
        "mime": raw.decode(),
    }
    assert first["recipient"] == "sabineko@example.jp"
    assert (first["action"], first["state"], first["code"], first["extended"]) == (
        "failed",
        "bounce",
        550,
        "5.2.2",
    )
    assert "Mailbox Full" in first["description"]
    assert (second["recipient"], second["code"], second["extended"]) == ("mikeneko@example.jp", 550, "5.1.1")


def test_every_event_is_valid_as_post_events_takes_it() -> None:
    for name in ("rhost-aol-03.eml", "arf-17.eml", "rfc3834-01.eml", "lhost-notes-01.eml"):
        for event in events_for(sample(name), message_id="msg-1", envelope=RETURN_PATH):
            parse_event(event)  # raises on any field the models refuse


def test_a_feedback_report_makes_one_abuse_event() -> None:
    raw = sample("arf-17.eml")

    events = events_for(raw, message_id="msg-1", envelope=RETURN_PATH)

    assert events == [
        {"type": "abuse", "id": "msg-1", "emailfrom": "kijitora@example.com", "mime": raw.decode()}
    ]


def test_an_auto_reply_makes_only_its_bounce_event() -> None:
    events = events_for(sample("rfc3834-01.eml"), message_id="msg-1", envelope=RETURN_PATH)

    assert [e["type"] for e in events] == ["bounce"]


def test_a_delivered_dsn_makes_a_delivery_event() -> None:
    raw = (
        sample("lhost-sendmail-01.eml")
        .replace(b"Action: failed", b"Action: delivered")
        .replace(b"Status: 5.1.1", b"Status: 2.0.0")
    )

    events = events_for(raw, message_id="msg-1", envelope=RETURN_PATH)

    assert [e["type"] for e in events] == ["bounce", "delivery"]
    assert events[1]["recipient"] == "userunknown@bouncehammer.jp"
    assert events[1]["extended"] == "2.0.0"


def test_a_message_over_the_event_limit_is_cut_with_a_marker_and_still_accepted() -> None:
    raw = sample("rhost-aol-03.eml") + b"x" * (2 * MAX_EVENT_BYTES)

    events = events_for(raw, message_id="msg-1", envelope=RETURN_PATH)

    mime = events[0]["mime"]
    kept = mime[: mime.rindex("\n\n[truncated")]
    assert raw.decode().startswith(kept)
    assert mime == kept + TRUNCATED_MARKER.format(kept=len(kept.encode()), total=len(raw))
    assert len(json.dumps(events[0]).encode()) <= MAX_EVENT_BYTES
    parse_event(events[0])
    assert [e["type"] for e in events] == ["bounce", "failure", "failure"]  # recognised all the same


def test_control_characters_cannot_push_the_mime_over_the_limit() -> None:
    raw = bytes(range(32)) * 40_000  # each escapes to up to 6 bytes of JSON

    mime = mime_of(raw)

    assert len(json.dumps(mime, ensure_ascii=False).encode()) <= MAX_MIME_BYTES
    assert mime.endswith(f"of {len(raw)} bytes kept]\n")


def test_a_message_within_the_limit_is_whole() -> None:
    raw = sample("lhost-yahoo-01.eml")

    assert mime_of(raw) == raw.decode()
