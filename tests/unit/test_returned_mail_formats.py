"""Returned-mail formats the shared samples do not teach, each on a message written from the format's
description (Sisimai's Lhost modules, RFC 3463): the parser must recognise formats, not files."""

from __future__ import annotations

import pytest

from webhooks.returned_mail.parser import parse


def message(headers: str, body: str) -> bytes:
    return (headers.strip("\n") + "\n\n" + body.lstrip("\n")).replace("\n", "\r\n").encode()


def from_daemon(subject: str, body: str) -> bytes:
    """A notice from a MAILER-DAEMON to the sender."""
    return message(f"From: MAILER-DAEMON@mx.example.org\nTo: sender@example.org\nSubject: {subject}\n", body)


FORMATS = {
    # MailMarshal states the error once, above the recipients it concerns.
    "mailmarshal: the error above its recipients": (
        message(
            """
From: postmaster@mail.example.com
To: sender@example.org
Subject: Undeliverable Mail: "Hello"
""",
            """
Your message:
   From:    sender@example.org
   Subject: Hello

Could not be delivered because of

550 5.7.1 Message rejected as spam

The following recipients were affected:
    kijitora@example.jp
    mikeneko@example.jp

Additional Information
======================

Original Sender:    <sender@example.org>
Reporting-MTA:      <MailMarshal>
""",
        ),
        [("kijitora@example.jp", 550, "5.7.1"), ("mikeneko@example.jp", 550, "5.7.1")],
    ),
    # Verizon's vtext gateway: "Error: 550 - ..." opens the notice, the recipient is in the recap.
    "verizon: a reply code opening the notice": (
        message(
            """
From: post_master@vtext.com
To: sender@example.org
Subject: Undeliverable Message
""",
            """
Error: 550 - Requested action not taken: no such user here

Original Message:
 RCPT TO: 5555550100@vtext.com
 MAIL FROM: sender@example.org
""",
        ),
        [("5555550100@vtext.com", 550, None)],
    ),
    # Verizon's picture-message gateway names the recipient only in its recap of the message.
    "verizon: the recipient in the notice's recap": (
        message(
            """
From: sysadmin@mms.vzwpix.example
To: sender@example.org
Subject: Undeliverable Message
""",
            """
Message could not be delivered to mobile.
Error: No valid recipients for this MM
To: 5555550100@vzwpix.example
From: sender@example.org
Subject: Hello
""",
        ),
        [("5555550100@vzwpix.example", None, "5.1.1")],
    ),
    # Exchange's text NDR writes "#550 5.1.10" under "Diagnostic information for administrators".
    "exchange: '#' before the reply code": (
        message(
            """
From: postmaster@ex.example.com
To: sender@example.org
Subject: Undeliverable: Hello
""",
            """
Delivery has failed to these recipients or groups:

kijitora@example.jp
The e-mail address you entered couldn't be found.

Diagnostic information for administrators:

Generating server: ex.example.com

kijitora@example.jp
#550 5.1.10 RESOLVER.ADR.RecipientNotFound; Recipient not found by SMTP address lookup ##
""",
        ),
        [("kijitora@example.jp", 550, "5.1.10")],
    ),
    # RFC 3463 calls the 4.x.x class "persistent transient failure".
    "a persistent transient failure is temporary": (
        from_daemon(
            "Undelivered Mail",
            """
Delivery to the following recipient is failing:

kijitora@example.jp
   persistent transient failure: mailbox busy
""",
        ),
        [("kijitora@example.jp", None, "4.0.0")],
    ),
    # Postfix names the alias a recipient was expanded from: not a second recipient.
    "postfix: 'expanded from' is the same recipient": (
        message(
            """
From: MAILER-DAEMON@mx.example.org (Mail Delivery System)
To: sender@example.org
Subject: Undelivered Mail Returned to Sender
""",
            """
This is the mail system at host mx.example.org.

I'm sorry to have to inform you that your message could not
be delivered to one or more recipients. It's attached below.

<kijitora@example.jp> (expanded from <sales@example.org>): host
    mx.example.jp[192.0.2.1] said: 550 5.1.1 <kijitora@example.jp>: Recipient
    address rejected: User unknown (in reply to RCPT TO command)
""",
        ),
        [("kijitora@example.jp", 550, "5.1.1")],
    ),
    # Whom to write to for help is no recipient.
    "a contact address is no recipient": (
        from_daemon(
            "Undeliverable mail",
            """
Your message could not be delivered to the following recipient:

kijitora@example.jp: 550 5.1.1 User unknown

If you have questions, please contact postmaster@example.org or write to help@example.org.
""",
        ),
        [("kijitora@example.jp", 550, "5.1.1")],
    ),
    # A reply code that ends its line, in a message with CRLF line ends (as mail travels).
    "a reply code at the end of a CRLF line": (
        from_daemon(
            "Undeliverable mail",
            """
Your message could not be delivered.

<kijitora@example.jp>: the remote server answered 550
""",
        ),
        [("kijitora@example.jp", 550, None)],
    ),
    # A version number is no status: a status's subject is one digit.
    "a version number is no status": (
        from_daemon(
            "Undeliverable mail",
            """
Your message could not be delivered.

<kijitora@example.jp>: mx.example.jp (Exim 4.94.2) said: 550 Unknown user
""",
        ),
        [("kijitora@example.jp", 550, None)],
    ),
    # fml, a mailing-list manager, refuses a post: the list's address failed.
    "fml: a loop alert": (
        message(
            """
From: cats-admin@ml.example.jp
To: cats-admin@ml.example.jp
Subject: Loop Alert: Duplicated Message-ID (cats ML)
Message-Id: <201704292334.FML00002.cats@ml.example.jp>
X-MLServer: fml [fml 4.0.3 release (20011202/4.0.3)]
""",
            """
Duplicated Message-ID in <cats@ml.example.jp>.

Original mail as follows:

   From: <sironeko@example.org>
   To: <cats@ml.example.jp>
""",
        ),
        [("cats@ml.example.jp", None, "5.4.6")],
    ),
    "fml: a post from a non-member": (
        message(
            """
From: cats-admin@ml.example.jp
To: sironeko@example.org
Subject: NOT MEMBER article from sironeko@example.org (cats ML)
Message-Id: <201704292334.FML00001.cats@ml.example.jp>
X-MLServer: fml [fml 4.0.3 release (20011202/4.0.3)]
""",
            """
You are not a member of this mailing list <cats@ml.example.jp>.

Original mail as follows:

   From: <sironeko@example.org>
""",
        ),
        [("cats@ml.example.jp", None, "5.7.1")],
    ),
}


