"""Condition values: their syntax per property type and the canonical text the API returns.

A value is always a string. It is parsed with the type it is compared to (the element type for
an array property) and rendered back the way the API renders its stored form, so that reading
a filter back gives the same text whatever spelling the user chose (``+7`` → ``7``,
``2024-01-02T10:00:00+02:00`` → ``2024-01-02T08:00:00``).
"""

from __future__ import annotations

import ipaddress
import math
import re
import struct
from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta, timezone

from sluice.model.types import Kind, Type, float_range, int_range

MAX_VALUE_RUNES = 60


class InvalidValueError(ValueError):
    """A value the operand type cannot hold; the message is the full reason."""


class _MalformedValueError(Exception):
    """The text is not a value of the kind."""


class _ValueDoesNotFitError(Exception):
    """The text is a value of the kind, but the type cannot hold it; says which values it can."""


def normalize_value(text: str, operand: Type, property_path: str, empty_allowed: bool) -> str:
    """The canonical text of a condition value compared to values of type ``operand``.

    ``empty_allowed`` lets a string operand take the empty string; the caller decides where
    looking for an empty string makes sense.
    """
    if operand.values is not None:
        # The schema vouches for its allowed values (text without NUL, maybe empty, maybe
        # long): membership is the only check, as in the API.
        if text not in operand.values:
            raise InvalidValueError(
                f'value of the "{property_path}" property is not among the allowed values'
            )
        return text
    check_text(text, empty_allowed=empty_allowed and operand.kind is Kind.STRING)
    parse = _PARSERS.get(operand.kind)
    if parse is None:
        # Operators are checked first, so no operand of another kind can take values.
        raise AssertionError(f"no value syntax for {operand.kind} properties")
    try:
        return parse(text, operand)
    except _MalformedValueError:
        raise InvalidValueError(
            f'value of the "{property_path}" property is not a valid {operand.kind}'
        ) from None
    except _ValueDoesNotFitError as limits:
        raise InvalidValueError(
            f'value of the "{property_path}" property does not fit {operand}: {limits}'
        ) from None


def check_text(text: str, *, empty_allowed: bool) -> None:
    """The checks every free-form value passes: the API's ones for a 60-rune string field."""
    if text == "" and not empty_allowed:
        raise InvalidValueError("condition value is empty")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate: no UTF-8 text decodes to it
        raise InvalidValueError(
            "condition value contains invalid UTF-8 encoded characters"
        ) from None
    if "\x00" in text:
        raise InvalidValueError("condition value contains the NUL byte")
    if len(text) > MAX_VALUE_RUNES:  # a str counts code points, that is runes
        raise InvalidValueError(f"condition value is longer than {MAX_VALUE_RUNES} runes")


# ---------------------------------------------------------------------------------------------
# Numbers
# ---------------------------------------------------------------------------------------------

# Explicit ASCII classes: int(), float() and \d would also take other scripts' digits and "_".
_SIGNED_INT = re.compile(r"[+-]?(?:0|[1-9][0-9]*)")
_UNSIGNED_INT = re.compile(r"0|[1-9][0-9]*")
# No leading or trailing ".", no NaN nor infinities: the API's float and decimal syntax.
_REAL_NUMBER = re.compile(
    r"(?P<sign>[+-]?)(?P<integer>[0-9]+)(?:\.(?P<fraction>[0-9]+))?"
    r"(?:[eE](?P<exponent>[+-]?[0-9]+))?"
)


def _parse_int(text: str, t: Type) -> str:
    syntax = _UNSIGNED_INT if t.unsigned else _SIGNED_INT
    if not syntax.fullmatch(text):
        raise _MalformedValueError
    value = int(text)
    low, high = int_range(t.bit_size, t.unsigned)
    if not low <= value <= high:
        raise _ValueDoesNotFitError(f"it must be in [{low}, {high}]")
    return str(value)


