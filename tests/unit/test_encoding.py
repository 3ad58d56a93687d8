"""webhooks.encoding: the original product's form encoding (PHP's http_build_query), or compact JSON."""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import parse_qsl, urlencode

import pytest

from webhooks import encoding
from webhooks.encoding import CONTENT_TYPES, Format, encode, encode_form, encode_json
from webhooks.events import parse_event

# --------------------------------------------------------------------------------------------------
# Form


def test_form_encodes_a_dict_per_key_as_fields_name() -> None:
    body = encode_form({"fields": {"name": "Jane", "city": "Leiden"}})
    assert body == b"fields%5Bname%5D=Jane&fields%5Bcity%5D=Leiden"
    assert parse_qsl(body.decode()) == [("fields[name]", "Jane"), ("fields[city]", "Leiden")]


def test_form_encodes_a_list_per_item_as_tags_brackets() -> None:
    body = encode_form({"tags": ["a", "b"]})
    assert body == b"tags%5B%5D=a&tags%5B%5D=b"
    assert parse_qsl(body.decode()) == [("tags[]", "a"), ("tags[]", "b")]


def test_form_encodes_interests_per_item() -> None:
    assert encode_form({"interests": ["xyz"]}) == b"interests%5B%5D=xyz"


def test_form_encodes_parameters_per_key() -> None:
    assert encode_form({"parameters": {"key": "v"}}) == b"parameters%5Bkey%5D=v"


def test_form_encodes_nested_dicts_with_one_bracket_per_level() -> None:
    assert encode_form({"a": {"b": {"c": "v"}}}) == b"a%5Bb%5D%5Bc%5D=v"


def test_form_encodes_a_list_inside_a_dict() -> None:
    assert encode_form({"parameters": {"tags": ["x", "y"]}}) == (
        b"parameters%5Btags%5D%5B%5D=x&parameters%5Btags%5D%5B%5D=y"
    )


def test_form_keeps_the_keys_of_a_dict_inside_a_list_in_one_element() -> None:
    body = encode_form({"parameters": {"items": [{"sku": "a", "qty": 1}]}})
    assert body == b"parameters%5Bitems%5D%5B0%5D%5Bsku%5D=a&parameters%5Bitems%5D%5B0%5D%5Bqty%5D=1"


def test_form_keeps_the_payload_order_of_keys() -> None:
    assert encode_form({"id": "m1", "type": "open", "time": 1795428060}) == b"id=m1&type=open&time=1795428060"


def test_form_encodes_none_as_an_empty_value() -> None:
    assert encode_form({"description": None, "fields": {"city": None}}) == (b"description=&fields%5Bcity%5D=")


def test_form_encodes_true_as_1_and_false_as_0() -> None:
    assert encode_form({"a": True, "b": False, "fields": {"optin": True}}) == (b"a=1&b=0&fields%5Boptin%5D=1")


def test_form_encodes_numbers_as_their_decimal_text() -> None:
    assert encode_form({"code": 550, "fields": {"score": 1.5}}) == b"code=550&fields%5Bscore%5D=1.5"


def test_form_percent_encodes_unicode_as_utf8_and_spaces_as_plus() -> None:
    assert encode_form({"name": "Zoë €"}) == b"name=Zo%C3%AB+%E2%82%AC"


def test_form_percent_encodes_reserved_characters_of_values() -> None:
    assert encode_form({"original": "https://x.example/?a=1&b=2#f"}) == (
        b"original=https%3A%2F%2Fx.example%2F%3Fa%3D1%26b%3D2%23f"
    )


def test_form_percent_encodes_reserved_characters_of_keys() -> None:
    assert encode_form({"fields": {"a&b=c": "v"}}) == b"fields%5Ba%26b%3Dc%5D=v"


def test_form_leaves_out_an_empty_list_like_php() -> None:
    assert encode_form({"id": "m", "tags": [], "interests": []}) == b"id=m"


def test_form_of_an_empty_payload_is_empty() -> None:
    assert encode_form({}) == b""


# --------------------------------------------------------------------------------------------------
# JSON


def test_json_is_compact() -> None:
    assert encode_json({"a": 1, "b": [1, 2], "c": {"d": None}}) == b'{"a":1,"b":[1,2],"c":{"d":null}}'


def test_json_keeps_unicode_as_utf8_not_escapes() -> None:
    assert encode_json({"name": "Zoë"}) == '{"name":"Zoë"}'.encode()


def test_json_keeps_key_order() -> None:
    assert encode_json({"type": "open", "id": "m"}) == b'{"type":"open","id":"m"}'


# --------------------------------------------------------------------------------------------------
# encode(): body and content type


def test_encode_form_answers_the_form_body_and_content_type() -> None:
    assert encode({"tags": ["a"]}, Format.FORM) == (b"tags%5B%5D=a", "application/x-www-form-urlencoded")


def test_encode_json_answers_the_json_body_and_content_type() -> None:
    assert encode({"tags": ["a"]}, Format.JSON) == (b'{"tags":["a"]}', "application/json")


@pytest.mark.parametrize("fmt", [Format.FORM, Format.JSON])
def test_encode_sends_a_list_payload_as_json_whatever_the_format(fmt: Format) -> None:
    assert encode([{"id": "a"}, {"id": "b"}], fmt) == (b'[{"id":"a"},{"id":"b"}]', "application/json")


def test_formats_are_named_form_and_json() -> None:
    assert (Format("form"), Format("json")) == (Format.FORM, Format.JSON)
    assert CONTENT_TYPES == {
        Format.FORM: "application/x-www-form-urlencoded",
        Format.JSON: "application/json",
    }


def test_form_is_byte_for_byte_what_urlencode_writes_for_every_sample_event_and_odd_text() -> None:
    events = Path(__file__).parents[2] / "events" / "platform_events.json"
    samples = json.loads(events.read_text())["events"]
    odd = ["", " ", "a b+c", "ü€😀", "~_.-", "a&b=c", "%41", "line\nbreak", "tab\t", "'\"<>", "/?#[]@!$"]
    payloads = [parse_event(raw).payload() for raw in samples]
    payloads += [{text: text, "n": {text: [text, 1, None, True]}} for text in odd]
    for payload in payloads:
        pairs: list[tuple[str, str]] = []
        for key, value in payload.items():
            encoding._pairs(key, value, pairs)
        assert encode_form(payload) == urlencode(pairs).encode()
