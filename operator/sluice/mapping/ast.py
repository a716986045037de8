"""The parsed form of an expression, before its types are known.

Every node records where it sits in the source (``start``/``end`` character offsets), so that
messages can quote it and point at it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from decimal import Decimal

#: The value of a literal: a string, an integral number, another number, a boolean, or null.
LiteralValue = str | int | Decimal | bool | None


@dataclass(frozen=True, slots=True)
class Literal:
    value: LiteralValue
    start: int
    end: int


@dataclass(frozen=True, slots=True)
class PathElement:
    """One element of a path: ``.name``, ``["key"]``, either with an optional ``?``."""

    key: str
    bracketed: bool
    optional: bool

    def text(self, first: bool) -> str:
        if self.bracketed:
            written = "[" + json.dumps(self.key, ensure_ascii=False) + "]"
        else:
            written = self.key if first else "." + self.key
        return written + ("?" if self.optional else "")


@dataclass(frozen=True, slots=True)
class Path:
    elements: tuple[PathElement, ...]
    start: int
    end: int

    def text(self, count: int | None = None) -> str:
        """The path as written, or its first ``count`` elements."""
        elements = self.elements if count is None else self.elements[:count]
        return "".join(element.text(index == 0) for index, element in enumerate(elements))


@dataclass(frozen=True, slots=True)
class Call:
    function: str
    arguments: tuple[Node, ...]
    start: int
    end: int


@dataclass(frozen=True, slots=True)
class Template:
    """Parts written side by side, concatenated as strings (``"id-" customer_id``)."""

    parts: tuple[Node, ...]
    start: int
    end: int


Node = Literal | Path | Call | Template
