"""Schemas read from where the data is: the application's, as its connector discovers it (what a
pipeline's ``outSchema`` must align with), and the profiles table's, from the warehouse's
catalog (what a Workspace's ``profileSchema`` describes). ``sluice schema`` prints them as YAML
to paste into a manifest; ``sluice validate --online`` checks pipelines against the first.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

import yaml

from sluice.apps.connector import ConnectorError
from sluice.apps.registry import connector_factory
from sluice.model.connection import Connection
from sluice.model.types import (
    Kind,
    Property,
    Type,
    column_name,
    leaf_paths,
    object_type,
    property_by_path,
    prune,
    type_to_json,
    walk_properties,
)
from sluice.model.workspace import Workspace
from sluice.warehouses import WarehouseError, open_warehouse


class DiscoveryError(Exception):
    """A schema could not be read: the message says why, in one line."""


async def application_schema(connection: Connection, credentials: Mapping[str, str]) -> Type:
    """The properties the Connection's application accepts, read-only ones left out."""
    try:
        connector = connector_factory(connection.connector)(connection.settings, credentials)
    except (KeyError, ConnectorError) as err:
        raise DiscoveryError(str(err).strip("'\"")) from None
    try:
        return await connector.destination_schema()
    except ConnectorError as err:
        raise DiscoveryError(str(err)) from None
    finally:
        await connector.aclose()


# -- the profiles table --------------------------------------------------------------------------

_INTS = {"tinyint": 8, "smallint": 16, "int2": 16, "integer": 32, "int": 32, "int4": 32}
_INTS |= {"bigint": 64, "int8": 64}
_UINTS = {"utinyint": 8, "usmallint": 16, "uinteger": 32, "ubigint": 64}
_SIMPLE = {
    "boolean": Kind.BOOLEAN,
    "bool": Kind.BOOLEAN,
    "date": Kind.DATE,
    "uuid": Kind.UUID,
    "json": Kind.JSON,
    "jsonb": Kind.JSON,
    "inet": Kind.IP,
}
_DECIMAL = re.compile(r"(?:decimal|numeric)\((\d+),\s*(\d+)\)")


def column_type(data_type: str, max_length: int | None, precision: Any, scale: Any) -> Type | None:
    """Our type for a column as the catalog describes it (PostgreSQL's or DuckDB's
    ``information_schema.columns``); None for a type Sluice cannot read."""
    name = data_type.strip().lower()
    if name.endswith("[]"):
        element = column_type(name[:-2], None, None, None)
        return None if element is None else Type(Kind.ARRAY, element_type=element)
    if name in _INTS:
        return Type(Kind.INT, bit_size=_INTS[name])
    if name in _UINTS:
        return Type(Kind.INT, bit_size=_UINTS[name], unsigned=True)
    if name in _SIMPLE:
        return Type(_SIMPLE[name])
    if name in ("text", "varchar", "character varying", "character", "char", "bpchar"):
        return Type(Kind.STRING, max_length=max_length)
    if name in ("real", "float", "float4"):
        return Type(Kind.FLOAT, bit_size=32)
    if name in ("double precision", "double", "float8"):
        return Type(Kind.FLOAT, bit_size=64)
    if name.startswith("timestamp"):
        return Type(Kind.DATETIME)
    if name.startswith("time"):
        return Type(Kind.TIME)
    decimal = _DECIMAL.fullmatch(name)
    if decimal is not None:
        return Type(Kind.DECIMAL, precision=int(decimal[1]), scale=int(decimal[2]))
    if name in ("decimal", "numeric") and precision is not None:
        return Type(Kind.DECIMAL, precision=int(precision), scale=int(scale or 0))
    return None


def profile_schema(workspace: Workspace, dsn: str | None) -> tuple[Type, list[str]]:
    """The profiles table's columns as a profile schema, and the columns skipped (their type is
    one Sluice cannot read). A column of a property the Workspace already declares keeps that
    property's path (``address_country`` → ``address.country``); the others are top-level
    properties named after their column. Every property is optional for reading and nullable,
    as any column may hold NULL."""
    warehouse = workspace.warehouse
    try:
        opened = open_warehouse(warehouse.type, dsn=dsn, path=warehouse.path)
    except WarehouseError as err:
        raise DiscoveryError(str(err)) from None
    try:
        columns = opened.table_column_details(warehouse.profiles_table)
    except WarehouseError as err:
        raise DiscoveryError(str(err)) from None
    finally:
        opened.close()
    if not columns:
        raise DiscoveryError(f'the warehouse has no table "{warehouse.profiles_table}"')
    declared = {column_name(path): path for path in leaf_paths(workspace.profile_schema)}
    schema: dict[str, Any] = {}
    skipped = []
    for name, data_type, max_length, precision, scale, element in columns:
        if name == warehouse.profile_id_column:
            continue
        # PostgreSQL says "ARRAY", and names the element type "_text".
        declared_type = data_type if element is None else element.removeprefix("_") + "[]"
        t = column_type(declared_type, max_length, precision, scale)
        if t is None:
            skipped.append(f"{name} ({data_type})")
            continue
        path: str = declared.get(name) or name
        description = ""
        if path != name:
            description = property_by_path(workspace.profile_schema, path).description
        _put(schema, path.split("."), t, description)
    return _object(schema), skipped


def _put(tree: dict[str, Any], names: list[str], t: Type, description: str) -> None:
    if len(names) == 1:
        tree[names[0]] = Property(
            names[0], t, read_optional=True, nullable=True, description=description
        )
        return
    _put(tree.setdefault(names[0], {}), names[1:], t, description)


def _object(tree: Mapping[str, Any]) -> Type:
    properties = [
        value if isinstance(value, Property) else Property(name, _object(value), read_optional=True)
        for name, value in tree.items()
    ]
    return object_type(*properties)


# -- printing --------------------------------------------------------------------------------


def select(schema: Type, paths: Sequence[str]) -> Type:
    """The schema restricted to ``paths`` (an object keeps its whole subtree); an unknown path
    is refused, with the schema's top-level names."""
    known = {path for path, _ in walk_properties(schema)}
    for path in paths:
        if path not in known:
            names = ", ".join(p.name for p in schema.properties)
            raise DiscoveryError(f'there is no property "{path}" (top-level properties: {names})')
    return prune(schema, paths)


def schema_yaml(schema: Type) -> str:
    """The schema as the API writes it, in YAML ready to paste under ``outSchema:`` or
    ``profileSchema:``."""
    return yaml.safe_dump(
        _without_empty_descriptions(type_to_json(schema)),
        sort_keys=False,
        allow_unicode=True,
        default_flow_style=False,
    )


def _without_empty_descriptions(value: Any) -> Any:
    if isinstance(value, dict):
        return {
            k: _without_empty_descriptions(v)
            for k, v in value.items()
            if not (k == "description" and v == "")
        }
    if isinstance(value, list):
        return [_without_empty_descriptions(v) for v in value]
    return value
