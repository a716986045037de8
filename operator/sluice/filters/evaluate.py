"""Filters evaluated in memory: the meaning Sluice gives a filter, wherever it runs.

``sluice preview`` evaluates filters here; exports run them as SQL in the warehouse, and that SQL
is tested against this module. The semantics (``docs/filters.md``):

* An absent property and a null one are the same thing, a *missing* value, because in the
  warehouse every profile column is nullable and NULL means absent.
* Positive comparisons never match a missing value. Every negative operator is the exact
  complement of its positive one, so a missing value matches ``is not``, ``is not one of``,
  ``does not contain`` and ``is not between``. (SQL's three-valued logic would exclude it;
  Krenalis lets its SQL and its in-memory evaluator disagree on exactly this.)
* ``is empty`` matches a missing value, ``""``, ``[]`` and ``{}``; ``exists`` and ``is not null``
  test presence, of any property below it for an object.

A filter is compiled once: values become the Python values :func:`decode_record` gives profiles,
and each condition becomes a closure that looks its property up and compares, with nothing left
to parse or to decide per profile.
"""

from __future__ import annotations

import functools
import math
import operator as op
import re
from collections.abc import Callable, Mapping
from dataclasses import replace
from decimal import Decimal
from typing import Any

from sluice.filters.model import LOGICALS, Condition, Filter
from sluice.model.types import Kind, Type, leaf_paths, property_by_path
from sluice.model.values import decode_value

__all__ = ["Predicate", "Profile", "compile_predicate"]

Profile = Mapping[str, object]
Predicate = Callable[[Profile], bool]

# The value of a property in a profile, None when it is missing.
_Lookup = Callable[[Profile], object]
# A test of a present value. Its argument is Any: the comparison was chosen for the property's
# kind, and decode_record guarantees the profile holds a value of that kind.
_ValueTest = Callable[[Any], bool]

# Each negative operator and the positive one it complements (the SQL compiler shares it).
POSITIVE_OF: Mapping[str, str] = {
    "is not": "is",
    "is not between": "is between",
    "does not contain": "contains",
    "is not one of": "is one of",
    "is not empty": "is empty",
    "is not null": "is null",
    "does not exist": "exists",
}

_ORDERINGS: Mapping[str, Callable[[Any, Any], bool]] = {
    "is less than": op.lt,
    "is less than or equal to": op.le,
    "is greater than": op.gt,
    "is greater than or equal to": op.ge,
    "is before": op.lt,
    "is on or before": op.le,
    "is after": op.gt,
    "is on or after": op.ge,
}

# The kinds whose canonical value text is plain digits, read by the number constructors; the
# other kinds' canonical text is their JSON wire form, read by decode_value.
_NUMBER_READERS: Mapping[Kind, Callable[[str], object]] = {
    Kind.INT: int,
    Kind.YEAR: int,
    Kind.FLOAT: float,
    Kind.DECIMAL: Decimal,
}

