"""Speed-scaled protective and warning fields (the lidar layer), and the braking curve they assume.

A field is the distance ahead (in the direction of travel) inside which an object makes the vehicle
act. Both grow with the speed ``v`` (m/s), so a fast vehicle looks further ahead and a slow one may
come close — the principle of speed-dependent protective fields of ISO 3691-4 §4.8 / IEC 61496-3::

    stopping(v)   = v·t_r + v² / (2·a)            reaction distance + braking distance
    protective(v) = stopping(v) + m_p             the vehicle stops inside this: object ⇒ stop
    warning(v)    = protective(v) + v·t_w + m_w   look-ahead: object ⇒ slow down

``t_r`` (``reaction_time``) covers sensing, the supervisor's tick, the network to the motor driver and
the brakes engaging; ``a`` (``braking_deceleration``) is the deceleration the base guarantees (loaded,
downhill, wet); ``m_p`` and ``m_w`` are fixed margins; ``t_w`` (``warning_time``) is how much earlier
the warning field reacts. With the defaults (``t_r`` 0.3 s, ``a`` 1.0 m/s², ``m_p`` 0.3 m, ``t_w``
1.0 s, ``m_w`` 0.5 m) a cart at 1.5 m/s stops for anything within 1.88 m and slows for anything within
3.88 m; at walking pace (0.5 m/s) the fields are 0.58 m and 1.58 m; standing, 0.3 m and 0.8 m.

``v`` is the larger of the commanded and the measured speed: commanding more speed makes the fields
grow before the vehicle is fast, and a vehicle that is faster than commanded is judged by what it does.
Because the commanded speed stays while the vehicle is held, a stop does not release just because the
vehicle stood still and its fields shrank (no stop-and-go).

The supervisor's speed monitor checks the same assumption from the other side: after a lower limit,
the measured speed must follow ``braking_curve`` (no faster than ``v0 - a·(t - t_r)``) within a
tolerance, or the vehicle is stopped (see ``robots.safety.supervisor``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class FieldConfig:
    """Parameters of the speed-scaled fields (seconds, metres, m/s², radians).

    ``half_angle`` is the half-width of the cone around the direction of travel in which sectors count
    (the fields' width); at a standstill every sector counts.
    """

    reaction_time: float = 0.3
    braking_deceleration: float = 1.0
    protective_margin: float = 0.3
    warning_time: float = 1.0
    warning_margin: float = 0.5
    half_angle: float = math.radians(60.0)

    def __post_init__(self) -> None:
        for name in ("reaction_time", "protective_margin", "warning_time", "warning_margin"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0.0):
                raise ValueError(f"FieldConfig.{name} must be a finite number >= 0, got {value!r}")
        if not (math.isfinite(self.braking_deceleration) and self.braking_deceleration > 0.0):
            raise ValueError(
                f"FieldConfig.braking_deceleration must be > 0 m/s², got {self.braking_deceleration!r}"
            )
        if not 0.0 < self.half_angle <= math.pi:
            raise ValueError(f"FieldConfig.half_angle must be within (0, π], got {self.half_angle!r}")


def stopping_distance(speed: float, cfg: FieldConfig) -> float:
    """Reaction plus braking distance from ``speed`` (m/s): ``v·t_r + v²/(2a)``."""
    v = abs(speed)
    return v * cfg.reaction_time + v * v / (2.0 * cfg.braking_deceleration)


def protective_distance(speed: float, cfg: FieldConfig) -> float:
    """The protective field's reach at ``speed``: ``stopping(v) + m_p``."""
    return stopping_distance(speed, cfg) + cfg.protective_margin


def warning_distance(speed: float, cfg: FieldConfig) -> float:
    """The warning field's reach at ``speed``: ``protective(v) + v·t_w + m_w``."""
    return protective_distance(speed, cfg) + abs(speed) * cfg.warning_time + cfg.warning_margin


def braking_curve(v0: float, since: float, cfg: FieldConfig) -> float:
    """The most speed a vehicle may still have ``since`` seconds after being told to slow from ``v0``.

    ``v0`` until the reaction time has passed, then falling at the guaranteed deceleration (never < 0).
    """
    return max(0.0, abs(v0) - cfg.braking_deceleration * max(0.0, since - cfg.reaction_time))
