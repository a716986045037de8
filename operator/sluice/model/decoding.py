"""Decode a document's spec into its model, turning pydantic's errors into located messages."""

from __future__ import annotations

import json
from datetime import date
from typing import Any, TypeVar

import pydantic
from pydantic_core import ErrorDetails

from sluice.model.errors import ApiError, Location, bad_request, format_location
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
        raise _first_error(err.errors(), location) from None


def _first_error(errors: list[ErrorDetails], base: Location) -> ApiError:
    first = errors[0]
    location = _location(first, base)
    where = format_location(location)
    kind = first["type"]
    if kind == "missing":
        return bad_request(f"{where} is required", location)
    if kind == "extra_forbidden":
        parent = format_location(location[:-1])
        return bad_request(f'unknown field "{location[-1]}" in {parent}', location)
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
    """YAML reads unquoted ``3``, ``true`` or ``2024-01-02`` as numbers, booleans and dates."""
    value = error.get("input")
    if error["type"] != "string_type" or not isinstance(value, int | float | date):
        return ""
    literal = json.dumps(value) if isinstance(value, int | float) else value.isoformat()
    return f': write "{literal}" (quoted) instead of {literal}'


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
