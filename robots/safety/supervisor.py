"""The five-layer safety supervisor: readings, stops and acknowledgements in; a speed limit out.

Pure: no I/O, no clock reads, no sleeping. Time comes as arguments in seconds of the robot's
monotonic clock (``Clock.monotonic()``); readings carry their own ``stamp`` on the same time line.
The adapter feeds every reading (``observe``), every remote stop/release and acknowledgement, and calls
``step(now, commanded=, measured=)`` once per control tick; the ``SafetyDecision`` it returns caps
whatever drives the vehicle (navigation or teleop, ``robots.safety.teleop.clamp_velocity``).

**Levels** (the strongest reason wins; the speed limit is the lowest limit of all reasons)::

    EMERGENCY_STOP   limit 0   a latch is set (e-stop button, bumper, operator stop, stop-all, building)
    PROTECTIVE_STOP  limit 0   protective field, near range or camera stop zone; >= 2 silent layers;
                               the vehicle does not brake as the fields assume (overspeed)
    SLOW             limit     warning field / near-range slow band / one silent layer: ``slow_speed``;
                               camera slow zone: that class's ``slow_speed``
    NORMAL           limit     ``max_speed``

**Latches** hold until cleared, whatever the sensors say afterwards:

=================  ========================  ========================================  ==============
latch              set by                    cleared by                                VDA 5050 eStop
=================  ========================  ========================================  ==============
``E_STOP``         button pressed            ``acknowledge`` on site (remotely only    MANUAL
                                             if ``acks.e_stop_remote_ack``), once the
                                             button reads released and its layer is
                                             not silent
``BUMPER``         bumper contact            ``acknowledge`` on site or by a remote    REMOTE
                                             operator (``acks.bumper_remote_ack``),
                                             once no contact and its layer not silent
``OPERATOR_STOP``  ``remote_stop`` (console  ``release`` by a control-centre role in    REMOTE
                   e-stop for this robot)    ``acks.release_roles``
``FLEET_STOP``     ``remote_stop`` (stop     same                                      REMOTE
                   all)
``BUILDING_STOP``  ``building_alarm(True)``  ``release`` by a role in                  REMOTE
                   (fire alarm) or           ``acks.building_release_roles``, once
                   ``remote_stop``           the alarm of that building is off
=================  ========================  ========================================  ==============

A stop is never refused, whoever sends it (anyone may stop a robot); clearing is checked. Only people
clear (``Party.may_act``: operator or admin roles; ``SYSTEM`` never). A remote stop is never cleared
on site: the control centre stopped the robot for a reason the person at the vehicle may not see.
The button's rule follows ISO 13850 (the reset is a deliberate act, and does not by itself restart:
the vehicle moves again only when commanded). ``acknowledge`` clears every local latch the party may
clear and says why it refused the others (``AckResult``).

**VDA 5050 ``safetyState.eStop``** says who must act: MANUAL when a latch needs somebody at the vehicle
(the button, unless remote acknowledgement is allowed); otherwise REMOTE when a latch can be cleared
from the control centre (bumper, remote stops); otherwise AUTOACK while a self-releasing protective
stop holds (VDA 5050 names protective fields as AUTOACK's example); otherwise NONE. ``fieldViolation``
is true while a protective field, the near-range stop band or a camera stop zone is violated.

**Self-releasing conditions** (fields, silent layers, overspeed) end by themselves, but only after
``hold_off`` seconds without being seen, so a flickering detection does not make the vehicle jerk.

**Fields** are evaluated on the sectors facing the direction of travel — of the commanded and of the
measured speed, both when they disagree — within ``fields.half_angle``; standing still, every sector.
Sizes: ``robots.safety.fields``.

**Silent layers.** A layer is silent when its newest reading is older than its heartbeat timeout, or
when it has not reported yet (so a robot starting up stands until its sensors speak). The last reading
of a silent layer still counts (it can only add reasons).

**Scope.** This is the software channel and the reporting, not a certified safety function: on a real
vehicle the e-stop button and bumpers must also cut motor power through a safety-rated chain, and the
safety scanner must stop the base on its own (ISO 13849 / ISO 3691-4). The supervisor adds the layers
hardware cannot fuse (camera classes, remote and building stops, heartbeats) and makes every stop
visible to the fleet.

**Speed monitor.** After the limit drops, the measured speed must follow the braking curve the fields
assume (``fields.braking_curve``: hold for ``reaction_time``, then fall at ``braking_deceleration``)
within ``overspeed_tolerance``; if not, the base is not braking as guaranteed: PROTECTIVE_STOP and a
FATAL ``safetyOverspeed`` error.

**Errors** (``SafetyDecision.errors``; ``robots.safety.report`` turns them into VDA 5050 ``errors``):
one FATAL error per latch (``emergencyStop``, ``bumperContact``, ``operatorStop``, ``fleetStop``,
``buildingStop``), one WARNING ``safetySensorSilent`` per silent layer, a FATAL ``safetySensorsSilent``
when silent layers stop the vehicle, a FATAL ``safetyOverspeed``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, replace
from enum import StrEnum

from interfaces.vda5050 import ErrorLevel, EStop
from robots.safety.config import SafetyConfig
from robots.safety.fields import FieldConfig, braking_curve, protective_distance, warning_distance
from robots.safety.parties import Party, PartyKind
from robots.safety.readings import (
    LAYERS,
    BumperReading,
    CameraReading,
    EStopReading,
    LidarReading,
    Reading,
    Source,
    UltrasonicReading,
    sector_centre,
)


class SafetyLevel(StrEnum):
    """How much the supervisor restricts the vehicle, weakest first."""

    NORMAL = "NORMAL"
    SLOW = "SLOW"
    PROTECTIVE_STOP = "PROTECTIVE_STOP"
    EMERGENCY_STOP = "EMERGENCY_STOP"

    @property
    def rank(self) -> int:
        """0 for NORMAL up to 3 for EMERGENCY_STOP."""
        return _RANK[self]


_RANK = {level: i for i, level in enumerate(SafetyLevel)}


class LatchKind(StrEnum):
    """A stop that holds until somebody clears it."""

    E_STOP = "eStop"
    BUMPER = "bumper"
    OPERATOR_STOP = "operatorStop"
    FLEET_STOP = "fleetStop"
    BUILDING_STOP = "buildingStop"

    @property
    def remote(self) -> bool:
        """Set and released from afar (``remote_stop``/``release``), not by the vehicle's sensors."""
        return self in _REMOTE_LATCHES


