"""What goes wrong with a mapping: at compile time for the whole pipeline, at run time per record.

Compile-time problems are :class:`MappingError` (the API reports them as
``invalid mapping: <message>``). Run-time problems are :class:`RecordError`, counted in the
*Transformation* step when an expression cannot be evaluated and in the *OutputValidation* step
when its value does not fit the destination.

Deep inside evaluation the mapping key and its expression are not known, so the closures raise
the private failures below and the record assembly turns them into a :class:`RecordError`.
"""

from __future__ import annotations

import json
from enum import Enum, StrEnum

from sluice.model.types import Kind, Type, effective_range, format_number


class MappingError(ValueError):
    """A mapping that does not compile.

    ``key`` is the mapping key (output path) the problem belongs to, ``position`` the 0-based
    character offset in that key's expression where it was found (None for problems with keys).
    """

    def __init__(self, message: str, key: str | None = None, position: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.key = key
        self.position = position

    def for_key(self, key: str) -> MappingError:
        return MappingError(self.message, key, self.position)


class Step(StrEnum):
    """The export step a record's failure is counted in."""

    TRANSFORMATION = "Transformation"
    OUTPUT_VALIDATION = "OutputValidation"


class RecordError(ValueError):
    """A record the mapping cannot transform; ``key`` is the output path being mapped."""

    def __init__(self, step: Step, message: str, key: str) -> None:
        super().__init__(message)
        self.step = step
        self.message = message
        self.key = key

    def __str__(self) -> str:
        return self.message


# ---------------------------------------------------------------------------------------------
# Failures raised while evaluating, before the key is known
# ---------------------------------------------------------------------------------------------


class Failure(Exception):  # noqa: N818 - internal, never escapes the package
    """Raised by evaluation closures; the record assembly adds the key and the expression."""


class EvaluationFailure(Failure):
    """An expression that cannot be evaluated (the *Transformation* step); ``message`` is
    complete but for the trailing ``while mapping to «key»``."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class Reason(Enum):
    """Why a value does not convert to a type."""

    INVALID = "invalid"
    RANGE = "range"
    MIN = "min"
    MAX = "max"
    PARSE = "parse"
    YEAR_RANGE = "year range"
    ENUM = "enum"
    PATTERN = "pattern"
    MAX_BYTES = "max bytes"
    MAX_LENGTH = "max length"
    UNIXNANO = "unixnano"
    MIN_ELEMENTS = "min elements"
    MAX_ELEMENTS = "max elements"
    REPEATED = "repeated"
    REQUIRED_FOR_CREATION = "required for creation"
    REQUIRED_FOR_UPDATE = "required for update"


class ConversionFailure(Failure):
    """A value that does not convert to ``target`` (the *OutputValidation* step).

    ``location`` grows as the failure leaves nested containers (``[2]``, ``.name``) so that the
    message points inside the value; ``subject`` replaces the key's expression as the thing
    described, when a part of it failed (an argument of ``array``).
    """

    def __init__(self, reason: Reason, target: Type) -> None:
        super().__init__(reason.value)
        self.reason = reason
        self.target = target
        self.location = ""
        self.subject: str | None = None

    def inside(self, step: str) -> ConversionFailure:
        self.location = step + self.location
        return self


# ---------------------------------------------------------------------------------------------
# Messages
# ---------------------------------------------------------------------------------------------


def code(source: str) -> str:
    """Source text between « and »; a » inside it becomes ≫ so the quotes stay unambiguous."""
    return "«" + source.replace("»", "≫") + "»"


def literal_text(value: object) -> str:
    """A literal as compile-time messages show it: strings quoted, numbers as numbers."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, int | float):
        return format_number(value)
    return str(value)


_PARSED_AS = {
    Kind.DATETIME: "a date time in ISO 8601 format",
    Kind.DATE: "a date in ISO 8601 format",
    Kind.TIME: "a time in ISO 8601 format",
    Kind.YEAR: "a year",
    Kind.UUID: "a UUID",
    Kind.IP: "an IP address",
}


def conversion_message(failure: ConversionFailure, subject: str, *, run_time: bool) -> str:
    """``subject`` (a literal, or «expression») described as failing to convert.

    Run-time messages quote types and patterns between « and », as the API does; compile-time
    messages about literals do not.
    """
    target = failure.target
    quote = code if run_time else str
    match failure.reason:
        case Reason.RANGE:
            return f"number {subject} is not a {quote(str(target))} value"
        case Reason.MIN:
            return f"number {subject} is less than {format_number(effective_range(target)[0])}"
        case Reason.MAX:
            return f"number {subject} is greater than {format_number(effective_range(target)[1])}"
        case Reason.PARSE:
            return f"{subject} is not parsable as {_PARSED_AS.get(target.kind, str(target))}"
        case Reason.YEAR_RANGE:
            return f"year of {subject} is not in range [1,9999]"
        case Reason.ENUM:
            return f"{subject} is not one of the allowed values"
        case Reason.PATTERN:
            return f"{subject} does not match {quote(f'/{target.pattern}/')}"
        case Reason.MAX_BYTES:
            return f"{subject} exceeds the {target.max_bytes}-byte limit"
        case Reason.MAX_LENGTH:
            return f"{subject} exceeds the {target.max_length}-char limit"
        case Reason.UNIXNANO:
            unixnano = quote("unixnano")
            return f"{subject} is outside the range supported by the {unixnano} datetime format"
        case Reason.MIN_ELEMENTS:
            return f"{subject} has fewer than {target.min_elements} elements"
        case Reason.MAX_ELEMENTS:
            return f"{subject} has more than {target.max_elements} elements"
        case Reason.REPEATED:
            return f"{subject} has repeated elements, but {quote(str(target))} requires unique ones"
        case Reason.REQUIRED_FOR_CREATION:
            return required_message(subject, "creation")
        case Reason.REQUIRED_FOR_UPDATE:
            return required_message(subject, "update")
        case _:
            return f"{subject} is not convertible to the {quote(str(target))} type"


def required_message(subject: str, purpose: str) -> str:
    """``subject`` has no value, but the destination needs one for ``purpose``."""
    return f"{subject} is null but it is required for {purpose}"


def record_error(failure: Failure, source: str, key: str) -> RecordError:
    """The record error for a failure while evaluating the expression ``source`` of ``key``."""
    if isinstance(failure, EvaluationFailure):
        message, step = failure.message, Step.TRANSFORMATION
    else:
        assert isinstance(failure, ConversionFailure)
        subject = (failure.subject or code(source)) + failure.location
        message, step = conversion_message(failure, subject, run_time=True), Step.OUTPUT_VALIDATION
    return RecordError(step, f"{message} while mapping to {code(key)}", key)
