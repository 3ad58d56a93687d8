"""The API's documentation as people meet it: every operation described with an example that holds, and the
/docs page with its Swagger UI files served by the stack itself."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urljoin

import pytest
from jsonschema import Draft202012Validator

from tests.conftest import LocalStack
from webhooks.api import examples
from webhooks.ingest import validate_events


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    from tests.conftest import local_stack

    with local_stack() as local:
        answer = local.call("GET", "/openapi.json")
        assert answer.status == 200
        return dict(answer.json())


def operations(document: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    return [
        (f"{method.upper()} {path}", operation)
        for path, item in document["paths"].items()
        for method, operation in item.items()
    ]


def examples_of(operation: dict[str, Any]) -> list[tuple[dict[str, Any], Any]]:
    """(schema, example value) for every example of the operation: body, answers, parameters."""
    found = []
    media = [operation.get("requestBody", {}).get("content", {}).get("application/json", {})]
    media += [r.get("content", {}).get("application/json", {}) for r in operation["responses"].values()]
    for content in media:
        for example in content.get("examples", {}).values():
            found.append((content["schema"], example["value"]))
    for parameter in operation.get("parameters", []):
        for example in parameter.get("examples", {}).values():
            found.append((parameter["schema"], example["value"]))
    return found


def test_every_operation_has_a_summary_a_description_and_an_example(document: dict[str, Any]) -> None:
    for name, operation in operations(document):
        assert operation.get("summary"), name
        assert operation["summary"] != name, name  # Powertools' default summary is the route itself
        assert len(operation.get("description", "")) > 40, name
        assert examples_of(operation), name


def test_every_example_matches_the_schema_it_illustrates(document: dict[str, Any]) -> None:
    checked = 0
    for name, operation in operations(document):
        for schema, value in examples_of(operation):
            # The components travel with the schema, so its $refs resolve.
            errors = list(
                Draft202012Validator({**schema, "components": document["components"]}).iter_errors(value)
            )
            assert not errors, (name, [e.message for e in errors])
            checked += 1
    assert checked >= 20


def test_the_events_example_holds_valid_events() -> None:
    # The schema only says "objects": the events themselves are checked per type.
    assert len(validate_events(examples.EVENTS_IN["events"])) == len(examples.EVENTS_IN["events"])


def test_the_docs_page_and_its_files_are_served_without_a_token(local: LocalStack) -> None:
    page = local.call("GET", "/docs")
    assert page.status == 200
    assert page.headers["Content-Type"].startswith("text/html")
    html = page.body.decode()
    # Everything the page loads is ours, relative to where it is served (no CDN, stage-agnostic).
    references = re.findall(r'(?:src|href)="([^"]+)"', html) + re.findall(r'fetch\("([^"]+)"\)', html)
    assert "docs/swagger-ui-bundle.js" in references
    assert "openapi.json" in references
    kinds = {}
    for reference in references:
        if reference.startswith("data:"):
            continue
        assert "//" not in reference, reference
        path = urljoin("http://127.0.0.1:3000/docs", reference).removeprefix("http://127.0.0.1:3000")
        answer = local.call("GET", path)
        assert answer.status == 200, (path, answer.body[:200])
        kinds[path] = answer.headers["Content-Type"].split(";")[0]
    assert kinds == {
        "/docs/swagger-ui.css": "text/css",
        "/docs/swagger-ui-bundle.js": "application/javascript",
        "/openapi.json": "application/json",
    }
    assert b"SwaggerUIBundle" in local.call("GET", "/docs/swagger-ui-bundle.js").body


@pytest.mark.parametrize("name", ["nothing.js", "swagger-ui.js.map", "..%2F..%2Ftemplate.yaml", "index.j2"])
def test_the_docs_serve_no_other_file(local: LocalStack, name: str) -> None:
    answer = local.call("GET", f"/docs/{name}")
    assert answer.status == 404
    assert answer.json()["error"]["code"] == "not_found"
