"""Decoding and encoding values of the schema type system (sluice.model.values)."""

from __future__ import annotations

import ipaddress
import math
import uuid
from datetime import UTC, date, datetime, time, timedelta, timezone
from decimal import Context, Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sluice.model.types import Kind, Property, Type, int_range, object_type
from sluice.model.values import InvalidValue, decode_record, decode_value, encode_value

STRING = Type(Kind.STRING)
BOOLEAN = Type(Kind.BOOLEAN)
INT8 = Type(Kind.INT, bit_size=8)
UINT8 = Type(Kind.INT, bit_size=8, unsigned=True)
INT24 = Type(Kind.INT, bit_size=24)
INT32 = Type(Kind.INT, bit_size=32)
INT64 = Type(Kind.INT, bit_size=64)
UINT64 = Type(Kind.INT, bit_size=64, unsigned=True)
FLOAT32 = Type(Kind.FLOAT, bit_size=32)
FLOAT64 = Type(Kind.FLOAT, bit_size=64)
REAL64 = Type(Kind.FLOAT, bit_size=64, real=True)
DECIMAL_5_2 = Type(Kind.DECIMAL, precision=5, scale=2)
DECIMAL_30_0 = Type(Kind.DECIMAL, precision=30, scale=0)
DECIMAL_38_0 = Type(Kind.DECIMAL, precision=38, scale=0)
DECIMAL_20_10 = Type(Kind.DECIMAL, precision=20, scale=10)
DATETIME = Type(Kind.DATETIME)
DATE = Type(Kind.DATE)
TIME = Type(Kind.TIME)
YEAR = Type(Kind.YEAR)
UUID = Type(Kind.UUID)
IP = Type(Kind.IP)
JSON = Type(Kind.JSON)


def array(element: Type, **params: Any) -> Type:
    return Type(Kind.ARRAY, element_type=element, **params)


def map_of(element: Type) -> Type:
    return Type(Kind.MAP, element_type=element)


def prop(name: str, t: Type, *, read_optional: bool = False, nullable: bool = False) -> Property:
    return Property(name, t, read_optional=read_optional, nullable=nullable)


def decode_error(t: Type, value: object, path: str = "x") -> InvalidValue:
    with pytest.raises(InvalidValue) as caught:
        decode_value(t, value, path)
    return caught.value


# ---------------------------------------------------------------------------------------------
# Accepted values: the Python value and the canonical JSON it encodes back to
# ---------------------------------------------------------------------------------------------

UTC_2024 = datetime(2024, 3, 5, 10, 20, 30, tzinfo=UTC)

