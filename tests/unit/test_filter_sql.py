"""Filters compiled to SQL select exactly the profiles the in-memory evaluator matches.

One table of cases (a dataset of profiles, a filter, the ids it must select) is run three ways:
by :func:`compile_predicate` on the decoded profiles, and by :func:`filter_sql` in DuckDB and in
PostgreSQL on the same profiles loaded into flattened tables. Each must give the expected ids,
so all three agree. The profiles hold missing values, empty strings and arrays, NaN and the
infinities, and the extremes of their types.
"""

from __future__ import annotations

import re
import struct
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, cast

import duckdb
import psycopg
import pytest
import sqlalchemy as sa

from sluice.filters import compile_predicate, parse_filter
from sluice.filters.model import Filter
from sluice.filters.sql import Dialect, column_type, filter_sql
from sluice.model.types import (
    Kind,
    Property,
    Type,
    column_name,
    leaf_paths,
    object_type,
    property_by_path,
)
from sluice.model.values import decode_record
from tests.postgres import temporary_database
from tests.support import array_of, optional

STRING = Type(Kind.STRING)
FLOAT = Type(Kind.FLOAT, bit_size=64)
FLOAT32 = Type(Kind.FLOAT, bit_size=32)
DECIMAL = Type(Kind.DECIMAL, precision=5, scale=2)
U = "123e4567-e89b-12d3-a456-426614174000"
OTHER_U = "123e4567-e89b-12d3-a456-426614174001"


@dataclass(frozen=True)
class Dataset:
    """Profiles by id, in their JSON form, and the engines that can hold their columns."""

    name: str
    schema: Type
    rows: Mapping[int, Mapping[str, object]]
    dialects: tuple[Dialect, ...] = ("postgresql", "duckdb")


PROFILES = Dataset(
    "profiles",
    object_type(
        optional("s", STRING),
        optional("enum", Type(Kind.STRING, values=("", "gold", "silver"))),
        optional("b", Type(Kind.BOOLEAN)),
        optional("i", Type(Kind.INT, bit_size=32)),
        optional("u64", Type(Kind.INT, bit_size=64, unsigned=True)),
        optional("f", FLOAT),
        optional("f32", FLOAT32),
        optional("d", DECIMAL),
        optional("dt", Type(Kind.DATETIME)),
        optional("da", Type(Kind.DATE)),
        optional("t", Type(Kind.TIME)),
        optional("y", Type(Kind.YEAR)),
        optional("id", Type(Kind.UUID)),
        optional("tags", array_of(STRING)),
        optional("scores", array_of(Type(Kind.INT, bit_size=8))),
        optional("ratios", array_of(FLOAT)),
        optional("r32", array_of(FLOAT32)),
        optional("amounts", array_of(DECIMAL)),
        optional("days", array_of(Type(Kind.DATE))),
        optional("n", STRING, nullable=True),
        optional(
            "o",
            object_type(
                optional("city", STRING),
                optional("geo", object_type(optional("lat", FLOAT), optional("lon", FLOAT))),
            ),
        ),
    ),
    {
        1: {
            "s": "US",
            "enum": "gold",
            "b": True,
            "i": 7,
            "u64": "18446744073709551615",
            "f": 1.5,
            "f32": 0.5,
            "d": "1.50",
            "dt": "2024-05-06T09:08:09+02:00",
            "da": "2024-05-06",
            "t": "07:08:09.5",
            "y": 2024,
            "id": U,
            "tags": ["a", "b"],
            "scores": [1, 7],
            "ratios": [0.5],
            "r32": [0.5, 0.1],
            "amounts": ["1.50"],
            "days": ["2024-05-06"],
            "n": "x",
            "o": {"city": "Rome", "geo": {"lat": 1.5, "lon": -1.5}},
        },
        2: {
            "s": "us",
            "enum": "silver",
            "b": False,
            "i": -1,
            "u64": "9007199254740993",
            "f": "NaN",
            "f32": 0.1,  # stored as the float(32) nearest, 0.10000000149011612
            "d": "-0.01",
            "dt": "2023-12-31T23:59:59.999999Z",
            "da": "2024-05-05",
            "t": "12:00:00",
            "y": 999,
            "id": OTHER_U,
            "tags": ["abc"],
            "scores": [70, 17],
            "ratios": ["NaN"],
            "r32": [0.25],
            "amounts": ["1.51"],
            "days": [],
            "n": None,
            "o": {"city": "rome"},
        },
        3: {
            "s": "",
            "enum": "",
            "i": 0,
            "f": -0.0,
            "f32": 0.25,
            "d": "0",
            "dt": "2024-01-01T00:00:00Z",
            "da": "0001-01-01",
            "t": "00:00:00",
            "y": 2000,
            "tags": [],
            "scores": [],
            "ratios": [],
            "amounts": [],
            "o": {"geo": {}},  # an object without any value below it is missing
        },
        4: {},
        5: {
            "s": "é",
            "i": 2147483647,
            "u64": "0",
            "f": "Infinity",
            "f32": 1.5,
            "d": "999.99",
            "dt": "2024-12-31T23:59:59Z",
            "t": "23:59:59.999999",
            "y": 9999,
            "tags": [""],
            "o": {"geo": {"lat": 0}},
        },
        6: {
            "s": "a_b",
            "i": -2147483648,
            "f": "-Infinity",
            "d": "-999.99",
            "tags": ["B"],
            "o": {"city": ""},
        },
        7: {"s": "%x", "i": 3, "f": 5e-324, "n": ""},
    },
)

