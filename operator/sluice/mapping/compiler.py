"""Compile a ``transformation.mapping`` against the pipeline's input and output schemas.

:func:`compile_mapping` checks the keys (output paths) and compiles every expression against
the input schema, its value going to the key's property; pipeline validation needs only the
paths it reports, exports and previews call :meth:`CompiledMapping.transform` per record.

A record is assembled as a tree of closures following the output schema, one per object that
keys address, built once per purpose: each property's closure evaluates its expression,
converts the value to the property's type and applies the null rules:

1. a missing input value is nil;
2. a value is converted with nil allowed (JSON null, ``""`` to a non-string, ``""`` to an
   enumeration or a pattern it does not match become nil);
3. nil for a nullable property is written as ``None``;
4. nil for another property fails the record when the property is required for the purpose
   (``createRequired`` on creation, ``updateRequired`` on update), else leaves it out.

Objects are created only to hold a value, so an object whose properties are all left out is
left out too.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from sluice.mapping.checker import check_expression
from sluice.mapping.convert import Conversion, converter
from sluice.mapping.errors import (
    Failure,
    MappingError,
    RecordError,
    Step,
    code,
    record_error,
    required_message,
)
from sluice.mapping.evaluate import evaluator_as
from sluice.mapping.functions import Evaluator
from sluice.mapping.layouts import TimeLayouts
from sluice.mapping.runtime import JSON_NULL, OMIT, Purpose
from sluice.mapping.typed import Expr, Read
from sluice.model.types import (
    Kind,
    Property,
    Type,
    first_nested_pair,
    is_valid_property_path,
    property_by_path,
)

__all__ = ["CompiledMapping", "MappingError", "compile_mapping"]

Record = dict[str, object]
_CREATE, _UPDATE = Purpose.CREATE, Purpose.UPDATE
_Build = Callable[[Mapping[str, object]], Record]


@dataclass(frozen=True, slots=True)
class CompiledMapping:
    #: Output property paths written by the mapping, sorted (the evaluation order).
    output_paths: tuple[str, ...]
    #: Input property paths the expressions read, as the "unused property" rule counts them.
    input_paths: tuple[str, ...]
    _for_creation: _Build = field(repr=False, compare=False)
    _for_update: _Build = field(repr=False, compare=False)

    def transform(self, profile: Mapping[str, object], purpose: Purpose) -> Record:
        """The output record for ``profile``, a nested dict following the output schema.

        ``profile`` holds values as :mod:`sluice.model.values` decodes them (an absent key is a
        missing value). Raises :class:`RecordError`. The record may share arrays, maps and
        JSON values with the profile: neither is to be modified afterwards.
        """
        # Compared with module constants: looking members up on the enum costs more than
        # transforming a small record.
        if purpose == _CREATE:
            return self._for_creation(profile)
        if purpose == _UPDATE:
            return self._for_update(profile)
        raise ValueError(f"purpose must be {Purpose.CREATE!r} or {Purpose.UPDATE!r}")

    def transform_each(
        self, items: Iterable[tuple[Mapping[str, object], Purpose]]
    ) -> list[Record | RecordError]:
        """The record of each (profile, purpose), or the error that stopped it: what a
        function's transformer gives too, so runs and previews treat both alike."""
        records: list[Record | RecordError] = []
        for profile, purpose in items:
            try:
                records.append(self.transform(profile, purpose))
            except RecordError as err:
                records.append(err)
        return records


