"""Reading the tokens of an expression: blanks, names, strings and numbers.

The grammar is whitespace-sensitive inside paths (``a.b`` is one path, ``a .b`` is not), so the
parser drives a :class:`Scanner` token by token instead of consuming a token list.
"""

from __future__ import annotations

import re
from decimal import Decimal

from sluice.mapping.errors import MappingError

BLANKS = frozenset(" \t\n\r")
NAME_START = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz_")
NAME_CHARS = NAME_START | frozenset("0123456789")
QUOTES = frozenset("'\"")
NUMBER_START = frozenset("-0123456789")
# Everything a number may be made of; the run is then checked against the grammar.
_NUMBER_CHARS = frozenset("0123456789.eE+-")
_NUMBER_RE = re.compile(r"-?[0-9]+(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?\Z")
# Integral literals in this range are ints; beyond it they stay decimals, which also keeps
# int() away from literals such as 1e999999999.
_INT64_LIMIT = 2**63

_SIMPLE_ESCAPES = {
    "a": "\a",
    "b": "\b",
    "f": "\f",
    "n": "\n",
    "r": "\r",
    "t": "\t",
    "v": "\v",
    "\\": "\\",
    "'": "'",
    '"': '"',
}
_HEX_DIGITS = frozenset("0123456789abcdefABCDEF")


def character(c: str) -> str:
    """A character as messages quote it: ``','``, ``'\\n'``, ``'\\u200b'``."""
    if c == "'":
        return "'\\''"
    if c == "\\":
        return "'\\\\'"
    if c.isprintable():
        return f"'{c}'"
    escaped = c.encode("unicode_escape").decode("ascii")
    return f"'{escaped}'"


class Scanner:
    """A cursor over the source of one expression."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.position = 0

    def peek(self, ahead: int = 0) -> str:
        """The character ``ahead`` positions after the cursor, or "" past the end."""
        index = self.position + ahead
        return self.source[index] if index < len(self.source) else ""

    def at_end(self) -> bool:
        return self.position >= len(self.source)

    def skip_blanks(self) -> None:
        source, index = self.source, self.position
        while index < len(source) and source[index] in BLANKS:
            index += 1
        self.position = index

    def error(self, message: str, position: int | None = None) -> MappingError:
        return MappingError(message, position=self.position if position is None else position)

    def unexpected(self) -> MappingError:
        """The character at the cursor cannot be there (the cursor is not at the end)."""
        return self.error(f"unexpected character {character(self.peek())}")

    def read_name(self) -> str:
        """A run of name characters (a name, or a path element after a dot: ``a.1st``)."""
        source, start = self.source, self.position
        index = start
        while index < len(source) and source[index] in NAME_CHARS:
            index += 1
        self.position = index
        return source[start:index]

    def read_number(self) -> int | Decimal:
        """A number literal: an int when integral (and within 64 bits), else a Decimal."""
        source, start = self.source, self.position
        index = start
        while index < len(source) and source[index] in _NUMBER_CHARS:
            index += 1
        glued_name = index < len(source) and source[index] in NAME_CHARS
        text = source[start:index]
        if glued_name or _NUMBER_RE.match(text) is None:
            after = self.peek(1)
            if text[0] == "-" and after.isascii() and after.isalpha():
                # "first-name": the user meant a name, not a subtraction (there is none).
                raise self.error(
                    "the ‘-’ character is used for negation. Did you mean the ‘_’ character?"
                )
            raise self.error("number syntax is not valid")
        try:
            number = Decimal(text)
        except ArithmeticError:  # an exponent beyond what the decimal module holds
            raise self.error("number syntax is not valid") from None
        self.position = index
        # copy_abs and comparisons are exact; abs() and rounding could overflow the context.
        if number.copy_abs() < _INT64_LIMIT and number == number.to_integral_value():
            return int(number)
        return number

    def read_string(self) -> str:
        """A quoted string; the cursor is on the opening quote."""
        source, opening = self.source, self.position
        quote = source[opening]
        chunks: list[str] = []
        index = opening + 1
        while True:
            # Copy the plain run up to the next quote or backslash in one slice.
            stop = _next_special(source, index, quote)
            if stop == -1:
                raise self.error("string is not terminated", opening)
            chunks.append(source[index:stop])
            if source[stop] == quote:
                self.position = stop + 1
                break
            escaped, index = self._escape(stop, opening)
            chunks.append(escaped)
        text = "".join(chunks)
        if "\x00" in text:
            raise self.error("character 0x00 is not allowed in strings", opening)
        return text

    def _escape(self, backslash: int, opening: int) -> tuple[str, int]:
        """The character an escape sequence stands for, and where the string goes on."""
        source = self.source
        kind = source[backslash + 1] if backslash + 1 < len(source) else ""
        if kind == "":
            raise self.error("string is not terminated", opening)
        if kind in _SIMPLE_ESCAPES:
            return _SIMPLE_ESCAPES[kind], backslash + 2
        if kind in ("u", "U"):
            return self._code_point(backslash, 4 if kind == "u" else 8, opening)
        raise self.error(f"unknown escape sequence {character(kind)}", backslash)

    def _code_point(self, backslash: int, digits: int, opening: int) -> tuple[str, int]:
        source = self.source
        first = backslash + 2
        for index in range(first, first + digits):
            if index >= len(source):
                raise self.error("string is not terminated", opening)
            if source[index] not in _HEX_DIGITS:
                raise self.error(
                    f"hexadecimal escape has an invalid character {character(source[index])}",
                    index,
                )
        value = int(source[first : first + digits], 16)
        if value == 0:
            raise self.error("character 0x00 is not allowed in strings", backslash)
        if 0xD800 <= value < 0xE000 or value > 0x10FFFF:
            raise self.error(f"U+{value:X} is not a valid Unicode code point", backslash)
        return chr(value), first + digits


def _next_special(source: str, start: int, quote: str) -> int:
    """The index of the next ``quote`` or backslash from ``start``, or -1."""
    closing = source.find(quote, start)
    backslash = source.find("\\", start, closing if closing != -1 else len(source))
    return backslash if backslash != -1 else closing
