"""The schema type system: parsing, canonical JSON, names and paths (semantics §1)."""

from __future__ import annotations

import contextlib
import copy
import json
import unicodedata
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sluice.model.types import (
    FLOAT32_MAX,
    FLOAT_BIT_SIZES,
    INT_BIT_SIZES,
    MAX_ELEMENTS_LIMIT,
    MAX_PRECISION,
    MAX_SCALE,
    MAX_STRING_LIMIT,
    MAX_TYPE_DEPTH,
    JsonPath,
    Kind,
    Property,
    SchemaError,
    Type,
    column_name,
    decimal_range,
    effective_range,
    int_range,
    is_meta_property,
    is_valid_property_name,
    is_valid_property_path,
    leaf_paths,
    object_type,
    parse_type,
    property_by_path,
    property_to_json,
    prune,
    type_to_json,
    walk_properties,
)

Json = Any

INT8 = {"kind": "int", "bitSize": 8}
UINT8 = {"kind": "int", "bitSize": 8, "unsigned": True}
INT32 = {"kind": "int", "bitSize": 32}
FLOAT64 = {"kind": "float", "bitSize": 64}
DECIMAL_5_2 = {"kind": "decimal", "precision": 5, "scale": 2}
STRING = {"kind": "string"}


def with_params(base: dict[str, Json], **params: Json) -> dict[str, Json]:
    return {**base, **params}


def schema_of(*properties: dict[str, Json]) -> dict[str, Json]:
    return {"kind": "object", "properties": list(properties)}


def prop(name: str, type_json: dict[str, Json], **keys: Json) -> dict[str, Json]:
    return {"name": name, "type": type_json, **keys}


def parse_error(data: Json) -> SchemaError:
    with pytest.raises(SchemaError) as caught:
        parse_type(data)
    return caught.value


def nested_arrays(depth: int) -> dict[str, Json]:
    """``depth`` types in all: arrays of arrays of ... of strings."""
    data: dict[str, Json] = {"kind": "string"}
    for _ in range(depth - 1):
        data = {"kind": "array", "elementType": data}
    return data


# ---------------------------------------------------------------------------------------------
# Parse errors: message and JSON path
# ---------------------------------------------------------------------------------------------

TYPE_ERRORS = [
    ([], "type must be a JSON object", ()),
    ("string", "type must be a JSON object", ()),
    (None, "type must be a JSON object", ()),
    ({"kind": "string", "foo": 1}, 'unknown key "foo"', ("foo",)),
    (
        {"kind": "array", "elements": STRING},
        'unknown key "elements" (maybe "elementType"?)',
        ("elements",),
    ),
    ({}, "missing 'kind' key", ()),
    ({"maxLength": 5}, "missing 'kind' key", ()),
    ({"kind": 5}, "kind must be a string", ("kind",)),
    ({"kind": "inet"}, 'kind "inet" is not valid', ("kind",)),
    ({"kind": "String"}, 'kind "String" is not valid', ("kind",)),
]

FOREIGN_PARAMETER_ERRORS = [
    (with_params(INT32, maxBytes=1), "unexpected length in bytes for non-string type", "maxBytes"),
    (
        {"kind": "boolean", "maxLength": 1},
        "unexpected length in characters for non-string type",
        "maxLength",
    ),
    (with_params(INT32, pattern="a"), "unexpected pattern for non-string type", "pattern"),
    ({"kind": "json", "values": ["a"]}, "unexpected values for non-string type", "values"),
    (
        with_params(DECIMAL_5_2, bitSize=32),
        "unexpected bit size for non-int/float type",
        "bitSize",
    ),
    (with_params(FLOAT64, unsigned=True), "unexpected unsigned for non-int type", "unsigned"),
    (with_params(INT32, real=True), "unexpected real for non-float type", "real"),
    ({"kind": "string", "minimum": 1}, "unexpected minimum for non-number type", "minimum"),
    ({"kind": "date", "maximum": 1}, "unexpected maximum for non-number type", "maximum"),
    (with_params(INT32, precision=5), "unexpected precision for non-decimal type", "precision"),
    (with_params(FLOAT64, scale=2), "unexpected scale for non-decimal type", "scale"),
    (
        {"kind": "object", "elementType": STRING, "properties": [prop("a", STRING)]},
        "unexpected element type for non-array and non-map type",
        "elementType",
    ),
    (
        {"kind": "map", "elementType": STRING, "minElements": 1},
        "unexpected minimum elements for non-array type",
        "minElements",
    ),
    (
        {"kind": "string", "maxElements": 1},
        "unexpected maximum elements for non-array type",
        "maxElements",
    ),
    (
        {"kind": "map", "elementType": STRING, "uniqueElements": True},
        "unexpected unique elements for non-array type",
        "uniqueElements",
    ),
    (
        {"kind": "array", "elementType": STRING, "properties": []},
        "unexpected properties for non-object type",
        "properties",
    ),
]

STRING_ERRORS: list[tuple[dict[str, Json], str, JsonPath]] = [
    ({"maxLength": 0}, "maxLength must be in the range [1, 4294967295]", ("maxLength",)),
    ({"maxLength": 2**32}, "maxLength must be in the range [1, 4294967295]", ("maxLength",)),
    ({"maxLength": "10"}, "maxLength must be an integer", ("maxLength",)),
    ({"maxLength": 10.0}, "maxLength must be an integer", ("maxLength",)),
    ({"maxLength": True}, "maxLength must be an integer", ("maxLength",)),
    ({"maxBytes": 0}, "maxBytes must be in the range [1, 4294967295]", ("maxBytes",)),
    ({"maxBytes": 2**32}, "maxBytes must be in the range [1, 4294967295]", ("maxBytes",)),
    ({"pattern": "a", "values": ["a"]}, "pattern and values cannot be used together", ()),
    ({"pattern": 5}, "pattern must be a string", ("pattern",)),
    ({"pattern": "a\x00"}, "pattern contains the NUL byte", ("pattern",)),
    (
        {"pattern": "("},
        "invalid pattern: missing ), unterminated subpattern at position 0",
        ("pattern",),
    ),
    ({"pattern": "a{4294967296}"}, "invalid pattern: too complex", ("pattern",)),
    ({"pattern": "(" * 5000 + ")" * 5000}, "invalid pattern: too complex", ("pattern",)),
    ({"values": "a"}, "values must be an array of strings", ("values",)),
    ({"values": []}, "invalid empty values", ("values",)),
    ({"values": ["a", 1]}, "value must be a string", ("values", 1)),
    ({"values": ["a", None]}, "value must be a string", ("values", 1)),
    ({"values": ["a", "b\x00"]}, "value contains the NUL byte", ("values", 1)),
    (
        {"values": ["\ud800"]},
        "value contains invalid UTF-8 encoded characters",
        ("values", 0),
    ),
    ({"values": ["a", "b", "a"]}, "values cannot contain repeated values", ("values",)),
    # Equal once NFC-normalised: "e" + combining acute accent, and the precomposed "é".
    ({"values": ["e\u0301", "\u00e9"]}, "values cannot contain repeated values", ("values",)),
]

