"""End to end under moto over real loopback HTTP: POST /events -> fan-out -> delivery -> receiver."""

from __future__ import annotations

import json
import time
import uuid
from datetime import datetime
from typing import Any
from urllib.parse import parse_qs

import boto3
import pytest
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from tests.conftest import LocalStack, publish_verification_file, sample_event
from tests.receiver import Received, Receiver
from webhooks.event_types import EventType
from webhooks.events import parse_event

ALL_TYPES = [t.value for t in EventType]


def active_hook(local: LocalStack, receiver: Receiver, token: str, **fields: Any) -> dict[str, Any]:
    body = {"url": f"{receiver.url}/dir/script.php", "events": ALL_TYPES, **fields}
    created = local.call("POST", "/hooks", token, body)
    assert created.status == 201, created.body
    hook = created.json()
    publish_verification_file(receiver, hook)
    local.call("POST", f"/hooks/{hook['id']}/validate", token)
    local.wait_for_status(token, hook["id"], "active")
    return hook


def verify(hook: dict[str, Any], post: Received) -> None:
    """Raises unless the official Standard Webhooks library accepts the signature."""
    headers = {k.lower(): v for k, v in post.headers.items()}
    Webhook(hook["secret"]).verify(post.body, headers, json_parse=False)


def form_fields(body: bytes) -> dict[str, list[str]]:
    return parse_qs(body.decode(), keep_blank_values=True)


def test_every_event_type_reaches_a_validated_receiver_signed_with_its_fields(
    local: LocalStack, receiver: Receiver
) -> None:
    _, token = local.token()
    hook = active_hook(local, receiver, token)
    sent = sample_event("platform_events.json")["events"]

    accepted = local.call("POST", "/events", token, {"events": sent})
    assert accepted.status == 202, accepted.body
    assert accepted.json()["accepted"] == len(sent) == len(ALL_TYPES)
    local.drain()

    posts = receiver.wait_for_posts(len(sent))
    assert len(posts) == len(sent)
    by_type = {}
    for post in posts:
        verify(hook, post)
        assert post.headers["content-type"] == "application/x-www-form-urlencoded"
        fields = form_fields(post.body)
        by_type[fields["type"][0]] = fields
    assert sorted(by_type) == sorted(ALL_TYPES)
    for raw in sent:
        expected = parse_event(raw).payload()
        fields = by_type[raw["type"]]
        # Exactly the type's fields, arrays the PHP way: tags[]=a, fields[name]=v, interests[]=x
        # (an empty array has no pairs in this encoding, as with PHP's http_build_query).
        names = {name.split("[")[0] for name in fields}
        assert names == {k for k, v in expected.items() if v not in ([], {})}, raw["type"]
    assert by_type["click"]["original"] == ["https://shop.example.com/sale?utm=mail"]
    assert by_type["click"]["tags[]"] == ["newsletter", "november"]
    assert by_type["create"]["fields[name]"] == ["Jane"]
    assert by_type["create"]["interests[]"] == ["shoes", "bags"]
    assert by_type["update"]["subprofile"] == ["88"]
    assert "interests[]" not in by_type["update"]
    assert by_type["failure"]["code"] == ["550"]


def test_json_hooks_receive_the_same_event_as_a_json_object(local: LocalStack, receiver: Receiver) -> None:
    _, token = local.token()
    hook = active_hook(local, receiver, token, format="json")
    click = sample_event("platform_events.json")["events"][0]
    local.call("POST", "/events", token, {"events": [click]})
    local.drain()
    [post] = receiver.wait_for_posts(1)
    assert post.headers["content-type"] == "application/json"
    headers = {k.lower(): v for k, v in post.headers.items()}
    assert Webhook(hook["secret"]).verify(post.body, headers) == parse_event(click).payload()


def test_hooks_hear_only_their_event_types_and_database(local: LocalStack, receiver: Receiver) -> None:
    _, token = local.token()
    active_hook(local, receiver, token, events=["open"], database=12)
    events = sample_event("platform_events.json")["events"]
    other_database = {**events[1], "database": 99}
    local.call("POST", "/events", token, {"events": [*events, other_database]})
    local.drain()
    time.sleep(0.2)
    assert [form_fields(p.body)["type"] for p in receiver.posts] == [["open"]]


def test_events_of_one_account_never_reach_another_accounts_hooks(
    local: LocalStack, receiver: Receiver
) -> None:
    _, token_a = local.token()
    _, token_b = local.token()
    active_hook(local, receiver, token_a)
    local.call("POST", "/events", token_b, sample_event("platform_events.json"))
    local.drain()
    time.sleep(0.2)
    assert receiver.posts == []


