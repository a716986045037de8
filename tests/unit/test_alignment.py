"""Schema alignment: whether a schema is usable against another (semantics §1.6)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from sluice.model.alignment import AlignmentError, check_alignment
from sluice.model.types import Type, parse_type

Json = Any
PROFILE = "the profile schema"

STRING = {"kind": "string"}
INT32 = {"kind": "int", "bitSize": 32}
DECIMAL_10_2 = {"kind": "decimal", "precision": 10, "scale": 2}


def schema(*properties: dict[str, Json]) -> Type:
    return parse_type(object_json(*properties))


def object_json(*properties: dict[str, Json]) -> dict[str, Json]:
    return {"kind": "object", "properties": list(properties)}


def prop(name: str, type_json: dict[str, Json] = STRING, **flags: Json) -> dict[str, Json]:
    return {"name": name, "type": type_json, **flags}


def array_of(element: dict[str, Json], **params: Json) -> dict[str, Json]:
    return {"kind": "array", "elementType": element, **params}


def alignment_error(t1: Type, t2: Type, export_mode: str | None = None) -> AlignmentError:
    with pytest.raises(AlignmentError) as caught:
        check_alignment(t1, t2, export_mode, other=PROFILE)
    return caught.value


def type_pair(type1: dict[str, Json], type2: dict[str, Json], name: str = "x") -> tuple[Type, Type]:
    """Two one-property schemas that differ only in the property's type."""
    return schema(prop(name, type1)), schema(prop(name, type2))


# ---------------------------------------------------------------------------------------------
# Success
# ---------------------------------------------------------------------------------------------

CUSTOMER = schema(
    prop("email", {"kind": "string", "maxLength": 254}, readOptional=True, nullable=True),
    prop("age", {"kind": "int", "bitSize": 16, "minimum": 0}),
    prop(
        "address",
        object_json(
            prop("city", STRING),
            prop("geo", object_json(prop("lat", {"kind": "float", "bitSize": 64}))),
        ),
    ),
    prop("tags", array_of(STRING, maxElements=5, uniqueElements=True)),
    prop("items", array_of(object_json(prop("sku", STRING), prop("qty", INT32)))),
    prop("attributes", {"kind": "map", "elementType": {"kind": "json"}}),
    prop("status", {"kind": "string", "values": ["", "gold", "silver"]}),
    prop("price", {**DECIMAL_10_2, "maximum": 100}),
    prop("code", {"kind": "string", "pattern": "^[A-Z]{3}$"}),
)
EXPORT_MODES = [None, "CreateOnly", "UpdateOnly", "CreateOrUpdate"]


@pytest.mark.parametrize("export_mode", EXPORT_MODES)
def test_identical_schemas_are_aligned(export_mode: str | None) -> None:
    check_alignment(CUSTOMER, CUSTOMER, export_mode)


@pytest.mark.parametrize("export_mode", EXPORT_MODES)
def test_a_strict_subset_is_aligned(export_mode: str | None) -> None:
    subset = schema(
        prop(
            "address",
            object_json(prop("geo", object_json(prop("lat", {"kind": "float", "bitSize": 64})))),
        ),
        prop("items", array_of(object_json(prop("qty", INT32)))),
        prop("email", {"kind": "string", "maxLength": 254}, readOptional=True, nullable=True),
    )
    check_alignment(subset, CUSTOMER, export_mode)


def test_nested_objects_subset_is_aligned() -> None:
    t1 = schema(prop("contact", object_json(prop("email", nullable=True))))
    t2 = schema(
        prop("id", INT32),
        prop("contact", object_json(prop("name"), prop("email", nullable=True), prop("phone"))),
    )
    check_alignment(t1, t2, "CreateOrUpdate")


def test_order_of_enum_values_does_not_matter() -> None:
    check_alignment(*type_pair({**STRING, "values": ["a", "b"]}, {**STRING, "values": ["b", "a"]}))


