"""Parsing an expression into its syntax tree (:mod:`sluice.mapping.ast`).

::

    expression := part { part }            parts side by side form a string template
    part       := literal | path | call
    literal    := string | number | "true" | "false" | "null"
    path       := name ["?"] { "." key ["?"] | "[" string "]" ["?"] }
    call       := function "(" [ expression { "," expression } ] ")"

Blanks (space, tab, newline, carriage return) separate parts and may surround arguments and
bracketed keys; inside a path, ``.`` ``[`` and ``?`` follow the previous element directly.
"""

from __future__ import annotations

from sluice.mapping.ast import Call, Literal, Node, Path, PathElement, Template
from sluice.mapping.errors import MappingError
from sluice.mapping.functions import FUNCTIONS
from sluice.mapping.lexer import NAME_CHARS, NAME_START, NUMBER_START, QUOTES, Scanner

#: How deeply calls may nest; deeper expressions are refused rather than exhausting the stack.
MAX_CALL_DEPTH = 50

_KEYWORDS: dict[str, bool | None] = {"true": True, "false": False, "null": None}


def parse(source: str) -> Node:
    """The syntax tree of ``source``; :class:`MappingError` with a position if it is invalid."""
    scanner = Scanner(source)
    node = _Parser(scanner).sequence(depth=0)
    scanner.skip_blanks()
    if node is None and scanner.at_end():
        raise MappingError("expression is empty", position=0)
    if not scanner.at_end():
        raise scanner.unexpected()
    assert node is not None
    return node


class _Parser:
    def __init__(self, scanner: Scanner) -> None:
        self.scanner = scanner

    def sequence(self, depth: int) -> Node | None:
        """Parts side by side, up to the first character that cannot start one."""
        scanner = self.scanner
        parts: list[Node] = []
        while True:
            scanner.skip_blanks()
            start, c = scanner.position, scanner.peek()
            if c in QUOTES:
                parts.append(Literal(scanner.read_string(), start, scanner.position))
            elif c in NUMBER_START:
                parts.append(Literal(scanner.read_number(), start, scanner.position))
            elif c in NAME_START:
                parts.append(self.name_part(depth))
            else:
                break
        if not parts:
            return None
        if len(parts) == 1:
            return parts[0]
        return Template(tuple(parts), parts[0].start, parts[-1].end)

    def name_part(self, depth: int) -> Node:
        """A keyword literal, a path, or a call: they all start with a name."""
        scanner = self.scanner
        start = scanner.position
        name = scanner.read_name()
        if name in _KEYWORDS:
            return Literal(_KEYWORDS[name], start, scanner.position)
        path = self.path(name, start)
        after_path = scanner.position
        scanner.skip_blanks()
        if scanner.peek() == "(":
            function = path.text()
            if function not in FUNCTIONS:
                raise scanner.error(f'function "{function}" does not exist', start)
            return self.call(function, start, depth)
        scanner.position = after_path
        return path

    def path(self, first: str, start: int) -> Path:
        scanner = self.scanner
        elements = [PathElement(first, bracketed=False, optional=self.question_mark())]
        while True:
            c = scanner.peek()
            if c == ".":
                elements.append(self.dotted_key())
            elif c == "[":
                elements.append(self.bracketed_key())
            else:
                return Path(tuple(elements), start, scanner.position)

    def dotted_key(self) -> PathElement:
        scanner = self.scanner
        period = scanner.position
        scanner.position += 1
        if scanner.at_end():
            raise scanner.error("path is not terminated")
        if scanner.peek() not in NAME_CHARS:
            raise scanner.error("unexpected period in path", period)
        key = scanner.read_name()
        return PathElement(key, bracketed=False, optional=self.question_mark())

    def bracketed_key(self) -> PathElement:
        scanner = self.scanner
        scanner.position += 1
        scanner.skip_blanks()
        if scanner.at_end():
            raise scanner.error("path is not terminated")
        if scanner.peek() not in QUOTES:
            raise scanner.error("key in brackets is not a string")
        key = scanner.read_string()
        scanner.skip_blanks()
        if scanner.peek() != "]":
            raise scanner.error("path is not terminated")
        scanner.position += 1
        return PathElement(key, bracketed=True, optional=self.question_mark())

    def question_mark(self) -> bool:
        if self.scanner.peek() == "?":
            self.scanner.position += 1
            return True
        return False

    def call(self, function: str, start: int, depth: int) -> Call:
        scanner = self.scanner
        if depth >= MAX_CALL_DEPTH:
            raise scanner.error(
                f"function calls cannot be nested more than {MAX_CALL_DEPTH} levels deep", start
            )
        scanner.skip_blanks()
        scanner.position += 1  # the opening parenthesis
        arguments: list[Node] = []
        scanner.skip_blanks()
        if scanner.peek() == ")":
            scanner.position += 1
            return Call(function, (), start, scanner.position)
        while True:
            argument = self.sequence(depth + 1)
            if argument is None:
                raise self.unterminated_or_unexpected()
            arguments.append(argument)
            scanner.skip_blanks()
            c = scanner.peek()
            scanner.position += 1
            if c == ")":
                return Call(function, tuple(arguments), start, scanner.position)
            if c != ",":
                scanner.position -= 1
                raise self.unterminated_or_unexpected()

    def unterminated_or_unexpected(self) -> MappingError:
        if self.scanner.at_end():
            return self.scanner.error("arguments are not terminated")
        return self.scanner.unexpected()
