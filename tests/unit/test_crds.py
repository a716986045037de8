"""The generated CRDs: in sync with the spec models, structural, and accepting the seed payload.

The checks of the API server that matter here (types, enums, bounds, required members, unknown
fields, nulls) are modelled by :func:`problems`, a small structural validator; the CEL rules are
checked for presence and for naming fields that exist (the API server compiles them).
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, get_args, get_origin

import pytest
import yaml
from pydantic import BaseModel, Field

from sluice.crds import SCHEMA_TYPE_DEPTH, build_crds, model_schema, render_crds
from sluice.filters import OPERATORS
from sluice.model import types as schema_types
from sluice.model.specs import KIND_SPECS, ConnectionSpec, Spec
from sluice.model.types import Kind
from tests.support import SEED_PAYLOAD, Location, put

Json = dict[str, Any]

ROOT = Path(__file__).resolve().parents[2]
CRDS_DIR = ROOT / "crds"
EXAMPLES = ROOT / "examples"
CRDS: dict[str, Json] = {crd["spec"]["names"]["kind"]: crd for crd in build_crds()}
KINDS = tuple(CRDS)
SCHEMA_PATHS = (
    ("Workspace", "spec.profileSchema"),
    ("ExportPipeline", "spec.inSchema"),
    ("ExportPipeline", "spec.outSchema"),
)
# Short names kubectl resolves to built-in kinds, and `ws`, which other operators already use.
TAKEN_SHORT_NAMES = frozenset(
    {
        *("cm", "cs", "crd", "crds", "csr", "cj", "deploy", "ds", "ep", "ev", "hpa", "ing"),
        *("limits", "netpol", "no", "ns", "pc", "pdb", "po", "psp", "pv", "pvc", "quota"),
        *("rc", "rs", "sa", "sc", "sts", "svc", "ws"),
    }
)


# ---------------------------------------------------------------------------------------------
# Helpers: walking schemas, and a model of the API server's structural validation
# ---------------------------------------------------------------------------------------------


def openapi(kind: str) -> Json:
    schema: Json = CRDS[kind]["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    return schema


def node_at(kind: str, path: str) -> Json:
    """The schema node at a dotted path; ``[]`` steps into array items (``conditions[]``)."""
    node = openapi(kind)
    for step in path.split("."):
        name = step.removesuffix("[]")
        node = node["properties"][name]
        if step.endswith("[]"):
            node = node["items"]
    return node


def schema_nodes(
    node: Json, path: str = "", is_field: bool = False
) -> Iterator[tuple[str, Json, bool]]:
    """Every node under ``node``: its path, the node, and whether it is an object's field."""
    yield path, node, is_field
    for name, child in node.get("properties", {}).items():
        yield from schema_nodes(child, f"{path}.{name}", is_field=True)
    if "items" in node:
        yield from schema_nodes(node["items"], path + "[]")
    if isinstance(node.get("additionalProperties"), dict):
        yield from schema_nodes(node["additionalProperties"], path + "{}")


_PYTHON_TYPES: dict[str, type | tuple[type, ...]] = {
    "object": dict,
    "array": list,
    "string": str,
    "integer": int,
    "number": (int, float),
    "boolean": bool,
}


def problems(value: Any, schema: Json, path: str) -> list[str]:
    """What the API server refuses in ``value``, after pruning; empty when it is accepted."""
    if schema.get("x-kubernetes-int-or-string"):
        if isinstance(value, bool) or not isinstance(value, int | str):
            return [f"{path}: must be an integer or a string"]
        return _value_problems(value, schema, path)
    kind = schema.get("type")
    if kind is None:  # untyped (preserve-unknown-fields): any value
        return []
    is_number = kind in ("integer", "number")
    if not isinstance(value, _PYTHON_TYPES[kind]) or (is_number and isinstance(value, bool)):
        return [f"{path}: must be of type {kind}"]
    found = _value_problems(value, schema, path)
    if isinstance(value, dict):
        found += _object_problems(value, schema, path)
    if isinstance(value, list):
        for index, item in enumerate(value):
            found += problems(item, schema["items"], f"{path}[{index}]")
    return found


