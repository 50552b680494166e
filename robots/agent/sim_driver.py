"""``SimDriver``: a robot as in-process kinematics on a ``Clock`` — for the simulator and fast tests.

It does what the ROS 2 driver plus the simulated base do, without ROS: ``navigate`` turns in place
toward the goal, drives there in a straight line, then turns to the goal's heading; every step is one
``clock.sleep(step)``, so on a ``VirtualClock`` an hour's drive takes no wall time. The battery drains
per metre driven and charges while charging. Results follow the ``RobotDriver`` rules:

* e-stop pressed (at the start or during a drive) → the robot stops, ``RETRY``;
* a fault present, the battery empty, a goal on another map → ``IMPOSSIBLE``;
* blocked (``set_blocked``) for ``stall_timeout`` seconds → ``RETRY``;
* cancelling ``navigate`` stops the robot where it is;
* ``send_velocity(vx, omega)`` drives it by velocity (teleop, the safety layer's stop): the robot
  moves at the last commanded velocity between two calls (unicycle kinematics on clock time); a
  ``navigate`` takes over from it.
* ``limit_speed(limit)`` caps a drive in progress from its next step on (the safety layer's speed
  limit in AUTOMATIC, as a base with a speed-limit input would): a limit of 0 makes it stand (the
  drive waits, as when blocked, but without counting towards ``stall_timeout``: the safety layer
  decides when it ends); ``None`` lifts the cap.

Actions (``run_action``): the types in ``SimDriverConfig.action_durations`` (``pick``, ``drop``,
``openCompartment``, ``closeCompartment`` by default) take their configured time and succeed;
``initPosition`` (VDA 5050 parameters ``x``, ``y``, ``theta``, ``mapId``) moves the robot at once;
``startCharging`` / ``stopCharging`` switch charging; anything else is ``IMPOSSIBLE``.
``fail_next(kind, result)`` makes the next ``navigate`` or action of a type answer ``result``.
Every action carried out is recorded in ``action_log`` (so tests can check nothing ran twice).
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from interfaces.clock import Clock
from robots.agent.driver import DriverResult, Pose, Readout
from robots.agent.readout_feed import ReadoutFeed, ReadoutStream

NAVIGATE = "navigate"
"""The ``fail_next`` kind of ``navigate`` (action kinds are their action types)."""

DEFAULT_ACTION_DURATIONS: Mapping[str, float] = {
    "pick": 2.0,
    "drop": 2.0,
    "openCompartment": 1.0,
    "closeCompartment": 1.0,
}
"""Seconds each hardware action takes unless configured otherwise."""

_EPSILON = 1e-9


@dataclass(frozen=True, slots=True)
class SimDriverConfig:
    """Kinematics and timing of a simulated robot (metres, seconds, radians, percent)."""

    speed: float = 1.5
    turn_rate: float = 1.5
    step: float = 0.1
    turn_to_goal_heading: bool = True
    drain_per_metre: float = 0.01
    charge_rate: float = 0.05
    stall_timeout: float = 10.0
    voltage_full: float = 50.4
    voltage_empty: float = 42.0
    action_durations: Mapping[str, float] = field(default_factory=lambda: dict(DEFAULT_ACTION_DURATIONS))

    def __post_init__(self) -> None:
        for name in ("speed", "turn_rate", "step", "stall_timeout"):
            if not getattr(self, name) > 0:
                raise ValueError(f"SimDriverConfig: {name} must be > 0, got {getattr(self, name)}")
        for name in ("drain_per_metre", "charge_rate"):
            if not getattr(self, name) >= 0:
                raise ValueError(f"SimDriverConfig: {name} must be >= 0, got {getattr(self, name)}")
        for action, seconds in self.action_durations.items():
            if not seconds >= 0:
                raise ValueError(f"SimDriverConfig: duration of {action!r} must be >= 0, got {seconds}")


@dataclass(frozen=True, slots=True)
class ActionRecord:
    """One action the simulated robot carried out (``time`` is when it started, clock epoch seconds)."""

    time: float
    action_type: str
    parameters: Mapping[str, Any]
    result: DriverResult


class SimDriver:
    """A ``RobotDriver`` whose robot is a point moving on ``clock`` time (see the module docstring)."""

    def __init__(
        self,
        clock: Clock,
        config: SimDriverConfig | None = None,
        *,
        start: Pose | None = None,
        battery: float = 100.0,
    ) -> None:
        self._clock = clock
        self._config = config or SimDriverConfig()
        pose = start or Pose(0.0, 0.0)
        self._x, self._y, self._theta, self._map_id = pose.x, pose.y, pose.theta, pose.map_id
        self._vx = 0.0
        self._omega = 0.0
        self._battery = _check_percent(battery)
        self._charging_since: float | None = None
        self._e_stop = False
        self._field_violation = False
        self._blocked = False
        self._faults: dict[str, str] = {}
        self._failures: dict[str, deque[DriverResult]] = {}
        self._velocity_at: float | None = None
        self._speed_limit: float | None = None
        self._feed = ReadoutFeed()
        self.action_log: list[ActionRecord] = []

    # --- RobotDriver ---------------------------------------------------------------------------------

    async def start(self) -> None:
        """Nothing to connect: publish the first readout."""
        self._emit()

    async def stop(self) -> None:
        """Stand still."""
        self._set_motion(0.0, 0.0)

    async def navigate(self, goal: Pose, *, max_speed: float | None = None) -> DriverResult:
        """Turn toward ``goal``, drive there in a straight line, turn to its heading (see module doc)."""
        injected = self._take_failure(NAVIGATE)
        if injected is not None:
            return injected
        refusal = self._refusal(goal, max_speed)
        if refusal is not None:
            return refusal
        self._stop_charging()
        self._velocity_at = None
        speed = self._config.speed if max_speed is None else min(self._config.speed, max_speed)
        try:
            return await self._drive_to(goal, speed)
        finally:
            self._set_motion(0.0, 0.0)

    async def run_action(self, action_type: str, parameters: Mapping[str, Any]) -> DriverResult:
        """Carry out an action (see the module docstring for the types known); record it."""
        started = self._clock.now()
        result = await self._perform(action_type, parameters)
        self.action_log.append(ActionRecord(started, action_type, dict(parameters), result))
        self._emit()
        return result

    def readout(self) -> Readout:
        """What the simulated robot senses now."""
        return Readout(
            time=self._clock.now(),
            pose=self.pose,
            vx=self._vx,
            omega=self._omega,
            battery_charge=self._battery_now(),
            battery_voltage=self._voltage(),
            charging=self._charging_since is not None,
            driving=abs(self._vx) > _EPSILON or abs(self._omega) > _EPSILON,
            e_stop=self._e_stop,
            field_violation=self._field_violation,
            faults=tuple(f"{name}: {text}" if text else name for name, text in self._faults.items()),
        )

    def readouts(self) -> ReadoutStream:
        """Every readout from now on (one per kinematic step and per state change)."""
        return self._feed.subscribe()

    # --- the simulator's and the tests' handles --------------------------------------------------------

    @property
    def pose(self) -> Pose:
        """Where the robot is now."""
        return Pose(self._x, self._y, self._theta, self._map_id)

    @property
    def top_speed(self) -> float:
        """The fastest the robot drives (m/s): the configured speed."""
        return self._config.speed

    def send_velocity(self, vx: float, omega: float) -> None:
        """Drive by velocity from now on (m/s forward, rad/s counter-clockwise); see the module doc."""
        now = self._clock.monotonic()
        if self._velocity_at is not None and now > self._velocity_at and (self._vx or self._omega):
            dt = now - self._velocity_at
            heading = self._theta + self._omega * dt / 2.0
            self._x += self._vx * math.cos(heading) * dt
            self._y += self._vx * math.sin(heading) * dt
            self._theta = _wrap(self._theta + self._omega * dt)
            self._emit()
        self._velocity_at = now
        self._set_motion(vx, omega)

    def limit_speed(self, limit: float | None) -> None:
        """Cap the speed of drives from their next step on (m/s; None: no cap); see the module doc."""
        if limit is not None and not (math.isfinite(limit) and limit >= 0.0):
            raise ValueError(f"SimDriver.limit_speed: limit must be a finite number >= 0, got {limit!r}")
        self._speed_limit = limit

    @property
    def speed_limit(self) -> float | None:
        """The cap set by ``limit_speed`` (None: none)."""
        return self._speed_limit

    def set_e_stop(self, pressed: bool) -> None:
        """Press or release the emergency stop."""
        self._e_stop = pressed
        self._emit()

    def set_field_violation(self, violated: bool) -> None:
        """Report (or clear) a protective-field violation; it does not stop the robot by itself."""
        self._field_violation = violated
        self._emit()

    def set_blocked(self, blocked: bool) -> None:
        """Put an obstacle in the robot's way (it stands until cleared or ``stall_timeout``)."""
        self._blocked = blocked

    def inject_fault(self, name: str, message: str = "") -> None:
        """Raise a hardware fault: drives and actions stop with IMPOSSIBLE until it is cleared."""
        self._faults[name] = message
        self._emit()

    def clear_fault(self, name: str) -> None:
        """Clear a fault raised by ``inject_fault`` (no error if it is not set)."""
        self._faults.pop(name, None)
        self._emit()

    def set_battery(self, percent: float) -> None:
        """Set the state of charge (0..100)."""
        self._battery = _check_percent(percent)
        if self._charging_since is not None:
            self._charging_since = self._clock.now()
        self._emit()

    def fail_next(self, kind: str, result: DriverResult) -> None:
        """Make the next ``navigate`` (kind ``"navigate"``) or action of type ``kind`` answer ``result``."""
        self._failures.setdefault(kind, deque()).append(result)

    # --- motion ----------------------------------------------------------------------------------------

    def _refusal(self, goal: Pose, max_speed: float | None) -> DriverResult | None:
        """Why a drive cannot start now, or None."""
        if max_speed is not None and not max_speed > 0:
            return DriverResult.IMPOSSIBLE
        if goal.map_id and self._map_id and goal.map_id != self._map_id:
            return DriverResult.IMPOSSIBLE
        return self._hazard()

    def _hazard(self) -> DriverResult | None:
        """What stops a motion now: e-stop (RETRY), a fault or an empty battery (IMPOSSIBLE)."""
        if self._faults or self._battery <= 0.0:
            return DriverResult.IMPOSSIBLE
        if self._e_stop:
            return DriverResult.RETRY
        return None

    async def _drive_to(self, goal: Pose, speed: float) -> DriverResult:
        """The three phases of a drive; the first that does not finish decides the result."""
        if math.hypot(goal.x - self._x, goal.y - self._y) > _EPSILON:
            verdict = await self._turn_to(math.atan2(goal.y - self._y, goal.x - self._x))
            if verdict is None:
                verdict = await self._advance_to(goal, speed)
            if verdict is not None:
                return verdict
        if self._config.turn_to_goal_heading:
            verdict = await self._turn_to(goal.theta)
            if verdict is not None:
                return verdict
        return DriverResult.SUCCESS

    async def _turn_to(self, heading: float) -> DriverResult | None:
        """Turn in place to ``heading``; None when there, else why it stopped."""
        blocked_for = 0.0
        while abs(error := _angle_difference(heading, self._theta)) > _EPSILON:
            verdict, blocked_for = await self._wait_if_blocked(blocked_for)
            if verdict is not None:
                return verdict
            if blocked_for:
                continue
            dt = min(self._config.step, abs(error) / self._config.turn_rate)
            self._set_motion(0.0, math.copysign(self._config.turn_rate, error))
            await self._clock.sleep(dt)
            turned = min(self._config.turn_rate * dt, abs(error))
            self._theta = _wrap(self._theta + math.copysign(turned, error))
            self._emit()
        return None

    async def _advance_to(self, goal: Pose, speed: float) -> DriverResult | None:
        """Drive straight to ``goal``'s position; None when there, else why it stopped."""
        blocked_for = 0.0
        while (remaining := math.hypot(goal.x - self._x, goal.y - self._y)) > _EPSILON:
            verdict, blocked_for = await self._wait_if_blocked(blocked_for)
            if verdict is not None:
                return verdict
            if blocked_for:
                continue
            now_speed = speed if self._speed_limit is None else min(speed, self._speed_limit)
            if now_speed <= _EPSILON:  # held at zero by the speed limit: stand one step
                self._set_motion(0.0, 0.0)
                await self._clock.sleep(self._config.step)
                continue
            dt = min(self._config.step, remaining / now_speed)
            self._set_motion(now_speed, 0.0)
            await self._clock.sleep(dt)
            self._move_toward(goal, min(now_speed * dt, remaining), remaining)
            self._emit()
        return None

    async def _wait_if_blocked(self, blocked_for: float) -> tuple[DriverResult | None, float]:
        """Check hazards; while blocked stand one step. Returns (verdict, time blocked so far)."""
        hazard = self._hazard()
        if hazard is not None:
            return hazard, blocked_for
        if not self._blocked:
            return None, 0.0
        if blocked_for >= self._config.stall_timeout:
            return DriverResult.RETRY, blocked_for
        self._set_motion(0.0, 0.0)
        step = min(self._config.step, self._config.stall_timeout - blocked_for)
        await self._clock.sleep(step)
        return None, blocked_for + step

    def _move_toward(self, goal: Pose, distance: float, remaining: float) -> None:
        """Move ``distance`` along the line to ``goal`` (snapping onto it at the end); drain the battery.

        The robot stops short where the battery runs out.
        """
        drain = self._config.drain_per_metre
        if drain > 0.0 and distance * drain >= self._battery:
            distance, self._battery = self._battery / drain, 0.0
        else:
            self._battery = max(0.0, self._battery - distance * drain)
        if distance >= remaining - _EPSILON:
            self._x, self._y = goal.x, goal.y
        else:
            self._x += (goal.x - self._x) * distance / remaining
            self._y += (goal.y - self._y) * distance / remaining

    def _set_motion(self, vx: float, omega: float) -> None:
        """Change the commanded velocities; a readout goes out when they change."""
        if (vx, omega) != (self._vx, self._omega):
            self._vx, self._omega = vx, omega
            self._emit()

    # --- actions ---------------------------------------------------------------------------------------

    async def _perform(self, action_type: str, parameters: Mapping[str, Any]) -> DriverResult:
        """The outcome of one action (after its duration, for timed ones)."""
        injected = self._take_failure(action_type)
        if injected is not None:
            return injected
        if action_type == "initPosition":
            return self._init_position(parameters)
        if action_type in ("startCharging", "stopCharging"):
            return self._switch_charging(action_type == "startCharging")
        duration = self._config.action_durations.get(action_type)
        if duration is None:
            return DriverResult.IMPOSSIBLE
        before = self._hazard()
        if before is not None:
            return before
        await self._clock.sleep(duration)
        return self._hazard() or DriverResult.SUCCESS

    def _init_position(self, parameters: Mapping[str, Any]) -> DriverResult:
        """VDA 5050 ``initPosition``: put the robot at ``x``, ``y``, ``theta`` on ``mapId``."""
        try:
            x, y = float(parameters["x"]), float(parameters["y"])
            theta = float(parameters.get("theta", self._theta))
        except (KeyError, TypeError, ValueError):
            return DriverResult.IMPOSSIBLE
        if not all(math.isfinite(v) for v in (x, y, theta)):
            return DriverResult.IMPOSSIBLE
        self._x, self._y, self._theta = x, y, _wrap(theta)
        self._map_id = str(parameters.get("mapId", self._map_id))
        return DriverResult.SUCCESS

    def _switch_charging(self, on: bool) -> DriverResult:
        """Start or stop charging (the battery fills at ``charge_rate`` percent per second)."""
        if on and self._charging_since is None:
            self._charging_since = self._clock.now()
        elif not on:
            self._stop_charging()
        return DriverResult.SUCCESS

    def _take_failure(self, kind: str) -> DriverResult | None:
        """The result injected for the next ``kind``, if any (used once)."""
        queue = self._failures.get(kind)
        return queue.popleft() if queue else None

    # --- battery ---------------------------------------------------------------------------------------

    def _battery_now(self) -> float:
        """State of charge now, counting the charge gained since charging started."""
        if self._charging_since is None:
            return self._battery
        gained = (self._clock.now() - self._charging_since) * self._config.charge_rate
        return min(100.0, self._battery + gained)

    def _stop_charging(self) -> None:
        """Bank the charge gained and stop charging."""
        self._battery = self._battery_now()
        self._charging_since = None

    def _voltage(self) -> float:
        """Pack voltage: linear between empty and full."""
        cfg = self._config
        return cfg.voltage_empty + (cfg.voltage_full - cfg.voltage_empty) * self._battery_now() / 100.0

    def _emit(self) -> None:
        self._feed.publish(self.readout())


def _check_percent(value: float) -> float:
    """``value`` if it is a state of charge in 0..100, else ValueError."""
    if not 0.0 <= value <= 100.0:
        raise ValueError(f"SimDriver: battery must be within 0..100 percent, got {value}")
    return float(value)


def _wrap(angle: float) -> float:
    """``angle`` wrapped into -π..π."""
    return math.atan2(math.sin(angle), math.cos(angle))


def _angle_difference(a: float, b: float) -> float:
    """``a - b`` wrapped into -π..π."""
    return _wrap(a - b)
