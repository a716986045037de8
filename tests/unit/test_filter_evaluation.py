"""The meaning of filters, evaluated in memory on decoded profiles (docs/filters.md).

The expectations are written down as data: for every operator and every kind it accepts, values
that match, values that do not, and what a missing value does. Negative operators are not
listed: each one must behave as the exact complement of its positive operator, which the cases
derived from the positive ones and a property-based test over generated profiles both check.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sluice.filters import (
    OPERATORS,
    Condition,
    Filter,
    FilterError,
    Predicate,
    compile_predicate,
    parse_filter,
)
from sluice.model.types import Kind, Type, object_type, walk_properties
from sluice.model.values import decode_record
from tests.support import array_of, optional

STRING = Type(Kind.STRING)
FLOAT = Type(Kind.FLOAT, bit_size=64)

SCHEMA = object_type(
    optional("s", STRING),
    optional("enum", Type(Kind.STRING, values=("", "gold", "silver"))),
    optional("b", Type(Kind.BOOLEAN)),
    optional("i", Type(Kind.INT, bit_size=32)),
    optional("u64", Type(Kind.INT, bit_size=64, unsigned=True)),
    optional("f", FLOAT),
    optional("f32", Type(Kind.FLOAT, bit_size=32)),
    optional("d", Type(Kind.DECIMAL, precision=5, scale=2)),
    optional("dt", Type(Kind.DATETIME)),
    optional("da", Type(Kind.DATE)),
    optional("t", Type(Kind.TIME)),
    optional("y", Type(Kind.YEAR)),
    optional("id", Type(Kind.UUID)),
    optional("ip", Type(Kind.IP)),
    optional("tags", array_of(STRING)),
    optional("levels", array_of(Type(Kind.STRING, values=("low", "high")))),
    optional("scores", array_of(Type(Kind.INT, bit_size=8))),
    optional("ratios", array_of(FLOAT)),
    optional("amounts", array_of(Type(Kind.DECIMAL, precision=5, scale=2))),
    optional("stamps", array_of(Type(Kind.DATETIME))),
    optional("days", array_of(Type(Kind.DATE))),
    optional("times", array_of(Type(Kind.TIME))),
    optional("years", array_of(Type(Kind.YEAR))),
    optional("ids", array_of(Type(Kind.UUID))),
    optional("addrs", array_of(Type(Kind.IP))),
    optional("docs", array_of(Type(Kind.JSON))),
    optional("m", Type(Kind.MAP, element_type=STRING)),
    optional(
        "o",
        object_type(
            optional("city", STRING),
            optional("geo", object_type(optional("lat", FLOAT), optional("lon", FLOAT))),
        ),
    ),
    optional("nullable", STRING, nullable=True),
)

LEAF_PATHS = tuple(
    path for path, prop in walk_properties(SCHEMA) if prop.type.kind is not Kind.OBJECT
)

# Each negative operator and the positive one it complements.
COMPLEMENTS = {
    "is not": "is",
    "is not between": "is between",
    "does not contain": "contains",
    "is not one of": "is one of",
    "is not empty": "is empty",
    "is not null": "is null",
    "does not exist": "exists",
}
# The operators a missing value (absent, or null) matches: the truth table of docs/filters.md.
MATCHING_MISSING = frozenset(
    {"is not", "is not between", "does not contain", "is not one of"}
    | {"is empty", "is null", "does not exist"}
)

U = "123e4567-e89b-12d3-a456-426614174000"
OTHER_U = "123e4567-e89b-12d3-a456-426614174001"


def compile_conditions(logical: str, *conditions: Mapping[str, Any]) -> Predicate:
    """The predicate of a filter built through parse_filter, so its values are canonical."""
    data = {"logical": logical, "conditions": [dict(c) for c in conditions]}
    return compile_predicate(parse_filter(data, SCHEMA), SCHEMA)


def condition(path: str, operator: str, values: tuple[str, ...] = ()) -> dict[str, Any]:
    item: dict[str, Any] = {"property": path, "operator": operator}
    if values:
        item["values"] = list(values)
    return item


def nest(flat: Mapping[str, object]) -> dict[str, Any]:
    """A profile in its JSON form from values by dot path: ``{"o.city": 1}`` → ``{"o": {...}}``."""
    record: dict[str, Any] = {}
    for path, value in flat.items():
        *parents, name = path.split(".")
        target = record
        for parent in parents:
            target = target.setdefault(parent, {})
        target[name] = value
    return record


def profile(flat: Mapping[str, object]) -> dict[str, object]:
    return decode_record(SCHEMA, nest(flat))


@dataclass(frozen=True)
class Case:
    """A condition, JSON values of its property that match it, and ones that do not."""

    path: str
    operator: str
    values: tuple[str, ...]
    hits: tuple[object, ...]
    misses: tuple[object, ...]

    @property
    def condition(self) -> dict[str, Any]:
        return condition(self.path, self.operator, self.values)

    def complement(self) -> Case:
        negative = next(neg for neg, pos in COMPLEMENTS.items() if pos == self.operator)
        return Case(self.path, negative, self.values, self.misses, self.hits)

    def __str__(self) -> str:
        return f"{self.path} {self.operator} {list(self.values)}"


def case(
    path: str,
    operator: str,
    *values: str,
    hits: Sequence[object] = (),
    misses: Sequence[object] = (),
) -> Case:
    return Case(path, operator, values, tuple(hits), tuple(misses))


NAN, INF, NEG_INF = "NaN", "Infinity", "-Infinity"

# The positive operators on every kind they accept (the property's JSON values are those of
# profiles, which decode_record reads).
POSITIVE_CASES = (
    # string: case-sensitive, ordered by code point ("B" < "a" < "é"), substrings and
    # prefixes taken literally.
    case("s", "is", "US", hits=["US"], misses=["us", "USA", " US", ""]),
    case("s", "is", "", hits=[""], misses=["x"]),
    case("s", "is less than", "b", hits=["a", "B", "", "Z"], misses=["b", "ba", "é"]),
    case("s", "is less than or equal to", "b", hits=["b", "a"], misses=["ba", "é", "c"]),
    case("s", "is greater than", "b", hits=["ba", "é", "c"], misses=["b", "B", "a"]),
    case("s", "is greater than or equal to", "b", hits=["b", "é"], misses=["a", "B", ""]),
    case("s", "is between", "b", "d", hits=["b", "c", "d", "bz"], misses=["a", "da", "D", "é"]),
    case("s", "is between", "d", "b", misses=["b", "c", "d"]),  # bounds in the wrong order
    case("s", "contains", "S", hits=["US", "S", "USA"], misses=["us", ""]),
    case("s", "is one of", "US", "FR", hits=["US", "FR"], misses=["IT", "fr", ""]),
    case("s", "starts with", "a_", hits=["a_b", "a_"], misses=["ab", "A_b", "xa_", "a"]),
    case("s", "starts with", "%", hits=["%x"], misses=["x%", "x"]),
    case("s", "ends with", "om", hits=["dom", "om"], misses=["OM", "omx", "o"]),
    case("s", "ends with", "_", hits=["a_"], misses=["a", "_a"]),
    case("s", "is empty", hits=[""], misses=["x", " "]),
    # string with allowed values
    case("enum", "is", "gold", hits=["gold"], misses=["silver", ""]),
    case("enum", "is", "", hits=[""], misses=["gold"]),
    case("enum", "contains", "gold", hits=["gold"], misses=["silver", ""]),
    case("enum", "is one of", "gold", "", hits=["gold", ""], misses=["silver"]),
    case("enum", "is empty", hits=[""], misses=["gold"]),
    # boolean: "is false" is no negation, a missing value is neither true nor false
    case("b", "is true", hits=[True], misses=[False]),
    case("b", "is false", hits=[False], misses=[True]),
    # int
    case("i", "is", "7", hits=[7, 7.0], misses=[8, -7, 0]),
    case("i", "is less than", "-1", hits=[-2, -(2**31)], misses=[-1, 0]),
    case("i", "is less than or equal to", "0", hits=[0, -1], misses=[1]),
    case("i", "is greater than", "10", hits=[11], misses=[10, -11]),
    case("i", "is greater than or equal to", "10", hits=[10, 2**31 - 1], misses=[9]),
    case("i", "is between", "1", "3", hits=[1, 2, 3], misses=[0, 4]),
    case("i", "is one of", "1", "+3", hits=[1, 3], misses=[2, -3]),
    # int(64) beyond what a float holds exactly
    case("u64", "is", "18446744073709551615", hits=["18446744073709551615"]),
    case("u64", "is greater than", "9007199254740992", hits=["9007199254740993"]),
    case("u64", "is between", "9007199254740993", "9007199254740995", hits=["9007199254740994"]),
    case("u64", "is one of", "9007199254740993", misses=["9007199254740992", "0"]),
    case("u64", "is less than", "1", hits=["0"], misses=["1"]),
    case("u64", "is less than or equal to", "1", hits=["1"], misses=["2"]),
    case("u64", "is greater than or equal to", "1", hits=["1"], misses=["0"]),
    # float: NaN is equal to nothing written in a filter and ordered above every number, as
    # in PostgreSQL and DuckDB
    case("f", "is", "0.1", hits=[0.1], misses=[0.2, 0.30000000000000004, NAN]),
    case("f", "is", "0", hits=[0, -0.0, 0.0], misses=[5e-324]),
    case("f", "is less than", "1.5", hits=[1.25, NEG_INF, -2], misses=[1.5, NAN, INF]),
    case("f", "is less than or equal to", "1.5", hits=[1.5, 1], misses=[1.75, NAN, INF]),
    case("f", "is greater than", "1.5", hits=[1.75, INF, NAN], misses=[1.5, NEG_INF]),
    case("f", "is greater than or equal to", "1.5", hits=[1.5, NAN], misses=[1.25, NEG_INF]),
    case("f", "is between", "1", "2e0", hits=[1, 1.5, 2], misses=[0.5, 2.5, NAN, INF]),
    case("f", "is one of", "1.5", "2", hits=[1.5, 2], misses=[2.5, NAN]),
    case("f32", "is", "0.1", hits=[0.1], misses=[0.2]),
    case("f32", "is between", "0.1", "0.2", hits=[0.1, 0.15], misses=[0.25]),
    # decimal: compared as numbers, whatever their scale
    case("d", "is", "1.5", hits=["1.50", 1.5, "1.5", 1.50], misses=["1.51", "-1.5"]),
    case("d", "is less than", "-0.01", hits=["-0.02", -999.99], misses=["0", "-0.01"]),
    case("d", "is less than or equal to", "-0.01", hits=["-0.01"], misses=["0"]),
    case("d", "is greater than", "2", hits=["2.01"], misses=["2.00", 1]),
    case("d", "is greater than or equal to", "2", hits=["2.00", 999.99], misses=["1.99"]),
    case("d", "is between", "1", "2", hits=["1.00", "2", "1.5"], misses=["2.01", "0.99"]),
    case("d", "is one of", "1", "2.5", hits=[1, "2.50"], misses=["3", "2.49"]),
    # datetime: instants, whatever the offset they were written with
    case(
        "dt",
        "is",
        "2024-05-06T09:08:09+02:00",
        hits=["2024-05-06T07:08:09Z", "2024-05-06T03:08:09-04:00", "2024-05-06T07:08:09"],
        misses=["2024-05-06T09:08:09Z", "2024-05-06T07:08:09.000001Z"],
    ),
    case(
        "dt",
        "is before",
        "2024-01-01T00:00:00Z",
        hits=["2023-12-31T23:59:59.999999Z", "2024-01-01T00:30:00+01:00"],
        misses=["2024-01-01T00:00:00Z", "2023-12-31T23:30:00-01:00"],
    ),
    case(
        "dt",
        "is on or before",
        "2024-01-01",
        hits=["2024-01-01T00:00:00Z", "1999-01-01T00:00:00Z"],
        misses=["2024-01-01T00:00:00.000001Z"],
    ),
    case("dt", "is after", "2024-01-01", hits=["2024-01-01T00:00:01Z"], misses=["2024-01-01"]),
    case("dt", "is on or after", "2024-01-01", hits=["2024-01-01"], misses=["2023-06-01"]),
    case(
        "dt",
        "is between",
        "2024-01-01",
        "2024-12-31T23:59:59",
        hits=["2024-01-01T00:00:00Z", "2024-06-01T12:00:00+05:00", "2024-12-31T23:59:59Z"],
        misses=["2025-01-01T00:00:00Z", "2024-01-01T00:59:59+01:00"],
    ),
    case(
        "dt",
        "is one of",
        "2024-01-01T00:00:00Z",
        "2025-01-01T00:00:00Z",
        hits=["2024-01-01T01:00:00+01:00", "2025-01-01T00:00:00Z"],
        misses=["2024-01-01T01:00:00Z"],
    ),
    # date
    case("da", "is", "2024-05-06", hits=["2024-05-06"], misses=["2024-05-07"]),
    case("da", "is before", "2024-05-06", hits=["2024-05-05", "0001-01-01"], misses=["2024-05-06"]),
    case("da", "is on or before", "2024-05-06", hits=["2024-05-06"], misses=["2024-05-07"]),
    case("da", "is after", "2024-05-06", hits=["2024-05-07"], misses=["2024-05-06"]),
    case("da", "is on or after", "2024-05-06", hits=["2024-05-06"], misses=["2023-12-31"]),
    case(
        "da", "is between", "2024-01-01", "2024-01-31", hits=["2024-01-31"], misses=["2024-02-01"]
    ),
    case("da", "is one of", "2024-01-01", hits=["2024-01-01"], misses=["2025-01-01"]),
    # time
    case("t", "is", "07:08:09.5", hits=["07:08:09.500", "07:08:09.5"], misses=["07:08:09"]),
    case("t", "is before", "12:00:00", hits=["11:59:59.999999"], misses=["12:00:00", "23:00:00"]),
    case("t", "is on or before", "12:00:00", hits=["12:00:00"], misses=["12:00:00.000001"]),
    case("t", "is after", "12:00:00", hits=["12:00:00.000001"], misses=["12:00:00"]),
    case("t", "is on or after", "12:00:00", hits=["12:00:00"], misses=["00:00:00"]),
    case(
        "t",
        "is between",
        "09:00:00",
        "17:00:00",
        hits=["09:00:00", "17:00:00"],
        misses=["08:59:59"],
    ),
    case("t", "is one of", "09:00:00", "17:00:00", hits=["17:00:00"], misses=["12:00:00"]),
    # year
    case("y", "is", "0999", hits=[999], misses=[1999]),
    case("y", "is before", "2000", hits=[1999, 1], misses=[2000]),
    case("y", "is on or before", "2000", hits=[2000], misses=[2001]),
    case("y", "is after", "999", hits=[1000], misses=[999]),
    case("y", "is on or after", "2000", hits=[2000, 9999], misses=[1999]),
    case("y", "is between", "2000", "2009", hits=[2000, 2009], misses=[1999, 2010]),
    case("y", "is one of", "2000", "2024", hits=[2024], misses=[2023]),
    # uuid and ip: equality of the values, not of their spelling
    case("id", "is", U.upper(), hits=[U, U.upper()], misses=[OTHER_U]),
    case("ip", "is", "10.0.0.1", hits=["10.0.0.1"], misses=["10.0.0.2", "::ffff:10.0.0.1"]),
    case("ip", "is", "0:0::1", hits=["::1", "0000::0001"], misses=["127.0.0.1"]),
    # arrays: "contains" looks for an element equal to the value, never a part of one
    case("tags", "contains", "b", hits=[["a", "b"], ["b"]], misses=[["abc"], ["B"], []]),
    case("tags", "contains", "", hits=[["", "a"]], misses=[["a"], []]),
    case("tags", "is empty", hits=[[]], misses=[[""], ["a"]]),
    case("levels", "contains", "low", hits=[["high", "low"]], misses=[["high"]]),
    case("levels", "is empty", hits=[[]], misses=[["low"]]),
    case("scores", "contains", "7", hits=[[1, 7]], misses=[[70, 17], []]),
    case("scores", "is empty", hits=[[]], misses=[[0]]),
    case("ratios", "contains", "0.5", hits=[[0.5], [1, 0.50]], misses=[[NAN], [0.25], []]),
    case("ratios", "is empty", hits=[[]], misses=[[NAN]]),
    case("amounts", "contains", "1.5", hits=[["1.50"], [1.5]], misses=[["1.51"]]),
    case("amounts", "is empty", hits=[[]], misses=[[0]]),
    case(
        "stamps",
        "contains",
        "2024-05-06T07:08:09Z",
        hits=[["2024-05-06T09:08:09+02:00"]],
        misses=[["2024-05-06T07:08:10Z"], []],
    ),
    case("stamps", "is empty", hits=[[]], misses=[["2024-05-06T07:08:09Z"]]),
    case("days", "contains", "2024-05-06", hits=[["2024-05-06"]], misses=[["2024-05-07"]]),
    case("days", "is empty", hits=[[]], misses=[["2024-05-06"]]),
    case("times", "contains", "07:08:09", hits=[["07:08:09.000"]], misses=[["07:08:10"]]),
    case("times", "is empty", hits=[[]], misses=[["07:08:09"]]),
    case("years", "contains", "2024", hits=[[2023, 2024]], misses=[[2023]]),
    case("years", "is empty", hits=[[]], misses=[[2024]]),
    case("ids", "contains", U, hits=[[U.upper()]], misses=[[OTHER_U]]),
    case("ids", "is empty", hits=[[]], misses=[[U]]),
    case("addrs", "contains", "::1", hits=[["0::1"]], misses=[["127.0.0.1"], ["::2"]]),
    case("addrs", "is empty", hits=[[]], misses=[["::1"]]),
    # array(json): an element equals a value as a JSON string, or as a JSON number
    case(
        "docs",
        "contains",
        "1",
        hits=[[1], [1.0], ["1"], [10, 1e0]],
        misses=[[True], ["01"], [[1]], [{"a": 1}], [None], [1.5]],
    ),
    case("docs", "contains", "0.1", hits=[[0.1]], misses=[[0.10000000000000002], [0]]),
    case("docs", "contains", "x", hits=[["x"]], misses=[["X"], [["x"]], [{"x": 1}]]),
    case("docs", "is empty", hits=[[]], misses=[[None], [""]]),
    # map
    case("m", "is empty", hits=[{}], misses=[{"a": ""}]),
    # a property inside objects
    case("o.city", "is", "Rome", hits=["Rome"], misses=["rome"]),
    case("o.geo.lat", "is greater than", "0", hits=[1.5], misses=[-1.5, 0]),
    case("o.geo.lon", "is less than", "0", hits=[-1.5], misses=[1.5]),
    # a nullable property: null is a missing value
    case("nullable", "is", "x", hits=["x"], misses=["y", None]),
    case("nullable", "is null", hits=[None], misses=["x", ""]),
    # an object exists when any property below it does, even a nested one
    case(
        "o",
        "exists",
        hits=[{"city": "x"}, {"city": ""}, {"geo": {"lat": 0}}, {"city": "x", "geo": {}}],
        misses=[{}, {"geo": {}}],
    ),
    case("o.geo", "exists", hits=[{"lon": 1}], misses=[{}]),
)


def pools() -> dict[str, tuple[object, ...]]:
    """The JSON values the cases give each property (objects excepted), in order."""
    found: dict[str, dict[str, object]] = {path: {} for path in LEAF_PATHS}
    for c in POSITIVE_CASES:
        if c.path in found:
            for value in (*c.hits, *c.misses):
                found[c.path].setdefault(repr(value), value)
    return {path: tuple(values.values()) for path, values in found.items()}


POOLS = pools()


def presence_cases() -> Iterator[Case]:
    """``exists`` for every property: any value makes it present, be it "", [], {}, 0 or false."""
    for path, values in POOLS.items():
        present = tuple(v for v in values if v is not None)
        yield Case(path, "exists", (), present, tuple(v for v in values if v is None))


CASES = (*POSITIVE_CASES, *presence_cases())
ALL_CASES = (*CASES, *(c.complement() for c in CASES if c.operator in COMPLEMENTS.values()))


def absent_profiles(path: str) -> list[dict[str, object]]:
    """Profiles without the property: nothing at all, or only the objects on its way, empty."""
    names = path.split(".")
    enclosing = [".".join(names[:depth]) for depth in range(1, len(names))]
    return [profile({}), *(profile({outer: {}}) for outer in enclosing)]


# ---------------------------------------------------------------------------------------------
# Every operator on every kind it accepts
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("c", ALL_CASES, ids=str)
def test_operator_on_kind(c: Case) -> None:
    matches = compile_conditions("and", c.condition)
    absent = absent_profiles(c.path)
    got = {
        "hits": [matches(profile({c.path: value})) for value in c.hits],
        "misses": [matches(profile({c.path: value})) for value in c.misses],
        "absent": [matches(p) for p in absent],
    }
    assert got == {
        "hits": [True] * len(c.hits),
        "misses": [False] * len(c.misses),
        "absent": [c.operator in MATCHING_MISSING] * len(absent),
    }


def kind_label(t: Type) -> str:
    """What sets properties apart for the operators: their kind, elements' kind, allowed values."""
    if t.kind is Kind.ARRAY:
        assert t.element_type is not None
        return f"array({kind_label(t.element_type)})"
    return "string with values" if t.values is not None else str(t.kind)