def compile_mapping(
    mapping: Mapping[str, str],
    in_schema: Type,
    out_schema: Type,
    *,
    time_layouts: TimeLayouts | None = None,
) -> CompiledMapping:
    """Check and compile ``mapping``; raise :class:`MappingError` if it is not valid.

    With ``time_layouts``, datetime, date and time values are written as the destination wants
    them (strings, or integers for Unix timestamps); without, they stay Python values.
    """
    keys = _checked_keys(mapping, out_schema)
    used: set[str] = set()
    properties: list[_Compiled] = []
    for key in keys:
        prop = property_by_path(out_schema, key)
        source = mapping[key]
        if not isinstance(source, str):
            raise MappingError("expression must be a string", key)
        try:
            checked = check_expression(source, in_schema, prop.type)
        except MappingError as err:
            raise err.for_key(key) from None
        used.update(checked.used)
        properties.append(_Compiled(key, prop, source.strip(), checked.expression))
    return CompiledMapping(
        tuple(keys),
        tuple(sorted(used)),
        _record_builder(properties, Purpose.CREATE, time_layouts),
        _record_builder(properties, Purpose.UPDATE, time_layouts),
    )


def _checked_keys(mapping: Mapping[str, str], out_schema: Type) -> list[str]:
    for key in mapping:
        if not isinstance(key, str) or not is_valid_property_path(key):
            raise MappingError(f'property path "{key}" is not valid', str(key))
    keys = sorted(mapping)
    for key in keys:
        try:
            property_by_path(out_schema, key)
        except KeyError as err:
            raise MappingError(err.args[0], key) from None
    nested = first_nested_pair(keys)
    if nested:
        shorter, longer = nested
        raise MappingError(f'paths "{shorter}" and "{longer}" have the same prefix', longer)
    return keys


# ---------------------------------------------------------------------------------------------
# Records
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Compiled:
    key: str
    property: Property
    source: str
    expression: Expr


@dataclass
class _Object:
    """An object of the output record that keys write into, with what each name holds."""

    members: dict[str, _Compiled | _Object] = field(default_factory=dict)


def _record_builder(
    properties: list[_Compiled], purpose: Purpose, layouts: TimeLayouts | None
) -> _Build:
    root = _Object()
    for compiled in properties:  # sorted by key: each object's members come in key order
        parent = root
        *ancestors, name = compiled.key.split(".")
        for ancestor in ancestors:
            child = parent.members.setdefault(ancestor, _Object())
            assert isinstance(child, _Object)  # keys are never prefixes of one another
            parent = child
        parent.members[name] = compiled
    conversion = Conversion(nil_allowed=True, purpose=purpose, layouts=layouts)
    return _object_member("", root, conversion, is_record=True).value_of


@dataclass(frozen=True, slots=True)
class _Member:
    """How one member of an object gets its value."""

    name: str
    value_of: Evaluator
    #: Never OMIT: the member is always written.
    always: bool
    #: The top-level input property copied as is, when that is all the member does.
    copies: str | None = None


def _object_member(
    name: str, node: _Object, conversion: Conversion, is_record: bool = False
) -> _Member:
    """The closure building one object, as a member of its parent: each member's value, and
    OMIT for an object left empty (a record is never left out)."""
    members: list[_Member] = []
    sources: dict[str, tuple[str, str]] = {}
    for member_name, member in node.members.items():
        if isinstance(member, _Object):
            members.append(_object_member(member_name, member, conversion))
        else:
            members.append(_property_member(member_name, member, conversion))
            sources[member_name] = (member.source, member.key)
    always = is_record or any(member.always for member in members)
    if all(member.copies for member in members):
        build = _copied(tuple((member.name, str(member.copies)) for member in members))
    elif all(member.always for member in members):
        build = _filled(tuple((member.name, member.value_of) for member in members), sources)
    else:
        entries = tuple((member.name, member.value_of) for member in members)
        build = _filled_or_omitted(entries, sources, keep_empty=is_record)
    return _Member(name, build, always)


def _copied(pairs: tuple[tuple[str, str], ...]) -> Evaluator:
    """An object whose members all copy top-level input properties: plain lookups, and for one
    or two members a dict display, as hand-written code would do it."""
    if len(pairs) == 1:
        ((name, key),) = pairs
        return lambda profile: {name: profile.get(key)}
    if len(pairs) == 2:
        (first_name, first_key), (second_name, second_key) = pairs
        return lambda profile: {
            first_name: profile.get(first_key),
            second_name: profile.get(second_key),
        }

    def copy(profile: Any) -> Any:
        get = profile.get
        result = {}
        for name, key in pairs:
            result[name] = get(key)
        return result

    return copy


