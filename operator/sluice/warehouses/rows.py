"""Warehouse rows as profiles: flattened columns back into nested records.

The database drivers already return most values as :mod:`sluice.model.values` holds them; the
rest is converted here: timestamps (stored as UTC without a zone) become aware UTC datetimes,
JSON text becomes JSON values, PostgreSQL's unsigned 64-bit ``NUMERIC`` becomes ``int``, and
``inet`` values become addresses. A NULL column is an absent property.
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sluice.filters.sql import Dialect
from sluice.model.types import Kind, Type, property_by_path

Convert = Callable[[Any], Any]


def _datetime(value: datetime) -> datetime:
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def _json_text(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value


def _address(value: Any) -> Any:
    if isinstance(value, ipaddress.IPv4Interface | ipaddress.IPv6Interface):
        return value.ip
    if isinstance(value, str):
        return ipaddress.ip_address(value)
    return value


def _integer(value: Any) -> Any:
    return int(value) if isinstance(value, Decimal) else value


def converter(t: Type, dialect: Dialect) -> Convert | None:
    """How a column value of type ``t`` becomes a profile value; None when it already is."""
    match t.kind:
        case Kind.DATETIME:
            return _datetime
        case Kind.JSON | Kind.MAP if dialect == "duckdb":
            return _json_text
        case Kind.IP:
            return _address
        case Kind.INT:
            return _integer if t.unsigned and t.bit_size == 64 else None
        case Kind.ARRAY:
            assert t.element_type is not None
            element = converter(t.element_type, dialect)
            if element is None:
                return None
            return lambda values: [None if v is None else element(v) for v in values]
    return None


class ProfileBuilder:
    """Builds the nested profile of a row's leading columns, one per input path."""

    def __init__(self, in_schema: Type, paths: Sequence[str], dialect: Dialect) -> None:
        # Top-level columns kept as they come are copied by one comprehension, the rest one by
        # one: most columns of most schemas are the former.
        self._plain: list[tuple[int, str]] = []
        self._others: list[tuple[int, tuple[str, ...], str, Convert | None]] = []
        for index, path in enumerate(paths):
            *parents, leaf = path.split(".")
            convert = converter(property_by_path(in_schema, path).type, dialect)
            if parents or convert is not None:
                self._others.append((index, tuple(parents), leaf, convert))
            else:
                self._plain.append((index, leaf))

    def profile(self, row: Sequence[Any]) -> dict[str, Any]:
        profile = {leaf: row[index] for index, leaf in self._plain if row[index] is not None}
        for index, parents, leaf, convert in self._others:
            value = row[index]
            if value is None:
                continue
            target = profile
            for name in parents:
                target = target.setdefault(name, {})
            target[leaf] = value if convert is None else convert(value)
        return profile