# A value of each syntax, for telling the operators a property accepts from those it refuses.
SAMPLE_VALUES = ("1", "gold", "low", "2024-01-01", "07:08:09", U, "::1")


def accepted_pairs() -> Iterator[tuple[str, str]]:
    """Each operator with the kind label of each property of SCHEMA that parse_filter accepts."""
    for path, prop in walk_properties(SCHEMA):
        for operator in OPERATORS:
            if accepts(path, operator):
                yield operator, kind_label(prop.type)


def accepts(path: str, operator: str) -> bool:
    count = 2 if "between" in operator else 1
    for values in ((), *((sample,) * count for sample in SAMPLE_VALUES)):
        data = {"logical": "and", "conditions": [condition(path, operator, values)]}
        try:
            parse_filter(data, SCHEMA)
        except FilterError as refusal:
            if refusal.path.startswith("conditions[0].values"):
                continue  # values of another syntax, or none where some are needed
            return False
        return True
    return False


def test_cases_cover_every_operator_on_every_kind_it_accepts() -> None:
    types = {path: prop.type for path, prop in walk_properties(SCHEMA)}
    covered = {(c.operator, kind_label(types[c.path])) for c in ALL_CASES}
    pairs = set(accepted_pairs())
    assert ("is between", "time") in pairs and ("exists", "object") in pairs  # it enumerates
    assert pairs - covered == set()