INT_ERRORS = [
    ({"kind": "int"}, "missing 'bitSize' key", ()),
    (with_params(INT32, bitSize=12), "bitSize must be one of 8, 16, 24, 32, 64", ("bitSize",)),
    (with_params(INT32, bitSize=True), "bitSize must be one of 8, 16, 24, 32, 64", ("bitSize",)),
    (with_params(INT32, bitSize="32"), "bitSize must be one of 8, 16, 24, 32, 64", ("bitSize",)),
    (with_params(INT32, bitSize=32.0), "bitSize must be one of 8, 16, 24, 32, 64", ("bitSize",)),
    (with_params(INT32, unsigned="yes"), "unsigned must be a boolean", ("unsigned",)),
    (with_params(INT8, minimum=-129), "minimum -129 is out of range for int(8)", ("minimum",)),
    (with_params(INT8, maximum=128), "maximum 128 is out of range for int(8)", ("maximum",)),
    (with_params(UINT8, minimum=-1), "minimum -1 is out of range for uint(8)", ("minimum",)),
    (with_params(UINT8, maximum=256), "maximum 256 is out of range for uint(8)", ("maximum",)),
    (
        {"kind": "int", "bitSize": 24, "maximum": 2**23},
        "maximum 8388608 is out of range for int(24)",
        ("maximum",),
    ),
    (
        {"kind": "int", "bitSize": 64, "unsigned": True, "maximum": 2**64},
        "maximum 18446744073709551616 is out of range for uint(64)",
        ("maximum",),
    ),
    # Too many digits for Python to print an int: must still be a SchemaError.
    (
        {"kind": "int", "bitSize": 64, "maximum": 10**5000},
        "maximum 1.000000e+5000 is out of range for int(64)",
        ("maximum",),
    ),
    (
        with_params(INT32, maximum="1e999999999"),
        "maximum 1.000000e+999999999 is out of range for int(32)",
        ("maximum",),
    ),
    (with_params(INT32, minimum=1.5), "minimum must be an integer", ("minimum",)),
    (with_params(INT32, minimum="1.5"), "minimum must be an integer", ("minimum",)),
    (with_params(INT32, minimum="x"), "minimum must be a number", ("minimum",)),
    (with_params(INT32, minimum=True), "minimum must be a number", ("minimum",)),
    (with_params(INT32, minimum=None), "minimum must be a number", ("minimum",)),
    (with_params(INT32, minimum=[1]), "minimum must be a number", ("minimum",)),
    # Strings hold JSON numbers only: no Python-isms such as "1_000", spaces or "NaN".
    (with_params(INT32, minimum="1_000"), "minimum must be a number", ("minimum",)),
    (with_params(INT32, minimum=" 5"), "minimum must be a number", ("minimum",)),
    (with_params(INT32, minimum="NaN"), "minimum must be a number", ("minimum",)),
    (with_params(INT32, minimum=float("nan")), "minimum must be a finite number", ("minimum",)),
    (with_params(INT32, maximum=float("inf")), "maximum must be a finite number", ("maximum",)),
    (
        with_params(INT32, minimum="1e99999999999999999999999"),
        "minimum must be a finite number",
        ("minimum",),
    ),
    (
        with_params(INT32, minimum=10, maximum=5),
        "maximum cannot be less than minimum",
        ("maximum",),
    ),
]

FLOAT_ERRORS = [
    ({"kind": "float"}, "missing 'bitSize' key", ()),
    (with_params(FLOAT64, bitSize=16), "bitSize must be one of 32, 64", ("bitSize",)),
    (with_params(FLOAT64, bitSize=8), "bitSize must be one of 32, 64", ("bitSize",)),
    (with_params(FLOAT64, real=1), "real must be a boolean", ("real",)),
    (
        {"kind": "float", "bitSize": 32, "maximum": 1e39},
        "maximum 1e+39 is out of range for float(32)",
        ("maximum",),
    ),
    (
        with_params(FLOAT64, minimum="-1e400"),
        "minimum -inf is out of range for float(64)",
        ("minimum",),
    ),
    (with_params(FLOAT64, minimum=float("-inf")), "minimum must be a finite number", ("minimum",)),
    (
        with_params(FLOAT64, minimum=1.5, maximum=-1.5),
        "maximum cannot be less than minimum",
        ("maximum",),
    ),
]

DECIMAL_ERRORS = [
    ({"kind": "decimal"}, "missing precision", ()),
    ({"kind": "decimal", "scale": 2}, "missing precision", ()),
    (
        with_params(DECIMAL_5_2, precision=0),
        "precision must be in the range [1, 76]",
        ("precision",),
    ),
    (
        with_params(DECIMAL_5_2, precision=77),
        "precision must be in the range [1, 76]",
        ("precision",),
    ),
    (with_params(DECIMAL_5_2, precision="5"), "precision must be an integer", ("precision",)),
    (
        {"kind": "decimal", "precision": 76, "scale": 38},
        "scale must be in the range [0, 37]",
        ("scale",),
    ),
    (with_params(DECIMAL_5_2, scale=-1), "scale must be in the range [0, 37]", ("scale",)),
    # The API's own typo ("tha"), kept: the message is part of the contract.
    (
        {"kind": "decimal", "precision": 5, "scale": 6},
        "scale cannot be greater tha precision",
        ("scale",),
    ),
    (
        with_params(DECIMAL_5_2, maximum=1000),
        "maximum 1000 is out of range for decimal(5,2)",
        ("maximum",),
    ),
    (
        with_params(DECIMAL_5_2, minimum=-1000.5),
        "minimum -1000.5 is out of range for decimal(5,2)",
        ("minimum",),
    ),
    (
        with_params(DECIMAL_5_2, maximum=1.234),
        "maximum has more than 2 decimal digits",
        ("maximum",),
    ),
    (
        {"kind": "decimal", "precision": 5, "minimum": "0.5"},
        "minimum has more than 0 decimal digits",
        ("minimum",),
    ),
    # Wider than the default 28-digit decimal context: the bound must still be exact.
    (
        {"kind": "decimal", "precision": 30, "maximum": 10**30},
        "maximum 1000000000000000000000000000000 is out of range for decimal(30,0)",
        ("maximum",),
    ),
    (
        {"kind": "decimal", "precision": 76, "scale": 37, "maximum": "1e39"},
        "maximum 1000000000000000000000000000000000000000 is out of range for decimal(76,37)",
        ("maximum",),
    ),
    (
        with_params(DECIMAL_5_2, minimum=1, maximum=0.5),
        "maximum cannot be less than minimum",
        ("maximum",),
    ),
]

