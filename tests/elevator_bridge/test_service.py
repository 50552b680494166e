"""The bridge service on a real Mosquitto with fake lifts in virtual time, driven by the facilities client."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable

import pytest
from lift_testkit import FLOORS, Rig, bridge_config

from elevator_bridge.service import bridge_topic
from interfaces.door import DoorMode, DoorStateMsg, door_topic
from interfaces.lift import (
    DoorState,
    EndReason,
    LiftMode,
    LiftState,
    SessionOutcome,
    SessionPhase,
    lift_states,
    lift_topic,
)
from interfaces.mqtt import MqttClient
from orchestrator.facilities import Facilities, LiftAborted, LiftSession

MakeRig = Callable[..., Awaitable[Rig]]

pytestmark = pytest.mark.integration


async def ride(session: LiftSession, to: str) -> None:
    """Board at the session's floor, ride to ``to``, get out and release."""
    await session.wait_arrival()
    await session.enter()
    await session.entered()
    await session.ride_to(to)
    await session.exit()
    end = await session.release()
    assert end.outcome is SessionOutcome.FINISHED


async def test_robot_rides_floor_1_to_6_and_back(rig: Rig) -> None:
    """A robot rides B-1F → B-6F and back through the bridge; each session ends FINISHED and the
    lift is idle again."""
    robot = rig.robot("robot-1")

    async def scenario() -> list[str]:
        lifts = []
        for start, to in (("B-1F", "B-6F"), ("B-6F", "B-1F")):
            session = await robot.request_lift("B", start)
            await ride(session, to)
            lifts.append(session.end.lift_name if session.end else "")
        return lifts

    used = await rig.pump.run(scenario())
    assert used[0] == used[1] and used[0] in rig.lifts
    assert rig.lifts[used[0]].status(rig.clock.now()).floor == "B-1F"
    state = rig.service.building.state(used[0])
    assert state.phase is SessionPhase.IDLE and state.session_id == ""
    await robot.close()


async def test_time_to_doors_open_at_the_robots_floor(rig: Rig) -> None:
    """An idle lift at B-1F stands at B-6F with open doors 13 s (5 floors × 2 s + 3 s doors, within a
    pump step) after the request."""
    robot = rig.robot("robot-1")

    async def scenario() -> float:
        start = rig.clock.now()
        session = await robot.request_lift("B", "B-6F", lift="B-L1")
        await session.wait_arrival()
        took = rig.clock.now() - start
        await session.release()
        return took

    took = await rig.pump.run(scenario())
    assert 13.0 <= took <= 14.0
    await robot.close()


async def test_malformed_json_is_ignored_and_the_bridge_stays_up(rig: Rig) -> None:
    """Garbage, wrong types, and requests naming another lift or building are logged and ignored;
    the bridge keeps serving."""
    topic = lift_topic("B", "B-L1", "request")
    garbage = [
        b"{not json",
        b"\xff\xfe",
        b"[]",
        json.dumps({"building": "B", "lift_name": "B-L1", "session_id": "x"}).encode(),
        json.dumps(
            {
                "building": "B",
                "lift_name": "B-L2",
                "session_id": "x",
                "request_type": "AGV_MODE",
                "destination_floor": "B-1F",
                "request_time": 1,
            }
        ).encode(),
        json.dumps({"request_type": "FLY", "building": "B"}).encode(),
    ]
    for payload in garbage:
        await rig.robot_mqtt.publish(topic, payload, qos=1)
    await rig.robot_mqtt.publish(door_topic("B", "B-1F-door", "request"), b"{]", qos=1)
    await rig.robot_mqtt.publish("robopost/gate/B/B-gate/request", b"null", qos=1)
    await rig.robot_mqtt.publish("robopost/door/B/nope/request", b"{}", qos=1)
    await rig.pump.sync()
    assert rig.service.stats.malformed == len(garbage) + 3
    robot = rig.robot("robot-1")

    async def scenario() -> None:
        session = await robot.request_lift("B", "B-2F")
        await ride(session, "B-3F")

    await rig.pump.run(scenario())
    await robot.close()