# PostgreSQL's inet only: DuckDB has no built-in type for addresses.
ADDRESSES = Dataset(
    "addresses",
    object_type(optional("ip", Type(Kind.IP))),
    {1: {"ip": "10.0.0.1"}, 2: {"ip": "::1"}, 3: {"ip": "::ffff:10.0.0.1"}, 4: {}},
    dialects=("postgresql",),
)

DATASETS = (PROFILES, ADDRESSES)


@dataclass(frozen=True)
class Case:
    dataset: Dataset
    logical: str
    conditions: tuple[tuple[str, str, tuple[str, ...]], ...]
    expected: frozenset[int]

    @property
    def filter(self) -> Filter:
        conditions = [
            {"property": path, "operator": operator, **({"values": list(values)} if values else {})}
            for path, operator, values in self.conditions
        ]
        data = {"logical": self.logical, "conditions": conditions}
        return parse_filter(data, self.dataset.schema)

    def __str__(self) -> str:
        text = f" {self.logical} ".join(
            f"{path} {operator} {list(values)}" if values else f"{path} {operator}"
            for path, operator, values in self.conditions
        )
        return f"{self.dataset.name}: {text}"


def case(path: str, operator: str, *values: str, ids: set[int], on: Dataset = PROFILES) -> Case:
    return Case(on, "and", ((path, operator, values),), frozenset(ids))


def logical(
    op: str, *conditions: tuple[str, str, tuple[str, ...]], ids: set[int], on: Dataset = PROFILES
) -> Case:
    return Case(on, op, conditions, frozenset(ids))


ALL = {1, 2, 3, 4, 5, 6, 7}
# The row id column: "_" starts the names reserved for meta properties, so no column has it.
ROW = '"_row"'

