"""What a returned message says: which recipients failed, with what reply code, status and text.

Pure: bytes in, a `Report` out; never raises. Delivery Status Notifications (RFC 3464) are read with the
standard library's `email` package; feedback reports (ARF, RFC 5965) become abuse; auto-replies, success
reports and ordinary mail are recognised as what they are; the rest, when it looks like a bounce, is read
as a notice (`notices.py`). Time and memory are bounded: only the first `MAX_PARSE_BYTES` are parsed,
message/rfc822 nesting and the number of parts are capped, and so is the number of recipients.
"""

from __future__ import annotations

import email
import email.header
import email.parser
import email.policy
import html
import json
import re
from dataclasses import dataclass, field
from email.message import Message
from typing import Any, Literal

from webhooks.returned_mail import notices

MAX_PARSE_BYTES = 1024 * 1024
MAX_DEPTH = 8
MAX_PARTS = 200
MAX_RECIPIENTS = 1000
MAX_NOTICE_CHARS = 64 * 1024

Kind = Literal["failure", "abuse", "autoreply", "delivered", "other"]


@dataclass(frozen=True, slots=True)
class Failure:
    recipient: str
    code: int | None
    extended: str | None
    description: str


@dataclass(slots=True)
class Report:
    kind: Kind = "other"
    failures: list[Failure] = field(default_factory=list)
    delivered: list[Failure] = field(default_factory=list)
    # Abuse reports: who complained (the original recipient), when the report says.
    complainant: str | None = None
    # Headers of the returned message the report is about, when it is attached.
    original_message_id: str | None = None


@dataclass(slots=True)
class _Parts:
    dsn: list[Message] = field(default_factory=list)
    feedback: list[Message] = field(default_factory=list)
    texts: list[str] = field(default_factory=list)
    htmls: list[str] = field(default_factory=list)
    originals: list[Message] = field(default_factory=list)
    report_type: str = ""


