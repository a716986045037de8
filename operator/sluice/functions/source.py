"""A function's source checked at validation, compiled and never run: a syntax error or a
missing ``transform`` is refused with its line and column before anything runs."""

from __future__ import annotations

import ast
import functools
from dataclasses import dataclass

from sluice.functions import javascript


@dataclass(frozen=True)
class SourceProblem:
    message: str
    line: int
    column: int

    def __str__(self) -> str:
        return f"line {self.line}, column {self.column}: {self.message}"


@functools.lru_cache(maxsize=256)
def check_source(language: str, source: str) -> SourceProblem | None:
    """What makes ``source`` unusable, or None. ``language`` must have a runner here.

    Remembered: the operator and ``sluice apply`` validate the same pipelines again and again,
    and compiling JavaScript starts a V8 isolate (20 ms)."""
    if language == "JavaScript":
        found = javascript.check_source(source)
        return None if found is None else SourceProblem(*found)
    return _check_python(source)


def _check_python(source: str) -> SourceProblem | None:
    try:
        tree = ast.parse(source, "transformation.py")
        compile(tree, "transformation.py", "exec")
    except SyntaxError as err:
        return SourceProblem(f"SyntaxError: {err.msg}", err.lineno or 1, err.offset or 1)
    except ValueError as err:  # a NUL character, say
        return SourceProblem(f"ValueError: {err}", 1, 1)
    if not any(_defines_transform(statement) for statement in tree.body):
        return SourceProblem("Function 'transform' is not defined", 1, 1)
    return None


def _defines_transform(statement: ast.stmt) -> bool:
    """A top-level definition of ``transform``: a def, an assignment, or an import as it."""
    match statement:
        case ast.FunctionDef(name="transform") | ast.AsyncFunctionDef(name="transform"):
            return True
        case ast.Assign(targets=targets):
            return any(isinstance(t, ast.Name) and t.id == "transform" for t in targets)
        case ast.AnnAssign(target=ast.Name(id="transform"), value=value):
            return value is not None
        case ast.Import(names=names) | ast.ImportFrom(names=names):
            return any((alias.asname or alias.name) == "transform" for alias in names)
    return False
