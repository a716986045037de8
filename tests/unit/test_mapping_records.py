"""Records built by compiled mappings: the null rules, nesting, purposes and record errors."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from sluice.mapping import Purpose, RecordError, compile_mapping
from sluice.model.types import parse_type

STRING = {"kind": "string"}
INT = {"kind": "int", "bitSize": 32}

IN = parse_type(
    {
        "kind": "object",
        "properties": [
            {"name": "email", "type": STRING, "readOptional": True},
            {"name": "name", "type": STRING, "readOptional": True},
            {"name": "age", "type": INT, "readOptional": True},
            {"name": "extra", "type": {"kind": "json"}, "readOptional": True},
            {
                "name": "address",
                "type": {
                    "kind": "object",
                    "properties": [
                        {"name": "city", "type": STRING, "readOptional": True},
                        {"name": "zip", "type": STRING, "readOptional": True},
                    ],
                },
                "readOptional": True,
            },
        ],
    }
)


def prop(name: str, t: dict[str, Any], **flags: bool) -> dict[str, Any]:
    return {"name": name, "type": t, **flags}


OUT = parse_type(
    {
        "kind": "object",
        "properties": [
            prop(
                "contact",
                {
                    "kind": "object",
                    "properties": [
                        prop("nullable", STRING, nullable=True),
                        prop("optional", STRING),
                        prop("for_creation", STRING, createRequired=True),
                        prop("for_update", STRING, updateRequired=True),
                        prop("always", STRING, createRequired=True, updateRequired=True),
                        prop("nullable_required", STRING, nullable=True, createRequired=True),
                        prop("meta", {"kind": "json"}),
                        prop("age", INT, nullable=True),
                    ],
                },
            ),
            prop(
                "address",
                {
                    "kind": "object",
                    "properties": [prop("city", STRING), prop("zip", STRING, nullable=True)],
                },
            ),
            prop("name", STRING),
        ],
    }
)


def record(mapping: dict[str, str], profile: dict[str, Any], purpose: Purpose) -> dict[str, Any]:
    return compile_mapping(mapping, IN, OUT).transform(profile, purpose)


def output_error(mapping: dict[str, str], profile: dict[str, Any], purpose: Purpose) -> RecordError:
    with pytest.raises(RecordError) as caught:
        record(mapping, profile, purpose)
    return caught.value


# A nil value (rule 1: the input is missing; rule 2: JSON null to a string becomes nil) for
# each destination, per purpose: written as null, left out, or an error.
NIL_SOURCES = ["email", "extra.missing", 'json_parse("null")']


@pytest.mark.parametrize("source", NIL_SOURCES)
@pytest.mark.parametrize(
    ("key", "purpose", "outcome"),
    [
        ("contact.nullable", Purpose.CREATE, {"contact": {"nullable": None}}),
        ("contact.nullable", Purpose.UPDATE, {"contact": {"nullable": None}}),
        ("contact.nullable_required", Purpose.CREATE, {"contact": {"nullable_required": None}}),
        ("contact.optional", Purpose.CREATE, {}),
        ("contact.optional", Purpose.UPDATE, {}),
        ("contact.for_creation", Purpose.CREATE, "creation"),
        ("contact.for_creation", Purpose.UPDATE, {}),
        ("contact.for_update", Purpose.CREATE, {}),
        ("contact.for_update", Purpose.UPDATE, "update"),
        ("contact.always", Purpose.CREATE, "creation"),
        ("contact.always", Purpose.UPDATE, "update"),
    ],
)
def test_null_rules(source: str, key: str, purpose: Purpose, outcome: Any) -> None:
    profile = {"extra": {}}
    if isinstance(outcome, dict):
        assert record({key: source}, profile, purpose) == outcome
        return
    error = output_error({key: source}, profile, purpose)
    assert error.step == "OutputValidation"
    assert error.key == key
    assert error.message == (
        f"«{source}» is null but it is required for {outcome} while mapping to «{key}»"
    )


def test_nil_after_conversion_follows_the_same_rules() -> None:
    mapping = {"contact.age": "name", "contact.always": "lower(name)"}
    assert record(mapping, {"name": ""}, Purpose.CREATE) == {"contact": {"age": None, "always": ""}}


def test_json_null_is_a_value_for_json_destinations() -> None:
    mapping = {"contact.meta": "extra", "contact.optional": "extra"}
    assert record(mapping, {"extra": None}, Purpose.CREATE) == {"contact": {"meta": None}}
    assert record(mapping, {}, Purpose.CREATE) == {}


def test_objects_are_created_only_to_hold_values() -> None:
    mapping = {
        "contact.optional": "email",
        "address.city": "address.city",
        "address.zip": "address.zip",
        "name": "name",
    }
    assert record(mapping, {"name": "Ada"}, Purpose.UPDATE) == {
        "address": {"zip": None},
        "name": "Ada",
    }
    mapping.pop("address.zip")
    assert record(mapping, {}, Purpose.UPDATE) == {}


def test_keys_may_address_a_whole_object() -> None:
    profile = {"address": {"city": "Paris", "zip": "75001"}}
    assert record({"address": "address"}, profile, Purpose.CREATE) == {
        "address": {"city": "Paris", "zip": "75001"}
    }
    assert record({"address": "address"}, {"address": {}}, Purpose.CREATE) == {"address": {}}


def test_records_follow_the_output_schema_in_key_order() -> None:
    mapping = {
        "name": "name",
        "contact.optional": '"o"',
        "contact.nullable": "upper(name)",
        "address.city": "address.city",
    }
    out = record(mapping, {"name": "ada", "address": {"city": "Rome"}}, Purpose.CREATE)
    assert out == {
        "address": {"city": "Rome"},
        "contact": {"nullable": "ADA", "optional": "o"},
        "name": "ada",
    }
    assert list(out) == ["address", "contact", "name"]
    assert list(out["contact"]) == ["nullable", "optional"]


def test_the_first_failing_key_in_key_order_is_reported() -> None:
    mapping = {"name": "extra.a.b", "contact.always": "email", "address.city": "extra.x.y"}
    error = output_error(mapping, {"extra": {"a": 1, "x": "s"}}, Purpose.CREATE)
    assert (error.key, error.step) == ("address.city", "Transformation")
    assert error.message == (
        "invalid extra.x.y: extra.x is not JSON object, it is string "
        "while mapping to «address.city»"
    )


def test_transformation_and_validation_errors_name_their_step() -> None:
    transformation = output_error(
        {"name": "substring(name, 1, age)"}, {"name": "x", "age": -1}, Purpose.CREATE
    )
    assert transformation.step == "Transformation"
    out = parse_type(
        {"kind": "object", "properties": [prop("name", {"kind": "string", "maxLength": 2})]}
    )
    compiled = compile_mapping({"name": "name"}, IN, out)
    with pytest.raises(RecordError) as caught:
        compiled.transform({"name": "abc"}, Purpose.UPDATE)
    assert caught.value.step == "OutputValidation"
    assert str(caught.value) == "«name» exceeds the 2-char limit while mapping to «name»"


def test_messages_keep_their_quotes_unambiguous() -> None:
    error = output_error({"contact.always": 'if(email, "»")'}, {}, Purpose.CREATE)
    assert error.message == (
        '«if(email, "≫")» is null but it is required for creation while mapping to «contact.always»'
    )


def test_transform_leaves_the_profile_alone_and_returns_fresh_records() -> None:
    compiled = compile_mapping({"name": "name", "address": "address"}, IN, OUT)
    profile = {"name": "Ada", "address": {"city": "London"}}
    before = copy.deepcopy(profile)
    first = compiled.transform(profile, Purpose.CREATE)
    second = compiled.transform(profile, Purpose.CREATE)
    assert profile == before
    assert first == second and first is not second


def test_purposes_are_checked() -> None:
    compiled = compile_mapping({"name": "name"}, IN, OUT)
    assert compiled.transform({"name": "x"}, "create") == {"name": "x"}  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="purpose must be"):
        compiled.transform({}, "delete")  # type: ignore[arg-type]