CASES = (
    # string: code point order ("US" < "a_b" < "b" < "us" < "é"), literal "%" and "_"
    case("s", "is", "US", ids={1}),
    case("s", "is not", "US", ids=ALL - {1}),
    case("s", "is", "", ids={3}),
    case("s", "is less than", "b", ids={1, 3, 6, 7}),
    case("s", "is less than or equal to", "US", ids={1, 3, 7}),
    case("s", "is greater than", "b", ids={2, 5}),
    case("s", "is greater than or equal to", "us", ids={2, 5}),
    case("s", "is between", "B", "a_c", ids={1, 6}),
    case("s", "is between", "d", "b", ids=set()),
    case("s", "is not between", "B", "a_c", ids=ALL - {1, 6}),
    case("s", "contains", "S", ids={1}),
    case("s", "contains", "_", ids={6}),
    case("s", "does not contain", "S", ids=ALL - {1}),
    case("s", "is one of", "US", "", ids={1, 3}),
    case("s", "is not one of", "US", "", ids=ALL - {1, 3}),
    case("s", "starts with", "a_", ids={6}),
    case("s", "starts with", "%", ids={7}),
    case("s", "ends with", "S", ids={1}),
    case("s", "ends with", "_b", ids={6}),
    case("s", "is empty", ids={3, 4}),
    case("s", "is not empty", ids=ALL - {3, 4}),
    case("s", "exists", ids=ALL - {4}),
    case("s", "does not exist", ids={4}),
    # string with allowed values
    case("enum", "is", "gold", ids={1}),
    case("enum", "is not", "gold", ids=ALL - {1}),
    case("enum", "contains", "", ids={1, 2, 3}),  # every present string contains ""
    case("enum", "does not contain", "gold", ids=ALL - {1}),
    case("enum", "is one of", "gold", "", ids={1, 3}),
    case("enum", "is empty", ids=ALL - {1, 2}),
    # boolean: a missing value is neither true nor false
    case("b", "is true", ids={1}),
    case("b", "is false", ids={2}),
    case("b", "exists", ids={1, 2}),
    case("b", "does not exist", ids=ALL - {1, 2}),
    # int(32), to its extremes
    case("i", "is", "7", ids={1}),
    case("i", "is not", "7", ids=ALL - {1}),
    case("i", "is less than", "0", ids={2, 6}),
    case("i", "is less than or equal to", "0", ids={2, 3, 6}),
    case("i", "is greater than", "3", ids={1, 5}),
    case("i", "is greater than or equal to", "3", ids={1, 5, 7}),
    case("i", "is between", "0", "7", ids={1, 3, 7}),
    case("i", "is not between", "0", "7", ids={2, 4, 5, 6}),
    case("i", "is one of", "-1", "3", ids={2, 7}),
    case("i", "is not one of", "-1", "3", ids=ALL - {2, 7}),
    # uint(64), beyond what a float holds exactly
    case("u64", "is", "18446744073709551615", ids={1}),
    case("u64", "is greater than", "9007199254740992", ids={1, 2}),
    case("u64", "is between", "9007199254740993", "9007199254740995", ids={2}),
    case("u64", "is one of", "9007199254740992", ids=set()),
    case("u64", "is not one of", "9007199254740992", ids=ALL),
    case("u64", "is less than", "1", ids={5}),
    # float(64): NaN above every number, -0 equal to 0
    case("f", "is", "1.5", ids={1}),
    case("f", "is", "0", ids={3}),
    case("f", "is not", "0", ids=ALL - {3}),
    case("f", "is less than", "1.5", ids={3, 6, 7}),
    case("f", "is less than or equal to", "1.5", ids={1, 3, 6, 7}),
    case("f", "is greater than", "1.5", ids={2, 5}),
    case("f", "is greater than or equal to", "1.5", ids={1, 2, 5}),
    case("f", "is between", "0", "2", ids={1, 3, 7}),
    case("f", "is not between", "0", "2", ids={2, 4, 5, 6}),
    case("f", "is one of", "1.5", "0", ids={1, 3}),
    # float(32): compared as float(64), so the stored 0.1 is a little more than 0.1
    case("f32", "is", "0.5", ids={1}),
    case("f32", "is", "0.1", ids=set()),
    case("f32", "is between", "0.1", "0.2", ids={2}),
    case("f32", "is greater than", "0.1", ids={1, 2, 3, 5}),
    case("f32", "is less than", "0.3", ids={2, 3}),
    # decimal(5,2): by numeric value, whatever the scale, to its extremes
    case("d", "is", "1.5", ids={1}),
    case("d", "is not", "1.5", ids=ALL - {1}),
    case("d", "is less than", "-0.01", ids={6}),
    case("d", "is less than or equal to", "-0.01", ids={2, 6}),
    case("d", "is greater than", "1.5", ids={5}),
    case("d", "is greater than or equal to", "1.5", ids={1, 5}),
    case("d", "is between", "-0.01", "1.5", ids={1, 2, 3}),
    case("d", "is one of", "0", "999.99", ids={3, 5}),
    # datetime: instants, whatever the offset
    case("dt", "is", "2024-05-06T07:08:09Z", ids={1}),
    case("dt", "is before", "2024-01-01", ids={2}),
    case("dt", "is on or before", "2024-01-01", ids={2, 3}),
    case("dt", "is after", "2024-01-01", ids={1, 5}),
    case("dt", "is on or after", "2024-01-01T00:00:00+01:00", ids={1, 2, 3, 5}),
    case("dt", "is between", "2024-01-01", "2024-12-31T23:59:59", ids={1, 3, 5}),
    case("dt", "is not between", "2024-01-01", "2024-12-31T23:59:59", ids={2, 4, 6, 7}),
    case("dt", "is one of", "2024-05-06T09:08:09+02:00", ids={1}),
    # date
    case("da", "is", "2024-05-06", ids={1}),
    case("da", "is not", "2024-05-06", ids=ALL - {1}),
    case("da", "is before", "2024-05-06", ids={2, 3}),
    case("da", "is on or before", "2024-05-05", ids={2, 3}),
    case("da", "is after", "2024-05-05", ids={1}),
    case("da", "is on or after", "2024-05-05", ids={1, 2}),
    case("da", "is between", "2024-01-01", "2024-12-31", ids={1, 2}),
    case("da", "is one of", "0001-01-01", ids={3}),
    # time
    case("t", "is", "07:08:09.500", ids={1}),
    case("t", "is before", "12:00:00", ids={1, 3}),
    case("t", "is on or before", "12:00:00", ids={1, 2, 3}),
    case("t", "is after", "12:00:00", ids={5}),
    case("t", "is on or after", "12:00:00", ids={2, 5}),
    case("t", "is between", "07:00:00", "12:00:00", ids={1, 2}),
    case("t", "is one of", "00:00:00", "23:59:59.999999", ids={3, 5}),
    # year
    case("y", "is", "0999", ids={2}),
    case("y", "is before", "2000", ids={2}),
    case("y", "is on or before", "2000", ids={2, 3}),
    case("y", "is after", "2000", ids={1, 5}),
    case("y", "is on or after", "2024", ids={1, 5}),
    case("y", "is between", "2000", "2024", ids={1, 3}),
    case("y", "is one of", "2024", "9999", ids={1, 5}),
    case("y", "is not one of", "2024", "9999", ids=ALL - {1, 5}),
    # uuid: by value, whatever the case
    case("id", "is", U.upper(), ids={1}),
    case("id", "is not", U, ids=ALL - {1}),
    # arrays: an element equal to the value, never a part of one
    case("tags", "contains", "b", ids={1}),
    case("tags", "contains", "", ids={5}),
    case("tags", "does not contain", "b", ids=ALL - {1}),
    case("tags", "is empty", ids={3, 4, 7}),
    case("tags", "is not empty", ids={1, 2, 5, 6}),
    case("scores", "contains", "7", ids={1}),
    case("scores", "is empty", ids=ALL - {1, 2}),
    case("ratios", "contains", "0.5", ids={1}),
    case("ratios", "does not contain", "0.5", ids=ALL - {1}),
    case("r32", "contains", "0.5", ids={1}),
    case("r32", "contains", "0.1", ids=set()),
    case("amounts", "contains", "1.5", ids={1}),
    case("days", "contains", "2024-05-06", ids={1}),
    case("days", "is empty", ids=ALL - {1}),
    # a nullable property: null is missing
    case("n", "is", "x", ids={1}),
    case("n", "is not", "x", ids=ALL - {1}),
    case("n", "is null", ids={2, 3, 4, 5, 6}),
    case("n", "is not null", ids={1, 7}),
    # objects: present when any property below is; their properties are columns
    case("o", "exists", ids={1, 2, 5, 6}),
    case("o", "does not exist", ids={3, 4, 7}),
    case("o.geo", "exists", ids={1, 5}),
    case("o.geo", "does not exist", ids=ALL - {1, 5}),
    case("o.city", "is", "Rome", ids={1}),
    case("o.city", "is not", "Rome", ids=ALL - {1}),
    case("o.city", "is empty", ids=ALL - {1, 2}),
    case("o.geo.lat", "is greater than", "0", ids={1}),
    case("o.geo.lat", "is not between", "0", "1", ids=ALL - {5}),
    # logicals, with negatives on missing values
    logical("and", ("s", "is", ("US",)), ("i", "is", ("7",)), ids={1}),
    logical("or", ("s", "is", ("US",)), ("b", "is false", ()), ids={1, 2}),
    logical("and", ("s", "is not", ("US",)), ("n", "is not", ("x",)), ids=ALL - {1}),
    logical("or", ("i", "is not between", ("0", "7")), ("o", "does not exist", ()), ids=ALL - {1}),
    logical(
        "and",
        ("f", "is greater than", ("1",)),
        ("d", "exists", ()),
        ("s", "does not contain", ("u",)),
        ids={1, 5},
    ),
    # ip (PostgreSQL): by value; an IPv4-mapped IPv6 address is not the IPv4 one
    case("ip", "is", "10.0.0.1", ids={1}, on=ADDRESSES),
    case("ip", "is", "0:0::1", ids={2}, on=ADDRESSES),
    case("ip", "is not", "10.0.0.1", ids={2, 3, 4}, on=ADDRESSES),
)


