"""Run-time conversions between the types of the language, chosen once per pair of types.

:func:`converter` returns the function converting values of one type to another (or None when
values pass unchanged). The function is called with non-nil values only; it returns the
converted value, or nil where the null rules turn a value into nil, and raises
:class:`~sluice.mapping.errors.ConversionFailure` when the value does not fit.

Which pairs convert at all is the matrix of :mod:`sluice.mapping.convertible`; for the others
the function refuses every value (literals are converted with these functions at compile time,
without consulting the matrix first, so that the message names the literal).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime
from typing import Any, Final

from sluice.mapping.adapters import Adapter, Conversion, from_text, refuse, then
from sluice.mapping.common_types import BOOLEAN, DATETIME, FLOAT64, JSON, STRING, TIME
from sluice.mapping.dates import parse_date, parse_rfc3339
from sluice.mapping.errors import ConversionFailure, Reason
from sluice.mapping.layouts import temporal_formatter
from sluice.mapping.numbers import (
    decimal_as_json,
    float_as_json,
    to_decimal,
    to_float,
    to_int,
    to_year,
)
from sluice.mapping.render import has_text, ip_text, renderer
from sluice.mapping.runtime import ABSENT, JSON_NULL, Purpose
from sluice.model.types import Kind, Type, is_valid_property_name
from sluice.model.values import (
    InvalidValue,
    StringConstraint,
    decode_value,
    has_lone_surrogate,
    string_violations,
)

__all__ = ["Adapter", "Conversion", "converter"]


def converter(source: Type, target: Type, conversion: Conversion) -> Adapter | None:
    """The function converting non-nil values of ``source`` to ``target`` (None: unchanged)."""
    adapter = _convert(source, target, conversion)
    if conversion.layouts is not None and target.kind in _TEMPORAL:
        adapter = then(adapter, temporal_formatter(conversion.layouts, target.kind))
    return adapter


_TEMPORAL = frozenset({Kind.DATETIME, Kind.DATE, Kind.TIME})
# The integers of JSON values have no size: bounds no integer type reaches make every
# conversion from them check its range.
_JSON_INTEGER = Type(Kind.INT, bit_size=64, minimum=-(2**1100), maximum=2**1100)


def _convert(source: Type, target: Type, conversion: Conversion) -> Adapter | None:
    if source.kind is Kind.JSON:
        return None if target.kind is Kind.JSON else _from_json(target, conversion)
    return _TARGETS[target.kind](source, target, conversion)


# ---------------------------------------------------------------------------------------------
# Strings
# ---------------------------------------------------------------------------------------------


def _to_string(source: Type, target: Type, conversion: Conversion) -> Adapter | None:
    if not has_text(source):
        return refuse(target)
    return then(renderer(source), _string_check(target, conversion))


# The reason reported for the first broken constraint, in the order the API checks them.
_STRING_REASONS = (
    (StringConstraint.VALUES, Reason.ENUM),
    (StringConstraint.PATTERN, Reason.PATTERN),
    (StringConstraint.MAX_BYTES, Reason.MAX_BYTES),
    (StringConstraint.MAX_LENGTH, Reason.MAX_LENGTH),
)


def _string_check(target: Type, conversion: Conversion) -> Adapter | None:
    """The destination's string constraints (length, UTF-8 bytes, values, pattern), or None."""
    if not any((target.max_length, target.max_bytes, target.values, target.pattern)):
        return None
    # The null rule: "" becomes nil for an enumeration or a pattern that refuses it.
    empty_is_nil = (
        conversion.nil_allowed
        and (target.values is not None or target.pattern is not None)
        and bool(string_violations(target, ""))
    )

    def check(text: str) -> object:
        if has_lone_surrogate(text):
            raise ConversionFailure(Reason.INVALID, target)
        broken = string_violations(target, text)
        if not broken:
            return text
        if empty_is_nil and text == "":
            return None
        reason = next(reason for constraint, reason in _STRING_REASONS if constraint in broken)
        raise ConversionFailure(reason, target)

    if target.max_length is not None and not (target.max_bytes or target.values or target.pattern):
        return _length_first(target.max_length, check)
    return check


