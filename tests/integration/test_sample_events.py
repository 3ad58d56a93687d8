"""Every file in events/ is a valid event for its function: each handler is invoked with it under moto.

The API samples name account `acme` and hook `hk_examplehookid000000000000`; the test seeds both, so
each sample runs its route's success path, as `sam local invoke` against a deployed stack would.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
from standardwebhooks import Webhook

from devstack.lambda_router import Context
from tests.conftest import EVENTS, LocalStack, sample_event
from tests.receiver import Receiver
from webhooks import outbound_policy, signing
from webhooks.hook_store import HookStore
from webhooks.hooks import Hook, HookStatus

ACCOUNT = "acme"
HOOK_ID = "hk_examplehookid000000000000"
SAMPLE_TOKEN = "wht_example"

API_SAMPLES = {
    "api_create_hook.json": 201,
    "api_list_hooks.json": 200,
    "api_get_hook.json": 200,
    "api_update_hook.json": 200,
    "api_delete_hook.json": 204,
    "api_validate_hook.json": 202,
    "api_test_hook.json": 200,
    "api_get_secret.json": 200,
    "api_rotate_secret.json": 200,
    "api_list_deliveries.json": 200,
    "api_replay.json": 202,
    "api_ingest_events.json": 202,
    "api_openapi.json": 200,
}


@pytest.fixture
def example_hook(local: LocalStack, receiver: Receiver, monkeypatch: pytest.MonkeyPatch) -> Hook:
    # The samples' example.com names resolve to the test receiver's address.
    monkeypatch.setattr(outbound_policy, "_system_resolver", lambda host, port: ["127.0.0.1"])
    hook = Hook(
        account=ACCOUNT,
        id=HOOK_ID,
        url=f"{receiver.url}/dir/script.php",
        events=["click", "open", "bounce"],
        status=HookStatus.ACTIVE,
        secret=signing.new_secret(),
        verification_file="smtpeter-example.txt",
        verification_contents="example",
        validation_id="val_example",
        validated_at=int(time.time()),
    )
    HookStore(local.url("HooksTable")).create(hook)
    return hook


def invoke(local: LocalStack, logical_id: str, event: dict[str, Any]) -> Any:
    return local.handlers[logical_id](event, Context(local.functions[logical_id].name))


def test_there_is_a_sample_for_every_api_route_and_function(local: LocalStack) -> None:
    samples = {p.name for p in EVENTS.glob("*.json")}
    routes = {(r.method, r.path) for r in local.stack.api_routes()}
    sampled = {
        (e["httpMethod"], e["resource"])
        for e in (json.loads((EVENTS / name).read_text()) for name in API_SAMPLES)
    }
    assert sampled == routes
    assert {
        "authorizer.json",
        "validate_check.json",
        "fanout_sqs.json",
        "deliver_sqs.json",
        "returned_mail_sqs.json",
    } <= samples


@pytest.mark.parametrize(("name", "status"), API_SAMPLES.items())
def test_each_api_sample_runs_its_route(
    local: LocalStack, example_hook: Hook, name: str, status: int
) -> None:
    if name == "api_validate_hook.json":
        HookStore(local.url("HooksTable")).set_status(ACCOUNT, HOOK_ID, HookStatus.VALIDATION_FAILED)
    answer = invoke(local, "ApiFunction", sample_event(name))
    assert answer["statusCode"] == status, answer["body"]
    if answer["body"]:
        json.loads(answer["body"])


def test_the_authorizer_sample_yields_the_tokens_account(local: LocalStack) -> None:
    local.token(ACCOUNT)  # another token of the same account, unrelated
    from webhooks.auth import TokenStore

    TokenStore(local.url("TokensTable")).create(ACCOUNT, "sample", token=SAMPLE_TOKEN)
    policy = invoke(local, "AuthorizerFunction", sample_event("authorizer.json"))
    assert policy["principalId"] == ACCOUNT
    assert policy["context"] == {"account": ACCOUNT}
    assert policy["policyDocument"]["Statement"][0]["Effect"] == "Allow"


def test_the_validate_sample_checks_the_file_once(
    local: LocalStack, example_hook: Hook, receiver: Receiver
) -> None:
    HookStore(local.url("HooksTable")).set_status(ACCOUNT, HOOK_ID, HookStatus.PENDING_VALIDATION)
    result = invoke(local, "ValidateFunction", sample_event("validate_check.json"))
    assert result["outcome"] == "missing"
    assert result["attempt"] == 1
    assert receiver.gets == ["/dir/smtpeter-example.txt", "/smtpeter-example.txt"]


def test_the_fanout_sample_queues_a_delivery_per_event(local: LocalStack, example_hook: Hook) -> None:
    result = invoke(local, "FanoutFunction", sample_event("fanout_sqs.json"))
    assert result == {"batchItemFailures": []}
    deliveries = [json.loads(m["Body"]) for m in local.messages("DeliveryQueue")]
    assert sorted(d["type"] for d in deliveries) == ["click", "open"]
    assert {d["hook_id"] for d in deliveries} == {HOOK_ID}


def test_the_deliver_sample_posts_a_signed_event(
    local: LocalStack, example_hook: Hook, receiver: Receiver
) -> None:
    result = invoke(local, "DeliverFunction", sample_event("deliver_sqs.json"))
    assert result == {"batchItemFailures": []}
    [post] = receiver.posts
    Webhook(example_hook.secret).verify(post.body, post.headers, json_parse=False)
    assert post.headers["webhook-id"] == "msg_exampledelivery0001"


def test_sample_files_are_json_objects(local: LocalStack) -> None:
    for path in Path(EVENTS).glob("*.json"):
        assert isinstance(json.loads(path.read_text()), dict), path.name
