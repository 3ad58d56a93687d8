"""webhooks.hooks: which events a hook hears, which secrets sign, how it is stored."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.unit.conftest import OLD_SECRET, SECRET
from webhooks.encoding import Format
from webhooks.hooks import Hook, HookStatus

MakeHook = Callable[..., Hook]


# --------------------------------------------------------------------------------------------------
# subscribes_to


def test_hook_hears_a_type_it_subscribed_to(make_hook: MakeHook) -> None:
    assert make_hook(events=["open", "click"]).subscribes_to("click", None, None)


def test_hook_does_not_hear_a_type_it_did_not_subscribe_to(make_hook: MakeHook) -> None:
    assert not make_hook(events=["open"]).subscribes_to("click", "12", None)


def test_hook_without_filters_hears_every_database_and_collection(make_hook: MakeHook) -> None:
    hook = make_hook(events=["update"])
    assert hook.subscribes_to("update", "12", "3")
    assert hook.subscribes_to("update", "99", None)
    assert hook.subscribes_to("update", None, None)


def test_hook_filtered_on_a_database_hears_only_that_database(make_hook: MakeHook) -> None:
    hook = make_hook(events=["open"], database="12")
    assert hook.subscribes_to("open", "12", None)
    assert not hook.subscribes_to("open", "13", None)


def test_hook_filtered_on_a_database_does_not_hear_events_without_one(make_hook: MakeHook) -> None:
    assert not make_hook(events=["open"], database="12").subscribes_to("open", None, None)


def test_hook_filtered_on_a_collection_hears_only_that_collection(make_hook: MakeHook) -> None:
    hook = make_hook(events=["update"], database="12", collection="3")
    assert hook.subscribes_to("update", "12", "3")
    assert not hook.subscribes_to("update", "12", "4")
    assert not hook.subscribes_to("update", "12", None)


def test_hook_filtered_on_a_collection_also_needs_its_database(make_hook: MakeHook) -> None:
    assert not make_hook(events=["update"], database="12", collection="3").subscribes_to("update", "13", "3")


# --------------------------------------------------------------------------------------------------
# signing_secrets


def test_hook_without_a_previous_secret_signs_with_its_secret(make_hook: MakeHook) -> None:
    assert make_hook().signing_secrets(now=1_000) == [SECRET]


def test_previous_secret_signs_beside_the_new_one_until_it_expires(make_hook: MakeHook) -> None:
    hook = make_hook(previous_secret=OLD_SECRET, previous_secret_expires_at=2_000)
    assert hook.signing_secrets(now=1_999) == [SECRET, OLD_SECRET]


@pytest.mark.parametrize("now", [2_000, 2_001])
def test_previous_secret_stops_signing_once_it_expires(make_hook: MakeHook, now: int) -> None:
    hook = make_hook(previous_secret=OLD_SECRET, previous_secret_expires_at=2_000)
    assert hook.signing_secrets(now=now) == [SECRET]


def test_previous_secret_without_an_expiry_does_not_sign(make_hook: MakeHook) -> None:
    assert make_hook(previous_secret=OLD_SECRET).signing_secrets(now=1_000) == [SECRET]


# --------------------------------------------------------------------------------------------------
# Defaults and storage


def test_new_hook_defaults_to_form_pending_validation(make_hook: MakeHook) -> None:
    hook = make_hook(status="pending_validation")
    assert (hook.format, hook.status) == (Format.FORM, HookStatus.PENDING_VALIDATION)


def test_stored_active_hook_carries_active_account(make_hook: MakeHook) -> None:
    assert make_hook(account="acct-9", status="active").to_item()["active_account"] == "acct-9"


@pytest.mark.parametrize("status", ["pending_validation", "validation_failed", "disabled"])
def test_stored_inactive_hook_has_no_active_account(make_hook: MakeHook, status: str) -> None:
    assert "active_account" not in make_hook(status=status).to_item()


def test_stored_hook_leaves_out_unset_fields(make_hook: MakeHook) -> None:
    item = make_hook().to_item()
    assert "database" not in item
    assert "previous_secret" not in item
    assert "description" not in item


def test_stored_hook_keeps_enums_as_their_names(make_hook: MakeHook) -> None:
    item = make_hook(events=["open", "click"], format="json", status="disabled").to_item()
    assert (item["events"], item["format"], item["status"]) == (["open", "click"], "json", "disabled")


def test_stored_hook_reads_back_as_the_same_hook(make_hook: MakeHook) -> None:
    hook = make_hook(database="12", previous_secret=OLD_SECRET, previous_secret_expires_at=2_000)
    assert Hook.model_validate(hook.to_item()) == hook


def test_hook_with_an_unknown_event_type_is_rejected(make_hook: MakeHook) -> None:
    with pytest.raises(ValueError, match="events"):
        make_hook(events=["bonce"])
