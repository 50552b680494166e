"""Connection tracking: retained connection messages, the last will, the stale-state timeout."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from fake_robot import FakeRobot, StateWaiter, die_without_goodbye, next_event

from interfaces.clock import VirtualClock
from interfaces.vda5050 import ConnectionState
from orchestrator.fleet import FleetMaster, Link, LinkChanged

MakeRobot = Callable[..., Awaitable[FakeRobot]]


async def test_online_then_offline(master: FleetMaster, make_robot: MakeRobot) -> None:
    """A robot's retained ONLINE makes it online; its OFFLINE on a clean stop makes it offline."""
    assert master.view("r1").link is Link.UNKNOWN
    with master.subscribe() as events:
        robot = await make_robot("r1")
        change = await next_event(events, LinkChanged, robot="r1")
        assert (change.previous, change.link) == (Link.UNKNOWN, Link.ONLINE)
        assert master.view("r1").online
        await robot.stop()
        assert (await next_event(events, LinkChanged, robot="r1")).link is Link.OFFLINE
    assert not master.view("r1").online


async def test_retained_connection_is_read_at_start(
    make_master: Callable[..., Awaitable[FleetMaster]], make_robot: MakeRobot
) -> None:
    """A master started after the robot announced itself learns the link from the retained message."""
    await make_robot("r2")
    master = await make_master()
    with master.subscribe() as events:
        if master.view("r2").link is not Link.ONLINE:
            await next_event(events, LinkChanged, robot="r2", link=Link.ONLINE)
    assert master.view("r2").online and master.view("r1").link is Link.UNKNOWN


async def test_last_will_marks_the_robot_broken(
    master: FleetMaster, make_robot: MakeRobot, mqtt_broker
) -> None:  # type: ignore[no-untyped-def]
    """A robot whose link dies without a goodbye: the broker publishes its will CONNECTIONBROKEN and
    the master marks it offline."""
    with master.subscribe() as events:
        robot = await make_robot("r1")
        await next_event(events, LinkChanged, robot="r1", link=Link.ONLINE)
        will = robot.connection_bytes(ConnectionState.CONNECTIONBROKEN)
        await asyncio.to_thread(
            die_without_goodbye, mqtt_broker, str(robot.topic.sibling("connection")), will, "r1-b"
        )
        change = await next_event(events, LinkChanged, robot="r1")
    assert (change.previous, change.link) == (Link.ONLINE, Link.CONNECTIONBROKEN)
    assert not master.view("r1").online


async def test_stale_state_timeout(
    master: FleetMaster, make_robot: MakeRobot, clock: VirtualClock, seen: StateWaiter
) -> None:
    """No state for stale_after_s makes an online robot STALE (offline); its next state revives it."""
    with master.subscribe() as events:
        robot = await make_robot("r1")
        await next_event(events, LinkChanged, robot="r1", link=Link.ONLINE)
        await robot.publish_state()
        await seen.wait("r1", 1)
        await clock.run_for(master.options.stale_after_s - 1)
        assert master.view("r1").online
        assert master.view("r1").age_s == master.options.stale_after_s - 1
        await clock.run_for(2)
        assert (await next_event(events, LinkChanged, robot="r1")).link is Link.STALE
        assert not master.view("r1").online
        await robot.publish_state()
        assert (await next_event(events, LinkChanged, robot="r1")).link is Link.ONLINE


async def test_a_state_does_not_revive_an_offline_robot(
    master: FleetMaster, make_robot: MakeRobot, seen: StateWaiter
) -> None:
    """After OFFLINE, a stray state updates the picture but the robot stays offline until it says ONLINE."""
    with master.subscribe() as events:
        robot = await make_robot("r1")
        await next_event(events, LinkChanged, robot="r1", link=Link.ONLINE)
        await robot.send("connection", robot.connection_bytes(ConnectionState.OFFLINE), retain=True)
        await next_event(events, LinkChanged, robot="r1", link=Link.OFFLINE)
        robot.battery = 42.0
        await robot.publish_state()
        await seen.wait("r1", 1)
    view = master.view("r1")
    assert view.link is Link.OFFLINE and view.battery_charge == 42.0
