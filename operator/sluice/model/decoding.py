"""Decode a document's spec into its model, turning pydantic's errors into located messages."""

from __future__ import annotations

import json
from datetime import date
from typing import Any, TypeVar, get_args

import pydantic
from pydantic_core import ErrorDetails

from sluice.model.errors import ApiError, Location, bad_request, did_you_mean, format_location
from sluice.model.specs import Spec
from sluice.model.types import SchemaError, Type, parse_type

S = TypeVar("S", bound=Spec)

_EXPECTED = {
    "string_type": "a string",
    "int_type": "an integer",
    "int_from_float": "an integer",
    "bool_type": "a boolean",
    "dict_type": "an object",
    "model_type": "an object",
    "model_attributes_type": "an object",
    "list_type": "an array",
}
_UNION_TAGS = frozenset({"int", "str", "bool", "list[str]", "dict[str,any]"})


def decode_spec(model: type[S], data: Any, location: Location = ("spec",)) -> S:
    """Validate the shape of ``data``; raise the first problem as a 400 error."""
    if not isinstance(data, dict):
        raise bad_request(f"{format_location(location)} must be an object", location)
    try:
        return model.model_validate(data)
    except pydantic.ValidationError as err:
        raise _first_error(model, err.errors(), location) from None


def _first_error(model: type[Spec], errors: list[ErrorDetails], base: Location) -> ApiError:
    first = errors[0]
    location = _location(first, base)
    where = format_location(location)
    kind = first["type"]
    if kind == "missing":
        return bad_request(f"{where} is required", location)
    if kind == "extra_forbidden":
        parent = format_location(location[:-1])
        unknown = str(location[-1])
        hint = did_you_mean(unknown, _member_names(model, location[len(base) : -1]))
        return bad_request(f'unknown field "{unknown}" in {parent}{hint}', location)
    if kind in _EXPECTED:
        # A union (``int | str``) reports one type error per member, at the same location.
        expected = [
            _EXPECTED[e["type"]]
            for e in errors
            if e["type"] in _EXPECTED and _location(e, base) == location
        ]
        message = f"{where} must be {' or '.join(dict.fromkeys(expected))}"
        return bad_request(message + _quoting_hint(first), location)
    message = first["msg"]
    return bad_request(f"{where}: {message[0].lower()}{message[1:]}", location)


def _quoting_hint(error: ErrorDetails) -> str:
    """YAML reads unquoted ``3``, ``yes`` or ``2024-01-02`` as numbers, booleans and dates."""
    value = error.get("input")
    if error["type"] != "string_type" or not isinstance(value, int | float | date):
        return ""
    if isinstance(value, bool):
        # Which word was written (yes, on, y, true...) is lost: name them all.
        return ": quote it (unquoted, yes, no, on, off, y, n, true and false are YAML booleans)"
    literal = json.dumps(value) if isinstance(value, int | float) else value.isoformat()
    return f': write "{literal}" (quoted) instead of {literal}'


def _member_names(model: type[pydantic.BaseModel], path: Location) -> list[str]:
    """The member names (as written in manifests) of the object at ``path`` in ``model``."""
    models = [model]
    for step in path:
        if isinstance(step, str):  # list indexes lead to the same models
            models = [
                inner
                for outer in models
                for name, field in outer.model_fields.items()
                if step in (name, field.alias)
                for inner in _models_in(field.annotation)
            ]
    return [field.alias or name for m in models for name, field in m.model_fields.items()]


def _models_in(annotation: Any) -> list[type[pydantic.BaseModel]]:
    """The models an annotation names: itself, or those in ``X | None``, ``list[X]``, ..."""
    if isinstance(annotation, type) and issubclass(annotation, pydantic.BaseModel):
        return [annotation]
    return [model for argument in get_args(annotation) for model in _models_in(argument)]


def _location(error: ErrorDetails, base: Location) -> Location:
    # Union members appear in pydantic's locations (``connection.int``): users never wrote them.
    return (*base, *(part for part in error["loc"] if part not in _UNION_TAGS))


def decode_schema(data: Any, location: Location) -> Type:
    """Parse a schema member; a parse error names where in the member it is."""
    try:
        return parse_type(data)
    except SchemaError as err:
        where = (*location, *err.path)
        raise bad_request(f"{format_location(where)}: {err.message}", where) from None
