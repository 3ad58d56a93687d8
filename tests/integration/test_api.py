"""The management API through the in-process gateway: authorizer, routes, errors, tenancy."""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

import pytest
from openapi_spec_validator import validate

from tests.conftest import ROOT, LocalStack, publish_verification_file, sample_event
from tests.receiver import Receiver


def hook_body(receiver: Receiver, **fields: Any) -> dict[str, Any]:
    return {"url": f"{receiver.url}/dir/script.php", "events": ["click", "open"], **fields}


def test_create_answers_201_with_id_status_secret_and_verification(
    local: LocalStack, receiver: Receiver
) -> None:
    _, token = local.token()
    answer = local.call("POST", "/hooks", token, hook_body(receiver, database=12, description="crm"))
    assert answer.status == 201
    hook = answer.json()
    assert hook["id"].startswith("hk_")
    assert hook["status"] == "pending_validation"
    assert hook["secret"].startswith("whsec_")
    assert hook["database"] == "12"
    file = hook["verification"]
    assert file["file_name"].startswith("smtpeter-")
    assert file["file_name"].endswith(".txt")
    assert len(file["file_name"]) >= len("smtpeter-.txt") + 32  # 128 bits as hex
    assert file["contents"] not in file["file_name"]
    assert file["urls"] == [
        f"{receiver.url}/dir/{file['file_name']}",
        f"{receiver.url}/{file['file_name']}",
    ]


def executions(local: LocalStack) -> int:
    return sum(
        len(local.sfn.list_executions(stateMachineArn=machine["stateMachineArn"])["executions"])
        for machine in local.sfn.list_state_machines()["stateMachines"]
    )


def test_a_create_sent_again_under_its_idempotency_key_answers_the_same_hook_and_starts_nothing(
    local: LocalStack, receiver: Receiver
) -> None:
    _, token = local.token()
    key = {"Idempotency-Key": "crm-sync-42"}
    first = local.call("POST", "/hooks", token, hook_body(receiver), headers=key)
    assert first.status == 201, first.body
    started = executions(local)
    again = local.call(
        "POST", "/hooks", token, hook_body(receiver), headers={"idempotency-key": "crm-sync-42"}
    )
    assert (again.status, again.json()) == (201, first.json())  # the secret too: the same answer
    assert executions(local) == started
    assert [h["id"] for h in local.call("GET", "/hooks", token).json()["hooks"]] == [first.json()["id"]]
    other = local.call(
        "POST", "/hooks", token, hook_body(receiver), headers={"Idempotency-Key": "crm-sync-43"}
    )
    assert other.status == 201
    assert other.json()["id"] != first.json()["id"]
    # Keys are the account's own: another account's same key and request registers its own hook.
    _, token_b = local.token()
    theirs = local.call("POST", "/hooks", token_b, hook_body(receiver), headers=key)
    assert theirs.status == 201
    assert theirs.json()["id"] != first.json()["id"]


def test_another_request_under_a_used_idempotency_key_is_409_and_changes_nothing(
    local: LocalStack, receiver: Receiver
) -> None:
    _, token = local.token()
    key = {"Idempotency-Key": "crm-sync-42"}
    first = local.call("POST", "/hooks", token, hook_body(receiver), headers=key).json()
    answer = local.call("POST", "/hooks", token, hook_body(receiver, description="other"), headers=key)
    assert answer.status == 409, answer.body
    assert [f["field"] for f in answer.json()["error"]["fields"]] == ["idempotency-key"]
    assert local.call("GET", f"/hooks/{first['id']}", token).json()["description"] is None
    assert len(local.call("GET", "/hooks", token).json()["hooks"]) == 1


