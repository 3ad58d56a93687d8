"""Fixtures shared by the unit tests: hooks, the sample platform events, a frozen clock, settings."""

from __future__ import annotations

import datetime as dt
import socket
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import sample_event
from webhooks import events, queues, safe_http
from webhooks.delivery_message import DeliveryMessage
from webhooks.hooks import Hook

# Two fixed signing secrets (base64 of bytes 0..31 and 32..63), so hooks built in tests are stable.
SECRET = "whsec_AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="
OLD_SECRET = "whsec_ICEiIyQlJicoKSorLC0uLzAxMjM0NTY3ODk6Ozw9Pj8="

# The moment the frozen clock shows: 2026-11-23 10:02:03.456789 UTC.
FROZEN_TIMESTAMP = "2026-11-23 10:02:03"
FROZEN_TIME = 1795428123

ALL_EVENT_TYPES = [
    "click", "open", "bounce", "failure", "delivery", "create", "update", "delete", "unsubscribe", "abuse",
]  # fmt: skip

# The environment a function gets from the template, reduced to the required variables.
REQUIRED_ENV = {
    "HOOKS_TABLE": "hooks-table",
    "DELIVERIES_TABLE": "deliveries-table",
    "INGEST_QUEUE_URL": "https://sqs.us-east-1.amazonaws.com/123456789012/ingest",
    "DELIVERY_QUEUE_URL": "https://sqs.us-east-1.amazonaws.com/123456789012/delivery",
    "DELIVERY_DLQ_URL": "https://sqs.us-east-1.amazonaws.com/123456789012/delivery-dlq",
}


@pytest.fixture
def make_hook() -> Callable[..., Hook]:
    """Builds an active hook subscribed to every type; keyword arguments override any field."""

    def make(**overrides: Any) -> Hook:
        fields: dict[str, Any] = {
            "account": "acct-1",
            "id": "hook-1",
            "url": "https://receiver.example.com/hooks/script.php",
            "events": ALL_EVENT_TYPES,
            "status": "active",
            "secret": SECRET,
            "verification_file": "smtpeter-00112233445566778899aabbccddeeff.txt",
            "verification_contents": "contents-token",
            "validation_id": "val-1",
        }
        fields.update(overrides)
        return Hook.model_validate(fields)

    return make


@pytest.fixture
def sample_events() -> dict[str, dict[str, Any]]:
    """events/platform_events.json by type: one event of each of the ten types."""
    return {event["type"]: event for event in sample_event("platform_events.json")["events"]}


class _FrozenDatetime(datetime):
    @classmethod
    def now(cls, tz: Any = None) -> _FrozenDatetime:
        return cls(2026, 11, 23, 10, 2, 3, 456789, tzinfo=UTC)


@pytest.fixture
def frozen_now(monkeypatch: pytest.MonkeyPatch) -> None:
    """Events without timestamp and time get 2026-11-23 10:02:03.456789 UTC as their moment."""
    monkeypatch.setattr(events, "datetime", _FrozenDatetime)


@pytest.fixture
def env() -> dict[str, str]:
    return dict(REQUIRED_ENV)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Clock:
    """A clock the test moves by hand: `clock.now += ttl`."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class Pki:
    """A test certificate authority and, signed by it, a certificate for hooks.example.test (and one
    that expired yesterday), as PEM files."""

    ca_file: Path
    cert_file: Path
    key_file: Path
    expired_cert_file: Path
    names_seen: list[str | None] = field(default_factory=list)


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = datetime.now(UTC)
    day = dt.timedelta(days=1)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "webhooks test CA")])
    usage = x509.KeyUsage(
        digital_signature=True,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=True,
        crl_sign=True,
        encipher_only=False,
        decipher_only=False,
    )
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - day)
        .not_valid_after(now + day)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(usage, critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())

    def leaf(not_before: datetime, not_after: datetime) -> x509.Certificate:
        return (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "hooks.example.test")]))
            .issuer_name(ca_name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(not_before)
            .not_valid_after(not_after)
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("hooks.example.test")]), critical=False)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
            )
            .sign(ca_key, hashes.SHA256())
        )

    folder = tmp_path_factory.mktemp("pki")
    made = Pki(folder / "ca.pem", folder / "cert.pem", folder / "key.pem", folder / "expired.pem")
    pem = serialization.Encoding.PEM
    made.ca_file.write_bytes(ca.public_bytes(pem))
    made.cert_file.write_bytes(leaf(now - day, now + day).public_bytes(pem))
    made.expired_cert_file.write_bytes(leaf(now - 3 * day, now - day).public_bytes(pem))
    made.key_file.write_bytes(
        key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return made


@pytest.fixture
def connections(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[tuple[str, int]]]:
    """Every address the transport opens a socket to, recorded and then really connected; the
    process's pool is empty before and after."""
    safe_http.clear_caches()
    made: list[tuple[str, int]] = []
    real = safe_http._create_connection

    def record(address: tuple[str, int], *args: Any, **kwargs: Any) -> socket.socket:
        made.append(address)
        return real(address, *args, **kwargs)

    monkeypatch.setattr(safe_http, "_create_connection", record)
    yield made
    safe_http.clear_caches()


def delivery_record(
    hook_id: str,
    message_id: str,
    payload: dict[str, Any],
    *,
    receive_count: int = 1,
    attempts: int = 0,
    created_at: float = 0.0,
    body: str | None = None,
) -> queues.QueueRecord:
    """A delivery queue record as the event source mapping hands it over: an `open` of account acct-1."""
    message = DeliveryMessage(
        delivery_id=f"msg_{message_id}",
        event_id=f"evt_{message_id}",
        account="acct-1",
        hook_id=hook_id,
        type="open",
        payload=payload,
        attempts=attempts,
        created_at=created_at,
    )
    return queues.QueueRecord(
        message_id=message_id,
        body=message.to_body() if body is None else body,
        receipt_handle=f"rh-{message_id}",
        receive_count=receive_count,
    )