ARRAY_AND_MAP_ERRORS = [
    ({"kind": "array"}, "missing element type", ()),
    ({"kind": "array", "elementType": None}, "missing element type", ()),
    ({"kind": "map"}, "missing element type", ()),
    ({"kind": "array", "elementType": "string"}, "type must be a JSON object", ("elementType",)),
    ({"kind": "map", "elementType": {"kind": "int"}}, "missing 'bitSize' key", ("elementType",)),
    (
        {"kind": "array", "elementType": STRING, "minElements": -1},
        "minElements must be in the range [0, 2147483647]",
        ("minElements",),
    ),
    (
        {"kind": "array", "elementType": STRING, "maxElements": 2**31},
        "maxElements must be in the range [0, 2147483647]",
        ("maxElements",),
    ),
    (
        {"kind": "array", "elementType": STRING, "maxElements": 1.0},
        "maxElements must be an integer",
        ("maxElements",),
    ),
    (
        {"kind": "array", "elementType": STRING, "minElements": 3, "maxElements": 2},
        "maxElements cannot be less than minElements",
        ("maxElements",),
    ),
    (
        {"kind": "array", "elementType": STRING, "uniqueElements": "true"},
        "uniqueElements must be a boolean",
        ("uniqueElements",),
    ),
    *[
        (
            {"kind": "array", "elementType": element, "uniqueElements": True},
            f"uniqueElements cannot be used with elements of type {element['kind']}",
            ("uniqueElements",),
        )
        for element in (
            {"kind": "json"},
            {"kind": "array", "elementType": STRING},
            {"kind": "map", "elementType": STRING},
            schema_of(prop("a", STRING)),
        )
    ],
]

OBJECT_ERRORS = [
    ({"kind": "object"}, "missing object properties", ()),
    ({"kind": "object", "properties": None}, "missing object properties", ()),
    ({"kind": "object", "properties": {}}, "properties must be an array", ("properties",)),
    ({"kind": "object", "properties": []}, "invalid empty properties", ("properties",)),
    (
        {"kind": "object", "properties": ["email"]},
        "property must be a JSON object",
        ("properties", 0),
    ),
    (
        schema_of(prop("a", STRING, placeholder="x")),
        "unknown property 'placeholder'",
        ("properties", 0, "placeholder"),
    ),
    (
        schema_of(prop("a", STRING, required=True)),
        "unknown property 'required'",
        ("properties", 0, "required"),
    ),
    (schema_of({"type": STRING}), "missing property name", ("properties", 0)),
    (
        schema_of({"name": 5, "type": STRING}),
        "property name must be a string",
        ("properties", 0, "name"),
    ),
    (schema_of(prop("1a", STRING)), 'property name "1a" is not valid', ("properties", 0, "name")),
    (schema_of(prop("", STRING)), 'property name "" is not valid', ("properties", 0, "name")),
    (schema_of(prop("a.b", STRING)), 'property name "a.b" is not valid', ("properties", 0, "name")),
    (
        schema_of(prop("a\x00", STRING)),
        "property name contains the NUL byte",
        ("properties", 0, "name"),
    ),
    (schema_of({"name": "a"}), "missing property type", ("properties", 0)),
    (schema_of({"name": "a", "type": None}), "missing property type", ("properties", 0)),
    (
        schema_of(prop("a", {"kind": "int"})),
        "missing 'bitSize' key",
        ("properties", 0, "type"),
    ),
    (
        schema_of(prop("a", STRING), prop("b", STRING), prop("a", INT32)),
        'repeated property name "a"',
        ("properties", 2, "name"),
    ),
    (
        schema_of(prop("a", STRING, nullable="true")),
        "nullable must be a boolean",
        ("properties", 0, "nullable"),
    ),
    (
        schema_of(prop("a", STRING, createRequired=1)),
        "createRequired must be a boolean",
        ("properties", 0, "createRequired"),
    ),
    (
        schema_of(prop("a", STRING, updateRequired=None)),
        "updateRequired must be a boolean",
        ("properties", 0, "updateRequired"),
    ),
    (
        schema_of(prop("a", STRING, readOptional="no")),
        "readOptional must be a boolean",
        ("properties", 0, "readOptional"),
    ),
    (
        schema_of(prop("a", STRING, description=None)),
        "description must be a string",
        ("properties", 0, "description"),
    ),
    (
        schema_of(prop("a", STRING, description="a\x00b")),
        "description contains the NUL byte",
        ("properties", 0, "description"),
    ),
    (
        schema_of(prop("a", STRING, description="\udfff")),
        "description contains invalid UTF-8 encoded characters",
        ("properties", 0, "description"),
    ),
    (
        schema_of(prop("a", STRING, prefilled=3)),
        "prefilled must be a string",
        ("properties", 0, "prefilled"),
    ),
    (
        schema_of(prop("a", schema_of(prop("b", STRING), prop("c", {"kind": "array"})))),
        "missing element type",
        ("properties", 0, "type", "properties", 1, "type"),
    ),
    (
        schema_of(prop("a", {"kind": "map", "elementType": schema_of(prop("b", {"kind": "x"}))})),
        'kind "x" is not valid',
        ("properties", 0, "type", "elementType", "properties", 0, "type", "kind"),
    ),
]


@pytest.mark.parametrize(
    ("data", "message", "path"),
    TYPE_ERRORS
    + [(data, message, (key,)) for data, message, key in FOREIGN_PARAMETER_ERRORS]
    + [({"kind": "string", **data}, message, path) for data, message, path in STRING_ERRORS]
    + INT_ERRORS
    + FLOAT_ERRORS
    + DECIMAL_ERRORS
    + ARRAY_AND_MAP_ERRORS
    + OBJECT_ERRORS,
)
def test_parse_error_message_and_path(data: Json, message: str, path: JsonPath) -> None:
    error = parse_error(data)
    assert (error.message, error.path) == (message, path)
    assert str(error) == message
    assert isinstance(error, ValueError)


