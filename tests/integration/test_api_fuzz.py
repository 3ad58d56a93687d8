"""Property-based fuzz of the management API from the OpenAPI document it serves (schemathesis).

Every operation of `GET /openapi.json` gets generated requests, valid and invalid, through the
in-process API Gateway (authorizer, then the API handler), with a valid bearer token. No answer
may be a 5xx, and every answer must be one the document describes: status code, content type,
body schema. Bounded and derandomized, so that CI runs the same cases every time.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.generation import GenerationMode
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from devstack.apigw import Gateway
from tests.conftest import ROOT, LocalStack, local_stack, publish_verification_file, sample_event
from tests.receiver import Receiver
from webhooks import outbound_policy

MAX_EXAMPLES = 25
# The operations of docs/openapi.json (test_api checks that it is the document the API serves).
OPERATIONS = [
    f"{method.upper()} {path}"
    for path, methods in json.loads((ROOT / "docs" / "openapi.json").read_text())["paths"].items()
    for method in methods
]
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]

# What the document cannot say (a URL's syntax, an event's fields per type), so that a good part
# of the requests gets past validation: URLs that parse, whose hosts all stand for this machine,
# and the platform's sample events, some with a field set to any JSON value.
URLS = st.builds(
    "{}://{}{}".format,
    st.sampled_from(["http", "https"]),
    st.one_of(
        st.sampled_from(["127.0.0.1", "localhost", "[::1]", "example.com"]),
        st.from_regex(r"[a-z][a-z0-9-]{0,15}(\.[a-z][a-z0-9-]{0,15}){1,3}", fullmatch=True),
    ),
    st.from_regex(r"(/[A-Za-z0-9._~%!$&'()*+,;=:@-]{0,16}){0,3}(\?[A-Za-z0-9=&%]{0,16})?", fullmatch=True),
)
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=6,
)
SAMPLE_EVENTS = sample_event("platform_events.json")["events"]


def _event(sample: dict[str, Any], change: bool, field: int, value: Any) -> dict[str, Any]:
    return {**sample, sorted(sample)[field % len(sample)]: value} if change else sample


EVENTS = st.lists(
    st.builds(
        _event,
        st.sampled_from(SAMPLE_EVENTS),
        st.sampled_from([False, False, False, True]),
        st.integers(0, 99),
        JSON,
    ),
    min_size=1,
    max_size=3,
)


def mostly(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """The strategy's values three times in four, None otherwise."""
    return st.sampled_from([True, True, True, False]).flatmap(lambda use: strategy if use else st.none())


# Requests that change or remove a hook, or restart its validation, get a hook of their own.
OWN_HOOK = {"PATCH /hooks/{hook_id}", "DELETE /hooks/{hook_id}", "POST /hooks/{hook_id}/validate"}
TAKES_A_URL = {"POST /hooks", "PATCH /hooks/{hook_id}"}

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


def wsgi_app(gateway: Gateway) -> WsgiApp:
    """The in-process gateway as a WSGI app, so that schemathesis sends its requests straight to it."""

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        headers = {
            key[5:].replace("_", "-").title(): value
            for key, value in environ.items()
            if key.startswith("HTTP_")
        }
        for key, name in (("CONTENT_TYPE", "Content-Type"), ("CONTENT_LENGTH", "Content-Length")):
            if environ.get(key):
                headers[name] = environ[key]
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length else b""
        # The path as sent, still percent-encoded, as API Gateway (REST) hands it to the function.
        path = urlsplit(environ.get("RAW_URI") or quote(environ["PATH_INFO"].encode("latin-1"))).path
        query = parse_qs(environ.get("QUERY_STRING", ""), keep_blank_values=True)
        answer = gateway.handle(environ["REQUEST_METHOD"], path, headers, query, body)
        phrase = HTTPStatus(answer.status).phrase if answer.status in HTTPStatus else "Unknown"
        start_response(f"{answer.status} {phrase}", list(answer.headers.items()))
        return [answer.body]

    return app