_BOUNCE_SENDER = re.compile(
    r"mailer-daemon|postmaster|mail delivery|mail ?system|maildelivery|bounce|mdaemon|returned|"
    r"nondeliver|notification|deliverystatus",
    re.IGNORECASE,
)
_BOUNCE_SUBJECT = re.compile(
    r"undeliver|undelivered|delivery|failure|failed|fail|returned|not delivered|rejected|bounce|"
    r"nondeliver|non-deliver|unable to deliver|could not be delivered|mail system error|error|warning|"
    r"problem|unzustellbar|nicht zustellbar|non remis|non distribuable|non recapitabile|onbestelbaar|"
    r"niet afgeleverd|no entregado|no se pudo entregar|unknown|mailbox|quota|blocked|"
    r"配信|送信エラー|エラー|未送達|退信|失败|失敗|"
    r"não entregue|não foi possível entregar|devolvida|недостав|не доставлен|невозможно доставить|"
    r"niedostarcz|olevererbar|kan inte levereras|ikke levert|kunne ikke leveres|ikke leveret|"
    r"nedoručiteln|kézbesíthetetlen|teslim edilemedi|toimitus epäonnistui|전송 실패|반송",
    re.IGNORECASE,
)
# A reply or a forward ("Re:", "Fwd:", "AW:", "WG:", "TR:", "SV:", "VS:"): a person's mail, whatever
# its subject says ("Re: problem with the delivery").
_REPLY_PREFIX = re.compile(r"^\s*(?:re|fwd?|aw|wg|tr|sv|vs|antw|rif)\s*(?:\[\d+\])?\s*:", re.IGNORECASE)
_BOUNCE_TEXT = re.compile(
    r"could not be delivered|couldn't be delivered|was not delivered|wasn't delivered|undeliverable|"
    r"unable to deliver|delivery (?:has |to the following .{0,30})?failed|failed permanently|"
    r"following (?:address|recipient)|permanent (?:fatal )?error|not able to deliver|wasn't able to deliver|"
    r"delivery failure|returning message to sender|rejected your message|message (?:was )?rejected|"
    r"delivery to the following|user unknown|no such user|mailbox (?:is )?full|host unknown|"
    r"delivery status notification|could not deliver|did not reach",
    re.IGNORECASE,
)
_AUTOREPLY_SUBJECT = re.compile(
    r"^\s*(?:auto(?:matic)?[ -]?(?:reply|response|antwort)|auto:|out of (?:the )?office|vacation|"
    r"abwesenheit|abwesend|absence|absent|r[ée]ponse automatique|autoreply|autoresponse|away from|"
    r"automatische antwort|automatisch antwoord|risposta automatica|respuesta autom[áa]tica|"
    r"resposta autom[áa]tica|fuera de la oficina|autosvar|automaattinen vastaus|automatyczna odpowied[źz]|"
    r"автоматический ответ|自動応答|自動返信|自动回复|自動回覆)",
    re.IGNORECASE,
)
# A mailing-list manager's refusal of a post (fml's "Loop Alert: Duplicated Message-ID", "NOT MEMBER
# article from ...", "Security Alert"): the list address is the recipient that failed.
_LIST_REFUSAL = re.compile(
    r"duplicated message-id|loop condition|loop (?:alert|back warning)|unix from loop|not member article|"
    r"not a member of this mailing list|reject mail from|spammer is rejected|security alert|"
    r"fml system error",
    re.IGNORECASE,
)
# No tag holds a "<": so a run of them costs linear time, not quadratic.
_TAG = re.compile(r"<[^<>]*>")
# An HTML notice's lines: what a browser would break a line at, so each recipient keeps its own line.
_LINE_TAG = re.compile(r"<(?:br|/?p|/?div|/?tr|/?li|/?h\d|/?table|/?blockquote)\b[^<>]*>", re.IGNORECASE)
_UNSEEN = re.compile(r"<(style|script|head|title)\b", re.IGNORECASE)
_JSON_HINT = re.compile(r'"bouncedRecipients"|"bounceType"|"complainedRecipients"|"smtpResponse"')
_SUCCESS = re.compile(r"\b(2\d\d)[ -]?(2\.\d{1,3}\.\d{1,3})?")


def parse(raw: bytes) -> Report:
    """The report of one returned message. Never raises: what cannot be read is `other`."""
    try:
        return _parse(raw)
    except Exception:  # a malformed message is still a message: its bounce event goes on
        return Report()


def _parse(raw: bytes) -> Report:
    message = email.message_from_bytes(raw[:MAX_PARSE_BYTES], policy=email.policy.compat32)
    parts = _Parts()
    _walk(message, parts)
    report = Report(original_message_id=_original_message_id(parts))
    notice = _notice_text(parts)
    if (
        parts.feedback
        or parts.report_type == "feedback-report"
        or message.get("Feedback-Type")
        or _is_complaint(message, notice)
    ):
        report.kind = "abuse"
        report.complainant = _complainant(parts)
        return report
    if parts.report_type == "disposition-notification" and not parts.dsn:
        # A read receipt (RFC 8098): the mail was delivered, whatever became of it afterwards.
        return report
    if not parts.dsn and (in_text := _DSN_IN_TEXT.search(notice)):
        parts.dsn = _status_blocks_of(notice[in_text.start() :])
    if parts.dsn and _read_dsn(parts.dsn, report):
        # The DSN says what became of its recipients: the notice's text only fills gaps.
        _fill_from_notice(message, parts, notice, report)
        report.kind = "failure" if report.failures else "delivered" if report.delivered else "other"
        return report
    if _JSON_HINT.search(notice):
        _read_json_notification(notice, report)
        if report.kind == "abuse":
            return report
        if report.failures or report.delivered:
            report.kind = "failure" if report.failures else "delivered"
            return report
    if not _looks_like_bounce(message, notice):
        report.kind = "autoreply" if _is_autoreply(message) else "other"
        return report
    _read_notice(message, parts, notice, report)
    report.kind = "failure" if report.failures else "other"
    return report