ACCEPTED: list[tuple[str, Type, object, object, object]] = [
    # id, type, JSON input, Python value, canonical JSON
    ("string", STRING, "héllo", "héllo", "héllo"),
    ("empty string", STRING, "", "", ""),
    ("maxLength counts characters", Type(Kind.STRING, max_length=3), "ééé", "ééé", "ééé"),
    ("maxBytes 4 accepts 2 two-byte chars", Type(Kind.STRING, max_bytes=4), "éé", "éé", "éé"),
    ("maxBytes 4 accepts 4 ASCII chars", Type(Kind.STRING, max_bytes=4), "abcd", "abcd", "abcd"),
    ("enum", Type(Kind.STRING, values=("a", "b", "")), "", "", ""),
    ("pattern searches", Type(Kind.STRING, pattern=r"\d+"), "ab12", "ab12", "ab12"),
    ("true", BOOLEAN, True, True, True),
    ("false", BOOLEAN, False, False, False),
    ("int8 max", INT8, 127, 127, 127),
    ("int8 min", INT8, -128, -128, -128),
    ("uint8 max", UINT8, 255, 255, 255),
    ("int24 min", INT24, -8388608, -8388608, -8388608),
    ("integral float", INT32, 5.0, 5, 5),
    ("exponent float", INT32, 1e3, 1000, 1000),
    ("int64 string", INT64, "9223372036854775807", 2**63 - 1, "9223372036854775807"),
    ("int64 negative string", INT64, "-9223372036854775808", -(2**63), "-9223372036854775808"),
    ("int64 number", INT64, 42, 42, "42"),
    ("int64 plus sign", INT64, "+7", 7, "7"),
    ("int64 leading zeros", INT64, "007", 7, "7"),
    ("uint64 max", UINT64, "18446744073709551615", 2**64 - 1, "18446744073709551615"),
    ("float", FLOAT64, 1.5, 1.5, 1.5),
    ("float from integer", FLOAT64, 3, 3.0, 3.0),
    ("float32 max", FLOAT32, 3.4028234663852886e38, 3.4028234663852886e38, 3.4028234663852886e38),
    ("Infinity", FLOAT64, "Infinity", math.inf, "Infinity"),
    ("-Infinity", FLOAT64, "-Infinity", -math.inf, "-Infinity"),
    (
        "Infinity under a minimum only",
        Type(Kind.FLOAT, bit_size=64, minimum=0.0),
        "Infinity",
        math.inf,
        "Infinity",
    ),
    ("decimal", DECIMAL_5_2, 123.45, Decimal("123.45"), 123.45),
    ("decimal string", DECIMAL_5_2, "-123.45", Decimal("-123.45"), -123.45),
    ("decimal integer", DECIMAL_5_2, 1, Decimal("1.00"), 1),
    ("decimal trailing zeros", DECIMAL_5_2, "1.2300", Decimal("1.23"), 1.23),
    ("decimal exponent", DECIMAL_5_2, "1.5e2", Decimal("150.00"), 150),
    ("decimal scale 0", DECIMAL_30_0, "1e29", Decimal(10**29), 10**29),
    (
        "decimal wider than 28 digits",
        DECIMAL_30_0,
        "123456789012345678901234567890",
        Decimal("123456789012345678901234567890"),
        123456789012345678901234567890,
    ),
    (
        "decimal a float cannot hold",
        DECIMAL_20_10,
        "1234567890.0123456789",
        Decimal("1234567890.0123456789"),
        "1234567890.0123456789",
    ),
    ("datetime Z", DATETIME, "2024-03-05T10:20:30Z", UTC_2024, "2024-03-05T10:20:30Z"),
    (
        "datetime no offset is UTC",
        DATETIME,
        "2024-03-05T10:20:30",
        UTC_2024,
        "2024-03-05T10:20:30Z",
    ),
    (
        "datetime to UTC",
        DATETIME,
        "2024-03-05T12:20:30.5+02:00",
        UTC_2024.replace(microsecond=500000),
        "2024-03-05T10:20:30.500Z",
    ),
    (
        "datetime nanoseconds truncated",
        DATETIME,
        "2024-03-05T10:20:30.123456789Z",
        UTC_2024.replace(microsecond=123456),
        "2024-03-05T10:20:30.123456Z",
    ),
    (
        "datetime 4 fraction digits",
        DATETIME,
        "2024-03-05T10:20:30.1234Z",
        UTC_2024.replace(microsecond=123400),
        "2024-03-05T10:20:30.123400Z",
    ),
    (
        "datetime date only",
        DATETIME,
        "2024-03-05",
        UTC_2024.replace(hour=0, minute=0, second=0),
        "2024-03-05T00:00:00Z",
    ),
    (
        "datetime year 999 padded",
        DATETIME,
        "0999-01-01T00:00:00Z",
        datetime(999, 1, 1, tzinfo=UTC),
        "0999-01-01T00:00:00Z",
    ),
    (
        "datetime last instant",
        DATETIME,
        "9999-12-31T23:59:59.999999Z",
        datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
        "9999-12-31T23:59:59.999999Z",
    ),
    ("date", DATE, "2024-02-29", date(2024, 2, 29), "2024-02-29"),
    ("date year 1", DATE, "0001-01-01", date(1, 1, 1), "0001-01-01"),
    ("time", TIME, "10:20:30", time(10, 20, 30), "10:20:30"),
    ("time milliseconds", TIME, "10:20:30.5", time(10, 20, 30, 500000), "10:20:30.500"),
    ("time microseconds", TIME, "10:20:30.000001", time(10, 20, 30, 1), "10:20:30.000001"),
    (
        "time nanoseconds truncated",
        TIME,
        "23:59:59.123456789",
        time(23, 59, 59, 123456),
        "23:59:59.123456",
    ),
    ("year", YEAR, 2024, 2024, 2024),
    ("year integral float", YEAR, 2024.0, 2024, 2024),
    ("year 1", YEAR, 1, 1, 1),
    ("year 9999", YEAR, 9999, 9999, 9999),
    (
        "uuid",
        UUID,
        "0188a4e7-7c3b-7000-8000-00000000000a",
        uuid.UUID("0188a4e7-7c3b-7000-8000-00000000000a"),
        "0188a4e7-7c3b-7000-8000-00000000000a",
    ),
    (
        "uuid upper case",
        UUID,
        "0188A4E7-7C3B-7000-8000-00000000000A",
        uuid.UUID("0188a4e7-7c3b-7000-8000-00000000000a"),
        "0188a4e7-7c3b-7000-8000-00000000000a",
    ),
    ("ipv4", IP, "192.168.0.1", ipaddress.IPv4Address("192.168.0.1"), "192.168.0.1"),
    ("ipv6", IP, "2001:0DB8:0000::1", ipaddress.IPv6Address("2001:db8::1"), "2001:db8::1"),
    (
        "ipv4-mapped ipv6",
        IP,
        "::FFFF:C000:0201",
        ipaddress.IPv6Address("::ffff:192.0.2.1"),
        "::ffff:192.0.2.1",
    ),
    ("json object", JSON, {"a": [1, None, "b"]}, {"a": [1, None, "b"]}, {"a": [1, None, "b"]}),
    ("json null", JSON, None, None, None),
    ("json string", JSON, "text", "text", "text"),
    ("array", array(INT8), [1, 2], [1, 2], [1, 2]),
    ("empty array", array(STRING), [], [], []),
    ("array of json nulls", array(JSON), [None, 1], [None, 1], [None, 1]),
    ("array of int64", array(INT64), ["1", 2], [1, 2], ["1", "2"]),
    ("map", map_of(INT8), {"b": 2, "a": 1}, {"b": 2, "a": 1}, {"a": 1, "b": 2}),
    ("map of json null", map_of(JSON), {"k": None}, {"k": None}, {"k": None}),
]