# ---------------------------------------------------------------------------------------------
# The complement law, over generated profiles
# ---------------------------------------------------------------------------------------------


def with_empty_objects(record: dict[str, Any]) -> dict[str, Any]:
    """The record with every object it lacks present but empty, a different profile."""
    filled = dict(record)
    o = dict(filled.get("o", {}))
    o.setdefault("geo", {})
    filled["o"] = o
    return filled


def profiles() -> st.SearchStrategy[dict[str, object]]:
    flat = st.fixed_dictionaries({}, optional={p: st.sampled_from(v) for p, v in POOLS.items()})
    records = st.builds(nest, flat)
    records = st.one_of(records, records.map(with_empty_objects))
    return records.map(lambda record: decode_record(SCHEMA, record))


PAIRS = tuple(
    (compile_conditions("and", c.condition), compile_conditions("and", c.complement().condition))
    for c in CASES
    if c.operator in COMPLEMENTS.values()
)


@given(profiles())
def test_each_negative_operator_is_the_complement_of_its_positive(p: dict[str, object]) -> None:
    assert [negative(p) for _, negative in PAIRS] == [not positive(p) for positive, _ in PAIRS]


def test_the_complement_law_covers_every_negative_operator() -> None:
    negatives = {c.complement().operator for c in CASES if c.operator in COMPLEMENTS.values()}
    assert negatives == set(COMPLEMENTS)