def _value_problems(value: Any, schema: Json, path: str) -> list[str]:
    found = []
    if "enum" in schema and value not in schema["enum"]:
        found.append(f"{path}: not one of the allowed values")
    if isinstance(value, str):
        if len(value) < schema.get("minLength", 0) or len(value) > schema.get("maxLength", 1e99):
            found.append(f"{path}: length out of bounds")
        if "pattern" in schema and not re.search(schema["pattern"], value):
            found.append(f"{path}: does not match the pattern")
    is_number = isinstance(value, int | float) and not isinstance(value, bool)
    if is_number and not schema.get("minimum", -1e999) <= value <= schema.get("maximum", 1e999):
        found.append(f"{path}: out of range")
    if isinstance(value, list) and not (
        schema.get("minItems", 0) <= len(value) <= schema.get("maxItems", 1e99)
    ):
        found.append(f"{path}: wrong number of items")
    return found


def _object_problems(value: Json, schema: Json, path: str) -> list[str]:
    properties = schema.get("properties", {})
    # The API server drops the nulls of non-nullable fields before it validates.
    kept = {
        key: member
        for key, member in value.items()
        if member is not None or properties.get(key, {}).get("nullable")
    }
    found = [f"{path}.{key}: required" for key in schema.get("required", ()) if key not in kept]
    for key, member in kept.items():
        if key in properties:
            if member is not None:
                found += problems(member, properties[key], f"{path}.{key}")
        elif isinstance(schema.get("additionalProperties"), dict):
            found += problems(member, schema["additionalProperties"], f"{path}.{key}")
        elif not schema.get("x-kubernetes-preserve-unknown-fields"):
            found.append(f"{path}.{key}: unknown field")
    return found


def spec_problems(kind: str, spec: Any) -> list[str]:
    return problems(spec, node_at(kind, "spec"), "spec")


def rules_at(kind: str, path: str) -> dict[str, Json]:
    """The CEL rules of a node, by message (or message expression)."""
    rules = node_at(kind, path).get("x-kubernetes-validations", [])
    return {rule.get("message") or rule["messageExpression"]: rule for rule in rules}


def example_specs() -> Iterator[tuple[str, str, Any]]:
    for file in sorted(EXAMPLES.glob("*.yaml")):
        for document in yaml.safe_load_all(file.read_text()):
            if document and document["apiVersion"].startswith("sluice.dev/"):
                yield file.name, document["kind"], document["spec"]


# ---------------------------------------------------------------------------------------------
# Generated files
# ---------------------------------------------------------------------------------------------


def test_the_files_in_crds_are_those_the_models_generate() -> None:
    rendered = render_crds()
    on_disk = {path.name: path.read_text() for path in CRDS_DIR.glob("*.yaml")}
    stale = sorted(
        name for name in rendered.keys() | on_disk.keys() if rendered.get(name) != on_disk.get(name)
    )
    assert not stale, f"crds/ is out of date with the spec models ({stale}): run `make crds`"


def test_each_file_holds_its_crd_under_a_do_not_edit_header() -> None:
    rendered = render_crds()
    assert sorted(rendered) == [
        "sluice.dev_connections.yaml",
        "sluice.dev_exportpipelines.yaml",
        "sluice.dev_workspaces.yaml",
    ]
    for name, text in rendered.items():
        assert text.startswith("# Generated by `sluice crds`")
        assert "Do not edit by hand" in text.splitlines()[1]
        crd = yaml.safe_load(text)
        assert name == f"sluice.dev_{crd['spec']['names']['plural']}.yaml"
        assert crd == CRDS[crd["spec"]["names"]["kind"]]


def test_the_crds_stay_small_enough_for_client_side_apply() -> None:
    # `kubectl apply` copies the object into a 256 KiB annotation; etcd refuses 1.5 MiB.
    for name, text in render_crds().items():
        assert len(text.encode()) < 256 * 1024, name
    for kind in KINDS:
        assert len(json.dumps(CRDS[kind], separators=(",", ":"))) < 128 * 1024, kind


