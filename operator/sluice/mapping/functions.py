"""The functions of the language: how many arguments each takes, and what each does.

The checker gives every argument its type (:mod:`sluice.mapping.checker`); what is here runs on
values that already have the types the functions expect, so none of it dispatches on types.
Every function returns nil (``None``) for nil arguments unless said otherwise.
"""

from __future__ import annotations

import json
import operator
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sluice.mapping.convert import Conversion, converter
from sluice.mapping.errors import ConversionFailure, EvaluationFailure, code
from sluice.mapping.runtime import JSON_NULL
from sluice.model.types import Kind, Type

#: Evaluates a node for a profile; the checker, not mypy, knows the types of the values.
Evaluator = Callable[[Any], Any]


@dataclass(frozen=True, slots=True)
class Arity:
    minimum: int
    maximum: int | None
    even: bool = False
    wording: str = ""

    def accepts(self, count: int) -> bool:
        if count < self.minimum or (self.maximum is not None and count > self.maximum):
            return False
        return not (self.even and count % 2)


_ONE = Arity(1, 1, wording="one argument")
_TWO = Arity(2, 2, wording="two arguments")
_TWO_OR_THREE = Arity(2, 3, wording="two or three arguments")
_AT_LEAST_TWO = Arity(2, None, wording="at least two arguments")

#: Every function, with the number of arguments it takes.
FUNCTIONS: dict[str, Arity] = {
    "and": _AT_LEAST_TWO,
    "or": _AT_LEAST_TWO,
    "not": _ONE,
    "eq": _TWO,
    "ne": _TWO,
    "if": _TWO_OR_THREE,
    "coalesce": Arity(1, None, wording="at least one argument"),
    "lower": _ONE,
    "upper": _ONE,
    "trim": _ONE,
    "ltrim": _ONE,
    "rtrim": _ONE,
    "initcap": _ONE,
    "substring": _TWO_OR_THREE,
    "len": _ONE,
    "json_parse": _ONE,
    "array": Arity(0, None),
    "map": Arity(0, None, even=True, wording="an even number of arguments"),
}


def arity_message(function: str) -> str:
    return f'function "{function}" requires {FUNCTIONS[function].wording}'


# ---------------------------------------------------------------------------------------------
# Strings
# ---------------------------------------------------------------------------------------------

# A word is a run of letters, digits and underscores: "1st" stays "1st", "o'neil" → "O'Neil".
_WORD_START = re.compile(r"(?<!\w)\w")
# str.title() starts a word after anything but a letter; in ASCII text that differs from the
# rule above only after digits and underscores.
_DIGIT_OR_UNDERSCORE = re.compile(r"[0-9_]")


def initcap(text: str) -> str:
    """Every word title-cased, the rest of it lower-cased."""
    if text.isascii() and _DIGIT_OR_UNDERSCORE.search(text) is None:
        return text.title()  # the same result, in C
    return _WORD_START.sub(_title_first, text.lower())


def _title_first(match: re.Match[str]) -> str:
    return match.group().title()


#: The functions whose single argument is a string transformed into another string.
STRING_FUNCTIONS: dict[str, Callable[[str], str]] = {
    "lower": str.lower,
    "upper": str.upper,
    "trim": str.strip,
    "ltrim": str.lstrip,
    "rtrim": str.rstrip,
    "initcap": initcap,
}


def unary_string(function: Callable[[str], str], argument: Evaluator) -> Evaluator:
    def evaluate(profile: Any) -> Any:
        value = argument(profile)
        return None if value is None else function(value)

    return evaluate


def substring(text: Evaluator, start: Evaluator, length: Evaluator | None) -> Evaluator:
    """1-based, in characters; a start below 1 counts from the first character."""

    def evaluate(profile: Any) -> Any:
        value = text(profile)
        if value is None:
            return None
        first = start(profile)
        if first is None:
            return None
        begin = max(first, 1) - 1
        if length is None:
            return value[begin:]
        count = length(profile)
        if count is None:
            return None
        if count < 0:
            raise EvaluationFailure("substring: negative substring length is not allowed")
        return value[begin : begin + count]

    return evaluate


def fixed_substring(text: Evaluator, start: int, length: int | None = None) -> Evaluator:
    """``substring`` with constant bounds (a length, if any, not negative)."""
    begin = max(start, 1) - 1
    end = None if length is None else begin + length

    def evaluate(profile: Any) -> Any:
        value = text(profile)
        return None if value is None else value[begin:end]

    return evaluate


def json_parse(argument: Evaluator, source: str) -> Evaluator:
    def evaluate(profile: Any) -> Any:
        text = argument(profile)
        if text is None:
            return None
        try:
            value = json.loads(text, parse_constant=_refuse_constant)
        except (ValueError, RecursionError):
            raise EvaluationFailure(
                f"{code(source)} cannot be parsed by «json_parse» because it is not valid JSON"
            ) from None
        if _SURROGATE_ESCAPE.search(text):
            value = _without_lone_surrogates(value)
        return JSON_NULL if value is None else value

    return evaluate


# JSON text may escape a lone UTF-16 surrogate (\ud800), which no UTF-8 text can hold.
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


def _without_lone_surrogates(value: Any) -> Any:
    """Lone surrogates replaced with U+FFFD, as Go's JSON decoder does."""
    if isinstance(value, str):
        return value.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    if isinstance(value, list):
        return [_without_lone_surrogates(item) for item in value]
    if isinstance(value, dict):
        return {
            _without_lone_surrogates(key): _without_lone_surrogates(item)
            for key, item in value.items()
        }
    return value


