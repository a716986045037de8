"""Warehouse rows as profiles: flattened columns back into nested records.

The database drivers already return most values as :mod:`sluice.model.values` holds them; the
rest is converted here: timestamps (stored as UTC without a zone) become aware UTC datetimes,
JSON text becomes JSON values, PostgreSQL's unsigned 64-bit ``NUMERIC`` becomes ``int``, and
``inet`` values become addresses. A NULL column is an absent property.

A column can hold what its property's type does not allow: a string longer than its
``maxLength``, an int out of its range, a date past year 9999 (which the drivers give as
text), binary data declared a string. Such a value fails its profile with the API's message
(:class:`~sluice.model.values.InvalidValue`), as the preview fails it: it is neither sent nor
allowed to fail the run. Other values a driver gives as text (a uuid in a text column) are
decoded as the API decodes them.
"""

from __future__ import annotations

import ipaddress
import json
import sys
import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime, time
from decimal import Decimal
from typing import Any

from sluice.filters.sql import Dialect
from sluice.model.types import Kind, Type, effective_range, property_by_path
from sluice.model.values import (
    MAX_YEAR,
    MIN_YEAR,
    InvalidValue,
    decode_value,
    string_violations,
)

Convert = Callable[[Any], Any]
Check = Callable[[Any], bool]


def _datetime(value: Any) -> Any:
    if not isinstance(value, datetime):
        return value  # text the driver could not make a datetime: decoded and checked later
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def _json_text(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value


def _address(value: Any) -> Any:
    if isinstance(value, ipaddress.IPv4Interface | ipaddress.IPv6Interface):
        return value.ip
    return value  # an address already, or text: decoded and checked later


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


def _is_valid(t: Type) -> Check | None:
    """Whether a converted value is a valid value of ``t`` as it is; None for the kinds taken as
    the driver gives them (json, maps and arrays, whose column types hold only what they
    allow)."""
    match t.kind:
        case Kind.STRING:
            return lambda value: type(value) is str and not string_violations(t, value)
        case Kind.INT | Kind.FLOAT:
            low, high = effective_range(t)
            number = int if t.kind is Kind.INT else float
            # NaN and the infinities fail the comparison: decode_value decides on them.
            return lambda value: type(value) is number and low <= value <= high
        case Kind.YEAR:
            return lambda value: type(value) is int and MIN_YEAR <= value <= MAX_YEAR
        case Kind.DECIMAL:
            return lambda value: False  # its precision and scale: decode_value checks them
        case Kind.BOOLEAN:
            return lambda value: type(value) is bool
        case Kind.DATETIME:
            return lambda value: isinstance(value, datetime)
        case Kind.DATE:
            return lambda value: isinstance(value, date)
        case Kind.TIME:
            return lambda value: isinstance(value, time)
        case Kind.UUID:
            return lambda value: isinstance(value, uuid.UUID)
        case Kind.IP:
            return lambda value: isinstance(value, ipaddress.IPv4Address | ipaddress.IPv6Address)
    return None


def _reader(t: Type, path: str, dialect: Dialect) -> Convert | None:
    """How a column value becomes the value of the property at ``path``, of type ``t``:
    converted, then kept if valid, else decoded as the API decodes a value of ``t`` (the text
    of a uuid becomes a UUID), which raises :class:`InvalidValue` with the API's message for a
    value ``t`` does not allow. None when the driver's value is used as it is."""
    convert = converter(t, dialect)
    is_valid = _is_valid(t)
    if is_valid is None:
        return convert

    def checked(value: Any) -> Any:
        if convert is not None:
            value = convert(value)
        if is_valid(value):
            return value
        if t.kind is Kind.STRING and isinstance(value, bytes):
            # A binary column (bytea, BLOB) declared a string: its bytes must be UTF-8 text.
            try:
                value = value.decode()
            except UnicodeDecodeError:
                raise InvalidValue(
                    f'property "{path}" contains invalid UTF-8 encoded characters', path
                ) from None
        return decode_value(t, value, path)

    # Every value of every profile read goes through here: the common kinds take a first test
    # written out, one call per value, and only what fails it goes through ``checked``.
    match t.kind:
        case Kind.STRING if (t.max_bytes, t.values, t.pattern) == (None, None, None):
            limit = sys.maxsize if t.max_length is None else t.max_length
            return lambda value: (
                value if type(value) is str and len(value) <= limit else checked(value)
            )
        case Kind.INT | Kind.FLOAT:
            low, high = effective_range(t)
            number = int if t.kind is Kind.INT else float
            return lambda value: (
                value if type(value) is number and low <= value <= high else checked(value)
            )
    return checked


class ProfileBuilder:
    """Builds the nested profile of a row's leading columns, one per input path; raises
    :class:`InvalidValue` for a value its property's type does not allow."""

    def __init__(self, in_schema: Type, paths: Sequence[str], dialect: Dialect) -> None:
        # Top-level columns kept as they come are copied by one comprehension, the rest one by
        # one.
        self._plain: list[tuple[int, str]] = []
        self._others: list[tuple[int, tuple[str, ...], str, Convert | None]] = []
        for index, path in enumerate(paths):
            *parents, leaf = path.split(".")
            read = _reader(property_by_path(in_schema, path).type, path, dialect)
            if parents or read is not None:
                self._others.append((index, tuple(parents), leaf, read))
            else:
                self._plain.append((index, leaf))

    def profile(self, row: Sequence[Any]) -> dict[str, Any]:
        profile = {leaf: row[index] for index, leaf in self._plain if row[index] is not None}
        for index, parents, leaf, read in self._others:
            value = row[index]
            if value is None:
                continue
            target = profile
            for name in parents:
                target = target.setdefault(name, {})
            target[leaf] = value if read is None else read(value)
        return profile
