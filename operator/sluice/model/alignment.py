"""Schema alignment: whether a schema can be used against another one.

A pipeline's input schema must be usable against the profile schema, and its output schema against
the application's schema. Krenalis finds a misalignment only when a run starts; Sluice checks the
same rules before anything runs, so the messages describe two schemas side by side ("..., but ...
in the profile schema") rather than a change over time.

Paths in messages are the full dotted paths of properties; ``[]`` stands for the elements of an
array or map, so ``items[].sku`` is the ``sku`` property of the objects in the ``items`` array.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sluice.model.errors import LocatedError
from sluice.model.types import (
    Kind,
    Property,
    Type,
    effective_range,
    format_number,
    leaf_paths,
    property_by_path,
    prune,
)

CREATE_MODES = frozenset({"CreateOnly", "CreateOrUpdate"})
UPDATE_MODES = frozenset({"UpdateOnly", "CreateOrUpdate"})

# How a role flag of a property reads in a message, keyed by its Property attribute.
_FLAG_PHRASES = {
    "nullable": "nullable",
    "read_optional": "optional for reading",
    "create_required": "required for creation",
    "update_required": "required for update",
}


class AlignmentError(LocatedError):
    """The first way a schema is not usable against another; ``path`` is the property's path."""


def check_alignment(
    t1: Type, t2: Type, export_mode: str | None = None, *, other: str = "the other schema"
) -> None:
    """Raise :class:`AlignmentError` unless schema ``t1`` is usable against schema ``t2``.

    Every property of ``t1``, at every depth, must exist in ``t2`` with the same type and the same
    role flags: ``nullable`` always, ``readOptional`` on the read side (``export_mode`` None),
    ``createRequired``/``updateRequired`` when the export mode creates/updates. When exporting,
    ``t1`` must also hold every property ``t2`` requires for the mode's writes. Properties are
    walked in schema order and the first difference is reported; ``other`` names ``t2`` in
    messages (``"the profile schema"``).
    """
    if t1.kind is not Kind.OBJECT or t2.kind is not Kind.OBJECT:
        raise ValueError("schemas to align must be object types")
    if export_mode is not None and export_mode not in CREATE_MODES | UPDATE_MODES:
        raise ValueError(f"unknown export mode {export_mode!r}")
    required = _write_flags(export_mode) if export_mode is not None else ()
    role_flags = required if export_mode is not None else ("read_optional",)
    _Alignment(other, ("nullable", *role_flags), required).check_object("", t1, t2)


def output_alignment_error(
    out_schema: Type, destination: Type, export_mode: str, matching_out: str
) -> str | None:
    """Why a pipeline's output schema cannot be written to the application's schema, as the
    API says it (None when it can): what a run checks first, and ``validate --online`` before
    any run. UpdateOnly does not write the matching property unless it is required for
    updates, so the application need not accept it then."""
    if (
        export_mode == "UpdateOnly"
        and not property_by_path(out_schema, matching_out).update_required
    ):
        keep = [p for p in leaf_paths(out_schema) if p != matching_out]
        out_schema = prune(out_schema, [p for p in keep if not p.startswith(matching_out + ".")])
    try:
        check_alignment(out_schema, destination, export_mode, other="the application's schema")
    except AlignmentError as err:
        return (
            f"in the output schema, {err}. Please review and update the pipeline before "
            "attempting to export the users."
        )
    return None


def _write_flags(export_mode: str) -> tuple[str, ...]:
    """The ``*_required`` flags that matter for the writes an export mode makes."""
    flags = ("create_required",) if export_mode in CREATE_MODES else ()
    return flags + (("update_required",) if export_mode in UPDATE_MODES else ())


@dataclass(frozen=True)
class _Setting:
    """How a type parameter reads in a message, set (``phrase``) or not (``absent``)."""

    phrase: str
    absent: str = ""
    show: Callable[[Any], str] = str

    def describe(self, value: Any) -> str:
        return self.absent if value is None else self.phrase.format(self.show(value))

    def short(self, value: Any) -> str:
        return "none" if value is None else self.show(value)


def _quote(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)


def _show_range(bounds: tuple[Any, Any]) -> str:
    return f"[{format_number(bounds[0])}, {format_number(bounds[1])}]"


_MAX_LENGTH = _Setting("a maximum length of {} characters", "no maximum length in characters")
_MAX_BYTES = _Setting("a maximum length of {} bytes", "no maximum length in bytes")
_PATTERN = _Setting("the pattern {}", "no pattern", show=_quote)
_RANGE = _Setting("a range of {}", show=_show_range)
_PRECISION = _Setting("a precision of {}")
_SCALE = _Setting("a scale of {}")
_MIN_ELEMENTS = _Setting("a minimum element count of {}")
_MAX_ELEMENTS = _Setting("a maximum element count of {}", "no maximum element count")


