"""Values of the schema type system: decode them from JSON, encode them back to JSON.

``decode_value`` checks a parsed JSON value against a :class:`~sluice.model.types.Type` and returns
the Python value it stands for; ``encode_value`` is its inverse and returns the canonical JSON form,
so ``encode_value(t, decode_value(t, v))`` is the canonical form of ``v`` and
``decode_value(t, encode_value(t, x)) == x``.

Wire forms (Krenalis ``types.Decode`` / ``types.Marshal``):

============  =========================================  ===================================
kind          JSON accepted                              Python value
============  =========================================  ===================================
string        string                                     ``str``
boolean       ``true`` / ``false``                       ``bool``
int(8..32)    integer number                             ``int``
int(64)       string of decimal digits, or an integer    ``int`` (encoded back as a string)
float         number, ``"NaN"``, ``"Infinity"``,         ``float``
              ``"-Infinity"``
decimal       number, or a decimal string                ``Decimal`` at the type's scale
datetime      ISO 8601 string (no offset means UTC)      aware ``datetime`` in UTC
date          ``YYYY-MM-DD``                             ``date``
time          ``HH:MM:SS[.fffffffff]``                   ``time``
year          integer number 1..9999                     ``int``
uuid          ``xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx``   ``UUID``
ip            IPv4 or IPv6 address                       ``IPv4Address`` / ``IPv6Address``
json          any JSON value (``null`` included)         the parsed JSON value itself
array         array                                      ``list``
object, map   object                                     ``dict``
============  =========================================  ===================================

Integer kinds also take a number with an integral value written as a float (``5.0``, ``1e3``),
because YAML and JSON tooling emits those. A float(32) is range-checked but kept as a Python float
(Krenalis rounds it to 32 bits). The non-finite floats are refused by ``real: true`` and by explicit
bounds (a ``maximum`` refuses ``"Infinity"``, a ``minimum`` ``"-Infinity"``, either ``"NaN"``),
never by the size range. ``uniqueElements`` compares decoded values: ``"1.5"`` and ``1.50`` are
the same decimal, two offsets of one instant the same datetime.

Messages follow the API: ``property "<path>" <what is wrong>``. The path joins property names with
``.``, array indices as ``[i]`` and map keys as ``.key`` when the key is a valid property name,
otherwise as ``["key"]`` (JSON-quoted). A value decoded with an empty path is called ``value``.

Two Krenalis defects are fixed here: ``maxBytes`` counts UTF-8 bytes (Krenalis counted
characters), and ``minElements``/``maxElements`` count each element once, with the right index in
messages (Krenalis advanced its counter twice per element).
"""

from __future__ import annotations

import functools
import ipaddress
import json
import math
import re
import uuid
from collections.abc import Callable, Mapping
from datetime import UTC, date, datetime, time
from decimal import Context, Decimal, InvalidOperation
from enum import StrEnum
from typing import Generic, TypeVar

from sluice.model.errors import LocatedError
from sluice.model.types import (
    MAX_PRECISION,
    Kind,
    Property,
    Type,
    effective_range,
    is_valid_property_name,
    json_number,
)

__all__ = [
    "DECIMAL_TEXT",
    "INTEGER_TEXT",
    "InvalidValue",
    "StringConstraint",
    "decode_record",
    "decode_value",
    "encode_value",
    "has_lone_surrogate",
    "put_at",
    "string_violations",
    "value_at",
]

MIN_YEAR = 1
MAX_YEAR = 9999

# Quoted values in messages are cut to this many characters, so that a 10 MB string does not end
# up in a run's error list.
_MAX_QUOTED_CHARS = 50
# Enumerations longer than this are abbreviated in messages.
_MAX_LISTED_VALUES = 10

_NON_FINITE_NAMES = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}


class InvalidValue(LocatedError):  # noqa: N818 - the API's name for it
    """A value that does not conform to its type; ``path`` locates it inside the decoded value."""


# ---------------------------------------------------------------------------------------------
# Public API
# ---------------------------------------------------------------------------------------------


