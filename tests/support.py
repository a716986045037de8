"""Shared test data: the examples' seed pipeline and its namespace, ready to mutate."""

from __future__ import annotations

import copy
import functools
import socket
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from sluice.apps.catalog import CONNECTORS
from sluice.manifests import read_manifests
from sluice.model.capabilities import Capabilities
from sluice.model.connection import validate_connection
from sluice.model.pipeline import ConnectionEntry, Pipeline, PipelineContext, validate_pipeline
from sluice.model.resources import Resource
from sluice.model.specs import FUNCTION_LANGUAGES, WAREHOUSE_TYPES
from sluice.model.types import Kind, Property, Type
from sluice.model.workspace import validate_workspace

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
SEED_ID = 705981339

# The create request of the seed document ("POST /v1/pipelines"), exactly as written there.
SEED_PAYLOAD: dict[str, Any] = {
    "name": "Export customers",
    "connection": 230527183,
    "target": "User",
    "enabled": True,
    "filter": {
        "logical": "and",
        "conditions": [{"property": "address.country", "operator": "is", "values": ["US"]}],
    },
    "matching": {"in": "email", "out": "contact.email"},
    "exportMode": "CreateOnly",
    "updateOnDuplicates": False,
    "transformation": {
        "mapping": {"contact.firstname": "first_name", "contact.lastname": "last_name"}
    },
    "inSchema": {
        "kind": "object",
        "properties": [
            {
                "name": "first_name",
                "type": {"kind": "string", "maxLength": 100},
                "readOptional": True,
                "description": "First name",
            },
            {
                "name": "last_name",
                "type": {"kind": "string", "maxLength": 100},
                "readOptional": True,
                "description": "Last name",
            },
            {
                "name": "email",
                "type": {"kind": "string", "maxLength": 254},
                "readOptional": True,
                "description": "Email",
            },
            {
                "name": "address",
                "type": {
                    "kind": "object",
                    "properties": [
                        {
                            "name": "country",
                            "type": {"kind": "string", "maxLength": 2},
                            "readOptional": True,
                            "description": "Country",
                        }
                    ],
                },
                "readOptional": True,
                "description": "Address",
            },
        ],
    },
    "outSchema": {
        "kind": "object",
        "properties": [
            {
                "name": "contact",
                "type": {
                    "kind": "object",
                    "properties": [
                        {
                            "name": "email",
                            "type": {"kind": "string"},
                            "nullable": True,
                            "description": "Email",
                        },
                        {
                            "name": "firstname",
                            "type": {"kind": "string"},
                            "nullable": True,
                            "description": "First Name",
                        },
                        {
                            "name": "lastname",
                            "type": {"kind": "string"},
                            "nullable": True,
                            "description": "Last Name",
                        },
                    ],
                },
            }
        ],
    },
}

#: Every connector the catalog lists, every function language and warehouse type: for tests of
#: the validation rules themselves, whatever this installation can run.
EVERYTHING = Capabilities(
    frozenset(CONNECTORS), frozenset(FUNCTION_LANGUAGES), frozenset(WAREHOUSE_TYPES)
)


@functools.cache
def _examples() -> tuple[Resource, ...]:
    return tuple(o.resource for o in read_manifests([EXAMPLES]).objects)


@functools.cache
def _example_specs() -> dict[tuple[str, str], Any]:
    return {(r.kind, r.name): r.spec for r in _examples()}


def example_names(namespace: str, kind: str | None = None) -> list[str]:
    """The sorted names of the examples' Sluice objects in `namespace` (of `kind` if given):
    what a test counting or listing them expects, however many examples there are."""
    return sorted(
        r.name for r in _examples() if r.namespace == namespace and kind in (None, r.kind)
    )


def example_spec(kind: str, name: str) -> dict[str, Any]:
    """A deep copy (tests change it) of the spec of an example resource."""
    spec = _example_specs()[kind, name]
    assert isinstance(spec, dict)
    return copy.deepcopy(spec)


def seed_spec() -> dict[str, Any]:
    return example_spec("ExportPipeline", "export-customers")


def marketing_context(**overrides: Any) -> PipelineContext:
    """The examples' namespace: its Workspace and its HubSpot Connection."""
    workspace = validate_workspace("marketing", "marketing", example_spec("Workspace", "marketing"))
    connection = validate_connection(
        "marketing", "hubspot", example_spec("Connection", "hubspot"), CONNECTORS
    )
    entry = ConnectionEntry("hubspot", connection.id, connection)
    fields: dict[str, Any] = {"workspace": workspace, "connections": [entry]}
    fields.update(overrides)
    return PipelineContext(**fields)


def validate(spec: Any, context: PipelineContext | None = None) -> Pipeline:
    return validate_pipeline(
        "marketing", "export-customers", spec, SEED_ID, context or marketing_context()
    )


#: A location in a spec: member names and list indexes.
Location = tuple[str | int, ...]
#: A change made to a spec in place.
Edit = Callable[[dict[str, Any]], None]


def _parent(spec: dict[str, Any], path: Location) -> Any:
    target: Any = spec
    for step in path[:-1]:
        target = target[step]
    return target


def put(path: Location, value: Any) -> Edit:
    """An edit setting the member at ``path`` of a spec."""

    def edit(spec: dict[str, Any]) -> None:
        _parent(spec, path)[path[-1]] = value

    return edit


def drop(path: Location) -> Edit:
    """An edit removing the member at ``path`` of a spec."""

    def edit(spec: dict[str, Any]) -> None:
        del _parent(spec, path)[path[-1]]

    return edit


def optional(name: str, t: Type, *, nullable: bool = False) -> Property:
    """A property profiles may lack, as the filter tests' schemas declare them."""
    return Property(name, t, read_optional=True, nullable=nullable)


def array_of(t: Type) -> Type:
    return Type(Kind.ARRAY, element_type=t)


def free_port() -> int:
    """A loopback TCP port free right now (a server started soon after can bind it)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


#: A `transform` doing what the seed pipeline's mapping does, in each function language.
SEED_FUNCTIONS = {
    "Python": (
        "def transform(profile):\n"
        '    return {"contact": {"firstname": profile.get("first_name"),\n'
        '                        "lastname": profile.get("last_name")}}\n'
    ),
    "JavaScript": (
        "function transform(profile) {\n"
        "  return { contact: { firstname: profile.first_name ?? null,\n"
        "                      lastname: profile.last_name ?? null } };\n"
        "}\n"
    ),
}


def seed_with_function(language: str, source: str | None = None) -> str:
    """The seed pipeline's manifest with a function transformation in `language` instead of
    its mapping: `source` (lines as a manifest holds them), or by default the function in
    SEED_FUNCTIONS that does what the mapping did."""
    if source is None:
        source = SEED_FUNCTIONS[language]
    mapping = (
        "    mapping:\n      contact.firstname: first_name\n      contact.lastname: last_name\n"
    )
    chomping = "" if source.endswith("\n") else "-"  # a block scalar adds a last newline
    block = textwrap.indent(source.removesuffix("\n"), " " * 8)
    function = (
        f"    function:\n      language: {language}\n      source: |{chomping}\n{block}\n"
        "      inPaths: [first_name, last_name]\n"
        "      outPaths: [contact.firstname, contact.lastname]\n"
    )
    text = (EXAMPLES / "seed-pipeline.yaml").read_text(encoding="utf-8")
    assert mapping in text
    written = text.replace(mapping, function)
    # The block scalar holds the source exactly (a first line indented or trailing blank
    # lines would need more than this helper writes).
    assert yaml.safe_load(written)["spec"]["transformation"]["function"]["source"] == source
    return written
