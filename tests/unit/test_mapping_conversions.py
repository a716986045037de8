"""Conversions of the mapping language: which types convert (compile time), and how (run time)."""

from __future__ import annotations

import ipaddress
import math
import uuid
from datetime import UTC, date, datetime, time
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from sluice.mapping import MappingError, Purpose, RecordError, TimeLayouts, compile_mapping
from sluice.mapping.convertible import convertible
from sluice.model.types import parse_type

ABSENT = object()

KINDS = {
    "string": {"kind": "string"},
    "boolean": {"kind": "boolean"},
    "int": {"kind": "int", "bitSize": 32},
    "float": {"kind": "float", "bitSize": 64},
    "decimal": {"kind": "decimal", "precision": 10, "scale": 2},
    "datetime": {"kind": "datetime"},
    "date": {"kind": "date"},
    "time": {"kind": "time"},
    "year": {"kind": "year"},
    "uuid": {"kind": "uuid"},
    "json": {"kind": "json"},
    "ip": {"kind": "ip"},
    "array": {"kind": "array", "elementType": {"kind": "string"}},
    "object": {"kind": "object", "properties": [{"name": "a", "type": {"kind": "string"}}]},
    "map": {"kind": "map", "elementType": {"kind": "string"}},
}
INT8 = {"kind": "int", "bitSize": 8}

# §4.6 of the reference, row by row: 1 converts, 0 does not, 8 converts to or from int(8) only.
MATRIX = """
          string boolean int float decimal datetime date time year uuid json ip array object map
string    1      1       1   1     1       1        1    1    1    1    1    1  0     0      0
boolean   1      1       8   0     0       0        0    0    0    0    1    0  0     0      0
int       1      8       1   1     1       0        0    0    1    0    1    0  0     0      0
float     1      0       1   1     1       0        0    0    0    0    1    0  0     0      0
decimal   1      0       1   1     1       0        0    0    0    0    1    0  0     0      0
datetime  1      0       0   0     0       1        1    1    0    0    1    0  0     0      0
date      1      0       0   0     0       1        1    0    0    0    1    0  0     0      0
time      1      0       0   0     0       0        0    1    0    0    1    0  0     0      0
year      1      0       1   0     0       0        0    0    1    0    1    0  0     0      0
uuid      1      0       0   0     0       0        0    0    0    1    1    0  0     0      0
json      1      1       1   1     1       1        1    1    1    1    1    1  1     1      1
ip        1      0       0   0     0       0        0    0    0    0    1    1  0     0      0
array     0      0       0   0     0       0        0    0    0    0    1    0  1     0      0
object    0      0       0   0     0       0        0    0    0    0    1    0  0     1      1
map       0      0       0   0     0       0        0    0    0    0    1    0  0     1      1
"""


def _cells() -> list[tuple[str, str, str]]:
    header, *rows = MATRIX.strip().splitlines()
    targets = header.split()
    return [
        (row.split()[0], target, mark)
        for row in rows
        for target, mark in zip(targets, row.split()[1:], strict=True)
    ]


def schema_of(t: dict[str, Any], nullable: bool = True, **flags: bool) -> Any:
    prop = {"name": "v", "type": t, "nullable": nullable, **flags}
    return parse_type({"kind": "object", "properties": [prop]})


def compiles(source: dict[str, Any], target: dict[str, Any]) -> bool:
    try:
        compile_mapping({"v": "v"}, schema_of(source), schema_of(target))
    except MappingError as error:
        assert error.message.startswith("cannot convert v (type ")
        return False
    return True


@pytest.mark.parametrize(("source", "target", "mark"), _cells())
def test_conversion_matrix(source: str, target: str, mark: str) -> None:
    if mark == "8":
        other = target if source in ("boolean",) else source
        assert other in ("int", "boolean")
        narrow = (KINDS[source], INT8) if source == "boolean" else (INT8, KINDS[target])
        assert compiles(*narrow)
        assert convertible(parse_type(narrow[0]), parse_type(narrow[1]))
    expected = mark == "1"
    assert compiles(KINDS[source], KINDS[target]) is expected
    assert convertible(parse_type(KINDS[source]), parse_type(KINDS[target])) is expected


