"""The types the language gives its own values: literals, function parameters and results."""

from __future__ import annotations

from sluice.model.types import MAX_PRECISION, MAX_SCALE, Kind, Type

STRING = Type(Kind.STRING)
BOOLEAN = Type(Kind.BOOLEAN)
INT32 = Type(Kind.INT, bit_size=32)
FLOAT64 = Type(Kind.FLOAT, bit_size=64)
#: The type of number literals that are not integers.
DECIMAL_LITERAL = Type(Kind.DECIMAL, precision=MAX_PRECISION, scale=MAX_SCALE)
DATETIME = Type(Kind.DATETIME)
DATE = Type(Kind.DATE)
TIME = Type(Kind.TIME)
IP = Type(Kind.IP)
JSON = Type(Kind.JSON)
ARRAY_OF_JSON = Type(Kind.ARRAY, element_type=JSON)
MAP_OF_JSON = Type(Kind.MAP, element_type=JSON)