def _parse_float(text: str, t: Type) -> str:
    if not _REAL_NUMBER.fullmatch(text):
        raise _MalformedValueError
    try:
        return _float_text(float(text), t.bit_size)
    except OverflowError:
        low, high = (_float_text(bound, t.bit_size) for bound in float_range(t.bit_size))
        raise _ValueDoesNotFitError(f"it must be in [{low}, {high}]") from None


def _float_text(value: float, bit_size: int) -> str:
    """The shortest text that reads back as the same float of the bit size.

    ``repr`` is shortest for float(64) only: 0.1 as a float(32) is 0.10000000149011612 in
    float(64), yet "0.1" names it unambiguously among float(32) values. Raises OverflowError
    when ``value`` rounds to an infinity at that size.
    """
    if math.isinf(value):  # float() gives an infinity for what is too large for float(64)
        raise OverflowError
    if bit_size != 32:
        return repr(value)
    single = _to_float32(value)
    for digits in range(1, 10):  # 9 significant digits always identify a float(32)
        candidate = float(f"{single:.{digits}g}")
        if _reads_as_float32(candidate, single):
            return repr(candidate)
    return repr(single)


def _reads_as_float32(candidate: float, single: float) -> bool:
    try:
        return _to_float32(candidate) == single
    except OverflowError:  # rounding the largest float(32) up can leave its range
        return False


def _to_float32(value: float) -> float:
    """The float(32) nearest to ``value``; OverflowError if it rounds to an infinity."""
    return float(struct.unpack("<f", struct.pack("<f", value))[0])


def _parse_decimal(text: str, t: Type) -> str:
    # Read by hand rather than with Decimal, which refuses exponents as large as the syntax
    # allows and rounds to its context precision in arithmetic.
    match = _REAL_NUMBER.fullmatch(text)
    if not match:
        raise _MalformedValueError
    fraction = match.group("fraction") or ""
    digits = (match.group("integer") + fraction).lstrip("0")
    if not digits:
        return "0"
    significant = digits.rstrip("0")
    exponent = int(match.group("exponent") or 0) - len(fraction) + len(digits) - len(significant)
    integer_digits = max(len(significant) + exponent, 0)
    fraction_digits = max(-exponent, 0)
    if integer_digits > t.precision - t.scale or fraction_digits > t.scale:
        raise _ValueDoesNotFitError(
            f"it can have at most {t.precision - t.scale} integer digits "
            f"and {t.scale} fractional digits"
        )
    return match.group("sign").replace("+", "") + _plain_decimal(significant, exponent)


def _plain_decimal(digits: str, exponent: int) -> str:
    """``digits`` × 10^``exponent`` written without an exponent."""
    if exponent >= 0:
        return digits + "0" * exponent
    padded = digits.rjust(1 - exponent, "0")  # at least one digit before the point
    return f"{padded[:exponent]}.{padded[exponent:]}"


# ---------------------------------------------------------------------------------------------
# Dates and times
# ---------------------------------------------------------------------------------------------

_DATE = r"(?P<year>[0-9]{4})-(?P<month>[0-9]{2})-(?P<day>[0-9]{2})"
_DATE_RE = re.compile(_DATE)
_TIME_RE = re.compile(
    r"(?P<hour>[0-9]{2}):(?P<minute>[0-9]{2}):(?P<second>[0-9]{2})(?:\.(?P<fraction>[0-9]{1,9}))?"
)
# ISO 8601, extended format: a date, optionally a time (seconds optional) and a UTC offset.
_DATETIME_RE = re.compile(
    _DATE
    + r"(?:[T ](?P<hour>[0-9]{2}):(?P<minute>[0-9]{2})"
    + r"(?::(?P<second>[0-9]{2})(?:\.(?P<fraction>[0-9]{1,9}))?)?"
    + r"(?:Z|(?P<sign>[+-])(?P<offset_hours>[0-9]{2})(?::?(?P<offset_minutes>[0-9]{2}))?)?)?"
)


def _group(match: re.Match[str], name: str) -> int:
    return int(match.group(name) or 0)


