"""The matching value a created (or update-required) application user receives.

The output matching property is never mapped: the engine writes the profile's input matching
value there, converted to the application's type. Only string, int and uuid properties match, and
int and uuid never match each other (validation refuses that pair).
"""

from __future__ import annotations

import re
from typing import Any

from sluice.model.types import Kind, Type
from sluice.model.values import InvalidValue, decode_value

_BASE_10 = re.compile(r"[+-]?[0-9]+")


class MatchingValueError(ValueError):
    """The input matching value cannot be the application's matching value."""


def matching_value(in_path: str, in_type: Type, out_path: str, out_type: Type, value: Any) -> Any:
    """``value`` (of ``in_type``) as a value of ``out_type``, with the out type's constraints.

    Strings keep their text, integers become decimal text or stay integers, uuids stay uuids or
    become their canonical text; a string becomes an int only if it is plain base-10 digits.
    """
    candidate: Any = value
    if out_type.kind is Kind.STRING:
        candidate = str(value)
    elif out_type.kind is Kind.INT and in_type.kind is Kind.STRING:
        if not _BASE_10.fullmatch(value):
            raise _unconvertible(in_path, out_path)
        candidate = int(value)
    elif out_type.kind is Kind.UUID:
        candidate = str(value).lower()
    try:
        return decode_value(out_type, candidate)
    except InvalidValue:
        raise _unconvertible(in_path, out_path) from None


def _unconvertible(in_path: str, out_path: str) -> MatchingValueError:
    return MatchingValueError(
        f"{in_path} property value cannot be converted to the application's {out_path} property"
    )