@pytest.mark.parametrize("depth", [MAX_TYPE_DEPTH + 2, 5_000])
def test_absurd_nesting_is_a_schema_error_not_a_recursion_error(depth: int) -> None:
    error = parse_error(nested_arrays(depth))
    assert error.message == f"types cannot be nested more than {MAX_TYPE_DEPTH} levels deep"
    assert error.path == ("elementType",) * (MAX_TYPE_DEPTH + 1)


def test_nesting_up_to_the_limit_is_accepted() -> None:
    deepest = parse_type(nested_arrays(MAX_TYPE_DEPTH + 1))
    assert str(deepest).count("array(") == MAX_TYPE_DEPTH


def test_object_nesting_counts_as_depth_too() -> None:
    data: dict[str, Json] = STRING
    for _ in range(MAX_TYPE_DEPTH + 1):
        data = schema_of(prop("a", data))
    assert parse_error(data).message.startswith("types cannot be nested")


# ---------------------------------------------------------------------------------------------
# Accepted forms and ranges of every kind's parameters
# ---------------------------------------------------------------------------------------------

ACCEPTED = [
    # (input, the Type it parses to)
    *[
        ({"kind": kind}, Type(Kind(kind)))
        for kind in ("boolean", "datetime", "date", "time", "year", "uuid", "json", "ip")
    ],
    (STRING, Type(Kind.STRING)),
    ({"kind": "string", "maxLength": 1}, Type(Kind.STRING, max_length=1)),
    ({"kind": "string", "maxLength": MAX_STRING_LIMIT}, Type(Kind.STRING, max_length=2**32 - 1)),
    ({"kind": "string", "maxBytes": 1}, Type(Kind.STRING, max_bytes=1)),
    ({"kind": "string", "maxBytes": MAX_STRING_LIMIT}, Type(Kind.STRING, max_bytes=2**32 - 1)),
    ({"kind": "string", "pattern": "^[a-z]+$"}, Type(Kind.STRING, pattern="^[a-z]+$")),
    ({"kind": "string", "pattern": ""}, Type(Kind.STRING, pattern="")),
    # The empty string is a legal enum value.
    ({"kind": "string", "values": ["", "a"]}, Type(Kind.STRING, values=("", "a"))),
    # The JSON parser, like the API's, accepts values together with lengths.
    (
        {"kind": "string", "values": ["a"], "maxLength": 3},
        Type(Kind.STRING, values=("a",), max_length=3),
    ),
    *[({"kind": "int", "bitSize": size}, Type(Kind.INT, bit_size=size)) for size in INT_BIT_SIZES],
    (UINT8, Type(Kind.INT, bit_size=8, unsigned=True)),
    (with_params(INT8, unsigned=False), Type(Kind.INT, bit_size=8)),
    # Bounds equal to the bit size's range are the defaults, dropped.
    (with_params(INT8, minimum=-128, maximum=127), Type(Kind.INT, bit_size=8)),
    (
        {"kind": "int", "bitSize": 64, "unsigned": True, "minimum": 0, "maximum": 2**64 - 1},
        Type(Kind.INT, bit_size=64, unsigned=True),
    ),
    (
        {"kind": "int", "bitSize": 24, "minimum": -(2**23), "maximum": 2**23 - 1},
        Type(Kind.INT, bit_size=24),
    ),
    (with_params(INT8, minimum=-127), Type(Kind.INT, bit_size=8, minimum=-127)),
    (with_params(INT8, minimum=5, maximum=5), Type(Kind.INT, bit_size=8, minimum=5, maximum=5)),
    (with_params(INT8, minimum=5.0), Type(Kind.INT, bit_size=8, minimum=5)),
    (with_params(INT8, minimum="5"), Type(Kind.INT, bit_size=8, minimum=5)),
    (with_params(INT8, maximum="1e2"), Type(Kind.INT, bit_size=8, maximum=100)),
    *[
        ({"kind": "float", "bitSize": size}, Type(Kind.FLOAT, bit_size=size))
        for size in FLOAT_BIT_SIZES
    ],
    (with_params(FLOAT64, real=True), Type(Kind.FLOAT, bit_size=64, real=True)),
    (
        with_params(FLOAT64, minimum=-1.5, maximum=2),
        Type(Kind.FLOAT, bit_size=64, minimum=-1.5, maximum=2.0),
    ),
    (
        {"kind": "float", "bitSize": 32, "minimum": -FLOAT32_MAX},
        Type(Kind.FLOAT, bit_size=32),
    ),
    ({"kind": "decimal", "precision": 1}, Type(Kind.DECIMAL, precision=1)),
    (
        {"kind": "decimal", "precision": MAX_PRECISION, "scale": MAX_SCALE},
        Type(Kind.DECIMAL, precision=76, scale=37),
    ),
    ({"kind": "decimal", "precision": 3, "scale": 0}, Type(Kind.DECIMAL, precision=3)),
    ({"kind": "decimal", "precision": 2, "scale": 2}, Type(Kind.DECIMAL, precision=2, scale=2)),
    (
        with_params(DECIMAL_5_2, minimum=-999.99, maximum="999.99"),
        Type(Kind.DECIMAL, precision=5, scale=2),
    ),
    (
        with_params(DECIMAL_5_2, minimum=0, maximum="12.50"),
        Type(Kind.DECIMAL, precision=5, scale=2, minimum=Decimal(0), maximum=Decimal("12.5")),
    ),
    # Trailing zeros are not decimal digits: 1.0 fits a scale of 0.
    (
        {"kind": "decimal", "precision": 5, "minimum": 1.0},
        Type(Kind.DECIMAL, precision=5, minimum=Decimal(1)),
    ),
    (
        {"kind": "decimal", "precision": 76, "maximum": 10**76 - 1},
        Type(Kind.DECIMAL, precision=76),
    ),
    (
        {"kind": "array", "elementType": STRING},
        Type(Kind.ARRAY, element_type=Type(Kind.STRING)),
    ),
    (
        {"kind": "array", "elementType": STRING, "minElements": 0, "maxElements": 0},
        Type(Kind.ARRAY, element_type=Type(Kind.STRING), max_elements=0),
    ),
    (
        {
            "kind": "array",
            "elementType": INT8,
            "minElements": 1,
            "maxElements": MAX_ELEMENTS_LIMIT,
            "uniqueElements": True,
        },
        Type(
            Kind.ARRAY,
            element_type=Type(Kind.INT, bit_size=8),
            min_elements=1,
            max_elements=2**31 - 1,
            unique_elements=True,
        ),
    ),
    (
        {"kind": "map", "elementType": {"kind": "json"}},
        Type(Kind.MAP, element_type=Type(Kind.JSON)),
    ),
    (
        schema_of(prop("a", STRING, nullable=True, readOptional=False, prefilled="x")),
        object_type(Property("a", Type(Kind.STRING), nullable=True, prefilled="x")),
    ),
]