@pytest.mark.parametrize(
    ("t", "raw", "python", "canonical"),
    [case[1:] for case in ACCEPTED],
    ids=[case[0] for case in ACCEPTED],
)
def test_accepted_values_decode_and_encode_canonically(
    t: Type, raw: object, python: object, canonical: object
) -> None:
    decoded = decode_value(t, raw)
    assert decoded == python
    assert type(decoded) is type(python)
    encoded = encode_value(t, decoded)
    assert encoded == canonical
    assert type(encoded) is type(canonical)
    assert decode_value(t, encoded) == python


def test_nan_decodes_to_nan_and_encodes_back_to_its_name() -> None:
    decoded = decode_value(FLOAT64, "NaN")
    assert isinstance(decoded, float) and math.isnan(decoded)
    assert encode_value(FLOAT64, decoded) == "NaN"


def test_decoded_decimals_carry_the_type_scale() -> None:
    assert str(decode_value(DECIMAL_5_2, "1.5")) == "1.50"
    assert str(decode_value(DECIMAL_30_0, 12)) == "12"


def test_decoded_datetimes_are_aware_utc() -> None:
    decoded = decode_value(DATETIME, "2024-03-05T10:20:30-08:00")
    assert isinstance(decoded, datetime)
    assert decoded.tzinfo is UTC
    assert decoded == datetime(2024, 3, 5, 18, 20, 30, tzinfo=UTC)


# ---------------------------------------------------------------------------------------------
# Rejected values and their messages
# ---------------------------------------------------------------------------------------------

TWELVE_VALUES = tuple(f"v{i}" for i in range(12))

