"""Failed recipients in the text of a notice: the non-standard bounces (qmail, Exim, Postfix and Sendmail
without a DSN, Exchange, Gmail, Yahoo, Notes, Courier, ...) say the same things in their own words.

The text is cut where the copy of the original message starts, split into one block per recipient (from an
address's first mention to the next recipient's), and each block searched for an SMTP reply code and an
RFC 3463 status; a block that carries neither is judged by its words. Formats, not files: nothing here
names a vendor.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# Where the copy of the returned message starts in a notice's text: everything below is someone else's.
_ORIGINAL_STARTS = re.compile(
    r"^(?:[ \t]*[-=_*#>]{2,}.{0,30}(?:original|copy of|below this line|message header|headers? of|"
    r"returned message|undelivered message|unsent message|rfc822|message text|text of the)|"
    r"[ \t]*(?:original message follows|your message reads|(?:message )?headers follow|"
    r"the headers of the original message)|"
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
_CODE_AND_STATUS = re.compile(r"(?<![\w.#-])([45]\d\d)[ -]['\"]?#?([45]\.\d{1,3}\.\d{1,3})(?![\d]|\.\d)")
_STATUS = re.compile(r"(?<![\w.-])#?([45]\.\d{1,3}\.\d{1,3})(?![\d]|\.\d)")
_CODE = re.compile(r"(?<![\w.#=/-])([45][0-5]\d)(?=[ -][^\d]|[ .:,)\]]|$)", re.MULTILINE)
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
            r"user unknown|unknown user|no such (?:user|mailbox|recipient|address)|does not exist|"
            r"doesn't exist|not a valid (?:mailbox|recipient|user)|"
            r"invalid (?:mailbox|recipient|address|user)|"
            r"unknown (?:recipient|mailbox|address|local.?part)|recipient (?:address )?rejected|"
            r"no mailbox|mailbox unavailable|address (?:is )?(?:unknown|invalid|rejected)|"
            r"user (?:doesn't|does not) have|not our customer|no such person|account (?:is )?(?:disabled|"
            r"inactive|suspended|expired)|not listed in|was not found|unrouteable address",
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
            r"relay(?:ing)? (?:denied|not permitted|access denied|prohibited)|"
            r"not (?:permitted to|allowed to) relay|unable to relay",
            "5.7.1",
        ),
        (
            r"spam|blocked|blacklist|block ?list|denied|refused|rejected|policy|not authori[sz]ed|"
            r"reputation|virus",
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
_TEMPORARY = re.compile(r"temporar|deferred|delayed|will (?:be )?retr|try again later|still trying", re.I)
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
        if _SENDER_BEFORE.search(before) or _RECAP_LINE.match(before):
            continue
        # The line's start, so a reply code written before the address ("554 <a@b>... Host unknown")
        # is in its block; the address itself when another recipient shares the line.
        start = line_start if line_start >= previous else match.start()
        seen[address] = start
        previous = match.start()
    return list(seen.items())


_SENDER_BEFORE = re.compile(r"(?:mail\s+from|envelope-from|return-path|sender)\s*[:=]?\s*<?$", re.IGNORECASE)
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
    return Diagnosis(None, words_status(block, context), description, inferred=True)


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
    for pattern, candidate in _WORDS:
        if pattern.search(block):
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