@given(profiles(), st.lists(st.sampled_from(CASES), min_size=1, max_size=4))
def test_and_is_every_condition_or_is_any(p: dict[str, object], chosen: list[Case]) -> None:
    conditions = [c.condition for c in chosen]
    alone = [compile_conditions("and", c)(p) for c in conditions]
    assert compile_conditions("and", *conditions)(p) is all(alone)
    assert compile_conditions("or", *conditions)(p) is any(alone)


# ---------------------------------------------------------------------------------------------
# Filters of several conditions, and the truth table of the documentation
# ---------------------------------------------------------------------------------------------

COUNTRY_US = condition("s", "is", ("US",))
ADULT = condition("i", "is greater than or equal to", ("18",))


@pytest.mark.parametrize(
    ("flat", "both", "either"),
    [
        ({"s": "US", "i": 30}, True, True),
        ({"s": "US", "i": 10}, False, True),
        ({"s": "FR", "i": 30}, False, True),
        ({"s": "FR", "i": 10}, False, False),
        ({"s": "US"}, False, True),
        ({"i": 30}, False, True),
        ({}, False, False),
    ],
)
def test_and_or(flat: dict[str, object], both: bool, either: bool) -> None:
    p = profile(flat)
    assert compile_conditions("and", COUNTRY_US, ADULT)(p) is both
    assert compile_conditions("or", COUNTRY_US, ADULT)(p) is either