_REMOTE_LATCHES = frozenset({LatchKind.OPERATOR_STOP, LatchKind.FLEET_STOP, LatchKind.BUILDING_STOP})


class ReasonKind(StrEnum):
    """Why the supervisor restricts the vehicle (one entry of ``SafetyDecision.reasons``)."""

    E_STOP_LATCHED = "eStopLatched"
    BUMPER_LATCHED = "bumperLatched"
    OPERATOR_STOP = "operatorStop"
    FLEET_STOP = "fleetStop"
    BUILDING_STOP = "buildingStop"
    PROTECTIVE_FIELD = "protectiveField"
    WARNING_FIELD = "warningField"
    NEAR_RANGE_STOP = "nearRangeStop"
    NEAR_RANGE_SLOW = "nearRangeSlow"
    TARGET_STOP = "targetStop"
    TARGET_SLOW = "targetSlow"
    LAYER_SILENT = "layerSilent"
    LAYERS_SILENT = "layersSilent"
    OVERSPEED = "overspeed"


_LATCH_REASON = {
    LatchKind.E_STOP: (Source.E_STOP, ReasonKind.E_STOP_LATCHED),
    LatchKind.BUMPER: (Source.BUMPER, ReasonKind.BUMPER_LATCHED),
    LatchKind.OPERATOR_STOP: (Source.REMOTE, ReasonKind.OPERATOR_STOP),
    LatchKind.FLEET_STOP: (Source.REMOTE, ReasonKind.FLEET_STOP),
    LatchKind.BUILDING_STOP: (Source.REMOTE, ReasonKind.BUILDING_STOP),
}
_LATCH_ERROR = {
    LatchKind.E_STOP: "emergencyStop",
    LatchKind.BUMPER: "bumperContact",
    LatchKind.OPERATOR_STOP: "operatorStop",
    LatchKind.FLEET_STOP: "fleetStop",
    LatchKind.BUILDING_STOP: "buildingStop",
}
FIELD_VIOLATIONS = frozenset(
    {ReasonKind.PROTECTIVE_FIELD, ReasonKind.NEAR_RANGE_STOP, ReasonKind.TARGET_STOP}
)
"""The reasons that make VDA 5050 ``fieldViolation`` true."""