def decode_value(t: Type, value: object, path: str = "") -> object:
    """Validate a parsed JSON value against ``t`` and return the Python value it represents.

    ``path`` names the value in messages. JSON ``null`` is accepted only by the json kind (as
    the JSON value ``null``); whether a property may be null is decided by its object.
    """
    if value is None:
        if t.kind is Kind.JSON:
            return None
        raise _invalid(path, "cannot be null")
    return _DECODERS[t.kind](t, value, path)


def decode_record(schema: Type, record: Mapping[str, object]) -> dict[str, object]:
    """Validate a record against an object schema, as :func:`decode_value` does an object."""
    if schema.kind is not Kind.OBJECT:
        raise ValueError(f"a record schema must be an object type, not {schema}")
    return _decode_object(schema, record, "")


def value_at(record: Mapping[str, object], path: str) -> object:
    """The value at a dot path of a nested record; None when any step is absent."""
    current: object = record
    for name in path.split("."):
        # dict first: an ABC check costs more than the lookup, on every record of a run.
        if type(current) is not dict and not isinstance(current, Mapping):
            return None
        current = current.get(name)
    return current


def put_at(record: dict[str, object], path: str, value: object) -> None:
    """Write ``value`` at a dot path, creating (or overwriting with) objects on the way."""
    *parents, leaf = path.split(".")
    target = record
    for name in parents:
        child = target.get(name)
        if not isinstance(child, dict):
            child = target[name] = {}
        target = child
    target[leaf] = value


def encode_value(t: Type, value: object) -> object:
    """The canonical JSON form of a value that :func:`decode_value` produced for ``t``.

    Like Krenalis' ``Marshal`` it does not validate: a value of the wrong Python type is a
    programming error (an ``AssertionError`` at best). ``None`` encodes as ``null``.
    """
    if value is None:
        return None
    return _ENCODERS[t.kind](t, value)


# ---------------------------------------------------------------------------------------------
# Messages
# ---------------------------------------------------------------------------------------------


def _invalid(path: str, problem: str) -> InvalidValue:
    subject = f'property "{path}"' if path else "value"
    return InvalidValue(f"{subject} {problem}", path)


def _wrong_type(path: str, expected: str, value: object) -> InvalidValue:
    return _invalid(path, f"must be {expected}, not {_describe(value)}")


def _quote(text: str) -> str:
    """``text`` as a JSON string, cut to a readable length."""
    if len(text) > _MAX_QUOTED_CHARS:
        text = text[:_MAX_QUOTED_CHARS] + "…"
    quoted = json.dumps(text, ensure_ascii=False)
    if not quoted.isascii():
        try:
            quoted.encode("utf-8")
        except UnicodeEncodeError:  # a lone surrogate: escape it, or the message itself is broken
            quoted = json.dumps(text)
    return quoted


def _abbreviate(text: str) -> str:
    return text if len(text) <= _MAX_QUOTED_CHARS else text[:_MAX_QUOTED_CHARS] + "…"


def _format_number(number: object) -> str:
    if isinstance(number, bool):
        return "true" if number else "false"
    if isinstance(number, int):
        # str() refuses integers of more than 4300 digits (CPython's DoS guard).
        return _abbreviate(str(number)) if number.bit_length() < 10_000 else "(a huge integer)"
    if isinstance(number, float):
        if math.isnan(number):
            return "NaN"
        if math.isinf(number):
            return "Infinity" if number > 0 else "-Infinity"
        if number.is_integer() and abs(number) < 1e16:
            return str(int(number))
        return repr(number)
    if isinstance(number, Decimal):
        # Plain notation for reasonable magnitudes; str() keeps 1E+999999 from becoming a
        # million-digit message.
        plain = number.is_finite() and abs(number.adjusted()) < 100
        return _abbreviate(format(number, "f") if plain else str(number))
    return _abbreviate(str(number))


def _show(value: object) -> str:
    """A JSON value as it appears after the colon of a message."""
    if isinstance(value, str):
        return _quote(value)
    if value is None:
        return "null"
    return _format_number(value)