# ---------------------------------------------------------------------------------------------
# The profiles, as the evaluator and the warehouse hold them
# ---------------------------------------------------------------------------------------------


def to_float32(value: float) -> float:
    return float(struct.unpack("<f", struct.pack("<f", value))[0])


def as_stored(t: Type, value: object) -> object:
    """A decoded value as a warehouse column gives it back: float(32) rounded to 32 bits."""
    if value is None:
        return None
    if t.kind is Kind.FLOAT and t.bit_size == 32:
        return to_float32(cast(float, value))
    if t.kind is Kind.ARRAY:
        assert t.element_type is not None
        return [as_stored(t.element_type, v) for v in cast(list[object], value)]
    if t.kind is Kind.OBJECT:
        record = cast(dict[str, object], value)
        return {p.name: as_stored(p.type, record.get(p.name)) for p in t.properties}
    return value


def profiles(dataset: Dataset) -> dict[int, dict[str, Any]]:
    return {
        row_id: cast(dict[str, Any], as_stored(dataset.schema, decode_record(dataset.schema, row)))
        for row_id, row in dataset.rows.items()
    }


def column_value(profile: Mapping[str, Any], path: str) -> object:
    value: Any = profile
    for name in path.split("."):
        value = value.get(name) if isinstance(value, Mapping) else None
    if isinstance(value, datetime):
        return value.astimezone(UTC).replace(tzinfo=None)  # TIMESTAMP columns hold UTC
    return value


