"""What every conversion is built from: its circumstances, and small combinators.

A conversion is a function (an *adapter*) called with a non-nil value; it returns the value
converted, or nil where the null rules turn the value into nil, and raises
:class:`~sluice.mapping.errors.ConversionFailure` when the value does not fit.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from sluice.mapping.errors import ConversionFailure, Reason
from sluice.mapping.layouts import TimeLayouts
from sluice.mapping.runtime import Purpose
from sluice.model.types import Type

#: A conversion of one value; the checker, not mypy, knows the types of the values it gets.
Adapter = Callable[[Any], object]


@dataclass(frozen=True, slots=True)
class Conversion:
    """The circumstances of a conversion.

    ``nil_allowed``: the value may become nil (the second null rule: JSON null to a non-JSON
    type, ``""`` to a type that is neither string nor JSON, ``""`` to an enumeration or to a
    pattern it does not match). ``purpose``: which required properties an object must have.
    ``layouts``: write datetimes, dates and times as the destination wants them.
    """

    nil_allowed: bool = True
    purpose: Purpose | None = None
    layouts: TimeLayouts | None = None

    def strict(self) -> Conversion:
        return self if not self.nil_allowed else replace(self, nil_allowed=False)

    def lenient(self) -> Conversion:
        return self if self.nil_allowed else replace(self, nil_allowed=True)


def then(first: Adapter | None, second: Adapter | None) -> Adapter | None:
    """``second`` applied to what ``first`` returns, unless that is nil."""
    if first is None:
        return second
    if second is None:
        return first

    def both(value: object) -> object:
        result = first(value)
        return None if result is None else second(result)

    return both


def refuse(target: Type) -> Adapter:
    """The conversion of a pair that does not convert: every value fails."""

    def fail(value: object) -> object:
        raise ConversionFailure(Reason.INVALID, target)

    return fail


def from_text(parse: Adapter, conversion: Conversion) -> Adapter:
    """A string parsed into a non-string type; ``""`` is nil there when nil is allowed."""
    if not conversion.nil_allowed:
        return parse

    def parse_or_nil(text: object) -> object:
        return None if text == "" else parse(text)

    return parse_or_nil