def test_build_crds_returns_fresh_objects() -> None:
    first = build_crds()
    first[2]["spec"]["versions"][0]["additionalPrinterColumns"][0]["name"] = "Changed"
    assert build_crds()[2]["spec"]["versions"][0]["additionalPrinterColumns"][0]["name"] == "Ready"


# ---------------------------------------------------------------------------------------------
# Structural schemas
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_every_node_is_structural(kind: str) -> None:
    wrong = []
    for path, node, _ in schema_nodes(openapi(kind)):
        typed = "type" in node
        if not typed and not (
            node.get("x-kubernetes-int-or-string")
            or node.get("x-kubernetes-preserve-unknown-fields")
        ):
            wrong.append(f"{path}: no type")
        if typed and node.get("x-kubernetes-int-or-string"):
            wrong.append(f"{path}: int-or-string with a type")
        if {"$ref", "anyOf", "oneOf", "allOf", "not", "$defs", "definitions"} & node.keys():
            wrong.append(f"{path}: reference or junctor")
        if "properties" in node and "additionalProperties" in node:
            wrong.append(f"{path}: both properties and additionalProperties")
        if node.get("additionalProperties") is False or node.get("nullable") is False:
            wrong.append(f"{path}: false flag")
        if "default" in node:
            wrong.append(f"{path}: defaults are the models' business")
    assert wrong == []


@pytest.mark.parametrize("kind", KINDS)
def test_every_field_has_a_description_for_kubectl_explain(kind: str) -> None:
    undescribed = [
        path
        for path, node, is_field in schema_nodes(openapi(kind))
        # The API server forbids saying anything about metadata.
        if is_field and path != ".metadata" and not node.get("description", "").strip()
    ]
    assert undescribed == []


def test_every_spec_field_comes_from_its_model_with_its_description() -> None:
    def check(model: type[BaseModel], node: Json) -> None:
        assert set(node["properties"]) == {
            field.alias or name for name, field in model.model_fields.items()
        }
        for name, field in model.model_fields.items():
            child = node["properties"][field.alias or name]
            assert child["description"] == field.description
            nested = _nested_model(field.annotation)
            if nested is not None:
                check(nested, child.get("items", child))

    for kind, model in KIND_SPECS.items():
        check(model, node_at(kind, "spec"))


def _nested_model(annotation: Any) -> type[BaseModel] | None:
    """The model a field holds: directly, in a list, or behind ``| None``."""
    if get_origin(annotation) is None and isinstance(annotation, type):
        return annotation if issubclass(annotation, BaseModel) else None
    for arg in get_args(annotation):
        found = _nested_model(arg)
        if found is not None:
            return found
    return None


def test_a_field_added_to_a_model_appears_with_no_other_change() -> None:
    class WithColour(ConnectionSpec):
        colour: str | None = Field(default=None, description="A colour.", max_length=20)

    node = model_schema(WithColour)["properties"]["colour"]
    assert node == {"description": "A colour.", "type": "string", "nullable": True, "maxLength": 20}


def test_a_field_the_crd_cannot_express_fails_loudly() -> None:
    class Undescribed(Spec):
        colour: str = ""

    class Ambiguous(Spec):
        amount: int | float = Field(default=0, description="An amount.")

    with pytest.raises(ValueError, match=r"Undescribed\.colour has no description"):
        model_schema(Undescribed)
    with pytest.raises(TypeError, match="union"):
        model_schema(Ambiguous)


# ---------------------------------------------------------------------------------------------
# Enums and bounds
# ---------------------------------------------------------------------------------------------

KIND_NAMES = [str(kind) for kind in Kind]


