"""Type checking: from the syntax tree to the checked tree, against the input schema.

Every expression is checked in a context: the type its value must be converted to (the
destination property, a function's parameter) or none (the arguments of ``eq``, ``ne`` and
``len``). Literals are converted to that type here, once, so that a literal that cannot be
converted is a compile error; other expressions must have a type *convertible* to it.
``if`` and ``coalesce`` pass the context on to the arguments their value comes from.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal

from sluice.mapping import ast
from sluice.mapping.common_types import (
    ARRAY_OF_JSON,
    BOOLEAN,
    DECIMAL_LITERAL,
    INT32,
    JSON,
    MAP_OF_JSON,
    STRING,
)
from sluice.mapping.convert import Conversion, converter
from sluice.mapping.convertible import convertible
from sluice.mapping.errors import ConversionFailure, MappingError, conversion_message, literal_text
from sluice.mapping.functions import FUNCTIONS, arity_message
from sluice.mapping.parser import parse
from sluice.mapping.paths import resolve
from sluice.mapping.typed import Apply, Choice, Concat, Constant, Expr, Read, types_of
from sluice.model.types import Kind, Type, format_number

#: The result types of the functions whose result has one type.
_RESULTS = {
    "and": BOOLEAN,
    "or": BOOLEAN,
    "not": BOOLEAN,
    "eq": BOOLEAN,
    "ne": BOOLEAN,
    "lower": STRING,
    "upper": STRING,
    "trim": STRING,
    "ltrim": STRING,
    "rtrim": STRING,
    "initcap": STRING,
    "substring": STRING,
    "len": INT32,
    "json_parse": JSON,
    "array": ARRAY_OF_JSON,
    "map": MAP_OF_JSON,
}


@dataclass(frozen=True)
class Checked:
    expression: Expr
    #: The input properties the expression uses (see :class:`~sluice.mapping.paths.ResolvedPath`).
    used: frozenset[str]


def check_expression(source: str, schema: Type, target: Type) -> Checked:
    """Parse ``source`` and check it against ``schema``, its value going to ``target``."""
    checker = _Checker(schema, source)
    expression = checker.check(parse(source), target)
    return Checked(expression, frozenset(checker.used))


def literal_type(value: ast.LiteralValue) -> Type:
    if value is None:
        return JSON
    if isinstance(value, bool):
        return BOOLEAN
    if isinstance(value, str):
        return STRING
    return INT32 if isinstance(value, int) else DECIMAL_LITERAL


def literal_as_text(value: ast.LiteralValue) -> str:
    """A literal inside a string template."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Decimal | int):
        return format_number(value)
    return value


