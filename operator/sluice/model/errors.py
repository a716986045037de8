"""Errors users see: the API's status, code and exact message, plus where it applies."""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable
from dataclasses import dataclass

#: A location inside a document: member names and list indexes, outermost first.
Location = tuple[str | int, ...]

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


def format_location(location: Location) -> str:
    """``("spec", "conditions", 0, "values")`` → ``spec.conditions[0].values``."""
    text = ""
    for part in location:
        if isinstance(part, int):
            text += f"[{part}]"
        elif _NAME.match(part):
            text += f".{part}" if text else part
        else:
            text += f'["{part}"]'
    return text


def parse_location(text: str) -> Location:
    """The inverse of :func:`format_location` for names and indexes (``a.b[0].c``)."""
    location: list[str | int] = []
    for name, index, key in re.findall(r'([A-Za-z_][A-Za-z0-9_]*)|\[(\d+)\]|\["([^"]*)"\]', text):
        location.append(int(index) if index else name or key)
    return tuple(location)


def did_you_mean(word: str, names: Iterable[str]) -> str:
    """`` (did you mean "exportMode"?)`` when one of ``names`` is close to a misspelled
    ``word`` (case aside), else ``""``: a hint to append to an "unknown" message."""
    by_lower = {name.lower(): name for name in names}
    close = difflib.get_close_matches(word.lower(), by_lower, n=1)
    return f' (did you mean "{by_lower[close[0]]}"?)' if close else ""


class LocatedError(ValueError):
    """A message and where it applies inside the value being checked (a dotted path)."""

    def __init__(self, message: str, path: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.path = path

    def __str__(self) -> str:
        return self.message


@dataclass(frozen=True)
class ApiError(Exception):
    """A rejected request or resource, shaped like the API's error body.

    ``message`` is the API's exact text; ``cause`` adds the detail the API keeps in its optional
    ``cause`` key; ``location`` is where in the resource spec the error is.
    """

    status: int
    code: str
    message: str
    location: Location = ()
    cause: str | None = None

    def __str__(self) -> str:
        return f"{self.message} ({self.cause})" if self.cause else self.message

    def body(self) -> dict[str, dict[str, str]]:
        error = {"code": self.code, "message": self.message}
        if self.cause:
            error["cause"] = self.cause
        return {"error": error}


def bad_request(message: str, location: Location = ()) -> ApiError:
    return ApiError(400, "BadRequest", message, location)


def not_found(message: str, location: Location = (), cause: str | None = None) -> ApiError:
    return ApiError(404, "NotFound", message, location, cause)


def unprocessable(
    code: str, message: str, location: Location = (), cause: str | None = None
) -> ApiError:
    return ApiError(422, code, message, location, cause)
