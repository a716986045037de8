"""The schedule rule: every period, at the minutes of the day congruent to the start (UTC)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sluice.controller.schedule import cron_schedule, next_run, period_minutes
from sluice.model.specs import SCHEDULE_PERIODS

MINUTES_PER_DAY = 1440


@pytest.mark.parametrize(
    ("period", "start", "cron"),
    [
        ("15m", 7, "7,22,37,52 * * * *"),
        ("8h", 75, "15 1,9,17 * * *"),
        ("1h", 15, "15 * * * *"),
        ("24h", 1439, "59 23 * * *"),
        ("5m", 7, "2,7,12,17,22,27,32,37,42,47,52,57 * * * *"),
        ("15m", 900, "0,15,30,45 * * * *"),
        ("30m", 1439, "29,59 * * * *"),
        ("2h", 0, "0 0,2,4,6,8,10,12,14,16,18,20,22 * * *"),
        ("3h", 320, "20 2,5,8,11,14,17,20,23 * * *"),
        ("12h", 725, "5 0,12 * * *"),
        ("24h", 0, "0 0 * * *"),
    ],
)
def test_cron_schedule(period: str, start: int, cron: str) -> None:
    assert cron_schedule(period, start) == cron


def test_an_unscheduled_pipeline_has_no_cron_and_no_next_run() -> None:
    assert cron_schedule(None, 15) is None
    assert next_run(None, 15, datetime(2025, 1, 1, tzinfo=UTC)) is None


def test_period_minutes() -> None:
    assert [period_minutes(p) for p in SCHEDULE_PERIODS] == [
        5, 15, 30, 60, 120, 180, 360, 480, 720, 1440
    ]  # fmt: skip
    with pytest.raises(ValueError, match="unknown schedule period '10m'"):
        period_minutes("10m")


@pytest.mark.parametrize(
    ("period", "start", "now", "expected"),
    [
        # The seed pipeline: every hour at minute 15; a run due exactly now is not "next".
        ("1h", 15, datetime(2025, 3, 1, 10, 14, 59, 999999), datetime(2025, 3, 1, 10, 15)),
        ("1h", 15, datetime(2025, 3, 1, 10, 15), datetime(2025, 3, 1, 11, 15)),
        ("1h", 15, datetime(2025, 3, 1, 23, 30), datetime(2025, 3, 2, 0, 15)),
        ("24h", 1439, datetime(2025, 12, 31, 23, 59, 30), datetime(2026, 1, 1, 23, 59)),
        ("8h", 75, datetime(2025, 3, 1, 17, 16), datetime(2025, 3, 2, 1, 15)),
        ("5m", 7, datetime(2025, 3, 1, 0, 0), datetime(2025, 3, 1, 0, 2)),
    ],
)
def test_next_run(period: str, start: int, now: datetime, expected: datetime) -> None:
    assert next_run(period, start, now.replace(tzinfo=UTC)) == expected.replace(tzinfo=UTC)


def test_next_run_is_in_utc_whatever_the_zone_of_now() -> None:
    berlin_winter = timezone(timedelta(hours=1))
    run = next_run("24h", 60, datetime(2025, 1, 1, 1, 30, tzinfo=berlin_winter))
    # 01:30 in Berlin is 00:30 UTC: the run at 01:00 UTC is the same day's.
    assert run == datetime(2025, 1, 1, 1, 0, tzinfo=UTC)
    assert run is not None and run.tzinfo is UTC


def test_next_run_refuses_a_naive_now() -> None:
    with pytest.raises(ValueError, match="aware"):
        next_run("1h", 15, datetime(2025, 1, 1))


def cron_matcher(cron: str) -> tuple[set[int], set[int]]:
    """The minutes and hours a ``<minutes> <hours> * * *`` expression lists."""
    minute_field, hour_field, *rest = cron.split(" ")
    assert rest == ["*", "*", "*"]

    def values(field: str, size: int) -> set[int]:
        return set(range(size)) if field == "*" else {int(v) for v in field.split(",")}

    return values(minute_field, 60), values(hour_field, 24)


def matches(cron: tuple[set[int], set[int]], moment: datetime) -> bool:
    minutes, hours = cron
    return moment.minute in minutes and moment.hour in hours


periods = st.sampled_from(SCHEDULE_PERIODS)
starts = st.integers(0, MINUTES_PER_DAY - 1)
moments = st.datetimes(
    min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)
)


@given(period=periods, start=starts)
def test_the_cron_lists_exactly_the_minutes_congruent_to_the_start(period: str, start: int) -> None:
    cron = cron_schedule(period, start)
    assert cron is not None
    minutes, hours = cron_matcher(cron)
    listed = {hour * 60 + minute for hour in hours for minute in minutes}
    every = period_minutes(period)
    assert listed == {m for m in range(MINUTES_PER_DAY) if m % every == start % every}


@given(period=periods, start=starts, now=moments)
def test_next_run_is_the_first_cron_minute_after_now(
    period: str, start: int, now: datetime
) -> None:
    run = next_run(period, start, now)
    cron = cron_schedule(period, start)
    assert run is not None and cron is not None
    every = period_minutes(period)
    assert now < run <= now + timedelta(minutes=every)
    assert (run.second, run.microsecond) == (0, 0)
    assert (run.hour * 60 + run.minute) % every == start % every
    matcher = cron_matcher(cron)
    assert matches(matcher, run)
    moment = now.replace(second=0, microsecond=0) + timedelta(minutes=1)
    while moment < run:
        assert not matches(matcher, moment), f"the cron runs at {moment}, before {run}"
        moment += timedelta(minutes=1)
