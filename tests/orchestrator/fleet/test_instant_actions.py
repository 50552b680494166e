"""Instant actions: sent schema-valid, tracked until FINISHED/FAILED, resent while never reported."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import replace

import pytest
from fake_robot import FakeRobot, next_event
from vda5050_samples import sample_factsheet

from interfaces.clock import VirtualClock
from interfaces.vda5050 import ActionState, ActionStatus, HeaderFactory, read_action
from maps.model import Site
from orchestrator.fleet import (
    ActionEnded,
    ActionNotConfirmedError,
    FactsheetReceived,
    FleetMaster,
    FleetOptions,
    InstantActionHandle,
    LegError,
)

MakeRobot = Callable[..., Awaitable[FakeRobot]]
MakeMaster = Callable[[FleetOptions], Awaitable[FleetMaster]]


async def _run(robot: FakeRobot, handle: InstantActionHandle, *statuses: ActionStatus) -> None:
    for status in statuses:
        robot.set_action(handle.action_id, status, handle.action.action_type)
        await robot.publish_state()


@pytest.mark.parametrize(
    ("call", "action_type"),
    [
        ("pause", "startPause"),
        ("resume", "stopPause"),
        ("cancel", "cancelOrder"),
        ("request_state", "stateRequest"),
        ("request_factsheet", "factsheetRequest"),
    ],
)
async def test_instant_action_tracked_until_finished(
    master: FleetMaster, make_robot: MakeRobot, call: str, action_type: str
) -> None:
    """Each instant action reaches the robot (schema-checked on arrival) and its handle resolves
    only when the robot reports it FINISHED; RUNNING marks it reported."""
    robot = await make_robot("r1")
    with master.subscribe() as events:
        handle: InstantActionHandle = await getattr(master, call)("r1")
        received = await robot.next_instant()
        assert [a.action_type for a in received.actions] == [action_type]
        assert received.actions[0].action_id == handle.action_id
        await _run(robot, handle, ActionStatus.RUNNING)
        await asyncio.wait_for(handle.reported, 5)
        assert not handle.done.done()
        await _run(robot, handle, ActionStatus.FINISHED)
        ended = await asyncio.wait_for(handle.done, 5)
        assert ended == await next_event(events, ActionEnded)
        assert (ended.status, ended.action_type) == ("FINISHED", action_type)


async def test_failed_action_reports_failed(master: FleetMaster, make_robot: MakeRobot) -> None:
    """A FAILED action resolves its handle with status FAILED and the robot's result description."""
    robot = await make_robot("r1")
    handle = await master.cancel("r1")
    await robot.next_instant()
    robot.action_states[handle.action_id] = ActionState(
        action_id=handle.action_id,
        action_type="cancelOrder",
        action_status=ActionStatus.FAILED,
        result_description="noOrderToCancel",
    )
    await robot.publish_state()
    ended = await asyncio.wait_for(handle.done, 5)
    assert (ended.status, ended.result) == ("FAILED", "noOrderToCancel")


async def test_unreported_action_is_resent_then_given_up(
    master: FleetMaster, make_robot: MakeRobot, clock: VirtualClock
) -> None:
    """An instant action the robot never lists is resent identically (new header) up to the limit,
    then fails with ActionNotConfirmedError and an UNCONFIRMED ActionEnded."""
    robot = await make_robot("r1")
    with master.subscribe() as events:
        handle = await master.pause("r1")
        first = await robot.next_instant()
        for _ in range(master.options.max_resends):
            await clock.run_for(master.options.confirm_timeout_s)
            again = await robot.next_instant()
            assert again.actions == first.actions and again.header_id > first.header_id
        await clock.run_for(master.options.confirm_timeout_s)
        with pytest.raises(ActionNotConfirmedError, match="never reported after 3 sendings"):
            await asyncio.wait_for(handle.done, 5)
        assert (await next_event(events, ActionEnded)).status == "UNCONFIRMED"


async def test_init_position_at_a_map_node(
    master: FleetMaster, make_robot: MakeRobot, small_site: Site
) -> None:
    """initPosition at a node carries the node's map coordinates, its map id and lastNodeId."""
    robot = await make_robot("r2")
    await master.init_position("r2", "h3b", theta=1.5)
    action = (await robot.next_instant()).actions[0]
    params = read_action(action)
    assert params.model_dump(by_alias=False) == {
        "x": 220.0,
        "y": 20.0,
        "theta": 1.5,
        "map_id": "H3",
        "last_node_id": "h3b",
    }
    with pytest.raises(LegError, match="unknown map node 'nowhere'"):
        await master.init_position("r2", "nowhere")


async def test_factsheet_is_requested_on_connect_and_registered(
    make_master: MakeMaster, make_robot: MakeRobot, clock: VirtualClock, fleet_options: FleetOptions
) -> None:
    """With request_factsheet on, a robot coming online is asked for its factsheet; the factsheet it
    publishes is registered (FactsheetReceived; the view names its series)."""
    master = await make_master(replace(fleet_options, request_factsheet=True))
    with master.subscribe() as events:
        robot = await make_robot("r2")
        request = await robot.next_instant()
        assert request.actions[0].action_type == "factsheetRequest"
        factsheet = sample_factsheet(HeaderFactory("acme", "r2", clock=clock))
        await robot.publish_factsheet(factsheet)
        received = await next_event(events, FactsheetReceived)
    assert (received.robot, received.series_name) == ("r2", "robopost-cart")
    assert master.view("r2").factsheet == "robopost-cart"
    assert master.picture.robots["r2"].factsheet == factsheet