@dataclass(frozen=True)
class _Alignment:
    other: str
    compared_flags: tuple[str, ...]
    required_flags: tuple[str, ...]

    def check_object(self, path: str, t1: Type, t2: Type) -> None:
        for p1 in t1.properties:
            self.check_property(_child(path, p1.name), p1, t2.property(p1.name))
        for p2 in t2.properties:
            missing_flag = next((f for f in self.required_flags if getattr(p2, f)), None)
            if missing_flag is not None and t1.property(p2.name) is None:
                child = _child(path, p2.name)
                raise AlignmentError(
                    f'"{child}" property is {_FLAG_PHRASES[missing_flag]} in {self.other} '
                    "but is not present in the schema",
                    child,
                )

    def check_property(self, path: str, p1: Property, p2: Property | None) -> None:
        if p2 is None:
            raise AlignmentError(f'"{path}" property does not exist in {self.other}', path)
        for flag in self.compared_flags:
            if getattr(p1, flag) != getattr(p2, flag):
                raise self.flag_mismatch(path, _FLAG_PHRASES[flag], has_it=getattr(p1, flag))
        self.check_type(path, p1.type, p2.type)

    def check_type(self, path: str, t1: Type, t2: Type) -> None:
        if t1.kind is not t2.kind:
            raise self.type_mismatch(path, t1, t2)
        match t1.kind:
            case Kind.INT | Kind.FLOAT | Kind.DECIMAL:
                self.check_number(path, t1, t2)
            case Kind.STRING:
                self.check_string(path, t1, t2)
            case Kind.ARRAY:
                self.check_array(path, t1, t2)
            case Kind.MAP:
                self.check_type(f"{path}[]", _element(t1), _element(t2))
            case Kind.OBJECT:
                self.check_object(path, t1, t2)
            case _:
                pass  # the other kinds have no parameters

    def check_number(self, path: str, t1: Type, t2: Type) -> None:
        # Bit size and signedness are part of the short type name: int(32), uint(8), float(64).
        if (t1.bit_size, t1.unsigned) != (t2.bit_size, t2.unsigned):
            raise self.type_mismatch(path, t1, t2)
        if t1.real != t2.real:
            raise self.flag_mismatch(path, "limited to real numbers", has_it=t1.real)
        self.compare(path, _PRECISION, t1.precision, t2.precision)
        self.compare(path, _SCALE, t1.scale, t2.scale)
        self.compare(path, _RANGE, effective_range(t1), effective_range(t2))

    def check_string(self, path: str, t1: Type, t2: Type) -> None:
        self.compare(path, _MAX_LENGTH, t1.max_length, t2.max_length)
        self.compare(path, _MAX_BYTES, t1.max_bytes, t2.max_bytes)
        self.check_values(path, t1.values, t2.values)
        self.compare(path, _PATTERN, t1.pattern, t2.pattern)

    def check_values(
        self, path: str, values1: tuple[str, ...] | None, values2: tuple[str, ...] | None
    ) -> None:
        if values1 is None or values2 is None:
            if values1 != values2:
                limited = values1 is not None
                raise self.flag_mismatch(path, "limited to specific values", has_it=limited)
            return
        # Compared as sets: the order of the values does not change what a property accepts.
        # (The empty string is a legal value, hence the explicit None tests.)
        removed = next((v for v in values1 if v not in values2), None)
        if removed is not None:
            raise self.value_mismatch(path, removed, allowed_here=True)
        added = next((v for v in values2 if v not in values1), None)
        if added is not None:
            raise self.value_mismatch(path, added, allowed_here=False)

    def check_array(self, path: str, t1: Type, t2: Type) -> None:
        self.check_type(f"{path}[]", _element(t1), _element(t2))
        self.compare(path, _MIN_ELEMENTS, t1.min_elements or 0, t2.min_elements or 0)
        self.compare(path, _MAX_ELEMENTS, t1.max_elements, t2.max_elements)
        if t1.unique_elements != t2.unique_elements:
            phrase = "required to have unique elements"
            raise self.flag_mismatch(path, phrase, has_it=t1.unique_elements)

    def compare(self, path: str, setting: _Setting, value1: Any, value2: Any) -> None:
        if value1 != value2:
            message = (
                f'"{path}" property has {setting.describe(value1)}, '
                f"but {setting.short(value2)} in {self.other}"
            )
            raise AlignmentError(message, path)

    def type_mismatch(self, path: str, t1: Type, t2: Type) -> AlignmentError:
        message = f'"{path}" property has type {t1}, but it has type {t2} in {self.other}'
        return AlignmentError(message, path)

    def flag_mismatch(self, path: str, phrase: str, *, has_it: bool) -> AlignmentError:
        here, there = (phrase, f"not {phrase}") if has_it else (f"not {phrase}", phrase)
        return AlignmentError(
            f'"{path}" property is {here}, but it is {there} in {self.other}', path
        )

    def value_mismatch(self, path: str, value: str, *, allowed_here: bool) -> AlignmentError:
        shown = _quote(value)
        if allowed_here:
            message = f'"{path}" property allows the value {shown}, but it does not allow it'
        else:
            message = f'"{path}" property does not allow the value {shown}, but it allows it'
        return AlignmentError(f"{message} in {self.other}", path)


def _child(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def _element(t: Type) -> Type:
    assert t.element_type is not None, "arrays and maps always have an element type"
    return t.element_type