def test_a_create_that_failed_can_be_sent_again_under_the_same_idempotency_key(
    local: LocalStack, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    from webhooks import aws

    _, token = local.token()
    key = {"Idempotency-Key": "crm-sync-42"}
    refused = local.call("POST", "/hooks", token, hook_body(receiver, url="ftp://example.com/x"), headers=key)
    assert refused.status == 422
    with monkeypatch.context() as patched:
        patched.setattr(aws.client("stepfunctions"), "start_execution", _step_functions_down)
        assert local.call("POST", "/hooks", token, hook_body(receiver), headers=key).status == 503
    created = local.call("POST", "/hooks", token, hook_body(receiver), headers=key)
    assert created.status == 201, created.body
    assert local.call("GET", f"/hooks/{created.json()['id']}", token).json()["status"] == "pending_validation"


def _step_functions_down(**kwargs: Any) -> None:
    raise RuntimeError("Step Functions is down")


def test_secrets_are_shown_on_create_rotate_and_explicit_get_only(
    local: LocalStack, receiver: Receiver
) -> None:
    _, token = local.token()
    hook = local.call("POST", "/hooks", token, hook_body(receiver)).json()
    assert "secret" not in local.call("GET", f"/hooks/{hook['id']}", token).json()
    assert all("secret" not in h for h in local.call("GET", "/hooks", token).json()["hooks"])
    assert local.call("GET", f"/hooks/{hook['id']}/secret", token).json()["secret"] == hook["secret"]
    rotated = local.call("POST", f"/hooks/{hook['id']}/secret/rotate", token).json()
    assert rotated["secret"] != hook["secret"]
    assert rotated["previous_secret_expires_at"] > 0


def test_list_filters_by_database_collection_and_event_and_pages(
    local: LocalStack, receiver: Receiver
) -> None:
    _, token = local.token()
    for database, events in [(1, ["click"]), (1, ["open"]), (2, ["click"])]:
        local.call("POST", "/hooks", token, hook_body(receiver, database=database, events=events))
    local.call("POST", "/hooks", token, hook_body(receiver, database=1, collection=7, events=["update"]))
    assert len(local.call("GET", "/hooks?database=1", token).json()["hooks"]) == 3
    assert len(local.call("GET", "/hooks?database=1&event=click", token).json()["hooks"]) == 1
    assert len(local.call("GET", "/hooks?collection=7", token).json()["hooks"]) == 1
    seen, cursor, pages = [], None, 0
    while pages < 10:
        page = local.call("GET", "/hooks?limit=3" + (f"&cursor={cursor}" if cursor else ""), token).json()
        seen += [h["id"] for h in page["hooks"]]
        pages += 1
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert len(seen) == len(set(seen)) == 4
    assert pages == 2


def test_list_filters_by_status(local: LocalStack, receiver: Receiver) -> None:
    _, token = local.token()
    first = local.call("POST", "/hooks", token, hook_body(receiver)).json()
    local.call("POST", "/hooks", token, hook_body(receiver))
    publish_verification_file(receiver, first)
    local.call("POST", f"/hooks/{first['id']}/validate", token)
    local.wait_for_status(token, first["id"], "active")
    active = local.call("GET", "/hooks?status=active", token).json()["hooks"]
    pending = local.call("GET", "/hooks?status=pending_validation", token).json()["hooks"]
    assert [h["id"] for h in active] == [first["id"]]
    assert len(pending) == 1
    assert pending[0]["id"] != first["id"]
    assert local.call("GET", "/hooks?status=validation_failed", token).json()["hooks"] == []
    wrong = local.call("GET", "/hooks?status=sleeping", token)
    assert wrong.status == 422
    assert wrong.json()["error"]["fields"][0]["field"] == "status"


def test_patch_changes_fields_and_a_new_url_resets_validation(local: LocalStack, receiver: Receiver) -> None:
    _, token = local.token()
    hook = local.call("POST", "/hooks", token, hook_body(receiver)).json()
    changed = local.call("PATCH", f"/hooks/{hook['id']}", token, {"events": ["bounce"], "description": "x"})
    assert changed.status == 200
    assert changed.json()["events"] == ["bounce"]
    assert changed.json()["verification"] == hook["verification"]
    moved = local.call("PATCH", f"/hooks/{hook['id']}", token, {"url": f"{receiver.url}/new/path"}).json()
    assert moved["status"] == "pending_validation"
    assert moved["verification"]["file_name"] != hook["verification"]["file_name"]


def test_delete_removes_the_hook(local: LocalStack, receiver: Receiver) -> None:
    _, token = local.token()
    hook = local.call("POST", "/hooks", token, hook_body(receiver)).json()
    assert local.call("DELETE", f"/hooks/{hook['id']}", token).status == 204
    assert local.call("GET", f"/hooks/{hook['id']}", token).status == 404
    assert local.call("DELETE", f"/hooks/{hook['id']}", token).status == 404


ROUTES = [
    ("GET", "/hooks/{id}", None),
    ("PATCH", "/hooks/{id}", {"description": "mine now"}),
    ("DELETE", "/hooks/{id}", None),
    ("POST", "/hooks/{id}/validate", None),
    ("POST", "/hooks/{id}/test", {"data": {"x": 1}}),
    ("GET", "/hooks/{id}/secret", None),
    ("POST", "/hooks/{id}/secret/rotate", None),
    ("GET", "/hooks/{id}/deliveries", None),
    ("POST", "/hooks/{id}/replay", {}),
]


@pytest.mark.parametrize(("method", "path", "body"), ROUTES)
def test_another_accounts_hook_is_404_and_unchanged(
    local: LocalStack, receiver: Receiver, method: str, path: str, body: Any
) -> None:
    _, token_a = local.token()
    _, token_b = local.token()
    hook = local.call("POST", "/hooks", token_a, hook_body(receiver)).json()
    before = local.call("GET", f"/hooks/{hook['id']}", token_a).json()
    answer = local.call(method, path.format(id=hook["id"]), token_b, body)
    assert answer.status == 404
    assert answer.json()["error"]["code"] == "not_found"
    assert local.call("GET", f"/hooks/{hook['id']}", token_a).json() == before
    assert local.call("GET", f"/hooks/{hook['id']}/secret", token_a).json()["secret"] == hook["secret"]
    assert local.call("GET", "/hooks", token_b).json()["hooks"] == []


@pytest.mark.parametrize("token", [None, "wrong-token-value", "wht_" + "x" * 43])
def test_requests_without_a_known_token_are_401(local: LocalStack, token: str | None) -> None:
    answer = local.call("GET", "/hooks", token)
    assert answer.status == 401
    assert answer.json()["error"]["code"] == "unauthorized"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"events": ["click"]}, "url"),
        ({"url": "http://127.0.0.1/x"}, "events"),
        ({"url": "http://127.0.0.1/x", "events": []}, "events"),
        ({"url": "http://127.0.0.1/x", "events": ["clicks"]}, "events[0]"),
        ({"url": "http://127.0.0.1/x", "events": ["click", "click"]}, "events"),
        ({"url": "http://127.0.0.1/x", "events": ["click"], "format": "xml"}, "format"),
        ({"url": "http://127.0.0.1/x", "events": ["click"], "colour": "red"}, "colour"),
        ({"url": "http://127.0.0.1/x", "events": ["click"], "description": "d" * 1001}, "description"),
        ({"url": "http://127.0.0.1/" + "x" * 2048, "events": ["click"]}, "url"),
        ({"url": "ftp://example.com/x", "events": ["click"]}, "url"),
        ({"url": "http://user:pw@127.0.0.1/x", "events": ["click"]}, "url"),
        ({"url": "http://169.254.169.254/latest/meta-data", "events": ["click"]}, "url"),
        ({"url": "http://127.0.0.1/x", "events": ["click"], "rate_limit": 0}, "rate_limit"),
    ],
)
def test_invalid_hooks_get_422_naming_the_field_and_nothing_is_written(
    local: LocalStack, body: dict[str, Any], field: str
) -> None:
    _, token = local.token()
    answer = local.call("POST", "/hooks", token, body)
    assert answer.status == 422, answer.body
    error = answer.json()["error"]
    assert field in [f["field"] for f in error["fields"]], error
    assert all(f["reason"] for f in error["fields"])
    assert local.call("GET", "/hooks", token).json()["hooks"] == []


