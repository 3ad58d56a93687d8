"""Failed recipients in the text of a notice: the non-standard bounces (qmail, Exim, Postfix and Sendmail
without a DSN, Exchange, Gmail, Yahoo, Notes, Courier, ...) say the same things in their own words.

The text is cut where the copy of the original message starts, split into one block per recipient (from an
address's first mention to the next recipient's), and each block searched for an SMTP reply code and an
RFC 3463 status; a block that carries neither is judged by its words. Formats, not files: nothing here
names a vendor.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

# Where the copy of the returned message starts in a notice's text: everything below is someone else's.
_ORIGINAL_STARTS = re.compile(
    r"^(?:[ \t]*[-=_*#>]{2,}.{0,30}(?:original|copy of|below this line|message header|headers? of|"
    r"returned message|undelivered message|unsent message|rfc822|message text|text of the)|"
    r"[ \t]*(?:original message follows|original mail as follows|your message reads|"
    r"(?:message )?headers follow|the headers of the original message)|"
    r"[ \t]*-+ ?(?:original message|message body|the original message)|"
    r"Content-Type: message/rfc822|"
    r"(?:Return-Path|Received|DKIM-Signature|Message-I[dD]|MIME-Version):)",
    re.IGNORECASE | re.MULTILINE,
)
# Addresses as bounces write them: bare, in <...>, or after "RCPT TO:".
ADDRESS = re.compile(
    r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-][A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]{0,63}@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+"
)
# "550 5.1.1", "550-5.1.1", "550 #5.1.1": the reply code and the status as one.
# Exchange writes a "#" before them ("#550 5.1.10 RESOLVER.ADR.RecipientNotFound").
# A status's subject is one digit (RFC 3463's registry: 0 to 7): "Exim 4.94.2" is a version, no status.
_CODE_AND_STATUS = re.compile(r"(?<![\w.-])#?([45]\d\d)[ -]['\"]?#?([45]\.\d\.\d{1,3})(?![\d]|\.\d)")
_STATUS = re.compile(r"(?<![\w.-])#?([45]\.\d\.\d{1,3})(?![\d]|\.\d)")
_CODE = re.compile(r"(?<![\w.#=/-])([45][0-5]\d)(?=[ -][^\d]|[ .:,)\]\r]|$)", re.MULTILINE)
_SPACES = re.compile(r"\s+")

# Words a block uses when it carries no code, as (pattern, status); first match wins. The status is RFC
# 3463's own for what the words say (x.0.0 where they say only permanent or temporary).
_WORDS: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(pattern, re.IGNORECASE), status)
    for pattern, status in (
        (
            r"mailbox (?:is )?full|over ?quota|quota exceeded|exceeded (?:the |its )?(?:storage|quota)|"
            r"insufficient (?:disk )?space|mailbox size limit",
            "5.2.2",
        ),
        (
            r"account (?:is |has been )?(?:disabled|inactive|suspended|expired|locked|frozen)|"
            r"administrativ?ely disabled|mailbox (?:is )?(?:disabled|inactive|suspended)",
            "5.2.1",
        ),
        (r"null mx|indicated no smtp service", "5.1.10"),
        (
            r"malformed address|angle-brackets nested|domain missing in source-routed|"
            r"bad address syntax|invalid address syntax",
            "5.1.3",
        ),
        (
            r"user unknown|unknown user|user not found|no such (?:user|mailbox|recipient|address)|"
            r"does not exist|"
            r"doesn't exist|not a valid (?:mailbox|recipient|user)|no valid recipient|"
            r"invalid (?:mailbox|recipient|address|user)|"
            r"unknown (?:recipient|mailbox|address|local.?part)|recipient (?:address )?rejected|"
            r"no mailbox|mailbox unavailable|address (?:is )?(?:unknown|invalid|rejected)|"
            r"user (?:doesn't|does not) have|not our customer|no such person|not listed in|was not found|"
            r"unrouteable address",
            "5.1.1",
        ),
        (
            r"host (?:or domain name )?not found|unknown host|domain (?:name )?not found|no such domain|"
            r"name server|dns|mx (?:record|lookup)|unrouteable (?:mail )?domain|domain (?:does not|doesn't) "
            r"exist|illegal host",
            "5.1.2",
        ),
        (r"too (?:big|large)|size (?:limit|exceeds)|exceeds? (?:the )?(?:maximum|size)", "5.3.4"),
        (
            r"mail loop|loop (?:detected|alert|back warning)|loop condition|unix from loop|"
            r"duplicated message-id|too many hops|hop count exceeded|too many \"?received\"? headers",
            "5.4.6",
        ),
        (
            r"relay(?:ing)? (?:denied|not permitted|access denied|prohibited)|"
            r"not (?:permitted to|allowed to) relay|unable to relay",
            "5.7.1",
        ),
        (
            r"spam|blocked|blacklist|block ?list|denied|refused|rejected|policy|not authori[sz]ed|"
            r"reputation|virus|not (?:a )?member",
            "5.7.1",
        ),
        (
            r"expired|too long in (?:the )?queue|retry (?:time|timeout)|could not be delivered within|"
            r"timed? ?out|time limit",
            "5.4.7",
        ),
        (r"temporar|deferred|delayed|try again later|will (?:be )?retr|still trying", "4.0.0"),
        (
            r"permanent|given up|giving up|fatal|could not be delivered|couldn't be delivered|"
            r"undeliverable|unable to deliver|delivery (?:has )?failed|failed permanently|failed",
            "5.0.0",
        ),
    )
)
# "Persistent transient failure" is RFC 3463's name for the 4.x.x class.
_TEMPORARY = re.compile(
    r"temporar|persistent|deferred|delayed|will (?:be )?retr|try again later|still trying", re.I
)
_PERMANENT = re.compile(r"permanent|given up|giving up|fatal", re.IGNORECASE)

MAX_BLOCK_CHARS = 4096
MAX_DESCRIPTION_CHARS = 2048


@dataclass(frozen=True, slots=True)
class Diagnosis:
    code: int | None
    extended: str | None
    description: str
    # True when the status was read from the words, not found in the text.
    inferred: bool = False


def cut_original(text: str) -> str:
    """The notice without the copy of the returned message that follows it."""
    found = _ORIGINAL_STARTS.search(text)
    return text if found is None else text[: found.start()]


def recipients_in(text: str, excluded: set[str]) -> list[tuple[str, int]]:
    """Distinct addresses in order of first mention, each with where its line starts; not those in
    `excluded`, nor the sender in a transcript (MAIL FROM) or a recap of the original's headers."""
    seen: dict[str, int] = {}
    previous = 0
    for match in ADDRESS.finditer(text):
        address = match.group(0).rstrip(".").lower()
        if address in excluded or address in seen or _is_role(address):
            continue
        line_start = text.rfind("\n", 0, match.start()) + 1
        before = text[line_start : match.start()]
        # The words just before the address say what it is; only they are searched, so a line of
        # thousands of addresses costs linear time.
        near = before[-_WORDS_BEFORE:]
        if _RECAP_LINE.match(before) or _SENDER_BEFORE.search(near) or _NOT_RECIPIENT_BEFORE.search(near):
            continue
        # The line's start, so a reply code written before the address ("554 <a@b>... Host unknown")
        # is in its block; the address itself when another recipient shares the line.
        start = line_start if line_start >= previous else match.start()
        seen[address] = start
        previous = match.start()
    return list(seen.items())


