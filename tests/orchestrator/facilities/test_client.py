"""The facilities client against a real bridge (fake lifts, real Mosquitto, virtual time): choosing a
lift, refusals, time-outs, heartbeats, doors and gates, and its typed errors."""

from __future__ import annotations

import pytest
from lift_testkit import SECRET, Rig

from interfaces.door import DoorMode
from interfaces.lift import EndReason, LiftMode, SessionOutcome
from orchestrator.facilities import (
    DoorTimeout,
    FacilityError,
    FacilityTimeout,
    GateRefused,
    LiftAborted,
    LiftTimeout,
)

pytestmark = pytest.mark.integration


async def test_no_bridge_for_the_building_times_out(rig: Rig) -> None:
    """Asking for a lift in a building no bridge serves raises LiftTimeout after the time-out."""
    robot = rig.robot("robot-1")
    start = rig.clock.now()
    with pytest.raises(LiftTimeout, match="no lift of NOWHERE serves X-1F"):
        await rig.pump.run(robot.request_lift("NOWHERE", "X-1F", timeout=5.0))
    assert 5.0 <= rig.clock.now() - start <= 6.0
    await robot.close()


async def test_refused_in_fire_mode(rig: Rig) -> None:
    """With every lift in fire recall a request is refused: LiftAborted with reason FIRE."""
    for lift in rig.lifts.values():
        lift.set_mode(LiftMode.FIRE)
    await rig.pump.wait(1)
    robot = rig.robot("robot-1")
    with pytest.raises(LiftAborted) as caught:
        await rig.pump.run(robot.request_lift("B", "B-3F"))
    assert caught.value.reason is EndReason.FIRE and caught.value.outcome is SessionOutcome.ABORTED
    assert isinstance(caught.value, FacilityError) and "aborted: FIRE" in str(caught.value)
    await robot.close()


async def test_too_slow_heartbeat_loses_the_session(rig: Rig) -> None:
    """A client whose heartbeat is slower than the bridge's time-out (8 s) loses its session while it
    waits: LiftAborted, outcome RELEASED, reason HEARTBEAT_LOST."""
    robot = rig.robot("robot-1", heartbeat_s=30.0)

    async def scenario() -> None:
        session = await robot.request_lift("B", "B-6F", eta=rig.clock.now() + 60)
        await session.wait_arrival()

    with pytest.raises(LiftAborted) as caught:
        await rig.pump.run(scenario())
    assert caught.value.outcome is SessionOutcome.RELEASED and caught.value.reason is EndReason.HEARTBEAT_LOST
    await robot.close()


async def test_the_nearest_free_lift_serves(rig: Rig) -> None:
    """The free lift whose cabin is nearest the robot's floor serves it (the client asks for it, and
    the bridge would give it anyway)."""
    rig.lifts["B-L2"].pos = 4.0  # B-L2 stands at B-5F
    await rig.pump.wait(1)
    robot = rig.robot("robot-1")

    async def scenario() -> str | None:
        session = await robot.request_lift("B", "B-6F")
        state = await session.wait_arrival()
        await session.release()
        return state.lift_name

    assert await rig.pump.run(scenario()) == "B-L2"
    await robot.close()


async def test_async_with_releases_the_session(rig: Rig) -> None:
    """Leaving ``async with session`` (here by an error) ends the session: the lift is free again."""
    robot = rig.robot("robot-1")

    async def scenario() -> str:
        session = await robot.request_lift("B", "B-2F", lift="B-L1")
        with pytest.raises(RuntimeError):
            async with session:
                await session.wait_arrival()
                raise RuntimeError("the robot's own trouble")
        assert session.end is not None and session.end.outcome is SessionOutcome.FINISHED
        return session.session_id

    await rig.pump.run(scenario())
    assert rig.service.building.bound("B-L1") is None
    await robot.close()


async def test_arrival_timeout(rig: Rig) -> None:
    """A cabin that cannot arrive in time (13 s from B-1F to B-6F, 5 s allowed) raises LiftTimeout,
    a FacilityTimeout."""
    robot = rig.robot("robot-1")

    async def scenario() -> None:
        session = await robot.request_lift("B", "B-6F", lift="B-L1")
        await session.wait_arrival(timeout=5.0)

    with pytest.raises(FacilityTimeout) as caught:
        await rig.pump.run(scenario())
    assert isinstance(caught.value, LiftTimeout) and "B-6F" in str(caught.value)
    await robot.close()


async def test_gate_opens_for_a_known_credential(rig: Rig) -> None:
    """The gate opens (and holds) for robot-1's credential, and closes after release."""
    robot = rig.robot("robot-1")
    passage = await rig.pump.run(robot.open_gate("B", "B-gate", SECRET))
    assert rig.service.gates["B-gate"].state().current_mode is DoorMode.OPEN
    await passage.release()
    await rig.pump.wait(10)
    assert rig.service.gates["B-gate"].state().current_mode is DoorMode.CLOSED
    await robot.close()


@pytest.mark.parametrize(("robot_id", "credential"), [("robot-1", "wrong"), ("robot-2", SECRET)])
async def test_gate_refuses_unknown_credentials(rig: Rig, robot_id: str, credential: str) -> None:
    """A wrong credential, or another robot showing robot-1's, is refused (GateRefused); the gate
    stays shut."""
    robot = rig.robot(robot_id)
    with pytest.raises(GateRefused, match="credential refused"):
        await rig.pump.run(robot.open_gate("B", "B-gate", credential))
    assert rig.service.gates["B-gate"].state().current_mode is DoorMode.CLOSED
    await robot.close()


async def test_unknown_door_times_out(rig: Rig) -> None:
    """A door no bridge knows never opens: DoorTimeout after the time-out."""
    robot = rig.robot("robot-1")
    with pytest.raises(DoorTimeout):
        await rig.pump.run(robot.open_door("B", "B-9F-door", timeout=3.0))
    await robot.close()


async def test_bad_heartbeat_is_refused(rig: Rig) -> None:
    """A heartbeat period that is not positive is a ValueError."""
    with pytest.raises(ValueError, match="heartbeat_s"):
        rig.robot("robot-1", heartbeat_s=0)
