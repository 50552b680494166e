"""The safety supervisor in the agent: control loop, safety instant actions, teleop, state, diagnostics.

``AgentSafety`` joins ``robots.safety.SafetyController`` (pure) to a ``Vehicle`` and its driver:

* **Control loop.** Every ``period`` s of the agent's clock, and at once after every safety instant
  action, one ``SafetyController.tick``. In AUTOMATIC navigation runs as goals (``driver.navigate``),
  so its velocity cannot be capped command by command: while the decision stops the vehicle the agent
  *holds* the vehicle (the drive in progress is cancelled, which cancels the goal and stops the base)
  and publishes a zero velocity every period (``driver.send_velocity(0, 0)``); once the stop ends the
  drive resumes. In SEMIAUTOMATIC and MANUAL the vehicle is held (no order runs) and the teleop gate's
  output is sent every period (zero when no fresh command came for the dead-man time, 300 ms).
  ``send_velocity`` is an optional driver capability (``RosDriver``: ``cmd_vel``; ``SimDriver``:
  moves the simulated robot); without it teleop drives nothing and a stop only holds the vehicle.
  A driver that can cap its own drives (``SpeedLimitDriver``: ``SimDriver.limit_speed``, and
  ``RosDriver.limit_speed`` on the base's ``speed_limit`` topic) is
  given the decision's speed limit every tick, so a SLOW decision slows a drive in AUTOMATIC instead of
  ending, through the speed monitor, in an overspeed stop; without it SLOW cannot slow a goal.
* **Zones.** ``SafetySettings.zones`` (rectangles on the map with a speed cap) are the teleop gate's
  zone caps: the lowest cap of the zones containing the robot applies; outside every zone, none.
* **Readings.** Layers are of three kinds (``SafetySettings``): *readout* layers are read from the
  driver's ``Readout`` each tick — ``e_stop`` from ``Readout.e_stop`` and ``lidar`` from
  ``Readout.field_violation`` (the base's own scanner: violated = every sector at 0 m, else clear);
  *external* layers come from a sensor adapter through ``observe`` (their heartbeat applies; the
  simulator's is ``sim.safety_feed.SimSafetyFeed``, which feeds all five from the driver's pose);
  every other layer is *absent* on this robot and is fed a clear reading each tick, so a robot without
  that sensor is not held in a protective stop for silence. Absent is a statement about the vehicle,
  made in its configuration; it never hides a sensor that exists (make it external instead).
* **Instant actions** (``robots.agent.vehicle`` hands them here): ``safetyStop`` (latched, applied —
  zero velocity sent — before the action is FINISHED), ``safetyRelease``, ``safetyAcknowledge``,
  ``buildingAlarm``, ``setOperatingMode`` (a handover *request*), ``confirmOperatingMode``,
  ``cancelOperatingMode``. The acting party is ``operator``/``role`` of the parameters: a control-centre
  user, or ``SYSTEM`` for role ``system``. An action FINISHES when applied and FAILS with the refusal's
  sentence otherwise (a release by a viewer, a switch while moving...).
* **State.** ``safetyState`` from the decision, its ``errors`` appended, ``operatingMode`` from the
  mode controller; a change of level, eStop, field violation, latches, mode or pending request makes
  the vehicle publish a state. Orders are rejected while the mode controller is not
  ``available_for_orders``; a switch whose ``clears_orders`` is set cancels the running order.
* **On-site acknowledgement.** The reset key at the vehicle is ``acknowledge_on_site``. A driver that
  offers one (``AcknowledgeDriver``: ``RosDriver``'s ``safety/acknowledge`` Trigger service) is given
  a callback at ``start`` that acknowledges as an on-site party of ``SafetySettings.on_site_role``
  and answers None (all cleared) or why not; the driver never sees this class.
* **Diagnostics.** If the driver can (``publish_diagnostics``), the supervisor's diagnostics go out on
  a change of the summary and at least every ``diagnostics_period`` s.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from interfaces.clock import Clock
from interfaces.mqtt import Message
from interfaces.teleop import teleop_from_json
from interfaces.vda5050 import (
    ActionError,
    ActionStatus,
    ActionType,
    AgvError,
    OperatingMode,
    SafetyState,
    action_parameters,
)
from interfaces.vda5050.actions import (
    BuildingAlarm,
    CancelOperatingMode,
    ConfirmOperatingMode,
    SafetyAcknowledge,
    SafetyRelease,
    SafetyStop,
    SetOperatingMode,
    StopKind,
    read_action,
)
from robots.agent.order import ActionRecord
from robots.agent.vehicle import Vehicle
from robots.safety import (
    LAYERS,
    SYSTEM,
    BumperReading,
    CameraReading,
    ControlOutput,
    DiagnosticArray,
    EStopReading,
    LatchKind,
    LidarReading,
    Mode,
    ModeAnswer,
    ModeConfig,
    ModeController,
    Party,
    PartyKind,
    Reading,
    Role,
    SafetyConfig,
    SafetyController,
    SafetySupervisor,
    Source,
    TeleopConfig,
    TeleopGate,
    UltrasonicReading,
    diagnostics,
    safety_errors,
    safety_state,
)

SAFETY_ACTIONS = frozenset(
    {
        ActionType.SAFETY_STOP,
        ActionType.SAFETY_RELEASE,
        ActionType.SAFETY_ACKNOWLEDGE,
        ActionType.BUILDING_ALARM,
        ActionType.SET_OPERATING_MODE,
        ActionType.CONFIRM_OPERATING_MODE,
        ActionType.CANCEL_OPERATING_MODE,
    }
)
"""The instant actions ``AgentSafety`` carries out."""

SAFETY_HOLD = "safety"
"""The vehicle hold set while the supervisor stops the vehicle or a person drives it."""

_LATCH_OF = {
    StopKind.OPERATOR: LatchKind.OPERATOR_STOP,
    StopKind.FLEET: LatchKind.FLEET_STOP,
    StopKind.BUILDING: LatchKind.BUILDING_STOP,
}


@runtime_checkable
class VelocityDriver(Protocol):
    """A driver that takes velocity commands (m/s forward, rad/s counter-clockwise)."""

    def send_velocity(self, vx: float, omega: float) -> None: ...


@runtime_checkable
class SpeedLimitDriver(Protocol):
    """A driver that caps its own drives' speed (m/s; None lifts the cap): ``SimDriver``, ``RosDriver``."""

    def limit_speed(self, limit: float | None) -> None: ...


