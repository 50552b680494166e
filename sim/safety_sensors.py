"""Simulated safety sensors for the five layers, with fault injection, driving the supervisor in virtual time.

The world: a robot driving straight along +x from the origin (the runner moves it), and ``Actor``s —
people, vehicles, other obstacles — each a disc with a constant velocity, present between ``appear``
and ``vanish``. Ranges are measured between outlines (centre distance minus both radii).

What each layer reports (``SensorSpec``; every layer on its own period, stamped when sensed):

==============  =========  ====================================================================
layer           rate       reading
==============  =========  ====================================================================
lidar           15 Hz      nearest actor per sector (16 sectors), out to 20 m; Gaussian noise
ultrasonic      20 Hz      nearest actor per sector (8 transducers), out to 2 m; Gaussian noise
camera          10 Hz      every actor within ±45° and 12 m, class and noisy distance; each may be
                           missed (``camera_miss``); confidence drawn in 0.6..1
e-stop          20 Hz      pressed while an ``EStopPress`` window is open
bumper          20 Hz      contact while a ``BumperHit`` window is open or an actor touches the robot
==============  =========  ====================================================================

**Faults** (``Fault``), each over a time window ``[start, end)``:

* ``Stuck``: the layer repeats its last reading unchanged — same value and same (aging) stamp — so the
  supervisor sees a stale heartbeat;
* ``Dropout``: the layer sends nothing;
* ``FalseDetection``: a ghost — an obstacle for the lidar or ultrasonic ring, a target of any class
  for the camera — at a given distance and bearing;
* ``BumperHit``: the bumper reports contact; ``EStopPress``: the button is held down.

Same ``seed``, same readings: one ``random.Random`` draws every noise value in a fixed order.

**Incremental use** (``sim.safety_feed`` runs the sensors against a live robot): ``add_actor`` and
``add_fault`` extend the world and the fault list after construction, ``end_faults`` closes the open
windows of faults (``EStopPress`` released, a stuck layer healed) at a time, and ``next_due`` says
when the next layer's reading is due, so a runner can sleep until then instead of polling every tick.
Times are the sensors' own (seconds since the runner's start), as for ``poll``.

``run`` drives a ``SafetySupervisor`` on a ``VirtualClock``: each control period it polls the sensors,
feeds the readings, calls the ``Scheduled`` operator actions that fall due (remote stops,
acknowledgements, releases), steps the supervisor with the robot's cruise speed as commanded and its
speed as measured, and moves the robot: its speed follows ``min(cruise, speed_limit)`` within its
acceleration and deceleration. The ``SafetyRun`` it returns has every tick, the contacts (an actor
touching the robot) and the answers of the scheduled actions.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace

from interfaces.clock import VirtualClock
from robots.safety.readings import (
    LAYERS,
    BumperReading,
    CameraReading,
    Detection,
    EStopReading,
    LidarReading,
    ObjectClass,
    Reading,
    Source,
    UltrasonicReading,
)
from robots.safety.supervisor import SafetyDecision, SafetyLevel, SafetySupervisor


@dataclass(frozen=True, slots=True)
class Actor:
    """A disc in the world: class, start centre (m), velocity (m/s), radius, presence window (s)."""

    kind: ObjectClass
    x: float
    y: float = 0.0
    vx: float = 0.0
    vy: float = 0.0
    radius: float = 0.25
    appear: float = 0.0
    vanish: float = math.inf

    def position(self, t: float) -> tuple[float, float]:
        """Centre at time ``t``."""
        dt = t - self.appear
        return self.x + self.vx * dt, self.y + self.vy * dt

    def present(self, t: float) -> bool:
        """Whether the actor is in the world at ``t``."""
        return self.appear <= t < self.vanish


def approaching(
    kind: ObjectClass, distance: float, speed: float, *, appear: float = 0.0, lateral: float = 0.0
) -> Actor:
    """An actor ``distance`` m ahead of the robot's start walking towards it at ``speed`` m/s."""
    return Actor(kind, distance, lateral, vx=-abs(speed), appear=appear)


@dataclass(frozen=True, slots=True)
class Stuck:
    """The layer repeats its last reading (same value, same stamp) during ``[start, end)``."""

    layer: Source
    start: float
    end: float = math.inf


