"""`make dev` end to end: the local stack as a subprocess, driven only over HTTP.

create a hook -> its verification file on the receiver -> the state machine makes it active ->
one event of each type arrives, signed, with its fields -> the receiver goes down -> retries ->
dead-lettered -> the receiver comes back -> replay delivers it.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import parse_qs, urljoin, urlsplit

import pytest
import requests
from standardwebhooks import Webhook

from tests.receiver import Received, Receiver
from webhooks.event_types import EventType
from webhooks.events import parse_event

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(90)]

ROOT = Path(__file__).resolve().parent.parent.parent
ALL_TYPES = [t.value for t in EventType]
RETRY_SCHEDULE = "0,1,1"
START_SECONDS = 30
STOP_SECONDS = 15

T = TypeVar("T")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def eventually(what: str, check: Callable[[], T | None], timeout: float) -> T:
    """Polls `check` until it returns something other than None; fails after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        found = check()
        if found is not None:
            return found
        if time.monotonic() >= deadline:
            raise AssertionError(f"not within {timeout:g} s: {what}")
        time.sleep(0.1)


class DevStack:
    """`python -m devstack` in a subprocess, its output in a file (a pipe nobody reads would fill)."""

    def __init__(self, log: Path, extra_env: Mapping[str, str] | None = None) -> None:
        self.port = free_port()
        self.token = f"e2e-{secrets.token_hex(16)}"
        self.moto_port = free_port()
        self.log = log
        env = {
            **os.environ,
            "WEBHOOKS_PORT": str(self.port),
            "WEBHOOKS_MOTO_PORT": str(self.moto_port),
            # Its own SMTP port too: two stacks (or a person's `make dev`) never share 2525.
            "WEBHOOKS_SMTP_PORT": str(free_port()),
            "WEBHOOKS_DEV_TOKENS": f"e2e:{self.token}",
            "WEBHOOKS_ALLOW_PRIVATE": "1",
            "WEBHOOKS_RETRY_SCHEDULE": RETRY_SCHEDULE,
            "WEBHOOKS_VALIDATION_SCHEDULE": "0,1,1",
            "POWERTOOLS_LOG_LEVEL": "INFO",
            "PYTHONUNBUFFERED": "1",
            **(extra_env or {}),
        }
        with log.open("wb") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "devstack"], cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT
            )
        self.url = f"http://127.0.0.1:{self.port}"
        self.http = requests.Session()
        self.http.headers["Authorization"] = f"Bearer {self.token}"

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_ready(self) -> None:
        def ready() -> bool | None:
            if self.process.poll() is not None:
                raise AssertionError(f"the stack exited with {self.process.returncode}:\n{self.output()}")
            return True if f"ready: {self.url}" in self.output() else None

        eventually("the stack prints ready", ready, START_SECONDS)

    def stop(self) -> int | None:
        """SIGINT, as Ctrl-C does; the exit code, or None when it had to be killed."""
        self.http.close()
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
        try:
            return self.process.wait(STOP_SECONDS)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(5)
            return None

    def call(self, method: str, path: str, body: Any = None) -> requests.Response:
        return self.http.request(method, self.url + path, json=body, timeout=10)


StackT = TypeVar("StackT", bound=DevStack)


def running(stack: StackT, ready: bool = False) -> Iterator[StackT]:
    """The body of a stack fixture: the stack for the test (first `ready` to serve, if asked), then
    stopped, its log's tail printed."""
    try:
        if ready:
            stack.wait_ready()
        yield stack
    finally:
        # Normally stopped by the test already (which asserts how); this only makes sure.
        stack.stop()
        print(stack.output()[-20_000:])  # shown by pytest when the test failed


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[DevStack]:
    yield from running(DevStack(tmp_path / "stack.log"))


# -- what a receiver must get ---------------------------------------------------------------------


def php_form(payload: Mapping[str, Any], prefix: str = "") -> dict[str, list[str]]:
    """The payload as the original product form-encodes it: a[k]=v for maps, a[]=v for lists."""
    pairs: dict[str, list[str]] = {}

    def add(key: str, value: Any) -> None:
        if isinstance(value, Mapping):
            for name, item in value.items():
                add(f"{key}[{name}]", item)
        elif isinstance(value, list):
            for item in value:
                add(f"{key}[]", item)
        elif isinstance(value, bool):
            pairs.setdefault(key, []).append("1" if value else "0")
        else:
            pairs.setdefault(key, []).append("" if value is None else str(value))

    for key, value in payload.items():
        add(prefix + key, value)
    return pairs


def check_fields(raw: Mapping[str, Any], received: dict[str, list[str]]) -> None:
    expected = php_form(parse_event(dict(raw)).payload())
    # An event sent without a time gets the time it was ingested: any, but well-formed and coherent.
    if "time" not in raw and "timestamp" not in raw and "time" in expected:
        for key in ("time", "timestamp"):
            expected.pop(key, None)
        [unix], [stamp] = received.pop("time"), received.pop("timestamp")
        assert abs(int(unix) - time.time()) < 120
        assert datetime.fromtimestamp(int(unix), UTC).strftime("%Y-%m-%d %H:%M:%S") == stamp
    assert received == expected, raw["type"]