def test_not_in_the_us_includes_the_profiles_whose_country_is_unknown() -> None:
    not_us = compile_conditions("and", condition("s", "is not", ("US",)))
    assert [not_us(profile(flat)) for flat in ({"s": "US"}, {"s": "FR"}, {})] == [
        False,
        True,
        True,
    ]


# The truth tables of docs/filters.md. Country: "US", "FR", "", none.
COUNTRY_TABLE = {
    ("is", ("US",)): (True, False, False, False),
    ("is not", ("US",)): (False, True, True, True),
    ("is one of", ("US", "IT")): (True, False, False, False),
    ("is not one of", ("US", "IT")): (False, True, True, True),
    ("contains", ("U",)): (True, False, False, False),
    ("does not contain", ("U",)): (False, True, True, True),
    ("is between", ("A", "M")): (False, True, False, False),
    ("is not between", ("A", "M")): (True, False, True, True),
    ("is greater than", ("E",)): (True, True, False, False),
    ("is less than or equal to", ("E",)): (False, False, True, False),
    ("starts with", ("U",)): (True, False, False, False),
    ("is empty", ()): (False, False, True, True),
    ("is not empty", ()): (True, True, False, False),
    ("exists", ()): (True, True, True, False),
    ("does not exist", ()): (False, False, False, True),
}
# Subscribed: true, false, none.
SUBSCRIBED_TABLE = {
    "is true": (True, False, False),
    "is false": (False, True, False),
    "exists": (True, True, False),
    "does not exist": (False, False, True),
}