def _walk(message: Message, parts: _Parts) -> None:
    # Iterative, depth- and count-capped: a hostile message cannot make this recurse or run long.
    stack: list[tuple[Message, int, bool]] = [(message, 0, False)]
    seen = 0
    while stack and seen < MAX_PARTS:
        part, depth, inside_original = stack.pop()
        seen += 1
        ctype = part.get_content_type()
        if _is_original(ctype):
            if not inside_original:
                inner = part.get_payload()
                if isinstance(inner, list) and inner and isinstance(inner[0], Message):
                    parts.originals.append(inner[0])
            continue
        if ctype in ("message/delivery-status", "message/global-delivery-status"):
            if not inside_original:
                parts.dsn.extend(_status_blocks(part))
            continue
        if ctype == "message/feedback-report":
            if not inside_original:
                parts.feedback.extend(_status_blocks(part))
            continue
        if part.is_multipart():
            if ctype == "multipart/report" and not parts.report_type:
                parts.report_type = str(part.get_param("report-type") or "").lower()
            if depth < MAX_DEPTH:
                children = part.get_payload()
                if isinstance(children, list):
                    stack.extend(
                        (child, depth + 1, inside_original)
                        for child in reversed(children)
                        if isinstance(child, Message)
                    )
            continue
        if inside_original:
            continue
        if ctype in ("text/rfc822-headers", "text/global-headers"):
            parts.originals.append(_headers_of(part))
        elif (
            ctype == "text/plain"
            or (ctype.startswith("text/") and ctype != "text/html" and not parts.texts)
            or ctype.startswith("multipart/")  # a multipart without its boundary: read as text
        ):
            parts.texts.append(_text_of(part))
        elif ctype == "text/html":
            parts.htmls.append(_text_of(part))


def _is_original(ctype: str) -> bool:
    return ctype in ("message/rfc822", "message/global")


def _text_of(part: Message) -> str:
    payload = part.get_payload(decode=True)
    if not isinstance(payload, bytes):
        return ""
    charset = part.get_content_charset() or "utf-8"
    try:
        return payload[:MAX_NOTICE_CHARS].decode(charset, errors="replace")
    except LookupError:  # an unknown charset: Latin-1 reads every byte
        return payload[:MAX_NOTICE_CHARS].decode("latin-1")


def _headers_of(part: Message) -> Message:
    return email.parser.HeaderParser(policy=email.policy.compat32).parsestr(_text_of(part))


def _status_blocks(part: Message) -> list[Message]:
    """The header blocks of a delivery-status or feedback-report part, however it was encoded."""
    payload = part.get_payload()
    encoded = part.get("Content-Transfer-Encoding", "").lower() in ("base64", "quoted-printable")
    if isinstance(payload, list) and not encoded:
        return [block for block in payload if isinstance(block, Message)]
    return _status_blocks_of(_text_of(part))


def _status_blocks_of(text: str) -> list[Message]:
    parser = email.parser.HeaderParser(policy=email.policy.compat32)
    chunks = re.split(r"\r?\n[ \t]*\r?\n", text[:MAX_NOTICE_CHARS])
    return [parser.parsestr(chunk.strip() + "\n") for chunk in chunks if chunk.strip()]


# DSN fields written into a notice's text rather than a message/delivery-status part.
_DSN_IN_TEXT = re.compile(
    r"^(?:Reporting-MTA|Original-Envelope-Id|Final-Recipient):", re.IGNORECASE | re.MULTILINE
)


def _original_message_id(parts: _Parts) -> str | None:
    for original in parts.originals:
        value = original.get("Message-ID")
        if value:
            return str(value).strip()
    return None


