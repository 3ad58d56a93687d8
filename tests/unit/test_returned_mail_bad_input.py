"""Hostile and broken returned mail: no exception, bounded work, and the bounce event always."""

from __future__ import annotations

import base64
import io
import zipfile

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.unit.test_returned_mail_parser import SAMPLES, sample
from webhooks.events import parse_event
from webhooks.returned_mail.intake import events_for
from webhooks.returned_mail.parser import MAX_RECIPIENTS, parse


def _bounce_still_made(raw: bytes) -> list[dict[str, object]]:
    events = events_for(raw, message_id="msg-1", envelope="rp@bounces.example.com")
    assert events[0]["type"] in ("bounce", "abuse")
    for event in events:
        parse_event(event)
    return events


def _dsn(recipients: int) -> bytes:
    blocks = "".join(
        f"Final-Recipient: rfc822; user{i}@example.net\r\nAction: failed\r\nStatus: 5.1.1\r\n"
        f"Diagnostic-Code: smtp; 550 5.1.1 user{i} unknown\r\n\r\n"
        for i in range(recipients)
    )
    return (
        "From: MAILER-DAEMON@mx.example.net\r\nTo: rp@bounces.example.com\r\nSubject: Undelivered\r\n"
        "MIME-Version: 1.0\r\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="b"\r\n\r\n'
        "--b\r\nContent-Type: text/plain\r\n\r\nSorry.\r\n"
        "--b\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.example.net\r\n\r\n"
        f"{blocks}--b--\r\n"
    ).encode()


def test_a_dsn_with_1000_recipients_gives_each_one() -> None:
    events = _bounce_still_made(_dsn(1000))

    failures = [e for e in events if e["type"] == "failure"]
    assert len(failures) == 1000
    assert failures[999]["recipient"] == "user999@example.net"


def test_recipients_beyond_the_cap_are_dropped_not_a_crash() -> None:
    report = parse(_dsn(MAX_RECIPIENTS + 50))

    assert len(report.failures) == MAX_RECIPIENTS


def test_deep_nesting_of_message_rfc822_is_cut_off() -> None:
    raw = sample("lhost-yahoo-01.eml")
    for _ in range(500):
        raw = b"From: a@example.com\r\nContent-Type: message/rfc822\r\n\r\n" + raw

    _bounce_still_made(raw)


def test_deeply_nested_multiparts_are_cut_off() -> None:
    body = b"text"
    for depth in range(300):
        body = (
            f'Content-Type: multipart/mixed; boundary="b{depth}"\r\n\r\n--b{depth}\r\n'.encode()
            + body
            + f"\r\n--b{depth}--\r\n".encode()
        )

    _bounce_still_made(b"From: MAILER-DAEMON@example.com\r\nSubject: failure\r\n" + body)


def test_a_30_mb_message_is_parsed_within_its_cap() -> None:
    raw = sample("lhost-sendmail-01.eml") + b"A" * (30 * 1024 * 1024)

    events = _bounce_still_made(raw)

    assert [e["type"] for e in events] == ["bounce", "failure"]
    assert events[1]["extended"] == "5.1.1"


def test_a_zip_attached_is_ignored() -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("invoice.txt", "550 5.1.1 nobody@example.org unknown " * 1000)
    zipped = buffer.getvalue()

    raw = (
        b"From: MAILER-DAEMON@mx.example.net\r\nSubject: Undelivered Mail\r\nMIME-Version: 1.0\r\n"
        b'Content-Type: multipart/mixed; boundary="z"\r\n\r\n--z\r\nContent-Type: text/plain\r\n\r\n'
        b"<jane@example.org>: host mx said: 550 5.1.1 unknown user\r\n"
        b"--z\r\nContent-Type: application/zip\r\nContent-Transfer-Encoding: base64\r\n\r\n"
        + base64.encodebytes(zipped)
        + b"--z--\r\n"
    )

    events = _bounce_still_made(raw)

    assert [(e["type"], e.get("recipient")) for e in events[1:]] == [("failure", "jane@example.org")]


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"\x00\xff" * 5000,
        bytes(range(256)) * 200,
        b"Subject: \xff\xfe\x80 broken\r\nFrom: \xc3\x28@\xa0\xa1\r\n\r\n\xff body",
        b'Content-Type: text/plain; charset="no-such-charset"\r\nFrom: postmaster@x.example\r\n\r\n'
        b"<a@example.org>: 550 5.1.1 unknown\r\n",
        b'Content-Type: multipart/report; boundary="never"\r\n\r\n'
        b"--never\r\nContent-Type: message/delivery-status\r\n",
        b"Content-Type: message/delivery-status\r\nContent-Transfer-Encoding: base64\r\n\r\n!!!not base64!!!",
        b"From: x\r\n" * 10000,
    ],
    ids=[
        "empty",
        "binary",
        "all-bytes",
        "8bit-headers",
        "unknown-charset",
        "unclosed-multipart",
        "bad-base64",
        "many-headers",
    ],
)
def test_broken_input_still_gives_its_bounce_event(raw: bytes) -> None:
    _bounce_still_made(raw)


def test_an_unknown_charset_is_read_as_latin1() -> None:
    raw = (
        b'Content-Type: text/plain; charset="no-such-charset"\r\nFrom: postmaster@x.example\r\n'
        b"Subject: Undeliverable\r\n\r\n<a@example.org>: 550 5.1.1 unknown\r\n"
    )

    assert [(f.recipient, f.extended) for f in parse(raw).failures] == [("a@example.org", "5.1.1")]


_SAMPLE_BYTES = [p.read_bytes() for p in sorted(SAMPLES.glob("*.eml"))]


@st.composite
def _mutated_sample(draw: st.DrawFn) -> bytes:
    raw = bytearray(draw(st.sampled_from(_SAMPLE_BYTES)))
    for _ in range(draw(st.integers(0, 8))):
        at = draw(st.integers(0, max(len(raw) - 1, 0)))
        action = draw(st.sampled_from(["flip", "cut", "insert", "dup"]))
        if action == "flip" and raw:
            raw[at] = draw(st.integers(0, 255))
        elif action == "cut":
            del raw[at : at + draw(st.integers(1, 2000))]
        elif action == "insert":
            raw[at:at] = draw(st.binary(max_size=64))
        else:
            raw[at:at] = raw[at : at + draw(st.integers(1, 500))]
    return bytes(raw)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_mutated_sample())
def test_mutated_samples_never_raise_and_give_valid_events(raw: bytes) -> None:
    _bounce_still_made(raw)