def test_explicit_full_range_equals_the_default_range() -> None:
    # Parsing drops full-range bounds; a Type built in code may keep them.
    implicit = schema(prop("x", INT32))
    explicit_type = replace(parse_type(INT32), minimum=-(2**31), maximum=2**31 - 1)
    explicit = replace(implicit, properties=(replace(implicit.properties[0], type=explicit_type),))
    check_alignment(implicit, explicit)
    check_alignment(explicit, implicit)


def test_role_flags_outside_the_mode_are_ignored() -> None:
    read_only = schema(prop("x", readOptional=True))
    writable = schema(prop("x", createRequired=True, updateRequired=True))
    check_alignment(read_only, schema(prop("x", readOptional=True, createRequired=True)))
    check_alignment(read_only, schema(prop("x")), "CreateOrUpdate")
    writable_read_optional = schema(
        prop("x", readOptional=True, createRequired=True, updateRequired=True)
    )
    check_alignment(writable, writable_read_optional, "CreateOrUpdate")
    check_alignment(schema(prop("x", updateRequired=True)), schema(prop("x")), "CreateOnly")
    check_alignment(schema(prop("x", createRequired=True)), schema(prop("x")), "UpdateOnly")


def test_descriptions_and_prefilled_are_ignored() -> None:
    check_alignment(schema(prop("x", description="a", prefilled="p")), schema(prop("x")))


def test_required_properties_only_matter_when_exporting_in_their_mode() -> None:
    t2 = schema(prop("x"), prop("id", createRequired=True), prop("key", updateRequired=True))
    check_alignment(schema(prop("x")), t2)  # read side
    check_alignment(schema(prop("x"), prop("id", createRequired=True)), t2, "CreateOnly")
    check_alignment(schema(prop("x"), prop("key", updateRequired=True)), t2, "UpdateOnly")


def test_required_properties_below_an_absent_parent_are_not_asked_for() -> None:
    t2 = schema(prop("x"), prop("contact", object_json(prop("email", createRequired=True))))
    check_alignment(schema(prop("x")), t2, "CreateOnly")


# ---------------------------------------------------------------------------------------------
# One case per message
# ---------------------------------------------------------------------------------------------


def case(case_id: str, t1: Type, t2: Type, message: str, export_mode: str | None = None) -> Any:
    return pytest.param(t1, t2, export_mode, message, id=case_id)


def type_case(case_id: str, type1: dict[str, Json], type2: dict[str, Json], message: str) -> Any:
    return case(case_id, *type_pair(type1, type2), f'"x" property {message} in {PROFILE}')


def flag_case(case_id: str, flag: str, export_mode: str | None, message: str) -> Any:
    flagged, plain = schema({**prop("x"), flag: True}), schema(prop("x"))
    return case(case_id, flagged, plain, message, export_mode)


FLOAT32 = {"kind": "float", "bitSize": 32}
LENGTH_100 = {"kind": "string", "maxLength": 100}
ENUM = {"kind": "string", "values": ["", "gold"]}