@pytest.mark.parametrize(
    ("source", "target", "expected"),
    [
        (KINDS["object"], KINDS["object"], True),
        (KINDS["object"], {"kind": "object", "properties": [{"name": "b", "type": INT8}]}, False),
        (
            KINDS["object"],
            {"kind": "object", "properties": [{"name": "a", "type": {"kind": "date"}}]},
            True,
        ),
        (
            {"kind": "object", "properties": [{"name": "a", "type": KINDS["array"]}]},
            {"kind": "object", "properties": [{"name": "a", "type": {"kind": "string"}}]},
            False,
        ),
        (
            {"kind": "object", "properties": [{"name": "a", "type": KINDS["array"]}]},
            KINDS["map"],
            False,
        ),
        ({"kind": "map", "elementType": KINDS["array"]}, KINDS["object"], False),
        ({"kind": "map", "elementType": KINDS["array"]}, KINDS["map"], False),
        ({"kind": "array", "elementType": {"kind": "uuid"}}, KINDS["array"], True),
        (
            {"kind": "array", "elementType": {"kind": "uuid"}},
            {"kind": "array", "elementType": {"kind": "date"}},
            False,
        ),
    ],
)
def test_containers_convert_when_their_parts_do(
    source: dict[str, Any], target: dict[str, Any], expected: bool
) -> None:
    assert compiles(source, target) is expected


# ---------------------------------------------------------------------------------------------
# Run time
# ---------------------------------------------------------------------------------------------


def transform(
    source: dict[str, Any],
    value: Any,
    target: dict[str, Any],
    *,
    layouts: TimeLayouts | None = None,
    purpose: Purpose = Purpose.CREATE,
    nullable: bool = True,
) -> dict[str, Any]:
    compiled = compile_mapping(
        {"v": "v"}, schema_of(source), schema_of(target, nullable), time_layouts=layouts
    )
    return compiled.transform({} if value is ABSENT else {"v": value}, purpose)


def converted(source: dict[str, Any], value: Any, target: dict[str, Any]) -> Any:
    return transform(source, value, target)["v"]


def failure(source: dict[str, Any], value: Any, target: dict[str, Any], **options: Any) -> str:
    with pytest.raises(RecordError) as caught:
        transform(source, value, target, **options)
    assert caught.value.step == "OutputValidation"
    assert caught.value.key == "v"
    return caught.value.message


UUID_TEXT = "6ba7b810-9dad-11d1-80b4-00c04fd430c8"
A_UUID = uuid.UUID(UUID_TEXT)
MOMENT = datetime(2024, 1, 2, 3, 4, 5, 120000, tzinfo=UTC)
OBJECT_AN = {
    "kind": "object",
    "properties": [
        {"name": "a", "type": {"kind": "string"}},
        {"name": "n", "type": {"kind": "int", "bitSize": 32}},
    ],
}
DECIMAL_5_1 = {"kind": "decimal", "precision": 5, "scale": 1}
ARRAY_OF_INT = {"kind": "array", "elementType": {"kind": "int", "bitSize": 32}}
MAP_OF_INT = {"kind": "map", "elementType": {"kind": "int", "bitSize": 32}}
INT16 = {"kind": "int", "bitSize": 16}


