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
from sluice.mapping.common_types import JSON, STRING
from sluice.mapping.convert import converter
from sluice.mapping.errors import ConversionFailure, conversion_message
from sluice.model.types import Kind, Type, prune

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
        self._encode = self._object(self.schema, in_schema)

    def encode(self, profile: Mapping[str, Any]) -> dict[str, Any]:
        encoded: dict[str, Any] = self._encode(profile)
        return encoded

    def _object(self, t: Type, original: Type | None) -> _Encode:
        """``t`` pruned from ``original`` (its type in the input schema, when there is one)."""
        encoders = []
        for prop in t.properties:
            if prop.type.kind is Kind.OBJECT:
                kept = original.property(prop.name) if original is not None else None
                whole = kept is prop  # kept whole by the pruning: the same property
                encoders.append((prop.name, self._object(prop.type, prop.type if whole else None)))
            else:
                encoders.append((prop.name, self._value(prop.type)))
        plain = tuple(name for name, encode in encoders if encode is _same)
        converted = tuple((name, encode) for name, encode in encoders if encode is not _same)
        if not converted:
            if original is t:
                # An object of the input schema with nothing to convert: it goes as it is
                # (what a profile holds comes from that schema).
                return _same
            names = frozenset(plain)

            def only_inputs(value: Mapping[str, Any]) -> Mapping[str, Any]:
                # The profile goes as it is when it holds no other property (profiles hold no
                # None: an absent value is an absent key).
                if value.keys() <= names:
                    return value
                return {name: item for name in plain if (item := value.get(name)) is not None}

            return only_inputs

        def encode(value: Mapping[str, Any]) -> dict[str, Any]:
            get = value.get
            out = {name: item for name in plain if (item := get(name)) is not None}
            for name, member in converted:
                item = get(name)
                if item is not None:
                    out[name] = member(item)
            return out

        return encode

    def _value(self, t: Type) -> _Encode:
        kind, javascript = t.kind, self.language == "JavaScript"
        if kind is Kind.OBJECT:
            return self._object(t, None)
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

    def check(self, value: Any, purpose: Purpose) -> dict[str, object]:
        """``value``: what the function returned, as JSON values."""
        if not isinstance(value, dict):
            raise _fail("the function returned something that is not an object")
        return self._by_purpose[purpose].build(value)


def _fail(message: str) -> RecordError:
    return RecordError(Step.OUTPUT_VALIDATION, message, "")


_MISSING = object()


class _Level:
    """One object of the output schema: its properties, each with its conversion and the
    null and required rules of the level's purpose."""

    def __init__(self, checker: OutputChecker, t: Type, prefix: str, conversion: Conversion):
        self.prefix = prefix
        self.null = checker.null
        creating = conversion.purpose is Purpose.CREATE
        self.purpose = "creation" if creating else "update"
        #: (name, convert, required, nullable, takes any string) per property, in order.
        self.members: list[tuple[str, Callable[[Any], object], bool, bool, bool]] = []
        for prop in t.properties:
            path = prefix + prop.name
            convert: Callable[[Any], object] = (
                _Level(checker, prop.type, path + ".", conversion).build_nested
                if prop.type.kind is Kind.OBJECT
                else _leaf(checker, prop.type, path, conversion)
            )
            required = prop.create_required if creating else prop.update_required
            any_string = prop.type.kind is not Kind.OBJECT and _takes_any_string(
                checker, prop.type, conversion
            )
            self.members.append((prop.name, convert, required, prop.nullable, any_string))
        self.names = frozenset(name for name, *_ in self.members)

    def build_nested(self, value: Any) -> object:
        if not isinstance(value, dict):
            raise _fail(f"property «{self.prefix[:-1]}» must be an object")
        return self.build(value)

    def build(self, value: dict[str, Any]) -> dict[str, object]:
        if not value.keys() <= self.names:
            extra = next(name for name in value if name not in self.names)
            raise _fail(
                f"property «{self.prefix}{extra}» is not part of output schema; rename or "
                "remove it in the transformation function"
            )
        record: dict[str, object] = {}
        get = value.get
        for name, convert, required, nullable, any_string in self.members:
            item = get(name, _MISSING)
            if any_string and type(item) is str:
                record[name] = item
            elif item is None:
                if not nullable:
                    null = self.null
                    raise _fail(
                        f"property «{self.prefix}{name}» cannot be «{null}», but it is set to "
                        f"«{null}»"
                    )
                record[name] = None
            elif item is not _MISSING:
                record[name] = convert(item)
            elif required:
                raise _fail(
                    f"property «{self.prefix}{name}» is missing but it is required for "
                    f"{self.purpose}"
                )
        return record


def _takes_any_string(checker: OutputChecker, t: Type, conversion: Conversion) -> bool:
    """Whether a string is written to this property as it is: the common case, which the
    check then takes without a call."""
    return not (t.kind is Kind.JSON and checker.preserve_json) and (
        converter(STRING, t, conversion) is None
    )


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