AcknowledgeCallback = Callable[[], str | None]
"""The reset key's action handed to a driver: None when every latch was cleared, else why not."""


@runtime_checkable
class AcknowledgeDriver(Protocol):
    """A driver with an on-site reset key (``RosDriver``: a ``std_srvs/Trigger`` service)."""

    def on_acknowledge(self, callback: AcknowledgeCallback | None) -> None: ...


@dataclass(frozen=True, slots=True)
class SpeedZone:
    """A rectangle on the map (metres, map frame) where teleop may drive at most ``cap`` m/s."""

    x_min: float
    y_min: float
    x_max: float
    y_max: float
    cap: float
    name: str = ""

    def __post_init__(self) -> None:
        for name in ("x_min", "y_min", "x_max", "y_max", "cap"):
            if not math.isfinite(getattr(self, name)):
                raise ValueError(f"SpeedZone.{name} must be finite, got {getattr(self, name)!r}")
        if self.x_max <= self.x_min or self.y_max <= self.y_min:
            raise ValueError(f"SpeedZone {self.name!r}: needs x_min < x_max and y_min < y_max")
        if self.cap < 0.0:
            raise ValueError(f"SpeedZone {self.name!r}: cap must be >= 0 m/s, got {self.cap!r}")

    def contains(self, x: float, y: float) -> bool:
        """Whether ``(x, y)`` lies in the rectangle (edges included)."""
        return self.x_min <= x <= self.x_max and self.y_min <= y <= self.y_max


def zone_cap_of(zones: tuple[SpeedZone, ...]) -> Callable[[float, float], float | None]:
    """The teleop gate's ``zone_cap``: the lowest cap of the zones containing the point, else None."""

    def cap(x: float, y: float) -> float | None:
        caps = [zone.cap for zone in zones if zone.contains(x, y)]
        return min(caps) if caps else None

    return cap


@runtime_checkable
class DiagnosticsDriver(Protocol):
    """A driver that publishes the supervisor's diagnostics (``RosDriver``: ``safety/diagnostics``)."""

    def publish_diagnostics(self, array: DiagnosticArray) -> None: ...