@dataclass(frozen=True, slots=True)
class Dropout:
    """The layer sends nothing during ``[start, end)``."""

    layer: Source
    start: float
    end: float = math.inf


@dataclass(frozen=True, slots=True)
class FalseDetection:
    """A ghost seen by ``layer`` (lidar, ultrasonic or camera) at ``distance`` m and ``bearing`` rad."""

    layer: Source
    start: float
    end: float
    distance: float
    bearing: float = 0.0
    kind: ObjectClass = ObjectClass.PERSON


@dataclass(frozen=True, slots=True)
class BumperHit:
    """The bumper reports contact during ``[start, end)``."""

    start: float
    end: float


@dataclass(frozen=True, slots=True)
class EStopPress:
    """The e-stop button is held down during ``[start, end)``."""

    start: float
    end: float = math.inf


Fault = Stuck | Dropout | FalseDetection | BumperHit | EStopPress


@dataclass(frozen=True, slots=True)
class SensorSpec:
    """Rates (Hz), sectors, reach (m), field of view (rad) and noise of the simulated layers."""

    lidar_rate: float = 15.0
    ultrasonic_rate: float = 20.0
    camera_rate: float = 10.0
    switch_rate: float = 20.0
    lidar_sectors: int = 16
    ultrasonic_sectors: int = 8
    lidar_reach: float = 20.0
    ultrasonic_reach: float = 2.0
    camera_half_fov: float = math.radians(45.0)
    camera_reach: float = 12.0
    lidar_noise: float = 0.02
    ultrasonic_noise: float = 0.03
    camera_noise: float = 0.05
    camera_miss: float = 0.05

    def __post_init__(self) -> None:
        for name in ("lidar_rate", "ultrasonic_rate", "camera_rate", "switch_rate"):
            if not getattr(self, name) > 0.0:
                raise ValueError(f"SensorSpec.{name} must be > 0 Hz, got {getattr(self, name)!r}")
        if self.lidar_sectors < 1 or self.ultrasonic_sectors < 1:
            raise ValueError("SensorSpec: lidar_sectors and ultrasonic_sectors must be >= 1")
        if not 0.0 <= self.camera_miss < 1.0:
            raise ValueError(f"SensorSpec.camera_miss must be within [0, 1), got {self.camera_miss!r}")

    def period(self, layer: Source) -> float:
        """Seconds between two readings of ``layer``."""
        rate = {
            Source.LIDAR: self.lidar_rate,
            Source.ULTRASONIC: self.ultrasonic_rate,
            Source.CAMERA: self.camera_rate,
        }.get(layer, self.switch_rate)
        return 1.0 / rate


@dataclass(frozen=True, slots=True)
class _Seen:
    """An actor or ghost as a sensor sees it: range between outlines, bearing, class."""

    distance: float
    bearing: float
    kind: ObjectClass


