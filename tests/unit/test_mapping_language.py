"""The mapping language at compile time: grammar, paths, type checks, keys and their messages."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sluice.mapping import MappingError, Purpose, RecordError, compile_mapping
from sluice.mapping.parser import MAX_CALL_DEPTH
from sluice.model.types import parse_type


def props(**types: Any) -> list[dict[str, Any]]:
    return [{"name": name, "type": t, "nullable": True} for name, t in types.items()]


STRING = {"kind": "string"}
IN = parse_type(
    {
        "kind": "object",
        "properties": props(
            first_name=STRING,
            last_name=STRING,
            age={"kind": "int", "bitSize": 32},
            vip={"kind": "boolean"},
            born={"kind": "date"},
            tags={"kind": "array", "elementType": STRING},
            traits={"kind": "map", "elementType": STRING},
            people={
                "kind": "map",
                "elementType": {"kind": "object", "properties": props(name=STRING)},
            },
            extra={"kind": "json"},
            address={"kind": "object", "properties": props(street=STRING, city=STRING)},
        ),
    }
)
OUT = parse_type(
    {
        "kind": "object",
        "properties": props(
            note=STRING,
            count={"kind": "int", "bitSize": 8},
            ratio={"kind": "float", "bitSize": 64},
            amount={"kind": "decimal", "precision": 10, "scale": 2},
            flag={"kind": "boolean"},
            blob={"kind": "json"},
            contact={"kind": "object", "properties": props(name=STRING, city=STRING)},
        ),
    }
)
PROFILE: dict[str, Any] = {
    "first_name": "Ada",
    "last_name": "Lovelace",
    "age": 36,
    "vip": True,
    "born": date(1815, 12, 10),
    "tags": ["math", "poetry"],
    "traits": {"k": "v", "any key": "w"},
    "people": {"bob": {"name": "Bob"}},
    "extra": {"a": {"b": 1}, "n": 5, "a b": "spaced"},
    "address": {"street": "St James's Square", "city": "London"},
}


def value_of(expression: str, key: str = "note", profile: dict[str, Any] = PROFILE) -> Any:
    record = compile_mapping({key: expression}, IN, OUT).transform(profile, Purpose.CREATE)
    return record.get(key)


def compile_error(expression: str, key: str = "note") -> MappingError:
    with pytest.raises(MappingError) as caught:
        compile_mapping({key: expression}, IN, OUT)
    return caught.value


# ---------------------------------------------------------------------------------------------
# Grammar
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expression", "key", "expected"),
    [
        ('"abc"', "note", "abc"),
        ("'abc'", "note", "abc"),
        ('"it\'s"', "note", "it's"),
        ("'say \"hi\"'", "note", 'say "hi"'),
        (r'"\a\b\f\n\r\t\v\\\'\""', "note", "\a\b\f\n\r\t\v\\'\""),
        (r'"\u00e9t\u00E9"', "note", "été"),
        (r'"\U0001F600"', "note", "😀"),
        ('"two\nlines"', "note", "two\nlines"),
        ("42", "count", 42),
        ("-7", "count", -7),
        ("1e2", "count", 100),
        ("1.0", "count", 1),
        ("1.5", "ratio", 1.5),
        ("-2.5E-1", "ratio", -0.25),
        ("1.005", "amount", Decimal("1.01")),  # rounded to the scale, halves away from zero
        ("1.5", "note", "1.5"),
        ("true", "flag", True),
        ("false", "flag", False),
        ("null", "note", None),
        ("null", "blob", None),
    ],
)
def test_literals(expression: str, key: str, expected: Any) -> None:
    value = value_of(expression, key)
    assert (value, type(value)) == (expected, type(expected))


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ('"a" "b"', "ab"),
        ("1 2", "12"),
        ('true "x" null 1.50', "truex1.50"),
        ('first_name " " last_name', "Ada Lovelace"),
        ('first_name" "last_name', "Ada Lovelace"),
        ("first_name last_name", "AdaLovelace"),
        ('"id-" age', "id-36"),
        ('vip "!"', "true!"),
        ('"born " born', "born 1815-12-10"),
        ('"50% " first_name', "50% Ada"),
        ('lower(first_name) "-" upper(last_name)', "ada-LOVELACE"),
        ('"tag:" extra.n', "tag:5"),
    ],
)
def test_juxtaposition_concatenates_as_strings(expression: str, expected: str) -> None:
    assert value_of(expression) == expected


def test_nil_parts_of_a_template_are_written_as_nothing() -> None:
    profile = {"first_name": "Ada"}
    assert value_of('first_name " " last_name "."', profile=profile) == "Ada ."


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("address.city", "London"),
        ('address["city"]', "London"),
        ("address[ 'city' ]", "London"),
        ("traits.k", "v"),
        ('traits["any key"]', "w"),
        ("traits.missing", None),
        ("people.bob.name", "Bob"),
        ("people.alice.name", None),
        ("extra.a.b", "1"),
        ('extra["a b"]', "spaced"),
        ("extra.missing.deeper", None),
        ("extra.n.x?", None),
        ('extra.n["x"]?', None),
        ("extra.a.b.c?", None),
        ("lower( first_name )", "ada"),
        ("lower (first_name)", "ada"),
        ("upper(lower(first_name))", "ADA"),
        (" \t\n first_name \r\n", "Ada"),
    ],
)
def test_paths_and_calls(expression: str, expected: str | None) -> None:
    assert value_of(expression) == expected


@pytest.mark.parametrize(
    ("expression", "message", "position"),
    [
        ('"abc', "string is not terminated", 0),
        ('first_name "x', "string is not terminated", 11),
        ('"a\\', "string is not terminated", 0),
        ('"\\u12', "string is not terminated", 0),
        ("12abc", "number syntax is not valid", 0),
        ("1.", "number syntax is not valid", 0),
        ("1e", "number syntax is not valid", 0),
        ("--1", "number syntax is not valid", 0),
        ("1-2", "number syntax is not valid", 0),
        (
            "first-name",
            "the ‘-’ character is used for negation. Did you mean the ‘_’ character?",
            5,
        ),
        ("address.", "path is not terminated", 8),
        ('address["city"', "path is not terminated", 14),
        ('address["city" x]', "path is not terminated", 15),
        ("address[", "path is not terminated", 8),
        ("address[city]", "key in brackets is not a string", 8),
        ("address..city", "unexpected period in path", 7),
        ("address. city", "unexpected period in path", 7),
        ("first_name, last_name", "unexpected character ','", 10),
        ("(first_name)", "unexpected character '('", 0),
        ("first_name && last_name", "unexpected character '&'", 11),
        ("first_name + 1", "unexpected character '+'", 11),
        ("true.x", "unexpected character '.'", 4),
        ("first_name ?", "unexpected character '?'", 11),
        ("first_name\x00", "unexpected character '\\x00'", 10),
        ("", "expression is empty", 0),
        ("  \t ", "expression is empty", 0),
        ("lower(first_name", "arguments are not terminated", 16),
        ("lower(", "arguments are not terminated", 6),
        ("lower(first_name,", "arguments are not terminated", 17),
        ("lower(first_name,)", "unexpected character ')'", 17),
        ("lower(,)", "unexpected character ','", 6),
        ("lower(first_name ; x)", "unexpected character ';'", 17),
        ("foo(first_name)", 'function "foo" does not exist', 0),
        ('"x" bar()', 'function "bar" does not exist', 4),
        ("address.city(first_name)", 'function "address.city" does not exist', 0),
        (r'"\x"', "unknown escape sequence 'x'", 1),
        (r'"\u12"', "hexadecimal escape has an invalid character '\"'", 5),
        (r'"\u00g0"', "hexadecimal escape has an invalid character 'g'", 5),
        (r'"\u0000"', "character 0x00 is not allowed in strings", 1),
        ('"a\x00b"', "character 0x00 is not allowed in strings", 0),
        (r'"\ud800"', "U+D800 is not a valid Unicode code point", 1),
        (r'"\U00110000"', "U+110000 is not a valid Unicode code point", 1),
    ],
)
def test_syntax_errors(expression: str, message: str, position: int) -> None:
    error = compile_error(expression)
    assert (error.message, error.position, error.key) == (message, position, "note")


def test_calls_nest_up_to_a_limit() -> None:
    nested = "lower(" * MAX_CALL_DEPTH + "first_name" + ")" * MAX_CALL_DEPTH
    assert value_of(nested) == "ada"
    error = compile_error("lower(" + nested + ")")
    assert (
        error.message == f"function calls cannot be nested more than {MAX_CALL_DEPTH} levels deep"
    )
    assert error.position == len("lower(") * MAX_CALL_DEPTH


# ---------------------------------------------------------------------------------------------
# Types
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "expression", "message", "position"),
    [
        ("note", "nickname", 'property "nickname" does not exist', 0),
        ("note", "not", 'property "not" does not exist', 0),
        ("note", "address.zip", 'invalid address.zip: property "zip" does not exist', 0),
        (
            "note",
            'lower(address["zip"])',
            'invalid address["zip"]: property "zip" does not exist',
            6,
        ),
        (
            "note",
            "first_name.x",
            "invalid first_name.x: first_name (type string) cannot have properties or keys",
            0,
        ),
        (
            "note",
            "tags.first",
            "invalid tags.first: tags (type array(string)) cannot have properties or keys",
            0,
        ),
        (
            "note",
            "traits.k.x",
            "invalid traits.k.x: traits.k (type string) cannot have properties or keys",
            0,
        ),
        (
            "note",
            "address.city?",
            "invalid address.city?: operator '?' can be used only with json",
            0,
        ),
        ("note", "first_name?", "invalid first_name?: operator '?' can be used only with json", 0),
        ("note", "traits.k?", "invalid traits.k?: operator '?' can be used only with json", 0),
        (
            "note",
            'address["a name"]',
            'invalid address["a name"]: "a name" is not a valid property name',
            0,
        ),
        ("note", "tags", "cannot convert tags (type array(string)) to string", 0),
        ("note", "address", "cannot convert address (type object) to string", 0),
        ("note", '"x: " tags', "cannot convert tags (type array(string)) to string", 6),
        ("count", "born", "cannot convert born (type date) to int(8)", 0),
        ("contact", 'first_name " "', 'cannot convert first_name " " (type string) to object', 0),
        (
            "note",
            "array(first_name)",
            "cannot convert array(first_name) (type array(json)) to string",
            0,
        ),
        ("count", '"abc"', '"abc" is not convertible to the int(8) type', 0),
        ("count", '""', '"" is not convertible to the int(8) type', 0),
        ("count", "300", "number 300 is greater than 127", 0),
        ("count", "-300", "number -300 is less than -128", 0),
        ("count", "1.5e300", "number 1.5E+300 is greater than 127", 0),
        ("flag", "1", "1 is not convertible to the boolean type", 0),
        ("contact", '"x"', '"x" is not convertible to the object type', 0),
        ("note", "not(vip, vip)", 'function "not" requires one argument', 0),
        ("note", "and(vip)", 'function "and" requires at least two arguments', 0),
        ("note", "or(vip)", 'function "or" requires at least two arguments', 0),
        ("note", "if(vip)", 'function "if" requires two or three arguments', 0),
        ("note", "if(vip, 1, 2, 3)", 'function "if" requires two or three arguments', 0),
        ("note", "eq(age)", 'function "eq" requires two arguments', 0),
        ("note", "ne(age, age, age)", 'function "ne" requires two arguments', 0),
        ("note", "coalesce()", 'function "coalesce" requires at least one argument', 0),
        ("note", "lower()", 'function "lower" requires one argument', 0),
        ("note", "len(tags, tags)", 'function "len" requires one argument', 0),
        (
            "note",
            "substring(first_name)",
            'function "substring" requires two or three arguments',
            0,
        ),
        ("blob", 'map("a")', 'function "map" requires an even number of arguments', 0),
        ("note", "and(vip, age)", "cannot convert age (type int(32)) to boolean", 9),
        ("note", "if(age, 1, 2)", "cannot convert age (type int(32)) to boolean", 3),
        ("note", 'and(vip, "maybe")', '"maybe" is not convertible to the boolean type', 9),
        ("note", "lower(tags)", "cannot convert tags (type array(string)) to string", 6),
        ("note", 'substring(first_name, "x")', '"x" is not convertible to the int(32) type', 22),
        ("note", "substring(first_name, born)", "cannot convert born (type date) to int(32)", 22),
        ("count", 'if(vip, 1, "a")', '"a" is not convertible to the int(8) type', 11),
        ("count", "coalesce(age, 1000)", "number 1000 is greater than 127", 14),
        (
            "flag",
            "eq(tags, age)",
            "cannot compare tags (type array(string)) with age (type int(32))",
            0,
        ),
        (
            "flag",
            "eq(coalesce(age, born), age)",
            "cannot compare coalesce(age, born) (type date) with age (type int(32))",
            0,
        ),
        (
            "blob",
            "json_parse(age)",
            "json_parse needs a string or json argument, but age has type int(32)",
            11,
        ),
        ("blob", "map(first_name, 1)", "map keys must be string literals", 4),
        ("blob", 'map(1, "a")', "map keys must be string literals", 4),
        ("blob", 'map("a", 1, "a", 2)', 'map key "a" is repeated', 12),
    ],
)
def test_type_errors(key: str, expression: str, message: str, position: int) -> None:
    error = compile_error(expression, key)
    assert (error.message, error.position, error.key) == (message, position, key)


# ---------------------------------------------------------------------------------------------
# Keys and the input properties expressions use
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("mapping", "message", "key"),
    [
        ({"contact..name": "first_name"}, 'property path "contact..name" is not valid', None),
        ({"": "first_name"}, 'property path "" is not valid', None),
        ({"contact.phone": "first_name"}, 'property path "contact.phone" does not exist', None),
        ({"note.x": "first_name"}, 'property path "note.x" does not exist', None),
        (
            {"contact": "address", "contact.name": "first_name"},
            'paths "contact" and "contact.name" have the same prefix',
            "contact.name",
        ),
        ({"note": 5}, "expression must be a string", "note"),
    ],
)
def test_key_errors(mapping: dict[str, Any], message: str, key: str | None) -> None:
    with pytest.raises(MappingError) as caught:
        compile_mapping(mapping, IN, OUT)
    assert caught.value.message == message
    assert caught.value.key == (key or next(iter(mapping)))
    assert caught.value.position is None


def test_output_paths_are_the_sorted_keys() -> None:
    compiled = compile_mapping({"note": '"x"', "contact.name": "first_name", "count": "1"}, IN, OUT)
    assert compiled.output_paths == ("contact.name", "count", "note")


@pytest.mark.parametrize(
    ("expressions", "used"),
    [
        (["first_name"], ("first_name",)),
        (['first_name " " last_name'], ("first_name", "last_name")),
        (["address.city", 'address["street"]'], ("address.city", "address.street")),
        (['traits["any key"]', "traits.k"], ("traits",)),
        (["people.bob.name"], ("people.name",)),
        (["extra.emails.work?"], ("extra",)),
        (["extra"], ("extra",)),
        (
            ['coalesce(lower(first_name), if(vip, "a", last_name))'],
            ("first_name", "last_name", "vip"),
        ),
        (['"constant"'], ()),
    ],
)
def test_input_paths_stop_at_maps_and_json(expressions: list[str], used: tuple[str, ...]) -> None:
    keys = ["note", "contact.name", "contact.city"]
    compiled = compile_mapping(dict(zip(keys, expressions, strict=False)), IN, OUT)
    assert compiled.input_paths == used


# ---------------------------------------------------------------------------------------------
# Robustness
# ---------------------------------------------------------------------------------------------

# Characters the grammar gives a meaning to, so that generated text reaches deep into parsing.
GRAMMAR = st.sampled_from(
    [
        *"\"'\\()[].,?-_ 0123456789eE\t\n",
        *("first_name", "address", "city", "extra", "tags", "traits", "k", "lower", "if", "eq"),
        *("coalesce", "map", "array", "substring", "json_parse", "len", "and", "not", "true"),
        *("null", "u00e9", "ud800", "1e999999999", "U0001F600", "»", "x"),
    ]
)
EXPRESSIONS = st.one_of(st.text(), st.lists(GRAMMAR, max_size=30).map("".join))
KEYS = st.sampled_from(
    ["note", "count", "ratio", "amount", "flag", "blob", "contact", "contact.name"]
)
SAMPLE = {**PROFILE, "extra": {"a": [1, {"b": None}], "n": "5", "s": "x"}}


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(key=KEYS, expression=EXPRESSIONS)
def test_compiling_arbitrary_text_raises_only_mapping_errors(key: str, expression: str) -> None:
    try:
        compiled = compile_mapping({key: expression}, IN, OUT)
    except MappingError as error:
        assert error.key == key
        assert error.position is not None and 0 <= error.position <= len(expression)
        return
    for purpose in Purpose:
        try:
            compiled.transform(SAMPLE, purpose)
        except RecordError as error:
            assert error.key == key


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.text(max_size=12) | KEYS, EXPRESSIONS, max_size=4))
def test_compiling_arbitrary_mappings_raises_only_mapping_errors(mapping: dict[str, str]) -> None:
    try:
        compiled = compile_mapping(mapping, IN, OUT)
    except MappingError as error:
        assert error.key in mapping
        return
    assert compiled.output_paths == tuple(sorted(mapping))
