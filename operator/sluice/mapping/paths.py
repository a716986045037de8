"""Paths into the profile: what they address in the input schema, and how to read them.

A path walks through object properties, map keys (``.key`` or ``["any key"]``) and JSON
content. :func:`resolve` checks it against the schema once; :func:`reader` returns the closure
that reads it from a profile: a direct nested lookup, with JSON checks only where the path
enters JSON values.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sluice.mapping import ast
from sluice.mapping.errors import EvaluationFailure, MappingError
from sluice.mapping.runtime import ABSENT, JSON_NULL, json_kind
from sluice.mapping.typed import Lookup
from sluice.model.types import Kind, Type, is_valid_property_name

#: Reads a path from a profile (nested dicts, as the input schema shapes them).
Reader = Callable[[Any], Any]


@dataclass(frozen=True, slots=True)
class ResolvedPath:
    lookups: tuple[Lookup, ...]
    type: Type
    #: The input property the path counts as using: it stops where map keys or JSON begin
    #: (``d["k"]`` on a map uses ``d``, ``d.k.e`` on a map of objects ``d.e``, ``j.k`` ``j``).
    used: str


def resolve(path: ast.Path, schema: Type) -> ResolvedPath:
    """The lookups and the type of ``path`` in ``schema``, or :class:`MappingError`."""
    current = schema
    used: list[str] = []
    in_json = False
    lookups: list[Lookup] = []
    for index, element in enumerate(path.elements):
        text, parent_text = path.text(index + 1), path.text(index)
        if current.kind is Kind.JSON:
            in_json = True
        elif current.kind is Kind.OBJECT:
            _check_property_key(element, text, path)
            found = current.property(element.key)
            if found is None:
                where = f"invalid {text}: " if index else ""
                raise _error(f'{where}property "{element.key}" does not exist', path)
            used.append(element.key)
            current = found.type
        elif current.kind is Kind.MAP:
            _check_not_optional(element, text, path)
            assert current.element_type is not None
            current = current.element_type
        else:
            raise _error(
                f"invalid {text}: {parent_text} (type {current}) cannot have properties or keys",
                path,
            )
        lookups.append(Lookup(element.key, in_json, element.optional, text, parent_text))
    return ResolvedPath(tuple(lookups), current, ".".join(used))


def _check_property_key(element: ast.PathElement, text: str, path: ast.Path) -> None:
    _check_not_optional(element, text, path)
    if element.bracketed and not is_valid_property_name(element.key):
        quoted = json.dumps(element.key, ensure_ascii=False)
        raise _error(f"invalid {text}: {quoted} is not a valid property name", path)


def _check_not_optional(element: ast.PathElement, text: str, path: ast.Path) -> None:
    if element.optional:
        raise _error(f"invalid {text}: operator '?' can be used only with json", path)


def _error(message: str, path: ast.Path) -> MappingError:
    return MappingError(message, position=path.start)


# ---------------------------------------------------------------------------------------------
# Reading
# ---------------------------------------------------------------------------------------------


def reader(
    lookups: tuple[Lookup, ...], result: Type, convert: Callable[[Any], object] | None = None
) -> Reader:
    """The closure reading a resolved path from a profile, and converting a non-nil value
    with ``convert`` if given; a missing value reads as nil."""
    keys = tuple(lookup.key for lookup in lookups if not lookup.in_json)
    walk = tuple(lookup for lookup in lookups if lookup.in_json)
    if walk:
        read = _json_reader(keys, walk)
    elif result.kind is Kind.JSON:
        read = _json_value_reader(keys)
    elif len(keys) <= 2 and convert is not None:
        return _nested_reader_converting(keys, convert)
    else:
        read = _nested_reader(keys)
    if convert is None:
        return read

    def read_and_convert(profile: Any) -> Any:
        value = read(profile)
        return None if value is None else convert(value)

    return read_and_convert


def _nested_reader(keys: tuple[str, ...]) -> Reader:
    """Lookups through objects and maps; ``None`` anywhere (absent or null) is nil."""
    if len(keys) == 1:
        (key,) = keys

        def read_one(profile: Any) -> Any:
            return profile.get(key)

        return read_one
    if len(keys) == 2:
        first, second = keys

        def read_two(profile: Any) -> Any:
            parent = profile.get(first)
            return None if parent is None else parent.get(second)

        return read_two

    def read_many(profile: Any) -> Any:
        value = profile
        for key in keys:
            value = value.get(key)
            if value is None:
                return None
        return value

    return read_many


def _nested_reader_converting(keys: tuple[str, ...], convert: Callable[[Any], object]) -> Reader:
    """A read of one or two keys fused with its conversion: the commonest expression."""
    if len(keys) == 1:
        (key,) = keys

        def read_one(profile: Any) -> Any:
            value = profile.get(key)
            return None if value is None else convert(value)

        return read_one
    first, second = keys

    def read_two(profile: Any) -> Any:
        parent = profile.get(first)
        if parent is None:
            return None
        value = parent.get(second)
        return None if value is None else convert(value)

    return read_two


def _container_of_last(keys: tuple[str, ...]) -> Reader:
    """The object or map holding the last key, or nil."""
    parents = keys[:-1]
    if not parents:
        return lambda profile: profile
    return _nested_reader(parents)


def _json_value_reader(keys: tuple[str, ...]) -> Reader:
    """A JSON value as a whole: there a present ``None`` is the JSON null, not nil."""
    container_of = _container_of_last(keys)
    last = keys[-1]

    def read(profile: Any) -> Any:
        container = container_of(profile)
        if container is None:
            return None
        value = container.get(last, ABSENT)
        if value is ABSENT:
            return None
        return JSON_NULL if value is None else value

    return read


def _json_reader(keys: tuple[str, ...], walk: tuple[Lookup, ...]) -> Reader:
    """Into a JSON value: a missing key is nil; a value that is not an object is an error,
    or nil for a key written with ``?``."""
    container_of = _container_of_last(keys)
    last = keys[-1]

    def read(profile: Any) -> Any:
        container = container_of(profile)
        if container is None:
            return None
        value = container.get(last, ABSENT)
        for lookup in walk:
            if value is ABSENT:
                return None
            if isinstance(value, dict):
                value = value.get(lookup.key, ABSENT)
            elif lookup.optional:
                return None
            else:
                raise EvaluationFailure(
                    f"invalid {lookup.text}: {lookup.parent_text} is not JSON object, "
                    f"it is {json_kind(value)}"
                )
        if value is ABSENT:
            return None
        return JSON_NULL if value is None else value

    return read