@pytest.mark.parametrize(("data", "expected"), ACCEPTED)
def test_accepted_forms(data: Json, expected: Type) -> None:
    assert parse_type(data) == expected


@pytest.mark.parametrize(
    "element",
    [
        STRING,
        {"kind": "boolean"},
        INT8,
        FLOAT64,
        DECIMAL_5_2,
        *({"kind": kind} for kind in ("datetime", "date", "time", "year", "uuid", "ip")),
    ],
)
def test_unique_elements_allowed_for_scalar_elements(element: Json) -> None:
    assert parse_type(
        {"kind": "array", "elementType": element, "uniqueElements": True}
    ).unique_elements


def test_names_and_descriptions_are_nfc_normalised() -> None:
    decomposed = "Cafe\u0301"  # "e" + combining acute accent
    data = schema_of(
        # KELVIN SIGN normalises to the ASCII letter K, which makes the name valid.
        prop("\u212aelvin", {"kind": "string", "values": [decomposed]}, description=decomposed),
    )
    (parsed,) = parse_type(data).properties
    assert parsed.name == "Kelvin"
    assert parsed.description == "Caf\u00e9" == unicodedata.normalize("NFC", decomposed)
    assert parsed.type.values == ("Caf\u00e9",)


def test_property_defaults() -> None:
    (parsed,) = parse_type(schema_of(prop("a", STRING))).properties
    assert parsed == Property("a", Type(Kind.STRING))
    assert not (parsed.nullable or parsed.read_optional or parsed.create_required)
    assert (parsed.prefilled, parsed.description) == ("", "")


# ---------------------------------------------------------------------------------------------
# Canonical JSON
# ---------------------------------------------------------------------------------------------

PROPERTY_KEY_ORDER = [
    "name",
    "prefilled",
    "type",
    "createRequired",
    "updateRequired",
    "readOptional",
    "nullable",
    "description",
]


def test_property_json_key_order_with_every_key() -> None:
    # Keys given in reverse order come out in the documented one.
    data = {
        "description": "d",
        "nullable": True,
        "readOptional": True,
        "updateRequired": True,
        "createRequired": True,
        "type": STRING,
        "prefilled": "p",
        "name": "a",
    }
    (parsed,) = parse_type(schema_of(data)).properties
    assert list(property_to_json(parsed)) == PROPERTY_KEY_ORDER


def test_property_json_keeps_description_and_drops_false_flags() -> None:
    data = prop("a", STRING, nullable=False, createRequired=False, prefilled="")
    (parsed,) = parse_type(schema_of(data)).properties
    assert json.dumps(property_to_json(parsed)) == json.dumps(
        {"name": "a", "type": {"kind": "string"}, "description": ""}
    )


@pytest.mark.parametrize(
    ("data", "canonical"),
    [
        (with_params(INT8, unsigned=False, minimum=-128, maximum=127), INT8),
        (with_params(UINT8, maximum=100), with_params(UINT8, maximum=100)),
        (
            {"maximum": 5, "minimum": 1, "bitSize": 32, "kind": "int"},
            {"kind": "int", "bitSize": 32, "minimum": 1, "maximum": 5},
        ),
        (with_params(FLOAT64, real=False), FLOAT64),
        (
            {"kind": "float", "bitSize": 32, "real": True, "maximum": 1.5},
            {"kind": "float", "bitSize": 32, "real": True, "maximum": 1.5},
        ),
        ({"kind": "decimal", "precision": 5, "scale": 0}, {"kind": "decimal", "precision": 5}),
        (
            with_params(DECIMAL_5_2, minimum="-999.99", maximum="12.50"),
            with_params(DECIMAL_5_2, maximum=12.5),
        ),
        # A decimal a float cannot hold exactly is emitted as a string, so no digit is lost.
        (
            {"kind": "decimal", "precision": 30, "scale": 20, "maximum": "0.12345678901234567891"},
            {"kind": "decimal", "precision": 30, "scale": 20, "maximum": "0.12345678901234567891"},
        ),
        (
            {"kind": "decimal", "precision": 30, "maximum": 10**29},
            {"kind": "decimal", "precision": 30, "maximum": 10**29},
        ),
        (
            {"values": ["b", "a"], "maxBytes": 9, "maxLength": 3, "kind": "string"},
            {"kind": "string", "maxLength": 3, "maxBytes": 9, "values": ["b", "a"]},
        ),
        (
            {"kind": "array", "uniqueElements": False, "minElements": 0, "elementType": STRING},
            {"kind": "array", "elementType": STRING},
        ),
        (
            {
                "uniqueElements": True,
                "maxElements": 9,
                "minElements": 1,
                "elementType": STRING,
                "kind": "array",
            },
            {
                "kind": "array",
                "elementType": STRING,
                "minElements": 1,
                "maxElements": 9,
                "uniqueElements": True,
            },
        ),
    ],
)
def test_canonical_type_json(data: Json, canonical: Json) -> None:
    assert json.dumps(type_to_json(parse_type(data))) == json.dumps(canonical)


SEED_IN_SCHEMA = """{
  "kind": "object",
  "properties": [
    {"name": "first_name", "type": {"kind": "string", "maxLength": 100},
     "readOptional": true, "description": "First name"},
    {"name": "last_name", "type": {"kind": "string", "maxLength": 100},
     "readOptional": true, "description": "Last name"},
    {"name": "email", "type": {"kind": "string", "maxLength": 254},
     "readOptional": true, "description": "Email"},
    {"name": "address", "type": {"kind": "object", "properties": [
        {"name": "country", "type": {"kind": "string", "maxLength": 2},
         "readOptional": true, "description": "Country"}
      ]},
     "readOptional": true, "description": "Address"}
  ]
}"""

SEED_OUT_SCHEMA = """{
  "kind": "object",
  "properties": [
    {"name": "contact", "type": {"kind": "object", "properties": [
        {"name": "email", "type": {"kind": "string"}, "nullable": true, "description": "Email"},
        {"name": "firstname", "type": {"kind": "string"}, "nullable": true,
         "description": "First Name"},
        {"name": "lastname", "type": {"kind": "string"}, "nullable": true,
         "description": "Last Name"}
      ]}}
  ]
}"""


