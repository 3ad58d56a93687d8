"""Logs carry no secrets, tokens or payload bodies: only what an operator needs.

A whole scenario runs (a hook created, its file checked, its secret rotated and read, events with
marked fields delivered to a receiver that fails once, the test tool), with every log line kept:
the Powertools JSON lines the functions print, and every record that reaches the root logger, with
its extra fields and traceback, at INFO (the template's POWERTOOLS_LOG_LEVEL). None of the values
only the customer may see may appear in them.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from tests.conftest import LocalStack, sample_event
from tests.integration.test_pipeline import active_hook
from tests.receiver import Receiver


class _Collect(logging.Handler):
    def __init__(self, formatters: list[logging.Formatter]) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []
        # Plain (the message and the traceback, if any), and each way the functions' handlers write it
        # (Powertools' JSON line, with the keys appended and extra fields).
        self.formatters = [logging.Formatter(), *formatters]

    def emit(self, record: logging.LogRecord) -> None:
        self.lines += [formatter.format(record) for formatter in self.formatters]
        self.lines.append(repr(vars(record)))


class Logs:
    """Every log record written while it is in place, whatever handler or level it would have met.

    The functions' Powertools loggers do not propagate to the root and write to the stdout they found
    at import, which pytest's capture does not see: a collecting handler is put on every logger (the
    root included), and their levels are held at INFO, the template's level. What is printed
    (Powertools metrics) comes from capfd."""

    def __init__(self, capfd: pytest.CaptureFixture[str]) -> None:
        self.capfd = capfd
        named = logging.Logger.manager.loggerDict.values()
        self.loggers = [logging.getLogger(), *(lg for lg in named if isinstance(lg, logging.Logger))]
        formatters = {
            id(h.formatter): h.formatter
            for lg in self.loggers
            for h in lg.handlers
            if type(h) is logging.StreamHandler and h.formatter is not None
        }
        self.collect = _Collect(list(formatters.values()))
        self.levels = [logger.level for logger in self.loggers]
        for logger in self.loggers:
            logger.addHandler(self.collect)
            if logger.level > logging.INFO or logger.level == logging.NOTSET:
                logger.setLevel(logging.INFO)
        assert logging.getLogger("webhooks") in self.loggers, (
            "no Powertools logger found: load the functions first"
        )

    def restore(self) -> None:
        for logger, level in zip(self.loggers, self.levels, strict=True):
            logger.removeHandler(self.collect)
            logger.setLevel(level)

    def text(self) -> str:
        out, err = self.capfd.readouterr()
        return "\n".join([*self.collect.lines, out, err])


@pytest.fixture
def logs(local: LocalStack, capfd: pytest.CaptureFixture[str]) -> Iterator[Logs]:
    captured = Logs(capfd)
    try:
        yield captured
    finally:
        captured.restore()


def assert_no_leaks(text: str, forbidden: dict[str, str]) -> None:
    """Fails naming each value found and the log lines it is in, shortened around it."""
    found = []
    for name, value in forbidden.items():
        assert value, name
        for line in text.splitlines():
            if (at := line.find(value)) >= 0:
                found.append(f"{name} ({value!r}) in: ...{line[max(0, at - 300) : at + len(value) + 100]}...")
    if found:
        pytest.fail("logged:\n" + "\n".join(found), pytrace=False)


def marked_events(marker: str) -> list[dict[str, Any]]:
    """The platform's sample events, with a marker in every field that comes from a person or mail."""
    events = []
    for n, event in enumerate(sample_event("platform_events.json")["events"]):
        event = json.loads(json.dumps(event).replace("jane@example.com", f"{marker}-{n}@example.com"))
        if "recipient" in event:
            event["recipient"] = f"{marker}-{n}@example.com"
        if "tags" in event:
            event["tags"] = [*event["tags"], f"{marker}-tag-{n}"]
        if "fields" in event:
            event["fields"] = {**event["fields"], "name": f"{marker}-name-{n}"}
        events.append(event)
    by_type = {e["type"]: e for e in events}
    by_type["click"]["original"] = f"https://shop.example.com/{marker}/sale"
    by_type["click"]["useragent"] = f"Mozilla/5.0 ({marker}-agent)"
    by_type["bounce"]["mime"] = (
        f"From: MAILER-DAEMON@example.net\r\nSubject: {marker}-mime\r\n\r\n{marker}-body"
    )
    by_type["failure"]["description"] = f"mailbox {marker}-unavailable"
    by_type["update"]["parameters"] = {"city": f"{marker}-city"}
    return events