REJECTED: list[tuple[str, Type, object, str]] = [
    # strings
    ("string wrong type", STRING, 5, 'property "x" must be a string, not the number 5'),
    (
        "maxLength",
        Type(Kind.STRING, max_length=3),
        "abcd",
        'property "x" is longer than 3 characters: "abcd"',
    ),
    (
        "maxBytes counts bytes",
        Type(Kind.STRING, max_bytes=4),
        "ééé",
        'property "x" is longer than 4 bytes: "ééé"',
    ),
    (
        "maxBytes 1",
        Type(Kind.STRING, max_bytes=1),
        "é",
        'property "x" is longer than 1 byte: "é"',
    ),
    (
        "maxBytes four-byte character",
        Type(Kind.STRING, max_bytes=3),
        "😀",
        'property "x" is longer than 3 bytes: "😀"',
    ),
    (
        "enum of three",
        Type(Kind.STRING, values=("a", "b", "c")),
        "d",
        'property "x" has an invalid value: "d"; valid values are "a", "b", and "c"',
    ),
    (
        "enum of two",
        Type(Kind.STRING, values=("a", "b")),
        "d",
        'property "x" has an invalid value: "d"; valid values are "a" and "b"',
    ),
    (
        "enum of one",
        Type(Kind.STRING, values=("a",)),
        "d",
        'property "x" has an invalid value: "d"; the only valid value is "a"',
    ),
    (
        "long enum",
        Type(Kind.STRING, values=TWELVE_VALUES),
        "d",
        'property "x" has an invalid value: "d"; valid values are "v0", "v1", "v2", "v3", '
        '"v4", "v5", "v6", "v7", "v8", "v9", and 2 more',
    ),
    (
        "pattern",
        Type(Kind.STRING, pattern=r"^\d+$"),
        "12a",
        'property "x" has an invalid value: "12a"; '
        'it does not match the regular expression "^\\d+$"',
    ),
    (
        "lone surrogate",
        STRING,
        "a\ud800",
        'property "x" is not valid Unicode: it contains a lone surrogate',
    ),
    (
        "long value truncated",
        Type(Kind.STRING, max_length=10),
        "a" * 60,
        f'property "x" is longer than 10 characters: "{"a" * 50}…"',
    ),
    (
        "quotes escaped",
        Type(Kind.STRING, max_length=1),
        'a"b',
        'property "x" is longer than 1 character: "a\\"b"',
    ),
    ("string from Python", STRING, {1, 2}, 'property "x" must be a string, not a Python set'),
    # booleans
    ("boolean string", BOOLEAN, "true", 'property "x" must be a boolean, not the string "true"'),
    ("boolean number", BOOLEAN, 1, 'property "x" must be a boolean, not the number 1'),
    # ints
    ("uint8 over", UINT8, 300, 'property "x" is out of range [0, 255]: 300'),
    ("uint8 negative", UINT8, -1, 'property "x" is out of range [0, 255]: -1'),
    ("int8 over", INT8, 128, 'property "x" is out of range [-128, 127]: 128'),
    ("int8 under", INT8, -129, 'property "x" is out of range [-128, 127]: -129'),
    ("int24 over", INT24, 2**23, 'property "x" is out of range [-8388608, 8388607]: 8388608'),
    (
        "int explicit bounds",
        Type(Kind.INT, bit_size=32, minimum=1, maximum=10),
        11,
        'property "x" is out of range [1, 10]: 11',
    ),
    ("int fraction", INT32, 1.5, 'property "x" must be an integer, not the number 1.5'),
    ("int32 string", INT32, "5", 'property "x" must be an integer, not the string "5"'),
    ("int boolean", INT32, True, 'property "x" must be an integer, not the boolean true'),
    ("int null", INT32, None, 'property "x" cannot be null'),
    ("int array", INT32, [1], 'property "x" must be an integer, not an array'),
    ("int64 letters", INT64, "12a", 'property "x" is not a valid int(64): "12a"'),
    ("int64 spaces", INT64, " 12", 'property "x" is not a valid int(64): " 12"'),
    ("int64 underscores", INT64, "1_000", 'property "x" is not a valid int(64): "1_000"'),
    ("int64 non-ASCII digits", INT64, "١٢", 'property "x" is not a valid int(64): "١٢"'),
    ("uint64 sign", UINT64, "-1", 'property "x" is out of range [0, 18446744073709551615]: -1'),
    (
        "int64 over",
        INT64,
        "9223372036854775808",
        'property "x" is out of range [-9223372036854775808, 9223372036854775807]: '
        "9223372036854775808",
    ),
    (
        "int64 far over",
        INT64,
        "1" * 30,
        f'property "x" is out of range [-9223372036854775808, 9223372036854775807]: "{"1" * 30}"',
    ),
    ("int64 fraction", INT64, 1.5, 'property "x" must be an integer, not the number 1.5'),
    # floats
    ("real NaN", REAL64, "NaN", 'property "x" is not a real number: "NaN"'),
    ("real Infinity", REAL64, "Infinity", 'property "x" is not a real number: "Infinity"'),
    (
        "float other string",
        FLOAT64,
        "1.5",
        'property "x" must be a number or one of "NaN", "Infinity" and "-Infinity", '
        'not the string "1.5"',
    ),
    ("real string", REAL64, "abc", 'property "x" must be a number, not the string "abc"'),
    (
        "float32 over",
        FLOAT32,
        1e39,
        'property "x" is out of range [-3.4028234663852886e+38, 3.4028234663852886e+38]: 1e+39',
    ),
    (
        "float huge integer",
        FLOAT64,
        10**400,
        'property "x" is out of range [-1.7976931348623157e+308, 1.7976931348623157e+308]: '
        + str(10**400)[:50]
        + "…",
    ),
    (
        "float explicit bounds",
        Type(Kind.FLOAT, bit_size=64, minimum=0.5, maximum=10.0),
        10.5,
        'property "x" is out of range [0.5, 10]: 10.5',
    ),
    (
        "Infinity over a maximum",
        Type(Kind.FLOAT, bit_size=64, minimum=0.0, maximum=10.0),
        "Infinity",
        'property "x" is out of range [0, 10]: Infinity',
    ),
    (
        "-Infinity under a minimum",
        Type(Kind.FLOAT, bit_size=64, minimum=0.0),
        "-Infinity",
        'property "x" is out of range [0, 1.7976931348623157e+308]: -Infinity',
    ),
    (
        "NaN with a bound",
        Type(Kind.FLOAT, bit_size=64, maximum=10.0),
        "NaN",
        'property "x" is out of range [-1.7976931348623157e+308, 10]: NaN',
    ),
    (
        "float boolean",
        FLOAT64,
        False,
        'property "x" must be a number or one of "NaN", '
        '"Infinity" and "-Infinity", not the boolean false',
    ),
    # decimals
    (
        "decimal scale",
        DECIMAL_5_2,
        123.456,
        'property "x" has more than 2 digits after the decimal point: 123.456',
    ),
    (
        "decimal scale 0",
        DECIMAL_30_0,
        "0.5",
        'property "x" has more than 0 digits after the decimal point: 0.5',
    ),
    (
        "decimal precision",
        DECIMAL_5_2,
        1000,
        'property "x" has more than 3 digits before the decimal point: 1000',
    ),
    (
        "decimal 38 digits refuses -10**38",
        DECIMAL_38_0,
        -(10**38),
        'property "x" has more than 38 digits before the decimal point: -1' + "0" * 38,
    ),
    (
        "decimal explicit bounds",
        Type(Kind.DECIMAL, precision=5, scale=2, minimum=Decimal(0), maximum=Decimal(100)),
        "100.01",
        'property "x" is out of range [0, 100]: 100.01',
    ),
    ("decimal letters", DECIMAL_5_2, "abc", 'property "x" is not a valid decimal: "abc"'),
    ("decimal NaN", DECIMAL_5_2, "NaN", 'property "x" is not a valid decimal: "NaN"'),
    (
        "decimal huge exponent",
        DECIMAL_5_2,
        "1e9999999999999999999",
        'property "x" is not a valid decimal: "1e9999999999999999999"',
    ),
    ("decimal boolean", DECIMAL_5_2, True, 'property "x" must be a number, not the boolean true'),
    ("decimal object", DECIMAL_5_2, {}, 'property "x" must be a number, not an object'),
    # datetimes, dates, times, years
    (
        "datetime words",
        DATETIME,
        "yesterday",
        'property "x" is not a valid datetime (ISO 8601): "yesterday"',
    ),
    (
        "datetime month 13",
        DATETIME,
        "2024-13-01T00:00:00Z",
        'property "x" is not a valid datetime (ISO 8601): "2024-13-01T00:00:00Z"',
    ),
    (
        "datetime NUL",
        DATETIME,
        "2024-01-01T00:00:00\x00junk",
        'property "x" is not a valid datetime (ISO 8601): "2024-01-01T00:00:00\\u0000junk"',
    ),
    (
        "datetime year 0",
        DATETIME,
        "0000-01-01T00:00:00Z",
        'property "x" has a year out of range [1, 9999]: "0000-01-01T00:00:00Z"',
    ),
    (
        "datetime year 10000 in UTC",
        DATETIME,
        "9999-12-31T23:00:00-05:00",
        'property "x" has a year out of range [1, 9999]: "9999-12-31T23:00:00-05:00"',
    ),
    ("datetime number", DATETIME, 5, 'property "x" must be a string, not the number 5'),
    (
        "date not a day",
        DATE,
        "2023-02-29",
        'property "x" is not a valid date (YYYY-MM-DD): "2023-02-29"',
    ),
    ("date short", DATE, "2024-2-29", 'property "x" is not a valid date (YYYY-MM-DD): "2024-2-29"'),
    ("date basic", DATE, "20240229", 'property "x" is not a valid date (YYYY-MM-DD): "20240229"'),
    (
        "date with time",
        DATE,
        "2024-02-29T00:00:00Z",
        'property "x" is not a valid date (YYYY-MM-DD): "2024-02-29T00:00:00Z"',
    ),
    (
        "date year 0",
        DATE,
        "0000-01-01",
        'property "x" has a year out of range [1, 9999]: "0000-01-01"',
    ),
    (
        "time hour 24",
        TIME,
        "24:00:00",
        'property "x" is not a valid time (HH:MM:SS[.fffffffff]): "24:00:00"',
    ),
    (
        "time no seconds",
        TIME,
        "10:20",
        'property "x" is not a valid time (HH:MM:SS[.fffffffff]): "10:20"',
    ),
    (
        "time ten fraction digits",
        TIME,
        "10:20:30.1234567890",
        'property "x" is not a valid time (HH:MM:SS[.fffffffff]): "10:20:30.1234567890"',
    ),
    (
        "time zone",
        TIME,
        "10:20:30Z",
        'property "x" is not a valid time (HH:MM:SS[.fffffffff]): "10:20:30Z"',
    ),
    ("year 0", YEAR, 0, 'property "x" is out of range [1, 9999]: 0'),
    ("year 10000", YEAR, 10000, 'property "x" is out of range [1, 9999]: 10000'),
    ("year string", YEAR, "2024", 'property "x" must be an integer, not the string "2024"'),
    # uuids and ips
    (
        "uuid braces",
        UUID,
        "{0188a4e7-7c3b-7000-8000-00000000000a}",
        'property "x" is not a valid UUID: "{0188a4e7-7c3b-7000-8000-00000000000a}"',
    ),
    (
        "uuid without hyphens",
        UUID,
        "0188a4e77c3b7000800000000000000a",
        'property "x" is not a valid UUID: "0188a4e77c3b7000800000000000000a"',
    ),
    (
        "uuid hyphens misplaced",
        UUID,
        "0188a4e77-c3b-7000-8000-00000000000a",
        'property "x" is not a valid UUID: "0188a4e77-c3b-7000-8000-00000000000a"',
    ),
    ("uuid number", UUID, 1, 'property "x" must be a string, not the number 1'),
    ("ip octet", IP, "256.1.1.1", 'property "x" is not a valid IP address: "256.1.1.1"'),
    ("ip leading zero", IP, "01.2.3.4", 'property "x" is not a valid IP address: "01.2.3.4"'),
    ("ip number", IP, 3232235521, 'property "x" must be a string, not the number 3232235521'),
    # json
    ("json NaN", JSON, [math.nan], 'property "x" is not a JSON value: it contains NaN'),
    (
        "json integer key",
        JSON,
        {1: "a"},
        'property "x" is not a JSON value: it has the object key 1',
    ),
    ("json tuple", JSON, (1, 2), 'property "x" is not a JSON value: it contains a Python tuple'),
    # containers
    ("array wrong type", array(STRING), "a", 'property "x" must be an array, not the string "a"'),
    (
        "maxElements 4 rejects 5",
        array(INT8, max_elements=4),
        [1, 2, 3, 4, 5],
        'property "x" contains more than 4 elements',
    ),
    (
        "maxElements 3 rejects 4",
        array(INT8, max_elements=3),
        [1, 2, 3, 4],
        'property "x" contains more than 3 elements',
    ),
    (
        "maxElements 1",
        array(INT8, max_elements=1),
        [1, 2],
        'property "x" contains more than 1 element',
    ),
    (
        "minElements",
        array(INT8, min_elements=2),
        [1],
        'property "x" contains fewer than 2 elements',
    ),
    (
        "element index",
        array(INT8),
        [1, 2, "3"],
        'property "x[2]" must be an integer, not the string "3"',
    ),
    ("null element", array(STRING), ["a", None], 'property "x[1]" cannot be null'),
    (
        "repeated element",
        array(STRING, unique_elements=True),
        ["a", "b", "a"],
        'property "x[2]" duplicates an earlier element: "a"',
    ),
    (
        "repeated instant",
        array(DATETIME, unique_elements=True),
        ["2024-01-01T10:00:00Z", "2024-01-01T12:00:00+02:00"],
        'property "x[1]" duplicates an earlier element: "2024-01-01T12:00:00+02:00"',
    ),
    (
        "repeated decimal",
        array(DECIMAL_5_2, unique_elements=True),
        ["1.5", 1.50],
        'property "x[1]" duplicates an earlier element: 1.5',
    ),
    ("map wrong type", map_of(STRING), [], 'property "x" must be an object, not an array'),
    (
        "map key as property",
        map_of(INT8),
        {"city": 300},
        'property "x.city" is out of range [-128, 127]: 300',
    ),
    (
        "map key quoted",
        map_of(INT8),
        {"first name": 300},
        'property "x["first name"]" is out of range [-128, 127]: 300',
    ),
    ("map null", map_of(STRING), {"k": None}, 'property "x.k" cannot be null'),
    (
        "object wrong type",
        object_type(prop("a", STRING)),
        "a",
        'property "x" must be an object, not the string "a"',
    ),
]


