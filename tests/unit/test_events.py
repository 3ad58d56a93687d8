"""webhooks.events: each type posts exactly the SPEC's fields in the SPEC's order, and nothing else passes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from tests.unit.conftest import ALL_EVENT_TYPES, FROZEN_TIME, FROZEN_TIMESTAMP
from webhooks import events
from webhooks.events import EventType, parse_event

pytestmark = pytest.mark.usefixtures("frozen_now")

MIME = "From: MAILER-DAEMON@example.net\r\nSubject: Undelivered Mail Returned to Sender\r\n\r\n"
JANE = {"email": "jane@example.com", "name": "Jane"}


def profile_event(type_: str, **fields: Any) -> dict[str, Any]:
    event: dict[str, Any] = {
        "type": type_,
        "profile": 4711,
        "database": 12,
        "parameters": {"email": "jane@example.com"},
        "created": "2026-11-23 09:59:00",
        "modified": "2026-11-23 10:01:00",
        "fields": JANE,
        "time": 1795428000,
    }
    event.update(fields)
    return event


def click(**fields: Any) -> dict[str, Any]:
    event: dict[str, Any] = {
        "type": "click",
        "id": "msg-1",
        "recipient": "jane@example.com",
        "original": "https://shop.example.com/",
    }
    event.update(fields)
    return event


# --------------------------------------------------------------------------------------------------
# Fields posted per type (SPEC table), from events/platform_events.json and two literal extras


def test_event_types_are_the_spec_names() -> None:
    assert [t.value for t in EventType] == ALL_EVENT_TYPES


def test_click_posts_id_type_timestamp_time_recipient_ip_original_useragent_referer_tags(
    sample_events: dict[str, Any],
) -> None:
    assert list(parse_event(sample_events["click"]).payload().items()) == [
        ("id", "msg-1001"),
        ("type", "click"),
        ("timestamp", "2026-11-23 10:00:00"),
        ("time", 1795428000),
        ("recipient", "jane@example.com"),
        ("ip", "203.0.113.7"),
        ("original", "https://shop.example.com/sale?utm=mail"),
        ("useragent", "Mozilla/5.0"),
        ("referer", ""),
        ("tags", ["newsletter", "november"]),
    ]


def test_open_posts_id_type_timestamp_time_recipient_ip_useragent_referer_tags(
    sample_events: dict[str, Any],
) -> None:
    assert list(parse_event(sample_events["open"]).payload().items()) == [
        ("id", "msg-1001"),
        ("type", "open"),
        ("timestamp", "2026-11-23 10:01:00"),
        ("time", 1795428060),
        ("recipient", "jane@example.com"),
        ("ip", "203.0.113.7"),
        ("useragent", "Mozilla/5.0"),
        ("referer", ""),
        ("tags", ["newsletter"]),
    ]


def test_bounce_posts_id_type_timestamp_time_recipient_envelope_mime_tags(
    sample_events: dict[str, Any],
) -> None:
    assert list(parse_event(sample_events["bounce"]).payload().items()) == [
        ("id", "msg-1002"),
        ("type", "bounce"),
        ("timestamp", FROZEN_TIMESTAMP),
        ("time", FROZEN_TIME),
        ("recipient", "nobody@example.net"),
        ("envelope", "bounces@mail.example.com"),
        (
            "mime",
            "From: MAILER-DAEMON@example.net\r\nSubject: Undelivered Mail Returned to Sender\r\n\r\n"
            "The mail could not be delivered.",
        ),
        ("tags", ["newsletter"]),
    ]


def test_failure_posts_id_type_timestamp_time_recipient_action_state_code_extended_description_tags(
    sample_events: dict[str, Any],
) -> None:
    assert list(parse_event(sample_events["failure"]).payload().items()) == [
        ("id", "msg-1003"),
        ("type", "failure"),
        ("timestamp", FROZEN_TIMESTAMP),
        ("time", FROZEN_TIME),
        ("recipient", "old@example.org"),
        ("action", "failed"),
        ("state", "rcpt"),
        ("code", 550),
        ("extended", "5.1.1"),
        ("description", "mailbox unavailable"),
        ("tags", []),
    ]


def test_failure_without_code_extended_and_description_posts_none_of_them() -> None:
    event = {"type": "failure", "id": "m", "recipient": "a@b.c", "action": "failure", "state": "bounce"}
    assert list(parse_event(event).payload()) == [
        "id", "type", "timestamp", "time", "recipient", "action", "state", "tags",
    ]  # fmt: skip


def test_delivery_posts_id_type_timestamp_time_recipient_code_extended_description_tags(
    sample_events: dict[str, Any],
) -> None:
    assert list(parse_event(sample_events["delivery"]).payload().items()) == [
        ("id", "msg-1004"),
        ("type", "delivery"),
        ("timestamp", FROZEN_TIMESTAMP),
        ("time", FROZEN_TIME),
        ("recipient", "jane@example.com"),
        ("code", 250),
        ("extended", "2.0.0"),
        ("description", "queued as 4F2A1"),
        ("tags", ["transactional"]),
    ]


def test_create_posts_type_parameters_timestamp_time_profile_database_created_modified_fields_interests(
    sample_events: dict[str, Any],
) -> None:
    assert list(parse_event(sample_events["create"]).payload().items()) == [
        ("type", "create"),
        ("parameters", {"email": "jane@example.com"}),
        ("timestamp", FROZEN_TIMESTAMP),
        ("time", FROZEN_TIME),
        ("profile", 4711),
        ("database", 12),
        ("created", "2026-11-23 09:59:00"),
        ("modified", "2026-11-23 09:59:00"),
        ("fields", {"email": "jane@example.com", "name": "Jane"}),
        ("interests", ["shoes", "bags"]),
    ]


def test_subprofile_update_posts_subprofile_and_collection_and_no_interests(
    sample_events: dict[str, Any],
) -> None:
    assert list(parse_event(sample_events["update"]).payload().items()) == [
        ("type", "update"),
        ("parameters", {"city": "Leiden"}),
        ("timestamp", FROZEN_TIMESTAMP),
        ("time", FROZEN_TIME),
        ("profile", 4711),
        ("subprofile", 88),
        ("database", 12),
        ("collection", 3),
        ("created", "2026-11-01 08:00:00"),
        ("modified", "2026-11-23 10:01:00"),
        ("fields", {"city": "Leiden", "orders": 3}),
    ]


def test_profile_delete_posts_type_timestamp_time_profile_database_fields(
    sample_events: dict[str, Any],
) -> None:
    assert list(parse_event(sample_events["delete"]).payload().items()) == [
        ("type", "delete"),
        ("timestamp", FROZEN_TIMESTAMP),
        ("time", FROZEN_TIME),
        ("profile", 4711),
        ("database", 12),
        ("fields", {"email": "jane@example.com", "name": "Jane"}),
    ]


def test_unsubscribe_posts_id_type_timestamp_time_database_profile_mailing() -> None:
    event = {"type": "unsubscribe", "id": "msg-2001", "mailing": 77, "profile": 4711, "database": 12}
    assert list(parse_event(event).payload().items()) == [
        ("id", "msg-2001"),
        ("type", "unsubscribe"),
        ("timestamp", FROZEN_TIMESTAMP),
        ("time", FROZEN_TIME),
        ("database", 12),
        ("profile", 4711),
        ("mailing", 77),
    ]


def test_abuse_posts_id_type_emailfrom_mime_only() -> None:
    event = {"type": "abuse", "mime": MIME, "emailfrom": "complainer@example.org", "id": "msg-3001"}
    assert list(parse_event(event).payload().items()) == [
        ("id", "msg-3001"),
        ("type", "abuse"),
        ("emailfrom", "complainer@example.org"),
        ("mime", MIME),
    ]


# --------------------------------------------------------------------------------------------------
# Profile and subprofile variants


@pytest.mark.parametrize("type_", ["create", "update"])
def test_profile_change_without_interests_posts_an_empty_interests_list_last(type_: str) -> None:
    payload = parse_event(profile_event(type_)).payload()
    assert list(payload) == [
        "type", "parameters", "timestamp", "time", "profile", "database", "created", "modified",
        "fields", "interests",
    ]  # fmt: skip
    assert payload["interests"] == []


def test_profile_change_parameters_default_to_an_empty_dict() -> None:
    event = profile_event("update")
    del event["parameters"]
    assert parse_event(event).payload()["parameters"] == {}


@pytest.mark.parametrize("type_", ["create", "update"])
def test_subprofile_change_posts_no_interests_key(type_: str) -> None:
    payload = parse_event(profile_event(type_, subprofile=88, collection=3)).payload()
    assert list(payload) == [
        "type", "parameters", "timestamp", "time", "profile", "subprofile", "database", "collection",
        "created", "modified", "fields",
    ]  # fmt: skip


@pytest.mark.parametrize("interests", [[], ["shoes"]])
def test_subprofile_change_with_interests_is_rejected(interests: list[str]) -> None:
    with pytest.raises(ValidationError, match="subprofile events have no interests"):
        parse_event(profile_event("create", subprofile=88, collection=3, interests=interests))


def test_subprofile_delete_posts_type_timestamp_time_profile_subprofile_database_collection_fields() -> None:
    event = {"type": "delete", "profile": 4711, "subprofile": 88, "database": 12, "collection": 3}
    assert list(parse_event(event).payload().items()) == [
        ("type", "delete"),
        ("timestamp", FROZEN_TIMESTAMP),
        ("time", FROZEN_TIME),
        ("profile", 4711),
        ("subprofile", 88),
        ("database", 12),
        ("collection", 3),
        ("fields", {}),
    ]


@pytest.mark.parametrize("extra", [{"subprofile": 88}, {"collection": 3}])
def test_subprofile_without_collection_or_collection_without_subprofile_is_rejected(
    extra: dict[str, int],
) -> None:
    with pytest.raises(ValidationError, match="subprofile and collection go together"):
        parse_event(profile_event("update", **extra))


def test_profile_delete_with_interests_is_rejected() -> None:
    with pytest.raises(ValidationError, match="interests"):
        parse_event({"type": "delete", "profile": 1, "database": 2, "interests": []})


def test_profile_event_without_database_is_rejected() -> None:
    event = profile_event("create")
    del event["database"]
    with pytest.raises(ValidationError, match="database"):
        parse_event(event)


def test_profile_reference_may_be_a_string() -> None:
    assert parse_event(profile_event("create", profile="p-4711")).payload()["profile"] == "p-4711"


def test_boolean_profile_reference_is_rejected() -> None:
    with pytest.raises(ValidationError, match="profile"):
        parse_event(profile_event("create", profile=True))


# --------------------------------------------------------------------------------------------------
# timestamp and time


def test_time_is_filled_from_timestamp() -> None:
    payload = parse_event(click(timestamp="2026-11-23 10:00:00")).payload()
    assert (payload["timestamp"], payload["time"]) == ("2026-11-23 10:00:00", 1795428000)


def test_timestamp_is_filled_from_time() -> None:
    payload = parse_event(click(time=1795428060)).payload()
    assert (payload["timestamp"], payload["time"]) == ("2026-11-23 10:01:00", 1795428060)


def test_timestamp_and_time_for_the_same_moment_are_accepted() -> None:
    payload = parse_event(click(timestamp="2026-11-23 10:00:00", time=1795428000)).payload()
    assert (payload["timestamp"], payload["time"]) == ("2026-11-23 10:00:00", 1795428000)


def test_timestamp_and_time_that_disagree_are_rejected() -> None:
    with pytest.raises(ValidationError, match="timestamp and time disagree"):
        parse_event(click(timestamp="2026-11-23 10:00:00", time=1795428001))


def test_neither_timestamp_nor_time_takes_the_current_second() -> None:
    payload = parse_event(click()).payload()
    assert (payload["timestamp"], payload["time"]) == (FROZEN_TIMESTAMP, FROZEN_TIME)


@pytest.mark.parametrize(
    "timestamp", ["2026-11-23T10:00:00Z", "2026-11-23 10:00", "23-11-2026 10:00:00", "2026-11-23 10:00:00 "]
)
def test_timestamp_in_another_format_is_rejected(timestamp: str) -> None:
    with pytest.raises(ValidationError, match="timestamp"):
        parse_event(click(timestamp=timestamp))


def test_timestamp_that_is_not_a_calendar_date_is_rejected() -> None:
    with pytest.raises(ValidationError, match="timestamp is not a valid date and time"):
        parse_event(click(timestamp="2026-02-30 10:00:00"))


@pytest.mark.parametrize("time", ["1795428000", -1, 1795428000.5, True])
def test_time_that_is_not_a_non_negative_integer_is_rejected(time: object) -> None:
    with pytest.raises(ValidationError, match="time"):
        parse_event(click(time=time))


@pytest.mark.parametrize("timestamp", ["1969-12-31 23:59:59", "9999-12-31 23:59:59"])
def test_timestamp_outside_the_range_of_time_is_rejected(timestamp: str) -> None:
    with pytest.raises(ValidationError):
        parse_event(click(timestamp=timestamp))


def test_parsed_event_dumped_as_ingest_queues_it_parses_to_the_same_payload(
    sample_events: dict[str, Any],
) -> None:
    for raw in sample_events.values():
        event = parse_event(raw)
        again = parse_event(event.model_dump(mode="json", exclude_none=True))
        assert again.payload() == event.payload()


# --------------------------------------------------------------------------------------------------
# What is rejected


def test_unknown_field_is_rejected() -> None:
    with pytest.raises(ValidationError, match="color"):
        parse_event(click(color="red"))


@pytest.mark.parametrize("event", [{"type": "bonce"}, {"type": "Click"}, {"id": "m"}, {"type": None}])
def test_unknown_or_missing_type_is_rejected(event: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        parse_event(event)


def test_failure_code_as_a_string_is_rejected() -> None:
    event = {
        "type": "failure",
        "id": "m",
        "recipient": "a@b.c",
        "action": "failed",
        "state": "r",
        "code": "550",
    }
    with pytest.raises(ValidationError, match="code"):
        parse_event(event)


def test_delivery_code_as_a_string_is_rejected() -> None:
    with pytest.raises(ValidationError, match="code"):
        parse_event({"type": "delivery", "id": "m", "recipient": "a@b.c", "code": "250"})


def test_delivery_without_code_is_rejected() -> None:
    with pytest.raises(ValidationError, match="code"):
        parse_event({"type": "delivery", "id": "m", "recipient": "a@b.c"})


@pytest.mark.parametrize("action", ["failure", "failed"])
def test_failure_action_failure_or_failed_is_accepted(action: str) -> None:
    event = {"type": "failure", "id": "m", "recipient": "a@b.c", "action": action, "state": "rcpt"}
    assert parse_event(event).payload()["action"] == action


@pytest.mark.parametrize("action", ["bounce", "Failed", ""])
def test_failure_action_other_than_failure_or_failed_is_rejected(action: str) -> None:
    event = {"type": "failure", "id": "m", "recipient": "a@b.c", "action": action, "state": "rcpt"}
    with pytest.raises(ValidationError, match="action"):
        parse_event(event)


def test_tags_that_are_not_a_list_of_strings_are_rejected() -> None:
    with pytest.raises(ValidationError, match="tags"):
        parse_event(click(tags="newsletter"))


def test_click_without_original_url_is_rejected() -> None:
    event = click()
    del event["original"]
    with pytest.raises(ValidationError, match="original"):
        parse_event(event)


def test_profile_field_value_that_is_not_a_scalar_is_rejected() -> None:
    with pytest.raises(ValidationError, match="fields"):
        parse_event(profile_event("create", fields={"address": {"city": "Leiden"}}))


# --------------------------------------------------------------------------------------------------
# Routing: database and collection


def test_mail_event_database_and_collection_route_but_are_not_posted() -> None:
    event = parse_event(click(database=12, collection=3))
    assert event.routing == ("12", "3")
    assert "database" not in event.payload()
    assert "collection" not in event.payload()


def test_mail_event_without_database_routes_to_none() -> None:
    assert parse_event(click()).routing == (None, None)


def test_profile_event_routes_on_its_database_and_collection_as_strings() -> None:
    assert parse_event(profile_event("create")).routing == ("12", None)
    assert parse_event(profile_event("update", subprofile=88, collection=3)).routing == ("12", "3")


def test_abuse_database_routes_but_is_not_posted() -> None:
    event = parse_event(
        {"type": "abuse", "id": "m", "emailfrom": "a@b.c", "mime": MIME, "database": "news", "collection": 3}
    )
    assert event.routing == ("news", "3")
    assert "database" not in event.payload()


# --------------------------------------------------------------------------------------------------
# Cold start


def test_a_type_builds_its_schema_when_its_first_event_arrives_not_at_import() -> None:
    # In a fresh interpreter: this one's models were built by the tests above.
    code = (
        "import json\n"
        "from webhooks import events\n"
        "def built(): return sorted(m.__name__ for m in events._MODELS.values() if m.__pydantic_complete__)\n"
        "before = built()\n"
        "events.parse_event({'type': 'open', 'id': 'm', 'recipient': 'a@b.c'})\n"
        "print(json.dumps([before, built()]))\n"
    )
    layer = Path(events.__file__).resolve().parents[1]
    done = subprocess.run(
        [sys.executable, "-c", code],
        env={**os.environ, "PYTHONPATH": str(layer)},
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    assert json.loads(done.stdout) == [[], ["OpenEvent"]]