def test_seed_in_schema_round_trips_exactly() -> None:
    seed = json.loads(SEED_IN_SCHEMA)
    assert json.dumps(type_to_json(parse_type(seed))) == json.dumps(seed)


def test_seed_out_schema_round_trips_with_the_always_emitted_description() -> None:
    # The seed's example omits "contact"'s description; the API always emits it (as "").
    seed = json.loads(SEED_OUT_SCHEMA)
    expected = copy.deepcopy(seed)
    expected["properties"][0]["description"] = ""
    canonical = type_to_json(parse_type(seed))
    assert json.dumps(canonical) == json.dumps(expected)
    assert json.dumps(type_to_json(parse_type(canonical))) == json.dumps(expected)


# ---------------------------------------------------------------------------------------------
# Canonical string form
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "text"),
    [
        (INT32, "int(32)"),
        (UINT8, "uint(8)"),
        ({"kind": "int", "bitSize": 24}, "int(24)"),
        (FLOAT64, "float(64)"),
        ({"kind": "float", "bitSize": 32}, "float(32)"),
        ({"kind": "decimal", "precision": 10, "scale": 2}, "decimal(10,2)"),
        ({"kind": "decimal", "precision": 10}, "decimal(10,0)"),
        ({"kind": "array", "elementType": STRING}, "array(string)"),
        (
            {"kind": "array", "elementType": {"kind": "array", "elementType": INT8}},
            "array(array(int(8)))",
        ),
        ({"kind": "map", "elementType": {"kind": "json"}}, "map(json)"),
        (schema_of(prop("a", STRING)), "object"),
        ({"kind": "string", "maxLength": 5}, "string"),
        ({"kind": "ip"}, "ip"),
    ],
)
def test_type_string_form(data: Json, text: str) -> None:
    assert str(parse_type(data)) == text


# ---------------------------------------------------------------------------------------------
# Names, paths and schema helpers
# ---------------------------------------------------------------------------------------------

PROFILE = parse_type(
    schema_of(
        prop("email", STRING),
        prop(
            "address",
            schema_of(
                prop("country", STRING),
                prop("geo", schema_of(prop("lat", FLOAT64), prop("lon", FLOAT64))),
            ),
        ),
        prop("tags", {"kind": "array", "elementType": schema_of(prop("x", STRING))}),
        prop("_kpid", STRING),
    )
)


@pytest.mark.parametrize(
    ("name", "valid"),
    [
        ("a", True),
        ("_", True),
        ("_kpid", True),
        ("A1_b2", True),
        ("x" * 1000, True),
        ("", False),
        ("1a", False),
        ("a-b", False),
        ("a.b", False),
        ("a b", False),
        ("caf\u00e9", False),
        ("a\n", False),
    ],
)
def test_is_valid_property_name(name: str, valid: bool) -> None:
    assert is_valid_property_name(name) is valid


@pytest.mark.parametrize(
    ("path", "valid"),
    [
        ("a", True),
        ("a.b", True),
        ("a._b.c1", True),
        ("", False),
        ("a.", False),
        (".a", False),
        ("a..b", False),
        ("a.1b", False),
        ("a[].b", False),
    ],
)
def test_is_valid_property_path(path: str, valid: bool) -> None:
    assert is_valid_property_path(path) is valid


@pytest.mark.parametrize(
    ("name", "meta"), [("_kpid", True), ("_", True), ("kpid", False), ("a_", False)]
)
def test_is_meta_property(name: str, meta: bool) -> None:
    assert is_meta_property(name) is meta


@pytest.mark.parametrize(
    ("path", "column"),
    [("email", "email"), ("address.country", "address_country"), ("a.b.c", "a_b_c")],
)
def test_column_name(path: str, column: str) -> None:
    assert column_name(path) == column


@pytest.mark.parametrize(
    ("path", "name", "kind"),
    [
        ("email", "email", Kind.STRING),
        ("address", "address", Kind.OBJECT),
        ("address.geo.lat", "lat", Kind.FLOAT),
        ("tags", "tags", Kind.ARRAY),
    ],
)
def test_property_by_path(path: str, name: str, kind: Kind) -> None:
    found = property_by_path(PROFILE, path)
    assert (found.name, found.type.kind) == (name, kind)


# Only objects are walked: not arrays (tags.x), not scalars (email.x).
@pytest.mark.parametrize(
    "path", ["nope", "address.zip", "address.geo.alt", "tags.x", "email.x", ""]
)
def test_property_by_path_missing(path: str) -> None:
    with pytest.raises(KeyError) as caught:
        property_by_path(PROFILE, path)
    assert caught.value.args[0] == f'property path "{path}" does not exist'


def test_walk_properties_parents_first_in_schema_order() -> None:
    assert [path for path, _ in walk_properties(PROFILE)] == [
        "email",
        "address",
        "address.country",
        "address.geo",
        "address.geo.lat",
        "address.geo.lon",
        "tags",
        "_kpid",
    ]


def test_leaf_paths() -> None:
    assert leaf_paths(PROFILE) == [
        "email",
        "address.country",
        "address.geo.lat",
        "address.geo.lon",
        "tags",
        "_kpid",
    ]


@pytest.mark.parametrize(
    ("keep", "paths"),
    [
        (["email"], ["email"]),
        (["address.geo.lat", "email"], ["email", "address", "address.geo", "address.geo.lat"]),
        (
            ["address"],
            ["address", "address.country", "address.geo", "address.geo.lat", "address.geo.lon"],
        ),
        (
            ["address", "address.country"],
            ["address", "address.country", "address.geo", "address.geo.lat", "address.geo.lon"],
        ),
        (["tags.x"], []),
        (["nope", "email.x"], []),
        # An object none of whose properties is kept disappears rather than becoming invalid.
        (["address.zip", "address.geo.alt"], []),
    ],
)
def test_prune(keep: list[str], paths: list[str]) -> None:
    pruned = prune(PROFILE, keep)
    assert [path for path, _ in walk_properties(pruned)] == paths
    for path in paths:
        assert property_by_path(pruned, path).name == property_by_path(PROFILE, path).name


def test_prune_keeps_a_valid_schema() -> None:
    pruned = prune(PROFILE, ["address.geo.lon"])
    assert parse_type(type_to_json(pruned)) == pruned


