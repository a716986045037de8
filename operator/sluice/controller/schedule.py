"""When a pipeline runs: every ``period``, at the minutes of the day congruent to its start.

Every period divides a day, so the runs fall at the same minutes every day (UTC) and one cron
expression describes them exactly; the next run is plain arithmetic on the minute of the day.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sluice.model.specs import SCHEDULE_PERIODS

MINUTES_PER_HOUR = 60
HOURS_PER_DAY = 24

_PERIOD_MINUTES = {
    period: int(period[:-1]) * (MINUTES_PER_HOUR if period.endswith("h") else 1)
    for period in SCHEDULE_PERIODS
}


def period_minutes(period: str) -> int:
    """The length of a schedule period ("5m" … "24h") in minutes."""
    try:
        return _PERIOD_MINUTES[period]
    except KeyError:
        raise ValueError(f"unknown schedule period {period!r}") from None


def cron_schedule(period: str | None, start: int) -> str | None:
    """The cron expression (UTC) of a pipeline running every ``period`` at the minutes of the
    day congruent to ``start``; None for an unscheduled pipeline.

    >>> cron_schedule("8h", 75)
    '15 1,9,17 * * *'
    """
    if period is None:
        return None
    every = period_minutes(period)
    offset = start % every
    if every < MINUTES_PER_HOUR:
        # The period divides an hour: the same minutes every hour.
        minutes = range(offset, MINUTES_PER_HOUR, every)
        return f"{_cron_list(minutes, MINUTES_PER_HOUR)} * * * *"
    hours = range(offset // MINUTES_PER_HOUR, HOURS_PER_DAY, every // MINUTES_PER_HOUR)
    return f"{offset % MINUTES_PER_HOUR} {_cron_list(hours, HOURS_PER_DAY)} * * *"


def _cron_list(values: range, size: int) -> str:
    return "*" if len(values) == size else ",".join(map(str, values))


def next_run(period: str | None, start: int, now: datetime) -> datetime | None:
    """The first run strictly after ``now`` (an aware datetime), in UTC; None when unscheduled."""
    if period is None:
        return None
    if now.tzinfo is None:
        raise ValueError("now must be an aware datetime")
    now = now.astimezone(UTC)
    every = timedelta(minutes=period_minutes(period))
    # Today's run at ``start`` is one run; the others fall every period from it, either way
    # and across midnight, since a period divides a day.
    anchor = now.replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(minutes=start)
    return anchor + ((now - anchor) // every + 1) * every
