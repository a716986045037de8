"""The Workspace resource: the warehouse profiles come from, and their schema."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from sluice.model.decoding import decode_schema, decode_spec
from sluice.model.errors import ApiError, bad_request
from sluice.model.specs import ApiKeysSecretRef, SecretKeyRef, WorkspaceSpec
from sluice.model.types import (
    CONTAINER_KINDS,
    Kind,
    Type,
    column_name,
    is_meta_property,
    walk_properties,
)

# An SQL identifier both warehouses accept unquoted-style; a table may be schema-qualified.
_IDENTIFIER = r"[A-Za-z_][A-Za-z0-9_]{0,62}"
_TABLE_RE = re.compile(rf"(?:{_IDENTIFIER}\.)?{_IDENTIFIER}\Z")
_COLUMN_RE = re.compile(rf"{_IDENTIFIER}\Z")


@dataclass(frozen=True)
class Warehouse:
    type: str
    dsn_secret: SecretKeyRef | None
    path: str | None
    profiles_table: str
    profile_id_column: str


@dataclass(frozen=True)
class Workspace:
    namespace: str
    resource_name: str
    warehouse: Warehouse
    profile_schema: Type
    api_keys_secret: ApiKeysSecretRef | None


def validate_workspace(namespace: str, name: str, data: Any) -> Workspace:
    spec = decode_spec(WorkspaceSpec, data)
    warehouse = _validate_warehouse(spec)
    profile_schema = decode_schema(spec.profile_schema, ("spec", "profileSchema"))
    if profile_schema.kind is not Kind.OBJECT:
        raise bad_request("profile schema must be an object", ("spec", "profileSchema"))
    check_profile_schema(profile_schema)
    return Workspace(
        namespace=namespace,
        resource_name=name,
        warehouse=warehouse,
        profile_schema=profile_schema,
        api_keys_secret=spec.api_keys_secret_ref,
    )


def _validate_warehouse(spec: WorkspaceSpec) -> Warehouse:
    warehouse = spec.warehouse
    where = ("spec", "warehouse")
    if warehouse.type == "PostgreSQL":
        if warehouse.dsn_secret_ref is None:
            raise bad_request("a PostgreSQL warehouse needs dsnSecretRef", where)
        if warehouse.path is not None:
            raise bad_request("path is only for DuckDB warehouses", (*where, "path"))
    elif (warehouse.dsn_secret_ref is None) == (warehouse.path is None):
        raise bad_request("a DuckDB warehouse needs exactly one of path and dsnSecretRef", where)
    if not _TABLE_RE.match(warehouse.profiles_table):
        raise bad_request(
            f'profiles table "{warehouse.profiles_table}" is not a valid table name',
            (*where, "profilesTable"),
        )
    if not _COLUMN_RE.match(warehouse.profile_id_column):
        raise bad_request(
            f'profile id column "{warehouse.profile_id_column}" is not a valid column name',
            (*where, "profileIdColumn"),
        )
    return Warehouse(
        type=warehouse.type,
        dsn_secret=warehouse.dsn_secret_ref,
        path=warehouse.path,
        profiles_table=warehouse.profiles_table,
        profile_id_column=warehouse.profile_id_column,
    )


def check_profile_schema(schema: Type) -> None:
    """The constraints every profile schema meets: each property can be absent in the
    warehouse (readOptional), is never null (NULL means absent), is no destination concept, and
    flattens to a column of its own."""
    location = ("spec", "profileSchema")
    for path, prop in walk_properties(schema):

        def fail(problem: str, path: str = path) -> ApiError:
            return bad_request(f'profile schema property "{path}" {problem}', location)

        t = prop.type
        if is_meta_property(prop.name):
            raise fail("is a meta property: names starting with '_' are reserved")
        if not prop.read_optional:
            raise fail("must have ReadOptional set to true")
        if prop.nullable:
            raise fail("cannot have Nullable set to true")
        if prop.create_required or prop.update_required:
            raise fail("cannot be required for creation or update")
        if prop.prefilled:
            raise fail("cannot have a prefilled value")
        if t.kind is Kind.STRING and (t.values is not None or t.pattern is not None):
            raise fail("cannot have values or a pattern")
        if t.element_type is not None and t.element_type.kind in CONTAINER_KINDS:
            raise fail(f"cannot have type {t}")
        if t.kind is Kind.ARRAY and (t.min_elements or t.max_elements is not None):
            raise fail("cannot limit its number of elements")
        if t.unique_elements:
            raise fail("cannot require unique elements")
    column = first_column_collision(schema)
    if column:
        raise bad_request(
            f'two profile schema properties would have the same column name "{column}" in the '
            "data warehouse, case-insensitively",
            location,
        )


def first_column_collision(schema: Type) -> str | None:
    """The first flattened column name two leaf properties share, ignoring case."""
    seen: set[str] = set()
    for path, prop in walk_properties(schema):
        if prop.type.kind is Kind.OBJECT:
            continue
        column = column_name(path).lower()
        if column in seen:
            return column
        seen.add(column)
    return None
