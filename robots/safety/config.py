"""``SafetyConfig``: every threshold of the safety supervisor, frozen and validated on construction.

Units: metres, seconds, m/s. Each part validates itself and raises ``ValueError`` with one sentence
naming the field; ``SafetyConfig`` checks what ties the parts together (no slow speed above the top
speed). Defaults suit a campus delivery cart (top speed 1.5 m/s among pedestrians); the tables below
say what each one does.

=====================  =========================================================================
part                   meaning
=====================  =========================================================================
``fields``             lidar protective/warning fields scaled by speed (``robots.safety.fields``)
``near_range``         ultrasonic: stop within ``stop_range``, slow within ``slow_range``
``camera``             per target class: stop within ``stop_distance``, slow to ``slow_speed``
                       within ``slow_distance``; detections below ``min_confidence`` are ignored
``heartbeats``         per layer: the layer is *silent* when its newest reading is older than this
``acks``               who may acknowledge the latches and release the remote stops
=====================  =========================================================================
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from robots.safety.fields import FieldConfig
from robots.safety.parties import Role
from robots.safety.readings import ObjectClass, Source

_ACTING = frozenset({Role.OPERATOR, Role.ADMIN})


def _check_positive(owner: str, name: str, value: float) -> None:
    if not (math.isfinite(value) and value > 0.0):
        raise ValueError(f"{owner}.{name} must be a finite number > 0, got {value!r}")


def _check_non_negative(owner: str, name: str, value: float) -> None:
    if not (math.isfinite(value) and value >= 0.0):
        raise ValueError(f"{owner}.{name} must be a finite number >= 0, got {value!r}")


@dataclass(frozen=True, slots=True)
class NearRangeConfig:
    """The ultrasonic ring: anything within ``stop_range`` stops, within ``slow_range`` slows."""

    stop_range: float = 0.25
    slow_range: float = 0.6

    def __post_init__(self) -> None:
        _check_non_negative("NearRangeConfig", "stop_range", self.stop_range)
        _check_non_negative("NearRangeConfig", "slow_range", self.slow_range)
        if self.slow_range < self.stop_range:
            raise ValueError(
                f"NearRangeConfig needs slow_range >= stop_range, got {self.slow_range} < {self.stop_range}"
            )


@dataclass(frozen=True, slots=True)
class ClassRule:
    """What a camera target of one class does: stop within X (``stop_distance``), slow within Y."""

    stop_distance: float
    slow_distance: float
    slow_speed: float

    def __post_init__(self) -> None:
        _check_non_negative("ClassRule", "stop_distance", self.stop_distance)
        _check_non_negative("ClassRule", "slow_distance", self.slow_distance)
        _check_positive("ClassRule", "slow_speed", self.slow_speed)
        if self.slow_distance < self.stop_distance:
            raise ValueError(
                "ClassRule needs slow_distance >= stop_distance, "
                f"got {self.slow_distance} < {self.stop_distance}"
            )


@dataclass(frozen=True, slots=True)
class CameraConfig:
    """Rules per target class; ``None`` ignores the class (generic obstacles are the lidar's job)."""

    person: ClassRule | None = field(default_factory=lambda: ClassRule(1.5, 4.0, 0.6))
    vehicle: ClassRule | None = field(default_factory=lambda: ClassRule(1.0, 3.0, 0.8))
    other: ClassRule | None = None
    min_confidence: float = 0.5

    def __post_init__(self) -> None:
        if not 0.0 <= self.min_confidence <= 1.0:
            raise ValueError(f"CameraConfig.min_confidence must be within 0..1, got {self.min_confidence!r}")

    def rule(self, kind: ObjectClass) -> ClassRule | None:
        """The rule for targets of class ``kind`` (None: ignored)."""
        return {ObjectClass.PERSON: self.person, ObjectClass.VEHICLE: self.vehicle}.get(kind, self.other)

    def rules(self) -> tuple[tuple[ObjectClass, ClassRule], ...]:
        """Every class that has a rule, with its rule."""
        return tuple((kind, rule) for kind in ObjectClass if (rule := self.rule(kind)) is not None)


@dataclass(frozen=True, slots=True)
class Heartbeats:
    """Per layer: seconds without a newer reading after which the layer counts as silent."""

    lidar: float = 0.3
    ultrasonic: float = 0.3
    camera: float = 0.5
    e_stop: float = 0.25
    bumper: float = 0.25

    def __post_init__(self) -> None:
        for name in ("lidar", "ultrasonic", "camera", "e_stop", "bumper"):
            _check_positive("Heartbeats", name, getattr(self, name))

    def timeout(self, layer: Source) -> float:
        """The heartbeat timeout of ``layer`` (one of ``LAYERS``)."""
        if layer in (Source.REMOTE, Source.SUPERVISOR):
            raise ValueError(f"Heartbeats.timeout: {layer.value} is not a sensing layer")
        return float(getattr(self, layer.value))


@dataclass(frozen=True, slots=True)
class AckPolicy:
    """Who may clear what (``robots.safety.supervisor`` tells the whole rule).

    ``e_stop_remote_ack``: whether a control-centre operator may acknowledge the physical e-stop
    (default no: whoever pressed it may be in danger, so somebody must look on site — the reset of
    ISO 13850 is a deliberate act at the machine). ``bumper_remote_ack``: whether a control-centre
    operator may acknowledge a bumper contact after looking through the cameras (default yes).
    ``remote_ack_roles``: console roles allowed to acknowledge remotely; ``release_roles``: roles
    allowed to release an operator stop or a stop-all; ``building_release_roles``: roles allowed to
    release a building (fire alarm) stop.
    """

    e_stop_remote_ack: bool = False
    bumper_remote_ack: bool = True
    remote_ack_roles: frozenset[Role] = _ACTING
    release_roles: frozenset[Role] = _ACTING
    building_release_roles: frozenset[Role] = _ACTING

    def __post_init__(self) -> None:
        for name in ("remote_ack_roles", "release_roles", "building_release_roles"):
            roles = getattr(self, name)
            if not isinstance(roles, frozenset) or not all(isinstance(r, Role) for r in roles):
                raise ValueError(f"AckPolicy.{name} must be a frozenset of Role, got {roles!r}")
            if roles & {Role.NONE, Role.VIEWER}:
                raise ValueError(f"AckPolicy.{name} may not include viewer or none: they may only look")


@dataclass(frozen=True, slots=True)
class SafetyConfig:
    """Everything the supervisor needs to know (module docstring; metres, seconds, m/s).

    ``max_speed``: the limit when nothing restricts (NORMAL). ``slow_speed``: the limit in a warning
    field, in the near range's slow band and with one silent layer. ``standstill_speed``: below it
    the vehicle counts as standing (fields then look every way). ``hold_off``: a self-releasing
    condition stays in force this long after it was last seen (no flicker). ``silent_stop_count``:
    this many silent layers stop the vehicle. ``future_tolerance``: readings stamped more than this
    ahead of ``now`` are refused. ``overspeed_tolerance``: how far the measured speed may exceed the
    braking curve before the vehicle is stopped.
    """

    max_speed: float = 1.5
    slow_speed: float = 0.5
    standstill_speed: float = 0.05
    hold_off: float = 0.5
    silent_stop_count: int = 2
    future_tolerance: float = 0.05
    overspeed_tolerance: float = 0.15
    fields: FieldConfig = field(default_factory=FieldConfig)
    near_range: NearRangeConfig = field(default_factory=NearRangeConfig)
    camera: CameraConfig = field(default_factory=CameraConfig)
    heartbeats: Heartbeats = field(default_factory=Heartbeats)
    acks: AckPolicy = field(default_factory=AckPolicy)

    def __post_init__(self) -> None:
        _check_positive("SafetyConfig", "max_speed", self.max_speed)
        _check_positive("SafetyConfig", "slow_speed", self.slow_speed)
        for name in ("standstill_speed", "hold_off", "future_tolerance", "overspeed_tolerance"):
            _check_non_negative("SafetyConfig", name, getattr(self, name))
        if self.slow_speed > self.max_speed:
            raise ValueError(
                f"SafetyConfig.slow_speed ({self.slow_speed}) must not exceed max_speed ({self.max_speed})"
            )
        if self.standstill_speed >= self.slow_speed:
            raise ValueError(
                f"SafetyConfig.standstill_speed ({self.standstill_speed}) must be below "
                f"slow_speed ({self.slow_speed})"
            )
        count = self.silent_stop_count
        if not isinstance(count, int) or isinstance(count, bool) or not 1 <= count <= 5:
            raise ValueError(
                f"SafetyConfig.silent_stop_count must be an int within 1..5, got {self.silent_stop_count!r}"
            )
        for kind, rule in self.camera.rules():
            if rule.slow_speed > self.max_speed:
                raise ValueError(
                    f"SafetyConfig: camera rule for {kind.value} has slow_speed {rule.slow_speed} "
                    f"above max_speed {self.max_speed}"
                )