_Sources = dict[str, tuple[str, str]]


def _failed(failure: Failure, sources: _Sources, name: str) -> RecordError:
    source, key = sources[name]
    return record_error(failure, source, key)


def _filled(entries: tuple[tuple[str, Evaluator], ...], sources: _Sources) -> Evaluator:
    """An object whose members are always written."""
    if len(entries) == 1:
        ((only, value_of),) = entries

        def fill_one(profile: Any) -> Any:
            try:
                return {only: value_of(profile)}
            except Failure as failure:
                raise _failed(failure, sources, only) from None

        return fill_one

    def fill(profile: Any) -> Any:
        result: Record = {}
        name = ""
        try:
            for name, value_of in entries:
                result[name] = value_of(profile)
        except Failure as failure:
            raise _failed(failure, sources, name) from None
        return result

    return fill


def _filled_or_omitted(
    entries: tuple[tuple[str, Evaluator], ...], sources: _Sources, keep_empty: bool
) -> Evaluator:
    """An object whose members may be left out (OMIT); left out itself when empty."""

    def fill(profile: Any) -> Any:
        result: Record = {}
        name = ""
        try:
            for name, value_of in entries:
                value = value_of(profile)
                if value is not OMIT:
                    result[name] = value
        except Failure as failure:
            raise _failed(failure, sources, name) from None
        return result if result or keep_empty else OMIT

    return fill


def _property_member(name: str, compiled: _Compiled, conversion: Conversion) -> _Member:
    expression, prop = compiled.expression, compiled.property
    value_of = _property_value(compiled, conversion)
    copies = None
    if (
        prop.nullable
        and isinstance(expression, Read)
        and len(expression.lookups) == 1
        and expression.type.kind is not Kind.JSON
        and converter(expression.type, prop.type, conversion) is None
    ):
        copies = expression.lookups[0].key
    return _Member(name, value_of, always=prop.nullable, copies=copies)


def _property_value(compiled: _Compiled, conversion: Conversion) -> Evaluator:
    """The value of one property: evaluated, converted, and through the null rules."""
    target = compiled.property.type

    def to_target(t: Type) -> Callable[[object], object] | None:
        return converter(t, target, conversion)

    evaluate = evaluator_as(compiled.expression, to_target)
    prop, purpose = compiled.property, conversion.purpose
    required = prop.create_required if purpose is Purpose.CREATE else prop.update_required
    is_json = target.kind is Kind.JSON
    if prop.nullable:
        return _json_null_written(evaluate) if is_json else evaluate
    if required:
        return _nil_refused(evaluate, compiled, purpose, is_json)
    return _nil_omitted(evaluate, is_json)


def _json_null_written(evaluate: Evaluator) -> Evaluator:
    """For a json property: the JSON null is a value, written as ``None`` like nil."""

    def value_of(profile: Any) -> Any:
        value = evaluate(profile)
        return None if value is JSON_NULL else value

    return value_of


def _nil_omitted(evaluate: Evaluator, is_json: bool) -> Evaluator:
    def value_of(profile: Any) -> Any:
        value = evaluate(profile)
        if value is None:
            return OMIT
        return None if value is JSON_NULL else value

    def value_of_non_json(profile: Any) -> Any:
        value = evaluate(profile)
        return OMIT if value is None else value

    return value_of if is_json else value_of_non_json


def _nil_refused(
    evaluate: Evaluator, compiled: _Compiled, purpose: Purpose | None, is_json: bool
) -> Evaluator:
    needed_for = "creation" if purpose is Purpose.CREATE else "update"
    message = (
        required_message(code(compiled.source), needed_for)
        + f" while mapping to {code(compiled.key)}"
    )
    key = compiled.key

    def value_of(profile: Any) -> Any:
        value = evaluate(profile)
        if value is None:
            raise RecordError(Step.OUTPUT_VALIDATION, message, key)
        return None if value is JSON_NULL and is_json else value

    return value_of