# One example per cell that converts: (source, value, target, converted value).
EXAMPLES: list[tuple[Any, Any, Any, Any]] = [
    ("string", "abc", "string", "abc"),
    ("string", "yes", "boolean", True),
    ("string", "-42", "int", -42),
    ("string", "1.5", "float", 1.5),
    ("string", "12.345", "decimal", Decimal("12.35")),
    (
        "string",
        "2024-01-02T03:04:05.5+02:00",
        "datetime",
        datetime(2024, 1, 2, 1, 4, 5, 500000, tzinfo=UTC),
    ),
    ("string", "2024-01-02", "date", date(2024, 1, 2)),
    ("string", "10:11:12.5", "time", time(10, 11, 12, 500000)),
    ("string", "2024", "year", 2024),
    ("string", UUID_TEXT.upper(), "uuid", A_UUID),
    ("string", "abc", "json", "abc"),
    ("string", "192.168.0.1", "ip", ipaddress.ip_address("192.168.0.1")),
    ("boolean", True, "string", "true"),
    ("boolean", False, "boolean", False),
    ("boolean", True, INT8, 1),
    ("boolean", True, "json", True),
    ("int", -5, "string", "-5"),
    (INT8, 2, "boolean", True),
    ("int", 100, INT8, 100),
    ("int", 3, "float", 3.0),
    ("int", 3, "decimal", Decimal("3.00")),
    ("int", 1999, "year", 1999),
    ("int", 7, "json", 7),
    ("float", 2.0, "string", "2"),
    ("float", -2.5, "int", -3),
    ("float", 1.25, "float", 1.25),
    ("float", 0.125, "decimal", Decimal("0.13")),
    ("float", 0.5, "json", 0.5),
    ("decimal", Decimal("1.50"), "string", "1.50"),
    ("decimal", Decimal("2.50"), "int", 3),
    ("decimal", Decimal("0.10"), "float", 0.1),
    (DECIMAL_5_1, Decimal("1.5"), "decimal", Decimal("1.50")),
    ("decimal", Decimal("2.50"), "json", 2.5),
    ("datetime", MOMENT, "string", "2024-01-02T03:04:05.12Z"),
    ("datetime", MOMENT, "datetime", MOMENT),
    ("datetime", MOMENT, "date", date(2024, 1, 2)),
    ("datetime", MOMENT, "time", time(3, 4, 5, 120000)),
    ("datetime", MOMENT, "json", "2024-01-02T03:04:05.12Z"),
    ("date", date(2024, 1, 2), "string", "2024-01-02"),
    ("date", date(2024, 1, 2), "datetime", datetime(2024, 1, 2, tzinfo=UTC)),
    ("date", date(2024, 1, 2), "date", date(2024, 1, 2)),
    ("date", date(2024, 1, 2), "json", "2024-01-02"),
    ("time", time(3, 4, 5, 120000), "string", "03:04:05.12"),
    ("time", time(3, 4, 5), "time", time(3, 4, 5)),
    ("time", time(3, 4, 5, 1), "json", "03:04:05.000001"),
    ("year", 2024, "string", "2024"),
    ("year", 2024, INT16, 2024),
    ("year", 2024, "year", 2024),
    ("year", 2024, "json", 2024),
    ("uuid", A_UUID, "string", UUID_TEXT),
    ("uuid", A_UUID, "uuid", A_UUID),
    ("uuid", A_UUID, "json", UUID_TEXT),
    ("json", 5, "string", "5"),
    ("json", True, "boolean", True),
    ("json", 42, "int", 42),
    ("json", 1.5, "float", 1.5),
    ("json", 1.005, "decimal", Decimal("1.01")),
    ("json", "2024-01-02", "datetime", datetime(2024, 1, 2, tzinfo=UTC)),
    ("json", "01/02/2024", "date", date(2024, 1, 2)),
    ("json", "10:11:12", "time", time(10, 11, 12)),
    ("json", 2024, "year", 2024),
    ("json", UUID_TEXT, "uuid", A_UUID),
    ("json", {"a": [1, None]}, "json", {"a": [1, None]}),
    ("json", "::1", "ip", ipaddress.ip_address("::1")),
    ("json", ["a", 1, True], "array", ["a", "1", "true"]),
    ("json", {"a": "x", "b": 1}, "object", {"a": "x"}),
    ("json", {"a": "x", "b": 1}, "map", {"a": "x", "b": "1"}),
    ("ip", ipaddress.ip_address("10.0.0.1"), "string", "10.0.0.1"),
    ("ip", ipaddress.ip_address("::ffff:192.0.2.1"), "json", "::ffff:192.0.2.1"),
    ("ip", ipaddress.ip_address("10.0.0.1"), "ip", ipaddress.ip_address("10.0.0.1")),
    (ARRAY_OF_INT, [1, 2], "json", [1, 2]),
    (ARRAY_OF_INT, [1, 2], "array", ["1", "2"]),
    (OBJECT_AN, {"a": "x", "n": 1}, "json", {"a": "x", "n": 1}),
    (OBJECT_AN, {"a": "x", "n": 1}, "object", {"a": "x"}),
    ("object", {"a": "x"}, "map", {"a": "x"}),
    (MAP_OF_INT, {"x": 1}, "json", {"x": 1}),
    ("map", {"a": "x", "zz": "y"}, "object", {"a": "x"}),
    (MAP_OF_INT, {"x": 1}, "map", {"x": "1"}),
]


