"""Reading dates and datetimes written as strings.

Dates are read leniently, as spreadsheets and CSV exports write them: ``YYYY-MM-DD``,
``MM/DD/YYYY``, ``MM.DD.YYYY``, the two-digit-year forms ``YY-MM-DD``, ``MM/DD/YY`` and
``MM.DD.YY``, or an Excel serial day number (``45000``, ``45000.5``). A two-digit year ``YY``
is 20YY from 00 to 68 and 19YY from 69 to 99, the POSIX ``strptime`` rule. Datetimes written
as strings must be RFC 3339.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta, timezone

from sluice.mapping.common_types import DATE, DATETIME
from sluice.mapping.errors import ConversionFailure, Reason

_YEAR_FIRST = re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2})\Z")
_MONTH_FIRST = re.compile(r"([0-9]{2})([/.])([0-9]{2})\2([0-9]{4})\Z")
_SHORT_YEAR_FIRST = re.compile(r"([0-9]{2})-([0-9]{2})-([0-9]{2})\Z")
_SHORT_MONTH_FIRST = re.compile(r"([0-9]{2})([/.])([0-9]{2})\2([0-9]{2})\Z")
# An Excel serial number: days since 1899-12-31, maybe with a time of day as a fraction.
_EXCEL_SERIAL = re.compile(r"([0-9]{1,7})(?:\.[0-9]+)?\Z")
_EXCEL_EPOCH = date(1899, 12, 31)
# Excel counts 1900-02-29, a day that does not exist (it copied a Lotus 1-2-3 bug).
_EXCEL_FAKE_LEAP_DAY = 60
_LAST_SHORT_YEAR_OF_2000S = 68


def parse_date(text: str) -> date:
    """The date ``text`` stands for; :class:`ConversionFailure` if none."""
    if match := _YEAR_FIRST.match(text):
        year, month, day = match.group(1, 2, 3)
    elif match := _MONTH_FIRST.match(text):
        month, day, year = match.group(1, 3, 4)
    elif match := _SHORT_YEAR_FIRST.match(text):
        short_year, month, day = match.group(1, 2, 3)
        year = _full_year(short_year)
    elif match := _SHORT_MONTH_FIRST.match(text):
        month, day, short_year = match.group(1, 3, 4)
        year = _full_year(short_year)
    elif (match := _EXCEL_SERIAL.match(text)) and len(text) >= 3:
        return _excel_day(int(match.group(1)))
    else:
        raise ConversionFailure(Reason.PARSE, DATE)
    return _calendar_date(int(year), int(month), int(day))


def _full_year(short_year: str) -> str:
    century = 2000 if int(short_year) <= _LAST_SHORT_YEAR_OF_2000S else 1900
    return str(century + int(short_year))


def _calendar_date(year: int, month: int, day: int) -> date:
    if year < 1:
        raise ConversionFailure(Reason.YEAR_RANGE, DATE)
    try:
        return date(year, month, day)
    except ValueError:  # month 13, February 30, ...
        raise ConversionFailure(Reason.PARSE, DATE) from None


def _excel_day(serial: int) -> date:
    if serial == _EXCEL_FAKE_LEAP_DAY:
        raise ConversionFailure(Reason.PARSE, DATE)
    if serial > _EXCEL_FAKE_LEAP_DAY:
        serial -= 1
    try:
        return _EXCEL_EPOCH + timedelta(days=serial)
    except OverflowError:  # after 9999-12-31
        raise ConversionFailure(Reason.YEAR_RANGE, DATE) from None


_RFC3339 = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})T([0-9]{2}):([0-9]{2}):([0-9]{2})(?:\.([0-9]{1,9}))?"
    r"(?:Z|([+-])([0-9]{2}):([0-9]{2}))\Z"
)


def parse_rfc3339(text: str) -> datetime:
    """The instant an RFC 3339 datetime stands for, in UTC (fractions beyond microseconds are
    dropped); :class:`ConversionFailure` if ``text`` is not one."""
    match = _RFC3339.match(text)
    if match is None:
        raise ConversionFailure(Reason.PARSE, DATETIME)
    year, month, day, hour, minute, second = (int(part) for part in match.group(1, 2, 3, 4, 5, 6))
    fraction, sign, offset_hours, offset_minutes = match.group(7, 8, 9, 10)
    if year < 1:
        raise ConversionFailure(Reason.YEAR_RANGE, DATETIME)
    microsecond = int((fraction or "").ljust(6, "0")[:6])
    try:
        zone = UTC
        if sign is not None:
            offset = timedelta(hours=int(offset_hours), minutes=int(offset_minutes))
            zone = timezone(-offset if sign == "-" else offset)
        local = datetime(year, month, day, hour, minute, second, microsecond, tzinfo=zone)
    except ValueError:  # out-of-range fields, or an offset of a day or more
        raise ConversionFailure(Reason.PARSE, DATETIME) from None
    try:
        return local.astimezone(UTC)
    except OverflowError:  # the offset moves it before year 1 or after year 9999
        raise ConversionFailure(Reason.YEAR_RANGE, DATETIME) from None