def load_statements(
    dataset: Dataset, dialect: Dialect, text_collation: str | None = None
) -> Iterator[tuple[str, list[object]]]:
    """CREATE TABLE and INSERTs of the dataset's flattened profiles, with their parameters.

    ``text_collation`` is given to the text columns, to show that the filter does not depend
    on the collation the warehouse chose.
    """
    placeholder = "%s" if dialect == "postgresql" else "?"
    paths = leaf_paths(dataset.schema)
    types = [column_type(property_by_path(dataset.schema, p).type, dialect) for p in paths]
    columns = [f'"{column_name(p)}"' for p in paths]
    collate = f' COLLATE "{text_collation}"' if text_collation else ""
    definitions = ", ".join(
        f"{c} {t}{collate if t.startswith('TEXT') else ''}"
        for c, t in zip(columns, types, strict=True)
    )
    yield f'CREATE TABLE "{dataset.name}" ({ROW} INTEGER PRIMARY KEY, {definitions})', []
    # Cast each value to its column's type, so no driver's guess at a parameter's type matters.
    values = ", ".join(f"CAST({placeholder} AS {t})" for t in types)
    names = ", ".join(columns)
    insert = f'INSERT INTO "{dataset.name}" ({ROW}, {names}) VALUES ({placeholder}, {values})'
    for row_id, profile in profiles(dataset).items():
        yield insert, [row_id, *(column_value(profile, p) for p in paths)]


def selected_query(c: Case, dialect: Dialect) -> tuple[str, list[object]]:
    condition, params = filter_sql(c.filter, c.dataset.schema, dialect)
    return f'SELECT {ROW} FROM "{c.dataset.name}" WHERE {condition}', params


