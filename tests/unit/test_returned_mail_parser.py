"""The returned-mail parser on real samples, one or more per format family (tests/samples/returned_mail,
from Sisimai's set-of-emails, BSD 2-clause: LICENSE beside them)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from webhooks.returned_mail.parser import parse

SAMPLES = Path(__file__).resolve().parents[1] / "samples" / "returned_mail"


def sample(name: str) -> bytes:
    return (SAMPLES / name).read_bytes()


# file → the failed recipients as (recipient, reply code, RFC 3463 status), in order.
FAILURES = {
    # RFC 3464 DSNs
    "lhost-sendmail-01.eml": [("userunknown@bouncehammer.jp", 550, "5.1.1")],
    "rhost-aol-03.eml": [("sabineko@example.jp", 550, "5.2.2"), ("mikeneko@example.jp", 550, "5.1.1")],
    "rfc3464-07.eml": [("kijitora@example.net", None, "4.4.0")],  # delayed: a transient failure
    "lhost-outlook-01.eml": [("kijitora@example.jp", 550, "5.2.2")],
    "lhost-postfix-03.eml": [("kijitora@example.net", 550, "5.0.0")],
    "lhost-opensmtpd-11.eml": [
        ("authfailure@libsisimai.net", 550, "5.7.26")
    ],  # the text's status beats 5.0.0
    # expired (x.4.7): the cause the diagnostic or the notice tells
    "lhost-amazonses-17.eml": [("kijitora@example.com", 421, "4.4.2")],
    "lhost-exchange2007-05.eml": [("gwang1@student.mlcsyd.nsw.edu.au", 441, "4.4.1")],
    # DSN fields written in the text of a multipart/report without its boundary
    "lhost-messagingserver-03.eml": [
        ("sabineko@example.org", 550, "5.7.1"),
        ("mikeneko@example.org", 550, "5.7.1"),
    ],
    # Amazon SES's JSON notification
    "lhost-amazonses-07.eml": [("6@neko.nyaan.example.org", 550, "5.7.6")],
    # notices without a DSN
    "lhost-yahoo-01.eml": [("kijitora@example.org", 550, "5.1.1")],  # qmail-like
    "lhost-qmail-05.eml": [("kijitora@example.net", None, "4.4.3")],
    "lhost-exim-05.eml": [("kijitora@neko.example.co.jp", 553, "5.1.1")],
    "lhost-gmail-05.eml": [("shironeko@example.jp", 550, "5.7.1")],
    "lhost-gmail-07.eml": [("kijitora@example.ed.jp", 500, None)],
    "lhost-zoho-01.eml": [("kijitora@example.co.jp", 550, "5.1.1")],
    "lhost-dragonfly-01.eml": [("pseudo-local-part@google.example.com", 550, "5.7.26")],
    "lhost-v5sendmail-01.eml": [("kijitora@example.com", 421, None)],  # the recipient from the copy's To
    # no code at all: the words say what happened
    "lhost-exchange2003-03.eml": [("kijitora@example.jp", None, "5.1.1")],
    "lhost-notes-01.eml": [("kijitora@u1.example.co.jp", None, "5.0.0")],
}


@pytest.mark.parametrize(("name", "expected"), sorted(FAILURES.items()))
def test_failed_recipients_are_found_with_code_and_status(
    name: str, expected: list[tuple[str, int | None, str | None]]
) -> None:
    report = parse(sample(name))

    assert report.kind == "failure"
    assert [(f.recipient, f.code, f.extended) for f in report.failures] == expected
    assert all(f.description for f in report.failures)


@pytest.mark.parametrize(
    ("name", "complainant"),
    [
        ("arf-17.eml", "kijitora@example.com"),
        ("arf-25.eml", "hashed@example.com"),
        ("lhost-amazonses-11.eml", "complaint@simulator.amazonses.com"),  # SES complaint, JSON
    ],
)
def test_feedback_reports_are_abuse_not_failures(name: str, complainant: str) -> None:
    report = parse(sample(name))

    assert report.kind == "abuse"
    assert report.complainant == complainant
    assert report.failures == []


@pytest.mark.parametrize("name", ["rfc3834-01.eml", "rfc3834-05.eml"])
def test_auto_replies_are_not_failures(name: str) -> None:
    report = parse(sample(name))

    assert report.kind == "autoreply"
    assert report.failures == []


def test_ordinary_mail_is_not_a_failure() -> None:
    raw = (
        b"From: Jane <jane@example.com>\r\nTo: news@example.org\r\nSubject: Re: your newsletter\r\n\r\n"
        b"Thanks! I could not find user unknown settings, 550 people read it.\r\n"
    )

    report = parse(raw)

    assert report.kind == "other"
    assert report.failures == []


def test_a_dsn_reporting_delivery_is_no_failure() -> None:
    raw = (
        sample("lhost-sendmail-01.eml")
        .replace(b"Action: failed", b"Action: delivered")
        .replace(b"Status: 5.1.1", b"Status: 2.0.0")
    )

    report = parse(raw)

    assert report.kind == "delivered"
    assert report.failures == []
    assert [d.recipient for d in report.delivered] == ["userunknown@bouncehammer.jp"]


@pytest.mark.parametrize("action", [b"relayed", b"expanded"])
def test_relayed_and_expanded_dsns_make_no_failure(action: bytes) -> None:
    raw = (
        sample("lhost-sendmail-01.eml")
        .replace(b"Action: failed", b"Action: " + action)
        .replace(b"Status: 5.1.1", b"Status: 2.0.0")
    )

    report = parse(raw)

    assert report.failures == []


def test_a_notice_in_another_language_is_recognised_by_its_subject_and_code() -> None:
    raw = (
        "From: Systemverwalter <admin@mail.example.de>\r\nTo: rp@bounces.example.com\r\n"
        "Subject: Nicht zustellbar: Angebot\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
        "Ihre Nachricht konnte nicht zugestellt werden an:\r\n\r\n"
        "max@example.de\r\n    550 5.1.1 Empfänger unbekannt\r\n"
    ).encode()

    report = parse(raw)

    assert [(f.recipient, f.code, f.extended) for f in report.failures] == [("max@example.de", 550, "5.1.1")]


def test_an_ses_delivery_notification_is_a_delivery_not_a_failure() -> None:
    notification = {
        "notificationType": "Delivery",
        "mail": {"messageId": "x", "destination": ["jane@example.com"]},
        "delivery": {"recipients": ["jane@example.com"], "smtpResponse": "250 2.6.0 Message received"},
    }
    raw = (
        "From: no-reply@sns.amazonaws.com\r\nSubject: AWS Notification Message\r\n\r\n"
        + json.dumps(notification)
    ).encode()

    report = parse(raw)

    assert report.kind == "delivered"
    assert report.failures == []
    assert [(d.recipient, d.code, d.extended) for d in report.delivered] == [
        ("jane@example.com", 250, "2.6.0")
    ]