def _describe(value: object) -> str:
    """What a JSON value is, for "must be X, not Y" messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"the boolean {_show(value)}"
    if isinstance(value, int | float | Decimal):
        return f"the number {_show(value)}"
    if isinstance(value, str):
        return f"the string {_show(value)}"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, Mapping):
        return "an object"
    return f"a Python {type(value).__name__}"


def _valid_values(values: tuple[str, ...]) -> str:
    """``valid values are "a", "b", and "c"`` (``"a" and "b"`` for two; long lists abridged)."""
    if len(values) == 1:
        return f"the only valid value is {_quote(values[0])}"
    quoted = [_quote(v) for v in values[:_MAX_LISTED_VALUES]]
    hidden = len(values) - len(quoted)
    if hidden:
        quoted.append(f"{hidden} more")
    if len(quoted) == 2:
        return f"valid values are {quoted[0]} and {quoted[1]}"
    return "valid values are " + ", ".join(quoted[:-1]) + ", and " + quoted[-1]


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


# ---------------------------------------------------------------------------------------------
# Paths
# ---------------------------------------------------------------------------------------------


def _property_path(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def _key_path(path: str, key: str) -> str:
    if is_valid_property_name(key):
        return _property_path(path, key)
    return f"{path}[{json.dumps(key, ensure_ascii=False)}]"


# ---------------------------------------------------------------------------------------------
# Per-type caches
# ---------------------------------------------------------------------------------------------

_T = TypeVar("_T")
_Decoder = Callable[[Type, object, str], object]


class _PerTypeCache(Generic[_T]):
    """A value computed once per Type object.

    Keyed by id(): a frozen Type does not cache its hash, and hashing one walks the whole schema,
    which would cost more than the decoding the cache serves. Each entry keeps its Type alive,
    so an id is never reused while its entry exists.
    """

    _MAX_ENTRIES = 1024  # types are few; many only in tests that build them by the thousand

    def __init__(self, compute: Callable[[Type], _T]) -> None:
        self._compute = compute
        self._entries: dict[int, tuple[Type, _T]] = {}

    def __call__(self, t: Type) -> _T:
        entry = self._entries.get(id(t))
        if entry is not None and entry[0] is t:
            return entry[1]
        if len(self._entries) >= self._MAX_ENTRIES:
            self._entries.clear()
        value = self._compute(t)
        self._entries[id(t)] = (t, value)
        return value


_bounds = _PerTypeCache(effective_range)


# ---------------------------------------------------------------------------------------------
# Scalars
# ---------------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=256)
def _compiled(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)


class StringConstraint(StrEnum):
    """A constraint of a string type, by its schema key."""

    MAX_LENGTH = "maxLength"
    MAX_BYTES = "maxBytes"
    VALUES = "values"
    PATTERN = "pattern"


def string_violations(t: Type, text: str) -> list[StringConstraint]:
    """The constraints of string type ``t`` that ``text`` breaks (empty when it conforms)."""
    broken: list[StringConstraint] = []
    if t.max_length is not None and len(text) > t.max_length:
        broken.append(StringConstraint.MAX_LENGTH)
    if t.max_bytes is not None and _utf8_size_exceeds(text, t.max_bytes):
        broken.append(StringConstraint.MAX_BYTES)
    if t.values is not None and text not in t.values:
        broken.append(StringConstraint.VALUES)
    if t.pattern is not None and _compiled(t.pattern).search(text) is None:
        broken.append(StringConstraint.PATTERN)
    return broken


def has_lone_surrogate(text: str) -> bool:
    """Whether ``text`` holds a lone surrogate, which no UTF-8 text decodes to."""
    if text.isascii():
        return False
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def _decode_string(t: Type, value: object, path: str) -> str:
    if not isinstance(value, str):
        raise _wrong_type(path, "a string", value)
    if has_lone_surrogate(value):
        raise _invalid(path, "is not valid Unicode: it contains a lone surrogate")
    broken = string_violations(t, value)
    if not broken:
        return value
    match broken[0]:
        case StringConstraint.MAX_LENGTH:
            assert t.max_length is not None
            problem = f"is longer than {_plural(t.max_length, 'character')}: {_quote(value)}"
        case StringConstraint.MAX_BYTES:
            assert t.max_bytes is not None
            problem = f"is longer than {_plural(t.max_bytes, 'byte')}: {_quote(value)}"
        case StringConstraint.VALUES:
            assert t.values is not None
            problem = f"has an invalid value: {_quote(value)}; {_valid_values(t.values)}"
        case StringConstraint.PATTERN:
            problem = (
                f"has an invalid value: {_quote(value)}; "
                f'it does not match the regular expression "{t.pattern}"'
            )
    raise _invalid(path, problem)


def _utf8_size_exceeds(text: str, limit: int) -> bool:
    # A character takes 1 to 4 bytes: most strings are decided without encoding them.
    if len(text) > limit:
        return True
    if len(text) * 4 <= limit:
        return False
    return len(text.encode("utf-8")) > limit


def _decode_boolean(t: Type, value: object, path: str) -> bool:
    if not isinstance(value, bool):
        raise _wrong_type(path, "a boolean", value)
    return value


def _integral(value: object) -> int | None:
    """An integer JSON number (``5``, ``5.0``, ``1e3``) as an int; None for anything else."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return None


