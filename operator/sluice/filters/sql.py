"""Filters compiled to SQL for the warehouse: the meaning :mod:`sluice.filters.evaluate` gives.

:func:`filter_sql` turns a filter into a boolean expression over the flattened profile columns
(``address.country`` is the column ``"address_country"``) of a table whose columns have the
types :func:`column_type` gives, and the values it binds. Values are never written into the
SQL: each is bound as its canonical text (``parse_filter`` made it so) and cast in SQL to the
type it is compared as. Placeholders are those of the drivers: ``%s`` for psycopg (PostgreSQL),
``?`` for DuckDB. No ``%`` is ever written into the SQL, so psycopg needs no escaping.

How the SQL keeps to the in-memory semantics (``docs/filters.md``):

* A negative operator is ``(positive) IS NOT TRUE``: a positive comparison with NULL is NULL,
  not FALSE, and the complement must match it. Positive conditions are left three-valued: in a
  ``WHERE``, and combined with ``AND``/``OR``, a NULL selects what a FALSE would.
* Text is ordered by code point: ``COLLATE "C"`` (UTF-8 byte order) on PostgreSQL; DuckDB
  compares bytes by default.
* ``is empty`` is NULL or empty; ``exists`` on an object is any of its leaf columns not NULL.
* Floats are compared as float(64), as Python compares them: a float(32) column is widened
  first, so a stored float(32) ``0.1`` is not equal to the value ``"0.1"``, in memory either.

What cannot be compiled yet raises :class:`NotImplementedError` naming the operator and kind:
``is empty`` on a ``map``; ``contains`` and ``is empty`` on an ``array(json)``; on DuckDB, any
comparison with an ``ip`` or ``array(ip)`` (no built-in address type) and with a decimal of more
than 38 digits. (``exists`` needs no column type, so it compiles for every property.)
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Literal

from sluice.filters.evaluate import POSITIVE_OF
from sluice.filters.model import LOGICALS, Condition, Filter
from sluice.model.types import Kind, Type, column_name, leaf_paths, property_by_path

__all__ = ["Dialect", "column_type", "filter_sql", "quote"]

Dialect = Literal["postgresql", "duckdb"]

_PLACEHOLDERS: Mapping[Dialect, str] = {"postgresql": "%s", "duckdb": "?"}

_ORDERINGS: Mapping[str, str] = {
    "is less than": "<",
    "is less than or equal to": "<=",
    "is greater than": ">",
    "is greater than or equal to": ">=",
    "is before": "<",
    "is on or before": "<=",
    "is after": ">",
    "is on or after": ">=",
}

# Types named alike in both dialects (DuckDB takes PostgreSQL's spellings of the others too,
# but not the reverse).
_COMMON_TYPES: Mapping[Kind, str] = {
    Kind.BOOLEAN: "BOOLEAN",
    Kind.DATETIME: "TIMESTAMP",  # UTC, without a zone: the canonical values are UTC too
    Kind.DATE: "DATE",
    Kind.TIME: "TIME",
    Kind.YEAR: "INTEGER",
    Kind.UUID: "UUID",
}
_DUCKDB_MAX_PRECISION = 38


def column_type(t: Type, dialect: Dialect) -> str:
    """The SQL type of the warehouse column holding a property of type ``t``.

    :func:`filter_sql` relies on the columns having these types.
    """
    common = _COMMON_TYPES.get(t.kind)
    if common is not None:
        return common
    match t.kind:
        case Kind.STRING:
            return "TEXT"
        case Kind.INT:
            return _int_type(t, dialect)
        case Kind.FLOAT:
            return _float_type(t.bit_size, dialect)
        case Kind.DECIMAL:
            if dialect == "duckdb" and t.precision > _DUCKDB_MAX_PRECISION:
                raise NotImplementedError(
                    f"{t} properties on DuckDB: it holds at most {_DUCKDB_MAX_PRECISION} digits"
                )
            return f"{'NUMERIC' if dialect == 'postgresql' else 'DECIMAL'}({t.precision},{t.scale})"
        case Kind.IP if dialect == "postgresql":
            return "INET"
        case Kind.ARRAY:
            assert t.element_type is not None
            return f"{column_type(t.element_type, dialect)}[]"
    raise NotImplementedError(f"{t} properties on {dialect}")


def _int_type(t: Type, dialect: Dialect) -> str:
    if dialect == "duckdb":
        # DuckDB has unsigned types; 24 bits has no type of its own.
        size = {8: "TINYINT", 16: "SMALLINT", 24: "INTEGER", 32: "INTEGER", 64: "BIGINT"}
        return ("U" if t.unsigned else "") + size[t.bit_size]
    # PostgreSQL has no unsigned types: the next wider signed one holds them.
    bits = t.bit_size + (1 if t.unsigned else 0)
    if bits <= 32:
        return "INTEGER"
    return "BIGINT" if bits <= 64 else "NUMERIC(20,0)"


def _float_type(bit_size: int, dialect: Dialect) -> str:
    if bit_size == 32:
        return "REAL"
    return "DOUBLE PRECISION" if dialect == "postgresql" else "DOUBLE"


def filter_sql(f: Filter, in_schema: Type, dialect: Dialect) -> tuple[str, list[object]]:
    """A SQL boolean expression selecting the rows whose profiles match ``f``, and its values.

    ``f`` must come from :func:`parse_filter` with the same ``in_schema``, as for
    :func:`compile_predicate`. The expression may be NULL where a profile does not match: use
    it as (part of) a ``WHERE`` condition, or test it with ``IS TRUE``.
    """
    if f.logical not in LOGICALS:
        raise ValueError(f'invalid logical operator "{f.logical}"')
    if not f.conditions:
        raise ValueError("conditions are missing")
    compiler = _Compiler(dialect)
    parts = [f"({compiler.condition(c, in_schema)})" for c in f.conditions]
    return f" {f.logical.upper()} ".join(parts), compiler.params


@dataclass
class _Compiler:
    """Compiles conditions, collecting the values they bind in the order they appear."""

    dialect: Dialect
    params: list[object] = field(default_factory=list)

    def condition(self, condition: Condition, schema: Type) -> str:
        try:
            return self._condition(condition, schema)
        except NotImplementedError as missing:
            # The operator as written, not the positive one it may have been compiled as.
            raise NotImplementedError(f'operator "{condition.operator}" on {missing}') from None

    def _condition(self, condition: Condition, schema: Type) -> str:
        positive = POSITIVE_OF.get(condition.operator)
        if positive is None:
            return self._positive(condition, schema)
        # IS NOT TRUE, not NOT: the complement of a comparison with NULL is TRUE.
        complemented = self._positive(replace(condition, operator=positive), schema)
        return f"({complemented}) IS NOT TRUE"

    def _positive(self, condition: Condition, schema: Type) -> str:
        path, operator, values = condition.property, condition.operator, condition.values
        prop_type = property_by_path(schema, path).type
        column = quote(column_name(path))
        match operator:
            case "exists":
                return _presence(path, prop_type)
            case "is null":
                return f"NOT ({_presence(path, prop_type)})"
            case "is empty":
                return f"{column} IS NULL OR {self._emptiness(column, prop_type)}"
            case "is true":
                return f"{column} IS TRUE"
            case "is false":
                return f"{column} IS FALSE"
            case "contains" if prop_type.kind is Kind.ARRAY:
                return self._element_of(column, prop_type, values[0])
        self._check_supported(prop_type)
        compared = self._compared(column, prop_type)
        if operator in _ORDERINGS:
            return f"{compared} {_ORDERINGS[operator]} {self._value(values[0], prop_type)}"
        match operator:
            case "is":
                return f"{compared} = {self._value(values[0], prop_type)}"
            case "is one of":
                members = ", ".join(self._value(value, prop_type) for value in values)
                return f"{compared} IN ({members})"
            case "is between":
                low, high = (self._value(value, prop_type) for value in values)
                # Reversed bounds match nothing, in SQL as in memory.
                return f"{compared} BETWEEN {low} AND {high}"
            case "contains":
                return f"strpos({compared}, {self._text(values[0])}) > 0"
            case "starts with":
                return f"starts_with({compared}, {self._text(values[0])})"
            case "ends with":
                if self.dialect == "duckdb":
                    return f"ends_with({compared}, {self._text(values[0])})"
                # PostgreSQL has no ends_with; reversing both sides (by character) is exact.
                return f"starts_with(reverse({compared}), reverse({self._text(values[0])}))"
        raise ValueError(f'operator "{operator}" is not valid')

    def _check_supported(self, t: Type) -> None:
        if t.kind is Kind.IP and self.dialect == "duckdb":
            raise NotImplementedError("ip properties on DuckDB: it has no built-in address type")

    def _compared(self, column: str, t: Type) -> str:
        """The column as compared: widened to float(64), or under a code point collation."""
        if t.kind is Kind.FLOAT and t.bit_size == 32:
            return f"CAST({column} AS {_float_type(64, self.dialect)})"
        if t.kind is Kind.STRING and self.dialect == "postgresql":
            return f'{column} COLLATE "C"'
        return column

    def _emptiness(self, column: str, t: Type) -> str:
        if t.kind is Kind.STRING:
            return f"{column} = ''"
        if t.kind is Kind.ARRAY:
            self._check_element(t)
            length = "cardinality" if self.dialect == "postgresql" else "len"
            return f"{length}({column}) = 0"
        raise NotImplementedError(f"{t} properties on {self.dialect}")

    def _element_of(self, column: str, t: Type, text: str) -> str:
        """``contains`` on an array: an element equal to the value, compared as its kind."""
        element = self._check_element(t)
        if element.kind is Kind.FLOAT and element.bit_size == 32:
            # Widened elements, as for a float(32) column.
            column = f"CAST({column} AS {_float_type(64, self.dialect)}[])"
        value = self._value(text, element)
        if self.dialect == "postgresql":
            return f"{value} = ANY({column})"
        return f"list_contains({column}, {value})"

    def _check_element(self, t: Type) -> Type:
        element = t.element_type
        assert element is not None
        if element.kind is Kind.JSON:
            # JSON numbers equal as decimals, strings as text, nothing else: not compiled yet.
            raise NotImplementedError(f"array(json) properties on {self.dialect}")
        column_type(t, self.dialect)  # raises for the element kinds the dialect cannot hold
        self._check_supported(element)
        return element

    def _value(self, text: str, operand: Type) -> str:
        """A bound canonical value, cast to the type its operand is compared as."""
        sql_type = (
            _float_type(64, self.dialect)
            if operand.kind is Kind.FLOAT
            else column_type(operand, self.dialect)
        )
        return f"CAST({self._bind(text)} AS {sql_type})"

    def _text(self, text: str) -> str:
        return f"CAST({self._bind(text)} AS TEXT)"

    def _bind(self, value: object) -> str:
        self.params.append(value)
        return _PLACEHOLDERS[self.dialect]


def _presence(path: str, t: Type) -> str:
    """A column not NULL; for an object, any column below it (an object is no column)."""
    paths = [f"{path}.{leaf}" for leaf in leaf_paths(t)] if t.kind is Kind.OBJECT else [path]
    return " OR ".join(f"{quote(column_name(p))} IS NOT NULL" for p in paths)


def quote(identifier: str) -> str:
    """An SQL identifier, quoted; ``schema.table`` is quoted part by part (column names never
    hold a dot: they are validated property paths with ``_`` for ``.``)."""
    return ".".join('"' + part.replace('"', '""') + '"' for part in identifier.split("."))