def test_malformed_json_is_400(local: LocalStack) -> None:
    _, token = local.token()
    answer = local.call("POST", "/hooks", token, raw=b'{"url": ')
    assert answer.status == 400
    assert answer.json()["error"]["fields"][0]["field"] == "body"


def test_a_body_that_is_not_json_is_415(local: LocalStack) -> None:
    _, token = local.token()
    answer = local.call(
        "POST", "/hooks", token, raw=b"url=x", content_type="application/x-www-form-urlencoded"
    )
    assert answer.status == 415


def test_unknown_routes_are_404_and_wrong_methods_405(local: LocalStack) -> None:
    _, token = local.token()
    assert local.call("GET", "/nothing", token).status == 404
    assert local.call("PUT", "/hooks", token, {}).status == 405


def test_events_are_accepted_with_ids(local: LocalStack) -> None:
    _, token = local.token()
    events = sample_event("platform_events.json")
    answer = local.call("POST", "/events", token, events)
    assert answer.status == 202
    assert answer.json()["accepted"] == len(events["events"]) == 10  # one of each type
    assert len(set(answer.json()["event_ids"])) == 10
    assert len(local.messages("IngestQueue")) == 10


def test_events_sent_again_under_the_same_idempotency_key_keep_their_ids(local: LocalStack) -> None:
    _, token = local.token()
    events = sample_event("platform_events.json")

    def ids(headers: dict[str, str] | None = None) -> list[str]:
        answer = local.call("POST", "/events", token, events, headers=headers)
        assert answer.status == 202, answer.body
        return list(answer.json()["event_ids"])

    first = ids({"Idempotency-Key": "batch-2026-11-23T10:00:00Z"})
    assert ids({"idempotency-key": "batch-2026-11-23T10:00:00Z"}) == first  # header names are any case
    assert set(ids({"Idempotency-Key": "another-batch"})).isdisjoint(first)
    assert set(ids()).isdisjoint(first)
    # Both sends are queued (and delivered): the repeat is the receivers' to drop, by its ids.
    queued = Counter(json.loads(m["Body"])["event_id"] for m in local.messages("IngestQueue"))
    assert {queued[event_id] for event_id in first} == {2}
    assert queued.total() == 4 * len(first)


