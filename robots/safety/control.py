"""One control tick: the supervisor's decision capping whoever drives, in one tested place.

``SafetyController.tick`` is what the agent calls every control period (and at once after a stop
arrives, so a stop does not wait for the next period). It:

1. lapses an unconfirmed mode request (``ModeController.tick``);
2. steps the supervisor with the speed the current driver asks for as *commanded* — navigation's in
   AUTOMATIC, the teleop command in force otherwise — and the odometry's as *measured*;
3. caps that driver's velocity by the decision: navigation's through ``clamp_velocity``, teleop's
   through the gate (mode and zone caps, dead man, then the supervisor's limit).

The result is the one velocity to publish on ``cmd_vel``. Navigation's velocity must therefore reach
the agent before the base (Nav2's controller output remapped to e.g. ``cmd_vel_nav``, as Nav2's own
collision monitor does); a base driven by goals only can at least be stopped (``decision.stop``).
"""

from __future__ import annotations

from dataclasses import dataclass

from robots.safety.modes import Mode, ModeController, VehicleStatus
from robots.safety.supervisor import SafetyDecision, SafetySupervisor
from robots.safety.teleop import TeleopGate, TeleopOutput, clamp_velocity


@dataclass(frozen=True, slots=True)
class ControlOutput:
    """The velocity to publish (m/s, rad/s), who asked for it, the decision and the teleop output."""

    vx: float
    omega: float
    driver: Mode
    decision: SafetyDecision
    teleop: TeleopOutput | None = None


class SafetyController:
    """Supervisor, modes and teleop gate composed for one control tick (module docstring)."""

    def __init__(self, supervisor: SafetySupervisor, modes: ModeController, gate: TeleopGate) -> None:
        self.supervisor = supervisor
        self.modes = modes
        self.gate = gate

    def tick(
        self,
        mono_now: float,
        *,
        measured: float,
        navigation: tuple[float, float] = (0.0, 0.0),
        position: tuple[float, float] | None = None,
    ) -> ControlOutput:
        """The capped velocity at ``mono_now``; ``navigation`` is the autonomy's (vx, omega) request."""
        self.modes.tick(mono_now)
        mode = self.modes.mode
        requested = navigation if mode is Mode.AUTOMATIC else self.gate.requested
        decision = self.supervisor.step(mono_now, commanded=requested[0], measured=measured)
        if mode is Mode.AUTOMATIC:
            vx, omega = clamp_velocity(*navigation, decision.speed_limit)
            return ControlOutput(vx, omega, mode, decision)
        out = self.gate.tick(mono_now, speed_limit=decision.speed_limit, position=position)
        return ControlOutput(out.vx, out.omega, mode, decision, out)

    def status(self, measured: float, *, localized: bool = True) -> VehicleStatus:
        """What a mode request's preconditions need, from the latest decision."""
        return VehicleStatus.of(self.supervisor.last_decision, measured, localized=localized)