class SimSafetySensors:
    """The five layers of one simulated robot (module docstring)."""

    def __init__(
        self,
        actors: Iterable[Actor] = (),
        faults: Iterable[Fault] = (),
        *,
        seed: int = 0,
        spec: SensorSpec | None = None,
        robot_radius: float = 0.4,
    ) -> None:
        self.actors = tuple(actors)
        self.faults = tuple(faults)
        self.spec = spec or SensorSpec()
        self.robot_radius = robot_radius
        self._rng = random.Random(seed)
        self._due: dict[Source, float] = dict.fromkeys(LAYERS, 0.0)
        self._last: dict[Source, Reading] = {}

    def add_actor(self, actor: Actor) -> None:
        """Put ``actor`` in the world (its ``appear``/``vanish`` on the sensors' time line)."""
        self.actors = (*self.actors, actor)

    def add_fault(self, fault: Fault) -> None:
        """Add ``fault`` (its window on the sensors' time line)."""
        self.faults = (*self.faults, fault)

    def end_faults(self, t: float, match: Callable[[Fault], bool]) -> int:
        """End at ``t`` every fault ``match`` selects whose window is still open then; how many.

        A fault whose window has not started by ``t`` is dropped (it would never happen now).
        """
        kept: list[Fault] = []
        ended = 0
        for fault in self.faults:
            if not match(fault) or fault.end <= t:
                kept.append(fault)
                continue
            ended += 1
            if fault.start < t:
                kept.append(replace(fault, end=t))
        self.faults = tuple(kept)
        return ended

    def next_due(self) -> float:
        """When (sensors' time) the next reading of any layer is due."""
        return min(self._due.values())

    def poll(self, t: float, pose: tuple[float, float, float]) -> list[Reading]:
        """The readings due by time ``t`` with the robot at ``pose`` (x, y, heading), in layer order."""
        out: list[Reading] = []
        for layer in LAYERS:
            if t + 1e-9 < self._due[layer]:
                continue
            period = self.spec.period(layer)
            while self._due[layer] <= t + 1e-9:
                self._due[layer] += period
            reading = self._emit(layer, t, pose)
            if reading is not None:
                out.append(reading)
        return out

    def touching(self, t: float, pose: tuple[float, float, float]) -> bool:
        """Whether any actor touches the robot's outline at ``t``."""
        return any(seen.distance <= 0.0 for seen in self._actors_seen(t, pose))

    # --- readings ---------------------------------------------------------------------------------------

    def _emit(self, layer: Source, t: float, pose: tuple[float, float, float]) -> Reading | None:
        if self._active(Dropout, layer, t):
            return None
        if self._active(Stuck, layer, t):
            return self._last.get(layer)
        reading = self._sense(layer, t, pose)
        self._last[layer] = reading
        return reading

    def _sense(self, layer: Source, t: float, pose: tuple[float, float, float]) -> Reading:
        spec = self.spec
        if layer is Source.LIDAR:
            seen = self._actors_seen(t, pose) + self._ghosts(layer, t)
            ranges = self._sectors(seen, spec.lidar_sectors, spec.lidar_reach, spec.lidar_noise)
            return LidarReading(t, ranges)
        if layer is Source.ULTRASONIC:
            seen = self._actors_seen(t, pose) + self._ghosts(layer, t)
            ranges = self._sectors(
                seen, spec.ultrasonic_sectors, spec.ultrasonic_reach, spec.ultrasonic_noise
            )
            return UltrasonicReading(t, ranges)
        if layer is Source.CAMERA:
            return CameraReading(t, self._detections(t, pose))
        if layer is Source.E_STOP:
            return EStopReading(t, any(_within(f, t) for f in self.faults if isinstance(f, EStopPress)))
        hit = any(_within(f, t) for f in self.faults if isinstance(f, BumperHit))
        return BumperReading(t, hit or self.touching(t, pose))

    def _sectors(self, seen: list[_Seen], sectors: int, reach: float, noise: float) -> tuple[float, ...]:
        width = 2.0 * math.pi / sectors
        nearest = [math.inf] * sectors
        for thing in seen:
            index = int(((thing.bearing + width / 2.0) % (2.0 * math.pi)) // width) % sectors
            nearest[index] = min(nearest[index], thing.distance)
        out = []
        for value in nearest:
            noisy = value + self._rng.gauss(0.0, noise) if math.isfinite(value) else value
            out.append(math.inf if noisy > reach else max(0.0, noisy))
        return tuple(out)

    def _detections(self, t: float, pose: tuple[float, float, float]) -> tuple[Detection, ...]:
        spec = self.spec
        found = []
        for thing in self._actors_seen(t, pose):
            in_view = abs(thing.bearing) <= spec.camera_half_fov and thing.distance <= spec.camera_reach
            missed = self._rng.random() < spec.camera_miss
            noise = self._rng.gauss(0.0, spec.camera_noise * max(thing.distance, 0.1))
            confidence = self._rng.uniform(0.6, 1.0)
            if in_view and not missed:
                found.append(Detection(thing.kind, max(0.0, thing.distance + noise), confidence))
        found += [Detection(g.kind, g.distance, 0.9) for g in self._ghosts(Source.CAMERA, t)]
        return tuple(found)

    def _actors_seen(self, t: float, pose: tuple[float, float, float]) -> list[_Seen]:
        x, y, heading = pose
        seen = []
        for actor in self.actors:
            if not actor.present(t):
                continue
            ax, ay = actor.position(t)
            dx, dy = ax - x, ay - y
            bearing = math.atan2(dy, dx) - heading
            gap = math.hypot(dx, dy) - actor.radius - self.robot_radius
            seen.append(_Seen(gap, math.atan2(math.sin(bearing), math.cos(bearing)), actor.kind))
        return seen

    def _ghosts(self, layer: Source, t: float) -> list[_Seen]:
        return [
            _Seen(f.distance, f.bearing, f.kind)
            for f in self.faults
            if isinstance(f, FalseDetection) and f.layer is layer and _within(f, t)
        ]

    def _active(self, kind: type[Stuck] | type[Dropout], layer: Source, t: float) -> bool:
        return any(isinstance(f, kind) and f.layer is layer and _within(f, t) for f in self.faults)


def _within(fault: Stuck | Dropout | FalseDetection | BumperHit | EStopPress, t: float) -> bool:
    return fault.start <= t < fault.end


# --- the closed loop ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RobotSpec:
    """The simulated robot: cruise speed (m/s), acceleration and deceleration (m/s²), control period (s)."""

    cruise: float = 1.2
    acceleration: float = 0.8
    deceleration: float = 1.5
    period: float = 0.02

    def __post_init__(self) -> None:
        for name in ("cruise", "acceleration", "deceleration", "period"):
            if not getattr(self, name) > 0.0:
                raise ValueError(f"RobotSpec.{name} must be > 0, got {getattr(self, name)!r}")


@dataclass(frozen=True, slots=True)
class Scheduled:
    """An operator action at time ``at``: ``action(supervisor, now)``; its answer is kept by ``label``."""

    at: float
    label: str
    action: Callable[[SafetySupervisor, float], object]


@dataclass(frozen=True, slots=True)
class Tick:
    """One control period: time, robot position and speed, and the supervisor's decision."""

    t: float
    x: float
    speed: float
    decision: SafetyDecision


@dataclass
class SafetyRun:
    """What ``run`` saw: every tick, the times an actor touched the robot, the scheduled answers."""

    ticks: list[Tick] = field(default_factory=list)
    contacts: list[float] = field(default_factory=list)
    answers: dict[str, object] = field(default_factory=dict)

    def first(self, level: SafetyLevel, *, after: float = -math.inf) -> float | None:
        """The first tick time (after ``after``) at which the decision's level was ``level``."""
        return next((k.t for k in self.ticks if k.t > after and k.decision.level is level), None)

    def at(self, t: float) -> Tick:
        """The last tick at or before ``t``."""
        earlier = [k for k in self.ticks if k.t <= t + 1e-9]
        if not earlier:
            raise ValueError(f"SafetyRun.at: no tick at or before {t}")
        return earlier[-1]


def run(
    supervisor: SafetySupervisor,
    sensors: SimSafetySensors,
    clock: VirtualClock,
    *,
    duration: float,
    robot: RobotSpec | None = None,
    events: Iterable[Scheduled] = (),
) -> SafetyRun:
    """Drive ``supervisor`` with ``sensors`` for ``duration`` seconds of ``clock`` (module docstring)."""
    spec = robot or RobotSpec()
    pending = sorted(events, key=lambda e: e.at)
    out = SafetyRun()
    x = speed = 0.0
    start = clock.monotonic()
    steps = math.ceil(duration / spec.period - 1e-9)
    for _ in range(steps):
        now = clock.monotonic()
        t = now - start
        pose = (x, 0.0, 0.0)
        for reading in sensors.poll(t, pose):
            supervisor.observe(_shift(reading, start), now)
        while pending and pending[0].at <= t + 1e-9:
            event = pending.pop(0)
            out.answers[event.label] = event.action(supervisor, now)
        decision = supervisor.step(now, commanded=spec.cruise, measured=speed)
        out.ticks.append(Tick(t, x, speed, decision))
        if sensors.touching(t, pose):
            out.contacts.append(t)
        speed = _follow(speed, min(spec.cruise, decision.speed_limit), spec)
        x += speed * spec.period
        clock.advance(spec.period)
    return out


def _follow(speed: float, target: float, spec: RobotSpec) -> float:
    """The speed one period later, moving towards ``target`` within the acceleration limits."""
    if target >= speed:
        return min(target, speed + spec.acceleration * spec.period)
    return max(target, speed - spec.deceleration * spec.period)


def _shift(reading: Reading, offset: float) -> Reading:
    """The reading with its stamp moved from simulation time to the clock's monotonic time."""
    return reading if offset == 0.0 else replace(reading, stamp=reading.stamp + offset)
