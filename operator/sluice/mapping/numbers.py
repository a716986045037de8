"""Conversions to numbers and years, and of numbers to JSON.

Numbers are range-checked against the destination type (its own ``minimum`` and ``maximum``
included). Floats and decimals become integers rounded half away from zero; decimals are
rounded to the destination's scale the same way.
"""

from __future__ import annotations

import math
import re
from decimal import ROUND_HALF_UP, Context, Decimal

from sluice.mapping.adapters import Adapter, Conversion, from_text, refuse, then
from sluice.mapping.errors import ConversionFailure, Reason
from sluice.model.types import Kind, Number, Type, effective_range
from sluice.model.values import DECIMAL_TEXT, INTEGER_TEXT, InvalidValue, decode_value

_FLOAT_TEXT = re.compile(
    r"[+-]?(?:(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?|inf|infinity|nan)\Z",
    re.IGNORECASE,
)
# Wide enough to round any value that passed the magnitude check to any scale.
_WIDE = Context(prec=200, rounding=ROUND_HALF_UP)
_MAX_INTEGER_DIGITS = 20  # beyond 64 bits whatever the digits
# Text beyond 64 bits is "not a value" of the type rather than beyond its bounds, as in the API.
_INT64 = (-(2**63), 2**63 - 1)
_UINT64 = (0, 2**64 - 1)


def _range_of(t: Type) -> tuple[Number, Number]:
    if t.kind is Kind.YEAR:
        return 1, 9999
    if t.kind is Kind.BOOLEAN:
        return 0, 1
    return effective_range(t)


def _fits(source: Type, target: Type) -> bool:
    """Whether every value of ``source`` lies within the range of ``target``."""
    low, high = _range_of(source)
    target_low, target_high = effective_range(target)
    return target_low <= low and high <= target_high


def _bounds_check(target: Type) -> Adapter:
    """The number itself, if within the range of ``target``."""
    low, high = effective_range(target)

    def check(number: Number) -> Number:
        if number < low:
            raise ConversionFailure(Reason.MIN, target)
        if number > high:
            raise ConversionFailure(Reason.MAX, target)
        return number

    return check


def _round_half_away(number: float) -> int:
    """The nearest integer, halves away from zero (``round`` would round them to even)."""
    whole = math.trunc(number)
    if abs(number - whole) >= 0.5:
        whole += 1 if number > 0 else -1
    return whole


def to_int(source: Type, target: Type, conversion: Conversion) -> Adapter | None:
    check = _bounds_check(target)
    match source.kind:
        case Kind.STRING:
            return from_text(_integer_text(target, check), conversion)
        case Kind.INT | Kind.YEAR:
            return None if _fits(source, target) else check
        case Kind.BOOLEAN if target.bit_size == 8:
            return then(_boolean_as_int, None if _fits(source, target) else check)
        case Kind.FLOAT:
            return _float_to_int(target, check)
        case Kind.DECIMAL:
            return _decimal_to_int(target)
    return refuse(target)


def _boolean_as_int(flag: bool) -> int:
    return int(flag)


def _integer_text(target: Type, check: Adapter) -> Adapter:
    """Base-10 digits with an optional sign, within the range of ``target``."""
    low, high = _UINT64 if target.unsigned else _INT64

    def parse(text: str) -> object:
        if INTEGER_TEXT.fullmatch(text) is None:
            raise ConversionFailure(Reason.INVALID, target)
        if len(text.lstrip("+-").lstrip("0")) > _MAX_INTEGER_DIGITS:
            raise ConversionFailure(Reason.RANGE, target)
        number = int(text)
        if not low <= number <= high:
            raise ConversionFailure(Reason.RANGE, target)
        return check(number)

    return parse


def _float_to_int(target: Type, check: Adapter) -> Adapter:
    def convert(number: float) -> object:
        if not math.isfinite(number):
            raise ConversionFailure(Reason.RANGE, target)
        return check(_round_half_away(number))

    return convert


def _decimal_to_int(target: Type) -> Adapter:
    check = _bounds_check(target)
    low, high = effective_range(target)

    def convert(number: Decimal) -> object:
        # Bounds first, so that huge exponents never reach int().
        if number < low - 1:
            raise ConversionFailure(Reason.MIN, target)
        if number > high + 1:
            raise ConversionFailure(Reason.MAX, target)
        return check(int(number.to_integral_value(ROUND_HALF_UP, _WIDE)))

    return convert


def to_float(source: Type, target: Type, conversion: Conversion) -> Adapter | None:
    check = _float_check(target)
    match source.kind:
        case Kind.STRING:
            return from_text(_float_text(target, check), conversion)
        case Kind.INT | Kind.YEAR | Kind.DECIMAL:
            return _number_to_float(target, check)
        case Kind.FLOAT:
            keeps_all = source.real or (target.minimum is None and target.maximum is None)
            same = _fits(source, target) and (source.real or not target.real) and keeps_all
            return None if same else check
    return refuse(target)


