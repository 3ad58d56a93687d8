"""Return paths: they name the account and message, and only the deployment's secret makes them."""

from __future__ import annotations

import pytest

from webhooks.returned_mail import return_path
from webhooks.returned_mail.service import Unattributed, envelope_candidates, owner_of

SECRET = b"s3cret-for-tests"
DOMAIN = "bounces.example.com"


@pytest.mark.parametrize(
    ("account", "message"),
    [("acme", "msg-1"), ("Acme Corp", "<abc@mail.example>"), ("a", "1234567890"), ("ünï", "x=y=z")],
)
def test_a_return_path_reads_back_as_its_account_and_message(account: str, message: str) -> None:
    address = return_path.make(account, message, secret=SECRET, domain=DOMAIN)

    assert return_path.read(address, secret=SECRET, domain=DOMAIN) == (account, message)
    assert address == address.lower()
    assert address.endswith("@" + DOMAIN)


def test_plain_ids_stay_readable() -> None:
    address = return_path.make("acme", "msg-1", secret=SECRET, domain=DOMAIN)

    assert address.startswith("rp=acme=msg-1=")
    assert len(address.split("@")[0].split("=")[3]) == 16


def test_mtas_that_uppercase_the_address_do_not_break_it() -> None:
    address = return_path.make("acme", "msg-1", secret=SECRET, domain=DOMAIN)

    assert return_path.read(address.upper(), secret=SECRET, domain=DOMAIN) == ("acme", "msg-1")


def test_another_secret_does_not_read_it() -> None:
    address = return_path.make("acme", "msg-1", secret=SECRET, domain=DOMAIN)

    assert return_path.read(address, secret=b"other", domain=DOMAIN) is None


def _flip_last_tag_character(address: str) -> str:
    local, domain = address.split("@")
    head, tag = local.rsplit("=", 1)
    return f"{head}={tag[:-1]}{'a' if tag[-1] != 'a' else 'b'}@{domain}"


@pytest.mark.parametrize(
    "change",
    [
        lambda a: a.replace("rp=acme=", "rp=evil="),  # another account
        lambda a: a.replace("=msg-1=", "=msg-2="),  # another message
        _flip_last_tag_character,
        lambda a: a.replace(DOMAIN, "bounces.example.org"),  # another domain
        lambda a: a.split("@")[0][:-1] + "@" + DOMAIN,  # a tag cut short
    ],
    ids=["account", "message", "tag", "domain", "short-tag"],
)
def test_an_altered_return_path_is_nobodys(change: object) -> None:
    address = return_path.make("acme", "msg-1", secret=SECRET, domain=DOMAIN)

    altered = change(address)  # type: ignore[operator]

    assert altered != address
    assert return_path.read(altered, secret=SECRET, domain=DOMAIN) is None


def test_the_envelope_recipient_is_found_in_the_first_received_header() -> None:
    address = return_path.make("acme", "msg-1", secret=SECRET, domain=DOMAIN)
    raw = (
        f"Received: from mx.example.net by inbound-smtp.us-east-1.amazonaws.com with SMTP id x\r\n"
        f" for {address}; Tue, 1 Dec 2026 10:00:00 +0000\r\n"
        f"From: MAILER-DAEMON@mx.example.net\r\nTo: someone@example.net\r\n\r\nbody"
    ).encode()

    assert envelope_candidates(raw)[0] == address
    owner = owner_of(raw, secret=SECRET, domain=DOMAIN)
    assert (owner.account, owner.message, owner.address) == ("acme", "msg-1", address)


def test_a_forged_return_path_is_unattributed_with_the_reason() -> None:
    raw = f"To: rp=acme=msg-1=aaaaaaaaaaaaaaaa@{DOMAIN}\r\n\r\nbody".encode()

    with pytest.raises(Unattributed, match="forged"):
        owner_of(raw, secret=SECRET, domain=DOMAIN)


def test_mail_without_any_return_path_is_unattributed() -> None:
    with pytest.raises(Unattributed, match="no return path"):
        owner_of(b"To: jane@example.com\r\n\r\nhello", secret=SECRET, domain=DOMAIN)


def test_an_empty_or_too_long_account_or_message_or_an_empty_secret_is_refused() -> None:
    with pytest.raises(return_path.ReturnPathError):
        return_path.make("", "msg-1", secret=SECRET, domain=DOMAIN)
    with pytest.raises(return_path.ReturnPathError):
        return_path.make("a" * 65, "msg-1", secret=SECRET, domain=DOMAIN)
    with pytest.raises(return_path.ReturnPathError):
        return_path.make("acme", "m" * 256, secret=SECRET, domain=DOMAIN)
    with pytest.raises(return_path.ReturnPathError):
        return_path.make("acme", "msg-1", secret=b"", domain=DOMAIN)
