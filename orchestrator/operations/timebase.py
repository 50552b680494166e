"""The service day: epoch seconds ↔ the operations core's seconds since local midnight.

The operations core and the dispatcher count time in seconds on one clock with the delivery windows;
the simulator uses seconds since midnight. Live mode keeps that clock: ``ServiceDay`` is one calendar
day in the campus time zone (``settings.campus.timezone``) and converts the ``Clock``'s epoch seconds
to the core's seconds and back::

    day = ServiceDay.of(clock.now(), "Asia/Shanghai")
    now_s = day.seconds(clock.now())      # e.g. 27000.0 at 07:30 local
    until = day.epoch(leg.end_s)          # back to epoch seconds (SMS validity, VDA 5050 timestamps)
    w1 = day.local(7.5 * 3600)            # a window's wall-clock time of day on this date

**The core's seconds are elapsed seconds since the instant of local midnight**, not wall-clock
readings: ``seconds(t) = t - midnight_epoch``. So the axis is linear (a difference of two core times
is a duration, which the dispatcher's travel times and the core's timers need) and every instant has
exactly one value. In a zone without daylight saving time (Asia/Shanghai, UTC) the two agree: 07:30 is
27000 s. On a day when the clocks change they differ after the change, and wall-clock times of day
(the windows' ``HH:MM``) must go through ``local(wall_s)``:

- spring forward (the day has 23 h): after the change, wall time is one hour ahead of elapsed time,
  so ``local(7.5 h)`` is 6.5 h of elapsed seconds; a wall time inside the skipped hour (e.g. 02:30
  where 02:00 jumps to 03:00) is read with the offset before the change, i.e. it lands an hour later
  on the wall clock (``zoneinfo``'s ``fold=0`` rule, the same as ``datetime``'s);
- fall back (the day has 25 h): after the change, ``local(7.5 h)`` is 8.5 h of elapsed seconds; a wall
  time in the repeated hour means its first occurrence (``fold=0``);
- ``local(24 h)`` (a window ending at ``24:00``) is the next local midnight, ``length_s`` after this one;
- a zone whose clocks change at midnight (midnight does not exist on that date) starts the day at its
  first instant.

Values outside ``0..length_s`` are valid: a parcel received yesterday has negative seconds, a robot
still out after midnight has seconds past ``length_s``. A live core serves one service day; the app
starts a new day's core at the day change (``ServiceDay.next``).
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

DAY_S = 86400.0
"""Seconds in a day without a clock change."""


class TimebaseError(ValueError):
    """A time zone or a time that cannot be converted (unknown zone, not a finite number)."""


def zone(tz: str | ZoneInfo) -> ZoneInfo:
    """The ``ZoneInfo`` of an IANA zone name (``TimebaseError`` naming it if unknown)."""
    if isinstance(tz, ZoneInfo):
        return tz
    try:
        return ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        raise TimebaseError(f"{tz!r} is not an IANA time zone such as Asia/Shanghai") from None


def _finite(what: str, value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise TimebaseError(f"{what} must be a finite number of seconds, got {value!r}")
    return float(value)


@dataclass(frozen=True)
class ServiceDay:
    """One calendar ``date`` in the time zone ``tz``: the core's seconds since its local midnight.

    Build it with ``ServiceDay.of(epoch, tz)`` (the day containing ``epoch``) or
    ``ServiceDay(tz, date)``. ``midnight_epoch`` is the epoch time of its first instant, ``length_s``
    its length in seconds (86400, or 82800/90000 on a clock change).
    """

    tz: ZoneInfo
    date: dt.date
    midnight_epoch: float = field(init=False)
    length_s: float = field(init=False)

    def __init__(self, tz: str | ZoneInfo, day: dt.date) -> None:
        object.__setattr__(self, "tz", zone(tz))
        object.__setattr__(self, "date", day)
        start = _midnight(self.tz, day)
        end = _midnight(self.tz, day + dt.timedelta(days=1))
        object.__setattr__(self, "midnight_epoch", start)
        object.__setattr__(self, "length_s", end - start)

    @classmethod
    def of(cls, epoch: float, tz: str | ZoneInfo) -> ServiceDay:
        """The service day in ``tz`` that contains the instant ``epoch`` (epoch seconds)."""
        epoch = _finite("epoch", epoch)
        where = zone(tz)
        return cls(where, dt.datetime.fromtimestamp(epoch, where).date())

    def seconds(self, epoch: float) -> float:
        """The core's time of the instant ``epoch``: seconds elapsed since this day's local midnight."""
        return _finite("epoch", epoch) - self.midnight_epoch

    def epoch(self, seconds: float) -> float:
        """The epoch time of the core's ``seconds`` (the inverse of ``seconds``)."""
        return self.midnight_epoch + _finite("core seconds", seconds)

    def local(self, wall_s: float) -> float:
        """The core's seconds of the wall-clock time of day ``wall_s`` (seconds after 00:00 on the
        local clock, ``0..86400``) on this date; equal to ``wall_s`` unless the clocks change that day
        (see the module docstring)."""
        wall_s = _finite("time of day", wall_s)
        if not 0.0 <= wall_s <= DAY_S:
            raise TimebaseError(f"time of day must be within 0..86400 s, got {wall_s}")
        if wall_s == DAY_S:
            return self.length_s
        whole = int(wall_s)
        clock = dt.time(whole // 3600, whole % 3600 // 60, whole % 60, tzinfo=self.tz)
        instant = dt.datetime.combine(self.date, clock).timestamp() + (wall_s - whole)
        return instant - self.midnight_epoch

    def contains(self, epoch: float) -> bool:
        """Whether the instant ``epoch`` falls in this day."""
        return 0.0 <= self.seconds(epoch) < self.length_s

    def next(self) -> ServiceDay:
        """The following service day."""
        return ServiceDay(self.tz, self.date + dt.timedelta(days=1))

    def __str__(self) -> str:
        return f"{self.date.isoformat()} {self.tz.key}"


def _midnight(tz: ZoneInfo, day: dt.date) -> float:
    """The epoch time of the first instant of ``day`` in ``tz``.

    Where 00:00 does not exist (the clocks jump at midnight), ``fold=0`` reads it with the offset
    before the jump, which is the instant of the jump: the day's first instant.
    """
    return dt.datetime.combine(day, dt.time(0, 0, tzinfo=tz)).timestamp()