def _value(block: Message, name: str) -> str:
    value = block.get(name)
    return "" if value is None else re.sub(r"\s+", " ", str(value)).strip()


def _address_of(value: str) -> str:
    # "rfc822; <jane@example.com>" → "jane@example.com"
    value = value.split(";", 1)[1] if ";" in value else value
    found = notices.ADDRESS.search(value)
    return found.group(0).lower() if found else value.strip(" <>").lower()


def _recipient_records(blocks: list[Message]) -> list[dict[str, str]]:
    """Per-recipient fields of a DSN. Some MTAs leave out the blank line between recipients, so a block
    is split again wherever a recipient field repeats."""
    records: list[dict[str, str]] = []
    for block in blocks:
        current: dict[str, str] = {}
        for name, value in block.items():
            key = name.lower()
            if key in current and key in _PER_RECIPIENT:
                records.append(current)
                current = {}
            current[key] = re.sub(r"\s+", " ", str(value)).strip()
        records.append(current)
    return [r for r in records if r.get("final-recipient") or r.get("original-recipient")]


_DEFINITE = re.compile(r"\s*(?:fail|delay|deliver|relay|expand|undeliver|bounce|reject|error)", re.IGNORECASE)
# RFC 3464's "failed" and "delayed", and the words some MTAs write instead ("Action: undeliverable").
_FAILED_ACTIONS = ("fail", "delay", "undeliver", "bounce", "reject", "error")
_PER_RECIPIENT = frozenset({"final-recipient", "original-recipient", "action", "status"})


def _read_dsn(blocks: list[Message], report: Report) -> int:
    """Reads the DSN's recipients into the report; returns how many it says something definite of
    (failed, delayed, delivered, relayed, expanded)."""
    records = [
        r for r in _recipient_records(blocks) if _DEFINITE.match(r.get("action", "")) or not r.get("action")
    ]
    for record in records:
        if len(report.failures) + len(report.delivered) >= MAX_RECIPIENTS:
            break
        recipient = record.get("final-recipient") or record.get("original-recipient", "")
        action = record.get("action", "").lower()
        status_field = record.get("status", "")
        diagnostic = record.get("diagnostic-code", "")
        diagnostic_text = diagnostic.split(";", 1)[1].strip() if ";" in diagnostic else diagnostic
        found = notices.diagnose(diagnostic_text) if diagnostic_text else None
        status = _status(status_field, found.extended if found and not found.inferred else None)
        code = found.code if found else None
        if status is None and code is None and not action.startswith("deliver"):
            status = found.extended if found else notices.words_status("")
        if status and status.endswith(".4.7") and (cause := notices.underlying(diagnostic_text)):
            code, status = cause
        entry = Failure(
            _address_of(recipient), code, status, diagnostic_text[: notices.MAX_DESCRIPTION_CHARS]
        )
        klass = (status or str(code or ""))[:1]
        if action.startswith("deliver") or (not action and klass == "2"):
            report.delivered.append(entry)
        elif (action.startswith(_FAILED_ACTIONS) or not action) and klass in ("4", "5"):
            # A delayed recipient is a transient failure (a 4.x.x status): the MTA is still trying.
            report.failures.append(entry)
    return len(records)


_STATUS_FIELD = re.compile(r"([245])\.(\d{1,3})\.(\d{1,3})")


def _status(field_value: str, from_diagnostic: str | None) -> str | None:
    found = _STATUS_FIELD.search(field_value)
    status = found.group(0) if found else None
    # A generic Status (x.0.0) says less than the diagnostic's own status of the same class.
    if from_diagnostic and (status is None or (status.endswith(".0.0") and from_diagnostic[0] == status[0])):
        return from_diagnostic
    return status


def _notice_text(parts: _Parts) -> str:
    text = "\n".join(parts.texts)
    if not text.strip() and parts.htmls:
        markup = _visible("\n".join(parts.htmls))
        text = html.unescape(_TAG.sub(" ", _LINE_TAG.sub("\n", markup)))
    return text[:MAX_NOTICE_CHARS]