#: Base-10 integer text: an optional sign and ASCII digits (``int()`` also takes "_" and other
#: scripts' digits).
INTEGER_TEXT = re.compile(r"[+-]?[0-9]+")


def _decode_int(t: Type, value: object, path: str) -> int:
    number = _integral(value)
    if number is None and t.bit_size == 64 and isinstance(value, str):
        number = _parse_int64(t, value, path)
    if number is None:
        raise _wrong_type(path, "an integer", value)
    low, high = _bounds(t)
    if not low <= number <= high:
        raise _out_of_range(path, low, high, number)
    return number


def _parse_int64(t: Type, text: str, path: str) -> int:
    # fullmatch on ASCII digits: int() would also take "1_000", " 7 " and non-ASCII digits.
    if INTEGER_TEXT.fullmatch(text) is None:
        raise _invalid(path, f"is not a valid {t}: {_quote(text)}")
    if len(text.lstrip("+-").lstrip("0")) > 20:
        # Far beyond 64 bits; also keeps int() clear of its 4300-digit limit.
        low, high = _bounds(t)
        bounds = f"[{_format_number(low)}, {_format_number(high)}]"
        raise _invalid(path, f"is out of range {bounds}: {_quote(text)}")
    return int(text)


def _out_of_range(path: str, low: object, high: object, value: object) -> InvalidValue:
    bounds = f"[{_format_number(low)}, {_format_number(high)}]"
    return _invalid(path, f"is out of range {bounds}: {_format_number(value)}")


def _decode_float(t: Type, value: object, path: str) -> float:
    number = _float_of(t, value, path)
    if math.isfinite(number):
        low, high = _bounds(t)
        if not low <= number <= high:
            raise _out_of_range(path, low, high, value)
        return number
    if t.real:
        raise _invalid(path, f"is not a real number: {_show(value)}")
    # Non-finite values are outside every size range (that is what ``real: false`` allows), but
    # an explicit bound still holds: a maximum refuses +Infinity, a minimum -Infinity, either NaN.
    beyond_maximum = t.maximum is not None and not number < 0
    beyond_minimum = t.minimum is not None and not number > 0
    if beyond_maximum or beyond_minimum:
        low, high = _bounds(t)
        raise _out_of_range(path, low, high, value)
    # One NaN object for all, so that uniqueElements sees two "NaN" as the same element.
    return math.nan if math.isnan(number) else number


def _float_of(t: Type, value: object, path: str) -> float:
    if isinstance(value, float):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        try:
            return float(value)
        except OverflowError:
            low, high = _bounds(t)
            raise _out_of_range(path, low, high, value) from None
    if isinstance(value, str) and value in _NON_FINITE_NAMES:
        return _NON_FINITE_NAMES[value]
    expected = "a number" if t.real else 'a number or one of "NaN", "Infinity" and "-Infinity"'
    raise _wrong_type(path, expected, value)


