"""The service day: epoch seconds ↔ the core's seconds since local midnight, with and without DST."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from orchestrator.operations.timebase import DAY_S, ServiceDay, TimebaseError

SHANGHAI = "Asia/Shanghai"
NEW_YORK = "America/New_York"


def epoch_of(year: int, month: int, day: int, hour: int, minute: int, tz: str, fold: int = 0) -> float:
    return dt.datetime(year, month, day, hour, minute, tzinfo=ZoneInfo(tz), fold=fold).timestamp()


def test_a_zone_without_dst_counts_wall_clock_seconds() -> None:
    """Asia/Shanghai (UTC+8, no DST): 07:30 local is 27000 s; midnight is 16:00 UTC the day before."""
    t = epoch_of(2026, 11, 27, 7, 30, SHANGHAI)
    day = ServiceDay.of(t, SHANGHAI)
    assert day.date == dt.date(2026, 11, 27)
    assert day.seconds(t) == 27000.0
    assert day.length_s == DAY_S
    assert day.midnight_epoch == dt.datetime(2026, 11, 26, 16, 0, tzinfo=dt.UTC).timestamp()
    assert day.local(7.5 * 3600) == 27000.0
    assert day.epoch(27000.0) == t


def test_of_picks_the_local_date_not_the_utc_date() -> None:
    """23:59 on the 26th in UTC is already 07:59 on the 27th in Shanghai."""
    t = dt.datetime(2026, 11, 26, 23, 59, tzinfo=dt.UTC).timestamp()
    assert ServiceDay.of(t, SHANGHAI).date == dt.date(2026, 11, 27)
    assert ServiceDay.of(t, "UTC").date == dt.date(2026, 11, 26)


def test_round_trip_and_values_outside_the_day() -> None:
    """seconds/epoch invert each other; yesterday is negative, after midnight is past length_s."""
    day = ServiceDay(SHANGHAI, dt.date(2026, 11, 27))
    for s in (-3600.0, 0.0, 12345.5, DAY_S + 600.0):
        assert day.seconds(day.epoch(s)) == pytest.approx(s, abs=1e-6)
    assert not day.contains(day.epoch(-1.0)) and day.contains(day.epoch(0.0))
    assert not day.contains(day.epoch(DAY_S))
    assert day.next().date == dt.date(2026, 11, 28)
    assert day.next().midnight_epoch == day.midnight_epoch + DAY_S


def test_spring_forward_day_has_23_hours_and_windows_move() -> None:
    """New York, 2026-03-08 02:00 → 03:00: 07:30 local is 6.5 h after midnight; 02:30 does not exist."""
    day = ServiceDay(NEW_YORK, dt.date(2026, 3, 8))
    assert day.length_s == 23 * 3600
    assert day.local(7.5 * 3600) == 6.5 * 3600
    assert day.seconds(epoch_of(2026, 3, 8, 7, 30, NEW_YORK)) == 6.5 * 3600
    assert day.local(1.5 * 3600) == 1.5 * 3600  # before the change: the same
    # the skipped hour is read with the offset before the change (an hour later on the wall clock)
    assert day.local(2.5 * 3600) == 2.5 * 3600
    assert dt.datetime.fromtimestamp(day.epoch(2.5 * 3600), ZoneInfo(NEW_YORK)).hour == 3
    assert day.local(DAY_S) == day.length_s


def test_fall_back_day_has_25_hours_and_the_repeated_hour_is_the_first() -> None:
    """New York, 2026-11-01 02:00 → 01:00: 07:30 local is 8.5 h after midnight; 01:30 the first one."""
    day = ServiceDay(NEW_YORK, dt.date(2026, 11, 1))
    assert day.length_s == 25 * 3600
    assert day.local(7.5 * 3600) == 8.5 * 3600
    assert day.local(1.5 * 3600) == 1.5 * 3600
    second = epoch_of(2026, 11, 1, 1, 30, NEW_YORK, fold=1)
    assert day.seconds(second) == 2.5 * 3600  # the second 01:30 is an hour later on the core's axis


def test_midnight_that_does_not_exist_starts_the_day_at_its_first_instant() -> None:
    """America/Santiago jumps from 00:00 to 01:00 on 2026-09-06: the day starts at 01:00 and has 23 h."""
    tz = "America/Santiago"
    day = ServiceDay(tz, dt.date(2026, 9, 6))
    assert day.length_s == 23 * 3600
    first = dt.datetime.fromtimestamp(day.midnight_epoch, ZoneInfo(tz))
    assert (first.date(), first.hour) == (dt.date(2026, 9, 6), 1)
    assert ServiceDay.of(day.midnight_epoch, tz) == day
    assert ServiceDay.of(day.midnight_epoch - 1, tz).date == dt.date(2026, 9, 5)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: ServiceDay.of(0.0, "Mars/Olympus"), "not an IANA time zone"),
        (lambda: ServiceDay.of(float("nan"), SHANGHAI), "finite number"),
        (lambda: ServiceDay(SHANGHAI, dt.date(2026, 1, 1)).local(90000.0), "within 0..86400"),
        (lambda: ServiceDay(SHANGHAI, dt.date(2026, 1, 1)).epoch(float("inf")), "finite number"),
    ],
)
def test_bad_input_is_refused_with_a_reason(call: object, message: str) -> None:
    with pytest.raises(TimebaseError, match=message):
        call()  # type: ignore[operator]