def _visible(markup: str) -> str:
    """HTML without what a browser does not show (style, script, head, title): one pass, each element
    skipped to its closing tag (an unclosed one hides the rest)."""
    lower = markup.lower()
    shown: list[str] = []
    position = 0
    while (opening := _UNSEEN.search(lower, position)) is not None:
        shown.append(markup[position : opening.start()])
        closing = lower.find("</" + opening.group(1), opening.end())
        end = lower.find(">", closing) if closing >= 0 else -1
        if end < 0:
            return " ".join(shown)
        position = end + 1
    shown.append(markup[position:])
    return " ".join(shown)


def _looks_like_bounce(message: Message, notice: str) -> bool:
    if message.get("X-Failed-Recipients"):
        return True
    subject = _subject(message)
    if _AUTOREPLY_SUBJECT.search(subject):
        return False
    sender = str(message.get("From", "")) + " " + str(message.get("Return-Path", ""))
    if _replies_itself(message) and not _BOUNCE_SENDER.search(sender):
        return False
    if message.get("X-MLServer") and _LIST_REFUSAL.search(subject + "\n" + notice[:8192]):
        return True
    return _bounce_headers(message) or bool(_BOUNCE_TEXT.search(notices.cut_original(notice[:8192])))


def _bounce_headers(message: Message) -> bool:
    """Whether the sender or the subject says the message is a bounce."""
    sender = str(message.get("From", "")) + " " + str(message.get("Return-Path", ""))
    subject = _subject(message)
    return bool(
        _BOUNCE_SENDER.search(sender)
        or (_BOUNCE_SUBJECT.search(subject) and not _REPLY_PREFIX.match(subject))
    )


# Complaints sent without ARF's report part: Hotmail's JMRP ("complaint about message from 192.0.2.1",
# the complained-of mail attached) and reports that say what they are in their first line.
_COMPLAINT_SUBJECT = re.compile(r"^\s*complaint about message from\b", re.IGNORECASE)
_COMPLAINT_TEXT = re.compile(
    r"^\s*this is an? (?:\S+ )?(?:email )?abuse (?:report|complaint)\b|"
    r"^\s*this is an autogenerated email abuse complaint\b",
    re.IGNORECASE,
)


def _is_complaint(message: Message, notice: str) -> bool:
    return bool(_COMPLAINT_SUBJECT.search(_subject(message)) or _COMPLAINT_TEXT.search(notice[:1024]))


def _is_autoreply(message: Message) -> bool:
    auto = str(message.get("Auto-Submitted", "")).lower()
    return bool(
        (auto and auto != "no") or _replies_itself(message) or _AUTOREPLY_SUBJECT.search(_subject(message))
    )


_SUPPRESS_AUTOREPLY = re.compile(r"\b(?:oof|autoreply)\b", re.IGNORECASE)


def _replies_itself(message: Message) -> bool:
    """Headers only an auto-responder writes (RFC 3834's Auto-Submitted aside, which Exim's bounces
    carry too): X-Autoreply, Precedence: auto_reply, Apple's X-Apple-Action: vacation, Exchange's
    X-Auto-Response-Suppress naming OOF or AutoReply."""
    return bool(
        message.get("X-Autoreply")
        or message.get("X-Autorespond")
        or str(message.get("Precedence", "")).strip().lower() == "auto_reply"
        or str(message.get("X-Apple-Action", "")).strip().lower() == "vacation"
        or _SUPPRESS_AUTOREPLY.search(str(message.get("X-Auto-Response-Suppress", "")))
    )


def _subject(message: Message) -> str:
    """The Subject with its encoded words (RFC 2047) decoded: "=?utf-8?b?...?=" says "Unzustellbar"."""
    value = str(message.get("Subject", ""))
    if "=?" not in value:
        return value
    try:
        return str(email.header.make_header(email.header.decode_header(value)))
    except (ValueError, LookupError, UnicodeError):  # a broken encoded word: read as it stands
        return value