def test_a_whole_scenario_logs_no_token_secret_file_contents_payload_or_receiver_answer(
    local: LocalStack, receiver: Receiver, logs: Logs
) -> None:
    marker = f"secret-marker-{uuid.uuid4().hex}"
    answer_500 = f"receiver-answer-500-{uuid.uuid4().hex}".encode()
    answer_200 = f"receiver-answer-200-{uuid.uuid4().hex}".encode()
    receiver.replies = [(500, answer_500)] + [(200, answer_200)] * 50
    _, token = local.token()

    hook = active_hook(local, receiver, token)  # created, its file published, validated
    rotated = local.call("POST", f"/hooks/{hook['id']}/secret/rotate", token).json()
    assert local.call("GET", f"/hooks/{hook['id']}/secret", token).json()["secret"] == rotated["secret"]

    events = marked_events(marker)
    assert local.call("POST", "/events", token, {"events": events}).status == 202
    deadline = time.monotonic() + 20
    while len(receiver.posts) < len(events) + 1 and time.monotonic() < deadline:
        local.drain(timeout=1)
        time.sleep(0.2)
    assert len(receiver.posts) == len(events) + 1  # one failed once, then all succeeded
    attempts = local.call("GET", f"/hooks/{hook['id']}/deliveries", token).json()["attempts"]
    assert {a["status"] for a in attempts} == {500, 200}

    tested = local.call("POST", f"/hooks/{hook['id']}/test", token, {"data": {"note": f"{marker}-test"}})
    assert tested.json()["body"] == answer_200.decode()
    # Refused requests: an unknown token, and a hook the API rejects.
    wrong_token = f"wht_{uuid.uuid4().hex}{uuid.uuid4().hex[:11]}"
    assert local.call("GET", "/hooks", wrong_token).status == 401
    invalid = {"url": f"ftp://{marker}.example.com/x", "events": ["click"], "description": f"{marker}-d"}
    assert local.call("POST", "/hooks", token, invalid).status == 422

    text = logs.text()
    # The capture works: what an operator needs is there, as records and as the JSON lines written.
    for needed in ("verification file checked", "delivery attempt", "fanned out", hook["id"]):
        assert needed in text, needed
    assert '"message":"hook created"' in text
    forbidden = {
        "bearer token": token,
        "bearer token, without its prefix": token.removeprefix("wht_"),
        "unknown bearer token": wrong_token,
        "secret": hook["secret"],
        "secret, base64 part": hook["secret"].removeprefix("whsec_").rstrip("="),
        "rotated secret": rotated["secret"],
        "rotated secret, base64 part": rotated["secret"].removeprefix("whsec_").rstrip("="),
        "verification file contents": hook["verification"]["contents"],
        "event payload": marker,
        "receiver's answer (500)": answer_500.decode(),
        "receiver's answer (200)": answer_200.decode(),
    }
    assert_no_leaks(text, forbidden)


def test_a_malformed_event_from_an_internal_producer_is_logged_without_its_fields(
    local: LocalStack, logs: Logs
) -> None:
    """Producers may write to the ingest queue directly; the fan-out logs what it cannot read.

    Short values, as most fields are: a longer one could be cut in the middle where it is shown."""
    account, _ = local.token()
    recipient, timestamp = f"m{uuid.uuid4().hex[:10]}@example.com", f"t{uuid.uuid4().hex[:10]}"
    # A click without its `id`, whose timestamp is not one.
    event = {"type": "click", "timestamp": timestamp, "recipient": recipient}
    local.sqs.send_message(
        QueueUrl=local.url("IngestQueue"),
        MessageBody=json.dumps({"account": account, "event": event}),
        MessageGroupId=account,
    )
    local.pump("IngestQueue")

    text = logs.text()
    assert "unreadable ingest message" in text
    assert_no_leaks(text, {"event field (recipient)": recipient, "event field (timestamp)": timestamp})