@pytest.mark.parametrize(
    ("kind", "path", "values"),
    [
        ("ExportPipeline", "spec.exportMode", ["CreateOnly", "UpdateOnly", "CreateOrUpdate"]),
        ("ExportPipeline", "spec.target", ["User"]),
        ("ExportPipeline", "spec.transformation.function.language", ["JavaScript", "Python"]),
        (
            "ExportPipeline",
            "spec.schedulePeriod",
            ["5m", "15m", "30m", "1h", "2h", "3h", "6h", "8h", "12h", "24h"],
        ),
        ("ExportPipeline", "spec.filter.logical", ["and", "or"]),
        ("ExportPipeline", "spec.filter.conditions[].operator", list(OPERATORS)),
        ("ExportPipeline", "spec.inSchema.kind", KIND_NAMES),
        ("ExportPipeline", "spec.outSchema.properties[].type.kind", KIND_NAMES),
        ("ExportPipeline", "spec.inSchema.elementType.properties[].type.kind", KIND_NAMES),
        ("Workspace", "spec.warehouse.type", ["PostgreSQL", "DuckDB"]),
        ("Workspace", "spec.profileSchema.kind", KIND_NAMES),
        ("Connection", "spec.role", ["Destination"]),
    ],
)
def test_closed_sets_are_enums(kind: str, path: str, values: list[str]) -> None:
    node = node_at(kind, path)
    assert node["type"] == "string"
    assert node["enum"] == values
    # The API server checks a null against the enum: a nullable enum would refuse `null`.
    assert not node.get("nullable")


@pytest.mark.parametrize(
    ("kind", "path", "bounds"),
    [
        ("ExportPipeline", "spec.name", {"type": "string", "minLength": 1, "maxLength": 60}),
        (
            "ExportPipeline",
            "spec.transformation.function.source",
            {"type": "string", "minLength": 1, "maxLength": 50000},
        ),
        (
            "ExportPipeline",
            "spec.scheduleStart",
            {"type": "integer", "minimum": 0, "maximum": 1439},
        ),
        ("Connection", "spec.id", {"type": "integer", "minimum": 1, "maximum": 2**31 - 1}),
        (
            "ExportPipeline",
            "spec.connection",
            {"x-kubernetes-int-or-string": True, "minimum": 1, "maximum": 2**31 - 1},
        ),
    ],
)
def test_bounds(kind: str, path: str, bounds: Json) -> None:
    node = node_at(kind, path)
    assert {key: node.get(key) for key in bounds} == bounds


@pytest.mark.parametrize(
    ("kind", "path"),
    [
        ("ExportPipeline", "spec.filter"),
        ("ExportPipeline", "spec.filter.conditions[].values"),
        ("ExportPipeline", "spec.matching"),
        ("ExportPipeline", "spec.transformation"),
        ("ExportPipeline", "spec.transformation.mapping"),
        ("ExportPipeline", "spec.transformation.function"),
        ("ExportPipeline", "spec.inSchema"),
        ("ExportPipeline", "spec.outSchema"),
        ("ExportPipeline", "spec.scheduleStart"),
        ("ExportPipeline", "spec.connection"),
        ("Workspace", "spec.warehouse.dsnSecretRef"),
    ],
)
def test_null_is_kept_where_the_api_writes_it(kind: str, path: str) -> None:
    assert node_at(kind, path)["nullable"] is True


# ---------------------------------------------------------------------------------------------
# Schemas of the type system
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("kind", "path"), SCHEMA_PATHS)
def test_schemas_are_typed_to_a_fixed_depth_then_kept_as_written(kind: str, path: str) -> None:
    through_properties = path + ".properties[].type" * (SCHEMA_TYPE_DEPTH - 1)
    through_elements = path + ".elementType" * (SCHEMA_TYPE_DEPTH - 1)
    for deepest_typed in (through_properties, through_elements):
        members = node_at(kind, deepest_typed)["properties"]
        assert {"kind", "elementType", "properties", "maxLength", "precision"} <= members.keys()
        nested_types = (
            members["elementType"],
            members["properties"]["items"]["properties"]["type"],
        )
        for nested in nested_types:
            assert nested["type"] == "object"
            assert nested["x-kubernetes-preserve-unknown-fields"] is True
            assert "properties" not in nested


@pytest.mark.parametrize(("kind", "path"), SCHEMA_PATHS)
def test_schemas_hold_no_cel_rules(kind: str, path: str) -> None:
    # The trees are unrolled: a rule inside would be compiled and costed once per copy.
    assert not any(
        "x-kubernetes-validations" in node for _, node, _ in schema_nodes(node_at(kind, path))
    )