@dataclass
class Fuzzing:
    local: LocalStack
    receiver: Receiver
    token: str
    hook_id: str  # an active hook of the token's account, which no fuzzed request changes

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def existing_hook(self, label: str) -> str:
        if label not in OWN_HOOK:
            return self.hook_id
        body = {"url": f"{self.receiver.url}/dir/script.php", "events": ["click"]}
        created = self.local.call("POST", "/hooks", self.token, body)
        assert created.status == 201, created.body
        return str(created.json()["id"])


def no_dns(host: str, port: int) -> list[str]:
    """Fuzzed URLs name made-up hosts: they all stand for this machine, and no lookup leaves it."""
    return ["127.0.0.1"]


def wait_for_validations(local: LocalStack, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        running = [
            execution
            for machine in local.sfn.list_state_machines()["stateMachines"]
            for execution in local.sfn.list_executions(
                stateMachineArn=machine["stateMachineArn"], statusFilter="RUNNING"
            )["executions"]
        ]
        if not running:
            return
        time.sleep(0.1)


@pytest.fixture(scope="module")
def fuzzing() -> Iterator[Fuzzing]:
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(outbound_policy, "_system_resolver", no_dns)
        receiver = Receiver().start()
        try:
            with local_stack() as local:
                _, token = local.token()
                created = local.call(
                    "POST", "/hooks", token, {"url": f"{receiver.url}/dir/script.php", "events": ["click"]}
                )
                assert created.status == 201, created.body
                hook = created.json()
                publish_verification_file(receiver, hook)
                local.call("POST", f"/hooks/{hook['id']}/validate", token)
                local.wait_for_status(token, hook["id"], "active")
                try:
                    yield Fuzzing(local, receiver, token, hook["id"])
                finally:
                    # The validations the fuzzed hooks started end while the DNS stub is in place.
                    wait_for_validations(local)
        finally:
            receiver.stop()


@pytest.fixture(scope="module")
def api_schema(fuzzing: Fuzzing) -> Any:
    return schemathesis.openapi.from_wsgi("/openapi.json", wsgi_app(fuzzing.local.gateway))


def test_every_operation_the_api_serves_is_fuzzed(api_schema: Any) -> None:
    served = {result.ok().label for result in api_schema.get_all_operations()}
    assert served == set(OPERATIONS)


def plausible(case: Any, fuzzing: Fuzzing, existing: bool, url: str | None, events: list[Any] | None) -> None:
    """Puts an existing hook, a URL that parses, platform events into a generated case, as drawn."""
    if existing:
        case.path_parameters["hook_id"] = fuzzing.existing_hook(case.operation.label)
    body = case.body
    if url is not None and isinstance(body, dict) and isinstance(body.get("url"), str):
        body["url"] = url
        # The document does not say that a hook's event types must not repeat.
        if isinstance(body.get("events"), list) and all(isinstance(e, str) for e in body["events"]):
            body["events"] = list(dict.fromkeys(body["events"]))
    if events is not None:
        case.body = {"events": events}


@pytest.mark.parametrize("label", OPERATIONS)
def test_no_request_gets_a_5xx_or_an_answer_the_document_does_not_describe(
    label: str, api_schema: Any, fuzzing: Fuzzing
) -> None:
    operation = api_schema.find_operation_by_label(label)
    statuses: list[int] = []

    @given(
        case=st.one_of(
            operation.as_strategy(GenerationMode.POSITIVE), operation.as_strategy(GenerationMode.NEGATIVE)
        ),
        existing=st.booleans() if "{hook_id}" in label else st.just(False),
        url=mostly(URLS) if label in TAKES_A_URL else st.none(),
        events=mostly(EVENTS) if label == "POST /events" else st.none(),
    )
    @settings(
        max_examples=MAX_EXAMPLES,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.data_too_large],
    )
    def fuzz(case: Any, existing: bool, url: str | None, events: list[Any] | None) -> None:
        plausible(case, fuzzing, existing, url, events)
        # Always a valid token: invalid data may otherwise mean a missing or made-up Authorization.
        case.headers = {**(case.headers or {}), **fuzzing.headers()}
        response = case.call()
        statuses.append(response.status_code)
        case.validate_response(response, checks=CHECKS)

    fuzz()
    # The fuzz got past validation and the 404 at least once: the success answer was checked too.
    assert any(200 <= status < 300 for status in statuses), sorted(set(statuses))