def _float_check(target: Type) -> Adapter | None:
    """The destination's range and ``real`` checks, as the schema applies them; None when
    every float passes (a float(64) without bounds that allows NaN and infinities)."""
    unbounded = target.minimum is None and target.maximum is None
    if target.bit_size == 64 and unbounded and not target.real:
        return None

    def check(number: float) -> object:
        try:
            return decode_value(target, number)
        except InvalidValue:
            raise ConversionFailure(_float_violation(target, number), target) from None

    return check


def _float_violation(target: Type, number: float) -> Reason:
    if not math.isfinite(number):
        return Reason.RANGE
    low, _ = effective_range(target)
    return Reason.MIN if number < low else Reason.MAX


def _float_text(target: Type, check: Adapter | None) -> Adapter:
    def parse(text: str) -> object:
        if _FLOAT_TEXT.match(text) is None:
            raise ConversionFailure(Reason.INVALID, target)
        number = float(text)
        if math.isinf(number) and "inf" not in text.lower():
            raise ConversionFailure(Reason.RANGE, target)  # too large for a float
        return number if check is None else check(number)

    return parse


def _number_to_float(target: Type, check: Adapter | None) -> Adapter:
    """An int, a year or a decimal as the nearest float, if there is one."""

    def convert(number: int | Decimal) -> object:
        try:
            result = float(number)
        except OverflowError:
            raise ConversionFailure(Reason.RANGE, target) from None
        if math.isinf(result):  # a decimal beyond the float range
            raise ConversionFailure(Reason.RANGE, target)
        return result if check is None else check(result)

    return convert


def to_decimal(source: Type, target: Type, conversion: Conversion) -> Adapter | None:
    fit = _decimal_fit(target)
    match source.kind:
        case Kind.STRING:
            return from_text(_decimal_text(target, fit), conversion)
        case Kind.INT | Kind.YEAR:
            return _int_to_decimal(fit)
        case Kind.FLOAT:
            return _float_to_decimal(target, fit)
        case Kind.DECIMAL:
            return None if source.scale == target.scale and _fits(source, target) else fit
    return refuse(target)


def _int_to_decimal(fit: Adapter) -> Adapter:
    def convert(number: int) -> object:
        return fit(Decimal(number))

    return convert


def _decimal_fit(target: Type) -> Adapter:
    """A decimal rounded to the scale of ``target`` (halves away from zero), within range."""
    low, high = effective_range(target)
    quantum = Decimal((0, (1,), -target.scale))
    # Any number with more integer digits is out of range; rounding it could overflow.
    widest = target.precision - target.scale + 1

    def fit(number: Decimal) -> object:
        if number.adjusted() > widest:
            raise ConversionFailure(Reason.MIN if number < 0 else Reason.MAX, target)
        rounded = number.quantize(quantum, context=_WIDE)
        if rounded < low:
            raise ConversionFailure(Reason.MIN, target)
        if rounded > high:
            raise ConversionFailure(Reason.MAX, target)
        return rounded

    return fit


def _decimal_text(target: Type, fit: Adapter) -> Adapter:
    def parse(text: str) -> object:
        if DECIMAL_TEXT.fullmatch(text) is None:
            raise ConversionFailure(Reason.INVALID, target)
        try:
            number = Decimal(text)
        except ArithmeticError:  # an exponent beyond what Decimal holds
            raise ConversionFailure(Reason.RANGE, target) from None
        return fit(number)

    return parse


def _float_to_decimal(target: Type, fit: Adapter) -> Adapter:
    def convert(number: float) -> object:
        if not math.isfinite(number):
            raise ConversionFailure(Reason.RANGE, target)
        # repr is the shortest decimal text that reads back as this float: 0.1, not its binary.
        return fit(Decimal(repr(number)))

    return convert


_YEAR_TEXT = re.compile(r"[1-9][0-9]{0,3}\Z")  # no sign, no leading zero


def to_year(source: Type, target: Type, conversion: Conversion) -> Adapter | None:
    match source.kind:
        case Kind.STRING:
            return from_text(_year_text(target), conversion)
        case Kind.INT:
            return None if _fits_years(source) else _year_check(target)
        case Kind.YEAR:
            return None
    return refuse(target)


def _fits_years(source: Type) -> bool:
    low, high = effective_range(source)
    return low >= 1 and high <= 9999


def _year_text(target: Type) -> Adapter:
    def parse(text: str) -> int:
        if _YEAR_TEXT.match(text) is None:
            raise ConversionFailure(Reason.PARSE, target)
        return int(text)

    return parse


def _year_check(target: Type) -> Adapter:
    def check(number: int) -> int:
        if not 1 <= number <= 9999:
            raise ConversionFailure(Reason.YEAR_RANGE, target)
        return number

    return check


def float_as_json(target: Type) -> Adapter:
    def check(number: float) -> float:
        if not math.isfinite(number):
            raise ConversionFailure(Reason.INVALID, target)
        return number

    return check


def decimal_as_json(target: Type) -> Adapter:
    """JSON numbers are read as ints and floats: an integral decimal is an int, others the
    nearest float."""

    def convert(number: Decimal) -> object:
        if number.adjusted() < _MAX_INTEGER_DIGITS and number == number.to_integral_value(
            context=_WIDE
        ):
            return int(number)
        result = float(number)
        if math.isinf(result):
            raise ConversionFailure(Reason.INVALID, target)
        return result

    return convert