def _own_addresses(message: Message, parts: _Parts) -> set[str]:
    """Addresses that are not failed recipients: the notice's own, and the sender of the original."""
    names = ("From", "To", "Cc", "Return-Path", "Reply-To", "Sender")
    found: set[str] = set()
    for name in names:
        for value in message.get_all(name) or []:
            found.update(m.group(0).lower() for m in notices.ADDRESS.finditer(str(value)))
    for original in parts.originals:
        for name in ("From", "Return-Path", "Sender", "Reply-To"):
            found.update(m.group(0).lower() for m in notices.ADDRESS.finditer(str(original.get(name, ""))))
    return found


def _read_notice(message: Message, parts: _Parts, notice: str, report: Report) -> None:
    text = notices.cut_original(notice)
    excluded = _own_addresses(message, parts)
    hinted = [
        m.group(0).lower() for m in notices.ADDRESS.finditer(str(message.get("X-Failed-Recipients", "")))
    ]
    found = notices.recipients_in(text, excluded)
    if hinted and not set(hinted) & {address for address, _ in found}:
        # The header names addresses the text spells otherwise: each gets the whole text.
        found = [(address, 0) for address in dict.fromkeys(hinted)]
    elif hinted:
        positions = dict(found)
        found = [(address, positions.get(address, len(text))) for address in dict.fromkeys(hinted)]
        found.sort(key=lambda item: item[1])
    if not found:
        # The notice names nobody: the recipient of the returned copy is the one, when it has one; else
        # the one its own recap of the message names ("To: ..."), when its headers say it is a bounce.
        to = [m.group(0).lower() for m in notices.ADDRESS.finditer(_original_to(parts, notice))]
        if not to and _bounce_headers(message):
            recap = _TO_LINE.search(text)
            to = [m.group(0).lower() for m in notices.ADDRESS.finditer(recap.group(1) if recap else "")]
            to = [address for address in to if address not in excluded]
        if len(set(to)) == 1:
            found = [(to[0], 0)]
    context = text[: found[0][1]] if found else text
    for address, block in notices.blocks(text, found[:MAX_RECIPIENTS]):
        diagnosis = notices.diagnose(block, context, address)
        reply = notices.remote_reply(text, address, block)
        if reply is not None and reply[0] is not None:
            klass = str(reply[0])[0]
            extended = reply[1] or (diagnosis.extended if (diagnosis.extended or "")[:1] == klass else None)
            diagnosis = notices.Diagnosis(reply[0], extended, diagnosis.description)
        if diagnosis.code is None and diagnosis.extended is None:
            continue
        if (diagnosis.extended or str(diagnosis.code))[:1] not in "45":
            continue
        report.failures.append(Failure(address, diagnosis.code, diagnosis.extended, diagnosis.description))


_TO_LINE = re.compile(r"^[ \t]*To:[ \t]*(.*)$", re.IGNORECASE | re.MULTILINE)


def _original_to(parts: _Parts, notice: str) -> str:
    for original in parts.originals:
        if original.get("To"):
            return str(original.get("To"))
    copy = notice[len(notices.cut_original(notice)) :]
    found = _TO_LINE.search(copy)
    return found.group(1) if found else ""


def _settled(failure: Failure) -> bool:
    """Whether a DSN recipient has all a notice could add: a code and a status that is neither generic
    (x.0.0) nor "expired" (x.4.7, whose cause the text may tell)."""
    status = failure.extended or ""
    return failure.code is not None and bool(status) and not status.endswith((".0.0", ".4.7"))