def test_other_events_under_a_reused_idempotency_key_get_ids_of_their_own(local: LocalStack) -> None:
    _, token = local.token()
    events = sample_event("platform_events.json")["events"]
    key = {"Idempotency-Key": "reused"}
    first = local.call("POST", "/events", token, {"events": events[:2]}, headers=key).json()["event_ids"]
    other = [{**events[0], "recipient": "someone-else@example.com"}, events[1]]
    second = local.call("POST", "/events", token, {"events": other}, headers=key).json()["event_ids"]
    assert second[0] != first[0]
    assert second[1] == first[1]
    # And across accounts a key means nothing: the same events, the same key, other ids.
    _, token_b = local.token()
    third = local.call("POST", "/events", token_b, {"events": events[:2]}, headers=key).json()["event_ids"]
    assert set(third).isdisjoint(first)


@pytest.mark.parametrize("key", ["", "k" * 256, "with space", "naïve", "tab\tkey"])
def test_an_invalid_idempotency_key_is_422_naming_it_and_nothing_is_queued(
    local: LocalStack, key: str
) -> None:
    _, token = local.token()
    events = sample_event("platform_events.json")
    answer = local.call("POST", "/events", token, events, headers={"Idempotency-Key": key})
    assert answer.status == 422, answer.body
    error = answer.json()["error"]
    assert error["fields"] == [
        {"field": "idempotency-key", "reason": "must be 1-255 visible ASCII characters (no spaces)"}
    ]
    assert "1-255 visible ASCII characters" in error["message"]
    assert local.messages("IngestQueue") == []


OPEN = {"type": "open", "id": "m", "recipient": "a@b.c"}
EVENT_TYPES = "click, open, bounce, failure, delivery, create, update, delete, unsubscribe, abuse"