def test_a_failing_receiver_gets_every_retry_then_the_delivery_is_dead_lettered_and_replayable(
    local: LocalStack, receiver: Receiver
) -> None:
    _, token = local.token()
    hook = active_hook(local, receiver, token)
    receiver.status = 500
    click = sample_event("platform_events.json")["events"][0]
    local.call("POST", "/events", token, {"events": [click]})

    attempts = len(local.stack.parameters["RetrySchedule"].split(","))
    deadline = time.monotonic() + 20
    while len(receiver.posts) < attempts and time.monotonic() < deadline:
        local.drain(timeout=1)
        time.sleep(0.2)
    assert len(receiver.posts) == attempts
    # Retries reuse the delivery's id, so receivers can de-duplicate.
    assert len({p.headers["webhook-id"] for p in receiver.posts}) == 1

    [dead] = local.messages("DeliveryDLQ")
    assert json.loads(dead["Body"])["hook_id"] == hook["id"]
    log = local.call("GET", f"/hooks/{hook['id']}/deliveries", token).json()["attempts"]
    assert [a["outcome"] for a in log] == ["failed"] + ["retrying"] * (attempts - 1)
    assert {a["status"] for a in log} == {500}
    # For people: attempt n of m, readable times, when the next one comes, which run.
    assert [(a["attempt"], a["attempt_of"], a["run"]) for a in log] == [
        (n, attempts, 0) for n in range(attempts, 0, -1)
    ]
    for a in log:
        assert datetime.fromisoformat(a["attempted_at"]).timestamp() == pytest.approx(a["at"], abs=0.001)
    assert log[0]["next_attempt_at"] is None  # given up
    for a in log[1:]:
        assert datetime.fromisoformat(a["next_attempt_at"]) >= datetime.fromisoformat(a["attempted_at"])
    only = local.call("GET", f"/hooks/{hook['id']}/deliveries?outcome=retrying", token).json()["attempts"]
    assert [a["outcome"] for a in only] == ["retrying"] * (attempts - 1)
    assert local.call("GET", f"/hooks/{hook['id']}/deliveries?type=open", token).json()["attempts"] == []
    assert local.call("GET", f"/hooks/{hook['id']}/deliveries?outcome=lost", token).status == 422

    receiver.status = 200
    replay = local.call("POST", f"/hooks/{hook['id']}/replay", token, {})
    assert replay.status == 202
    assert replay.json() == {"replayed": 1}
    local.drain()
    posts = receiver.wait_for_posts(attempts + 1)
    assert len(posts) == attempts + 1
    verify(hook, posts[-1])
    assert posts[-1].headers["webhook-id"] == posts[0].headers["webhook-id"]
    # The replay is the delivery's second run, told apart in the log.
    [replayed] = local.call("GET", f"/hooks/{hook['id']}/deliveries?limit=1", token).json()["attempts"]
    assert (replayed["outcome"], replayed["attempt"], replayed["run"]) == ("succeeded", 1, 1)
    # No body at all means everything, like {}.
    assert local.call("POST", f"/hooks/{hook['id']}/replay", token).json() == {"replayed": 0}


def test_a_post_retried_under_the_same_idempotency_key_reaches_the_receiver_with_the_same_webhook_id(
    local: LocalStack, receiver: Receiver
) -> None:
    _, token = local.token()
    hook = active_hook(local, receiver, token)
    click = sample_event("platform_events.json")["events"][:1]
    for _ in range(2):  # the producer timed out on the first answer and sends again
        local.call("POST", "/events", token, {"events": click}, headers={"Idempotency-Key": "retry-1"})
    local.drain()
    first, again = receiver.wait_for_posts(2)
    assert first.headers["webhook-id"] == again.headers["webhook-id"]
    assert first.body == again.body  # the sample click carries its time: the same payload
    verify(hook, first)
    verify(hook, again)


def test_a_hook_shows_since_when_its_deliveries_fail_until_one_succeeds(
    local: LocalStack, receiver: Receiver
) -> None:
    _, token = local.token()
    hook = active_hook(local, receiver, token)
    assert local.call("GET", f"/hooks/{hook['id']}", token).json()["failing_since"] is None
    click = sample_event("platform_events.json")["events"][:1]

    receiver.status = 500
    before = int(time.time())
    local.call("POST", "/events", token, {"events": click})
    local.pump("IngestQueue")
    local.pump("DeliveryQueue")  # the first attempt fails; its retries wait
    failing = local.call("GET", f"/hooks/{hook['id']}", token).json()
    assert failing["failing_since"] >= before
    [listed] = local.call("GET", "/hooks", token).json()["hooks"]
    assert listed["failing_since"] == failing["failing_since"]

    receiver.status = 200
    local.call("POST", "/events", token, {"events": click})
    local.pump("IngestQueue")
    receiver.wait_for_posts(1)
    deadline = time.monotonic() + 10
    while len(receiver.posts) < 2 and time.monotonic() < deadline:
        local.pump("DeliveryQueue")
    assert len(receiver.posts) >= 2  # a success after the failure
    assert local.call("GET", f"/hooks/{hook['id']}", token).json()["failing_since"] is None