def verify(secret: str, post: Received) -> None:
    Webhook(secret).verify(post.body, post.headers, json_parse=False)


# -- the scenario ---------------------------------------------------------------------------------


def test_the_local_stack_validates_delivers_retries_dead_letters_and_replays(
    stack: DevStack, receiver: Receiver
) -> None:
    try:
        scenario(stack, receiver)
    finally:
        code = stack.stop()
    assert code == 0, f"the stack exited with {code} (None: still running {STOP_SECONDS} s after SIGINT)"


def scenario(stack: DevStack, receiver: Receiver) -> None:
    stack.wait_ready()
    assert requests.get(f"{stack.url}/openapi.json", timeout=10).status_code == 200
    assert requests.get(f"{stack.url}/hooks", timeout=10).status_code == 401
    # The docs page and every file it loads come from the stack itself, without a token.
    page = requests.get(f"{stack.url}/docs", timeout=10)
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    loaded = re.findall(r'(?:src|href)="(docs/[^"]+)"', page.text)
    assert len(loaded) == 2, page.text
    for reference in loaded:
        asset = requests.get(urljoin(f"{stack.url}/docs", reference), timeout=10)
        assert asset.status_code == 200, reference
        assert asset.headers["content-type"].split(";")[0] in ("text/css", "application/javascript")

    # A hook, validated by the state machine once its file is where the customer puts it.
    created = stack.call("POST", "/hooks", {"url": f"{receiver.url}/dir/script.php", "events": ALL_TYPES})
    assert created.status_code == 201, created.text
    hook = created.json()
    assert hook["status"] == "pending_validation"
    file_url = hook["verification"]["urls"][0]
    receiver.files[urlsplit(file_url).path] = hook["verification"]["contents"] + "\n"

    def status(wanted: str) -> Callable[[], dict[str, Any] | None]:
        def check() -> dict[str, Any] | None:
            current: dict[str, Any] = stack.call("GET", f"/hooks/{hook['id']}").json()
            assert current["status"] in ("pending_validation", wanted), current
            return current if current["status"] == wanted else None

        return check

    eventually("the hook becomes active", status("active"), 20)

    # One event of each type, each signed, with exactly its fields.
    sent = json.loads((ROOT / "events" / "platform_events.json").read_text())["events"]
    assert sorted(e["type"] for e in sent) == sorted(ALL_TYPES)
    accepted = stack.call("POST", "/events", {"events": sent})
    assert accepted.status_code == 202, accepted.text
    assert accepted.json()["accepted"] == len(sent)
    posts = receiver.wait_for_posts(len(sent), timeout=20)
    assert len(posts) == len(sent)
    by_type: dict[str, dict[str, list[str]]] = {}
    for post in posts:
        assert post.path == "/dir/script.php"
        assert post.headers["content-type"] == "application/x-www-form-urlencoded"
        verify(hook["secret"], post)
        fields = parse_qs(post.body.decode(), keep_blank_values=True)
        by_type[fields["type"][0]] = fields
    assert sorted(by_type) == sorted(ALL_TYPES)
    for raw in sent:
        check_fields(raw, by_type[raw["type"]])

    # The receiver goes down: every scheduled attempt fails, then the delivery is dead-lettered.
    receiver.stop()
    click = sent[0]
    assert stack.call("POST", "/events", {"events": [click]}).status_code == 202
    attempts = len(RETRY_SCHEDULE.split(","))

    def dead_lettered() -> list[dict[str, Any]] | None:
        log: list[dict[str, Any]] = stack.call("GET", f"/hooks/{hook['id']}/deliveries").json()["attempts"]
        failing = [a for a in log if a["type"] == "click" and a["outcome"] != "succeeded"]
        return failing if any(a["outcome"] == "failed" for a in failing) else None

    failing = eventually("the delivery is dead-lettered", dead_lettered, 30)
    assert sorted(a["outcome"] for a in failing) == ["failed"] + ["retrying"] * (attempts - 1)
    assert sorted(a["attempt"] for a in failing) == list(range(1, attempts + 1))
    assert {a["status"] for a in failing} == {None}  # nobody answered
    [delivery_id] = {a["delivery_id"] for a in failing}
    # `make dlq` shows it in the local dead-letter queue.
    shown = subprocess.run(
        [sys.executable, "-m", "devstack.dlq", "--moto-port", str(stack.moto_port)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    ).stdout
    assert "DeliveryDLQ: 1 message(s)" in shown, shown
    assert delivery_id in shown

    # It comes back; replay delivers the dead-lettered delivery, with its original id.
    receiver.start()
    replay = stack.call("POST", f"/hooks/{hook['id']}/replay", {})
    assert replay.status_code == 202, replay.text
    assert replay.json() == {"replayed": 1}
    posts = receiver.wait_for_posts(len(sent) + 1, timeout=20)
    assert len(posts) == len(sent) + 1
    replayed = posts[-1]
    verify(hook["secret"], replayed)
    assert replayed.headers["webhook-id"] == delivery_id
    check_fields(click, parse_qs(replayed.body.decode(), keep_blank_values=True))
    assert stack.call("POST", f"/hooks/{hook['id']}/replay", {}).json() == {"replayed": 0}