@pytest.mark.parametrize("name", sorted(FORMATS))
def test_a_format_gives_its_failed_recipients_code_and_status(name: str) -> None:
    raw, expected = FORMATS[name]

    report = parse(raw)

    assert report.kind == "failure"
    assert [(f.recipient, f.code, f.extended) for f in report.failures] == expected


def test_a_mailing_list_message_that_refuses_nothing_is_no_failure() -> None:
    raw = message(
        """
From: cats-admin@ml.example.jp
To: sironeko@example.org
Subject: Welcome to cats ML
X-MLServer: fml [fml 4.0.3 release (20011202/4.0.3)]
""",
        """
Welcome! You are now a member of the cats mailing list <cats@ml.example.jp>.
""",
    )

    report = parse(raw)

    assert report.failures == []


def test_a_number_in_a_notice_s_opening_is_no_reply_code() -> None:
    # Only a code with its status, or a code opening a line, is the notice's statement of the error.
    raw = from_daemon(
        "Returned mail: see transcript for details",
        """
The message was received from port 465 at 10:20.

   ----- The following addresses had permanent fatal errors -----
kijitora@example.jp
""",
    )

    report = parse(raw)

    assert [(f.recipient, f.code, f.extended) for f in report.failures] == [
        ("kijitora@example.jp", None, "5.0.0")
    ]


def test_a_notice_in_russian_is_recognised_by_its_encoded_subject() -> None:
    # Subject "Недоставленное сообщение" (undelivered message) as an RFC 2047 encoded word; no English.
    raw = message(
        """
From: =?utf-8?b?0J/QvtGH0YLQvtCy0YvQuSDRgNC+0LHQvtGC?= <robot@mail.example.ru>
To: sender@example.org
Subject: =?utf-8?b?0J3QtdC00L7RgdGC0LDQstC70LXQvdC90L7QtSDRgdC+0L7QsdGJ0LXQvdC40LU=?=
Content-Type: text/plain; charset=utf-8
""",
        """
Ваше сообщение не может быть доставлено:

ivan@example.ru
    550 5.1.1 Пользователь не найден
""",
    )

    report = parse(raw)

    assert [(f.recipient, f.code, f.extended) for f in report.failures] == [("ivan@example.ru", 550, "5.1.1")]