MISMATCHES = [
    case(
        "missing",
        schema(prop("email")),
        schema(prop("name")),
        f'"email" property does not exist in {PROFILE}',
    ),
    case(
        "missing-nested",
        schema(prop("address", object_json(prop("city")))),
        schema(prop("address", object_json(prop("country")))),
        f'"address.city" property does not exist in {PROFILE}',
    ),
    case(
        "missing-in-array-objects",
        schema(prop("items", array_of(object_json(prop("sku"))))),
        schema(prop("items", array_of(object_json(prop("qty", INT32))))),
        f'"items[].sku" property does not exist in {PROFILE}',
    ),
    case(
        "missing-in-map-objects",
        schema(prop("m", {"kind": "map", "elementType": object_json(prop("a"))})),
        schema(prop("m", {"kind": "map", "elementType": object_json(prop("b"))})),
        f'"m[].a" property does not exist in {PROFILE}',
    ),
    flag_case(
        "nullable",
        "nullable",
        None,
        f'"x" property is nullable, but it is not nullable in {PROFILE}',
    ),
    case(
        "not-nullable",
        schema(prop("email")),
        schema(prop("email", nullable=True)),
        f'"email" property is not nullable, but it is nullable in {PROFILE}',
        "CreateOrUpdate",
    ),
    flag_case(
        "read-optional",
        "readOptional",
        None,
        f'"x" property is optional for reading, but it is not optional for reading in {PROFILE}',
    ),
    case(
        "not-read-optional",
        schema(prop("x")),
        schema(prop("x", readOptional=True)),
        f'"x" property is not optional for reading, but it is optional for reading in {PROFILE}',
    ),
    *[
        flag_case(
            f"create-required-{mode}",
            "createRequired",
            mode,
            f'"x" property is required for creation, but it is not required for creation in '
            f"{PROFILE}",
        )
        for mode in ("CreateOnly", "CreateOrUpdate")
    ],
    *[
        flag_case(
            f"update-required-{mode}",
            "updateRequired",
            mode,
            f'"x" property is required for update, but it is not required for update in {PROFILE}',
        )
        for mode in ("UpdateOnly", "CreateOrUpdate")
    ],
    case(
        "not-update-required",
        schema(prop("x")),
        schema(prop("x", updateRequired=True)),
        f'"x" property is not required for update, but it is required for update in {PROFILE}',
        "UpdateOnly",
    ),
    type_case("kind", INT32, STRING, "has type int(32), but it has type string"),
    type_case(
        "object-kind", object_json(prop("a")), STRING, "has type object, but it has type string"
    ),
    type_case(
        "bit-size",
        INT32,
        {"kind": "int", "bitSize": 16},
        "has type int(32), but it has type int(16)",
    ),
    type_case(
        "unsigned",
        {"kind": "int", "bitSize": 8},
        {"kind": "int", "bitSize": 8, "unsigned": True},
        "has type int(8), but it has type uint(8)",
    ),
    type_case(
        "float-bit-size",
        FLOAT32,
        {"kind": "float", "bitSize": 64},
        "has type float(32), but it has type float(64)",
    ),
    type_case(
        "real",
        {**FLOAT32, "real": True},
        FLOAT32,
        "is limited to real numbers, but it is not limited to real numbers",
    ),
    type_case(
        "int-range",
        {**INT32, "minimum": 0, "maximum": 120},
        {**INT32, "minimum": 0, "maximum": 150},
        "has a range of [0, 120], but [0, 150]",
    ),
    type_case(
        "int-range-against-default",
        {**INT32, "minimum": 0},
        INT32,
        "has a range of [0, 2147483647], but [-2147483648, 2147483647]",
    ),
    type_case(
        "float-range",
        {**FLOAT32, "minimum": -1.5, "maximum": 1.5},
        FLOAT32,
        "has a range of [-1.5, 1.5], but [-3.4028234663852886e+38, 3.4028234663852886e+38]",
    ),
    type_case(
        "precision",
        DECIMAL_10_2,
        {**DECIMAL_10_2, "precision": 12},
        "has a precision of 10, but 12",
    ),
    type_case("scale", DECIMAL_10_2, {**DECIMAL_10_2, "scale": 3}, "has a scale of 2, but 3"),
    type_case(
        "decimal-range",
        {**DECIMAL_10_2, "minimum": "0.50", "maximum": 99.99},
        DECIMAL_10_2,
        "has a range of [0.50, 99.99], but [-99999999.99, 99999999.99]",
    ),
    case(
        "max-length",
        *type_pair(LENGTH_100, {"kind": "string", "maxLength": 254}, name="email"),
        f'"email" property has a maximum length of 100 characters, but 254 in {PROFILE}',
    ),
    type_case(
        "max-length-unbounded-there",
        LENGTH_100,
        STRING,
        "has a maximum length of 100 characters, but none",
    ),
    type_case(
        "max-length-unbounded-here",
        STRING,
        LENGTH_100,
        "has no maximum length in characters, but 100",
    ),
    type_case(
        "max-bytes",
        {"kind": "string", "maxBytes": 100},
        {"kind": "string", "maxBytes": 200},
        "has a maximum length of 100 bytes, but 200",
    ),
    type_case(
        "max-bytes-unbounded-here",
        STRING,
        {"kind": "string", "maxBytes": 200},
        "has no maximum length in bytes, but 200",
    ),
    type_case(
        "values-restricted",
        ENUM,
        STRING,
        "is limited to specific values, but it is not limited to specific values",
    ),
    type_case(
        "values-unrestricted",
        STRING,
        ENUM,
        "is not limited to specific values, but it is limited to specific values",
    ),
    type_case(
        "value-removed",
        ENUM,
        {"kind": "string", "values": ["", "silver"]},
        'allows the value "gold", but it does not allow it',
    ),
    # The empty string is a value like any other.
    type_case(
        "empty-value-removed",
        ENUM,
        {"kind": "string", "values": ["gold"]},
        'allows the value "", but it does not allow it',
    ),
    type_case(
        "value-added",
        ENUM,
        {"kind": "string", "values": ["gold", "", "platinum"]},
        'does not allow the value "platinum", but it allows it',
    ),
    type_case(
        "pattern",
        {"kind": "string", "pattern": "^[A-Z]+$"},
        {"kind": "string", "pattern": "^[a-z]+$"},
        'has the pattern "^[A-Z]+$", but "^[a-z]+$"',
    ),
    type_case(
        "pattern-removed",
        {"kind": "string", "pattern": "^a"},
        STRING,
        'has the pattern "^a", but none',
    ),
    type_case(
        "pattern-added",
        STRING,
        {"kind": "string", "pattern": "^a"},
        'has no pattern, but "^a"',
    ),
    type_case(
        "array-vs-map",
        array_of(STRING),
        {"kind": "map", "elementType": STRING},
        "has type array(string), but it has type map(string)",
    ),
    case(
        "array-element",
        *type_pair(array_of(STRING), array_of(INT32), name="tags"),
        f'"tags[]" property has type string, but it has type int(32) in {PROFILE}',
    ),
    case(
        "array-element-parameter",
        *type_pair(array_of(LENGTH_100), array_of(STRING), name="tags"),
        f'"tags[]" property has a maximum length of 100 characters, but none in {PROFILE}',
    ),
    case(
        "map-element",
        *type_pair(
            {"kind": "map", "elementType": STRING},
            {"kind": "map", "elementType": {"kind": "json"}},
            name="attributes",
        ),
        f'"attributes[]" property has type string, but it has type json in {PROFILE}',
    ),
    type_case(
        "min-elements",
        array_of(STRING, minElements=1),
        array_of(STRING),
        "has a minimum element count of 1, but 0",
    ),
    type_case(
        "max-elements",
        array_of(STRING, maxElements=10),
        array_of(STRING),
        "has a maximum element count of 10, but none",
    ),
    type_case(
        "max-elements-unbounded-here",
        array_of(STRING),
        array_of(STRING, maxElements=0),
        "has no maximum element count, but 0",
    ),
    type_case(
        "unique-elements",
        array_of(STRING, uniqueElements=True),
        array_of(STRING),
        "is required to have unique elements, but it is not required to have unique elements",
    ),
    type_case(
        "not-unique-elements",
        array_of(STRING),
        array_of(STRING, uniqueElements=True),
        "is not required to have unique elements, but it is required to have unique elements",
    ),
    case(
        "nested-type",
        schema(prop("address", object_json(prop("geo", object_json(prop("lat", FLOAT32)))))),
        schema(prop("address", object_json(prop("geo", object_json(prop("lat", INT32)))))),
        f'"address.geo.lat" property has type float(32), but it has type int(32) in {PROFILE}',
    ),
    *[
        case(
            f"required-for-creation-{mode}",
            schema(prop("name")),
            schema(prop("name"), prop("email", createRequired=True)),
            f'"email" property is required for creation in {PROFILE} but is not present in the '
            "schema",
            mode,
        )
        for mode in ("CreateOnly", "CreateOrUpdate")
    ],
    *[
        case(
            f"required-for-update-{mode}",
            schema(prop("name")),
            schema(prop("name"), prop("id", updateRequired=True)),
            f'"id" property is required for update in {PROFILE} but is not present in the schema',
            mode,
        )
        for mode in ("UpdateOnly", "CreateOrUpdate")
    ],
    case(
        "required-for-both-reports-creation",
        schema(prop("name")),
        schema(prop("name"), prop("id", createRequired=True, updateRequired=True)),
        f'"id" property is required for creation in {PROFILE} but is not present in the schema',
        "CreateOrUpdate",
    ),
    case(
        "required-nested",
        schema(prop("contact", object_json(prop("firstname")))),
        schema(prop("contact", object_json(prop("email", createRequired=True), prop("firstname")))),
        f'"contact.email" property is required for creation in {PROFILE} but is not present in '
        "the schema",
        "CreateOnly",
    ),
    case(
        "required-in-array-objects",
        schema(prop("items", array_of(object_json(prop("qty", INT32))))),
        schema(
            prop(
                "items", array_of(object_json(prop("sku", updateRequired=True), prop("qty", INT32)))
            )
        ),
        f'"items[].sku" property is required for update in {PROFILE} but is not present in the '
        "schema",
        "UpdateOnly",
    ),
]


