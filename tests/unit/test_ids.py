"""webhooks.ids: random ids are unguessable, delivery ids are the same on every fan-out of an event."""

from __future__ import annotations

import re

from webhooks.ids import delivery_id, event_id, new_id


def test_delivery_id_is_the_same_for_the_same_event_and_hook() -> None:
    assert delivery_id("evt_1", "hook_1") == delivery_id("evt_1", "hook_1")


def test_delivery_id_differs_across_hooks() -> None:
    assert delivery_id("evt_1", "hook_1") != delivery_id("evt_1", "hook_2")


def test_delivery_id_differs_across_events() -> None:
    assert delivery_id("evt_1", "hook_1") != delivery_id("evt_2", "hook_1")


def test_delivery_id_does_not_confuse_where_event_and_hook_ids_split() -> None:
    assert delivery_id("evt_1", "2hook") != delivery_id("evt_12", "hook")


def test_delivery_id_does_not_change_between_releases() -> None:
    # Logged deliveries are replayed, and receivers de-duplicate, under the ids they were given.
    assert delivery_id("evt_1", "hook_1") == "msg_u5tjdrfpoqjx3syarob2hvmqqm"


def test_delivery_id_is_msg_and_26_base32_letters() -> None:
    assert re.fullmatch(r"msg_[a-z2-7]{26}", delivery_id("evt_1", "hook_1"))


def test_new_id_is_the_prefix_and_128_bits_in_base32() -> None:
    # 26 base32 letters carry 130 bits, the last two always zero: 128 bits of randomness.
    assert re.fullmatch(r"hook_[a-z2-7]{26}", new_id("hook"))


def test_new_id_with_more_bytes_is_longer() -> None:
    assert re.fullmatch(r"evt_[a-z2-7]{52}", new_id("evt", nbytes=32))


def test_new_ids_differ() -> None:
    assert len({new_id("hook") for _ in range(1000)}) == 1000


def test_event_id_under_a_key_is_the_same_for_the_same_event_whatever_its_key_order() -> None:
    open_ = {"type": "open", "id": "m", "recipient": "a@b.c"}
    reordered = {"recipient": "a@b.c", "id": "m", "type": "open"}
    assert event_id("acct", "key", 0, open_) == event_id("acct", "key", 0, reordered)


def test_event_id_differs_by_account_key_position_and_content() -> None:
    open_ = {"type": "open", "id": "m", "recipient": "a@b.c"}
    ids = {
        event_id("acct", "key", 0, open_),
        event_id("acct2", "key", 0, open_),
        event_id("acct", "key2", 0, open_),
        event_id("acct", "key", 1, open_),
        event_id("acct", "key", 0, {**open_, "recipient": "x@b.c"}),
    }
    assert len(ids) == 5
    assert all(re.fullmatch(r"evt_[a-z2-7]{26}", i) for i in ids)
