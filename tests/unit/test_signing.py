"""webhooks.signing: Standard Webhooks signatures, checked by the official `standardwebhooks` package."""

from __future__ import annotations

import base64
import re
import time

import pytest
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from tests.unit.conftest import OLD_SECRET, SECRET
from webhooks.signing import new_secret, signature, signature_headers

FORM_BODY = b"id=msg-1&type=open&tags%5B%5D=a"
JSON_BODY = b'{"id":"msg-1","type":"open"}'


def signed(secrets: list[str], body: bytes, msg_id: str = "msg_1") -> dict[str, str]:
    # The verifier refuses timestamps more than 5 minutes from its own clock.
    return signature_headers(secrets, msg_id, int(time.time()), body)


def test_signature_matches_the_standard_webhooks_test_vector() -> None:
    assert (
        signature(
            "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1614265330,
            b'{"test": 2432232314}',
        )
        == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
    )


def test_headers_carry_id_timestamp_and_signature() -> None:
    headers = signature_headers([SECRET], "msg_1", 1795428000, JSON_BODY)
    assert set(headers) == {"webhook-id", "webhook-timestamp", "webhook-signature"}
    assert headers["webhook-id"] == "msg_1"
    assert headers["webhook-timestamp"] == "1795428000"
    assert re.fullmatch(r"v1,[A-Za-z0-9+/]{43}=", headers["webhook-signature"])


def test_standardwebhooks_verifies_a_json_body() -> None:
    headers = signed([SECRET], JSON_BODY)
    assert Webhook(SECRET).verify(JSON_BODY, headers) == {"id": "msg-1", "type": "open"}


def test_standardwebhooks_verifies_a_form_body_without_json_parsing() -> None:
    headers = signed([SECRET], FORM_BODY)
    assert Webhook(SECRET).verify(FORM_BODY, headers, json_parse=False) is None


def test_rotation_sends_two_space_separated_signatures() -> None:
    headers = signed([SECRET, OLD_SECRET], JSON_BODY)
    first, second = headers["webhook-signature"].split(" ")
    assert first.startswith("v1,")
    assert second.startswith("v1,")
    assert first != second


@pytest.mark.parametrize("secret", [SECRET, OLD_SECRET])
def test_rotation_header_is_verified_by_each_secret_alone(secret: str) -> None:
    headers = signed([SECRET, OLD_SECRET], FORM_BODY)
    Webhook(secret).verify(FORM_BODY, headers, json_parse=False)


def test_tampered_body_fails_verification() -> None:
    headers = signed([SECRET], FORM_BODY)
    with pytest.raises(WebhookVerificationError, match="No matching signature"):
        Webhook(SECRET).verify(FORM_BODY.replace(b"open", b"click"), headers, json_parse=False)


def test_changed_id_fails_verification() -> None:
    headers = signed([SECRET], FORM_BODY)
    headers["webhook-id"] = "msg_2"
    with pytest.raises(WebhookVerificationError, match="No matching signature"):
        Webhook(SECRET).verify(FORM_BODY, headers, json_parse=False)


def test_wrong_secret_fails_verification() -> None:
    headers = signed([SECRET], FORM_BODY)
    with pytest.raises(WebhookVerificationError, match="No matching signature"):
        Webhook(OLD_SECRET).verify(FORM_BODY, headers, json_parse=False)


def test_new_secret_is_whsec_and_base64_of_32_bytes() -> None:
    secret = new_secret()
    assert secret.startswith("whsec_")
    assert len(base64.b64decode(secret.removeprefix("whsec_"), validate=True)) == 32


def test_two_new_secrets_differ() -> None:
    assert new_secret() != new_secret()


def test_new_secret_signs_what_standardwebhooks_verifies() -> None:
    secret = new_secret()
    Webhook(secret).verify(FORM_BODY, signed([secret], FORM_BODY), json_parse=False)