def _length_first(limit: int, check: Adapter) -> Adapter:
    """A maximum length alone, the most common constraint: ASCII text within it (ASCII has no
    lone surrogates) is accepted without a call; other text gets the full check."""

    def check_length(text: str) -> object:
        if len(text) <= limit and text.isascii():
            return text
        return check(text)

    return check_length


# ---------------------------------------------------------------------------------------------
# Booleans
# ---------------------------------------------------------------------------------------------

_TRUE_WORDS = frozenset({"true", "True", "TRUE", "yes", "Yes", "YES"})
_FALSE_WORDS = frozenset({"false", "False", "FALSE", "no", "No", "NO"})


def _to_boolean(source: Type, target: Type, conversion: Conversion) -> Adapter | None:
    if source.kind is Kind.STRING:
        return from_text(_boolean_word, conversion)
    if source.kind is Kind.BOOLEAN:
        return None
    if source.kind is Kind.INT and source.bit_size == 8:
        return lambda number: number != 0
    return refuse(target)


def _boolean_word(text: object) -> bool:
    if text in _TRUE_WORDS:
        return True
    if text in _FALSE_WORDS:
        return False
    raise ConversionFailure(Reason.INVALID, BOOLEAN)


# ---------------------------------------------------------------------------------------------
# Time
# ---------------------------------------------------------------------------------------------


def _to_datetime(source: Type, target: Type, conversion: Conversion) -> Adapter | None:
    match source.kind:
        case Kind.STRING:
            return from_text(parse_rfc3339, conversion)
        case Kind.DATETIME:
            return None
        case Kind.DATE:
            return _midnight
    return refuse(target)


