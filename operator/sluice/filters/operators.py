"""Filter operators: which properties each one applies to and how many values it takes.

The rules are those of the API for destination pipelines on users (DAU): the filter reads the
data warehouse, so ``json`` properties never get this far (they are refused before the
operator is looked at) and an object is only a group of columns, usable with ``exists`` and
``does not exist`` alone.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum

from sluice.model.types import Kind, Property, Type


class Arity(Enum):
    """How many values an operator takes."""

    NONE = "none"
    ONE = "one"
    TWO = "two"
    AT_LEAST_ONE = "at least one"


# Returns why ``operator`` cannot be applied to the property, or None when it can.
KindCheck = Callable[[str, Property], str | None]


@dataclass(frozen=True)
class Family:
    """Operators that share their accepted properties and their number of values."""

    operators: tuple[str, ...]
    arity: Arity
    check: KindCheck
    # The value is compared with whole values of the property (not with a part of them, nor
    # used as a bound), so the empty string is a value worth looking for.
    compares_whole_values: bool = False


def _cannot_use(operator: str, kind: str) -> str:
    return f'operator "{operator}" cannot be used with {kind} properties'


def _has_allowed_values(t: Type) -> bool:
    return t.kind is Kind.STRING and t.values is not None


def _accepts(*kinds: Kind, allowed_values: bool) -> KindCheck:
    """A check accepting the given kinds; ``allowed_values`` says if enum strings are too."""
    accepted = frozenset(kinds)

    def check(operator: str, prop: Property) -> str | None:
        t = prop.type
        if t.kind not in accepted:
            return _cannot_use(operator, t.kind)
        if _has_allowed_values(t) and not allowed_values:
            return f'operator "{operator}" cannot be used with string type that has values'
        return None

    return check


# Elements an array may hold for ``contains``: those ``is`` can compare.
_UNCOMPARABLE_ELEMENTS = frozenset({Kind.BOOLEAN, Kind.ARRAY, Kind.OBJECT, Kind.MAP})


def _check_containment(operator: str, prop: Property) -> str | None:
    t = prop.type
    if t.kind is Kind.STRING:
        return None
    if t.kind is Kind.ARRAY:
        assert t.element_type is not None
        element = t.element_type.kind
        return (
            _cannot_use(operator, f"array({element})")
            if element in _UNCOMPARABLE_ELEMENTS
            else None
        )
    return _cannot_use(operator, t.kind)


def _check_emptiness(operator: str, prop: Property) -> str | None:
    t = prop.type
    match t.kind:
        case Kind.STRING:
            if t.values is not None and "" not in t.values:
                return (
                    f'operator "{operator}" cannot be used on string properties that exclude the '
                    "empty string from allowed values"
                )
            return None
        case Kind.ARRAY | Kind.MAP:
            return None
        case Kind.OBJECT:
            return (
                f'operator "{operator}" cannot be used on object properties for destination '
                "pipelines on users"
            )
        case _:
            # The API lists json and object too; neither is usable in an export filter.
            return f'operator "{operator}" can only be used with string, array, and map properties'


def _check_nullness(operator: str, prop: Property) -> str | None:
    # The API would accept a nullable object, but an object is no column: only "exists" and
    # "does not exist" can be compiled for it.
    if prop.type.kind is Kind.OBJECT:
        return _cannot_use(operator, Kind.OBJECT)
    if not prop.nullable:
        return f'operator "{operator}" can only be used with nullable or json properties'
    return None


def _check_existence(operator: str, prop: Property) -> str | None:
    if not prop.read_optional:
        return (
            f'operator "{operator}" can only be used with read-optional properties or with json '
            "properties that include a JSON path"
        )
    return None


_ORDERED_SCALARS = (Kind.STRING, Kind.INT, Kind.FLOAT, Kind.DECIMAL)
_TEMPORAL = (Kind.DATETIME, Kind.DATE, Kind.TIME, Kind.YEAR)

FAMILIES: tuple[Family, ...] = (
    # The API's message for booleans, arrays, objects and maps always said "boolean
    # properties"; naming the property's real kind corrects that text.
    Family(
        ("is", "is not"),
        Arity.ONE,
        _accepts(*_ORDERED_SCALARS, *_TEMPORAL, Kind.UUID, Kind.IP, allowed_values=True),
        compares_whole_values=True,
    ),
    Family(
        (
            "is less than",
            "is less than or equal to",
            "is greater than",
            "is greater than or equal to",
        ),
        Arity.ONE,
        _accepts(*_ORDERED_SCALARS, allowed_values=False),
    ),
    Family(
        ("is between", "is not between"),
        Arity.TWO,
        _accepts(*_ORDERED_SCALARS, *_TEMPORAL, allowed_values=False),
    ),
    Family(("contains", "does not contain"), Arity.ONE, _check_containment),
    Family(
        ("is one of", "is not one of"),
        Arity.AT_LEAST_ONE,
        _accepts(*_ORDERED_SCALARS, *_TEMPORAL, allowed_values=True),
        compares_whole_values=True,
    ),
    Family(
        ("starts with", "ends with"),
        Arity.ONE,
        _accepts(Kind.STRING, allowed_values=False),
    ),
    Family(
        ("is before", "is on or before", "is after", "is on or after"),
        Arity.ONE,
        _accepts(*_TEMPORAL, allowed_values=False),
    ),
    Family(("is true", "is false"), Arity.NONE, _accepts(Kind.BOOLEAN, allowed_values=False)),
    Family(("is empty", "is not empty"), Arity.NONE, _check_emptiness),
    Family(("is null", "is not null"), Arity.NONE, _check_nullness),
    Family(("exists", "does not exist"), Arity.NONE, _check_existence),
)


# In the order of the API documentation, which is the order of the families above.
OPERATORS: tuple[str, ...] = tuple(op for family in FAMILIES for op in family.operators)


def family_of(operator: str) -> Family | None:
    for family in FAMILIES:
        if operator in family.operators:
            return family
    return None


def count_error(operator: str, arity: Arity, count: int | None) -> str | None:
    """Why ``count`` values (None: the member is absent) do not suit the operator, if so."""
    match arity:
        case Arity.NONE if count is not None:
            # Even an empty array is refused: the member must be absent.
            return f'values cannot be used with the operator "{operator}"'
        case Arity.ONE if count != 1:
            return f'only one value can be used with the operator "{operator}"'
        case Arity.TWO if count != 2:
            return f'two values must be used with the operator "{operator}"'
        case Arity.AT_LEAST_ONE if not count:
            return f'at least one value must be used with the operator "{operator}"'
    return None
