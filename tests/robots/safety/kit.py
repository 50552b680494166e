"""Helpers for the safety tests: parties and feeding all five layers at once."""

from __future__ import annotations

import math

from robots.safety import (
    BumperReading,
    CameraReading,
    Detection,
    EStopReading,
    LidarReading,
    Reading,
    Role,
    SafetySupervisor,
    UltrasonicReading,
    control_centre,
    on_site,
)

ON_SITE = on_site("key-7")
ALICE = control_centre("alice")
BOB = control_centre("bob")
ADMIN = control_centre("root", Role.ADMIN)
VIEWER = control_centre("val", Role.VIEWER)
ON_SITE_VIEWER = on_site("visitor", Role.VIEWER)


def feed(
    sup: SafetySupervisor,
    t: float,
    *,
    lidar: float | tuple[float, ...] = math.inf,
    ultrasonic: float | tuple[float, ...] = math.inf,
    detections: tuple[Detection, ...] = (),
    pressed: bool = False,
    contact: bool = False,
    skip: tuple[str, ...] = (),
) -> None:
    """One fresh reading of every layer (except those named in ``skip``) stamped ``t``."""
    readings: dict[str, Reading] = {
        "lidar": LidarReading(t, lidar if isinstance(lidar, tuple) else (lidar,)),
        "ultrasonic": UltrasonicReading(t, ultrasonic if isinstance(ultrasonic, tuple) else (ultrasonic,)),
        "camera": CameraReading(t, detections),
        "e_stop": EStopReading(t, pressed),
        "bumper": BumperReading(t, contact),
    }
    for name, reading in readings.items():
        if name not in skip:
            assert sup.observe(reading, t)


def sectors(n: int, **at: float) -> tuple[float, ...]:
    """``n`` sectors reading ``inf`` except those given as ``s{index}=distance``."""
    values = [math.inf] * n
    for key, value in at.items():
        values[int(key.removeprefix("s"))] = value
    return tuple(values)
