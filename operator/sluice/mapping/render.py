"""Values as text: in string templates, and when converted to strings.

Booleans are ``true``/``false``; numbers are written positionally where reasonable; datetimes
are RFC 3339 in UTC with as many fractional digits as needed, dates ``YYYY-MM-DD``, times
``HH:MM:SS[.fffffffff]``; a JSON string is its text, other JSON scalars their JSON text.
"""

from __future__ import annotations

import ipaddress
import json
import math
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from sluice.mapping.common_types import IP, STRING
from sluice.mapping.errors import ConversionFailure, Reason
from sluice.mapping.layouts import layout_formatter
from sluice.model.types import Kind, Type, format_number
from sluice.model.values import encode_value

Render = Callable[[Any], str]


_RFC3339_NANO = layout_formatter("2006-01-02T15:04:05.999999999Z07:00", Kind.DATETIME)
_DATE_TEXT = layout_formatter("2006-01-02", Kind.DATE)
_TIME_TEXT = layout_formatter("15:04:05.999999999", Kind.TIME)


def _boolean_text(value: bool) -> str:
    return "true" if value else "false"


def _float_text(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    return format_number(value)


def _decimal_text(value: Decimal) -> str:
    return format_number(value)


def ip_text(value: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str:
    return str(encode_value(IP, value))


def json_text(value: object) -> str:
    """A JSON scalar as text; JSON null, arrays and objects have none."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return _boolean_text(value)
    if isinstance(value, int | float):
        return json.dumps(value)
    raise ConversionFailure(Reason.INVALID, STRING)


_RENDERERS: dict[Kind, Render] = {
    Kind.BOOLEAN: _boolean_text,
    Kind.INT: str,
    Kind.YEAR: str,
    Kind.FLOAT: _float_text,
    Kind.DECIMAL: _decimal_text,
    Kind.DATETIME: _RFC3339_NANO,
    Kind.DATE: _DATE_TEXT,
    Kind.TIME: _TIME_TEXT,
    Kind.UUID: str,
    Kind.IP: ip_text,
    Kind.JSON: json_text,
}


def renderer(t: Type) -> Render | None:
    """How values of ``t`` are written as text: None for strings (they are text already).

    Only types convertible to string have one; asking for another is a programming error.
    """
    if t.kind is Kind.STRING:
        return None
    return _RENDERERS[t.kind]


def has_text(t: Type) -> bool:
    return t.kind is Kind.STRING or t.kind in _RENDERERS