SENSOR_SILENT = "safetySensorSilent"
SENSORS_SILENT = "safetySensorsSilent"
OVERSPEED = "safetyOverspeed"


@dataclass(frozen=True, slots=True)
class Reason:
    """One reason to restrict: its source, kind, level, the limit it imposes and a readable detail.

    ``subject`` tells reasons of one kind apart (the target class, the silent layer, the building);
    ``held`` marks a self-releasing reason no longer seen but still within its hold-off.
    """

    source: Source
    kind: ReasonKind
    level: SafetyLevel
    limit: float
    detail: str
    subject: str = ""
    held: bool = False

    @property
    def key(self) -> tuple[Source, ReasonKind, str]:
        """What identifies the condition across steps (for the hold-off)."""
        return (self.source, self.kind, self.subject)


@dataclass(frozen=True, slots=True)
class Latch:
    """A latched stop: its kind, when it was set, its scope (the building), who or what set it."""

    kind: LatchKind
    since: float
    scope: str = ""
    by: str = ""
    note: str = ""


@dataclass(frozen=True, slots=True)
class ReportedError:
    """An error for VDA 5050 ``state.errors``: type, level, description and ``(key, value)`` references."""

    error_type: str
    level: ErrorLevel
    description: str
    references: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, slots=True)
class LayerStatus:
    """One layer now: how old its newest reading is (None: never heard), whether it is silent, the
    strongest level it causes, one line about it and key/values for diagnostics."""

    layer: Source
    age: float | None
    silent: bool
    level: SafetyLevel
    message: str
    values: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, slots=True)
class SafetyDecision:
    """What the supervisor decided at ``time`` (see the module docstring for every field's rule)."""

    time: float
    level: SafetyLevel
    speed_limit: float
    reasons: tuple[Reason, ...]
    e_stop: EStop
    field_violation: bool
    errors: tuple[ReportedError, ...]
    latches: tuple[Latch, ...]
    silent: tuple[Source, ...]
    layers: tuple[LayerStatus, ...]

    @property
    def stop(self) -> bool:
        """Whether the vehicle must stand (limit 0)."""
        return self.speed_limit <= 0.0

    def layer(self, source: Source) -> LayerStatus:
        """The status of one layer."""
        for status in self.layers:
            if status.layer is source:
                return status
        raise KeyError(source)


@dataclass(frozen=True, slots=True)
class AckResult:
    """The answer to ``acknowledge`` or ``release`` at time ``at``: the latches cleared, and those
    refused with why."""

    at: float
    cleared: tuple[Latch, ...] = ()
    refused: tuple[tuple[Latch, str], ...] = ()

    @property
    def ok(self) -> bool:
        """Something was cleared and nothing refused."""
        return bool(self.cleared) and not self.refused

    @property
    def message(self) -> str:
        """One line for a log or an HTTP answer."""
        if not self.cleared and not self.refused:
            return "nothing to clear"
        parts = [f"cleared {latch.kind.value}" for latch in self.cleared]
        parts += [f"refused {latch.kind.value}: {why}" for latch, why in self.refused]
        return "; ".join(parts)