@pytest.mark.parametrize(("t1", "t2", "export_mode", "message"), MISMATCHES)
def test_misalignment_message(t1: Type, t2: Type, export_mode: str | None, message: str) -> None:
    error = alignment_error(t1, t2, export_mode)
    assert error.message == str(error) == message
    # The path is the quoted part of the message, without the API's leading dot.
    assert f'"{error.path}" property' in message
    assert not error.path.startswith(".")


# ---------------------------------------------------------------------------------------------
# Which difference is reported first
# ---------------------------------------------------------------------------------------------


def test_properties_are_checked_in_schema_order() -> None:
    t1 = schema(prop("a", nullable=True), prop("b", INT32), prop("c"))
    t2 = schema(prop("b"), prop("a"))
    assert alignment_error(t1, t2).path == "a"
    assert alignment_error(schema(prop("c"), prop("a")), t2).path == "c"


def test_a_property_is_checked_depth_first() -> None:
    t1 = schema(prop("o", object_json(prop("deep", INT32))), prop("later", nullable=True))
    t2 = schema(prop("o", object_json(prop("deep"))), prop("later"))
    assert alignment_error(t1, t2).path == "o.deep"


def test_flags_are_checked_before_the_type() -> None:
    error = alignment_error(schema(prop("x", INT32, nullable=True)), schema(prop("x")))
    assert "nullable" in error.message


def test_missing_properties_of_t1_come_before_required_ones_of_t2() -> None:
    t1 = schema(prop("ghost"))
    t2 = schema(prop("email", createRequired=True))
    assert alignment_error(t1, t2, "CreateOnly").path == "ghost"


# ---------------------------------------------------------------------------------------------
# API details
# ---------------------------------------------------------------------------------------------


def test_default_name_of_the_other_schema() -> None:
    with pytest.raises(AlignmentError) as caught:
        check_alignment(schema(prop("b")), schema(prop("a")))
    assert caught.value.message == '"b" property does not exist in the other schema'


def test_alignment_error_is_a_value_error() -> None:
    error = alignment_error(schema(prop("b")), schema(prop("a")))
    assert isinstance(error, ValueError)
    assert error.path == "b"


def test_unknown_export_mode_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown export mode 'Upsert'"):
        check_alignment(CUSTOMER, CUSTOMER, "Upsert")


def test_only_object_types_are_schemas() -> None:
    with pytest.raises(ValueError, match="object types"):
        check_alignment(parse_type(STRING), CUSTOMER)
