"""Values across the function boundary, as §5.1 of the API has them.

:class:`InputEncoder` turns a profile into what ``transform`` receives: only the ``inPaths``,
hierarchy kept, absent values absent, each value in its language's form. :class:`OutputChecker`
turns what ``transform`` returned into the record sent to the application, or a
:class:`~sluice.mapping.RecordError` with the API's message: only ``outPaths`` properties,
``null`` only where nullable, ``createRequired``/``updateRequired`` present for the purpose,
each value converted to its property's type as a JSON value of the mapping language would be.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping
from datetime import UTC, date, datetime, time
from typing import Any

from sluice.mapping import Purpose, RecordError, Step, TimeLayouts
from sluice.mapping.adapters import Conversion
from sluice.mapping.common_types import JSON
from sluice.mapping.convert import converter
from sluice.mapping.errors import ConversionFailure, conversion_message
from sluice.model.types import Kind, Property, Type, prune

_Encode = Callable[[Any], Any]
#: Marks the strings a JavaScript input encodes (``\0n`` BigInt, ``\0f`` float, ``\0s`` string).
MARK = "\u0000"


def _same(value: Any) -> Any:
    return value


class InputEncoder:
    """``encode(profile)``: the function's argument for one profile."""

    def __init__(
        self, in_schema: Type, in_paths: tuple[str, ...], language: str, preserve_json: bool
    ) -> None:
        self.language = language
        self.preserve_json = preserve_json
        self.schema = prune(in_schema, list(in_paths))
        #: JavaScript only: some values travel as marked strings the worker's reviver decodes.
        self.marked = language == "JavaScript" and _has(self.schema, _needs_mark)
        self._encode = self._object(self.schema)

    def encode(self, profile: Mapping[str, Any]) -> dict[str, Any]:
        encoded: dict[str, Any] = self._encode(profile)
        return encoded

    def _object(self, t: Type) -> _Encode:
        members = tuple((p.name, self._value(p.type)) for p in t.properties)

        def encode(value: Mapping[str, Any]) -> dict[str, Any]:
            out = {}
            for name, member in members:
                item = value.get(name)
                if item is not None:
                    out[name] = member(item)
            return out

        return encode

    def _value(self, t: Type) -> _Encode:
        kind, javascript = t.kind, self.language == "JavaScript"
        if kind is Kind.OBJECT:
            return self._object(t)
        if kind is Kind.ARRAY:
            assert t.element_type is not None
            element = self._value(t.element_type)
            return _same if element is _same else lambda items: [element(i) for i in items]
        if kind is Kind.MAP:
            assert t.element_type is not None
            element = self._value(t.element_type)
            return _same if element is _same else lambda m: {k: element(v) for k, v in m.items()}
        if kind is Kind.JSON:
            if self.preserve_json:
                return _json_text
            return _marked_strings if self.marked else _same
        if kind is Kind.STRING:
            return _marked_string if self.marked else _same
        if not javascript:
            return _naive_utc if kind is Kind.DATETIME else (str if kind is Kind.IP else _same)
        return _JAVASCRIPT.get(kind, str) if kind is not Kind.INT or t.bit_size == 64 else _same


def _needs_mark(t: Type) -> bool:
    return t.kind is Kind.FLOAT or (t.kind is Kind.INT and t.bit_size == 64)


def _has(t: Type, test: Callable[[Type], bool]) -> bool:
    if test(t):
        return True
    if t.element_type is not None and _has(t.element_type, test):
        return True
    return any(_has(p.type, test) for p in t.properties)