class SafetySupervisor:
    """Fuses the five layers and the remote stops into a ``SafetyDecision`` (module docstring)."""

    def __init__(self, config: SafetyConfig | None = None) -> None:
        self.config = config or SafetyConfig()
        self._latest: dict[Source, Reading] = {}
        self._refused: dict[Source, int] = dict.fromkeys(LAYERS, 0)
        self._latches: dict[tuple[LatchKind, str], Latch] = {}
        self._alarms: set[str] = set()
        self._held: dict[tuple[Source, ReasonKind, str], tuple[Reason, float]] = {}
        self._monitor = _SpeedMonitor(self.config.fields, self.config.max_speed)
        self._last_step: float | None = None
        self.last_decision: SafetyDecision | None = None

    # --- inputs -----------------------------------------------------------------------------------------

    def observe(self, reading: Reading, now: float) -> bool:
        """Take a reading; False (and counted) if it is older than the layer's newest or from the future.

        An e-stop reading that says pressed sets the ``E_STOP`` latch; a bumper contact the ``BUMPER``
        latch (both at the reading's stamp).
        """
        layer = reading.layer
        newest = self._latest.get(layer)
        if reading.stamp > now + self.config.future_tolerance or (
            newest is not None and reading.stamp < newest.stamp
        ):
            self._refused[layer] += 1
            return False
        self._latest[layer] = reading
        if isinstance(reading, EStopReading) and reading.pressed:
            self._latch(Latch(LatchKind.E_STOP, reading.stamp, by="button", note="e-stop button pressed"))
        elif isinstance(reading, BumperReading) and reading.contact:
            self._latch(Latch(LatchKind.BUMPER, reading.stamp, by="bumper", note="bumper contact"))
        return True

    def remote_stop(
        self, kind: LatchKind, by: Party, now: float, *, scope: str = "", note: str = ""
    ) -> Latch:
        """Latch a remote stop (never refused); a second stop of the same kind and scope keeps the first."""
        if not kind.remote:
            raise ValueError(f"remote_stop: {kind.value} is set by the vehicle's own sensors, not remotely")
        return self._latch(Latch(kind, now, scope, str(by), note or f"{kind.value} by {by}"))

    def building_alarm(self, building: str, active: bool, now: float, *, by: Party | None = None) -> None:
        """The fire alarm of ``building`` went on (latch a building stop) or off (it may now be released)."""
        if active:
            self._alarms.add(building)
            who = str(by) if by is not None else "fire alarm"
            self._latch(Latch(LatchKind.BUILDING_STOP, now, building, who, f"fire alarm in {building}"))
        else:
            self._alarms.discard(building)

    def release(self, kind: LatchKind, by: Party, now: float, *, scope: str | None = None) -> AckResult:
        """Release remote stops of ``kind`` (of ``scope`` only, if given) as ``by``; says what it refused."""
        if not kind.remote:
            raise ValueError(f"release: {kind.value} is acknowledged (acknowledge), not released")
        cleared: list[Latch] = []
        refused: list[tuple[Latch, str]] = []
        for key, latch in list(self._latches.items()):
            if latch.kind is not kind or (scope is not None and latch.scope != scope):
                continue
            why = self._release_refusal(latch, by)
            if why is None:
                del self._latches[key]
                cleared.append(latch)
            else:
                refused.append((latch, why))
        return AckResult(now, tuple(cleared), tuple(refused))

    def acknowledge(self, by: Party, now: float) -> AckResult:
        """Acknowledge the e-stop and bumper latches as ``by``: clears each one ``by`` may clear now."""
        cleared: list[Latch] = []
        refused: list[tuple[Latch, str]] = []
        for key, latch in list(self._latches.items()):
            if latch.kind.remote:
                continue
            why = self._ack_refusal(latch, by, now)
            if why is None:
                del self._latches[key]
                cleared.append(latch)
            else:
                refused.append((latch, why))
        return AckResult(now, tuple(cleared), tuple(refused))

    @property
    def latches(self) -> tuple[Latch, ...]:
        """The latched stops, oldest first."""
        return tuple(sorted(self._latches.values(), key=lambda latch: latch.since))

    # --- the decision -------------------------------------------------------------------------------------

    def step(self, now: float, *, commanded: float = 0.0, measured: float = 0.0) -> SafetyDecision:
        """Decide for time ``now`` given the commanded and measured forward speeds (m/s, signed).

        ``now`` must not go backwards between steps.
        """
        for name, value in (("now", now), ("commanded", commanded), ("measured", measured)):
            if not math.isfinite(value):
                raise ValueError(f"SafetySupervisor.step: {name} must be finite, got {value!r}")
        if self._last_step is not None and now < self._last_step:
            raise ValueError(f"SafetySupervisor.step: time went backwards ({now} < {self._last_step})")
        self._last_step = now
        cfg = self.config
        speed = max(abs(commanded), abs(measured))
        headings = self._headings(commanded, measured)
        ages = {layer: self._age(layer, now) for layer in LAYERS}
        silent = tuple(layer for layer in LAYERS if _silent(ages[layer], cfg.heartbeats.timeout(layer)))
        values: dict[Source, tuple[tuple[str, str], ...]] = {}
        live: list[Reason] = []
        for reasons, layer, kv in (
            self._lidar(speed, headings),
            self._near_range(headings),
            self._camera(),
        ):
            live += reasons
            values[layer] = kv
        live += self._silence(silent) + self._overspeed(now, measured)
        reasons = self._latch_reasons() + self._hold(now, live)
        reasons.sort(key=lambda r: (-r.level.rank, r.source.value, r.kind.value, r.subject))
        level = max((r.level for r in reasons), key=lambda lv: lv.rank, default=SafetyLevel.NORMAL)
        limit = min([cfg.max_speed, *(r.limit for r in reasons)])
        self._monitor.command(now, limit)
        decision = SafetyDecision(
            time=now,
            level=level,
            speed_limit=limit,
            reasons=tuple(reasons),
            e_stop=self._vda_e_stop(level),
            field_violation=any(r.kind in FIELD_VIOLATIONS for r in reasons),
            errors=self._errors(reasons),
            latches=self.latches,
            silent=silent,
            layers=self._layer_statuses(reasons, ages, silent, values),
        )
        self.last_decision = decision
        return decision

    # --- latches ------------------------------------------------------------------------------------------

    def _latch(self, latch: Latch) -> Latch:
        return self._latches.setdefault((latch.kind, latch.scope), latch)

    def _ack_refusal(self, latch: Latch, by: Party, now: float) -> str | None:
        """Why ``by`` may not acknowledge ``latch`` now, or None if it may."""
        acks = self.config.acks
        if not by.may_act:
            return f"{by} may not acknowledge"
        if by.kind is PartyKind.CONTROL_CENTRE:
            remote_ok = acks.e_stop_remote_ack if latch.kind is LatchKind.E_STOP else acks.bumper_remote_ack
            if not remote_ok:
                return f"{latch.kind.value} must be acknowledged on site"
            if by.role not in acks.remote_ack_roles:
                return f"role {by.role.value} may not acknowledge remotely"
        layer = Source.E_STOP if latch.kind is LatchKind.E_STOP else Source.BUMPER
        reading = self._latest.get(layer)
        if _silent(self._age(layer, now), self.config.heartbeats.timeout(layer)) or reading is None:
            return f"the {layer.value} layer is silent: its state is unknown"
        if isinstance(reading, EStopReading) and reading.pressed:
            return "the e-stop button is still pressed"
        if isinstance(reading, BumperReading) and reading.contact:
            return "the bumper is still in contact"
        return None

    def _release_refusal(self, latch: Latch, by: Party) -> str | None:
        """Why ``by`` may not release the remote stop ``latch``, or None if it may."""
        acks = self.config.acks
        if by.kind is not PartyKind.CONTROL_CENTRE or not by.may_act:
            return f"{by} may not release a remote stop (the control centre releases it)"
        roles = acks.building_release_roles if latch.kind is LatchKind.BUILDING_STOP else acks.release_roles
        if by.role not in roles:
            return f"role {by.role.value} may not release {latch.kind.value}"
        if latch.kind is LatchKind.BUILDING_STOP and latch.scope in self._alarms:
            return f"the fire alarm in {latch.scope or 'the building'} is still on"
        return None

    def _latch_reasons(self) -> list[Reason]:
        reasons = []
        for latch in self.latches:
            source, kind = _LATCH_REASON[latch.kind]
            detail = latch.note
            if latch.kind is LatchKind.E_STOP:
                pressed = isinstance(r := self._latest.get(Source.E_STOP), EStopReading) and r.pressed
                detail = "e-stop button pressed" if pressed else "e-stop released, awaiting acknowledgement"
            elif latch.kind is LatchKind.BUMPER:
                touching = isinstance(r := self._latest.get(Source.BUMPER), BumperReading) and r.contact
                detail = "bumper in contact" if touching else "bumper contact, awaiting acknowledgement"
            reasons.append(Reason(source, kind, SafetyLevel.EMERGENCY_STOP, 0.0, detail, latch.scope))
        return reasons

    def _vda_e_stop(self, level: SafetyLevel) -> EStop:
        """MANUAL / REMOTE / AUTOACK / NONE (module docstring)."""
        acks = self.config.acks
        needs_site = {
            LatchKind.E_STOP: not acks.e_stop_remote_ack,
            LatchKind.BUMPER: not acks.bumper_remote_ack,
        }
        kinds = {latch.kind for latch in self._latches.values()}
        if any(needs_site.get(kind, False) for kind in kinds):
            return EStop.MANUAL
        if kinds:
            return EStop.REMOTE
        if level is SafetyLevel.PROTECTIVE_STOP:
            return EStop.AUTOACK
        return EStop.NONE

    # --- self-releasing conditions ------------------------------------------------------------------------

    def _headings(self, commanded: float, measured: float) -> tuple[float, ...]:
        """Directions of travel (0 forward, π backward) of the commanded and measured speed; () standing."""
        still = self.config.standstill_speed
        return tuple(sorted({0.0 if v > 0 else math.pi for v in (commanded, measured) if abs(v) > still}))

    def _facing(self, ranges: tuple[float, ...], headings: tuple[float, ...]) -> float:
        """The nearest range among the sectors facing a direction of travel (all sectors if standing)."""
        n = len(ranges)
        if n == 1 or not headings:
            return min(ranges)
        reach = self.config.fields.half_angle + math.pi / n
        return min(
            (
                value
                for i, value in enumerate(ranges)
                if any(_angle_between(sector_centre(i, n), h) <= reach for h in headings)
            ),
            default=math.inf,
        )

    def _lidar(
        self, speed: float, headings: tuple[float, ...]
    ) -> tuple[list[Reason], Source, tuple[tuple[str, str], ...]]:
        cfg, fields = self.config, self.config.fields
        protective, warning = protective_distance(speed, fields), warning_distance(speed, fields)
        kv = [("protective_m", f"{protective:.2f}"), ("warning_m", f"{warning:.2f}")]
        reading = self._latest.get(Source.LIDAR)
        reasons: list[Reason] = []
        if isinstance(reading, LidarReading):
            nearest = self._facing(reading.ranges, headings)
            kv.insert(0, ("nearest_m", _metres(nearest)))
            where = f"obstacle at {nearest:.2f} m"
            if nearest <= protective:
                reasons.append(
                    Reason(
                        Source.LIDAR,
                        ReasonKind.PROTECTIVE_FIELD,
                        SafetyLevel.PROTECTIVE_STOP,
                        0.0,
                        f"{where} inside the protective field ({protective:.2f} m)",
                    )
                )
            elif nearest <= warning:
                reasons.append(
                    Reason(
                        Source.LIDAR,
                        ReasonKind.WARNING_FIELD,
                        SafetyLevel.SLOW,
                        cfg.slow_speed,
                        f"{where} inside the warning field ({warning:.2f} m)",
                    )
                )
        return reasons, Source.LIDAR, tuple(kv)

    def _near_range(
        self, headings: tuple[float, ...]
    ) -> tuple[list[Reason], Source, tuple[tuple[str, str], ...]]:
        near = self.config.near_range
        reading = self._latest.get(Source.ULTRASONIC)
        reasons: list[Reason] = []
        kv: list[tuple[str, str]] = [
            ("stop_m", f"{near.stop_range:.2f}"),
            ("slow_m", f"{near.slow_range:.2f}"),
        ]
        if isinstance(reading, UltrasonicReading):
            nearest = self._facing(reading.ranges, headings)
            kv.insert(0, ("nearest_m", _metres(nearest)))
            if nearest <= near.stop_range:
                reasons.append(
                    Reason(
                        Source.ULTRASONIC,
                        ReasonKind.NEAR_RANGE_STOP,
                        SafetyLevel.PROTECTIVE_STOP,
                        0.0,
                        f"echo at {nearest:.2f} m within the stop range ({near.stop_range:.2f} m)",
                    )
                )
            elif nearest <= near.slow_range:
                reasons.append(
                    Reason(
                        Source.ULTRASONIC,
                        ReasonKind.NEAR_RANGE_SLOW,
                        SafetyLevel.SLOW,
                        self.config.slow_speed,
                        f"echo at {nearest:.2f} m within the slow range ({near.slow_range:.2f} m)",
                    )
                )
        return reasons, Source.ULTRASONIC, tuple(kv)

    def _camera(self) -> tuple[list[Reason], Source, tuple[tuple[str, str], ...]]:
        camera = self.config.camera
        reading = self._latest.get(Source.CAMERA)
        reasons: list[Reason] = []
        kv: list[tuple[str, str]] = []
        if not isinstance(reading, CameraReading):
            return reasons, Source.CAMERA, ()
        for kind, rule in camera.rules():
            nearest = min(
                (
                    d.distance
                    for d in reading.detections
                    if d.kind is kind and d.confidence >= camera.min_confidence
                ),
                default=math.inf,
            )
            kv.append((f"nearest_{kind.value}_m", _metres(nearest)))
            if nearest <= rule.stop_distance:
                reasons.append(
                    Reason(
                        Source.CAMERA,
                        ReasonKind.TARGET_STOP,
                        SafetyLevel.PROTECTIVE_STOP,
                        0.0,
                        f"{kind.value} at {nearest:.2f} m within {rule.stop_distance:.2f} m",
                        kind.value,
                    )
                )
            elif nearest <= rule.slow_distance:
                reasons.append(
                    Reason(
                        Source.CAMERA,
                        ReasonKind.TARGET_SLOW,
                        SafetyLevel.SLOW,
                        rule.slow_speed,
                        f"{kind.value} at {nearest:.2f} m within {rule.slow_distance:.2f} m",
                        kind.value,
                    )
                )
        return reasons, Source.CAMERA, tuple(kv)

    def _silence(self, silent: tuple[Source, ...]) -> list[Reason]:
        cfg = self.config
        reasons = [
            Reason(
                layer,
                ReasonKind.LAYER_SILENT,
                SafetyLevel.SLOW,
                cfg.slow_speed,
                f"no {layer.value} reading within {cfg.heartbeats.timeout(layer):.2f} s",
                layer.value,
            )
            for layer in silent
        ]
        if len(silent) >= cfg.silent_stop_count:
            names = ", ".join(layer.value for layer in silent)
            reasons.append(
                Reason(
                    Source.SUPERVISOR,
                    ReasonKind.LAYERS_SILENT,
                    SafetyLevel.PROTECTIVE_STOP,
                    0.0,
                    f"{len(silent)} layers silent ({names})",
                )
            )
        return reasons

    def _overspeed(self, now: float, measured: float) -> list[Reason]:
        """A reason if the measured speed is above the braking curve of the limits given so far."""
        allowed = self._monitor.allowed(now)
        if abs(measured) <= allowed + self.config.overspeed_tolerance:
            return []
        detail = f"measured {abs(measured):.2f} m/s above the braking curve ({allowed:.2f} m/s)"
        return [Reason(Source.SUPERVISOR, ReasonKind.OVERSPEED, SafetyLevel.PROTECTIVE_STOP, 0.0, detail)]

    def _hold(self, now: float, live: Iterable[Reason]) -> list[Reason]:
        """The live reasons plus those seen within the last ``hold_off`` seconds (marked ``held``)."""
        for reason in live:
            self._held[reason.key] = (reason, now)
        out: list[Reason] = []
        for key, (reason, seen) in list(self._held.items()):
            if seen == now:
                out.append(reason)
            elif now - seen < self.config.hold_off:
                out.append(replace(reason, held=True))
            else:
                del self._held[key]
        return out

    # --- reporting ------------------------------------------------------------------------------------

    def _errors(self, reasons: list[Reason]) -> tuple[ReportedError, ...]:
        errors = [_latch_error(latch) for latch in self.latches]
        for r in reasons:
            if r.kind is ReasonKind.LAYER_SILENT:
                errors.append(
                    ReportedError(SENSOR_SILENT, ErrorLevel.WARNING, r.detail, (("layer", r.subject),))
                )
            elif r.kind is ReasonKind.LAYERS_SILENT:
                errors.append(ReportedError(SENSORS_SILENT, ErrorLevel.FATAL, r.detail))
            elif r.kind is ReasonKind.OVERSPEED:
                errors.append(
                    ReportedError(
                        OVERSPEED, ErrorLevel.FATAL, f"the base does not brake as assumed: {r.detail}"
                    )
                )
        return tuple(errors)

    def _layer_statuses(
        self,
        reasons: list[Reason],
        ages: dict[Source, float | None],
        silent: tuple[Source, ...],
        values: dict[Source, tuple[tuple[str, str], ...]],
    ) -> tuple[LayerStatus, ...]:
        statuses = []
        for layer in LAYERS:
            own = [r for r in reasons if r.source is layer]
            level = max((r.level for r in own), key=lambda lv: lv.rank, default=SafetyLevel.NORMAL)
            message = _layer_message(own, ages[layer], layer in silent)
            kv = (
                ("age_s", "never" if ages[layer] is None else f"{ages[layer]:.3f}"),
                *(values[layer] if layer in values else self._switch_values(layer)),
                ("refused_readings", str(self._refused[layer])),
            )
            statuses.append(LayerStatus(layer, ages[layer], layer in silent, level, message, kv))
        return tuple(statuses)

    def _switch_values(self, layer: Source) -> tuple[tuple[str, str], ...]:
        """Key/values of the e-stop and bumper layers: the switch now and whether it is latched."""
        reading = self._latest.get(layer)
        kind = LatchKind.E_STOP if layer is Source.E_STOP else LatchKind.BUMPER
        latched = any(latch.kind is kind for latch in self._latches.values())
        if isinstance(reading, EStopReading):
            state = "pressed" if reading.pressed else "released"
        elif isinstance(reading, BumperReading):
            state = "contact" if reading.contact else "free"
        else:
            state = "unknown"
        return (("state", state), ("latched", "true" if latched else "false"))

    def _age(self, layer: Source, now: float) -> float | None:
        reading = self._latest.get(layer)
        return None if reading is None else max(0.0, now - reading.stamp)