_WORDS_BEFORE = 64
_SENDER_BEFORE = re.compile(r"(?:mail\s+from|envelope-from|return-path|sender)\s*[:=]?\s*<?$", re.IGNORECASE)
# Addresses that are not recipients of the message: the alias a recipient was expanded from (Postfix's
# "<jane@example.com> (expanded from <sales@example.org>)": its block is the recipient's), and whom to
# write to for help ("please contact postmaster@example.org").
_NOT_RECIPIENT_BEFORE = re.compile(
    r"(?:expanded\s+from|\bcontact(?:ing)?|\bwrite\s+to|\be-?mail\s+(?:us\s+)?at)\s*:?\s*<?$", re.IGNORECASE
)
_RECAP_LINE = re.compile(r"^\s*(?:to|cc|from|sent|date|subject|reply-to)\s*:", re.IGNORECASE)


def _is_role(address: str) -> bool:
    local = address.split("@", 1)[0]
    return local in {"mailer-daemon", "mailerdaemon", "mail-daemon"} or (
        local.startswith(("no-reply", "noreply", "bounce"))
    )


def blocks(text: str, recipients: list[tuple[str, int]]) -> list[tuple[str, str]]:
    """(recipient, its block of text): from its first mention to the next recipient's."""
    out = []
    for index, (address, start) in enumerate(recipients):
        end = recipients[index + 1][1] if index + 1 < len(recipients) else len(text)
        if end <= start:  # mentioned first in another's block: its text runs to the end
            end = len(text)
        out.append((address, text[start : min(end, start + MAX_BLOCK_CHARS)]))
    return out


def diagnose(block: str, context: str = "", address: str = "") -> Diagnosis:
    """The reply code and status a block of text carries, or what its words say; `context` (the
    notice's opening) breaks ties between permanent and temporary. What follows the recipient's
    `address` is read first: a relay's own code often precedes it, the remote's follows."""
    description = _SPACES.sub(" ", block).strip()[:MAX_DESCRIPTION_CHARS]
    at = block.lower().find(address) if address else -1
    if at >= 0:
        line_start = block.rfind("\n", 0, at) + 1
        line_end = block.find("\n", at)
        line_end = len(block) if line_end < 0 else line_end
        # The rest of the address's line, its whole line, then what follows it.
        for part in (
            block[at + len(address) : line_end],
            block[line_start:line_end],
            block[at + len(address) :],
        ):
            found_here = _codes(part)
            if found_here is not None:
                return Diagnosis(found_here[0], found_here[1], description)
    found = _codes(block)
    if found is not None:
        return Diagnosis(found[0], found[1], description)
    above = _stated_above(context)
    if above is not None:
        return Diagnosis(above[0], above[1], f"{above[2]} {description}"[:MAX_DESCRIPTION_CHARS])
    return Diagnosis(None, words_status(block, context), description, inferred=True)