def test_type_bounds_accept_numbers_and_decimal_strings() -> None:
    for bound in ("minimum", "maximum"):
        node = node_at("ExportPipeline", f"spec.inSchema.{bound}")
        assert "type" not in node and node["x-kubernetes-preserve-unknown-fields"] is True
    spec = copy.deepcopy(SEED_PAYLOAD)
    spec["inSchema"]["properties"].append(
        {
            "name": "score",
            "type": {"kind": "decimal", "precision": 40, "minimum": "-1e30", "maximum": 1.5},
            "readOptional": True,
        }
    )
    assert spec_problems("ExportPipeline", spec) == []


def test_types_and_properties_declare_exactly_the_members_the_parser_reads() -> None:
    # A member the CRD does not declare would be pruned (or refused) before Sluice could read it.
    schema = node_at("ExportPipeline", "spec.inSchema")
    assert set(schema["properties"]) == set(schema_types.TYPE_KEYS)
    prop = node_at("ExportPipeline", "spec.inSchema.properties[]")
    assert set(prop["properties"]) == set(schema_types.PROPERTY_KEYS)
    assert prop["required"] == ["name", "type"]


# ---------------------------------------------------------------------------------------------
# CEL rules
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "path", "message", "fields"),
    [
        (
            "ExportPipeline",
            "spec.transformation",
            "pipeline cannot have both transformation mapping and function",
            {"mapping", "function"},
        ),
        (
            "ExportPipeline",
            "spec.transformation",
            "pipeline cannot have a transformation without mapping and function.",
            {"mapping", "function"},
        ),
        ("ExportPipeline", "spec.matching", "input matching property cannot be empty", {"in"}),
        ("ExportPipeline", "spec.matching", "output matching property cannot be empty", {"out"}),
        (
            "ExportPipeline",
            "spec.filter.conditions[]",
            "'values cannot be used with the operator \"' + self.operator + '\"'",
            {"values", "operator"},
        ),
        (
            "Workspace",
            "spec.warehouse",
            "a PostgreSQL warehouse needs dsnSecretRef",
            {"type", "dsnSecretRef"},
        ),
        (
            "Workspace",
            "spec.warehouse",
            "a DuckDB warehouse needs exactly one of path and dsnSecretRef",
            {"type", "path", "dsnSecretRef"},
        ),
        ("Workspace", "spec.warehouse", "path is only for DuckDB warehouses", {"type", "path"}),
    ],
)
def test_cheap_invariants_are_cel_rules(
    kind: str, path: str, message: str, fields: set[str]
) -> None:
    rule = rules_at(kind, path)[message]["rule"]
    assert cel_fields(rule) == fields


def cel_fields(rule: str) -> set[str]:
    """The fields a rule reads, unescaped (`__in__` is `in`)."""
    return {re.sub(r"^__(.*)__$", r"\1", name) for name in re.findall(r"self\.(\w+)", rule)}


@pytest.mark.parametrize("kind", KINDS)
def test_cel_rules_name_fields_of_their_object(kind: str) -> None:
    # The API server refuses a CRD whose rule reads an undeclared field, such as a renamed one.
    for path, node, _ in schema_nodes(openapi(kind)):
        for rule in node.get("x-kubernetes-validations", []):
            assert cel_fields(rule["rule"]) <= node["properties"].keys(), path


def test_cel_keywords_are_escaped() -> None:
    # `in` and `function` are CEL reserved words: the API server names them `__in__`, ...
    for path in ("spec.matching", "spec.transformation"):
        for rule in node_at("ExportPipeline", path)["x-kubernetes-validations"]:
            assert not re.search(r"self\.(in|function)\b", rule["rule"])


def test_the_unary_operator_rule_lists_exactly_the_operators_without_values() -> None:
    rule = rules_at("ExportPipeline", "spec.filter.conditions[]")
    listed = re.findall(r"'([a-z ]+)'", next(iter(rule.values()))["rule"])
    assert sorted(listed) == sorted(
        [
            *("is true", "is false", "is empty", "is not empty"),
            *("is null", "is not null", "exists", "does not exist"),
        ]
    )
    # Affordable only because an operator is required: it bounds how many conditions fit.
    assert node_at("ExportPipeline", "spec.filter.conditions[]")["required"] == ["operator"]