@pytest.mark.parametrize(
    ("t", "raw", "message"),
    [case[1:] for case in REJECTED],
    ids=[case[0] for case in REJECTED],
)
def test_rejected_values_report_the_api_message(t: Type, raw: object, message: str) -> None:
    assert str(decode_error(t, raw)) == message


def test_maxelements_accepts_exactly_the_limit() -> None:
    # Krenalis counted each element twice: an even limit rejected arrays at half of it.
    assert decode_value(array(INT8, max_elements=4), [1, 2, 3, 4]) == [1, 2, 3, 4]
    assert decode_value(array(INT8, max_elements=3), [1, 2, 3]) == [1, 2, 3]
    assert decode_value(array(INT8, min_elements=2, max_elements=2), [1, 2]) == [1, 2]


def test_error_path_points_at_the_offending_element() -> None:
    error = decode_error(array(array(INT8)), [[1], [2, 3, 400]], path="matrix")
    assert error.path == "matrix[1][2]"
    assert error.message == 'property "matrix[1][2]" is out of range [-128, 127]: 400'


def test_value_without_a_path_is_called_value() -> None:
    error = decode_error(UINT8, 300, path="")
    assert str(error) == "value is out of range [0, 255]: 300"
    assert error.path == ""
    assert str(decode_error(array(UINT8), [300], path="")) == (
        'property "[0]" is out of range [0, 255]: 300'
    )


