"""The checked form of an expression: every node knows the type of its value.

The checker (:mod:`sluice.mapping.checker`) builds it from the syntax tree; the evaluator
(:mod:`sluice.mapping.evaluate`) turns it into closures. ``source`` is the node's text, for
run-time messages.
"""

from __future__ import annotations

from dataclasses import dataclass

from sluice.mapping.common_types import STRING
from sluice.model.types import Type


@dataclass(frozen=True, slots=True)
class Lookup:
    """One step of a path at run time: the key looked up in the value reached so far."""

    key: str
    #: The value looked into is JSON: it may turn out not to be an object.
    in_json: bool
    #: Written with ``?``: a JSON value that is not an object yields nil instead of an error.
    optional: bool
    #: The path up to this step, and up to the previous one, for messages.
    text: str
    parent_text: str


@dataclass(frozen=True, slots=True)
class Constant:
    """A literal, already converted to the type its context needs (``None`` is nil)."""

    value: object
    type: Type
    source: str


@dataclass(frozen=True, slots=True)
class Read:
    """A path into the profile."""

    lookups: tuple[Lookup, ...]
    type: Type
    source: str


@dataclass(frozen=True, slots=True)
class Concat:
    """A string template: literal text and expressions rendered as text."""

    parts: tuple[str | Expr, ...]
    source: str


@dataclass(frozen=True, slots=True)
class Apply:
    """A call of a function whose result has one type."""

    function: str
    arguments: tuple[Expr, ...]
    type: Type
    source: str


@dataclass(frozen=True, slots=True)
class Choice:
    """A call of ``if`` or ``coalesce``: the value is one of the arguments, with its own type."""

    function: str
    arguments: tuple[Expr, ...]
    source: str

    @property
    def branches(self) -> tuple[Expr, ...]:
        """The arguments the value may come from (all but the condition of ``if``)."""
        return self.arguments[1:] if self.function == "if" else self.arguments


Expr = Constant | Read | Concat | Apply | Choice


def types_of(expr: Expr) -> tuple[Type, ...]:
    """The types a non-nil value of ``expr`` may have, one per possible origin."""
    if isinstance(expr, Choice):
        return tuple(t for branch in expr.branches for t in types_of(branch))
    if isinstance(expr, Concat):
        return (STRING,)
    return (expr.type,)