@dataclass(frozen=True, slots=True)
class SafetySettings:
    """Control period and diagnostics period (s), the layer kinds (module docstring), the pure configs,
    the teleop zones and the role of whoever turns the reset key on site."""

    period: float = 0.05
    diagnostics_period: float = 1.0
    readout_layers: frozenset[Source] = frozenset({Source.E_STOP, Source.LIDAR})
    external_layers: frozenset[Source] = frozenset()
    lidar_sectors: int = 8
    supervisor: SafetyConfig = field(default_factory=SafetyConfig)
    modes: ModeConfig = field(default_factory=ModeConfig)
    teleop: TeleopConfig = field(default_factory=TeleopConfig)
    zones: tuple[SpeedZone, ...] = ()
    on_site_role: Role = Role.OPERATOR

    def __post_init__(self) -> None:
        for name in ("period", "diagnostics_period"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0.0):
                raise ValueError(f"SafetySettings.{name} must be > 0 s, got {value!r}")
        both = self.readout_layers & self.external_layers
        if both:
            raise ValueError(f"SafetySettings: layers both readout and external: {sorted(both)}")
        unknown = (self.readout_layers | self.external_layers) - set(LAYERS)
        if unknown:
            raise ValueError(f"SafetySettings: not sensing layers: {sorted(unknown)}")
        if not (self.readout_layers <= {Source.E_STOP, Source.LIDAR}):
            raise ValueError("SafetySettings.readout_layers: only e_stop and lidar come from the readout")
        if self.lidar_sectors < 1:
            raise ValueError(f"SafetySettings.lidar_sectors must be >= 1, got {self.lidar_sectors!r}")

    @property
    def absent_layers(self) -> frozenset[Source]:
        """The layers this robot has no sensor for (fed clear readings)."""
        return frozenset(LAYERS) - self.readout_layers - self.external_layers


def party_of(params: Mapping[str, Any]) -> Party:
    """The acting party of a safety action's ``operator``/``role`` (role ``system``: ``SYSTEM``)."""
    role = str(params.get("role", "operator"))
    if role == "system":
        return SYSTEM
    return Party(PartyKind.CONTROL_CENTRE, str(params.get("operator", "")), Role(role))