async def test_states_are_retained_and_the_bridge_says_online(rig: Rig) -> None:
    """A client connecting later gets every lift's state (retained) and the bridge's ``online``."""
    late = MqttClient(rig.robot_mqtt.config)
    await late.connect()
    states = late.subscribe(lift_states("B"))
    online = late.subscribe(bridge_topic("B"))
    got = {}
    for _ in range(2):
        message = await asyncio.wait_for(states.get(), 5)
        state = LiftState.model_validate_json(message.payload)
        got[state.lift_name] = state
        assert message.retain
    assert set(got) == {"B-L1", "B-L2"}
    assert got["B-L1"].available_floors == FLOORS and got["B-L1"].current_mode is LiftMode.HUMAN
    assert (await asyncio.wait_for(online.get(), 5)).payload == b"online"
    await late.disconnect()


async def test_two_robots_contend_for_one_lift_in_order(make_rig: MakeRig) -> None:
    """With one lift, two robots are served one after the other in the order they asked; the lift
    never holds two sessions."""
    rig = await make_rig(bridge_config(lifts=1))
    first, second = rig.robot("robot-1"), rig.robot("robot-2")
    order: list[str] = []
    holders: set[str] = set()

    def watch() -> None:
        bound = rig.service.building.bound("B-L1")
        if bound is not None:
            holders.add(bound)

    async def one(robot_id: str, robot: Facilities, start: str, to: str) -> None:
        session = await robot.request_lift("B", start)
        await session.wait_arrival()
        order.append(robot_id)
        watch()
        await session.enter()
        await session.entered()
        await session.ride_to(to)
        await session.exit()
        await session.release()

    async def scenario() -> None:
        a = asyncio.ensure_future(one("robot-1", first, "B-3F", "B-5F"))
        await rig.pump.clock.settle()
        b = asyncio.ensure_future(one("robot-2", second, "B-1F", "B-2F"))
        await asyncio.gather(a, b)

    await rig.pump.run(scenario())
    assert order == ["robot-1", "robot-2"] and len(holders) == 2
    ends = [e for e in rig.service.building.state("B-L1").ended]
    assert [e.outcome for e in ends] == [SessionOutcome.FINISHED] * 2
    await first.close()
    await second.close()


async def test_idle_second_lift_serves_the_waiting_robot(rig: Rig) -> None:
    """Two robots ask for B-L1 at once: the second is served by the idle B-L2 without waiting."""
    first, second = rig.robot("robot-1"), rig.robot("robot-2")

    async def scenario() -> tuple[str | None, str | None]:
        a = await first.request_lift("B", "B-4F", lift="B-L1")
        b = await second.request_lift("B", "B-2F", lift="B-L1")
        await asyncio.gather(a.wait_arrival(), b.wait_arrival())
        lifts = (a.lift, b.lift)
        await a.release()
        await b.release()
        return lifts

    assert await rig.pump.run(scenario()) == ("B-L1", "B-L2")
    await first.close()
    await second.close()


async def test_vanished_robot_is_released_within_the_heartbeat_timeout(rig: Rig) -> None:
    """A robot that stops talking while its cabin waits for it loses the lift within the heartbeat
    timeout (8 s): RELEASED with HEARTBEAT_LOST in the lift's state."""
    robot = rig.robot("robot-1")
    session = await rig.pump.run(robot.request_lift("B", "B-1F", lift="B-L1"))
    await rig.pump.run(session.wait_arrival())
    await robot.close()  # gone: no END_SESSION, no more heartbeats
    gone_at = rig.clock.now()
    await rig.pump.wait(10)
    end = rig.service.building.state("B-L1").end_of(session.session_id)
    assert end is not None and end.outcome is SessionOutcome.RELEASED
    assert end.reason is EndReason.HEARTBEAT_LOST and end.time - gone_at <= 8.0 + 2.0