def _json_text(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _naive_utc(value: datetime) -> datetime:
    return value.astimezone(UTC).replace(tzinfo=None)


def _marked_string(text: str) -> str:
    return MARK + "s" + text if text.startswith(MARK) else text


def _marked_strings(value: Any) -> Any:
    if isinstance(value, str):
        return _marked_string(value)
    if isinstance(value, float):
        return _js_float(value)
    if isinstance(value, list):
        return [_marked_strings(item) for item in value]
    if isinstance(value, dict):
        return {key: _marked_strings(item) for key, item in value.items()}
    return value


def _js_float(value: float) -> object:
    if math.isfinite(value):
        return value
    return MARK + "f" + ("NaN" if math.isnan(value) else "Infinity" if value > 0 else "-Infinity")


def _js_datetime(value: datetime) -> str:
    value = value.astimezone(UTC)
    return f"{value:%Y-%m-%dT%H:%M:%S}.{value.microsecond * 1000:09d}Z"


def _js_time(value: time) -> str:
    return f"{value:%H:%M:%S}.{value.microsecond * 1000:09d}"


_JAVASCRIPT: dict[Kind, _Encode] = {
    Kind.INT: lambda value: f"{MARK}n{value}",
    Kind.FLOAT: _js_float,
    Kind.DECIMAL: str,
    Kind.DATETIME: _js_datetime,
    Kind.DATE: date.isoformat,
    Kind.TIME: _js_time,
    Kind.YEAR: _same,
    Kind.BOOLEAN: _same,
}


class OutputChecker:
    """``check(text, purpose)``: the record for a function's JSON result."""

    def __init__(
        self,
        out_schema: Type,
        out_paths: tuple[str, ...],
        language: str,
        preserve_json: bool,
        layouts: TimeLayouts | None,
    ) -> None:
        self.schema = prune(out_schema, list(out_paths))
        self.null = "None" if language == "Python" else "null"
        self.preserve_json = preserve_json
        self._by_purpose = {
            purpose: _Level(self, self.schema, "", Conversion(False, purpose, layouts))
            for purpose in (Purpose.CREATE, Purpose.UPDATE)
        }

    def check(self, text: str, purpose: Purpose) -> dict[str, object]:
        value = json.loads(text, parse_constant=str)
        return self._by_purpose[purpose].build(value)


def _fail(message: str) -> RecordError:
    return RecordError(Step.OUTPUT_VALIDATION, message, "")


class _Level:
    """One object of the output schema: its properties, each with its conversion."""

    def __init__(self, checker: OutputChecker, t: Type, prefix: str, conversion: Conversion):
        self.checker = checker
        self.prefix = prefix
        self.purpose = conversion.purpose
        self.members: dict[str, tuple[Property, Callable[[Any], object]]] = {}
        for prop in t.properties:
            path = prefix + prop.name
            if prop.type.kind is Kind.OBJECT:
                level = _Level(checker, prop.type, path + ".", conversion)
                self.members[prop.name] = (prop, level.build_nested)
            else:
                self.members[prop.name] = (prop, _leaf(checker, prop.type, path, conversion))

    def build_nested(self, value: Any) -> object:
        if not isinstance(value, dict):
            raise _fail(f"property «{self.prefix[:-1]}» must be an object")
        return self.build(value)

    def build(self, value: dict[str, Any]) -> dict[str, object]:
        for name in value:
            if name not in self.members:
                raise _fail(
                    f"property «{self.prefix}{name}» is not part of output schema; rename or "
                    "remove it in the transformation function"
                )
        record: dict[str, object] = {}
        for name, (prop, convert) in self.members.items():
            path = self.prefix + name
            if name not in value:
                required = (
                    prop.create_required if self.purpose is Purpose.CREATE else prop.update_required
                )
                if required:
                    purpose = "creation" if self.purpose is Purpose.CREATE else "update"
                    raise _fail(f"property «{path}» is missing but it is required for {purpose}")
                continue
            item = value[name]
            if item is None:
                if not prop.nullable:
                    null = self.checker.null
                    raise _fail(f"property «{path}» cannot be «{null}», but it is set to «{null}»")
                record[name] = None
                continue
            record[name] = convert(item)
        return record


def _leaf(
    checker: OutputChecker, t: Type, path: str, conversion: Conversion
) -> Callable[[Any], object]:
    if t.kind is Kind.JSON and checker.preserve_json:

        def parse(value: Any) -> object:
            if not isinstance(value, str):
                raise _fail(f"property «{path}» must be a string holding JSON (preserveJSON)")
            try:
                return json.loads(value)
            except json.JSONDecodeError as err:
                raise _fail(f"property «{path}» does not hold valid JSON: {err.msg}") from None

        return parse
    adapter = converter(JSON, t, conversion)
    if adapter is None:
        return _same

    def convert(value: Any) -> object:
        try:
            return adapter(value)
        except ConversionFailure as failure:
            subject = f"«{path}{failure.location}»"
            raise _fail(conversion_message(failure, subject, run_time=True)) from None

    return convert