@pytest.mark.parametrize(
    ("method", "path", "body", "field", "reason"),
    [
        ("POST", "/events", {"events": [{"type": "clik", "id": "m", "recipient": "a@b.c"}]}, "events[0].type",
         f"unknown event type 'clik'; expected one of {EVENT_TYPES}"),
        ("POST", "/events", {"events": [{"id": "m", "recipient": "a@b.c"}]}, "events[0].type",
         f"required: the event type, one of {EVENT_TYPES}"),
        ("POST", "/events", {"events": [{**OPEN, "timestamp": "today"}]}, "events[0].timestamp",
         "must be YYYY-MM-DD HH:MM:SS (UTC)"),
        ("POST", "/events", {"events": [{**OPEN, "x": 1}]}, "events[0].x", "unknown field"),
        ("POST", "/hooks", {"url": "http://127.0.0.1/x", "events": ["clik"]}, "events[0]",
         f"unknown event type 'clik'; expected one of {EVENT_TYPES}"),
        ("POST", "/hooks", {"url": "http://127.0.0.1/x", "events": ["click"], "database": "a b"}, "database",
         "must be 1-64 letters, digits, '_', '.' or '-' or a whole number"),
        ("POST", "/hooks", {"url": "http://127.0.0.1/x", "events": ["click"], "format": "xml"}, "format",
         "must be 'form' or 'json'"),
        ("POST", "/hooks", {"url": "http://127.0.0.1/x", "events": ["click", "click"]}, "events",
         "event types must not repeat"),
        ("POST", "/hooks", {"events": ["click"]}, "url", "required"),
        ("GET", "/hooks?event=clik", None, "event",
         f"unknown event type 'clik'; expected one of {EVENT_TYPES}"),
        ("GET", "/hooks?limit=abc", None, "limit", "must be a whole number"),
        ("PATCH", "/hooks/hk_x", {"url": None}, "url", "must not be null"),
    ],
)  # fmt: skip
def test_invalid_input_is_explained_in_words_in_the_fields_and_the_message(
    local: LocalStack, method: str, path: str, body: Any, field: str, reason: str
) -> None:
    _, token = local.token()
    answer = local.call(method, path, token, body)
    assert answer.status == 422, answer.body
    error = answer.json()["error"]
    assert {"field": field, "reason": reason} in error["fields"]
    assert f"{field}: {reason}" in error["message"]
    # No machine-speak: pydantic's tags, union branches, regular expressions or validator prefixes.
    for jargon in (
        "Input tag",
        "discriminator",
        "constrained-",
        "pattern",
        "^",
        "Value error",
        "Input should",
    ):
        assert jargon not in answer.body.decode(), jargon


@pytest.mark.parametrize(
    ("event", "field"),
    [
        ({"type": "click", "id": "m", "recipient": "a@b.c"}, "events[1].original"),
        ({"type": "opened", "id": "m", "recipient": "a@b.c"}, "events[1]"),
        ({"type": "open", "id": "m", "recipient": "a@b.c", "extra": 1}, "events[1].extra"),
        ({"type": "open", "id": "m", "recipient": "a@b.c", "time": "yesterday"}, "events[1].time"),
        ({"type": "failure", "id": "m", "recipient": "a@b", "action": "x", "state": "5"}, "events[1].action"),
        ({"type": "update", "profile": 1, "database": 2, "subprofile": 3, "created": "2026-01-01 00:00:00",
          "modified": "2026-01-01 00:00:00"}, "events[1]"),
    ],
)  # fmt: skip
def test_a_batch_with_one_invalid_event_is_422_and_nothing_is_queued(
    local: LocalStack, event: dict[str, Any], field: str
) -> None:
    _, token = local.token()
    good = {"type": "open", "id": "m", "recipient": "a@b.c"}
    answer = local.call("POST", "/events", token, {"events": [good, event]})
    assert answer.status == 422, answer.body
    fields = [f["field"] for f in answer.json()["error"]["fields"]]
    assert any(f.startswith(field) for f in fields), fields
    assert local.messages("IngestQueue") == []


def test_an_oversized_event_is_413(local: LocalStack) -> None:
    _, token = local.token()
    bounce = {"type": "bounce", "id": "m", "recipient": "a@b.c", "envelope": "x", "mime": "m" * 400_000}
    answer = local.call("POST", "/events", token, {"events": [bounce]})
    assert answer.status == 413
    assert answer.json()["error"]["fields"][0]["field"] == "events[0]"


