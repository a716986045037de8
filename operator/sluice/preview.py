"""What a pipeline would send for sample profiles: the filter and the transformation, in memory.

This is reverse ETL's "test a row": users check a mapping or a function on a few profiles
before any export runs. The same filter semantics, the same compiled mapping and the same
function workers serve exports, so what the preview shows is what an export would send.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import date, datetime, time
from decimal import Decimal
from typing import Any

from sluice.engine.matching import MatchingValueError, matching_value
from sluice.filters.evaluate import compile_predicate
from sluice.functions.transformer import FunctionError, FunctionTransformer
from sluice.mapping import Purpose, RecordError, TimeLayouts, compile_mapping
from sluice.model.pipeline import Pipeline
from sluice.model.types import Kind, Type, json_number, property_by_path
from sluice.model.values import decode_record, put_at, value_at


@dataclass(frozen=True)
class PreviewLine:
    """The outcome for one profile: a record, or the step that stopped it and why."""

    line: int
    record: dict[str, Any] | None = None
    step: str | None = None
    error: str | None = None

    def to_json(self) -> dict[str, Any]:
        if self.record is not None:
            return {"line": self.line, "record": self.record}
        out: dict[str, Any] = {"line": self.line, "step": self.step}
        if self.error is not None:
            out["error"] = self.error
        return out


class PreviewError(ValueError):
    """A pipeline that cannot be previewed."""


def preview(
    pipeline: Pipeline,
    profile_schema: Type,
    lines: Iterable[str],
    purpose: Purpose,
    time_layouts: TimeLayouts | None = None,
) -> Iterator[PreviewLine]:
    """One outcome per non-blank line of JSON profiles. A function runs in its sandboxed
    workers with the limits of an export; one that cannot run raises :class:`PreviewError`."""
    layouts = time_layouts or TimeLayouts()
    keep = compile_predicate(pipeline.filter, pipeline.in_schema) if pipeline.filter else None
    matching = _Matching(pipeline, purpose)
    outcomes: list[PreviewLine | tuple[int, dict[str, Any], Any]] = []
    for number, text in enumerate(lines, start=1):
        if not text.strip():
            continue
        try:
            profile = decode_record(profile_schema, _as_read(profile_schema, _json_object(text)))
        except ValueError as err:
            outcomes.append(PreviewLine(number, step="InputValidation", error=str(err)))
            continue
        if keep is not None and not keep(profile):
            outcomes.append(
                PreviewLine(number, step="Filter", error="the profile does not match the filter")
            )
            continue
        try:
            outcomes.append((number, profile, matching.value_of(profile)))
        except MatchingValueError as err:
            outcomes.append(PreviewLine(number, step="InputValidation", error=str(err)))
    transformed = iter(
        _transformed(pipeline, [o[1] for o in outcomes if isinstance(o, tuple)], purpose, layouts)
    )
    for outcome in outcomes:
        if isinstance(outcome, PreviewLine):
            yield outcome
            continue
        number, _, value = outcome
        record = next(transformed)
        if isinstance(record, RecordError):
            yield PreviewLine(number, step=record.step, error=record.message)
            continue
        if value is not None:
            matching.write(record, value)
        yield PreviewLine(number, record=record)


def _transformed(
    pipeline: Pipeline, profiles: list[dict[str, Any]], purpose: Purpose, layouts: TimeLayouts
) -> list[dict[str, object] | RecordError]:
    """The records of ``profiles``: by the compiled mapping, or by the function's workers."""
    function = pipeline.function
    if function is None:
        assert pipeline.mapping is not None  # validation allows a mapping or a function
        mapping = compile_mapping(
            pipeline.mapping, pipeline.in_schema, pipeline.out_schema, time_layouts=layouts
        )
        return mapping.transform_each((profile, purpose) for profile in profiles)
    try:
        transformer = FunctionTransformer.of(
            function, pipeline.in_schema, pipeline.out_schema, layouts
        )
    except FunctionError as err:
        raise PreviewError(str(err)) from None
    try:
        transformer.start()
        return transformer.transform([(profile, purpose) for profile in profiles])
    except FunctionError as err:
        raise PreviewError(str(err)) from None
    finally:
        transformer.close()


class _Matching:
    """The matching value: every exported profile needs one, and the application receives it
    on creation (and on update, when the application requires it for updates)."""

    def __init__(self, pipeline: Pipeline, purpose: Purpose) -> None:
        self.in_path, self.out_path = pipeline.matching_in, pipeline.matching_out
        self.in_type = property_by_path(pipeline.in_schema, self.in_path).type
        out_property = property_by_path(pipeline.out_schema, self.out_path)
        self.out_type = out_property.type
        self.sent = purpose is Purpose.CREATE or out_property.update_required

    def value_of(self, profile: dict[str, Any]) -> Any:
        """The converted matching value if the application receives it, else None."""
        value = value_at(profile, self.in_path)
        if value is None:
            raise MatchingValueError(f'the matching property "{self.in_path}" has no value')
        if not self.sent:
            return None
        return matching_value(self.in_path, self.in_type, self.out_path, self.out_type, value)

    def write(self, record: dict[str, Any], value: Any) -> None:
        put_at(record, self.out_path, value)


def _json_object(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as err:
        raise ValueError(f"not JSON: {err.msg} at column {err.colno}") from None
    if not isinstance(value, dict):
        raise ValueError("a profile must be a JSON object")
    return value


def _as_read(schema: Type, profile: dict[str, Any]) -> dict[str, Any]:
    """The profile as an export reads it from the warehouse, where a null is a NULL column,
    which is an absent property, and an object none of whose properties is present is absent
    too: sample rows pasted from a query preview as their rows would export."""
    read: dict[str, Any] = {}
    for name, written in profile.items():
        prop = schema.property(name)
        value = written
        if prop is not None and prop.type.kind is Kind.OBJECT and isinstance(written, dict):
            value = _as_read(prop.type, written) or None
        if value is not None or prop is None:  # unknown members are kept, for decoding to report
            read[name] = value
    return read


def json_default(value: object) -> Any:
    """JSON for the Python values records hold besides JSON's own."""
    if isinstance(value, Decimal):
        return json_number(value)
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    return str(value)  # uuid, ip addresses
