"""The UrlValidation state machine from template.yaml, executed by moto's interpreter, its task
answered by the validate handler over real loopback HTTP."""

from __future__ import annotations

import socket
import time

from tests.conftest import LocalStack, publish_verification_file
from tests.receiver import Receiver


def create(local: LocalStack, receiver: Receiver, token: str, path: str = "/dir/script.php") -> dict:
    answer = local.call("POST", "/hooks", token, {"url": receiver.url + path, "events": ["open"]})
    assert answer.status == 201, answer.body
    return answer.json()


def executions(local: LocalStack) -> list[dict]:
    arn = local.url("UrlValidationStateMachine")
    return local.sfn.list_executions(stateMachineArn=arn)["executions"]


def test_a_file_already_in_the_script_directory_validates_at_the_first_check(
    local: LocalStack, receiver: Receiver
) -> None:
    _, token = local.token()
    hook = create(local, receiver, token)
    assert hook["status"] == "pending_validation"
    # The first check runs at once, before the file is there; restarting checks at once again.
    publish_verification_file(receiver, hook, where=0)
    local.call("POST", f"/hooks/{hook['id']}/validate", token)
    local.wait_for_status(token, hook["id"], "active")


def test_a_file_at_the_web_root_validates_after_waits(local: LocalStack, receiver: Receiver) -> None:
    _, token = local.token()
    hook = create(local, receiver, token)
    # Published only after the first check has looked in both places (and missed).
    deadline = time.monotonic() + 5
    while f"/{hook['verification']['file_name']}" not in receiver.gets and time.monotonic() < deadline:
        time.sleep(0.01)
    publish_verification_file(receiver, hook, where=1)
    active = local.wait_for_status(token, hook["id"], "active")
    assert receiver.gets.count(f"/{hook['verification']['file_name']}") >= 2
    [execution] = executions(local)
    assert execution["status"] == "SUCCEEDED"
    assert active["disabled_reason"] is None
    # The hook shows the check that found it, and no further check.
    root = hook["verification"]["urls"][1]
    assert active["last_check"]["found"] is True
    assert active["last_check"]["locations"][-1] == {
        "url": root,
        "found": True,
        "status": 200,
        "problem": None,
    }
    assert active["next_check_at"] is None


def test_a_pending_hook_shows_what_the_last_check_saw_and_when_the_next_one_runs(
    local: LocalStack, receiver: Receiver
) -> None:
    _, token = local.token()
    receiver.hold_gets_from = 2  # the first check's two GETs are answered; the second check waits
    try:
        hook = create(local, receiver, token)
        assert hook["last_check"] is None
        assert hook["next_check_at"] >= hook["created_at"]  # the first check runs at once
        deadline = time.monotonic() + 10
        while len(receiver.gets) < 3 and time.monotonic() < deadline:
            time.sleep(0.01)
        pending = local.call("GET", f"/hooks/{hook['id']}", token).json()
    finally:
        receiver.gets_released.set()
    assert pending["status"] == "pending_validation"
    check = pending["last_check"]
    assert check["attempt"] == 1
    assert check["found"] is False
    assert [(p["url"], p["status"], p["problem"]) for p in check["locations"]] == [
        (url, 404, "HTTP 404") for url in hook["verification"]["urls"]
    ]
    schedule = [int(s) for s in local.stack.parameters["ValidationSchedule"].split(",")]
    assert pending["next_check_at"] == check["at"] + schedule[1]
    # The execution goes on to its end within the test (nothing of it may outlive moto).
    local.wait_for_status(token, hook["id"], "validation_failed")


def test_a_url_that_refuses_connections_fails_validation_saying_so(local: LocalStack) -> None:
    _, token = local.token()
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))  # bound, never listening: every connection to it is refused
        url = f"http://127.0.0.1:{closed.getsockname()[1]}/dir/script.php"
        hook = local.call("POST", "/hooks", token, {"url": url, "events": ["open"]}).json()
        failed = local.wait_for_status(token, hook["id"], "validation_failed")
    schedule = local.stack.parameters["ValidationSchedule"].split(",")
    assert failed["last_check"]["attempt"] == len(schedule)
    assert [p["problem"] for p in failed["last_check"]["locations"]] == ["connection refused"] * 2
    assert failed["next_check_at"] is None
    reason = failed["disabled_reason"]
    assert "connection refused" in reason
    assert "not found" not in reason
    assert "POST /hooks/{id}/validate" in reason


def test_a_file_never_published_ends_in_validation_failed_after_every_scheduled_check(
    local: LocalStack, receiver: Receiver
) -> None:
    _, token = local.token()
    hook = create(local, receiver, token)
    failed = local.wait_for_status(token, hook["id"], "validation_failed")
    schedule = local.stack.parameters["ValidationSchedule"].split(",")
    assert receiver.gets.count(f"/dir/{hook['verification']['file_name']}") == len(schedule)
    assert "HTTP 404" in failed["disabled_reason"]
    assert "restart" in failed["disabled_reason"]


def test_wrong_contents_do_not_validate(local: LocalStack, receiver: Receiver) -> None:
    _, token = local.token()
    hook = create(local, receiver, token)
    receiver.files[f"/{hook['verification']['file_name']}"] = "not the token"
    failed = local.wait_for_status(token, hook["id"], "validation_failed")
    assert failed["last_check"]["locations"][1]["problem"] == "contents differ"
    assert f"{hook['verification']['urls'][1]}: contents differ" in failed["disabled_reason"]


def test_a_changed_url_supersedes_the_running_validation(local: LocalStack, receiver: Receiver) -> None:
    _, token = local.token()
    hook = create(local, receiver, token)
    changed = local.call("PATCH", f"/hooks/{hook['id']}", token, {"url": receiver.url + "/other/hook"}).json()
    assert changed["status"] == "pending_validation"
    assert changed["verification"]["file_name"] != hook["verification"]["file_name"]
    # The old file would have validated the old URL; it must not validate the new one.
    publish_verification_file(receiver, hook)
    publish_verification_file(receiver, changed)
    local.wait_for_status(token, hook["id"], "active")
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(e["status"] == "RUNNING" for e in executions(local)):
        time.sleep(0.05)
    assert sorted(e["status"] for e in executions(local)) == ["SUCCEEDED", "SUCCEEDED"]


def test_restarting_a_failed_validation_checks_again(local: LocalStack, receiver: Receiver) -> None:
    _, token = local.token()
    hook = create(local, receiver, token)
    local.wait_for_status(token, hook["id"], "validation_failed")
    publish_verification_file(receiver, hook, where=1)
    restarted = local.call("POST", f"/hooks/{hook['id']}/validate", token)
    assert restarted.status == 202
    local.wait_for_status(token, hook["id"], "active")


def test_no_event_is_posted_to_a_url_before_it_is_validated(local: LocalStack, receiver: Receiver) -> None:
    _, token = local.token()
    hook = create(local, receiver, token)
    local.call("POST", "/events", token, {"events": [{"type": "open", "id": "m", "recipient": "a@b.c"}]})
    local.drain()
    test = local.call("POST", f"/hooks/{hook['id']}/test", token, {"data": {"hello": "world"}})
    assert test.status == 409
    assert receiver.posts == []