@pytest.mark.parametrize(
    ("data", "low", "high"),
    [
        (INT8, -128, 127),
        (UINT8, 0, 255),
        ({"kind": "int", "bitSize": 64}, -(2**63), 2**63 - 1),
        (with_params(INT32, minimum=-5), -5, 2**31 - 1),
        ({"kind": "float", "bitSize": 32}, -FLOAT32_MAX, FLOAT32_MAX),
        (DECIMAL_5_2, Decimal("-999.99"), Decimal("999.99")),
        (with_params(DECIMAL_5_2, maximum=10), Decimal("-999.99"), Decimal(10)),
        ({"kind": "decimal", "precision": 76}, -(10**76 - 1), 10**76 - 1),
        (
            {"kind": "decimal", "precision": 76, "scale": 37},
            Decimal("-" + "9" * 39 + "." + "9" * 37),  # not -Decimal(...): that rounds
            Decimal("9" * 39 + "." + "9" * 37),
        ),
    ],
)
def test_effective_range(data: Json, low: Any, high: Any) -> None:
    assert effective_range(parse_type(data)) == (low, high)


def test_ranges_are_exact() -> None:
    assert int_range(24, False) == (-(2**23), 2**23 - 1)
    assert decimal_range(30, 0) == (Decimal(-(10**30 - 1)), Decimal(10**30 - 1))
    assert decimal_range(2, 2) == (Decimal("-0.99"), Decimal("0.99"))


# ---------------------------------------------------------------------------------------------
# Property-based: valid types are a fixed point, anything else is a SchemaError
# ---------------------------------------------------------------------------------------------

PROPERTY_NAMES = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,6}", fullmatch=True)
CLEAN_TEXT = st.text(
    st.characters(exclude_categories=["Cs"], exclude_characters="\x00"), max_size=8
)
PATTERNS = st.sampled_from(["", "^[a-z]+$", r"\d{3}-\d{4}", "a|b|c", "(?i)x+", "^.{0,5}$"])
SCALAR_KINDS = ("boolean", "datetime", "date", "time", "year", "uuid", "json", "ip")


def maybe(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.none() | strategy


@st.composite
def ordered_pair(draw: st.DrawFn, values: st.SearchStrategy[Any]) -> tuple[Any, Any]:
    """Two optional values, the second not below the first when both are drawn."""
    low, high = draw(maybe(values)), draw(maybe(values))
    if low is not None and high is not None and high < low:
        low, high = high, low
    return low, high


def put_optional(out: dict[str, Json], **params: Json) -> dict[str, Json]:
    out.update({key: value for key, value in params.items() if value is not None})
    return out


@st.composite
def int_type_json(draw: st.DrawFn) -> dict[str, Json]:
    bit_size = draw(st.sampled_from(INT_BIT_SIZES))
    unsigned = draw(st.booleans())
    low, high = int_range(bit_size, unsigned)
    minimum, maximum = draw(ordered_pair(st.integers(low, high)))
    # unsigned=false is written out sometimes, as users may.
    signedness = unsigned if unsigned or draw(st.booleans()) else None
    out = {"kind": "int", "bitSize": bit_size}
    return put_optional(out, unsigned=signedness, minimum=minimum, maximum=maximum)


@st.composite
def float_type_json(draw: st.DrawFn) -> dict[str, Json]:
    bit_size = draw(st.sampled_from(FLOAT_BIT_SIZES))
    limit = FLOAT32_MAX if bit_size == 32 else None
    numbers = st.floats(
        min_value=-limit if limit else None,
        max_value=limit,
        allow_nan=False,
        allow_infinity=False,
    )
    minimum, maximum = draw(ordered_pair(numbers))
    out = {"kind": "float", "bitSize": bit_size}
    return put_optional(out, real=draw(maybe(st.booleans())), minimum=minimum, maximum=maximum)


def decimal_as_json(value: Decimal, as_text: bool) -> Json:
    """A decimal bound written the ways a user may: a JSON number, or a string of one."""
    if as_text:
        return format(value, "f")
    if value == value.to_integral_value():
        return int(value)
    as_float = float(value)
    return as_float if Decimal(repr(as_float)) == value else format(value, "f")


@st.composite
def decimal_type_json(draw: st.DrawFn) -> dict[str, Json]:
    precision = draw(st.integers(1, MAX_PRECISION))
    scale = draw(st.integers(0, min(precision, MAX_SCALE)))
    low, high = decimal_range(precision, scale)
    numbers = st.decimals(min_value=low, max_value=high, places=scale)
    minimum, maximum = draw(ordered_pair(numbers))
    out: dict[str, Json] = {"kind": "decimal", "precision": precision}
    if scale or draw(st.booleans()):
        out["scale"] = scale
    for key, value in (("minimum", minimum), ("maximum", maximum)):
        if value is not None:
            out[key] = decimal_as_json(value, draw(st.booleans()))
    return out


@st.composite
def string_type_json(draw: st.DrawFn) -> dict[str, Json]:
    lengths = st.integers(1, MAX_STRING_LIMIT)
    out: dict[str, Json] = {"kind": "string"}
    put_optional(out, maxLength=draw(maybe(lengths)), maxBytes=draw(maybe(lengths)))
    restriction = draw(st.sampled_from(["none", "pattern", "values"]))
    if restriction == "pattern":
        out["pattern"] = draw(PATTERNS)
    elif restriction == "values":
        distinct = st.lists(
            CLEAN_TEXT, min_size=1, max_size=4, unique_by=lambda v: unicodedata.normalize("NFC", v)
        )
        out["values"] = draw(distinct)
    return out


SCALAR_TYPE_JSON = (
    st.sampled_from(SCALAR_KINDS).map(lambda kind: {"kind": kind})
    | string_type_json()
    | int_type_json()
    | float_type_json()
    | decimal_type_json()
)


@st.composite
def array_type_json(draw: st.DrawFn, elements: st.SearchStrategy[Json]) -> dict[str, Json]:
    element = draw(elements)
    counts = st.integers(0, MAX_ELEMENTS_LIMIT)
    min_elements, max_elements = draw(ordered_pair(counts))
    out = {"kind": "array", "elementType": element}
    put_optional(out, minElements=min_elements, maxElements=max_elements)
    if element["kind"] not in ("json", "array", "object", "map"):
        put_optional(out, uniqueElements=draw(maybe(st.booleans())))
    return out


@st.composite
def property_json(draw: st.DrawFn, types: st.SearchStrategy[Json]) -> dict[str, Json]:
    out: dict[str, Json] = {"name": draw(PROPERTY_NAMES), "type": draw(types)}
    flags = ("createRequired", "updateRequired", "readOptional", "nullable")
    put_optional(out, prefilled=draw(maybe(CLEAN_TEXT)))
    put_optional(out, **{flag: draw(maybe(st.booleans())) for flag in flags})
    return put_optional(out, description=draw(maybe(CLEAN_TEXT)))


def object_type_json(types: st.SearchStrategy[Json]) -> st.SearchStrategy[Json]:
    properties = st.lists(
        property_json(types), min_size=1, max_size=4, unique_by=lambda p: p["name"]
    )
    return properties.map(lambda props: {"kind": "object", "properties": props})


VALID_TYPE_JSON = st.recursive(
    SCALAR_TYPE_JSON,
    lambda children: (
        array_type_json(children)
        | children.map(lambda element: {"kind": "map", "elementType": element})
        | object_type_json(children)
    ),
    max_leaves=12,
)


@settings(max_examples=300, deadline=None)
@given(VALID_TYPE_JSON)
def test_canonical_json_is_a_fixed_point(data: Json) -> None:
    parsed = parse_type(data)
    canonical = type_to_json(parsed)
    assert parse_type(canonical) == parsed
    assert json.dumps(type_to_json(parse_type(canonical))) == json.dumps(canonical)
    # ...and it survives real JSON text, as it is stored and sent.
    assert parse_type(json.loads(json.dumps(canonical))) == parsed


TYPE_KEYS = (
    *("kind", "maxLength", "maxBytes", "pattern", "values", "bitSize", "unsigned", "real"),
    *("minimum", "maximum", "precision", "scale", "elementType", "minElements", "maxElements"),
    *("uniqueElements", "properties", "elements"),
)
PROPERTY_KEYS = (*PROPERTY_KEY_ORDER, "placeholder")
KIND_NAMES = tuple(str(kind) for kind in Kind)

# Values chosen to reach the parser's corners: edge numbers, number-like strings, bad text.
EDGE_NUMBERS = (0, 1, -1, 8, 24, 32, 64, 76, 37, 2**31, 2**32, 2**64, 0.5, 1.0, -0.0, 1e39, 1e308)
NON_FINITE = (float("nan"), float("inf"), float("-inf"))
NUMBER_LIKE_TEXT = ("", "-0", "0.001", "NaN", "1_0", "1e999999999", "1e99999999999999999999999")
BAD_TEXT = ("\x00", "\ud800", "e\u0301", "a{99999999999}", "(", "[a-", "(" * 3000)
TRICKY_VALUES = (*EDGE_NUMBERS, *NON_FINITE, *NUMBER_LIKE_TEXT, *BAD_TEXT, *KIND_NAMES, *TYPE_KEYS)
# Built lazily: hypothesis prints its strategies, and Python refuses to print ints this long.
HUGE_INTS = st.sampled_from([5000, -5000]).map(lambda n: 10 ** abs(n) * (1 if n > 0 else -1))
TRICKY_LEAVES = st.sampled_from(TRICKY_VALUES) | HUGE_INTS
JSON_LEAVES = (
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=6) | TRICKY_LEAVES
)