# ---------------------------------------------------------------------------------------------
# Names, status and printer columns
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "plural", "short_names"),
    [
        ("Workspace", "workspaces", ["sws"]),
        ("Connection", "connections", ["sconn"]),
        ("ExportPipeline", "exportpipelines", ["exportpipe", "spipe"]),
    ],
)
def test_names(kind: str, plural: str, short_names: list[str]) -> None:
    crd = CRDS[kind]
    assert crd["metadata"]["name"] == f"{plural}.sluice.dev"
    assert crd["spec"]["group"] == "sluice.dev"
    assert crd["spec"]["scope"] == "Namespaced"
    assert crd["spec"]["names"] == {
        "kind": kind,
        "listKind": kind + "List",
        "plural": plural,
        "singular": kind.lower(),
        "shortNames": short_names,
        "categories": ["sluice"],
    }
    assert not TAKEN_SHORT_NAMES & set(short_names)


def test_short_names_are_unique() -> None:
    names = [name for crd in CRDS.values() for name in crd["spec"]["names"]["shortNames"]]
    assert len(names) == len(set(names))


@pytest.mark.parametrize("kind", KINDS)
def test_status_is_a_subresource_keeping_unknown_members(kind: str) -> None:
    version = CRDS[kind]["spec"]["versions"][0]
    assert (version["name"], version["served"], version["storage"]) == ("v1", True, True)
    assert version["subresources"] == {"status": {}}
    status = node_at(kind, "status")
    assert status["x-kubernetes-preserve-unknown-fields"] is True
    assert status["properties"]["observedGeneration"]["type"] == "integer"
    assert ("id" in status["properties"]) == (kind == "ExportPipeline")
    conditions = status["properties"]["conditions"]
    assert conditions["x-kubernetes-list-map-keys"] == ["type"]
    condition = conditions["items"]
    assert set(condition["properties"]) == {
        "type",
        "status",
        "reason",
        "message",
        "observedGeneration",
        "lastTransitionTime",
    }
    assert set(condition["required"]) == set(condition["properties"]) - {"observedGeneration"}
    assert condition["properties"]["status"]["enum"] == ["True", "False", "Unknown"]
    unknown = {"lastRun": {"finishedAt": "2025-01-01T00:00:00Z"}, "kopf": {"progress": {}}}
    assert problems(unknown, status, "status") == []


READY = '.status.conditions[?(@.type=="Ready")].status'
READY_MESSAGE = '.status.conditions[?(@.type=="Ready")].message'
AGE = ".metadata.creationTimestamp"


@pytest.mark.parametrize(
    ("kind", "columns"),
    [
        (
            "ExportPipeline",
            [
                ("Ready", "string", READY, 0),
                ("Status", "string", READY_MESSAGE, 0),
                ("Mode", "string", ".spec.exportMode", 0),
                ("Schedule", "string", ".spec.schedulePeriod", 0),
                ("Enabled", "boolean", ".spec.enabled", 0),
                ("Last Run", "date", ".status.lastRun.finishedAt", 0),
                ("Age", "date", AGE, 0),
                ("Connection", "string", ".spec.connection", 1),
                ("Id", "integer", ".status.id", 1),
            ],
        ),
        (
            "Workspace",
            [
                ("Ready", "string", READY, 0),
                ("Warehouse", "string", ".spec.warehouse.type", 0),
                ("Age", "date", AGE, 0),
                ("Status", "string", READY_MESSAGE, 1),
            ],
        ),
        (
            "Connection",
            [
                ("Ready", "string", READY, 0),
                ("Connector", "string", ".spec.connector", 0),
                ("Id", "integer", ".spec.id", 0),
                ("Age", "date", AGE, 0),
                ("Status", "string", READY_MESSAGE, 1),
            ],
        ),
    ],
)
def test_printer_columns(kind: str, columns: list[tuple[str, str, str, int]]) -> None:
    declared = CRDS[kind]["spec"]["versions"][0]["additionalPrinterColumns"]
    assert [
        (c["name"], c["type"], c["jsonPath"], c.get("priority", 0)) for c in declared
    ] == columns
    assert all(column["description"] for column in declared)