@pytest.mark.parametrize(("source", "value", "target", "expected"), EXAMPLES)
def test_a_conversion_for_every_convertible_pair(
    source: Any, value: Any, target: Any, expected: Any
) -> None:
    source = KINDS[source] if isinstance(source, str) else source
    target = KINDS[target] if isinstance(target, str) else target
    result = converted(source, value, target)
    assert (result, type(result)) == (expected, type(expected))


def test_every_convertible_pair_has_a_run_time_example() -> None:
    examples = {(_kind_of(source), _kind_of(target)) for source, _, target, _ in EXAMPLES}
    allowed = {(source, target) for source, target, mark in _cells() if mark != "0"}
    assert examples == allowed


def _kind_of(t: Any) -> str:
    return t if isinstance(t, str) else str(t["kind"])


# ---------------------------------------------------------------------------------------------
# Details
# ---------------------------------------------------------------------------------------------

STRING, BOOLEAN, INT, FLOAT = KINDS["string"], KINDS["boolean"], KINDS["int"], KINDS["float"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        *[(word, True) for word in ("true", "True", "TRUE", "yes", "Yes", "YES")],
        *[(word, False) for word in ("false", "False", "FALSE", "no", "No", "NO")],
        ("", None),
    ],
)
def test_strings_that_are_booleans(text: str, expected: bool | None) -> None:
    assert converted(STRING, text, BOOLEAN) is expected


@pytest.mark.parametrize("text", ["1", "0", "y", "TrUe", " true", "on"])
def test_strings_that_are_not_booleans(text: str) -> None:
    assert failure(STRING, text, BOOLEAN) == (
        "«v» is not convertible to the «boolean» type while mapping to «v»"
    )


@pytest.mark.parametrize(
    ("number", "expected"),
    [(0.5, 1), (-0.5, -1), (1.5, 2), (2.5, 3), (-2.5, -3), (0.49999999999999994, 0), (7.0, 7)],
)
def test_floats_round_half_away_from_zero(number: float, expected: int) -> None:
    assert converted(FLOAT, number, INT) == expected