def json_like(leaves: st.SearchStrategy[Json]) -> st.SearchStrategy[Json]:
    keys = st.sampled_from(TYPE_KEYS + PROPERTY_KEYS) | st.text(max_size=4)
    return st.recursive(
        leaves,
        lambda children: (
            st.lists(children, max_size=4) | st.dictionaries(keys, children, max_size=5)
        ),
        max_leaves=20,
    )


def type_like(values: st.SearchStrategy[Json]) -> st.SearchStrategy[Json]:
    """Dicts shaped like types and properties whose every value may be wrong."""

    def extend(children: st.SearchStrategy[Json]) -> st.SearchStrategy[Json]:
        properties = st.fixed_dictionaries(
            {}, optional={key: values for key in PROPERTY_KEYS} | {"type": children}
        )
        type_keys = {key: values for key in TYPE_KEYS if key != "kind"}
        return st.fixed_dictionaries(
            {"kind": st.sampled_from(KIND_NAMES) | values},
            optional=type_keys
            | {"elementType": children, "properties": st.lists(properties, max_size=3)},
        )

    return st.recursive(values, extend, max_leaves=15)


@settings(max_examples=500, deadline=None)
@given(json_like(JSON_LEAVES) | type_like(json_like(JSON_LEAVES)))
def test_arbitrary_json_only_ever_raises_schema_error(data: Json) -> None:
    with contextlib.suppress(SchemaError):
        parse_type(data)


@st.composite
def mutated_valid_type_json(draw: st.DrawFn) -> Json:
    """A valid type with one member somewhere replaced by junk or removed."""
    data = copy.deepcopy(draw(VALID_TYPE_JSON))
    slots: list[tuple[Any, Any]] = []

    def collect(node: Json) -> None:
        children = node.items() if isinstance(node, dict) else enumerate(node)
        for key, child in children:
            slots.append((node, key))
            if isinstance(child, dict | list):
                collect(child)

    collect(data)
    node, key = draw(st.sampled_from(slots))
    if isinstance(node, dict) and draw(st.booleans()):
        del node[key]
    else:
        node[key] = draw(TRICKY_LEAVES | json_like(JSON_LEAVES))
    return data


@settings(max_examples=500, deadline=None)
@given(mutated_valid_type_json())
def test_mutated_valid_json_only_ever_raises_schema_error(data: Json) -> None:
    try:
        parsed = parse_type(data)
    except SchemaError:
        return
    assert parse_type(type_to_json(parsed)) == parsed


# The same idea, exhaustively: every parameter of every kind set to every tricky value.
SWEEP_BASES = (
    STRING,
    INT8,
    UINT8,
    {"kind": "int", "bitSize": 64},
    FLOAT64,
    {"kind": "float", "bitSize": 32},
    DECIMAL_5_2,
    {"kind": "decimal", "precision": 76, "scale": 37},
    {"kind": "array", "elementType": STRING},
    {"kind": "map", "elementType": STRING},
    schema_of(prop("a", STRING)),
    {"kind": "json"},
)


def test_every_parameter_set_to_every_tricky_value() -> None:
    tricky = (*TRICKY_VALUES, 10**5000, -(10**5000), None, True, [], {}, ["a"], {"kind": "x"})
    for base in SWEEP_BASES:
        for key in TYPE_KEYS:
            for value in tricky:
                assert_parses_or_schema_error({**base, key: value})
    for key in PROPERTY_KEYS:
        for value in tricky:
            assert_parses_or_schema_error(schema_of(prop("a", STRING) | {key: value}))


def assert_parses_or_schema_error(data: Json) -> None:
    try:
        parsed = parse_type(data)
    except SchemaError:
        return
    assert parse_type(type_to_json(parsed)) == parsed
