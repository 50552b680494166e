"""The one narrow interface between the VDA 5050 agent and a robot's hardware (or a simulation).

The agent decides *what* to do (which node next, which action, pause, cancel); a ``RobotDriver`` only
does it. Verbs answer with a ``DriverResult`` rather than raising for expected failures:

* ``SUCCESS``    done (the goal was reached, the action finished);
* ``RETRY``      not done this time but may work if asked again (goal aborted by an obstacle, link busy);
* ``IMPOSSIBLE`` will never work as asked (no path, unknown action, hardware fault).

Motion verbs are coroutines that return when the motion ends. **Cancelling** the coroutine (asyncio
cancellation) must stop the robot: that is how the agent pauses or cancels an order. Drivers report
what the robot senses as ``Readout`` snapshots; ``readouts()`` streams every new one.

Two drivers exist: ``robots.agent.ros_driver`` (ROS 2, the real robot) and ``robots.agent.sim_driver``
(in-process kinematics for the simulator and tests).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol


class DriverResult(StrEnum):
    SUCCESS = "success"
    RETRY = "retry"
    IMPOSSIBLE = "impossible"


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


class RobotDriver(Protocol):
    """A robot's hardware as the agent sees it."""

    async def start(self) -> None:
        """Bring the link to the hardware up; readouts start flowing."""

    async def stop(self) -> None:
        """Stop the robot and close the link."""

    async def navigate(self, goal: Pose, *, max_speed: float | None = None) -> DriverResult:
        """Drive to ``goal``; returns when there (SUCCESS) or when the drive failed. Cancel to stop."""

    async def run_action(self, action_type: str, parameters: Mapping[str, Any]) -> DriverResult:
        """Carry out a hardware action (``openCompartment``, ``pick``, ...). Unknown types: IMPOSSIBLE."""

    def readout(self) -> Readout:
        """The latest readout."""

    def readouts(self) -> AsyncIterator[Readout]:
        """Every readout from now on."""