@dataclass
class _Checker:
    schema: Type
    source: str
    used: set[str] = field(default_factory=set)

    def text(self, node: ast.Node) -> str:
        return self.source[node.start : node.end]

    def check(self, node: ast.Node, target: Type | None) -> Expr:
        if isinstance(node, ast.Literal):
            return self.literal(node, target)
        if isinstance(node, ast.Path):
            return self.path(node, target)
        if isinstance(node, ast.Template):
            return self.template(node, target)
        return self.call(node, target)

    def cannot_convert(self, node: ast.Node, source: Type, target: Type) -> MappingError:
        return MappingError(
            f"cannot convert {self.text(node)} (type {source}) to {target}", position=node.start
        )

    def literal(self, node: ast.Literal, target: Type | None) -> Expr:
        own_type = literal_type(node.value)
        if target is None or node.value is None:
            return Constant(node.value, own_type if target is None else target, self.text(node))
        convert = converter(own_type, target, Conversion(nil_allowed=False))
        value: object = node.value
        if convert is not None:
            try:
                value = convert(value)
            except ConversionFailure as failure:
                message = conversion_message(failure, literal_text(node.value), run_time=False)
                raise MappingError(message, position=node.start) from None
        return Constant(value, target, self.text(node))

    def path(self, node: ast.Path, target: Type | None) -> Expr:
        resolved = resolve(node, self.schema)
        self.used.add(resolved.used)
        if target is not None and not convertible(resolved.type, target):
            raise self.cannot_convert(node, resolved.type, target)
        return Read(resolved.lookups, resolved.type, self.text(node))

    def template(self, node: ast.Template, target: Type | None) -> Expr:
        parts: list[str | Expr] = []
        for part in node.parts:
            if isinstance(part, ast.Literal):
                text = literal_as_text(part.value)
                if parts and isinstance(parts[-1], str):
                    parts[-1] += text
                else:
                    parts.append(text)
            else:
                parts.append(self.check(part, STRING))
        if len(parts) == 1 and isinstance(parts[0], str):
            # Literals only: one string literal.
            return self.literal(ast.Literal(parts[0], node.start, node.end), target)
        if target is not None and not convertible(STRING, target):
            raise self.cannot_convert(node, STRING, target)
        return Concat(tuple(parts), self.text(node))

    def call(self, node: ast.Call, target: Type | None) -> Expr:
        if not FUNCTIONS[node.function].accepts(len(node.arguments)):
            raise MappingError(arity_message(node.function), position=node.start)
        if node.function in ("if", "coalesce"):
            return self.choice(node, target)
        arguments = _ARGUMENT_CHECKS[node.function](self, node)
        result = _RESULTS[node.function]
        if target is not None and not convertible(result, target):
            raise self.cannot_convert(node, result, target)
        return Apply(node.function, arguments, result, self.text(node))

    def choice(self, node: ast.Call, target: Type | None) -> Expr:
        """``if`` and ``coalesce``: the context applies to the arguments the value comes from."""
        if node.function == "if":
            condition, *branches = node.arguments
            arguments = [self.check(condition, BOOLEAN)]
        else:
            branches, arguments = list(node.arguments), []
        arguments.extend(self.check(branch, target) for branch in branches)
        return Choice(node.function, tuple(arguments), self.text(node))

    # The arguments of each function -------------------------------------------------------

    def substring_arguments(self, node: ast.Call) -> tuple[Expr, ...]:
        text, *numbers = node.arguments
        return (self.check(text, STRING), *(self.check(number, INT32) for number in numbers))

    def comparison_arguments(self, node: ast.Call) -> tuple[Expr, ...]:
        left, right = (self.check(argument, None) for argument in node.arguments)
        for left_type in types_of(left):
            for right_type in types_of(right):
                if not (convertible(left_type, right_type) and convertible(right_type, left_type)):
                    first, second = node.arguments
                    raise MappingError(
                        f"cannot compare {self.text(first)} (type {left_type}) "
                        f"with {self.text(second)} (type {right_type})",
                        position=node.start,
                    )
        return left, right

    def json_parse_arguments(self, node: ast.Call) -> tuple[Expr, ...]:
        (argument,) = node.arguments
        checked = self.check(argument, STRING)
        for argument_type in types_of(checked):
            if argument_type.kind not in (Kind.STRING, Kind.JSON):
                raise MappingError(
                    f"json_parse needs a string or json argument, but {self.text(argument)} "
                    f"has type {argument_type}",
                    position=argument.start,
                )
        return (checked,)

    def map_arguments(self, node: ast.Call) -> tuple[Expr, ...]:
        arguments: list[Expr] = []
        keys: set[str] = set()
        for index in range(0, len(node.arguments), 2):
            key, value = node.arguments[index], node.arguments[index + 1]
            if not (isinstance(key, ast.Literal) and isinstance(key.value, str)):
                raise MappingError("map keys must be string literals", position=key.start)
            if key.value in keys:
                raise MappingError(
                    f"map key {literal_text(key.value)} is repeated", position=key.start
                )
            keys.add(key.value)
            arguments.append(Constant(key.value, STRING, self.text(key)))
            arguments.append(self.check(value, JSON))
        return tuple(arguments)


_ArgumentCheck = Callable[[_Checker, ast.Call], tuple[Expr, ...]]


def _all_as(target: Type | None) -> _ArgumentCheck:
    """Every argument checked in the same context."""
    return lambda checker, node: tuple(checker.check(item, target) for item in node.arguments)


_ARGUMENT_CHECKS: dict[str, _ArgumentCheck] = {
    "and": _all_as(BOOLEAN),
    "or": _all_as(BOOLEAN),
    "not": _all_as(BOOLEAN),
    "eq": _Checker.comparison_arguments,
    "ne": _Checker.comparison_arguments,
    "lower": _all_as(STRING),
    "upper": _all_as(STRING),
    "trim": _all_as(STRING),
    "ltrim": _all_as(STRING),
    "rtrim": _all_as(STRING),
    "initcap": _all_as(STRING),
    "substring": _Checker.substring_arguments,
    "len": _all_as(None),
    "json_parse": _Checker.json_parse_arguments,
    "array": _all_as(JSON),
    "map": _Checker.map_arguments,
}