@pytest.mark.parametrize(
    "subject",
    [
        "=?utf-8?q?Automatische_Antwort=3A_Delivery_problem?=",  # German, encoded
        "=?utf-8?b?6Ieq5Yqo5Zue5aSNOiBEZWxpdmVyeSBwcm9ibGVt?=",  # Chinese: 自动回复: Delivery problem
        "Re: Delivery problem",  # a person's reply
        "Fwd: Undeliverable parcel",  # a person's forward
    ],
)
def test_an_auto_reply_or_a_person_s_reply_with_bounce_words_is_no_failure(subject: str) -> None:
    raw = message(
        f"""
From: Jane Doe <jane@example.de>
To: sender@example.org
Subject: {subject}
Content-Type: text/plain; charset=utf-8
""",
        """
Thanks for your mail. For anything urgent, my colleague: office@example.de
""",
    )

    report = parse(raw)

    assert report.failures == []


def test_a_complaint_without_an_arf_part_is_abuse() -> None:
    # Hotmail's JMRP: no message/feedback-report, the complained-of mail attached as message/rfc822.
    raw = message(
        """
From: staff@hotmail.com
To: complaints@example.org
Subject: complaint about message from 192.0.2.10
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="jmrp"
""",
        """
--jmrp
Content-Type: text/plain; charset=us-ascii

This is an email abuse report for an email message received from IP 192.0.2.10.

--jmrp
Content-Type: message/rfc822

From: sender@example.org
To: jane@hotmail.example
Subject: Our offers
Message-ID: <offer-1@example.org>

Buy now.
--jmrp--
""",
    )

    report = parse(raw)

    assert report.kind == "abuse"
    assert report.failures == []
    assert report.complainant == "jane@hotmail.example"
    assert report.original_message_id == "<offer-1@example.org>"


def test_an_html_notice_keeps_one_line_per_recipient() -> None:
    # An HTML-only notice: each recipient's code stands before it, on its own paragraph; what the
    # style sheet says is not text.
    raw = message(
        """
From: postmaster@mail.example.com
To: sender@example.org
Subject: Undeliverable: Hello
Content-Type: text/html; charset=utf-8
""",
        "<html><head><style>p { margin: 450px; } /* by ops@example.net */</style></head><body>"
        "<p>Your message could not be delivered to these recipients:</p>"
        "<p>550 5.1.1 &lt;kijitora@example.jp&gt;: User unknown</p>"
        "<p>552 5.2.2 &lt;mikeneko@example.jp&gt;: Mailbox full</p>"
        "</body></html>",
    )

    report = parse(raw)

    assert [(f.recipient, f.code, f.extended) for f in report.failures] == [
        ("kijitora@example.jp", 550, "5.1.1"),
        ("mikeneko@example.jp", 552, "5.2.2"),
    ]


SENDMAIL_TRANSCRIPT = """
From: Mail Delivery Subsystem <MAILER-DAEMON@mx.example.org>
To: sender@example.org
Subject: Returned mail: Remote protocol error

   ----- Transcript of session follows -----
While talking to mx.example.jp:
>>> {command}
<<< {reply}
554 <kijitora@example.jp>... Remote protocol error
554 <mikeneko@example.net>... 550 Host unknown (Authoritative answer from name server)

   ----- Unsent message follows -----
"""


@pytest.mark.parametrize(
    ("command", "reply", "first"),
    [
        # The host's reply to DATA is the recipient's code; sendmail's "554 ..." is its own summary.
        ("DATA", "552 5.3.4 Message too big for this host", (552, "5.3.4")),
        # A reply to MAIL is about the sender: then sendmail's summary of each recipient stands.
        ("MAIL From:<sender@example.org>", "501 5.1.7 Bad sender address", (554, None)),
    ],
)
def test_a_sendmail_transcript_gives_the_host_s_reply_over_sendmail_s_summary(
    command: str, reply: str, first: tuple[int, str | None]
) -> None:
    headers, body = SENDMAIL_TRANSCRIPT.format(command=command, reply=reply).split("\n\n", 1)

    report = parse(message(headers, body))

    assert [(f.recipient, f.code, f.extended) for f in report.failures] == [
        ("kijitora@example.jp", *first),
        # The summary that quotes a code of its own keeps it.
        ("mikeneko@example.net", 550, None),
    ]


