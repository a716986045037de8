"""ExportPipeline validation: every rule, in the API's order, with the API's messages."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import pytest

from sluice.model.errors import ApiError
from sluice.model.pipeline import FOREIGN_MEMBERS, PipelineContext, pipeline_to_api
from sluice.model.types import parse_property
from tests.support import SEED_ID, Edit, drop, marketing_context, put, seed_spec, validate


def both(*edits: Edit) -> Edit:
    def edit(spec: dict[str, Any]) -> None:
        for one in edits:
            one(spec)

    return edit


def string_property(name: str, **flags: Any) -> dict[str, Any]:
    return {"name": name, "type": {"kind": "string"}, "readOptional": True, **flags}


def add_in(prop: dict[str, Any]) -> Edit:
    return lambda spec: spec["inSchema"]["properties"].append(prop)


def add_out(prop: dict[str, Any]) -> Edit:
    return lambda spec: spec["outSchema"]["properties"][0]["type"]["properties"].append(prop)


FUNCTION = {
    "language": "Python",
    "source": "def transform(profile):\n    return {}\n",
    "inPaths": ["first_name", "last_name"],
    "outPaths": ["contact.firstname", "contact.lastname"],
}


def with_function(**changes: Any) -> Edit:
    function = {**FUNCTION, **changes}
    return put(("transformation",), {"function": function})


def error_of(edit: Edit, context: PipelineContext | None = None) -> ApiError:
    spec = seed_spec()
    edit(spec)
    with pytest.raises(ApiError) as caught:
        validate(spec, context)
    return caught.value


BAD_REQUESTS: list[tuple[str, Edit, str]] = [
    # Decoding: shape and types
    ("unknown field", put(("colour",), "blue"), 'unknown field "colour" in spec'),
    (
        "misspelled field",
        put(("exportMod",), "CreateOnly"),
        'unknown field "exportMod" in spec (did you mean "exportMode"?)',
    ),
    (
        "misspelled nested field",
        put(("transformation", "mapings"), {}),
        'unknown field "mapings" in spec.transformation (did you mean "mapping"?)',
    ),
    (
        "misspelled field in a list",
        put(("filter", "conditions", 0, "Operator"), "is"),
        'unknown field "Operator" in spec.filter.conditions[0] (did you mean "operator"?)',
    ),
    ("wrong type", put(("enabled",), "yes"), "spec.enabled must be a boolean"),
    (
        "unquoted YAML number",
        put(("filter", "conditions", 0, "values"), [3]),
        'spec.filter.conditions[0].values[0] must be a string: write "3" (quoted) instead of 3',
    ),
    (
        "unquoted YAML boolean",
        put(("name",), True),
        "spec.name must be a string: quote it "
        "(unquoted, yes, no, on, off, y, n, true and false are YAML booleans)",
    ),
    ("target missing", drop(("target",)), "target is required"),
    ("target unknown", put(("target",), "Account"), 'target must be "Event", "User", or "Group"'),
    (
        "target not for apps",
        put(("target",), "Event"),
        "pipeline with target 'Event' not allowed for destination Application connections",
    ),
    ("connection missing", drop(("connection",)), "connection is required"),
    ("connection zero", put(("connection",), 0), 'connection identifier "0" is not valid'),
    (
        "schema parse error",
        put(("inSchema", "properties", 0, "type"), {"kind": "string", "maxLenght": 3}),
        'spec.inSchema.properties[0].type.maxLenght: unknown key "maxLenght"',
    ),
    ("empty schema", put(("outSchema",), {}), "spec.outSchema: missing 'kind' key"),
    # 1. name
    ("name empty", put(("name",), ""), "name is empty"),
    ("name missing", drop(("name",)), "name is empty"),
    ("name too long", put(("name",), "x" * 61), "name is longer than 60 runes"),
    ("name NUL", put(("name",), "a\x00b"), "name contains the NUL byte"),
    # A lone surrogate, as JSON's "\ud800" decodes.
    ("name not UTF-8", put(("name",), "a\ud800"), "name contains invalid UTF-8 encoded characters"),
    # 2. schema kinds
    (
        "input schema kind",
        put(("inSchema",), {"kind": "string"}),
        "input schema, if provided, must be an object",
    ),
    (
        "output schema kind",
        put(("outSchema",), {"kind": "json"}),
        "out schema, if provided, must be an object",
    ),
    # 3. filter
    ("filter needs input schema", drop(("inSchema",)), "input schema is required by the filter"),
    (
        "filter operator",
        put(("filter", "conditions", 0, "operator"), "equals"),
        'filter is not valid: operator "equals" is not valid',
    ),
    (
        "filter value count",
        put(("filter", "conditions", 0, "values"), ["US", "CA"]),
        'filter is not valid: only one value can be used with the operator "is"',
    ),
    # 4. transformation
    (
        "mapping and function",
        put(("transformation", "function"), FUNCTION),
        "pipeline cannot have both transformation mapping and function",
    ),
    (
        "neither mapping nor function",
        put(("transformation",), {}),
        "pipeline cannot have a transformation without mapping and function.",
    ),
    (
        "explicit nulls",
        put(("transformation",), {"mapping": None, "function": None}),
        "pipeline cannot have a transformation without mapping and function.",
    ),
    (
        "empty mapping",
        put(("transformation", "mapping"), {}),
        "transformation mapping must have mapped properties",
    ),
    (
        "mapping needs input schema",
        both(drop(("filter",)), drop(("inSchema",))),
        "input schema is required by the mapping",
    ),
    (
        "mapping needs output schema",
        drop(("outSchema",)),
        "output schema is required by the mapping",
    ),
    (
        "mapping key missing",
        put(("transformation", "mapping", "contact.phone"), "first_name"),
        'invalid mapping: property path "contact.phone" does not exist',
    ),
    (
        "mapping key invalid",
        put(("transformation", "mapping", "contact..phone"), "first_name"),
        'invalid mapping: property path "contact..phone" is not valid',
    ),
    (
        "mapping keys share a prefix",
        put(("transformation", "mapping", "contact"), "address"),
        'invalid mapping: paths "contact" and "contact.firstname" have the same prefix',
    ),
    (
        "mapping expression property",
        put(("transformation", "mapping", "contact.firstname"), "nickname"),
        'invalid mapping: property "nickname" does not exist',
    ),
    (
        "mapping expression nested property",
        put(("transformation", "mapping", "contact.firstname"), "address.street"),
        'invalid mapping: invalid address.street: property "street" does not exist',
    ),
    (
        "mapping expression through a scalar",
        put(("transformation", "mapping", "contact.firstname"), "email.domain"),
        "invalid mapping: invalid email.domain: email (type string) cannot have properties or keys",
    ),
    (
        "mapping expression not convertible",
        put(("transformation", "mapping", "contact.firstname"), "address"),
        "invalid mapping: cannot convert address (type object) to string",
    ),
    (
        "function needs input schema",
        both(drop(("filter",)), drop(("inSchema",)), with_function()),
        "input schema is required by the transformation function",
    ),
    (
        "function needs output schema",
        both(drop(("outSchema",)), with_function()),
        "output schema is required by the transformation function",
    ),
    ("source empty", with_function(source=""), "source of transformation function is empty"),
    (
        "source too long",
        with_function(source="#" * 50001),
        "source of transformation function is longer than 50000 runes",
    ),
    ("language empty", with_function(language=""), "transformation language is empty"),
    (
        "language unknown",
        with_function(language="Ruby"),
        'transformation language "Ruby" is not valid',
    ),
    (
        "in paths null",
        with_function(inPaths=None),
        "input properties of transformation function cannot be null",
    ),
    (
        "out paths null",
        with_function(outPaths=None),
        "output properties of transformation function cannot be null",
    ),
    (
        "in paths empty",
        with_function(inPaths=[]),
        "there are no input properties in transformation function",
    ),
    (
        "out paths empty",
        with_function(outPaths=[]),
        "there are no output properties in transformation function",
    ),
    (
        "in path invalid",
        with_function(inPaths=["first name"]),
        'transformation function input property path "first name" is not valid',
    ),
    (
        "in path repeated",
        with_function(inPaths=["first_name", "first_name"]),
        'transformation function input property path "first_name" is repeated',
    ),
    (
        "in path nested",
        with_function(inPaths=["address", "address.country"]),
        'transformation function input paths cannot contain both "address" and its '
        'sub-property path "address.country"',
    ),
    (
        "in path missing",
        with_function(inPaths=["nickname"]),
        'input property "nickname" of transformation function does not exist in schema',
    ),
    (
        "out path missing",
        with_function(outPaths=["contact.phone"]),
        'output property "contact.phone" of transformation function does not exist in schema',
    ),
    # 5. export mode
    ("export mode", put(("exportMode",), "Upsert"), 'export mode "Upsert" is not valid'),
    # 6. matching
    (
        "matching in empty",
        put(("matching", "in"), ""),
        "input matching property cannot be empty if output matching property is not empty",
    ),
    (
        "matching out empty",
        put(("matching", "out"), ""),
        "output matching property cannot be empty if input matching property is not empty",
    ),
    (
        "matching without export mode",
        put(("exportMode",), ""),
        "export mode cannot be empty if there are matching properties",
    ),
    (
        "matching in invalid",
        put(("matching", "in"), "e-mail"),
        'input matching property "e-mail" is not a valid property path',
    ),
    (
        "matching in missing",
        put(("matching", "in"), "phone"),
        'input matching property "phone" not found within the input schema',
    ),
    (
        "matching in kind",
        put(("matching", "in"), "address"),
        "type object cannot be used as matching property",
    ),
    (
        "matching out invalid",
        put(("matching", "out"), "contact.e mail"),
        'output matching property "contact.e mail" is not a valid property name',
    ),
    (
        "matching out missing",
        put(("matching", "out"), "contact.phone"),
        'output matching property "contact.phone" not found within the output schema',
    ),
    (
        "matching out kind",
        put(
            ("outSchema", "properties", 0, "type", "properties", 0, "type"),
            {"kind": "float", "bitSize": 64},
        ),
        "type float(64) cannot be used as matching property",
    ),
    (
        "matching int to uuid",
        both(
            put(("inSchema", "properties", 2, "type"), {"kind": "int", "bitSize": 64}),
            put(("outSchema", "properties", 0, "type", "properties", 0, "type"), {"kind": "uuid"}),
        ),
        "input matching property cannot be converted to the output matching property",
    ),
    (
        "mapping over matching",
        put(("transformation", "mapping", "contact.email"), "email"),
        "mapping cannot map over the output matching property",
    ),
    (
        "function over matching ancestor",
        with_function(outPaths=["contact"]),
        "transformation function cannot transform over the output matching property",
    ),
    # 7. input schema contents
    (
        "input prefilled",
        add_in(string_property("nickname", prefilled="Bob")),
        'input pipeline schema property "nickname" has a prefilled value, but pipeline schema '
        "properties cannot have prefilled values",
    ),
    (
        "input meta property",
        add_in(string_property("_kpid")),
        'input pipeline schema property "_kpid" is a meta property',
    ),
    (
        "input array of objects",
        add_in(
            {
                "name": "orders",
                "type": {
                    "kind": "array",
                    "elementType": {"kind": "map", "elementType": {"kind": "int", "bitSize": 8}},
                },
                "readOptional": True,
            }
        ),
        'input pipeline schema property "orders" cannot have type array(map(int(8)))',
    ),
    (
        "input create required",
        add_in(string_property("nickname", createRequired=True)),
        'input pipeline schema property "nickname" cannot have CreateRequired set to true',
    ),
    (
        "input update required",
        add_in(string_property("nickname", updateRequired=True)),
        'input pipeline schema property "nickname" cannot have UpdateRequired set to true',
    ),
    (
        "input not read-optional",
        put(("inSchema", "properties", 3, "type", "properties", 0, "readOptional"), False),
        'input pipeline schema property "address.country" must have ReadOptional set to true',
    ),
    (
        "input nullable",
        put(("inSchema", "properties", 0, "nullable"), True),
        'input pipeline schema property "first_name" cannot have Nullable set to true',
    ),
    (
        "input column collision",
        add_in(string_property("Address_Country")),
        'two input pipeline schema properties would have the same column name "address_country" '
        "in the data warehouse, case-insensitively",
    ),
    # 8. output schema contents
    (
        "output prefilled",
        put(("outSchema", "properties", 0, "type", "properties", 1, "prefilled"), "Bob"),
        'output pipeline schema property "contact.firstname" has a prefilled value, but pipeline '
        "schema properties cannot have prefilled values",
    ),
    (
        "output read-optional",
        put(("outSchema", "properties", 0, "type", "properties", 1, "readOptional"), True),
        'output pipeline schema property "contact.firstname" cannot have ReadOptional set to true',
    ),
    # 9-11. mandatory options
    (
        "export mode missing",
        both(drop(("exportMode",)), drop(("matching",))),
        "export mode cannot be empty",
    ),
    ("matching missing", drop(("matching",)), "matching properties must be provided"),
    (
        "matching both empty",
        put(("matching",), {"in": "", "out": ""}),
        "matching properties must be provided",
    ),
    ("transformation missing", drop(("transformation",)), "pipeline must have a transformation"),
    # 12. not constant-only
    (
        "constant-only mapping",
        both(
            put(("transformation", "mapping"), {"contact.firstname": '"Ada"'}),
            drop(("filter",)),
            put(("inSchema", "properties"), [string_property("email")]),
            put(
                ("outSchema", "properties", 0, "type", "properties"),
                [
                    {"name": "email", "type": {"kind": "string"}, "nullable": True},
                    {"name": "firstname", "type": {"kind": "string"}, "nullable": True},
                ],
            ),
        ),
        "transformation must map at least one property",
    ),
    # 13. every property used
    (
        "unused input",
        add_in(string_property("phone")),
        "input schema contains an unused property: phone",
    ),
    (
        "unused output",
        add_out({"name": "city", "type": {"kind": "string"}, "nullable": True}),
        "output schema contains an unused property: contact.city",
    ),
    # Schedule
    (
        "schedule period",
        put(("schedulePeriod",), "2m"),
        'schedule period can be "5m", "15m", "30m", "1h", "2h", "3h", "6h", "8h", "12h", or "24h"',
    ),
    (
        "schedule start",
        put(("scheduleStart",), 1440),
        "schedule start must be in the range [0, 1439]",
    ),
]


@pytest.mark.parametrize(
    ("edit", "message"), [(e, m) for _, e, m in BAD_REQUESTS], ids=[n for n, _, _ in BAD_REQUESTS]
)
def test_bad_request(edit: Edit, message: str) -> None:
    error = error_of(edit)
    assert (error.status, error.code, error.message) == (400, "BadRequest", message)


@pytest.mark.parametrize(("member", "message"), sorted(FOREIGN_MEMBERS.items()))
def test_members_of_other_pipeline_kinds_get_the_api_message(member: str, message: str) -> None:
    error = error_of(
        put((member,), {"purposes": ["profile"]} if member == "requiredConsents" else "x")
    )
    assert (error.message, error.location) == (message, ("spec", member))


@pytest.mark.parametrize("empty", [None, False, "", [], {}])
def test_members_of_other_pipeline_kinds_may_be_left_empty(empty: Any) -> None:
    spec = seed_spec()
    spec.update(incremental=empty, query=empty, requiredConsents={"purposes": []})
    assert validate(spec).name == "Export customers"


def test_the_seed_payload_is_valid_and_served_as_the_api_returns_it() -> None:
    body = pipeline_to_api(validate(seed_spec()))
    assert list(body) == [
        "id",
        "name",
        "connector",
        "connectorType",
        "connection",
        "connectionRole",
        "target",
        "enabled",
        "filter",
        "matching",
        "exportMode",
        "updateOnDuplicates",
        "transformation",
        "inSchema",
        "outSchema",
        "running",
        "scheduleStart",
        "schedulePeriod",
    ]
    spec = seed_spec()
    for key in ("name", "connection", "target", "enabled", "filter", "matching", "exportMode"):
        assert body[key] == spec[key], key
    assert body["transformation"] == {
        "mapping": spec["transformation"]["mapping"],
        "function": None,
    }
    # Schemas come back in canonical form: the seed's JSON, key for key and in the same order,
    # except that a description is always present (the seed's "contact" has none).
    assert json.dumps(body["inSchema"]) == json.dumps(spec["inSchema"])
    spec["outSchema"]["properties"][0]["description"] = ""
    assert json.dumps(body["outSchema"]) == json.dumps(spec["outSchema"])
    assert body["id"] == SEED_ID
    assert (body["connector"], body["connectorType"], body["connectionRole"]) == (
        "hubspot",
        "Application",
        "Destination",
    )
    assert (body["running"], body["scheduleStart"], body["schedulePeriod"]) == (False, 15, "1h")


def test_the_first_failing_rule_wins() -> None:
    error = error_of(
        both(put(("name",), ""), put(("exportMode",), "Upsert"), drop(("transformation",)))
    )
    assert error.message == "name is empty"
    error = error_of(both(put(("exportMode",), "Upsert"), add_in(string_property("phone"))))
    assert error.message == 'export mode "Upsert" is not valid'


def test_a_mapping_may_mix_constants_and_expressions() -> None:
    spec = seed_spec()
    spec["transformation"]["mapping"]["contact.firstname"] = '"Friend"'
    spec["transformation"]["mapping"]["contact.lastname"] = 'upper(last_name) " " first_name'
    assert validate(spec).mapping == {
        "contact.firstname": '"Friend"',
        "contact.lastname": 'upper(last_name) " " first_name',
    }


def test_a_mapping_syntax_error_says_where() -> None:
    error = error_of(put(("transformation", "mapping", "contact.firstname"), "lower(first_name"))
    assert error.message == "invalid mapping: arguments are not terminated"
    assert error.location == ("spec", "transformation", "mapping", "contact.firstname")
    assert error.cause is not None and error.cause.startswith("at character ")


def test_a_name_is_measured_in_characters_not_bytes() -> None:
    spec = seed_spec()
    spec["name"] = "é" * 60
    assert validate(spec).name == "é" * 60


def test_errors_point_at_the_member_they_are_about() -> None:
    error = error_of(put(("filter", "conditions", 0, "operator"), "equals"))
    assert error.location == ("spec", "filter", "conditions", 0, "operator")
    error = error_of(put(("transformation", "mapping", "contact.phone"), "first_name"))
    assert error.location == ("spec", "transformation", "mapping", "contact.phone")
    error = error_of(with_function(inPaths=["first_name", "nickname"]))
    assert error.location == ("spec", "transformation", "function", "inPaths", 1)


def test_a_connection_is_found_by_id_or_by_name() -> None:
    spec = seed_spec()
    spec["connection"] = "hubspot"
    assert validate(spec).connection == 230527183


def test_an_unknown_connection_is_unprocessable() -> None:
    error = error_of(put(("connection",), 42))
    assert (error.status, error.code, error.message) == (
        422,
        "ConnectionNotExist",
        "connection does not exist",
    )
    assert "42" in str(error.cause)


def test_a_missing_workspace_is_not_found() -> None:
    error = error_of(lambda spec: None, marketing_context(workspace=None))
    assert (error.status, error.code, error.message) == (
        404,
        "NotFound",
        "workspace does not exist",
    )


def test_a_language_without_a_runtime_is_unsupported() -> None:
    context = marketing_context(languages={"JavaScript"})
    error = error_of(with_function(language="Python"), context)
    assert (error.status, error.code, error.message) == (
        422,
        "UnsupportedLanguage",
        "transformation language is not supported",
    )


def test_the_input_schema_must_be_part_of_the_profile_schema() -> None:
    error = error_of(put(("inSchema", "properties", 0, "type", "maxLength"), 50))
    assert (error.status, error.code) == (422, "SchemaNotAligned")
    assert error.message.startswith('in the input schema, "first_name" property')
    error = error_of(
        both(
            add_in(string_property("nickname")),
            put(("transformation", "mapping", "contact.firstname"), "nickname"),
            lambda spec: spec["inSchema"]["properties"].pop(0),  # first_name is unused now
        )
    )
    assert error.code == "SchemaNotAligned"
    assert '"nickname"' in error.message


def test_a_function_pipeline_is_valid_and_keeps_its_paths_sorted() -> None:
    spec = seed_spec()
    with_function(inPaths=["last_name", "first_name"])(spec)
    pipeline = validate(spec)
    assert pipeline.mapping is None and pipeline.function is not None
    body = pipeline_to_api(pipeline)
    assert body["transformation"]["mapping"] is None
    assert body["transformation"]["function"] == {
        "language": "Python",
        "source": FUNCTION["source"],
        "preserveJSON": False,
        "inPaths": ["first_name", "last_name"],
        "outPaths": ["contact.firstname", "contact.lastname"],
    }


def test_read_optional_is_allowed_on_the_output_matching_property_and_its_ancestors() -> None:
    spec = seed_spec()
    spec["outSchema"]["properties"][0]["readOptional"] = True
    spec["outSchema"]["properties"][0]["type"]["properties"][0]["readOptional"] = True
    validate(spec)


def test_an_absent_schedule_start_is_spread_by_id() -> None:
    spec = seed_spec()
    del spec["scheduleStart"]
    assert validate(spec).schedule_start == SEED_ID % 1440


def test_an_unscheduled_pipeline_shows_no_schedule() -> None:
    spec = seed_spec()
    del spec["schedulePeriod"]
    body = pipeline_to_api(validate(spec))
    assert (body["scheduleStart"], body["schedulePeriod"]) == (None, None)


def test_a_filter_absent_or_null_is_served_as_null() -> None:
    spec = seed_spec()
    spec["filter"] = None
    spec["inSchema"]["properties"].pop()  # address was only used by the filter
    assert pipeline_to_api(validate(spec))["filter"] is None


def test_a_path_into_a_map_uses_the_map_property() -> None:
    spec = seed_spec()
    traits = {
        "name": "traits",
        "type": {"kind": "map", "elementType": {"kind": "string"}},
        "readOptional": True,
    }
    add_in(traits)(spec)
    spec["transformation"]["mapping"]["contact.firstname"] = "traits.nickname"
    spec["inSchema"]["properties"].pop(0)  # first_name is no longer used
    context = marketing_context()
    assert context.workspace is not None
    profile = context.workspace.profile_schema
    workspace = replace(
        context.workspace,
        profile_schema=replace(
            profile, properties=(*profile.properties, parse_property(traits, ()))
        ),
    )
    pipeline = validate(spec, marketing_context(workspace=workspace))
    assert pipeline.mapping == {
        "contact.firstname": "traits.nickname",
        "contact.lastname": "last_name",
    }