#: Decimal number text, as JSON and the API write decimals (no NaN, no infinities).
DECIMAL_TEXT = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
# Wide enough for every decimal the type system allows, so quantize never rounds.
_EXACT_CONTEXT = Context(prec=MAX_PRECISION + 1, traps=[InvalidOperation])


@functools.lru_cache(maxsize=64)
def _quantum(scale: int) -> Decimal:
    return Decimal((0, (1,), -scale))


def _decode_decimal(t: Type, value: object, path: str) -> Decimal:
    number = _decimal_of(value, path)
    integer_digits, fraction_digits = _digit_counts(number)
    if fraction_digits > t.scale:
        raise _invalid(
            path,
            f"has more than {_plural(t.scale, 'digit')} after the decimal point: "
            f"{_format_number(number)}",
        )
    if integer_digits > t.precision - t.scale:
        raise _invalid(
            path,
            f"has more than {_plural(t.precision - t.scale, 'digit')} before the decimal point: "
            f"{_format_number(number)}",
        )
    low, high = _bounds(t)
    if not low <= number <= high:
        raise _out_of_range(path, low, high, number)
    # At the type's scale, as the warehouse stores it: "1.5" and "1.50" decode the same.
    return number.quantize(_quantum(t.scale), context=_EXACT_CONTEXT)


def _decimal_of(value: object, path: str) -> Decimal:
    if isinstance(value, Decimal):
        number = value
    elif isinstance(value, bool):
        raise _wrong_type(path, "a number", value)
    elif isinstance(value, int):
        number = Decimal(value)
    elif isinstance(value, float):
        # repr is the shortest text that reads back as this float: the digits the JSON had.
        number = Decimal(repr(value))
    elif isinstance(value, str):
        # Strings carry digits that a float would lose (YAML and most JSON parsers read
        # numbers as floats), so a decimal may be written as one.
        number = _parse_decimal_text(value, path)
    else:
        raise _wrong_type(path, "a number", value)
    if not number.is_finite():
        raise _invalid(path, f"is not a valid decimal: {_show(value)}")
    return number


def _parse_decimal_text(text: str, path: str) -> Decimal:
    if DECIMAL_TEXT.fullmatch(text) is None:
        raise _invalid(path, f"is not a valid decimal: {_quote(text)}")
    try:
        return Decimal(text)
    except InvalidOperation:  # an exponent beyond what the decimal module represents
        raise _invalid(path, f"is not a valid decimal: {_quote(text)}") from None


def _digit_counts(number: Decimal) -> tuple[int, int]:
    """Significant digits before and after the decimal point (``0012.340`` → 2, 2)."""
    _, digits, exponent = number.as_tuple()
    assert isinstance(exponent, int)  # finite, checked by the caller
    trailing_zeros = 0
    for digit in reversed(digits):
        if digit != 0:
            break
        trailing_zeros += 1
    significant = len(digits) - trailing_zeros
    if significant == 0:
        return 0, 0
    exponent += trailing_zeros
    return max(significant + exponent, 0), max(-exponent, 0)


# Characters an ISO 8601 datetime can hold. Checked first because CPython's fromisoformat stops
# reading at a NUL character and so accepts "2024-01-01\x00garbage".
_DATETIME_CHARS_RE = re.compile(r"[0-9TWZ:.,+\- ]+")


def _decode_datetime(t: Type, value: object, path: str) -> datetime:
    if not isinstance(value, str):
        raise _wrong_type(path, "a string", value)
    if _DATETIME_CHARS_RE.fullmatch(value) is None:
        raise _invalid(path, f"is not a valid datetime (ISO 8601): {_quote(value)}")
    if value[:4] == "0000":  # a year Python cannot represent
        raise _invalid(path, f"has a year out of range [1, 9999]: {_quote(value)}")
    try:
        # fromisoformat keeps the first 6 digits of a longer fraction: nanoseconds are truncated
        # to microseconds, the finest unit a Python datetime holds.
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise _invalid(path, f"is not a valid datetime (ISO 8601): {_quote(value)}") from None
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=UTC)  # no offset means UTC, as in Krenalis
    try:
        return parsed.astimezone(UTC)
    except OverflowError:  # the offset moved it before year 1 or after year 9999
        raise _invalid(path, f"has a year out of range [1, 9999]: {_quote(value)}") from None