def test_a_receiver_answering_410_disables_the_hook(local: LocalStack, receiver: Receiver) -> None:
    _, token = local.token()
    hook = active_hook(local, receiver, token)
    receiver.status = 410
    local.call("POST", "/events", token, {"events": sample_event("platform_events.json")["events"][:1]})
    local.drain()
    assert len(receiver.posts) == 1
    answer = local.call("GET", f"/hooks/{hook['id']}", token).json()
    assert answer["status"] == "disabled"
    assert "410" in answer["disabled_reason"]


@pytest.mark.parametrize("status", [301, 302, 404, 429, 503])
def test_non_2xx_answers_are_retried_not_followed(local: LocalStack, receiver: Receiver, status: int) -> None:
    _, token = local.token()
    hook = active_hook(local, receiver, token)
    receiver.status = status
    receiver.extra_headers = {"Location": f"{receiver.url}/elsewhere"}
    local.call("POST", "/events", token, {"events": sample_event("platform_events.json")["events"][:1]})
    local.pump("IngestQueue")
    local.pump("DeliveryQueue")
    assert [p.path for p in receiver.posts] == ["/dir/script.php"]
    [attempt] = local.call("GET", f"/hooks/{hook['id']}/deliveries", token).json()["attempts"]
    assert (attempt["status"], attempt["outcome"]) == (status, "retrying")


def test_after_a_rotation_both_the_new_and_the_old_secret_verify_deliveries(
    local: LocalStack, receiver: Receiver
) -> None:
    _, token = local.token()
    hook = active_hook(local, receiver, token)
    rotated = local.call("POST", f"/hooks/{hook['id']}/secret/rotate", token).json()
    local.call("POST", "/events", token, {"events": sample_event("platform_events.json")["events"][:1]})
    local.drain()
    [post] = receiver.wait_for_posts(1)
    assert len(post.headers["webhook-signature"].split(" ")) == 2
    verify(hook, post)
    verify({**hook, "secret": rotated["secret"]}, post)
    with pytest.raises(WebhookVerificationError):
        verify({**hook, "secret": "whsec_" + "A" * 43 + "="}, post)


def test_a_hook_failing_for_days_is_disabled_with_a_metric_and_an_event(
    local: LocalStack, receiver: Receiver, capsys: pytest.CaptureFixture[str]
) -> None:
    events = boto3.client("events", region_name="us-east-1")
    watcher = local.sqs.create_queue(QueueName=f"watch-{uuid.uuid4().hex[:8]}")["QueueUrl"]
    watcher_arn = local.sqs.get_queue_attributes(QueueUrl=watcher, AttributeNames=["QueueArn"])["Attributes"]
    events.put_rule(Name="hook-disabled", EventPattern=json.dumps({"detail-type": ["Hook Disabled"]}))
    events.put_targets(Rule="hook-disabled", Targets=[{"Id": "q", "Arn": watcher_arn["QueueArn"]}])

    account, token = local.token()
    hook = active_hook(local, receiver, token)
    days = int(local.stack.parameters["DisableAfterSeconds"]) / 86_400
    local.table("HooksTable").update_item(
        Key={"account": account, "id": hook["id"]},
        UpdateExpression="SET failing_since = :t",
        ExpressionAttributeValues={":t": int(time.time()) - 6 * 86_400},
    )
    receiver.status = 500
    local.call("POST", "/events", token, {"events": sample_event("platform_events.json")["events"][:1]})
    capsys.readouterr()
    local.drain()

    disabled = local.call("GET", f"/hooks/{hook['id']}", token).json()
    assert disabled["status"] == "disabled"
    assert disabled["disabled_reason"] == f"no successful delivery for {days:g} days"
    [message] = local.sqs.receive_message(QueueUrl=watcher).get("Messages", [])
    assert json.loads(message["Body"])["detail"] == {
        "account": account,
        "hook_id": hook["id"],
        "url": hook["url"],
        "reason": disabled["disabled_reason"],
    }
    emitted = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"_aws"' in line]
    assert any(m.get("HooksDisabled") == [1.0] or m.get("HooksDisabled") == 1.0 for m in emitted), emitted