def test_a_person_s_mail_with_bounce_words_and_a_recap_is_no_failure() -> None:
    # The recap's "To:" names a recipient only in a message whose sender or subject says it is a bounce.
    raw = message(
        """
From: Jane Doe <jane@example.de>
To: sender@example.org
Subject: Our parcel
""",
        """
Your parcel could not be delivered, the courier says.

To: bob@example.de
Subject: parcel
""",
    )

    report = parse(raw)

    assert report.failures == []


def test_a_read_receipt_is_no_failure() -> None:
    # RFC 8098: "deleted without being read" is what the reader did, not a failed delivery.
    raw = message(
        """
From: Mail System <postmaster@example.jp>
To: sender@example.org
Subject: Not read: Hello
MIME-Version: 1.0
Content-Type: multipart/report; report-type=disposition-notification; boundary="mdn"
""",
        """
--mdn
Content-Type: text/plain

Your message to kijitora@example.jp was deleted without being read; delivery failed to reach the reader.

--mdn
Content-Type: message/disposition-notification

Reporting-UA: mail.example.jp; Webmail
Final-Recipient: rfc822; kijitora@example.jp
Disposition: manual-action/MDN-sent-manually; deleted

--mdn--
""",
    )

    report = parse(raw)

    assert report.failures == []
    assert report.kind == "other"


@pytest.mark.parametrize(
    "header",
    ["X-Apple-Action: vacation", "Precedence: auto_reply", "X-Auto-Response-Suppress: OOF, AutoReply"],
)
def test_an_auto_reply_known_by_its_headers_is_no_failure(header: str) -> None:
    # An auto-reply whose subject is the original's and whose text has a bounce's words.
    raw = message(
        f"""
From: Jane Doe <jane@example.de>
To: sender@example.org
Subject: Your order
{header}
""",
        """
I am away until Monday and my mailbox is full. Mail Bob: bob@example.de
""",
    )

    report = parse(raw)

    assert report.failures == []
    assert report.kind == "autoreply"


@pytest.mark.parametrize("action", ["undeliverable", "bounced", "rejected"])
def test_a_dsn_action_some_mtas_write_instead_of_failed_is_a_failure(action: str) -> None:
    raw = message(
        """
From: Mail Delivery System <MAILER-DAEMON@mx.example.org>
To: sender@example.org
Subject: Notice
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status; boundary="dsn"
""",
        f"""
--dsn
Content-Type: text/plain

See the report below.

--dsn
Content-Type: message/delivery-status

Reporting-MTA: dns; mx.example.org

Final-Recipient: rfc822; kijitora@example.jp
Action: {action}
Status: 5.2.2
Diagnostic-Code: smtp; 552 5.2.2 Mailbox full

--dsn--
""",
    )

    report = parse(raw)

    assert [(f.recipient, f.code, f.extended) for f in report.failures] == [
        ("kijitora@example.jp", 552, "5.2.2")
    ]


@pytest.mark.parametrize(
    ("words", "status"),
    [
        # Exim's and Sisimai's wordings without a code, read as RFC 3463 says.
        ("Mailaddress is administratively disabled", "5.2.1"),
        ("This account has been suspended", "5.2.1"),
        ("an MX or SRV record indicated no SMTP service", "5.1.10"),
        ("malformed address: @ may not follow <jane", "5.1.3"),
        ("user not found", "5.1.1"),
        ('Too many "Received" headers - suspected mail loop', "5.4.6"),
    ],
)
def test_a_notice_s_words_say_the_status_when_it_carries_none(words: str, status: str) -> None:
    raw = message(
        """
From: Mail Delivery System <Mailer-Daemon@mx.example.org>
To: sender@example.org
Subject: Mail delivery failed: returning message to sender
""",
        f"""
This message was created automatically by mail delivery software.

A message that you sent could not be delivered to one or more of its
recipients. This is a permanent error. The following address(es) failed:

  kijitora@example.jp
    {words}
""",
    )

    report = parse(raw)

    assert [(f.recipient, f.code, f.extended) for f in report.failures] == [
        ("kijitora@example.jp", None, status)
    ]