@pytest.mark.parametrize(
    ("source", "value", "target", "message"),
    [
        (FLOAT, math.nan, INT, "number «v» is not a «int(32)» value"),
        (FLOAT, math.inf, INT, "number «v» is not a «int(32)» value"),
        (FLOAT, 1e300, INT, "number «v» is greater than 2147483647"),
        (INT, 300, INT8, "number «v» is greater than 127"),
        (INT, -129, INT8, "number «v» is less than -128"),
        (
            INT,
            300,
            {"kind": "int", "bitSize": 16, "minimum": 0, "maximum": 255},
            "number «v» is greater than 255",
        ),
        (INT, -1, {"kind": "int", "bitSize": 8, "unsigned": True}, "number «v» is less than 0"),
        (STRING, "3000000000", INT, "number «v» is greater than 2147483647"),
        (STRING, "99999999999999999999", INT, "number «v» is not a «int(32)» value"),
        (STRING, "1_000", INT, "«v» is not convertible to the «int(32)» type"),
        (STRING, " 7", INT, "«v» is not convertible to the «int(32)» type"),
        (STRING, "٣", INT, "«v» is not convertible to the «int(32)» type"),
        (STRING, "1.5", INT, "«v» is not convertible to the «int(32)» type"),
        (STRING, "1e400", FLOAT, "number «v» is not a «float(64)» value"),
        (STRING, "abc", FLOAT, "«v» is not convertible to the «float(64)» type"),
        (
            FLOAT,
            1e39,
            {"kind": "float", "bitSize": 32},
            "number «v» is greater than 3.4028234663852886e+38",
        ),
        (
            FLOAT,
            math.nan,
            {"kind": "float", "bitSize": 64, "real": True},
            "number «v» is not a «float(64)» value",
        ),
        (STRING, "1e5", DECIMAL_5_1, "number «v» is greater than 9999.9"),
        (KINDS["decimal"], Decimal("-99999999.99"), DECIMAL_5_1, "number «v» is less than -9999.9"),
        (STRING, "99999999.995", KINDS["decimal"], "number «v» is greater than 99999999.99"),
        (FLOAT, math.inf, KINDS["decimal"], "number «v» is not a «decimal(10,2)» value"),
        (INT, 10000, KINDS["year"], "year of «v» is not in range [1,9999]"),
        (STRING, "0999", KINDS["year"], "«v» is not parsable as a year"),
        (STRING, "10000", KINDS["year"], "«v» is not parsable as a year"),
        (STRING, "-1", KINDS["year"], "«v» is not parsable as a year"),
        (STRING, "not-a-uuid", KINDS["uuid"], "«v» is not parsable as a UUID"),
        (STRING, "300.1.1.1", KINDS["ip"], "«v» is not parsable as an IP address"),
        (STRING, "25:00:00", KINDS["time"], "«v» is not parsable as a time in ISO 8601 format"),
        (FLOAT, math.nan, KINDS["json"], "«v» is not convertible to the «json» type"),
        (KINDS["json"], [1], STRING, "«v» is not convertible to the «string» type"),
        (KINDS["json"], {"a": 1}, INT, "«v» is not convertible to the «int(32)» type"),
        (
            KINDS["json"],
            "x",
            KINDS["array"] | {"minElements": 2},
            "«v» is not convertible to the «array(string)» type",
        ),
    ],
)
def test_conversion_failures(source: Any, value: Any, target: Any, message: str) -> None:
    assert failure(source, value, target) == f"{message} while mapping to «v»"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2024-02-29", date(2024, 2, 29)),
        ("02/29/2024", date(2024, 2, 29)),
        ("02.29.2024", date(2024, 2, 29)),
        ("24-02-29", date(2024, 2, 29)),
        ("00-01-02", date(2000, 1, 2)),
        ("68-12-31", date(2068, 12, 31)),
        ("69-01-01", date(1969, 1, 1)),
        ("99-12-31", date(1999, 12, 31)),
        ("12/31/99", date(1999, 12, 31)),
        ("01/02/00", date(2000, 1, 2)),
        ("01.02.69", date(1969, 1, 2)),
        ("45000", date(2023, 3, 15)),
        ("45000.75", date(2023, 3, 15)),
        ("059", date(1900, 2, 28)),
        ("061", date(1900, 3, 1)),
        ("", None),
    ],
)
def test_strings_that_are_dates(text: str, expected: date | None) -> None:
    assert converted(STRING, text, KINDS["date"]) == expected


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("2024-02-30", "is not parsable as a date in ISO 8601 format"),
        ("2024-1-2", "is not parsable as a date in ISO 8601 format"),
        ("13/01/2024", "is not parsable as a date in ISO 8601 format"),
        ("12/31-2024", "is not parsable as a date in ISO 8601 format"),
        ("060", "is not parsable as a date in ISO 8601 format"),
        ("45", "is not parsable as a date in ISO 8601 format"),
        ("9999999", "is not in range [1,9999]"),
        ("0000-01-01", "is not in range [1,9999]"),
    ],
)
def test_strings_that_are_not_dates(text: str, reason: str) -> None:
    message = failure(STRING, text, KINDS["date"])
    assert reason in message


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2024-01-02T03:04:05Z", datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)),
        ("2024-01-02T03:04:05.123456789-01:30", datetime(2024, 1, 2, 4, 34, 5, 123456, tzinfo=UTC)),
    ],
)
def test_strings_that_are_datetimes_are_rfc_3339(text: str, expected: datetime) -> None:
    assert converted(STRING, text, KINDS["datetime"]) == expected


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("2024-01-02 03:04:05Z", "is not parsable as a date time in ISO 8601 format"),
        ("2024-01-02T03:04:05", "is not parsable as a date time in ISO 8601 format"),
        ("2024-01-02", "is not parsable as a date time in ISO 8601 format"),
        ("2024-13-02T03:04:05Z", "is not parsable as a date time in ISO 8601 format"),
        ("0000-01-01T00:00:00Z", "is not in range [1,9999]"),
        ("0001-01-01T00:00:00+01:00", "is not in range [1,9999]"),
    ],
)
def test_strings_that_are_not_datetimes(text: str, reason: str) -> None:
    assert reason in failure(STRING, text, KINDS["datetime"])