# ---------------------------------------------------------------------------------------------
# Documents the API server accepts and refuses
# ---------------------------------------------------------------------------------------------


def test_the_seed_payload_is_accepted() -> None:
    assert spec_problems("ExportPipeline", SEED_PAYLOAD) == []


@pytest.mark.parametrize(("file", "kind", "spec"), list(example_specs()))
def test_the_examples_are_accepted(file: str, kind: str, spec: Any) -> None:
    assert spec_problems(kind, spec) == []


def test_nulls_are_accepted_where_the_api_allows_them() -> None:
    spec = copy.deepcopy(SEED_PAYLOAD)
    spec.update(filter=None, schedulePeriod=None, scheduleStart=None, target=None)
    spec["transformation"]["function"] = None
    assert spec_problems("ExportPipeline", spec) == []


IN_PROPERTY: Location = ("inSchema", "properties", 0)


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        (put(("colour",), "blue"), "spec.colour: unknown field"),
        (put(("matching", "weight"), 1), "spec.matching.weight: unknown field"),
        (
            put((*IN_PROPERTY, "type", "elements"), {"kind": "string"}),
            "spec.inSchema.properties[0].type.elements: unknown field",
        ),
        (put(("exportMode",), "Upsert"), "spec.exportMode: not one of the allowed values"),
        (put(("target",), "Event"), "spec.target: not one of the allowed values"),
        (put(("name",), ""), "spec.name: length out of bounds"),
        (put(("name",), "x" * 61), "spec.name: length out of bounds"),
        (put(("scheduleStart",), 1440), "spec.scheduleStart: out of range"),
        (put(("connection",), 0), "spec.connection: out of range"),
        (put(("connection",), 1.5), "spec.connection: must be an integer or a string"),
        (put(("enabled",), "yes"), "spec.enabled: must be of type boolean"),
        (
            put(("filter", "conditions", 0, "operator"), "equals"),
            "spec.filter.conditions[0].operator: not one of the allowed values",
        ),
        (
            put((*IN_PROPERTY, "type", "kind"), "text"),
            "spec.inSchema.properties[0].type.kind: not one of the allowed values",
        ),
        (
            put((*IN_PROPERTY, "type", "maxLength"), "100"),
            "spec.inSchema.properties[0].type.maxLength: must be of type integer",
        ),
        (
            put(("outSchema", "properties", 0, "type", "properties", 0, "name"), None),
            "spec.outSchema.properties[0].type.properties[0].name: required",
        ),
        (
            put(("transformation", "mapping", "contact.city"), 1),
            "spec.transformation.mapping.contact.city: must be of type string",
        ),
    ],
)
def test_invalid_payloads_are_refused(change: Callable[[Json], None], problem: str) -> None:
    spec = copy.deepcopy(SEED_PAYLOAD)
    change(spec)
    assert spec_problems("ExportPipeline", spec) == [problem]


def test_types_below_the_typed_depth_are_kept_as_written() -> None:
    # Arrays nested SCHEMA_TYPE_DEPTH deep, around a string with a member no type has.
    nested: Json = {"kind": "string", "anything": True}
    for _ in range(SCHEMA_TYPE_DEPTH):
        nested = {"kind": "array", "elementType": nested}
    spec = copy.deepcopy(SEED_PAYLOAD)
    spec["outSchema"] = nested
    assert spec_problems("ExportPipeline", spec) == []

    deepest_typed = nested
    for _ in range(SCHEMA_TYPE_DEPTH - 1):
        deepest_typed = deepest_typed["elementType"]
    deepest_typed["anything"] = True
    path = "spec.outSchema" + ".elementType" * (SCHEMA_TYPE_DEPTH - 1)
    assert spec_problems("ExportPipeline", spec) == [f"{path}.anything: unknown field"]
