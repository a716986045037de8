"""Formatting datetimes, dates and times with Go reference-time layouts.

Connectors declare how they want temporal values, as Go layouts (``2006-01-02T15:04:05.999Z``)
or, for datetimes, as Unix timestamps (``unix``, ``unixmilli``, ``unixmicro``, ``unixnano``).
A layout is compiled once into a formatter; values are always in UTC.

Supported layout elements (everything else is literal text)::

    2006 06            year, 4 digits / 2 digits
    01 1 Jan January   month: 2 digits / digits / name abbreviated / name
    02 2 _2            day of month: 2 digits / digits / space-padded
    002 __2            day of year: 3 digits / space-padded
    Mon Monday         weekday name abbreviated / name
    15 03 3            hour: 24-hour 2 digits / 12-hour 2 digits / 12-hour digits
    04 4  05 5         minute, second: 2 digits / digits
    PM pm              AM/PM marker, upper / lower case
    .000 .999 ,000 ,999  fractional seconds, fixed / trailing zeros dropped (up to 9 digits)
    Z07:00 Z0700 Z07 Z07:00:00 Z070000   zone offset, "Z" for UTC
    -07:00 -0700 -07 -07:00:00 -070000   zone offset, "+00:00" and so on for UTC
    MST                zone abbreviation: "UTC"

As in Go, ``Jan`` and ``Mon`` are literal text when a lower-case letter follows them
(``Janet``), and a run of fractional digits is literal when another digit follows it.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from enum import Enum
from typing import Any

from sluice.mapping.common_types import DATETIME
from sluice.mapping.errors import ConversionFailure, Reason
from sluice.model.types import Kind

UNIX_LAYOUTS = ("unix", "unixmilli", "unixmicro", "unixnano")


@dataclass(frozen=True)
class TimeLayouts:
    """How a destination wants datetime, date and time values (Go layouts, UTC)."""

    datetime: str = "2006-01-02T15:04:05.999Z"
    date: str = "2006-01-02"
    time: str = "15:04:05.999Z"

    def __post_init__(self) -> None:
        for name in ("datetime", "date", "time"):
            layout = getattr(self, name)
            if not isinstance(layout, str):
                raise TypeError(f"the {name} layout must be a string")
            if name != "datetime" and layout in UNIX_LAYOUTS:
                raise ValueError(f'the {name} layout cannot be "{layout}": only datetimes can')


#: Writes a datetime, date or time value: a string, or an integer for Unix timestamps.
Formatter = Callable[[Any], object]
#: Writes a datetime, date or time value as text.
TextFormatter = Callable[[Any], str]


def temporal_formatter(layouts: TimeLayouts, kind: Kind) -> Formatter:
    """The formatter of values of a datetime, date or time kind."""
    if kind is Kind.DATETIME:
        if layouts.datetime in UNIX_LAYOUTS:
            return _unix_formatter(layouts.datetime)
        return layout_formatter(layouts.datetime, kind)
    return layout_formatter(layouts.date if kind is Kind.DATE else layouts.time, kind)


# ---------------------------------------------------------------------------------------------
# Layout elements
# ---------------------------------------------------------------------------------------------


class _Needs(Enum):
    """What an element reads: the calendar date, the clock time, or nothing."""

    NOTHING = 0
    DATE = 1
    CLOCK = 2


@dataclass(frozen=True, slots=True)
class _Field:
    """An element printed with ``%``-formatting from one attribute of the value."""

    spec: str
    attribute: str
    needs: _Needs


@dataclass(frozen=True, slots=True)
class _Computed:
    """An element computed by a function of the value."""

    render: Callable[[datetime], str]
    needs: _Needs


_Element = str | _Field | _Computed

_MONTHS = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
]
_WEEKDAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]


def _month_name(value: datetime) -> str:
    return _MONTHS[value.month - 1]


def _month_abbreviation(value: datetime) -> str:
    return _MONTHS[value.month - 1][:3]


def _weekday_name(value: datetime) -> str:
    return _WEEKDAYS[value.weekday()]


def _weekday_abbreviation(value: datetime) -> str:
    return _WEEKDAYS[value.weekday()][:3]


def _year_day(value: datetime) -> int:
    return value.toordinal() - date(value.year, 1, 1).toordinal() + 1


def _two_digit_year(value: datetime) -> str:
    return f"{value.year % 100:02d}"


def _hour12(value: datetime) -> int:
    return value.hour % 12 or 12


def _fraction(digits: int, separator: str, trim: bool) -> _Computed:
    """Fractional seconds; values hold microseconds, so digits 7 to 9 are zeros."""
    divisor = 10 ** (9 - digits)
    spec = f"{separator}%0{digits}d"

    def render_fixed(value: datetime) -> str:
        text: str = spec % (value.microsecond * 1000 // divisor)
        return text

    def render_trimmed(value: datetime) -> str:
        units = value.microsecond * 1000 // divisor
        # Non-zero units keep a digit, so stripping zeros never reaches the separator.
        return (spec % units).rstrip("0") if units else ""

    return _Computed(render_trimmed if trim else render_fixed, _Needs.CLOCK)


_D, _C = _Needs.DATE, _Needs.CLOCK

# Elements recognised at a character, longest first, as Go's layout scanner tries them.
_ELEMENTS: dict[str, tuple[tuple[str, _Element], ...]] = {
    "J": (
        ("January", _Computed(_month_name, _D)),
        ("Jan", _Computed(_month_abbreviation, _D)),
    ),
    "M": (
        ("Monday", _Computed(_weekday_name, _D)),
        ("Mon", _Computed(_weekday_abbreviation, _D)),
        ("MST", "UTC"),
    ),
    "0": (
        ("002", _Computed(lambda v: f"{_year_day(v):03d}", _D)),
        ("01", _Field("%02d", "month", _D)),
        ("02", _Field("%02d", "day", _D)),
        ("03", _Computed(lambda v: f"{_hour12(v):02d}", _C)),
        ("04", _Field("%02d", "minute", _C)),
        ("05", _Field("%02d", "second", _C)),
        ("06", _Computed(_two_digit_year, _D)),
    ),
    "1": (("15", _Field("%02d", "hour", _C)), ("1", _Field("%d", "month", _D))),
    "2": (("2006", _Field("%04d", "year", _D)), ("2", _Field("%d", "day", _D))),
    "_": (
        ("_2006", "_"),  # a literal underscore before a year, as in Go
        ("__2", _Computed(lambda v: f"{_year_day(v):3d}", _D)),
        ("_2", _Field("%2d", "day", _D)),
    ),
    "3": (("3", _Computed(lambda v: str(_hour12(v)), _C)),),
    "4": (("4", _Field("%d", "minute", _C)),),
    "5": (("5", _Field("%d", "second", _C)),),
    "P": (("PM", _Computed(lambda v: "PM" if v.hour >= 12 else "AM", _C)),),
    "p": (("pm", _Computed(lambda v: "pm" if v.hour >= 12 else "am", _C)),),
    "-": (
        ("-070000", "+000000"),
        ("-07:00:00", "+00:00:00"),
        ("-0700", "+0000"),
        ("-07:00", "+00:00"),
        ("-07", "+00"),
    ),
    "Z": (
        ("Z070000", "Z"),
        ("Z07:00:00", "Z"),
        ("Z0700", "Z"),
        ("Z07:00", "Z"),
        ("Z07", "Z"),
    ),
}


def _elements(layout: str) -> list[_Element]:
    """The layout split into elements and literal text."""
    elements: list[_Element] = []
    index = 0
    while index < len(layout):
        matched = _fraction_at(layout, index) or _element_at(layout, index)
        if matched is None:
            elements.append(layout[index])
            index += 1
            continue
        token, element = matched
        if token == "_2006":  # the underscore is text; the year is read next
            elements.append("_")
            index += 1
            continue
        elements.append(element)
        index += len(token)
    return elements


def _element_at(layout: str, index: int) -> tuple[str, _Element] | None:
    for token, element in _ELEMENTS.get(layout[index], ()):
        if not layout.startswith(token, index):
            continue
        after = layout[index + len(token) : index + len(token) + 1]
        if token in ("Jan", "Mon") and after.islower() and after.isascii():
            continue  # "Janet", "Month": words, not elements
        return token, element
    return None


def _fraction_at(layout: str, index: int) -> tuple[str, _Element] | None:
    separator = layout[index]
    if separator not in ".," or index + 1 >= len(layout) or layout[index + 1] not in "09":
        return None
    digit = layout[index + 1]
    end = index + 1
    while end < len(layout) and layout[end] == digit:
        end += 1
    if end < len(layout) and layout[end] in "0123456789":
        return None  # "0.0001"-like text, not fractional seconds
    count = min(end - index - 1, 9)
    return layout[index:end], _fraction(count, separator, trim=digit == "9")


# ---------------------------------------------------------------------------------------------
# Formatters
# ---------------------------------------------------------------------------------------------


def layout_formatter(layout: str, kind: Kind) -> TextFormatter:
    """A formatter for values of ``kind`` (a datetime is formatted in UTC; a date is taken at
    midnight; a time on 1970-01-01, as Go holds them)."""
    if kind is Kind.DATE and layout == "2006-01-02":
        return date.isoformat  # the same text, written in C
    elements = _elements(layout)
    needs = {element.needs for element in elements if not isinstance(element, str)}
    render = _join(_segments(elements))
    if kind is Kind.DATE and _Needs.CLOCK in needs:
        return lambda value: render(_at_midnight(value))
    if kind is Kind.TIME and _Needs.DATE in needs:
        return lambda value: render(_on_epoch_day(value))
    return render


def _at_midnight(value: date) -> datetime:
    return datetime(value.year, value.month, value.day, tzinfo=UTC)


def _on_epoch_day(value: time) -> datetime:
    return datetime.combine(date(1970, 1, 1), value, tzinfo=UTC)


Renderer = Callable[[datetime], str]


def _segments(elements: list[_Element]) -> list[Renderer | str]:
    """Renderers for runs of elements: text and attribute fields are merged into one
    ``%``-format over an ``attrgetter``, which formats in C; runs of text alone stay text."""
    segments: list[Renderer | str] = []
    template: list[str] = []
    attributes: list[str] = []

    def close_run() -> None:
        if template:
            segments.append(_printf(template.copy(), attributes.copy()))
            template.clear()
            attributes.clear()

    for element in elements:
        if isinstance(element, str):
            template.append(element.replace("%", "%%"))
        elif isinstance(element, _Field):
            template.append(element.spec)
            attributes.append(element.attribute)
        else:
            close_run()
            segments.append(element.render)
    close_run()
    return segments


def _printf(template: list[str], attributes: list[str]) -> Renderer | str:
    text = "".join(template)
    if not attributes:
        constant: str = text % ()
        return constant
    if len(attributes) == 1:
        (attribute,) = attributes
        return lambda value: text % getattr(value, attribute)
    fields = operator.attrgetter(*attributes)
    return lambda value: text % fields(value)


def _join(segments: list[Renderer | str]) -> Renderer:
    """One renderer for all segments; text at either end is added, not rendered."""
    prefix = suffix = ""
    if segments and isinstance(segments[0], str):
        prefix, segments = segments[0], segments[1:]
    if segments and isinstance(segments[-1], str):
        suffix, segments = segments[-1], segments[:-1]
    renderers = [_text(segment) if isinstance(segment, str) else segment for segment in segments]
    if not renderers:
        text = prefix + suffix
        return lambda value: text
    if len(renderers) == 1:
        (only,) = renderers
        if not prefix and not suffix:
            return only
        return lambda value: prefix + only(value) + suffix
    if len(renderers) == 2:
        first, second = renderers
        return lambda value: prefix + first(value) + second(value) + suffix
    return lambda value: prefix + "".join([render(value) for render in renderers]) + suffix


def _text(text: str) -> Renderer:
    return lambda value: text


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_INT64 = (-(2**63), 2**63 - 1)
_UNIX_SCALE = {"unix": 1, "unixmilli": 1_000, "unixmicro": 1_000_000, "unixnano": 1_000_000_000}


def _unix_formatter(layout: str) -> Formatter:
    """Whole seconds (or milli-, micro-, nanoseconds) since 1970-01-01 UTC, rounded down."""
    scale = _UNIX_SCALE[layout]

    def render(value: datetime) -> int:
        delta = value - _EPOCH
        microseconds = (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds
        count = microseconds * scale // 1_000_000
        if layout == "unixnano" and not _INT64[0] <= count <= _INT64[1]:
            # Connectors read nanoseconds as a 64-bit integer: years 1678 to 2262.
            raise ConversionFailure(Reason.UNIXNANO, DATETIME)
        return count

    return render
