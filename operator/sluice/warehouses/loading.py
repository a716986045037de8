"""Create a profiles table from a profile schema and load profiles into it.

Used by the demo, the tests and the benchmarks to build warehouses shaped as Sluice reads them:
one row per profile, an id column, nested properties flattened into columns
(``address.country`` → ``address_country``). PostgreSQL loads with ``COPY``, DuckDB from
column lists, so a million profiles load in seconds.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from sluice.filters.sql import Dialect, column_type, quote
from sluice.model.types import Kind, Type, column_name, leaf_paths, property_by_path
from sluice.model.values import value_at
from sluice.warehouses.base import Warehouse

_JSON_TYPES = {"postgresql": "JSONB", "duckdb": "JSON"}


def sql_type(t: Type, dialect: Dialect) -> str:
    """The column type of a property: as filters expect it, JSON for json and maps."""
    if t.kind in (Kind.JSON, Kind.MAP):
        return _JSON_TYPES[dialect]
    return column_type(t, dialect)


def create_profiles_table(
    warehouse: Warehouse, table: str, id_column: str, schema: Type, id_type: str = "TEXT"
) -> None:
    """Create (replacing) the table, with the id column as primary key."""
    dialect = warehouse.dialect
    columns = [f"{quote(id_column)} {id_type} PRIMARY KEY"] + [
        f"{quote(column_name(path))} {sql_type(property_by_path(schema, path).type, dialect)}"
        for path in leaf_paths(schema)
    ]
    warehouse.execute(f"DROP TABLE IF EXISTS {quote(table)}")
    warehouse.execute(f"CREATE TABLE {quote(table)} ({', '.join(columns)})")


def insert_profiles(
    warehouse: Warehouse,
    table: str,
    id_column: str,
    schema: Type,
    profiles: Iterable[tuple[object, Mapping[str, Any]]],
) -> int:
    """Insert ``(id, profile)`` pairs; profiles hold values as :mod:`sluice.model.values`
    decodes them (absent properties are NULL). Returns how many were inserted."""
    paths = leaf_paths(schema)
    kinds = [property_by_path(schema, path).type for path in paths]
    rows = [
        (
            profile_id,
            *(_column_value(value_at(profile, p), t) for p, t in zip(paths, kinds, strict=True)),
        )
        for profile_id, profile in profiles
    ]
    if not rows:
        return 0
    names = [id_column, *(column_name(p) for p in paths)]
    dialect = warehouse.dialect
    types = ["TEXT" if dialect == "postgresql" else "VARCHAR"] + [
        sql_type(t, dialect) for t in kinds
    ]
    warehouse.load_rows(table, names, types, rows)
    return len(rows)


def _column_value(value: Any, t: Type) -> Any:
    if value is None:
        return None
    if t.kind in (Kind.JSON, Kind.MAP):
        return json.dumps(value)
    if t.kind is Kind.DATETIME and isinstance(value, datetime):
        return value.astimezone(UTC).replace(tzinfo=None)
    if t.kind is Kind.IP:
        return str(value)
    if t.kind is Kind.ARRAY and t.element_type is not None:
        element = t.element_type
        return [_column_value(v, element) for v in value]
    return value
