"""The local stack's own tools: its HTTP side (any method gets API Gateway's kind of answer, JSON) and the
dead-letter report of `make dlq`."""

from __future__ import annotations

import http.client
import json
import threading
from collections.abc import Iterator

import pytest

from devstack.dlq import report
from devstack.server import ApiServer
from tests.conftest import LocalStack


@pytest.fixture
def api(local: LocalStack) -> Iterator[ApiServer]:
    server = ApiServer(0)
    server.gateway = local.gateway
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


def send(server: ApiServer, method: str, path: str) -> tuple[int, dict[str, str], bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", server.server_address[1], timeout=10)
    try:
        connection.request(method, path)
        answer = connection.getresponse()
        return answer.status, {k.lower(): v for k, v in answer.getheaders()}, answer.read()
    finally:
        connection.close()


@pytest.mark.parametrize("method", ["TRACE", "QUERY", "PROPFIND", "PUT"])
def test_a_method_the_api_does_not_have_is_a_json_405_naming_those_it_has(
    api: ApiServer, method: str
) -> None:
    status, headers, body = send(api, method, "/hooks")
    assert status == 405
    assert headers["content-type"] == "application/json"
    assert headers["allow"] == "GET, POST"
    error = json.loads(body)["error"]
    assert error["code"] == "method_not_allowed"
    assert "GET, POST" in error["message"]


def test_a_method_on_a_path_the_api_does_not_have_is_a_json_404(api: ApiServer) -> None:
    status, headers, body = send(api, "TRACE", "/nothing/here")
    assert status == 404
    assert headers["content-type"] == "application/json"
    assert json.loads(body)["error"]["code"] == "not_found"


def test_the_routes_still_answer_over_http(api: ApiServer) -> None:
    status, headers, _ = send(api, "GET", "/docs")
    assert status == 200
    assert headers["content-type"].startswith("text/html")


def test_the_dead_letter_report_shows_each_dead_letter_queue_and_leaves_its_messages(
    local: LocalStack,
) -> None:
    dlq = local.url("DeliveryDLQ")
    local.sqs.send_message(
        QueueUrl=dlq, MessageBody=json.dumps({"hook_id": "hk_dead", "delivery_id": "msg_1"})
    )
    shown = report(local.sqs, local.stack)
    assert shown.splitlines()[:3] == [
        "DeliveryDLQ: 1 message(s)",
        '  {"hook_id": "hk_dead", "delivery_id": "msg_1"}',
        "IngestDLQ: 0 message(s)",
    ]
    assert len(local.messages("DeliveryDLQ")) == 1  # peeked at, not taken
