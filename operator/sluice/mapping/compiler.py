"""Compile a ``transformation.mapping`` against the pipeline's input and output schemas.

This is the one seam between pipeline validation and the mapping language: validation calls
:func:`compile_mapping` and needs only the paths it reports. Expressions are, for now, bare
property paths; the full expression language (literals, templates, functions) plugs in here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from sluice.mapping.conversions import convertible
from sluice.model.types import (
    Kind,
    Type,
    first_nested_pair,
    is_valid_property_path,
    property_by_path,
)


class MappingError(ValueError):
    """A mapping that does not compile; the API reports it as ``invalid mapping: <message>``."""

    def __init__(self, message: str, key: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.key = key


@dataclass(frozen=True, slots=True)
class CompiledMapping:
    #: Output property paths written by the mapping, sorted (the evaluation order).
    output_paths: tuple[str, ...]
    #: Input property paths the expressions read, as the "unused property" rule counts them.
    input_paths: tuple[str, ...]


def compile_mapping(
    mapping: Mapping[str, str], in_schema: Type, out_schema: Type
) -> CompiledMapping:
    keys = sorted(mapping)
    for key in keys:
        if not is_valid_property_path(key):
            raise MappingError(f'property path "{key}" is not valid', key)
        try:
            property_by_path(out_schema, key)
        except KeyError as err:
            raise MappingError(err.args[0], key) from None
    nested = first_nested_pair(keys)
    if nested:
        shorter, longer = nested
        raise MappingError(f'paths "{shorter}" and "{longer}" have the same prefix', longer)
    input_paths: set[str] = set()
    for key in keys:
        target = property_by_path(out_schema, key).type
        input_paths.add(_check_path_expression(mapping[key], in_schema, target, key))
    return CompiledMapping(tuple(keys), tuple(sorted(input_paths)))


def _check_path_expression(expression: str, in_schema: Type, target: Type, key: str) -> str:
    """Check a bare-path expression; return the input path it uses."""
    source = expression.strip()
    if not source:
        raise MappingError("expression is empty", key)
    if not is_valid_property_path(source):
        raise MappingError(
            f'expression "{source}" is not supported: only property paths are supported yet', key
        )
    used, source_type = _resolve(source, in_schema, key)
    if not convertible(source_type, target):
        raise MappingError(f"cannot convert {source} (type {source_type}) to {target}", key)
    return used


def _resolve(path: str, in_schema: Type, key: str) -> tuple[str, Type]:
    """Walk a path through objects, map keys and JSON content.

    Returns the input path that counts as used (it stops at a map or JSON value, where the rest
    of the path are keys) and the type of the value the path yields.
    """
    names = path.split(".")
    current = in_schema
    used: list[str] = []
    for index, name in enumerate(names):
        walked = ".".join(names[:index])
        match current.kind:
            case Kind.OBJECT:
                prop = current.property(name)
                if prop is None:
                    where = f"invalid {path}: " if index else ""
                    raise MappingError(f'{where}property "{name}" does not exist', key)
                used.append(name)
                current = prop.type
            case Kind.MAP:
                assert current.element_type is not None
                current = current.element_type
            case Kind.JSON:
                return ".".join(used), current
            case _:
                raise MappingError(
                    f"invalid {path}: {walked} (type {current}) cannot have properties or keys",
                    key,
                )
    return ".".join(used), current
