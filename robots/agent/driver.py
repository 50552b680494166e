"""The one narrow interface between the VDA 5050 agent and a robot's hardware (or a simulation).

The agent decides *what* to do (which node next, which action, pause, cancel); a ``RobotDriver`` only
does it. Verbs answer with a ``DriverResult`` rather than raising for expected failures:

* ``SUCCESS``    done (the goal was reached, the action finished);
* ``RETRY``      not done this time but may work if asked again (goal aborted by an obstacle, link busy);
* ``IMPOSSIBLE`` will never work as asked (no path, unknown action, hardware fault).

``run_action`` may answer an ``ActionOutcome`` instead: the same result plus a sentence for the
action's ``resultDescription`` and whether a failure is worth an ``actionFailed`` error (not for an
expected outcome such as a parcel nobody collected).

Motion verbs are coroutines that return when the motion ends. **Cancelling** the coroutine (asyncio
cancellation) must stop the robot: that is how the agent pauses or cancels an order. Drivers report
what the robot senses as ``Readout`` snapshots; ``readouts()`` streams every new one. Besides the
robot's ``faults`` (each a FATAL ``hardwareFault``), a readout carries ``conditions``: things the robot
reports under their own ``errorType`` and level for as long as they last (a cart's door left open).

Two drivers exist: ``robots.agent.ros_driver`` (ROS 2, the real robot) and ``robots.agent.sim_driver``
(in-process kinematics for the simulator and tests); ``robots.cart.agent.CartDriver`` wraps either
for a delivery cart (its lockers' actions and alarms).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol

from interfaces.vda5050 import ErrorLevel


class DriverResult(StrEnum):
    SUCCESS = "success"
    RETRY = "retry"
    IMPOSSIBLE = "impossible"


@dataclass(frozen=True, slots=True)
class ActionOutcome:
    """A ``run_action`` answer with words: ``description`` becomes the action's ``resultDescription``.

    ``report_error=False`` marks a failure as an expected outcome (e.g. ``waitForPickup`` timing out
    because nobody came): the action still ends FAILED, but no ``actionFailed`` error is raised.
    """

    result: DriverResult
    description: str | None = None
    report_error: bool = True


@dataclass(frozen=True, slots=True)
class Condition:
    """Something the robot reports while it lasts, as one VDA 5050 error in ``state.errors``.

    ``references`` are ``(referenceKey, referenceValue)`` pairs, e.g. ``("compartment", "7")``.
    """

    error_type: str
    description: str
    level: ErrorLevel = ErrorLevel.WARNING
    references: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, slots=True)
class Pose:
    """A pose in a map frame: metres and radians (VDA 5050 ``agvPosition`` / ``nodePosition``)."""

    x: float
    y: float
    theta: float = 0.0
    map_id: str = ""


@dataclass(frozen=True, slots=True)
class Readout:
    """What the robot senses now. ``battery_charge`` in percent; velocities in m/s and rad/s."""

    time: float
    pose: Pose | None = None
    localized: bool = True
    localization_score: float = 1.0
    vx: float = 0.0
    vy: float = 0.0
    omega: float = 0.0
    battery_charge: float = 100.0
    battery_voltage: float | None = None
    charging: bool = False
    driving: bool = False
    e_stop: bool = False
    field_violation: bool = False
    faults: tuple[str, ...] = field(default_factory=tuple)
    conditions: tuple[Condition, ...] = field(default_factory=tuple)


class RobotDriver(Protocol):
    """A robot's hardware as the agent sees it."""

    async def start(self) -> None:
        """Bring the link to the hardware up; readouts start flowing."""

    async def stop(self) -> None:
        """Stop the robot and close the link."""

    async def navigate(self, goal: Pose, *, max_speed: float | None = None) -> DriverResult:
        """Drive to ``goal``; returns when there (SUCCESS) or when the drive failed. Cancel to stop."""

    async def run_action(
        self, action_type: str, parameters: Mapping[str, Any]
    ) -> DriverResult | ActionOutcome:
        """Carry out a hardware action (``openCompartment``, ``pick``, ...). Unknown types: IMPOSSIBLE."""

    def readout(self) -> Readout:
        """The latest readout."""

    def readouts(self) -> AsyncIterator[Readout]:
        """Every readout from now on."""
