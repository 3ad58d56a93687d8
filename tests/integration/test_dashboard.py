"""The dashboard's files as the API serves them (the page in a browser: e2e/test_dashboard_browser.py)."""

from __future__ import annotations

import re

import pytest

from devstack.lambda_router import Context
from tests.conftest import ROOT, LocalStack, sample_event

STATIC = ROOT / "functions" / "dashboard" / "static"


def test_the_page_is_public_and_carries_the_security_headers(local: LocalStack) -> None:
    answer = local.call("GET", "/")
    assert answer.status == 200
    assert answer.headers["Content-Type"] == "text/html; charset=utf-8"
    policy = answer.headers["Content-Security-Policy"]
    assert "default-src 'self'" in policy
    assert "script-src 'self';" in policy  # no 'unsafe-inline', no 'unsafe-eval'
    assert "unsafe" not in policy
    assert "frame-ancestors 'none'" in policy
    assert answer.headers["X-Content-Type-Options"] == "nosniff"
    assert answer.headers["Referrer-Policy"] == "no-referrer"


@pytest.mark.parametrize("name", sorted(p.name for p in STATIC.iterdir() if p.name != "index.html"))
def test_every_asset_is_served_with_its_type_and_the_headers(local: LocalStack, name: str) -> None:
    answer = local.call("GET", f"/dashboard/{name}")
    assert answer.status == 200
    assert answer.body == (STATIC / name).read_bytes()
    expected = {".js": "text/javascript", ".css": "text/css", ".svg": "image/svg+xml"}[(STATIC / name).suffix]
    assert answer.headers["Content-Type"].startswith(expected)
    assert answer.headers["X-Content-Type-Options"] == "nosniff"
    assert "frame-ancestors 'none'" in answer.headers["Content-Security-Policy"]


@pytest.mark.parametrize("name", ["nope.js", "..", "index.htm", "app.js.map"])
def test_an_unknown_file_is_a_json_404_with_the_headers(local: LocalStack, name: str) -> None:
    answer = local.call("GET", f"/dashboard/{name}")
    assert answer.status == 404
    assert answer.json()["error"]["code"] == "not_found"
    assert answer.headers["X-Content-Type-Options"] == "nosniff"


def test_the_stage_root_without_a_slash_redirects_to_it(local: LocalStack) -> None:
    # At https://…/dev (no slash) the page's relative links would leave the stage.
    event = sample_event("dashboard_page.json")
    event["requestContext"]["path"] = "/dev"
    answer = local.handlers["DashboardFunction"](event, Context(local.functions["DashboardFunction"].name))
    assert answer["statusCode"] == 308
    assert answer["headers"]["Location"] == "/dev/"


def test_every_file_the_page_and_modules_load_is_one_the_function_serves() -> None:
    served = {p.name for p in STATIC.iterdir()}
    page = (STATIC / "index.html").read_text()
    wanted = set(re.findall(r'(?:src|href)="dashboard/([^"]+)"', page))
    for module in STATIC.glob("*.js"):
        wanted |= set(re.findall(r'from "\./([^"]+)"', module.read_text()))
    assert wanted
    assert wanted <= served


def test_the_scripts_never_parse_html_or_evaluate_code() -> None:
    # What a receiver or customer wrote must stay text: the page builds its DOM with textContent only.
    sinks = ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function")
    for module in STATIC.glob("*.js"):
        code = module.read_text()
        for sink in sinks:
            assert sink not in code, f"{module.name} uses {sink}"
    assert "<script>" not in (STATIC / "index.html").read_text()  # no inline script