@pytest.mark.parametrize(
    ("target", "text", "message"),
    [
        ({"kind": "string", "maxLength": 3}, "abcd", "«v» exceeds the 3-char limit"),
        ({"kind": "string", "maxLength": 3}, "ééé", None),
        ({"kind": "string", "maxBytes": 4}, "ééé", "«v» exceeds the 4-byte limit"),
        ({"kind": "string", "maxBytes": 4}, "éé", None),
        ({"kind": "string", "values": ["a", "b"]}, "c", "«v» is not one of the allowed values"),
        ({"kind": "string", "values": ["a", "b"]}, "b", None),
        ({"kind": "string", "pattern": "^[a-z]+$"}, "A1", "«v» does not match «/^[a-z]+$/»"),
        ({"kind": "string", "pattern": "[a-z]"}, "1a1", None),
        (
            {"kind": "string", "values": ["abc"], "maxLength": 2},
            "abc",
            "«v» exceeds the 2-char limit",
        ),
    ],
)
def test_destination_string_constraints(target: Any, text: str, message: str | None) -> None:
    if message is None:
        assert converted(STRING, text, target) == text
    else:
        assert failure(STRING, text, target) == f"{message} while mapping to «v»"


@pytest.mark.parametrize(
    ("source", "value", "target"),
    [
        (STRING, "", INT),
        (STRING, "", KINDS["date"]),
        (STRING, "", KINDS["uuid"]),
        (KINDS["json"], "", INT),
        (KINDS["json"], None, STRING),
        (KINDS["json"], None, INT),
        (STRING, "", {"kind": "string", "values": ["a"]}),
        (STRING, "", {"kind": "string", "pattern": "^x"}),
    ],
)
def test_values_that_become_nil(source: Any, value: Any, target: Any) -> None:
    assert transform(source, value, target, nullable=True) == {"v": None}
    assert transform(source, value, target, nullable=False) == {}


@pytest.mark.parametrize(
    ("source", "value", "target", "expected"),
    [
        (STRING, "", STRING, ""),
        (STRING, "", KINDS["json"], ""),
        (STRING, "", {"kind": "string", "values": ["", "a"]}, ""),
        (STRING, "", {"kind": "string", "pattern": "^x?$"}, ""),
        (KINDS["json"], None, KINDS["json"], None),
    ],
)
def test_values_that_stay_values(source: Any, value: Any, target: Any, expected: Any) -> None:
    # Kept even where null is not allowed: the JSON null is a JSON value.
    assert transform(source, value, target, nullable=False) == {"v": expected}