def _midnight(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def _to_date(source: Type, target: Type, conversion: Conversion) -> Adapter | None:
    match source.kind:
        case Kind.STRING:
            return from_text(parse_date, conversion)
        case Kind.DATE:
            return None
        case Kind.DATETIME:
            return datetime.date
    return refuse(target)


def _to_time(source: Type, target: Type, conversion: Conversion) -> Adapter | None:
    match source.kind:
        case Kind.STRING:
            return from_text(_parser_of(TIME), conversion)
        case Kind.TIME:
            return None
        case Kind.DATETIME:
            return datetime.time
    return refuse(target)


def _parser_of(t: Type) -> Adapter:
    """Text read as the schema reads values of ``t`` (time, UUID, IP address, ISO datetime)."""

    def parse(text: object) -> object:
        try:
            return decode_value(t, text)
        except InvalidValue:
            raise ConversionFailure(Reason.PARSE, t) from None

    return parse


# ---------------------------------------------------------------------------------------------
# UUIDs, IP addresses, JSON
# ---------------------------------------------------------------------------------------------


def _to_parsed(kind: Kind) -> Callable[[Type, Type, Conversion], Adapter | None]:
    """Conversions to UUID or IP address: from strings, or from the same kind."""

    def conversion_to(source: Type, target: Type, conversion: Conversion) -> Adapter | None:
        if source.kind is Kind.STRING:
            return from_text(_parser_of(target), conversion)
        return None if source.kind is kind else refuse(target)

    return conversion_to


def _to_json(source: Type, target: Type, conversion: Conversion) -> Adapter | None:
    """A value as JSON: containers become lists and dicts of JSON values."""
    strict = conversion.strict()
    match source.kind:
        case Kind.STRING | Kind.BOOLEAN | Kind.INT | Kind.YEAR:
            return None
        case Kind.FLOAT:
            return float_as_json(target)
        case Kind.DECIMAL:
            return decimal_as_json(target)
        case Kind.DATETIME | Kind.DATE | Kind.TIME | Kind.UUID:
            return renderer(source)
        case Kind.IP:
            return ip_text
        case Kind.ARRAY:
            assert source.element_type is not None
            return _each_element(converter(source.element_type, JSON, strict))
        case Kind.MAP:
            assert source.element_type is not None
            return _each_value(converter(source.element_type, JSON, strict))
        case _:
            entries = [(p.name, converter(p.type, JSON, strict), True) for p in source.properties]
            return _object_of(entries)


# ---------------------------------------------------------------------------------------------
# Containers
# ---------------------------------------------------------------------------------------------


def _to_array(source: Type, target: Type, conversion: Conversion) -> Adapter | None:
    if source.kind is not Kind.ARRAY:
        return refuse(target)
    assert source.element_type is not None and target.element_type is not None
    element = converter(source.element_type, target.element_type, conversion.strict())
    return then(_each_element(element), _elements_check(target))


def _each_element(element: Adapter | None) -> Adapter | None:
    if element is None:
        return None

    def convert(values: list[Any]) -> list[object]:
        converted = []
        for index, item in enumerate(values):
            try:
                converted.append(element(item))
            except ConversionFailure as failure:
                raise failure.inside(f"[{index}]") from None
        return converted

    return convert


def _elements_check(target: Type) -> Adapter | None:
    """The destination's minElements, maxElements and uniqueElements, or None."""
    low, high, unique = target.min_elements, target.max_elements, target.unique_elements
    if low is None and high is None and not unique:
        return None

    def check(values: list[Any]) -> list[Any]:
        if low is not None and len(values) < low:
            raise ConversionFailure(Reason.MIN_ELEMENTS, target)
        if high is not None and len(values) > high:
            raise ConversionFailure(Reason.MAX_ELEMENTS, target)
        # Unique elements are scalars (the schema allows nothing else), hence hashable.
        if unique and len(set(values)) != len(values):
            raise ConversionFailure(Reason.REPEATED, target)
        return values

    return check


def _to_object(source: Type, target: Type, conversion: Conversion) -> Adapter | None:
    lenient = conversion.lenient()
    entries: list[tuple[str, Adapter | None, bool]] = []
    for prop in target.properties:
        if source.kind is Kind.OBJECT:
            found = source.property(prop.name)
            if found is None:
                continue  # never present in the value
            item_type = found.type
        elif source.kind is Kind.MAP:
            assert source.element_type is not None
            item_type = source.element_type
        else:
            return refuse(target)
        keeps_null = prop.nullable or prop.type.kind is Kind.JSON
        entries.append((prop.name, converter(item_type, prop.type, lenient), keeps_null))
    return _object_of(entries, target, conversion.purpose)


def _object_of(
    entries: Sequence[tuple[str, Adapter | None, bool]],
    target: Type | None = None,
    purpose: Purpose | None = None,
) -> Adapter:
    """An object built from the entries of a dict, by name; the null rules of mapping keys
    apply to each property (nil is null when nullable, else the property is left out), and
    the properties ``target`` requires for ``purpose`` must be there."""
    required: tuple[tuple[str, Type], ...] = ()
    if target is not None and purpose is not None:
        required = tuple(
            (p.name, p.type)
            for p in target.properties
            if (p.create_required if purpose is Purpose.CREATE else p.update_required)
        )
    missing = (
        Reason.REQUIRED_FOR_CREATION if purpose is Purpose.CREATE else Reason.REQUIRED_FOR_UPDATE
    )

    def build(value: dict[str, Any]) -> dict[str, object]:
        result: dict[str, object] = {}
        for name, convert, keeps_null in entries:
            item = value.get(name, ABSENT)
            if item is ABSENT:
                continue
            if item is not None and convert is not None:
                try:
                    item = convert(item)
                except ConversionFailure as failure:
                    raise failure.inside(_step(name)) from None
            if item is not None or keeps_null:
                result[name] = item
        for name, item_type in required:
            if name not in result:
                raise ConversionFailure(missing, item_type).inside(_step(name))
        return result

    return build


def _step(key: str) -> str:
    """A key of an object or map as a path step in messages: ``.name`` or ``["a key"]``."""
    if is_valid_property_name(key):
        return "." + key
    quoted = key.replace("\\", "\\\\").replace('"', '\\"')
    return f'["{quoted}"]'


def _to_map(source: Type, target: Type, conversion: Conversion) -> Adapter | None:
    assert target.element_type is not None
    element = target.element_type
    if source.kind is Kind.MAP:
        assert source.element_type is not None
        return _each_value(converter(source.element_type, element, conversion.strict()))
    if source.kind is Kind.OBJECT:
        lenient = conversion.lenient()
        keeps_null = element.kind is Kind.JSON
        entries = [
            (p.name, converter(p.type, element, lenient), keeps_null) for p in source.properties
        ]
        return _object_of(entries)
    return refuse(target)


def _each_value(convert: Adapter | None) -> Adapter | None:
    if convert is None:
        return None

    def convert_all(values: dict[str, Any]) -> dict[str, object]:
        converted: dict[str, object] = {}
        for key, item in values.items():
            try:
                converted[key] = convert(item)
            except ConversionFailure as failure:
                raise failure.inside(_step(key)) from None
        return converted

    return convert_all


# ---------------------------------------------------------------------------------------------
# From JSON
# ---------------------------------------------------------------------------------------------


def _from_json(target: Type, conversion: Conversion) -> Adapter:
    """JSON values convert as the value they hold: a JSON string as a string, a number as an
    int or a float, a boolean as a boolean; arrays and objects as containers."""
    handlers = _json_handlers(target, conversion)
    nil_allowed = conversion.nil_allowed

    def convert(value: object) -> object:
        if value is None or value is JSON_NULL:
            if nil_allowed:
                return None
            raise ConversionFailure(Reason.INVALID, target)
        handler = handlers.get(type(value))
        if handler is None:
            raise ConversionFailure(Reason.INVALID, target)
        return handler(value)

    return convert


_SCALARS: Final = ((str, STRING), (bool, BOOLEAN), (int, _JSON_INTEGER), (float, FLOAT64))


def _json_handlers(target: Type, conversion: Conversion) -> dict[type, Adapter]:
    handlers: dict[type, Adapter] = {}
    for python_type, held in _SCALARS:
        if target.kind is Kind.ARRAY:
            handlers[python_type] = _one_element_array(target, conversion)
        else:
            handlers[python_type] = _convert(held, target, conversion) or _same
    if target.kind is Kind.DATETIME:
        # JSON carries datetimes in any ISO 8601 form, not only RFC 3339.
        handlers[str] = from_text(_parser_of(DATETIME), conversion)
    handlers[list] = _json_array(target, conversion)
    handlers[dict] = _json_object(target, conversion)
    return handlers


def _same(value: object) -> object:
    return value


def _one_element_array(target: Type, conversion: Conversion) -> Adapter:
    """A JSON scalar given where an array is expected: an array of that one element."""
    assert target.element_type is not None
    if target.max_elements == 0 or (target.min_elements or 0) > 1:
        return refuse(target)
    element = converter(JSON, target.element_type, conversion.strict()) or _same

    def wrap(value: object) -> object:
        try:
            return [element(value)]
        except ConversionFailure as failure:
            raise failure.inside("[0]") from None

    return wrap


def _json_array(target: Type, conversion: Conversion) -> Adapter:
    if target.kind is not Kind.ARRAY:
        return refuse(target)
    assert target.element_type is not None
    element = converter(JSON, target.element_type, conversion.strict())
    return then(_each_element(element), _elements_check(target)) or _same


def _json_object(target: Type, conversion: Conversion) -> Adapter:
    if target.kind is Kind.MAP:
        assert target.element_type is not None
        element = converter(JSON, target.element_type, conversion.strict())
        return _each_value(element) or _same
    if target.kind is not Kind.OBJECT:
        return refuse(target)
    lenient = conversion.lenient()
    entries = [
        (p.name, converter(JSON, p.type, lenient), p.nullable or p.type.kind is Kind.JSON)
        for p in target.properties
    ]
    return _object_of(entries, target, conversion.purpose)


_TARGETS: dict[Kind, Callable[[Type, Type, Conversion], Adapter | None]] = {
    Kind.STRING: _to_string,
    Kind.BOOLEAN: _to_boolean,
    Kind.INT: to_int,
    Kind.FLOAT: to_float,
    Kind.DECIMAL: to_decimal,
    Kind.DATETIME: _to_datetime,
    Kind.DATE: _to_date,
    Kind.TIME: _to_time,
    Kind.YEAR: to_year,
    Kind.UUID: _to_parsed(Kind.UUID),
    Kind.IP: _to_parsed(Kind.IP),
    Kind.JSON: _to_json,
    Kind.ARRAY: _to_array,
    Kind.OBJECT: _to_object,
    Kind.MAP: _to_map,
}