# ---------------------------------------------------------------------------------------------
# Engines
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def duck() -> Iterator[duckdb.DuckDBPyConnection]:
    connection = duckdb.connect()
    for dataset in DATASETS:
        if "duckdb" in dataset.dialects:
            for statement, params in load_statements(dataset, "duckdb"):
                connection.execute(statement, params)
    yield connection
    connection.close()


LINGUISTIC = "en-x-icu"


@pytest.fixture(scope="module")
def pg(postgres_url: str) -> Iterator[psycopg.Connection[tuple[Any, ...]]]:
    """One database for the module: the datasets are only read."""
    with temporary_database(postgres_url) as url:
        conninfo = sa.make_url(url).set(drivername="postgresql").render_as_string(False)
        with psycopg.connect(conninfo, autocommit=True) as connection:
            # A linguistic collation, where it exists, orders "a_b" before "US" and "é" before
            # "us": only the filter's own COLLATE "C" gives the code point order then.
            found = connection.execute(
                "SELECT collname FROM pg_collation WHERE collname = %s", [LINGUISTIC]
            ).fetchone()
            collation = LINGUISTIC if found else None
            for dataset in DATASETS:
                for statement, params in load_statements(dataset, "postgresql", collation):
                    connection.execute(statement, params)
            yield connection


def for_dialect(dialect: Dialect) -> list[Case]:
    return [c for c in CASES if dialect in c.dataset.dialects]


@pytest.mark.parametrize("c", CASES, ids=str)
def test_in_memory(c: Case) -> None:
    matches = compile_predicate(c.filter, c.dataset.schema)
    got = {row_id for row_id, profile in profiles(c.dataset).items() if matches(profile)}
    assert got == c.expected


@pytest.mark.parametrize("c", for_dialect("duckdb"), ids=str)
def test_duckdb(c: Case, duck: duckdb.DuckDBPyConnection) -> None:
    query, params = selected_query(c, "duckdb")
    assert {row[0] for row in duck.execute(query, params).fetchall()} == c.expected


@pytest.mark.parametrize("c", for_dialect("postgresql"), ids=str)
def test_postgresql(c: Case, pg: psycopg.Connection[tuple[Any, ...]]) -> None:
    query, params = selected_query(c, "postgresql")
    assert {row[0] for row in pg.execute(query, params).fetchall()} == c.expected


# ---------------------------------------------------------------------------------------------
# The SQL itself
# ---------------------------------------------------------------------------------------------


def test_values_are_bound_never_written_into_the_sql() -> None:
    c = case("s", "is one of", "x'; DROP TABLE t; --", "%s", ids=set())
    for dialect, placeholder in (("postgresql", "%s"), ("duckdb", "?")):
        sql, params = filter_sql(c.filter, PROFILES.schema, cast(Dialect, dialect))
        assert params == ["x'; DROP TABLE t; --", "%s"]
        assert "DROP" not in sql and sql.count(placeholder) == 2


def single(path: str, operator: str, *values: str) -> dict[str, object]:
    item: dict[str, object] = {"property": path, "operator": operator}
    if values:
        item["values"] = list(values)
    return {"logical": "and", "conditions": [item]}


@pytest.mark.parametrize(
    ("prop", "data", "dialect", "message"),
    [
        (
            optional("ip", Type(Kind.IP)),
            single("ip", "is", "::1"),
            "duckdb",
            'operator "is" on ip properties on DuckDB',
        ),
        (
            optional("docs", array_of(Type(Kind.JSON))),
            single("docs", "does not contain", "1"),
            "postgresql",
            'operator "does not contain" on array(json) properties',
        ),
        (
            optional("m", Type(Kind.MAP, element_type=STRING)),
            single("m", "is empty"),
            "postgresql",
            'operator "is empty" on map(string) properties',
        ),
        (
            optional("wide", Type(Kind.DECIMAL, precision=40, scale=0)),
            single("wide", "is", "1"),
            "duckdb",
            'operator "is" on decimal(40,0) properties on DuckDB',
        ),
    ],
)
def test_what_cannot_be_compiled_says_so(
    prop: Property, data: dict[str, object], dialect: Dialect, message: str
) -> None:
    schema = object_type(prop)
    with pytest.raises(NotImplementedError, match=re.escape(message)):
        filter_sql(parse_filter(data, schema), schema, dialect)