def test_invalid_value_is_a_value_error() -> None:
    error = decode_error(BOOLEAN, "no")
    assert isinstance(error, ValueError)
    assert error.message == str(error)


# ---------------------------------------------------------------------------------------------
# Objects and records
# ---------------------------------------------------------------------------------------------

ADDRESS = object_type(
    prop("city", STRING),
    prop("zip", Type(Kind.STRING, max_length=5), read_optional=True),
)
CONTACT = object_type(prop("email", Type(Kind.STRING, pattern="@")))
PROFILE = object_type(
    prop("email", STRING),
    prop("age", UINT8, read_optional=True),
    prop("nickname", STRING, read_optional=True, nullable=True),
    prop("traits", JSON, read_optional=True),
    prop("address", ADDRESS, read_optional=True),
    prop("contacts", array(CONTACT), read_optional=True),
    prop("scores", map_of(INT8), read_optional=True),
)

RECORD_ERRORS: list[tuple[str, dict[str, object], str, str]] = [
    ("missing", {}, 'non-optional property "email" is missing', "email"),
    ("unknown", {"email": "a@b", "phone": "1"}, 'property "phone" does not exist', "phone"),
    ("not nullable", {"email": None}, 'property "email" cannot be null', "email"),
    (
        "nested missing",
        {"email": "a@b", "address": {"zip": "123"}},
        'non-optional property "address.city" is missing',
        "address.city",
    ),
    (
        "nested unknown",
        {"email": "a@b", "address": {"city": "Rome", "street": "Via"}},
        'property "address.street" does not exist',
        "address.street",
    ),
    (
        "nested too long",
        {"email": "a@b", "address": {"city": "Rome", "zip": "123456"}},
        'property "address.zip" is longer than 5 characters: "123456"',
        "address.zip",
    ),
    (
        "object in array",
        {"email": "a@b", "contacts": [{"email": "c@d"}, {"email": "nope"}]},
        'property "contacts[1].email" has an invalid value: "nope"; '
        'it does not match the regular expression "@"',
        "contacts[1].email",
    ),
    (
        "missing in array",
        {"email": "a@b", "contacts": [{}]},
        'non-optional property "contacts[0].email" is missing',
        "contacts[0].email",
    ),
    (
        "map in object",
        {"email": "a@b", "scores": {"math": 1, "art": 200}},
        'property "scores.art" is out of range [-128, 127]: 200',
        "scores.art",
    ),
    (
        "nested not nullable",
        {"email": "a@b", "address": None},
        'property "address" cannot be null',
        "address",
    ),
]