def _microseconds(match: re.Match[str]) -> int:
    # Python keeps microseconds: further digits are truncated (the API keeps nanoseconds).
    return int((match.group("fraction") or "").ljust(6, "0")[:6])


def _utc_offset(match: re.Match[str]) -> timezone:
    if not match.group("sign"):
        return UTC
    minutes = _group(match, "offset_hours") * 60 + _group(match, "offset_minutes")
    if _group(match, "offset_minutes") > 59:
        raise _MalformedValueError
    sign = -1 if match.group("sign") == "-" else 1
    return timezone(timedelta(minutes=sign * minutes))  # ValueError past ±24 hours


def _fraction_text(microsecond: int) -> str:
    """The API renders fractional seconds with the trailing zeros trimmed, and none if zero."""
    return f".{microsecond:06d}".rstrip("0") if microsecond else ""


def _parse_datetime(text: str, _: Type) -> str:
    match = _DATETIME_RE.fullmatch(text)
    if not match:
        raise _MalformedValueError
    try:
        local = datetime(
            _group(match, "year"),
            _group(match, "month"),
            _group(match, "day"),
            _group(match, "hour"),
            _group(match, "minute"),
            _group(match, "second"),
            _microseconds(match),
            tzinfo=_utc_offset(match),
        )
        moment = local.astimezone(UTC)
    except (ValueError, OverflowError):  # no such day or time, or outside years 1..9999 in UTC
        raise _MalformedValueError from None
    wall_clock = moment.replace(tzinfo=None, microsecond=0).isoformat()
    return wall_clock + _fraction_text(moment.microsecond)


def _parse_date(text: str, _: Type) -> str:
    match = _DATE_RE.fullmatch(text)
    if not match:
        raise _MalformedValueError
    try:
        day = date(_group(match, "year"), _group(match, "month"), _group(match, "day"))
    except ValueError:
        raise _MalformedValueError from None
    return day.isoformat()


def _parse_time(text: str, _: Type) -> str:
    match = _TIME_RE.fullmatch(text)
    if not match:
        raise _MalformedValueError
    try:
        clock = time(_group(match, "hour"), _group(match, "minute"), _group(match, "second"))
    except ValueError:
        raise _MalformedValueError from None
    return clock.isoformat() + _fraction_text(_microseconds(match))


def _parse_year(text: str, _: Type) -> str:
    if not re.fullmatch(r"[0-9]{1,4}", text) or int(text) == 0:
        raise _MalformedValueError
    return str(int(text))


# ---------------------------------------------------------------------------------------------
# Identifiers and text
# ---------------------------------------------------------------------------------------------

_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")


def _parse_uuid(text: str, _: Type) -> str:
    if not _UUID.fullmatch(text):  # the 36-character form only: no braces, no "urn:uuid:"
        raise _MalformedValueError
    return text.lower()


def _parse_ip(text: str, _: Type) -> str:
    # A zoned IPv6 address ("fe80::1%eth0") has no place in a warehouse column: it would
    # never match anything.
    if "%" in text:
        raise _MalformedValueError
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        raise _MalformedValueError from None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        # Python before 3.13 writes ::ffff:102:304; the API, like PostgreSQL, ::ffff:1.2.3.4.
        return f"::ffff:{address.ipv4_mapped}"
    return str(address)


def _parse_string(text: str, _: Type) -> str:
    return text


_PARSERS: dict[Kind, Callable[[str, Type], str]] = {
    Kind.STRING: _parse_string,
    Kind.INT: _parse_int,
    Kind.FLOAT: _parse_float,
    Kind.DECIMAL: _parse_decimal,
    Kind.DATETIME: _parse_datetime,
    Kind.DATE: _parse_date,
    Kind.TIME: _parse_time,
    Kind.YEAR: _parse_year,
    Kind.UUID: _parse_uuid,
    Kind.IP: _parse_ip,
    # Elements of an array(json): free text, as in the API. (A json property itself is
    # refused in export filters before its values are looked at.)
    Kind.JSON: _parse_string,
}