def test_too_many_events_in_one_request_is_422(local: LocalStack) -> None:
    _, token = local.token()
    answer = local.call("POST", "/events", token, {"events": [{"type": "open"}] * 501})
    assert answer.status == 422
    assert answer.json()["error"]["fields"][0]["field"] == "events"


def test_the_openapi_document_is_public_and_lists_every_route(local: LocalStack) -> None:
    answer = local.call("GET", "/openapi.json")
    assert answer.status == 200
    document = answer.json()
    # The document itself and the pages that show it (API docs, dashboard) are not operations of the API.
    template_routes = {
        (r.method.lower(), r.path) for r in local.stack.api_routes() if r.function == "ApiFunction"
    } - {("get", "/openapi.json"), ("get", "/docs"), ("get", "/docs/{asset}")}
    documented = {(m, p) for p, item in document["paths"].items() for m in item}
    assert documented == template_routes


def test_the_committed_openapi_document_is_the_one_the_api_serves(local: LocalStack) -> None:
    served = local.call("GET", "/openapi.json").json()
    committed = json.loads((ROOT / "docs" / "openapi.json").read_text())
    assert served == committed, "run `make openapi` and commit docs/openapi.json"
    validate(committed)


def test_when_validation_cannot_start_nothing_is_written_and_the_answer_is_503(
    local: LocalStack, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    from webhooks import aws

    _, token = local.token()
    hook = local.call("POST", "/hooks", token, hook_body(receiver)).json()
    before = local.call("GET", f"/hooks/{hook['id']}", token).json()

    def unavailable(**kwargs: Any) -> None:
        raise RuntimeError("Step Functions is down")

    monkeypatch.setattr(aws.client("stepfunctions"), "start_execution", unavailable)
    created = local.call("POST", "/hooks", token, hook_body(receiver, description="second"))
    assert created.status == 503
    assert created.json()["error"]["code"] == "unavailable"
    moved = local.call("PATCH", f"/hooks/{hook['id']}", token, {"url": f"{receiver.url}/moved"})
    assert moved.status == 503
    restarted = local.call("POST", f"/hooks/{hook['id']}/validate", token)
    assert restarted.status == 503
    assert [h["id"] for h in local.call("GET", "/hooks", token).json()["hooks"]] == [hook["id"]]
    after = local.call("GET", f"/hooks/{hook['id']}", token).json()
    assert {k: v for k, v in after.items() if k != "updated_at"} == {
        k: v for k, v in before.items() if k != "updated_at"
    }


@pytest.mark.parametrize("field", ["url", "events", "format", "status"])
def test_patch_refuses_null_for_fields_a_hook_cannot_lack(
    local: LocalStack, receiver: Receiver, field: str
) -> None:
    _, token = local.token()
    hook = local.call("POST", "/hooks", token, hook_body(receiver)).json()
    answer = local.call("PATCH", f"/hooks/{hook['id']}", token, {field: None})
    assert answer.status == 422
    assert [f["field"] for f in answer.json()["error"]["fields"]] == [field]
    assert local.call("GET", f"/hooks/{hook['id']}", token).json()["updated_at"] == hook["updated_at"]
    assert local.call("GET", "/hooks", token).status == 200


def test_patch_null_clears_the_optional_fields(local: LocalStack, receiver: Receiver) -> None:
    _, token = local.token()
    hook = local.call(
        "POST", "/hooks", token, hook_body(receiver, database=3, description="d", rate_limit=5)
    ).json()
    cleared = local.call(
        "PATCH", f"/hooks/{hook['id']}", token, {"database": None, "description": None, "rate_limit": None}
    ).json()
    assert (cleared["database"], cleared["description"], cleared["rate_limit"]) == (None, None, None)


def test_a_body_that_is_not_utf8_is_400(local: LocalStack) -> None:
    _, token = local.token()
    answer = local.call("POST", "/hooks", token, raw=b'{"url": "\xff"}')
    assert answer.status == 400
    assert answer.json()["error"]["code"] == "malformed"