@pytest.mark.parametrize(
    ("record", "message", "path"),
    [case[1:] for case in RECORD_ERRORS],
    ids=[case[0] for case in RECORD_ERRORS],
)
def test_record_errors_name_the_full_path(
    record: dict[str, object], message: str, path: str
) -> None:
    with pytest.raises(InvalidValue) as caught:
        decode_record(PROFILE, record)
    assert caught.value.message == message
    assert caught.value.path == path


def test_record_decodes_every_property() -> None:
    record = {
        "email": "a@b",
        "age": 30,
        "nickname": None,
        "traits": None,
        "address": {"city": "Rome"},
        "contacts": [{"email": "c@d"}],
        "scores": {"math": 7},
    }
    assert decode_record(PROFILE, record) == record


def test_optional_properties_may_be_absent() -> None:
    assert decode_record(PROFILE, {"email": "a@b"}) == {"email": "a@b"}


def test_json_property_takes_null_without_being_nullable() -> None:
    # For json, null is the JSON value null, not the absence of a value.
    schema = object_type(prop("payload", JSON))
    assert decode_record(schema, {"payload": None}) == {"payload": None}


def test_record_must_be_an_object_schema() -> None:
    with pytest.raises(ValueError, match="must be an object type"):
        decode_record(STRING, {})


def test_object_as_a_value_uses_the_given_path() -> None:
    error = decode_error(ADDRESS, {"town": "Rome"}, path="profile.address")
    assert error.message == 'property "profile.address.town" does not exist'


# ---------------------------------------------------------------------------------------------
# Encoding
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("t", "value", "encoded"),
    [
        (INT64, -5, "-5"),
        (UINT64, 2**64 - 1, "18446744073709551615"),
        (INT32, -5, -5),
        (FLOAT64, math.inf, "Infinity"),
        (FLOAT64, -math.inf, "-Infinity"),
        (FLOAT64, -0.0, -0.0),
        (DECIMAL_5_2, Decimal("5.00"), 5),
        (DECIMAL_5_2, Decimal("0.10"), 0.1),
        (DECIMAL_20_10, Decimal("0.1234567891"), 0.1234567891),
        (DATETIME, datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC), "2024-01-02T03:04:05Z"),
        (DATETIME, datetime(2024, 1, 2, 3, 4, 5, 120000, tzinfo=UTC), "2024-01-02T03:04:05.120Z"),
        (DATETIME, datetime(2024, 1, 2, 3, 4, 5, 123, tzinfo=UTC), "2024-01-02T03:04:05.000123Z"),
        (
            DATETIME,
            datetime(2024, 1, 2, 3, 4, 5, tzinfo=timezone(timedelta(hours=-2))),
            "2024-01-02T05:04:05Z",
        ),
        (DATETIME, datetime(2024, 1, 2, 3, 4, 5), "2024-01-02T03:04:05Z"),
        (DATE, date(999, 1, 2), "0999-01-02"),
        (TIME, time(1, 2, 3, 4000), "01:02:03.004"),
        (UUID, uuid.UUID(int=10), "00000000-0000-0000-0000-00000000000a"),
        (IP, ipaddress.IPv6Address("fe80::1%eth0"), "fe80::1%eth0"),
        (STRING, None, None),
    ],
)
def test_encode_value(t: Type, value: object, encoded: object) -> None:
    assert encode_value(t, value) == encoded


def test_encode_object_follows_the_schema_order_and_keeps_nulls() -> None:
    schema = object_type(prop("b", INT64), prop("a", STRING, nullable=True))
    encoded = encode_value(schema, {"a": None, "b": 1})
    assert encoded == {"b": "1", "a": None}
    assert isinstance(encoded, dict) and list(encoded) == ["b", "a"]


def test_encode_map_sorts_its_keys() -> None:
    encoded = encode_value(map_of(DATE), {"z": date(2024, 1, 1), "a": date(2024, 1, 2)})
    assert isinstance(encoded, dict) and list(encoded) == ["a", "z"]


# ---------------------------------------------------------------------------------------------
# Properties
# ---------------------------------------------------------------------------------------------


def _int_values(t: Type) -> st.SearchStrategy[object]:
    low, high = int_range(t.bit_size, t.unsigned)
    return st.integers(low, high)


def _strings(t: Type) -> st.SearchStrategy[object]:
    if t.values is not None:
        return st.sampled_from(t.values)
    text = st.from_regex(t.pattern) if t.pattern is not None else st.text(max_size=t.max_length)
    if t.max_bytes is None:
        return text
    limit = t.max_bytes
    return text.filter(lambda s: len(s.encode()) <= limit)