class _SpeedMonitor:
    """The speed the vehicle may still have: the limit, or the braking curve down to it after a drop."""

    def __init__(self, fields: FieldConfig, limit: float) -> None:
        self._fields = fields
        self._limit = limit
        self._ramp: tuple[float, float] | None = None  # (when the limit dropped, the speed allowed then)

    def allowed(self, now: float) -> float:
        if self._ramp is None:
            return self._limit
        since, v0 = self._ramp
        return max(self._limit, braking_curve(v0, now - since, self._fields))

    def command(self, now: float, limit: float) -> None:
        current = self.allowed(now)
        self._limit = limit
        if limit >= current:
            self._ramp = None
        elif self._ramp is None:
            self._ramp = (now, current)


def _layer_message(own: list[Reason], age: float | None, silent: bool) -> str:
    """One line about a layer: its silence first (if silent), then what it causes, else "clear"."""
    details = [r.detail for r in own if not (silent and r.kind is ReasonKind.LAYER_SILENT)]
    if silent:
        details.insert(0, "never heard" if age is None else f"silent for {age:.2f} s")
    return "; ".join(details) or "clear"


def _silent(age: float | None, timeout: float) -> bool:
    return age is None or age > timeout


def _angle_between(a: float, b: float) -> float:
    """The absolute difference of two bearings, within [0, π]."""
    d = (a - b) % (2.0 * math.pi)
    return min(d, 2.0 * math.pi - d)


def _metres(value: float) -> str:
    return "inf" if math.isinf(value) else f"{value:.2f}"


def _latch_error(latch: Latch) -> ReportedError:
    refs: list[tuple[str, str]] = [("latch", latch.kind.value)]
    if latch.scope:
        refs.append(("building", latch.scope))
    if latch.by:
        refs.append(("by", latch.by))
    return ReportedError(_LATCH_ERROR[latch.kind], ErrorLevel.FATAL, latch.note, tuple(refs))