async def test_fire_mid_ride_aborts_the_ride_with_fire(rig: Rig) -> None:
    """Fire mode while the cabin rides: ``ride_to`` raises LiftAborted(FIRE) and the cabin goes to its
    fire floor."""
    robot = rig.robot("robot-1")

    async def scenario() -> None:
        session = await robot.request_lift("B", "B-1F", lift="B-L1")
        await session.wait_arrival()
        await session.enter()
        await session.entered()
        fire = asyncio.ensure_future(fire_after(rig, 4.0))
        try:
            await session.ride_to("B-6F")
        finally:
            await session.release()
            await fire

    with pytest.raises(LiftAborted) as caught:
        await rig.pump.run(scenario())
    assert caught.value.reason is EndReason.FIRE
    await rig.pump.wait(30)
    assert rig.lifts["B-L1"].status(rig.clock.now()).floor == "B-1F"
    assert rig.service.building.state("B-L1").current_mode is LiftMode.FIRE
    await robot.close()


async def fire_after(rig: Rig, seconds: float) -> None:
    await rig.clock.sleep(seconds)
    rig.lifts["B-L1"].set_mode(LiftMode.FIRE)


async def test_silent_controller_makes_the_lift_offline(rig: Rig) -> None:
    """A controller that stops reporting shows as OFFLINE in the lift's state within status_timeout_s."""
    rig.drivers["B-L2"].silent = True
    silent_at = rig.clock.now()
    late = MqttClient(rig.robot_mqtt.config)
    await late.connect()
    states = late.subscribe(lift_topic("B", "B-L2", "state"))
    while True:
        await rig.pump.wait(0.5)
        if rig.service.building.state("B-L2").current_mode is LiftMode.OFFLINE:
            break
    assert rig.clock.now() - silent_at <= 4.0 + 1.0
    await rig.pump.sync()
    last = None
    while states.pending():
        last = LiftState.model_validate_json(states.get_nowait().payload)
    assert last is not None and last.current_mode is LiftMode.OFFLINE and "SILENT" in last.faults
    await late.disconnect()


async def test_door_blocked_is_reported_and_aborts_by_policy(make_rig: MakeRig) -> None:
    """Doors that cannot close: with the abort policy the riding robot gets LiftAborted(DOOR_BLOCKED)
    and the doors stay open for it to get out."""
    rig = await make_rig(bridge_config(door_blocked="abort"))
    robot = rig.robot("robot-1")

    async def scenario() -> None:
        session = await robot.request_lift("B", "B-1F", lift="B-L1")
        await session.wait_arrival()
        await session.enter()
        await session.entered()
        rig.lifts["B-L1"].blocked = True
        try:
            await session.ride_to("B-5F")
        finally:
            state = session.state
            assert state is not None and state.door_state is not DoorState.CLOSED
            await session.exit()
            await session.release()

    with pytest.raises(LiftAborted) as caught:
        await rig.pump.run(scenario())
    assert caught.value.reason is EndReason.DOOR_BLOCKED
    await robot.close()


async def test_door_opens_holds_and_closes_by_itself(rig: Rig) -> None:
    """A door opens for a robot, stays open while it is held, closes after release; its relay is
    switched on the IoT topic."""
    relay = rig.robot_mqtt.subscribe("robopost/iot/b/1f/door/command")
    robot = rig.robot("robot-1")
    passage = await rig.pump.run(robot.open_door("B", "B-1F-door"))
    await rig.pump.wait(20)
    assert rig.service.doors["B-1F-door"].state().current_mode is DoorMode.OPEN
    await passage.release()
    await rig.pump.wait(10)
    state: DoorStateMsg = rig.service.doors["B-1F-door"].state()
    assert state.current_mode is DoorMode.CLOSED and state.holders == []
    commands = [json.loads(relay.get_nowait().payload)["open"] for _ in range(relay.pending())]
    assert commands == [True, False]
    await robot.close()