_DATE_RE = re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2})")


def _decode_date(t: Type, value: object, path: str) -> date:
    if not isinstance(value, str):
        raise _wrong_type(path, "a string", value)
    match = _DATE_RE.fullmatch(value)
    if match is None:
        raise _invalid(path, f"is not a valid date (YYYY-MM-DD): {_quote(value)}")
    year, month, day = (int(part) for part in match.groups())
    if year < MIN_YEAR:
        raise _invalid(path, f"has a year out of range [1, 9999]: {_quote(value)}")
    try:
        return date(year, month, day)
    except ValueError:
        raise _invalid(path, f"is not a valid date (YYYY-MM-DD): {_quote(value)}") from None


_TIME_RE = re.compile(r"([0-9]{2}):([0-9]{2}):([0-9]{2})(?:\.([0-9]{1,9}))?")


def _decode_time(t: Type, value: object, path: str) -> time:
    if not isinstance(value, str):
        raise _wrong_type(path, "a string", value)
    match = _TIME_RE.fullmatch(value)
    if match is None:
        raise _invalid(path, f"is not a valid time (HH:MM:SS[.fffffffff]): {_quote(value)}")
    hour, minute, second, fraction = match.groups()
    # Up to nanoseconds are accepted; a Python time holds microseconds, so the rest is dropped.
    microsecond = int((fraction or "")[:6].ljust(6, "0"))
    try:
        return time(int(hour), int(minute), int(second), microsecond)
    except ValueError:
        raise _invalid(
            path, f"is not a valid time (HH:MM:SS[.fffffffff]): {_quote(value)}"
        ) from None


def _decode_year(t: Type, value: object, path: str) -> int:
    year = _integral(value)
    if year is None:
        raise _wrong_type(path, "an integer", value)
    if not MIN_YEAR <= year <= MAX_YEAR:
        raise _out_of_range(path, MIN_YEAR, MAX_YEAR, year)
    return year


# Only the canonical 8-4-4-4-12 form: uuid.UUID would also take braces, "urn:uuid:" and
# hyphens anywhere.
_UUID_RE = re.compile(
    r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
)


def _decode_uuid(t: Type, value: object, path: str) -> uuid.UUID:
    if not isinstance(value, str):
        raise _wrong_type(path, "a string", value)
    if _UUID_RE.fullmatch(value) is None:
        raise _invalid(path, f"is not a valid UUID: {_quote(value)}")
    return uuid.UUID(value)