@pytest.mark.parametrize(
    ("target", "value", "message"),
    [
        (KINDS["array"] | {"minElements": 3}, [1, 2], "«v» has fewer than 3 elements"),
        (KINDS["array"] | {"maxElements": 1}, [1, 2], "«v» has more than 1 elements"),
        (
            KINDS["array"] | {"uniqueElements": True},
            [1, 1],
            "«v» has repeated elements, but «array(string)» requires unique ones",
        ),
        (
            {"kind": "array", "elementType": {"kind": "string", "maxLength": 1}},
            [1, 22],
            "«v»[1] exceeds the 1-char limit",
        ),
    ],
)
def test_array_constraints(target: Any, value: list[int], message: str) -> None:
    assert failure(ARRAY_OF_INT, value, target) == f"{message} while mapping to «v»"


REQUIRED_A = {
    "kind": "object",
    "properties": [
        {"name": "a", "type": STRING, "createRequired": True},
        {"name": "b", "type": INT, "nullable": True},
        {"name": "c", "type": INT},
    ],
}


@pytest.mark.parametrize(
    ("source", "value", "purpose", "expected"),
    [
        ("map", {"a": "x", "b": "", "c": ""}, Purpose.CREATE, {"a": "x", "b": None}),
        ("map", {"b": "1"}, Purpose.UPDATE, {"b": 1}),
        ("json", {"a": "x", "b": None, "c": None, "d": 1}, Purpose.CREATE, {"a": "x", "b": None}),
        ("json", {"c": 1.5}, Purpose.UPDATE, {"c": 2}),
    ],
)
def test_objects_apply_the_null_rules_to_their_properties(
    source: str, value: Any, purpose: Purpose, expected: dict[str, Any]
) -> None:
    assert transform(KINDS[source], value, REQUIRED_A, purpose=purpose) == {"v": expected}


@pytest.mark.parametrize("source", ["map", "json"])
def test_objects_need_the_properties_required_for_the_purpose(source: str) -> None:
    assert failure(KINDS[source], {"b": "1"}, REQUIRED_A) == (
        "«v».a is null but it is required for creation while mapping to «v»"
    )


# ---------------------------------------------------------------------------------------------
# Destination time layouts
# ---------------------------------------------------------------------------------------------

LATE = datetime(2024, 3, 5, 14, 7, 9, 120000, tzinfo=UTC)
EARLY = datetime(2024, 11, 25, 0, 0, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("layout", "value", "expected"),
    [
        ("2006-01-02T15:04:05.999Z", LATE, "2024-03-05T14:07:09.12Z"),
        ("2006-01-02T15:04:05.999Z", EARLY, "2024-11-25T00:00:00Z"),
        ("2006-01-02T15:04:05.000Z07:00", EARLY, "2024-11-25T00:00:00.000Z"),
        ("2006-01-02T15:04:05,000000-07:00", LATE, "2024-03-05T14:07:09,120000+00:00"),
        ("Mon Jan _2 15:04:05 MST 2006", LATE, "Tue Mar  5 14:07:09 UTC 2024"),
        ("Monday, January 2, 06", EARLY, "Monday, November 25, 24"),
        ("3:4:5 PM pm 03", LATE, "2:7:9 PM pm 02"),
        ("3 PM", EARLY, "12 AM"),
        ("1/2 002 __2", LATE, "3/5 065  65"),
        (
            "-0700 -07 Z0700 Z07 -07:00:00 -070000 Z07:00:00 Z070000",
            LATE,
            "+0000 +00 Z Z +00:00:00 +000000 Z Z",
        ),
        ("Janet Month", LATE, "Janet Month"),
        # As in Go: "01" in "0001" is the month, and "1" in "100%" is the month too.
        ("_2006 .5 0.0001", LATE, "_2024 .9 0.0003"),
        ("100%", LATE, "300%"),
        ("unix", LATE, 1709647629),
        ("unixmilli", LATE, 1709647629120),
        ("unixmicro", LATE, 1709647629120000),
        ("unixnano", LATE, 1709647629120000000),
        ("unix", datetime(1969, 12, 31, 23, 59, 59, 500000, tzinfo=UTC), -1),
    ],
)
def test_datetime_layouts(layout: str, value: datetime, expected: str | int) -> None:
    layouts = TimeLayouts(datetime=layout)
    assert transform(KINDS["datetime"], value, KINDS["datetime"], layouts=layouts) == {
        "v": expected
    }