def _property_values(p: Property) -> st.SearchStrategy[object]:
    values = python_values(p.type)
    return st.none() | values if p.nullable else values


def python_values(t: Type) -> st.SearchStrategy[object]:
    """Python values that decode_value can produce for ``t``."""
    match t.kind:
        case Kind.STRING:
            return _strings(t)
        case Kind.BOOLEAN:
            return st.booleans()
        case Kind.INT:
            return _int_values(t)
        case Kind.FLOAT:
            return st.floats(allow_nan=False, width=32 if t.bit_size == 32 else 64)
        case Kind.DECIMAL:
            # From integer coefficients: Decimal arithmetic in the default 28-digit context
            # would round the bounds of wider decimals.
            largest = 10**t.precision - 1
            wide = Context(prec=t.precision)
            return st.integers(-largest, largest).map(lambda n: Decimal(n).scaleb(-t.scale, wide))
        case Kind.DATETIME:
            return st.datetimes(timezones=st.just(UTC))
        case Kind.DATE:
            return st.dates()
        case Kind.TIME:
            return st.times()
        case Kind.YEAR:
            return st.integers(1, 9999)
        case Kind.UUID:
            return st.uuids()
        case Kind.IP:
            return st.ip_addresses()
        case Kind.JSON:
            return JSON_VALUES
        case Kind.ARRAY:
            assert t.element_type is not None
            return st.lists(python_values(t.element_type), max_size=5)
        case Kind.MAP:
            assert t.element_type is not None
            return st.dictionaries(st.text(), python_values(t.element_type), max_size=5)
        case Kind.OBJECT:
            required = {p.name: _property_values(p) for p in t.properties if not p.read_optional}
            optional = {p.name: _property_values(p) for p in t.properties if p.read_optional}
            return st.fixed_dictionaries(required, optional=optional)
    raise AssertionError(t.kind)


JSON_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text()
)
JSON_VALUES: st.SearchStrategy[object] = st.recursive(
    JSON_SCALARS,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=5), children, max_size=4)
    ),
    max_leaves=12,
)

ROUND_TRIP_TYPES = [
    STRING,
    BOOLEAN,
    INT8,
    UINT8,
    INT24,
    INT32,
    INT64,
    UINT64,
    FLOAT32,
    FLOAT64,
    DECIMAL_5_2,
    DECIMAL_30_0,
    DECIMAL_20_10,
    Type(Kind.DECIMAL, precision=76, scale=37),
    DATETIME,
    DATE,
    TIME,
    YEAR,
    UUID,
    IP,
    JSON,
    array(INT64),
    map_of(DATETIME),
    PROFILE,
]


@pytest.mark.parametrize("t", ROUND_TRIP_TYPES, ids=str)
@given(data=st.data())
def test_decode_inverts_encode(t: Type, data: st.DataObject) -> None:
    value = data.draw(python_values(t))
    assert decode_value(t, encode_value(t, value)) == value


# Strings that some kind accepts, so that arbitrary input also reaches the success paths.
WELL_FORMED_STRINGS = st.sampled_from(
    [
        "NaN",
        "Infinity",
        "-Infinity",
        "12",
        "-9223372036854775808",
        "1.25",
        "1e5",
        "2024-01-01",
        "2024-01-01T10:00:00.123456789+02:00",
        "10:20:30.5",
        "0188a4e7-7c3b-7000-8000-00000000000a",
        "::ffff:192.0.2.1",
        "10.0.0.1",
        "a@b",
    ]
)
ARBITRARY_JSON: st.SearchStrategy[object] = st.recursive(
    JSON_SCALARS | WELL_FORMED_STRINGS,
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(
            st.sampled_from(["email", "age", "address", "city", "contacts"]) | st.text(max_size=3),
            children,
            max_size=4,
        )
    ),
    max_leaves=12,
)

FUZZED_TYPES = [
    *ROUND_TRIP_TYPES,
    REAL64,
    Type(Kind.FLOAT, bit_size=64, minimum=0.0, maximum=1.0),
    Type(Kind.STRING, max_length=3, max_bytes=4, values=("a", "é", "12")),
    Type(Kind.STRING, pattern=r"^\d+$"),
    array(STRING, min_elements=1, max_elements=2, unique_elements=True),
    array(JSON),
    map_of(FLOAT64),
]


def _same_encoding(t: Type, a: object, b: object) -> bool:
    # Compared as JSON so that NaN, which is not equal to itself, compares equal.
    return encode_value(t, a) == encode_value(t, b)


@pytest.mark.parametrize("t", FUZZED_TYPES, ids=str)
@given(raw=ARBITRARY_JSON)
def test_arbitrary_json_is_decoded_or_refused_with_invalid_value(t: Type, raw: object) -> None:
    try:
        decoded = decode_value(t, raw, "p")
    except InvalidValue as error:
        assert error.message.startswith(('property "p', 'non-optional property "p'))
        return
    # Whatever is accepted survives an encode/decode round trip unchanged.
    assert _same_encoding(t, decode_value(t, encode_value(t, decoded)), decoded)
