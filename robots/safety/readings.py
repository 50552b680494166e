"""What the five protection layers report: one time-stamped reading type per layer.

Every reading carries ``stamp``: when it was sensed, in seconds of the robot's **monotonic** clock
(``Clock.monotonic()``), the same time line the supervisor's ``step(now)`` uses. A reading is also the
layer's heartbeat: a layer whose newest reading is older than its timeout is *silent*.

**Sectors.** The lidar and the ultrasonic ring report the nearest return per sector: ``ranges[i]`` is
the distance (metres, from the vehicle's outline) of the nearest object seen in sector ``i`` of ``n``
equal sectors around the vehicle, sector 0 centred straight ahead, counting counter-clockwise (so with
``n = 4``: front, left, rear, right). ``math.inf`` means nothing seen. A single sector (``n = 1``) is a
plain "nearest object anywhere" reading. ``sector_ranges`` turns a ``sensor_msgs/LaserScan``-like
array into sectors.

**Camera.** ``CameraReading.detections`` are the targets the recognition camera sees now, each with a
class (person / vehicle / other), a distance and a confidence.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import ClassVar


class Source(StrEnum):
    """Where a reason to slow or stop comes from: the five layers, a remote party, the supervisor."""

    LIDAR = "lidar"
    ULTRASONIC = "ultrasonic"
    CAMERA = "camera"
    E_STOP = "e_stop"
    BUMPER = "bumper"
    REMOTE = "remote"
    SUPERVISOR = "supervisor"


LAYERS: tuple[Source, ...] = (Source.LIDAR, Source.ULTRASONIC, Source.CAMERA, Source.E_STOP, Source.BUMPER)
"""The five protection layers, each with its own reading type and heartbeat."""


class ObjectClass(StrEnum):
    """What the recognition camera says a target is."""

    PERSON = "person"
    VEHICLE = "vehicle"
    OTHER = "other"


def _check_stamp(kind: str, stamp: float) -> None:
    if not math.isfinite(stamp):
        raise ValueError(f"{kind}: stamp must be a finite number of seconds, got {stamp!r}")


def _check_ranges(kind: str, ranges: tuple[float, ...]) -> None:
    if not ranges:
        raise ValueError(f"{kind}: ranges needs at least one sector")
    for value in ranges:
        if math.isnan(value) or value < 0.0:
            raise ValueError(f"{kind}: ranges must be >= 0 (math.inf for nothing seen), got {value!r}")


@dataclass(frozen=True, slots=True)
class LidarReading:
    """The safety lidar: nearest return per sector (see the module docstring)."""

    stamp: float
    ranges: tuple[float, ...]

    layer: ClassVar[Source] = Source.LIDAR

    def __post_init__(self) -> None:
        _check_stamp("LidarReading", self.stamp)
        _check_ranges("LidarReading", self.ranges)


@dataclass(frozen=True, slots=True)
class UltrasonicReading:
    """The ultrasonic ring (near range): nearest echo per transducer sector."""

    stamp: float
    ranges: tuple[float, ...]

    layer: ClassVar[Source] = Source.ULTRASONIC

    def __post_init__(self) -> None:
        _check_stamp("UltrasonicReading", self.stamp)
        _check_ranges("UltrasonicReading", self.ranges)


@dataclass(frozen=True, slots=True)
class Detection:
    """One target of the recognition camera: class, distance (m) and confidence (0..1)."""

    kind: ObjectClass
    distance: float
    confidence: float = 1.0

    def __post_init__(self) -> None:
        if math.isnan(self.distance) or self.distance < 0.0:
            raise ValueError(f"Detection: distance must be >= 0, got {self.distance!r}")
        if not 0.0 <= self.confidence <= 1.0:
            raise ValueError(f"Detection: confidence must be within 0..1, got {self.confidence!r}")


@dataclass(frozen=True, slots=True)
class CameraReading:
    """The target-recognition camera: everything it detects in this frame (empty: nothing)."""

    stamp: float
    detections: tuple[Detection, ...] = ()

    layer: ClassVar[Source] = Source.CAMERA

    def __post_init__(self) -> None:
        _check_stamp("CameraReading", self.stamp)


@dataclass(frozen=True, slots=True)
class EStopReading:
    """The emergency-stop button(s) on the vehicle: pressed or released (its monitoring heartbeat)."""

    stamp: float
    pressed: bool

    layer: ClassVar[Source] = Source.E_STOP

    def __post_init__(self) -> None:
        _check_stamp("EStopReading", self.stamp)


@dataclass(frozen=True, slots=True)
class BumperReading:
    """The flexible bumper strips: whether any strip is in contact now."""

    stamp: float
    contact: bool

    layer: ClassVar[Source] = Source.BUMPER

    def __post_init__(self) -> None:
        _check_stamp("BumperReading", self.stamp)


Reading = LidarReading | UltrasonicReading | CameraReading | EStopReading | BumperReading
"""A reading of any layer (``reading.layer`` says which)."""


def sector_ranges(
    ranges: Sequence[float],
    angle_min: float,
    angle_increment: float,
    sectors: int,
    *,
    range_min: float = 0.0,
    range_max: float = math.inf,
) -> tuple[float, ...]:
    """The nearest valid return per sector of a ``sensor_msgs/LaserScan``-like scan.

    Beam ``k`` points at ``angle_min + k * angle_increment`` (radians, counter-clockwise from straight
    ahead). Returns outside ``[range_min, range_max]``, NaN and infinities are "no return" (as the
    LaserScan message defines them); a sector without a valid return reads ``math.inf``.
    """
    if sectors < 1:
        raise ValueError(f"sector_ranges: sectors must be >= 1, got {sectors}")
    if not (math.isfinite(angle_min) and math.isfinite(angle_increment)):
        raise ValueError("sector_ranges: angle_min and angle_increment must be finite")
    width = 2.0 * math.pi / sectors
    nearest = [math.inf] * sectors
    for k, value in enumerate(ranges):
        if not (math.isfinite(value) and range_min <= value <= range_max):
            continue
        angle = angle_min + k * angle_increment
        index = int(((angle + width / 2.0) % (2.0 * math.pi)) // width) % sectors
        nearest[index] = min(nearest[index], value)
    return tuple(nearest)


def sector_centre(index: int, sectors: int) -> float:
    """The bearing (radians, counter-clockwise from straight ahead) of sector ``index`` of ``sectors``."""
    return 2.0 * math.pi * index / sectors
