"""From the checked tree to closures: what evaluating an expression does, decided once.

Every node becomes a closure taking the profile and returning the node's value (``None`` for
nil). Where a value must be converted (to a parameter's type, to text in a template, to the
destination) the converter for the node's type is chosen here and fused into its closure.

``if`` and ``coalesce`` return one of their arguments, whose types may differ: the conversion
of each argument is chosen for its own type. ``coalesce`` looks for the first non-nil value
*before* converting it, so where its arguments are themselves ``if`` or ``coalesce`` calls it
works with *selectors*, closures returning which of the possible types the value has.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sluice.mapping import functions
from sluice.mapping.common_types import BOOLEAN, INT32, JSON, STRING
from sluice.mapping.convert import Adapter, Conversion, converter
from sluice.mapping.errors import ConversionFailure, EvaluationFailure, Failure, code
from sluice.mapping.functions import Evaluator
from sluice.mapping.paths import reader
from sluice.mapping.render import json_text, renderer
from sluice.mapping.runtime import JSON_NULL, json_kind
from sluice.mapping.typed import (
    Apply,
    Choice,
    Concat,
    Constant,
    Expr,
    Read,
    types_of,
)
from sluice.model.types import Kind, Type

Selector = Callable[[Any], tuple[int, Any]]
#: The conversion applied to values of each type a node may produce (None: none).
AdapterFor = Callable[[Type], Adapter | None]


def evaluator_as(expr: Expr, adapt: AdapterFor) -> Evaluator:
    """The closure evaluating ``expr`` and converting its value with ``adapt``."""
    if isinstance(expr, Constant):
        return _constant_as(expr, adapt)
    if isinstance(expr, Choice):
        if expr.function == "if":
            return _if_as(expr, adapt)
        return _coalesce_as(expr, adapt)
    if isinstance(expr, Read):
        return reader(expr.lookups, expr.type, adapt(expr.type))
    return _fused(evaluator(expr), adapt(types_of(expr)[0]))


def evaluator(expr: Expr) -> Evaluator:
    """The closure evaluating ``expr`` to its unconverted value."""
    if isinstance(expr, Constant):
        return _constant(expr.value)
    if isinstance(expr, Read):
        return reader(expr.lookups, expr.type)
    if isinstance(expr, Concat):
        return _concat(expr)
    if isinstance(expr, Apply):
        return _APPLIERS[expr.function](expr)
    return evaluator_as(expr, _unchanged)


def _unchanged(t: Type) -> None:
    return None


def _constant(value: object) -> Evaluator:
    return lambda profile: value


def _fused(evaluate: Evaluator, adapter: Adapter | None) -> Evaluator:
    if adapter is None:
        return evaluate

    def evaluate_and_convert(profile: Any) -> Any:
        value = evaluate(profile)
        return None if value is None else adapter(value)

    return evaluate_and_convert


def _constant_as(expr: Constant, adapt: AdapterFor) -> Evaluator:
    """Converted now, unless it fails: then it fails when evaluated, as any value would."""
    converted, value = _constant_value(expr, adapt)
    if converted:
        return _constant(value)
    return _fused(_constant(expr.value), adapt(expr.type))


def _constant_value(expr: Constant, adapt: AdapterFor) -> tuple[bool, object]:
    """Whether ``expr`` converts now, and to what."""
    adapter = None if expr.value is None else adapt(expr.type)
    if adapter is None:
        return True, expr.value
    try:
        return True, adapter(expr.value)
    except Failure:
        return False, None


def _if_as(expr: Choice, adapt: AdapterFor) -> Evaluator:
    condition = evaluator_as(expr.arguments[0], _argument("if", expr.arguments[0], BOOLEAN))
    constants = [branch for branch in expr.branches if isinstance(branch, Constant)]
    if len(constants) == len(expr.branches):
        # A choice between constants ("vip" or "standard"): no calls but the condition's.
        values = [_constant_value(constant, adapt) for constant in constants]
        if all(converted for converted, _ in values):
            yes = values[0][1]
            no = values[1][1] if len(values) > 1 else None
            return lambda profile: yes if condition(profile) else no
    branches = [evaluator_as(branch, adapt) for branch in expr.branches]
    return functions.choose(condition, branches[0], branches[1] if len(branches) > 1 else None)


def _coalesce_as(expr: Choice, adapt: AdapterFor) -> Evaluator:
    if not any(isinstance(argument, Choice) for argument in expr.arguments):
        return _coalesce_values(expr.arguments, adapt)
    select = selector(expr)
    adapters = [adapt(t) for t in types_of(expr)]

    def evaluate_selected(profile: Any) -> Any:
        index, value = select(profile)
        if value is None:
            return None
        adapter = adapters[index]
        return value if adapter is None else adapter(value)

    return evaluate_selected


def _coalesce_values(arguments: tuple[Expr, ...], adapt: AdapterFor) -> Evaluator:
    """The first non-nil argument, converted; a constant ends the search (it is never nil
    once converted), so ``coalesce(phone, "n/a")`` is one read and a default."""
    candidates: list[tuple[Evaluator, Adapter | None]] = []
    default: object = None
    for argument in arguments:
        if isinstance(argument, Constant):
            converted, value = _constant_value(argument, adapt)
            if converted and value is not None:
                default = value
                break
        candidates.append((evaluator(argument), adapt(types_of(argument)[0])))
    if len(candidates) == 1:
        ((only, only_adapter),) = candidates

        def evaluate_one(profile: Any) -> Any:
            value = only(profile)
            if value is None:
                return default
            return value if only_adapter is None else only_adapter(value)

        return evaluate_one

    def evaluate(profile: Any) -> Any:
        for evaluate_argument, adapter in candidates:
            value = evaluate_argument(profile)
            if value is not None:
                return value if adapter is None else adapter(value)
        return default

    return evaluate


def selector(expr: Expr) -> Selector:
    """A closure returning the value of ``expr`` unconverted, with the index of its type in
    ``types_of(expr)``."""
    if not isinstance(expr, Choice):
        evaluate = evaluator(expr)
        return lambda profile: (0, evaluate(profile))
    offsets, selectors = [], []
    offset = 0
    for branch in expr.branches:
        offsets.append(offset)
        selectors.append(selector(branch))
        offset += len(types_of(branch))
    if expr.function == "if":
        return _if_selector(expr, selectors, offsets)
    return _coalesce_selector(selectors, offsets)


def _if_selector(expr: Choice, selectors: list[Selector], offsets: list[int]) -> Selector:
    condition = evaluator_as(expr.arguments[0], _argument("if", expr.arguments[0], BOOLEAN))
    then = selectors[0]
    otherwise = selectors[1] if len(selectors) > 1 else None
    shift = offsets[1] if len(offsets) > 1 else 0

    def select(profile: Any) -> tuple[int, Any]:
        if condition(profile):
            return then(profile)
        if otherwise is None:
            return 0, None
        index, value = otherwise(profile)
        return index + shift, value

    return select


def _coalesce_selector(selectors: list[Selector], offsets: list[int]) -> Selector:
    pairs = tuple(zip(selectors, offsets, strict=True))

    def select(profile: Any) -> tuple[int, Any]:
        for select_argument, offset in pairs:
            index, value = select_argument(profile)
            if value is not None:
                return index + offset, value
        return 0, None

    return select


# ---------------------------------------------------------------------------------------------
# Conversions of arguments
# ---------------------------------------------------------------------------------------------

_WHAT = {Kind.BOOLEAN: "a boolean", Kind.INT: "an int(32)", Kind.STRING: "a string"}


def _described(t: Type, value: object) -> str:
    if t.kind is Kind.JSON:
        return "JSON " + json_kind(value)
    return f"type {t}"


def _argument(function: str, argument: Expr, parameter: Type) -> AdapterFor:
    """Arguments are converted to their parameter's type, nil allowed; a value that does not
    convert fails the transformation, naming the argument."""

    def adapt(t: Type) -> Adapter | None:
        convert = converter(t, parameter, Conversion())
        if convert is None:
            return None

        def convert_argument(value: object) -> object:
            try:
                return convert(value)
            except ConversionFailure:
                raise EvaluationFailure(
                    f"{code(argument.source)} ({_described(t, value)}) does not represent "
                    f"{_WHAT[parameter.kind]} when passed to the «{function}» function"
                ) from None

        return convert_argument

    return adapt


def _template_part(part: Expr) -> AdapterFor:
    """Parts of a template are written as text; JSON null is written as nothing."""

    def adapt(t: Type) -> Adapter | None:
        if t.kind is not Kind.JSON:
            return renderer(t)

        def json_part(value: object) -> object:
            if value is JSON_NULL:
                return ""
            try:
                return json_text(value)
            except ConversionFailure:
                raise EvaluationFailure(
                    f"{code(part.source)} ({_described(t, value)}) cannot be written "
                    "in a string template"
                ) from None

        return json_part

    return adapt


def _json_element(argument: Expr) -> AdapterFor:
    """Arguments of ``array`` and ``map`` become JSON values (JSON null is ``None`` there)."""

    def adapt(t: Type) -> Adapter | None:
        if t.kind is Kind.JSON:
            return _json_null_as_none
        convert = converter(t, JSON, Conversion(nil_allowed=False))
        if convert is None:
            return None

        def convert_element(value: object) -> object:
            try:
                return convert(value)
            except ConversionFailure as failure:
                failure.subject = code(argument.source)
                raise

        return convert_element

    return adapt


def _json_null_as_none(value: object) -> object:
    return None if value is JSON_NULL else value


def _length(t: Type) -> Adapter:
    if t.kind in (Kind.STRING, Kind.ARRAY, Kind.MAP, Kind.OBJECT):
        return len
    if t.kind is Kind.JSON:
        return functions.json_length
    render = renderer(t)
    assert render is not None
    return lambda value: len(render(value))


# ---------------------------------------------------------------------------------------------
# Templates and calls
# ---------------------------------------------------------------------------------------------


def _concat(expr: Concat) -> Evaluator:
    """Parts side by side as one string: a ``%``-format with one ``%s`` per expression."""
    template = "".join(
        part.replace("%", "%%") if isinstance(part, str) else "%s" for part in expr.parts
    )
    keys = [_top_level_string(part) for part in expr.parts if not isinstance(part, str)]
    if len(keys) <= 2 and all(keys):
        return _concat_lookups(template, [str(key) for key in keys])
    parts = [
        evaluator_as(part, _template_part(part)) for part in expr.parts if not isinstance(part, str)
    ]
    # Parts are strings or nil, and `or ""` writes nil as nothing.
    if len(parts) == 1:
        (only,) = parts
        return lambda profile: template % (only(profile) or "")
    if len(parts) == 2:
        first, second = parts
        return lambda profile: template % (first(profile) or "", second(profile) or "")
    return lambda profile: template % tuple([part(profile) or "" for part in parts])


def _top_level_string(expr: Expr) -> str | None:
    """The input property, if ``expr`` only reads a top-level string property."""
    if isinstance(expr, Read) and len(expr.lookups) == 1 and expr.type.kind is Kind.STRING:
        return expr.lookups[0].key
    return None


def _concat_lookups(template: str, keys: list[str]) -> Evaluator:
    """``first_name " " last_name``: the commonest template, without a call per part."""
    if len(keys) == 1:
        (key,) = keys
        return lambda profile: template % (profile.get(key) or "")
    first, second = keys
    return lambda profile: template % (profile.get(first) or "", profile.get(second) or "")


def _arguments_as(expr: Apply, parameter: Type) -> list[Evaluator]:
    return [
        evaluator_as(argument, _argument(expr.function, argument, parameter))
        for argument in expr.arguments
    ]


def _logic(expr: Apply) -> Evaluator:
    arguments = _arguments_as(expr, BOOLEAN)
    if expr.function == "and":
        return functions.logical_and(arguments)
    if expr.function == "or":
        return functions.logical_or(arguments)
    return functions.logical_not(arguments[0])


def _comparison(expr: Apply) -> Evaluator:
    left, right = expr.arguments
    negate = expr.function == "ne"
    if not isinstance(left, Choice) and not isinstance(right, Choice):
        equal = functions.equality(types_of(left)[0], types_of(right)[0])
        return functions.compare(evaluator(left), evaluator(right), equal, negate)
    # A value of either side may have one of several types: one comparison per pair.
    table = [[functions.equality(a, b) for b in types_of(right)] for a in types_of(left)]
    select_left, select_right = selector(left), selector(right)

    def evaluate(profile: Any) -> Any:
        i, a = select_left(profile)
        if a is None:
            return None
        j, b = select_right(profile)
        if b is None:
            return None
        return table[i][j](a, b) is not negate

    return evaluate


def _string_function(expr: Apply) -> Evaluator:
    (argument,) = _arguments_as(expr, STRING)
    operation = functions.STRING_FUNCTIONS[expr.function]
    return functions.unary_string(operation, argument)


def _substring(expr: Apply) -> Evaluator:
    text, *numbers = expr.arguments
    string = evaluator_as(text, _argument("substring", text, STRING))
    fixed = [n.value for n in numbers if isinstance(n, Constant) and isinstance(n.value, int)]
    if len(fixed) == len(numbers) and (len(fixed) == 1 or fixed[1] >= 0):
        # substring(name, 1, 1): the bounds are known now.
        return functions.fixed_substring(string, fixed[0], fixed[1] if len(fixed) > 1 else None)
    start, *length = (
        evaluator_as(number, _argument("substring", number, INT32)) for number in numbers
    )
    return functions.substring(string, start, length[0] if length else None)


def _len(expr: Apply) -> Evaluator:
    measure = evaluator_as(expr.arguments[0], _length)

    def evaluate(profile: Any) -> Any:
        length = measure(profile)
        return 0 if length is None else length

    return evaluate


def _json_parse(expr: Apply) -> Evaluator:
    (argument,) = expr.arguments
    return functions.json_parse(evaluator_as(argument, _json_text(argument)), argument.source)


def _json_text(argument: Expr) -> AdapterFor:
    """``json_parse`` reads strings, and JSON strings: another JSON value is an error (the
    checker allows no other type), JSON null is nil."""

    def adapt(t: Type) -> Adapter | None:
        if t.kind is not Kind.JSON:
            return None

        def json_string(value: object) -> object:
            if value is JSON_NULL:
                return None
            if isinstance(value, str):
                return value
            raise EvaluationFailure(
                f"{code(argument.source)} ({_described(t, value)}) does not represent a string "
                "when passed to the «json_parse» function"
            )

        return json_string

    return adapt


def _array(expr: Apply) -> Evaluator:
    return functions.build_array(
        [evaluator_as(argument, _json_element(argument)) for argument in expr.arguments]
    )


def _map(expr: Apply) -> Evaluator:
    entries: list[tuple[str, Evaluator, bool]] = []
    for index in range(0, len(expr.arguments), 2):
        key, value = expr.arguments[index], expr.arguments[index + 1]
        assert isinstance(key, Constant) and isinstance(key.value, str)
        entries.append(
            (key.value, evaluator_as(value, _json_element(value)), isinstance(value, Read))
        )
    return functions.build_map(entries)


_APPLIERS: dict[str, Callable[[Apply], Evaluator]] = {
    "and": _logic,
    "or": _logic,
    "not": _logic,
    "eq": _comparison,
    "ne": _comparison,
    "lower": _string_function,
    "upper": _string_function,
    "trim": _string_function,
    "ltrim": _string_function,
    "rtrim": _string_function,
    "initcap": _string_function,
    "substring": _substring,
    "len": _len,
    "json_parse": _json_parse,
    "array": _array,
    "map": _map,
}