# A reply code that opens a line ("550 - Requested action not taken", "Error: 550 ..."): a notice's
# own statement of the error, not a number in a sentence.
_LINE_CODE = re.compile(
    r"^[ \t]*(?:error:?[ \t]*)?([45][0-5]\d)(?=[ -]+[A-Za-z])", re.IGNORECASE | re.MULTILINE
)


def _stated_above(context: str) -> tuple[int, str | None, str] | None:
    """The error a notice states once above the recipients it concerns (MailMarshal's "Could not be
    delivered because of / 550 5.1.1 User unknown / The following recipients were affected:",
    Verizon's "Error: 550 - ..."): (reply code, status or None, its line). Only a code with its
    status, or a code opening a line: a bare number in the opening is no reply."""
    found = _CODE_AND_STATUS.search(context) or _LINE_CODE.search(context)
    if found is None:
        return None
    line_start = context.rfind("\n", 0, found.start()) + 1
    line_end = context.find("\n", found.end())
    line = context[line_start : len(context) if line_end < 0 else line_end].strip()
    status = found.group(2) if found.re is _CODE_AND_STATUS else None
    return int(found.group(1)), status, line


# Sendmail's transcript: "While talking to HOST:" opens a session, ">>>" lines are what sendmail sent and
# "<<<" lines what the host replied; "554 <jane@example.com>... Remote protocol error" is sendmail's own
# summary of the recipient. The host's reply is the one that tells.
_SESSION = re.compile(r"while talking to ([\w.-]+?)\.?:[ \t\r]*$", re.IGNORECASE | re.MULTILINE)
_REMOTE_REPLY = re.compile(r"^<<<[ \t]*[45]\d\d\b.*$", re.MULTILINE)
# Only a reply to RCPT or DATA is about the recipient or the message; one to MAIL is about the sender,
# and then sendmail's summary of each recipient stands.
_RECIPIENT_REPLY = re.compile(r"^>>>[ \t]*(?:RCPT|DATA)\b.*\r?\n(<<<[ \t]*[45]\d\d\b.*)$", re.I | re.M)
_SUMMARY = re.compile(r"^[ \t]*[45]\d\d[ \t]+<?")


def remote_reply(text: str, address: str, block: str) -> tuple[int | None, str | None] | None:
    """The reply (to RCPT or DATA) of the host a sendmail transcript talked to for `address` (its
    domain or a host of it), when the recipient's block is only sendmail's summary line
    ("554 <addr>... Remote protocol error") with no reply of its own."""
    if "<<<" not in text or not _SUMMARY.match(block) or _REMOTE_REPLY.search(block):
        return None
    line = block.split("\n", 1)[0]
    at = line.lower().find(address)
    if at < 0 or _codes(line[at + len(address) :]) is not None:  # the summary quotes the reply itself
        return None
    domain = address.rsplit("@", 1)[-1]
    for host, start, end in _sessions(text):
        if host != domain and not host.endswith("." + domain):
            continue
        reply = _RECIPIENT_REPLY.search(text, start, end)
        if reply is not None:
            return _codes(reply.group(1))
    return None


@functools.lru_cache(maxsize=4)
def _sessions(text: str) -> tuple[tuple[str, int, int], ...]:
    """(host, where its session's lines start, where they end) of each "While talking to HOST:"; found
    once per notice, not once per recipient."""
    found = list(_SESSION.finditer(text))
    ends = [session.start() for session in found[1:]] + [len(text)]
    return tuple(
        (session.group(1).lower(), session.end(), end) for session, end in zip(found, ends, strict=True)
    )


def underlying(block: str) -> tuple[int | None, str] | None:
    """The last explicit reply code and status in a block other than "delivery time expired" (x.4.7):
    what made an expired message fail, when the text tells (Exchange, SES)."""
    found = [
        (int(m.group(1)), m.group(2))
        for m in _CODE_AND_STATUS.finditer(block)
        if not m.group(2).endswith(".4.7")
    ]
    return found[-1] if found else None


def _codes(block: str) -> tuple[int | None, str | None] | None:
    both = _CODE_AND_STATUS.search(block)
    if both is not None:
        return int(both.group(1)), both.group(2)
    status_match = _STATUS.search(block)
    code_match = _CODE.search(block)
    code = int(code_match.group(1)) if code_match else None
    if status_match is not None or code is not None:
        return code, status_match.group(1) if status_match else None
    return None


def words_status(block: str, context: str = "") -> str:
    status = "5.0.0"
    # What the block's words say, else what the notice's opening says of all its recipients.
    for text in (block, context):
        candidate = next((status for pattern, status in _WORDS if pattern.search(text)), None)
        if candidate is not None:
            status = candidate
            break
    # The class: what the block says, else what the notice's opening says.
    if _TEMPORARY.search(block) and not _PERMANENT.search(block):
        return "4" + status[1:]
    if _PERMANENT.search(block) or _PERMANENT.search(context):
        return "5" + status[1:]
    if _TEMPORARY.search(context):
        return "4" + status[1:]
    return status