def _fill_from_notice(message: Message, parts: _Parts, notice: str, report: Report) -> None:
    """DSN recipients without a reply code or status get them from their block of the notice's text
    (Sendmail's transcript, for one), when of the same class."""
    if all(_settled(f) for f in report.failures):
        return
    text = notices.cut_original(notice)
    found = notices.recipients_in(text, _own_addresses(message, parts))
    by_address = dict(notices.blocks(text, found))
    for index, failure in enumerate(report.failures):
        if _settled(failure):
            continue
        block = by_address.get(failure.recipient)
        if block is None and len(report.failures) == 1:
            block = text
        if block is None:
            continue
        found_here = notices.diagnose(block, address=failure.recipient)
        klass = (failure.extended or str(failure.code or ""))[:1]
        cause = notices.underlying(block) if (failure.extended or "").endswith(".4.7") else None
        if cause is not None and cause[1][0] == klass:
            report.failures[index] = Failure(failure.recipient, cause[0], cause[1], failure.description)
            continue
        code = failure.code
        if code is None and found_here.code is not None and str(found_here.code)[0] == klass:
            code = found_here.code
        extended = failure.extended
        generic = extended is None or extended.endswith(".0.0")
        if generic and found_here.extended and not found_here.inferred and found_here.extended[0] == klass:
            extended = found_here.extended
        report.failures[index] = Failure(
            failure.recipient, code, extended, failure.description or found_here.description
        )


def _read_json_notification(text: str, report: Report) -> None:
    """Bounce notifications sent as JSON (Amazon SES's format) inside a mail."""
    start = text.find("{")
    end = text.rfind("}")
    if start < 0 or end <= start:
        return
    try:
        document: Any = json.loads(text[start : end + 1])
    except ValueError:
        try:  # lines wrapped by the mailer
            document = json.loads(re.sub(r"\r?\n", "", text[start : end + 1]))
        except ValueError:
            return
    if isinstance(document, dict) and isinstance(document.get("Message"), str):  # wrapped by SNS
        try:
            document = json.loads(document["Message"])
        except ValueError:
            return
    if not isinstance(document, dict):
        return
    complaint = document.get("complaint")
    if isinstance(complaint, dict):
        report.kind = "abuse"
        for entry in complaint.get("complainedRecipients") or []:
            if isinstance(entry, dict) and isinstance(entry.get("emailAddress"), str):
                report.complainant = _address_of(entry["emailAddress"])
                break
        return
    delivery = document.get("delivery")
    if isinstance(delivery, dict):
        response = str(delivery.get("smtpResponse") or "")
        success = _SUCCESS.search(response)
        reply: int | None = int(success.group(1)) if success else None
        status: str | None = success.group(2) if success else None
        for address in delivery.get("recipients") or []:
            if isinstance(address, str) and len(report.delivered) < MAX_RECIPIENTS:
                report.delivered.append(Failure(_address_of(address), reply, status, response))
        return
    bounce = document.get("bounce")
    if not isinstance(bounce, dict):
        return
    for entry in bounce.get("bouncedRecipients") or []:
        if not isinstance(entry, dict) or not isinstance(entry.get("emailAddress"), str):
            continue
        diagnostic = str(entry.get("diagnosticCode") or "")
        found = notices.diagnose(diagnostic) if diagnostic else None
        status = _status(
            str(entry.get("status") or ""), found.extended if found and not found.inferred else None
        )
        code = found.code if found else None
        if status is None and code is None:
            status = notices.words_status(diagnostic)
        report.failures.append(Failure(_address_of(entry["emailAddress"]), code, status, diagnostic))
        if len(report.failures) >= MAX_RECIPIENTS:
            break


def _complainant(parts: _Parts) -> str | None:
    for block in parts.feedback:
        for name in ("Original-Rcpt-To", "Removal-Recipient"):
            value = _value(block, name)
            if value:
                return _address_of(value)
    for original in parts.originals:
        value = str(original.get("To", ""))
        found = notices.ADDRESS.search(value)
        if found:
            return found.group(0).lower()
    return None