@pytest.mark.parametrize(("operator", "values"), list(COUNTRY_TABLE))
def test_truth_table_of_a_string(operator: str, values: tuple[str, ...]) -> None:
    matches = compile_conditions("and", condition("s", operator, values))
    got = tuple(matches(profile(flat)) for flat in ({"s": "US"}, {"s": "FR"}, {"s": ""}, {}))
    assert got == COUNTRY_TABLE[operator, values]


@pytest.mark.parametrize("operator", list(SUBSCRIBED_TABLE))
def test_truth_table_of_a_boolean(operator: str) -> None:
    matches = compile_conditions("and", condition("b", operator))
    got = tuple(matches(profile(flat)) for flat in ({"b": True}, {"b": False}, {}))
    assert got == SUBSCRIBED_TABLE[operator]


def test_a_profile_given_as_a_plain_mapping_works_too() -> None:
    # Profiles that did not go through decode_record: a nested value that is no object is as
    # good as missing, not an error.
    matches = compile_conditions("and", condition("o.city", "is not", ("Rome",)))
    assert matches({"o": {"city": "Rome"}}) is False
    assert matches({"o": None}) is True


@pytest.mark.parametrize(
    ("f", "reason"),
    [
        (Filter("xor", (Condition("s", "is", ("x",)),)), 'invalid logical operator "xor"'),
        (Filter("and", ()), "conditions are missing"),
        (Filter("and", (Condition("s", "equals", ("x",)),)), 'operator "equals" is not valid'),
    ],
)
def test_a_filter_that_parse_filter_would_refuse_is_not_compiled(f: Filter, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        compile_predicate(f, SCHEMA)