@pytest.mark.parametrize(
    ("layouts", "kind", "value", "expected"),
    [
        (TimeLayouts(), "date", date(2024, 1, 2), "2024-01-02"),
        (TimeLayouts(date="01/02/2006 15:04"), "date", date(24, 1, 2), "01/02/0024 00:00"),
        (TimeLayouts(), "time", time(1, 2, 3, 400500), "01:02:03.4Z"),
        (TimeLayouts(time="2006 3:04PM"), "time", time(13, 2), "1970 1:02PM"),
    ],
)
def test_date_and_time_layouts(layouts: TimeLayouts, kind: str, value: Any, expected: str) -> None:
    assert transform(KINDS[kind], value, KINDS[kind], layouts=layouts) == {"v": expected}


def test_layouts_apply_to_converted_and_nested_values() -> None:
    out = {"kind": "array", "elementType": {"kind": "datetime"}}
    layouts = TimeLayouts(datetime="unix")
    assert transform(KINDS["json"], ["1970-01-01T00:01:00Z"], out, layouts=layouts) == {"v": [60]}
    assert transform(STRING, "2024-01-02", KINDS["date"], layouts=TimeLayouts()) == {
        "v": "2024-01-02"
    }


def test_nanoseconds_since_1970_must_fit_64_bits() -> None:
    late = datetime(2300, 1, 1, tzinfo=UTC)
    message = failure(
        KINDS["datetime"], late, KINDS["datetime"], layouts=TimeLayouts(datetime="unixnano")
    )
    assert message == (
        "«v» is outside the range supported by the «unixnano» datetime format while mapping to «v»"
    )


@pytest.mark.parametrize("field", ["date", "time"])
def test_only_datetimes_have_unix_layouts(field: str) -> None:
    with pytest.raises(ValueError, match=f'the {field} layout cannot be "unix"'):
        TimeLayouts(**{field: "unix"})


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=12),
    lambda children: (
        st.lists(children, max_size=3)
        | st.dictionaries(st.sampled_from(["a", "b", "n", "x y"]), children, max_size=3)
    ),
    max_leaves=10,
)
TARGETS = st.sampled_from(
    [
        *KINDS.values(),
        INT8,
        DECIMAL_5_1,
        REQUIRED_A,
        {"kind": "string", "maxBytes": 3, "pattern": "^[a-z]*$"},
        {"kind": "array", "elementType": INT8, "maxElements": 2, "uniqueElements": True},
        {"kind": "map", "elementType": KINDS["date"]},
    ]
)


@settings(max_examples=400, deadline=None)
@given(source=st.sampled_from(["json", "string"]), value=JSON_VALUES, target=TARGETS)
def test_conversions_fail_only_with_record_errors(source: str, value: Any, target: Any) -> None:
    assume(convertible(parse_type(KINDS[source]), parse_type(target)))
    if source == "string":
        value = str(value)
    elif value is None:
        value = ABSENT
    for purpose in Purpose:
        try:
            transform(KINDS[source], value, target, purpose=purpose, layouts=TimeLayouts())
        except RecordError as error:
            assert error.step == "OutputValidation"
