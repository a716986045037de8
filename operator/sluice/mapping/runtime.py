"""The values evaluation passes around, besides the Python values of the type system.

Profiles use the representation of :mod:`sluice.model.values`, where ``None`` is what a json
property holds for the JSON value ``null``, and an absent key is a missing (NULL) value. During
evaluation ``None`` means *nil* (no value), so a JSON ``null`` travels as :data:`JSON_NULL` until
it is written out as ``None`` again.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Final


class Purpose(StrEnum):
    """Why a record is transformed: to create it in the destination, or to update it."""

    CREATE = "create"
    UPDATE = "update"


class _Marker:
    """A named singleton."""

    __slots__ = ("_name",)

    def __init__(self, name: str) -> None:
        self._name = name

    def __repr__(self) -> str:
        return self._name


#: The JSON value ``null`` while an expression is evaluated (``None`` is nil there).
JSON_NULL: Final = _Marker("JSON_NULL")
#: The default of ``dict.get`` when a present ``None`` must be told apart from an absent key.
ABSENT: Final = _Marker("ABSENT")
#: What a property's evaluation returns when the property is left out of the record.
OMIT: Final = _Marker("OMIT")


def json_kind(value: object) -> str:
    """The JSON kind of a JSON value, as messages name it (``number``, ``array``, …)."""
    if value is None or value is JSON_NULL:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"