def _decode_ip(t: Type, value: object, path: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    if not isinstance(value, str):
        raise _wrong_type(path, "a string", value)
    try:
        return ipaddress.ip_address(value)
    except ValueError:
        raise _invalid(path, f"is not a valid IP address: {_quote(value)}") from None


def _decode_json(t: Type, value: object, path: str) -> object:
    """Any JSON value, returned as is once checked to be JSON all the way down."""
    pending = [value]
    while pending:  # a loop, not recursion: JSON values may nest deeper than the stack
        item = pending.pop()
        if item is None or isinstance(item, str | bool | int):
            continue
        if isinstance(item, float):
            if not math.isfinite(item):
                raise _invalid(path, f"is not a JSON value: it contains {_show(item)}")
        elif isinstance(item, list):
            pending.extend(item)
        elif isinstance(item, dict):
            for key in item:
                if not isinstance(key, str):
                    raise _invalid(path, f"is not a JSON value: it has the object key {key!r}")
            pending.extend(item.values())
        else:
            raise _invalid(path, f"is not a JSON value: it contains {_describe(item)}")
    return value


# ---------------------------------------------------------------------------------------------
# Containers
# ---------------------------------------------------------------------------------------------


def _decode_array(t: Type, value: object, path: str) -> list[object]:
    if not isinstance(value, list):
        raise _wrong_type(path, "an array", value)
    count = len(value)
    if t.max_elements is not None and count > t.max_elements:
        raise _invalid(path, f"contains more than {_plural(t.max_elements, 'element')}")
    if t.min_elements is not None and count < t.min_elements:
        raise _invalid(path, f"contains fewer than {_plural(t.min_elements, 'element')}")
    element_type = t.element_type
    assert element_type is not None
    elements = [decode_value(element_type, item, f"{path}[{i}]") for i, item in enumerate(value)]
    if t.unique_elements:
        repeated = _first_repeated(elements)
        if repeated is not None:
            raise _invalid(
                f"{path}[{repeated}]", f"duplicates an earlier element: {_show(value[repeated])}"
            )
    return elements


def _first_repeated(elements: list[object]) -> int | None:
    """The index of the first element equal to an earlier one."""
    seen: set[object] = set()
    for index, element in enumerate(elements):
        try:
            if element in seen:
                return index
            seen.add(element)
        except TypeError:  # unhashable: only a hand-built Type puts unique on containers
            if element in elements[:index]:
                return index
    return None


def _json_object(value: object, path: str) -> Mapping[str, object]:
    if not isinstance(value, Mapping):
        raise _wrong_type(path, "an object", value)
    # JSON object keys are strings; a Python caller's other keys are refused by the callers.
    return value


class _ObjectLayout:
    """What decoding an object type needs, worked out once per type."""

    __slots__ = ("decoders", "mandatory")

    def __init__(self, t: Type) -> None:
        # Each property with the decoder of its kind, so the loop skips decode_value's dispatch.
        self.decoders: dict[str, tuple[Property, _Decoder]] = {
            p.name: (p, _DECODERS[p.type.kind]) for p in t.properties
        }
        self.mandatory = tuple(p.name for p in t.properties if not p.read_optional)


_layout = _PerTypeCache(_ObjectLayout)


def _decode_object(t: Type, value: object, path: str) -> dict[str, object]:
    fields = _json_object(value, path)
    layout = _layout(t)
    decoders = layout.decoders
    prefix = f"{path}." if path else ""
    decoded: dict[str, object] = {}
    for name, item in fields.items():
        entry = decoders.get(name)
        if entry is None:
            unknown = f"{prefix}{name}"
            raise InvalidValue(f'property "{unknown}" does not exist', unknown)
        prop, decode = entry
        if item is not None:
            decoded[prop.name] = decode(prop.type, item, prefix + prop.name)
        elif prop.nullable or prop.type.kind is Kind.JSON:
            # For json properties null is the JSON value null, accepted like any other.
            decoded[prop.name] = None
        else:
            raise _invalid(prefix + prop.name, "cannot be null")
    for name in layout.mandatory:
        if name not in decoded:
            missing = prefix + name
            raise InvalidValue(f'non-optional property "{missing}" is missing', missing)
    return decoded


def _decode_map(t: Type, value: object, path: str) -> dict[str, object]:
    fields = _json_object(value, path)
    element_type = t.element_type
    assert element_type is not None
    decoded: dict[str, object] = {}
    for key, item in fields.items():
        if not isinstance(key, str):
            raise _invalid(path, f"has a key that is not a string: {key!r}")
        decoded[key] = decode_value(element_type, item, _key_path(path, key))
    return decoded


_DECODERS: dict[Kind, _Decoder] = {
    Kind.STRING: _decode_string,
    Kind.BOOLEAN: _decode_boolean,
    Kind.INT: _decode_int,
    Kind.FLOAT: _decode_float,
    Kind.DECIMAL: _decode_decimal,
    Kind.DATETIME: _decode_datetime,
    Kind.DATE: _decode_date,
    Kind.TIME: _decode_time,
    Kind.YEAR: _decode_year,
    Kind.UUID: _decode_uuid,
    Kind.JSON: _decode_json,
    Kind.IP: _decode_ip,
    Kind.ARRAY: _decode_array,
    Kind.OBJECT: _decode_object,
    Kind.MAP: _decode_map,
}


# ---------------------------------------------------------------------------------------------
# Encoding
# ---------------------------------------------------------------------------------------------


def _encode_as_is(t: Type, value: object) -> object:
    return value


def _encode_int(t: Type, value: object) -> object:
    # 64-bit integers travel as strings: JavaScript clients would round them as numbers.
    return str(value) if t.bit_size == 64 else value


def _encode_float(t: Type, value: object) -> object:
    assert isinstance(value, float | int)
    number = float(value)
    if math.isnan(number):
        return "NaN"
    if math.isinf(number):
        return "Infinity" if number > 0 else "-Infinity"
    return number


def _encode_decimal(t: Type, value: object) -> object:
    assert isinstance(value, Decimal | int | float)
    return json_number(value)


def _fraction(microsecond: int) -> str:
    """Fractional seconds trimmed to 0, 3 or 6 digits (9 would need nanoseconds)."""
    if microsecond == 0:
        return ""
    if microsecond % 1000 == 0:
        return f".{microsecond // 1000:03d}"
    return f".{microsecond:06d}"


def _encode_datetime(t: Type, value: object) -> object:
    assert isinstance(value, datetime)
    moment = value if value.tzinfo is None else value.astimezone(UTC)  # naive means UTC
    return f"{_format_date(moment)}T{_format_time(moment.time())}Z"


def _format_date(value: date) -> str:
    # Spelled out: strftime("%Y") does not pad years below 1000 on every platform.
    return f"{value.year:04d}-{value.month:02d}-{value.day:02d}"


def _format_time(value: time) -> str:
    clock = f"{value.hour:02d}:{value.minute:02d}:{value.second:02d}"
    return clock + _fraction(value.microsecond)


def _encode_date(t: Type, value: object) -> object:
    assert isinstance(value, date)
    return _format_date(value)


def _encode_time(t: Type, value: object) -> object:
    assert isinstance(value, time)
    return _format_time(value)


def _encode_as_text(t: Type, value: object) -> object:
    return str(value)


def _encode_ip(t: Type, value: object) -> object:
    if isinstance(value, ipaddress.IPv6Address) and value.scope_id is None:
        mapped = value.ipv4_mapped
        if mapped is not None:
            # RFC 5952 §5 (and Go's netip, which Krenalis uses) write IPv4-mapped addresses
            # with a dotted tail; Python before 3.13 would give "::ffff:c000:201".
            return f"::ffff:{mapped}"
    return str(value)


def _encode_array(t: Type, value: object) -> object:
    assert isinstance(value, list | tuple) and t.element_type is not None
    element_type = t.element_type
    return [encode_value(element_type, item) for item in value]


def _encode_object(t: Type, value: object) -> object:
    assert isinstance(value, Mapping)
    # In schema order, like Krenalis; keys the schema does not know are left out.
    return {p.name: encode_value(p.type, value[p.name]) for p in t.properties if p.name in value}


def _encode_map(t: Type, value: object) -> object:
    assert isinstance(value, Mapping) and t.element_type is not None
    element_type = t.element_type
    # Sorted keys make the encoding deterministic, so encodings can be compared as text.
    return {key: encode_value(element_type, value[key]) for key in sorted(value)}


_Encoder = Callable[[Type, object], object]

_ENCODERS: dict[Kind, _Encoder] = {
    Kind.STRING: _encode_as_is,
    Kind.BOOLEAN: _encode_as_is,
    Kind.INT: _encode_int,
    Kind.FLOAT: _encode_float,
    Kind.DECIMAL: _encode_decimal,
    Kind.DATETIME: _encode_datetime,
    Kind.DATE: _encode_date,
    Kind.TIME: _encode_time,
    Kind.YEAR: _encode_as_is,
    Kind.UUID: _encode_as_text,
    Kind.JSON: _encode_as_is,
    Kind.IP: _encode_ip,
    Kind.ARRAY: _encode_array,
    Kind.OBJECT: _encode_object,
    Kind.MAP: _encode_map,
}