class AgentSafety:
    """The safety supervisor, mode controller and teleop gate of one agent (module docstring)."""

    def __init__(
        self,
        vehicle: Vehicle,
        clock: Clock,
        settings: SafetySettings | None = None,
        *,
        logger: logging.Logger | None = None,
    ) -> None:
        self.vehicle = vehicle
        self.driver = vehicle.driver
        self.clock = clock
        self.settings = settings or SafetySettings()
        self.log = logger or logging.getLogger("robopost.agent.safety")
        self.modes = ModeController(self.settings.modes)
        self.control = SafetyController(
            SafetySupervisor(self.settings.supervisor),
            self.modes,
            TeleopGate(
                self.modes,
                self.settings.teleop,
                zone_cap=zone_cap_of(self.settings.zones) if self.settings.zones else None,
            ),
        )
        self.last: ControlOutput | None = None
        self.sent: tuple[float, float] | None = None
        self._summary: tuple[object, ...] | None = None
        self._diag_key: tuple[object, ...] | None = None
        self._diag_at = -math.inf
        self._loop: asyncio.Task[None] | None = None
        vehicle.safety = self

    # --- life cycle -------------------------------------------------------------------------------------

    def start(self) -> None:
        """Run the first tick, hand the reset key to the driver if it has one, and start the control loop
        (in the running event loop)."""
        self.tick()
        if isinstance(self.driver, AcknowledgeDriver):
            self.driver.on_acknowledge(self._reset_key)
        if self._loop is None:
            self._loop = asyncio.create_task(self._run(), name="safety-control")

    async def stop(self) -> None:
        """Stop the control loop and take the reset key back (the driver's own stop stops the robot)."""
        if isinstance(self.driver, AcknowledgeDriver):
            self.driver.on_acknowledge(None)
        if self._loop is not None:
            self._loop.cancel()
            await asyncio.gather(self._loop, return_exceptions=True)
            self._loop = None

    async def _run(self) -> None:
        while True:
            await self.clock.sleep(self.settings.period)
            try:
                self.tick()
            except Exception:  # the loop must survive a bad reading; the next tick tries again
                self.log.exception("safety tick failed")

    # --- inputs ---------------------------------------------------------------------------------------

    def observe(self, reading: Reading) -> bool:
        """A reading of an external layer (a sensor adapter); False if the supervisor refused it."""
        return self.control.supervisor.observe(reading, self.clock.monotonic())

    def on_teleop(self, message: Message) -> None:
        """A ``.../teleop`` message: parsed and offered to the gate; malformed ones logged and dropped."""
        try:
            command = teleop_from_json(message.json())
        except ValueError as exc:
            self.log.warning("teleop message dropped: %s", exc)
            return
        admission = self.control.gate.offer(
            command, wall_now=self.clock.now(), mono_now=self.clock.monotonic()
        )
        if not admission.accepted and admission.drop is not None:
            self.log.debug("teleop seq %d dropped: %s", command.seq, admission.drop.value)

    def acknowledge_on_site(self, who: str = "key", role: Role = Role.OPERATOR) -> str | None:
        """The reset key at the vehicle: acknowledge latches; None if all cleared, else why not."""
        result = self.control.supervisor.acknowledge(
            Party(PartyKind.ON_SITE, who, role), self.clock.monotonic()
        )
        self.tick()
        return None if result.ok else result.message

    def _reset_key(self) -> str | None:
        """The driver's reset key: acknowledge on site as ``settings.on_site_role``."""
        answer = self.acknowledge_on_site("key", self.settings.on_site_role)
        self.log.info("on-site acknowledgement: %s", answer or "cleared")
        return answer

    # --- the control tick -------------------------------------------------------------------------------

    def tick(self) -> ControlOutput:
        """One control tick: feed the readings, decide, command the driver, report changes."""
        now = self.clock.monotonic()
        readout = self.driver.readout()
        self._feed(now, readout.e_stop, readout.field_violation)
        position = (readout.pose.x, readout.pose.y) if readout.pose is not None else None
        nav = (readout.vx, readout.omega) if self.modes.mode is Mode.AUTOMATIC else (0.0, 0.0)
        out = self.control.tick(now, measured=readout.vx, navigation=nav, position=position)
        self.last = out
        self._command(out)
        self._report(out)
        return out

    def _feed(self, now: float, e_stop: bool, field_violation: bool) -> None:
        supervisor = self.control.supervisor
        readout = self.settings.readout_layers
        absent = self.settings.absent_layers
        sectors = self.settings.lidar_sectors
        if Source.E_STOP in readout:
            supervisor.observe(EStopReading(now, e_stop), now)
        if Source.LIDAR in readout:
            supervisor.observe(LidarReading(now, (0.0 if field_violation else math.inf,) * sectors), now)
        clear: dict[Source, Reading] = {
            Source.LIDAR: LidarReading(now, (math.inf,) * sectors),
            Source.ULTRASONIC: UltrasonicReading(now, (math.inf,) * sectors),
            Source.CAMERA: CameraReading(now),
            Source.E_STOP: EStopReading(now, False),
            Source.BUMPER: BumperReading(now, False),
        }
        for layer in absent:
            supervisor.observe(clear[layer], now)

    def _command(self, out: ControlOutput) -> None:
        automatic = out.driver is Mode.AUTOMATIC
        self.vehicle.hold(SAFETY_HOLD, out.decision.stop or not automatic)
        if automatic:
            velocity = (0.0, 0.0) if out.decision.stop else None
        else:
            velocity = (out.vx, out.omega) if out.teleop is None or out.teleop.publish else (0.0, 0.0)
        if isinstance(self.driver, SpeedLimitDriver):
            self.driver.limit_speed(out.decision.speed_limit)
        if velocity is not None and isinstance(self.driver, VelocityDriver):
            self.driver.send_velocity(*velocity)
            self.sent = velocity
        elif velocity is None:
            self.sent = None

    def _report(self, out: ControlOutput) -> None:
        d = out.decision
        pending = self.modes.pending
        summary = (
            d.level,
            d.e_stop,
            d.field_violation,
            tuple((latch.kind, latch.scope) for latch in d.latches),
            tuple(d.silent),
            self.modes.mode,
            pending.to_mode if pending is not None else None,
        )
        if summary != self._summary:
            self._summary = summary
            self.vehicle.notify()
        if isinstance(self.driver, DiagnosticsDriver):
            key = (*summary, tuple(r.key for r in d.reasons))
            now = self.clock.monotonic()
            if key != self._diag_key or now - self._diag_at >= self.settings.diagnostics_period:
                self._diag_key, self._diag_at = key, now
                self.driver.publish_diagnostics(diagnostics(d, stamp=self.clock.now()))

    # --- what the vehicle asks ------------------------------------------------------------------------

    def state_fields(self) -> tuple[SafetyState, OperatingMode, list[AgvError]]:
        """``safetyState``, ``operatingMode`` and the safety ``errors`` for the next state."""
        if self.last is not None:
            decision = self.last.decision
        else:  # before the first tick: decide without commanding the driver
            decision = self.control.supervisor.step(self.clock.monotonic())
        return safety_state(decision), self.modes.operating_mode, safety_errors(decision)

    def order_refusal(self) -> str | None:
        """Why orders are refused now (None: they are taken)."""
        if self.modes.available_for_orders:
            return None
        return f"robot not available for orders: {self.modes.unavailable_reason}"

    def handles(self, action_type: str) -> bool:
        """Whether ``action_type`` is a safety instant action."""
        return action_type in SAFETY_ACTIONS

    async def run_instant(self, record: ActionRecord) -> None:
        """Carry out one safety instant action: FINISHED when applied, FAILED with the reason otherwise."""
        record.move(ActionStatus.INITIALIZING)
        record.move(ActionStatus.RUNNING)
        try:
            params = read_action(record.action)
            raw = action_parameters(record.action)
        except ActionError as exc:
            record.move(ActionStatus.FAILED, str(exc))
            return
        try:
            ok, message = await self._apply(params, raw)
        except ValueError as exc:
            ok, message = False, str(exc)
        self.log.info("%s %s: %s", record.action_type, "applied" if ok else "refused", message)
        record.move(ActionStatus.FINISHED if ok else ActionStatus.FAILED, message)

    async def _apply(self, params: object, raw: Mapping[str, Any]) -> tuple[bool, str]:
        now = self.clock.monotonic()
        supervisor = self.control.supervisor
        if isinstance(params, SafetyRelease):  # before SafetyStop: a release is a subclass of a stop
            result = supervisor.release(_LATCH_OF[params.kind], party_of(raw), now, scope=params.building)
            self.tick()
            return result.ok, result.message or f"{params.kind.value} stop released"
        if isinstance(params, SafetyStop):
            latch = supervisor.remote_stop(
                _LATCH_OF[params.kind], party_of(raw), now, scope=params.building or ""
            )
            out = self.tick()
            if out.vx != 0.0 or out.omega != 0.0:  # pragma: no cover - the supervisor forbids it
                return False, "stop latched but a velocity is still commanded"
            return True, latch.note or f"{params.kind.value} stop"
        if isinstance(params, SafetyAcknowledge):
            result = supervisor.acknowledge(party_of(raw), now)
            self.tick()
            return result.ok, result.message or "acknowledged"
        if isinstance(params, BuildingAlarm):
            supervisor.building_alarm(params.building, params.active, now)
            self.tick()
            return True, f"fire alarm in {params.building} {'on' if params.active else 'off'}"
        if isinstance(params, SetOperatingMode):
            try:
                target = Mode(params.mode.value)
            except ValueError:
                return False, f"operating mode {params.mode.value} is not supported"
            status = self._status()
            return await self._answer(self.modes.request(target, party_of(raw), now, status))
        if isinstance(params, ConfirmOperatingMode):
            return await self._answer(self.modes.confirm(party_of(raw), now, self._status()))
        if isinstance(params, CancelOperatingMode):
            return await self._answer(self.modes.cancel(party_of(raw), now))
        return False, f"{type(params).__name__} is not a safety action"

    def _status(self) -> Any:
        readout = self.driver.readout()
        return self.control.status(readout.vx, localized=readout.localized)

    async def _answer(self, answer: ModeAnswer) -> tuple[bool, str]:
        if answer.switch is not None:
            self.log.info("operating mode %s → %s", answer.switch.from_mode, answer.switch.to_mode)
            self.tick()
            if answer.switch.clears_orders:
                await self.vehicle.cancel_running_order(f"operating mode switched to {answer.mode.value}")
        else:
            self.tick()
        return answer.ok, answer.message