def _refuse_constant(name: str) -> object:
    # NaN and Infinity are not JSON, although Python's parser reads them by default.
    raise ValueError(name)


# ---------------------------------------------------------------------------------------------
# Logic
# ---------------------------------------------------------------------------------------------


def _three_valued(decisive: bool) -> Callable[[Sequence[Evaluator]], Evaluator]:
    """``and`` (decisive false) and ``or`` (decisive true) in three-valued logic: the decisive
    value if any argument has it; else nil if any argument is nil; else the other value."""

    def combine(arguments: Sequence[Evaluator]) -> Evaluator:
        def evaluate(profile: Any) -> Any:
            unknown = False
            for argument in arguments:
                value = argument(profile)
                if value is decisive:
                    return decisive
                if value is None:
                    unknown = True
            return None if unknown else not decisive

        return evaluate

    return combine


logical_and = _three_valued(decisive=False)
logical_or = _three_valued(decisive=True)


def logical_not(argument: Evaluator) -> Evaluator:
    def evaluate(profile: Any) -> Any:
        value = argument(profile)
        return None if value is None else not value

    return evaluate


def choose(condition: Evaluator, then: Evaluator, otherwise: Evaluator | None) -> Evaluator:
    """``if``: ``then`` when the condition is true; ``otherwise`` (or nil) when false or nil."""
    if otherwise is None:

        def evaluate_without_else(profile: Any) -> Any:
            return then(profile) if condition(profile) else None

        return evaluate_without_else

    def evaluate(profile: Any) -> Any:
        return then(profile) if condition(profile) else otherwise(profile)

    return evaluate


Comparison = Callable[[object, object], bool]


def compare(left: Evaluator, right: Evaluator, equal: Comparison, negate: bool) -> Evaluator:
    """``eq`` / ``ne``: nil when either side is nil."""

    def evaluate(profile: Any) -> Any:
        a = left(profile)
        if a is None:
            return None
        b = right(profile)
        if b is None:
            return None
        return equal(a, b) is not negate

    return evaluate


# ---------------------------------------------------------------------------------------------
# JSON builders
# ---------------------------------------------------------------------------------------------


def build_array(elements: Sequence[Evaluator]) -> Evaluator:
    """``array``: an array(json); nil elements become JSON null."""

    def evaluate(profile: Any) -> Any:
        return [element(profile) for element in elements]

    return evaluate


def build_map(entries: Sequence[tuple[str, Evaluator, bool]]) -> Evaluator:
    """``map``: a map(json). A nil value is JSON null, or leaves its key out when ``omit_nil``
    (a value written as a bare path: the property is missing, so is the key)."""

    def evaluate(profile: Any) -> Any:
        result: dict[str, object] = {}
        for key, value_of, omit_nil in entries:
            value = value_of(profile)
            if value is None and omit_nil:
                continue
            result[key] = value
        return result

    return evaluate


def json_length(value: object) -> int:
    """``len`` of a JSON value: characters of a string, elements or entries of a container,
    the length of the text of a number or boolean, 0 for null."""
    if value is JSON_NULL:
        return 0
    if isinstance(value, str | list | dict):
        return len(value)
    return len(json.dumps(value))


# ---------------------------------------------------------------------------------------------
# Equality
# ---------------------------------------------------------------------------------------------

_NUMBERS = frozenset({Kind.INT, Kind.FLOAT, Kind.DECIMAL})


def equality(left: Type, right: Type) -> Comparison:
    """How ``eq`` compares a value of ``left`` with a value of ``right``.

    Numbers compare by value, exactly (1 equals 1.0, 0.1 the decimal does not equal 0.1 the
    float); JSON values compare structurally; otherwise the left value is converted to the
    right type first, and a value that does not convert is not equal.
    """
    if left.kind is Kind.JSON and right.kind is Kind.JSON:
        return json_equal
    if left.kind in _NUMBERS and right.kind in _NUMBERS:
        return operator.eq
    converted = _converted_equality(left, right)
    if left.kind is Kind.JSON and right.kind in _NUMBERS:
        return lambda a, b: a == b if _is_json_number(a) else converted(a, b)
    if left.kind in _NUMBERS and right.kind is Kind.JSON:
        return lambda a, b: a == b if _is_json_number(b) else converted(a, b)
    return converted


def _converted_equality(left: Type, right: Type) -> Comparison:
    convert = None if left == right else converter(left, right, Conversion())
    same_type_equal = json_equal if _holds_json(right) else operator.eq

    def equal(a: object, b: object) -> bool:
        if convert is not None:
            try:
                a = convert(a)
            except ConversionFailure:
                return False
        return a is not None and same_type_equal(a, b)

    return equal


def _holds_json(t: Type) -> bool:
    if t.kind is Kind.JSON:
        return True
    if t.element_type is not None:
        return _holds_json(t.element_type)
    return any(_holds_json(p.type) for p in t.properties)


def _is_json_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def json_equal(a: object, b: object) -> bool:
    """Structural equality of JSON values: a boolean never equals a number (as Python's
    ``True == 1`` would have it); numbers compare by value."""
    a = None if a is JSON_NULL else a
    b = None if b is JSON_NULL else b
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, list):
        return (
            isinstance(b, list)
            and len(a) == len(b)
            and all(json_equal(x, y) for x, y in zip(a, b, strict=True))
        )
    if isinstance(a, dict):
        return (
            isinstance(b, dict)
            and a.keys() == b.keys()
            and all(json_equal(item, b[key]) for key, item in a.items())
        )
    return a == b