# A JSON number, as an element of an array(json) would have been written.
_JSON_NUMBER = re.compile(r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?")


def compile_predicate(f: Filter, in_schema: Type) -> Predicate:
    """A predicate telling whether a profile (as :func:`decode_record` gives it) matches ``f``.

    ``f`` must come from :func:`parse_filter` with the same ``in_schema``: its paths, operators
    and canonical values are trusted, not checked again.
    """
    if f.logical not in LOGICALS:
        raise ValueError(f'invalid logical operator "{f.logical}"')
    if not f.conditions:
        raise ValueError("conditions are missing")
    conditions = [_compile_condition(c, in_schema) for c in f.conditions]
    # Chained closures rather than all()/any() over a generator: as short-circuiting, and
    # without a generator to build for every profile.
    return functools.reduce(_both if f.logical == "and" else _either, conditions)


def _both(first: Predicate, second: Predicate) -> Predicate:
    return lambda profile: first(profile) and second(profile)


def _either(first: Predicate, second: Predicate) -> Predicate:
    return lambda profile: first(profile) or second(profile)


def _compile_condition(condition: Condition, schema: Type) -> Predicate:
    positive = POSITIVE_OF.get(condition.operator)
    if positive is None:
        return _compile_positive(condition, schema)
    # Complementing the whole condition, missing values included, is the point: a negative
    # operator matches exactly the profiles its positive operator does not.
    complemented = _compile_positive(replace(condition, operator=positive), schema)
    return lambda profile: not complemented(profile)


def _compile_positive(condition: Condition, schema: Type) -> Predicate:
    path = condition.property
    prop_type = property_by_path(schema, path).type
    lookup = _lookup(path)
    match condition.operator:
        case "exists":
            return _presence(path, prop_type)
        case "is null":
            present = _presence(path, prop_type)
            return lambda profile: not present(profile)
        case "is empty":
            # None, "", [] and {} are exactly the falsy values a string, array or map property
            # can hold; anything else present is truthy.
            return lambda profile: not lookup(profile)
    test = _value_test(condition.operator, prop_type, condition.values)

    def matches(profile: Profile) -> bool:
        value = lookup(profile)
        return value is not None and test(value)

    return matches


# ---------------------------------------------------------------------------------------------
# Looking properties up
# ---------------------------------------------------------------------------------------------


def _lookup(path: str) -> _Lookup:
    """The value at a dot path through objects; None when it or an object on the way is missing."""
    first, *rest = path.split(".")
    if not rest:
        return lambda profile: profile.get(first)

    def nested(profile: Profile) -> object:
        value = profile.get(first)
        for name in rest:
            if not isinstance(value, Mapping):
                return None
            value = value.get(name)
        return value

    return nested


def _presence(path: str, prop_type: Type) -> Predicate:
    """Whether the property has a value; for an object, whether any property below it has one.

    An object is no column of the warehouse, only a prefix of its properties' columns: present
    when one of them is not NULL, as exports compile it. An empty ``{}`` is therefore absent.
    """
    if prop_type.kind is not Kind.OBJECT:
        lookup = _lookup(path)
        return lambda profile: lookup(profile) is not None
    leaves = tuple(_lookup(f"{path}.{leaf}") for leaf in leaf_paths(prop_type))
    return lambda profile: any(leaf(profile) is not None for leaf in leaves)


# ---------------------------------------------------------------------------------------------
# Testing present values
# ---------------------------------------------------------------------------------------------


def _value_test(operator: str, prop_type: Type, texts: tuple[str, ...]) -> _ValueTest:
    """The test a present value of ``prop_type`` passes for a positive operator."""
    if operator == "contains":
        return _containment(prop_type, texts[0])
    if operator == "is true":
        return lambda value: value is True
    if operator == "is false":
        return lambda value: value is False
    targets = [_typed_value(text, prop_type) for text in texts]
    if operator in _ORDERINGS:
        return _ordering(_ORDERINGS[operator], targets[0], prop_type.kind)
    match operator:
        case "is":
            target = targets[0]
            return lambda value: value == target
        case "is one of":
            # Equal numbers hash alike across int, float and Decimal, and equal instants
            # across offsets, so set membership is equality.
            members = frozenset(targets)
            return lambda value: value in members
        case "is between":
            low, high = targets
            return lambda value: low <= value <= high  # reversed bounds match nothing, as in SQL
        case "starts with":
            prefix = texts[0]
            return lambda value: value.startswith(prefix)
        case "ends with":
            suffix = texts[0]
            return lambda value: value.endswith(suffix)
    raise ValueError(f'operator "{operator}" is not valid')


def _ordering(compare: Callable[[Any, Any], bool], target: object, kind: Kind) -> _ValueTest:
    if kind is Kind.FLOAT and compare in (op.gt, op.ge):
        # PostgreSQL and DuckDB order NaN above every number; Python finds it incomparable.
        # A value is never NaN, so only "greater than" needs telling.
        return lambda value: compare(value, target) or math.isnan(value)
    return lambda value: compare(value, target)


def _containment(prop_type: Type, text: str) -> _ValueTest:
    """``contains``: a substring of a string, an element equal to the value for an array."""
    if prop_type.kind is Kind.STRING:
        return lambda value: text in value
    element_type = prop_type.element_type
    assert element_type is not None
    if element_type.kind is Kind.JSON:
        equals = _json_equality(text)
        return lambda value: any(equals(element) for element in value)
    element = _typed_value(text, element_type)
    return lambda value: element in value


def _json_equality(text: str) -> _ValueTest:
    """Equality of a JSON value with a condition value: as a string, or as a number.

    A JSON string equals the value with the same characters; a JSON number equals a value
    written as a JSON number with the same numeric value (``1``, ``1.0`` and ``1e0`` alike), as
    Krenalis compares JSON numbers as decimals. Nothing else is equal to a value.
    """
    number = Decimal(text) if _JSON_NUMBER.fullmatch(text) else None

    def equals(element: object) -> bool:
        if isinstance(element, str):
            return element == text
        if number is None or isinstance(element, bool):
            return False
        if isinstance(element, int):
            return element == number
        # repr gives back the digits the JSON had, which Decimal(float) would not.
        return isinstance(element, float) and Decimal(repr(element)) == number

    return equals


def _typed_value(text: str, operand: Type) -> object:
    """A canonical condition value as the Python value a profile holds for ``operand``."""
    read_number = _NUMBER_READERS.get(operand.kind)
    if read_number is not None:
        return read_number(text)
    # A bare type of the kind: the operand's constraints (maxLength, pattern, …) bind the
    # profile's values, not the values a condition compares them with.
    return decode_value(Type(operand.kind), text)
