"""The filter of a pipeline: its JSON form, checked against the pipeline's input schema.

A filter keeps the profiles whose properties satisfy all (``and``) or any (``or``) of its
conditions. The checks and messages are those of the API for destination pipelines on users,
which read the data warehouse; :class:`FilterError` carries the reason the API appends to
``filter is not valid: `` and where in the filter it applies.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date

from sluice.filters.operators import OPERATORS, Family, count_error, family_of
from sluice.filters.values import InvalidValueError, normalize_value
from sluice.model.errors import LocatedError
from sluice.model.types import Kind, Property, Type, is_valid_property_path

__all__ = [
    "LOGICALS",
    "OPERATORS",
    "Condition",
    "Filter",
    "FilterError",
    "filter_to_json",
    "parse_filter",
    "used_paths",
]

LOGICALS = ("and", "or")
_FILTER_MEMBERS = ("logical", "conditions")
_CONDITION_MEMBERS = ("property", "operator", "values")


class FilterError(LocatedError):
    """An invalid filter: ``reason`` follows ``filter is not valid: ``; ``path`` locates it.

    ``path`` is dotted, from the filter's root: ``logical``, ``conditions[2].values[0]``; it is
    empty when the filter as a whole is wrong.
    """

    @property
    def reason(self) -> str:
        return self.message


@dataclass(frozen=True)
class Condition:
    property: str
    operator: str
    values: tuple[str, ...] = ()


@dataclass(frozen=True)
class Filter:
    logical: str
    conditions: tuple[Condition, ...]


def parse_filter(data: object, in_schema: Type) -> Filter:
    """The filter of a JSON (or YAML) value, with its values in canonical form.

    Raises :class:`FilterError` at the first problem, in the order the API checks.
    """
    members = _members(data, _FILTER_MEMBERS, "", "filter")
    logical = members.get("logical", "")  # the API decodes a missing member as ""
    if not isinstance(logical, str):
        raise FilterError('logical must be "and" or "or"', "logical")
    if logical not in LOGICALS:
        raise FilterError(f'invalid logical operator "{logical}"', "logical")
    raw_conditions = members.get("conditions")
    if raw_conditions is None or raw_conditions == []:
        raise FilterError("conditions are missing", "conditions")
    if not isinstance(raw_conditions, list):
        raise FilterError("conditions must be an array", "conditions")
    conditions = tuple(
        _parse_condition(raw, in_schema, f"conditions[{index}]")
        for index, raw in enumerate(raw_conditions)
    )
    return Filter(logical, conditions)


def filter_to_json(f: Filter) -> dict[str, object]:
    """The filter as the API returns it: ``values`` is left out when there are none."""
    conditions: list[dict[str, object]] = []
    for condition in f.conditions:
        item: dict[str, object] = {"property": condition.property, "operator": condition.operator}
        if condition.values:
            item["values"] = list(condition.values)
        conditions.append(item)
    return {"logical": f.logical, "conditions": conditions}


def used_paths(f: Filter) -> list[str]:
    """The input properties the filter reads, sorted and without repetitions."""
    return sorted({condition.property for condition in f.conditions})


# ---------------------------------------------------------------------------------------------
# Conditions
# ---------------------------------------------------------------------------------------------


def _parse_condition(data: object, schema: Type, where: str) -> Condition:
    members = _members(data, _CONDITION_MEMBERS, where, "condition")
    path = _text_member(members, "property", where)
    operator = _text_member(members, "operator", where)
    values = _values_member(members, where)

    prop = _resolve_property(schema, path, f"{where}.property")
    family = family_of(operator)
    if family is None:
        raise FilterError(f'operator "{operator}" is not valid', f"{where}.operator")
    refusal = family.check(operator, prop)
    if refusal:
        raise FilterError(refusal, f"{where}.operator")
    wrong_count = count_error(operator, family.arity, None if values is None else len(values))
    if wrong_count:
        raise FilterError(wrong_count, f"{where}.values")
    return Condition(path, operator, _normalize_values(values or (), prop, family, path, where))


def _resolve_property(schema: Type, path: str, where: str) -> Property:
    """The property at ``path``, which must be a column the warehouse export can filter on.

    Unlike ``property_by_path``, a missing path is reported up to its first unknown name, as
    the API does, and a path leading into a json value reports the json property.
    """
    if not is_valid_property_path(path):
        raise FilterError("property path is not valid", where)
    names = path.split(".")
    prop = _step(schema, names, 0, where)
    for depth in range(1, len(names)):
        prop = _step(prop.type, names, depth, where)
    return prop


def _step(parent: Type, names: list[str], depth: int, where: str) -> Property:
    """The property ``names[depth]`` of ``parent``, reached through ``names[:depth]``."""
    walked = ".".join(names[: depth + 1])
    found = parent.property(names[depth])  # None below anything but an object
    if found is None:
        raise FilterError(f'property path "{walked}" does not exist', where)
    if found.type.kind is Kind.JSON:
        raise FilterError(
            f'property "{walked}" has type json, which is not supported in data warehouse exports',
            where,
        )
    return found


def _normalize_values(
    values: tuple[str, ...], prop: Property, family: Family, path: str, where: str
) -> tuple[str, ...]:
    is_array = prop.type.kind is Kind.ARRAY
    operand = prop.type.element_type if is_array else prop.type
    assert operand is not None
    # Looking for "" is meaningful where the value is compared with whole strings, including
    # the elements of an array(string); it is not as a substring, a prefix or a bound ("is
    # empty" and "is not empty" say what is meant there).
    empty_allowed = family.compares_whole_values or is_array
    normalized: list[str] = []
    for index, value in enumerate(values):
        try:
            normalized.append(normalize_value(value, operand, path, empty_allowed))
        except InvalidValueError as invalid:
            raise FilterError(str(invalid), f"{where}.values[{index}]") from None
    return tuple(normalized)


# ---------------------------------------------------------------------------------------------
# JSON members
# ---------------------------------------------------------------------------------------------


def _members(data: object, allowed: tuple[str, ...], where: str, what: str) -> dict[str, object]:
    if not isinstance(data, Mapping):
        raise FilterError(f"{what} must be an object", where)
    for key in data:
        if key not in allowed:
            raise FilterError(f'unknown member "{key}"', f"{where}.{key}" if where else str(key))
    return {str(key): value for key, value in data.items()}


def _text_member(members: dict[str, object], name: str, where: str) -> str:
    value = members.get(name, "")  # the API decodes a missing member as ""
    if not isinstance(value, str):
        raise FilterError(f"{name} must be a string", f"{where}.{name}")
    return value


def _values_member(members: dict[str, object], where: str) -> tuple[str, ...] | None:
    """The values, or None if the member is absent or null (the API tells these from [])."""
    values = members.get("values")
    if values is None:
        return None
    if not isinstance(values, list):
        raise FilterError("values must be an array of strings", f"{where}.values")
    for index, value in enumerate(values):
        if not isinstance(value, str):
            raise FilterError(_not_a_string(value), f"{where}.values[{index}]")
    return tuple(values)


def _not_a_string(value: object) -> str:
    """Why a value is refused: YAML reads unquoted 3, true or 2024-01-02 as other types."""
    match value:
        case bool():
            literal = "true" if value else "false"
        case int() | float():
            literal = repr(value)
        case date():  # datetime too
            literal = value.isoformat()
        case None:
            return "values must be strings, not null"
        case list():
            return "values must be strings, not arrays"
        case Mapping():
            return "values must be strings, not objects"
        case _:
            return f"values must be strings, not {type(value).__name__}"
    return f'values must be strings: write "{literal}" (quoted) instead of {literal}'
