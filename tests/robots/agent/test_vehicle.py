"""Order traversal by the Vehicle on a SimDriver in virtual time: actions, blocking types, pause, cancel."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from agent_samples import MAP, act, instant, line_order, master_headers, run_until
from vda5050_samples import OfficialSchemas

from interfaces.clock import VirtualClock
from interfaces.vda5050 import (
    Action,
    ActionStatus,
    BlockingType,
    ErrorLevel,
    ErrorType,
    HeaderFactory,
    OperatingMode,
    State,
    TopicKind,
    to_json,
)
from robots.agent.driver import DriverResult, Pose
from robots.agent.order import Verdict as OrderVerdict
from robots.agent.sim_driver import NAVIGATE, SimDriver, SimDriverConfig
from robots.agent.vehicle import (
    ACTION_FAILED,
    NAVIGATION_FAILED,
    NAVIGATION_IMPOSSIBLE,
    Vehicle,
    VehicleSettings,
)

DURATIONS = {"pick": 2.0, "drop": 2.0, "openCompartment": 1.0, "beep": 5.0}


@dataclass(frozen=True)
class Row:
    """The vehicle at one change."""

    time: float
    statuses: dict[str, ActionStatus]
    driving: bool
    x: float
    last_node: str
    nodes: int
    paused: bool


class Recorder:
    """Records a ``Row`` at every change of the vehicle."""

    def __init__(self, vehicle: Vehicle, clock: VirtualClock) -> None:
        self.vehicle, self.clock, self.rows = vehicle, clock, list[Row]()
        vehicle.add_listener(self.record)

    def record(self) -> None:
        v = self.vehicle
        records = [*(v.order.actions.values() if v.order else []), *v.instant.values()]
        pose = v.driver.readout().pose
        self.rows.append(
            Row(
                time=self.clock.monotonic(),
                statuses={r.action_id: r.status for r in records},
                driving=v.driver.readout().driving,
                x=pose.x if pose else 0.0,
                last_node=v.last_node_id,
                nodes=len(v.order.nodes) if v.order else 0,
                paused=v.paused,
            )
        )

    def statuses(self, action_id: str) -> list[ActionStatus]:
        """The distinct statuses an action went through, in order."""
        seen: list[ActionStatus] = []
        for row in self.rows:
            status = row.statuses.get(action_id)
            if status is not None and (not seen or seen[-1] is not status):
                seen.append(status)
        return seen

    def first(self, action_id: str, status: ActionStatus) -> Row:
        return next(r for r in self.rows if r.statuses.get(action_id) is status)

    def while_status(self, action_id: str, status: ActionStatus) -> list[Row]:
        return [r for r in self.rows if r.statuses.get(action_id) is status]


@dataclass
class Rig:
    clock: VirtualClock
    driver: SimDriver
    vehicle: Vehicle
    rec: Recorder
    headers: HeaderFactory
    factsheets: list[int]

    def over(self) -> bool:
        return not self.vehicle.busy


@pytest.fixture
async def rig() -> AsyncIterator[Rig]:
    """A vehicle at (0, 0) on map ``m``; 1 m/s, fast turns; retries after 1 s; on a virtual clock."""
    clock = VirtualClock(1_700_000_000.0)
    driver = SimDriver(
        clock,
        SimDriverConfig(speed=1.0, turn_rate=20.0, action_durations=DURATIONS),
        start=Pose(0, 0, 0, MAP),
    )
    factsheets: list[int] = []
    vehicle = Vehicle(
        driver,
        clock,
        VehicleSettings(map_id=MAP, drive_retries=1, action_retries=0, retry_delay=1.0),
        on_factsheet_request=lambda: factsheets.append(1),
    )
    await vehicle.start()
    yield Rig(clock, driver, vehicle, Recorder(vehicle, clock), master_headers(clock), factsheets)
    await vehicle.stop()


async def _send(rig: Rig, *actions: Action) -> None:
    """Hand the vehicle one instantActions message."""
    await rig.vehicle.receive_instant_actions(instant(rig.headers, *actions))


def _errors(vehicle: Vehicle) -> list[tuple[str, ErrorLevel, str]]:
    body = vehicle.state_body()
    return [(e.error_type, e.error_level, e.error_description or "") for e in body["errors"]]


async def test_order_runs_node_to_node_and_states_shrink(rig: Rig, shared_data: Path) -> None:
    """Nodes are reached in turn: lastNodeId advances, nodeStates/edgeStates shrink, the order finishes;
    every state on the way validates against the official schema."""
    schemas = OfficialSchemas(shared_data)
    robot = HeaderFactory("acme", "r1", clock=rig.clock)
    states: list[State] = []
    rig.vehicle.add_listener(lambda: states.append(robot.make(State, **rig.vehicle.state_body())))
    decision = await rig.vehicle.receive_order(line_order(rig.headers, last=3))
    assert decision.verdict is OrderVerdict.NEW
    took = await run_until(rig.clock, rig.over)
    assert 6.0 <= took < 8.0  # 6 m at 1 m/s
    assert sorted({(r.last_node, r.nodes) for r in rig.rec.rows}) == [
        ("n0", 3),
        ("n1", 2),
        ("n2", 1),
        ("n3", 0),
    ]
    last = states[-1]
    assert (last.last_node_id, last.last_node_sequence_id, last.node_states, last.edge_states) == (
        "n3",
        6,
        [],
        [],
    )
    mid = next(s for s in states if s.driving and s.last_node_id == "n1")
    assert [n.node_id for n in mid.node_states] == ["n2", "n3"] and [e.edge_id for e in mid.edge_states] == [
        "e1",
        "e2",
    ]
    assert any((s.distance_since_last_node or 0) > 0.5 for s in states)
    for state in [*states[:: max(1, len(states) // 20)], last]:
        schemas.check(TopicKind.STATE, to_json(state))
    assert rig.driver.pose == Pose(6.0, 0.0, 0.0, MAP)


async def test_action_states_follow_the_life_cycle(rig: Rig) -> None:
    """A node action goes WAITING → INITIALIZING → RUNNING → FINISHED, through the driver, once."""
    order = line_order(rig.headers, node_actions={1: [act("p1", "pick", BlockingType.HARD, loadId="x")]})
    await rig.vehicle.receive_order(order)
    await run_until(rig.clock, rig.over)
    assert rig.rec.statuses("p1") == [
        ActionStatus.WAITING,
        ActionStatus.INITIALIZING,
        ActionStatus.RUNNING,
        ActionStatus.FINISHED,
    ]
    assert [(a.action_type, dict(a.parameters)) for a in rig.driver.action_log] == [("pick", {"loadId": "x"})]
    assert rig.rec.first("p1", ActionStatus.RUNNING).last_node == "n1"


async def test_hard_action_waits_for_others_and_robot_stands(rig: Rig) -> None:
    """HARD starts only once the running NONE action ended, runs alone, and the robot stands meanwhile."""
    order = line_order(
        rig.headers,
        node_actions={1: [act("b1", "beep", BlockingType.NONE), act("p1", "pick", BlockingType.HARD)]},
    )
    await rig.vehicle.receive_order(order)
    await run_until(rig.clock, rig.over)
    beep_done = rig.rec.first("b1", ActionStatus.FINISHED).time
    assert rig.rec.first("p1", ActionStatus.INITIALIZING).time >= beep_done
    assert all(
        r.statuses["b1"] is ActionStatus.FINISHED for r in rig.rec.while_status("p1", ActionStatus.RUNNING)
    )
    assert not any(r.driving for r in rig.rec.while_status("p1", ActionStatus.RUNNING))
    leaving = next(r for r in rig.rec.rows if r.driving and r.last_node == "n1")
    assert leaving.time >= rig.rec.first("p1", ActionStatus.FINISHED).time


async def test_soft_actions_run_together_while_robot_stands(rig: Rig) -> None:
    """Two SOFT actions on a node run at the same time; the robot leaves only after both."""
    order = line_order(
        rig.headers,
        node_actions={
            1: [
                act("o1", "openCompartment", BlockingType.SOFT, compartment=1),
                act("o2", "openCompartment", BlockingType.SOFT, compartment=2),
            ]
        },
    )
    await rig.vehicle.receive_order(order)
    await run_until(rig.clock, rig.over)
    both = [
        r
        for r in rig.rec.rows
        if r.statuses["o1"] is ActionStatus.RUNNING and r.statuses["o2"] is ActionStatus.RUNNING
    ]
    assert both and not any(r.driving for r in both)
    leaving = next(r for r in rig.rec.rows if r.driving and r.last_node == "n1")
    assert leaving.time >= max(rig.rec.first(a, ActionStatus.FINISHED).time for a in ("o1", "o2"))


async def test_none_action_runs_while_driving(rig: Rig) -> None:
    """A NONE node action keeps running while the robot drives on; the order ends when it is over."""
    order = line_order(rig.headers, node_actions={0: [act("b0", "beep", BlockingType.NONE)]})
    await rig.vehicle.receive_order(order)
    await run_until(rig.clock, rig.over)
    assert any(r.driving for r in rig.rec.while_status("b0", ActionStatus.RUNNING))
    assert rig.rec.first("b0", ActionStatus.FINISHED).time >= 5.0  # the beep outlasts the 4 m drive


async def test_edge_action_ends_when_the_edge_is_left(rig: Rig) -> None:
    """A NONE edge action runs while the edge is driven and ends FINISHED ("edge left") at its end node."""
    order = line_order(rig.headers, edge_actions={0: [act("b", "beep", BlockingType.NONE)]})
    await rig.vehicle.receive_order(order)
    await run_until(rig.clock, rig.over)
    finished = rig.rec.first("b", ActionStatus.FINISHED)
    assert finished.last_node == "n1" and finished.time < 5.0
    assert rig.vehicle.order is not None and rig.vehicle.order.actions["b"].result == "edge left"
    assert any(r.driving for r in rig.rec.while_status("b", ActionStatus.RUNNING))


async def test_pause_stops_driving_and_resume_continues(rig: Rig) -> None:
    """startPause stops the robot (paused in state, no motion), stopPause resumes and the order finishes."""
    await rig.vehicle.receive_order(line_order(rig.headers))
    await rig.clock.run_for(1.0)
    await rig.vehicle.receive_instant_actions(
        instant(rig.headers, act("sp", "startPause", BlockingType.HARD))
    )
    await run_until(rig.clock, lambda: not rig.driver.readout().driving)
    held = rig.driver.pose
    await rig.clock.run_for(5.0)
    assert rig.driver.pose == held and 0.5 < held.x < 2.0
    body = rig.vehicle.state_body()
    assert body["paused"] is True and body["driving"] is False
    assert rig.vehicle.instant["sp"].status is ActionStatus.FINISHED
    await _send(rig, act("rp", "stopPause", BlockingType.HARD))
    await run_until(rig.clock, rig.over)
    assert rig.vehicle.order is not None and rig.vehicle.order.finished
    assert rig.vehicle.state_body()["paused"] is False and rig.driver.pose.x == 4.0


async def test_pause_keeps_new_actions_waiting(rig: Rig) -> None:
    """While paused no new order action starts; after stopPause it runs."""
    order = line_order(rig.headers, last=1, node_actions={1: [act("p1", "pick", BlockingType.HARD)]})
    await rig.vehicle.receive_order(order)
    await rig.vehicle.receive_instant_actions(
        instant(rig.headers, act("sp", "startPause", BlockingType.HARD))
    )
    await rig.clock.run_for(10.0)
    assert rig.vehicle.order is not None and rig.vehicle.order.actions["p1"].status is ActionStatus.WAITING
    await _send(rig, act("rp", "stopPause", BlockingType.HARD))
    await run_until(rig.clock, rig.over)
    assert rig.rec.statuses("p1")[-1] is ActionStatus.FINISHED


async def test_cancel_stops_and_fails_pending_actions(rig: Rig) -> None:
    """cancelOrder mid-edge: robot stops, open actions FAILED, states emptied, then cancelOrder FINISHED."""
    order = line_order(
        rig.headers,
        node_actions={2: [act("d2", "drop", BlockingType.HARD)]},
        edge_actions={0: [act("b", "beep", BlockingType.NONE)]},
    )
    await rig.vehicle.receive_order(order)
    await rig.clock.run_for(1.0)
    await rig.vehicle.receive_instant_actions(
        instant(rig.headers, act("c", "cancelOrder", BlockingType.NONE))
    )
    progress = rig.vehicle.order
    assert progress is not None and progress.idle
    assert {a: r.status for a, r in progress.actions.items()} == {
        "b": ActionStatus.FAILED,
        "d2": ActionStatus.FAILED,
    }
    assert rig.rec.statuses("c") == [ActionStatus.RUNNING, ActionStatus.FINISHED]
    cancel_done = rig.rec.first("c", ActionStatus.FINISHED)
    assert cancel_done.statuses == {
        "b": ActionStatus.FAILED,
        "d2": ActionStatus.FAILED,
        "c": ActionStatus.FINISHED,
    }
    body = rig.vehicle.state_body()
    assert body["node_states"] == [] and body["edge_states"] == [] and body["order_id"] == "o-1"
    stopped = rig.driver.pose
    await rig.clock.run_for(3.0)
    assert rig.driver.pose == stopped and not rig.driver.readout().driving
    assert [a.action_type for a in rig.driver.action_log] == []
    again = line_order(rig.headers, order_id="o-2", first=0, last=1)
    again.nodes[0].node_position.allowed_deviation_xy = 2.0  # type: ignore[union-attr]
    assert (await rig.vehicle.receive_order(again)).verdict is OrderVerdict.NEW


async def test_cancel_fails_the_running_action(rig: Rig) -> None:
    """Cancelling during a HARD action ends it FAILED; the cancel finishes after it."""
    order = line_order(rig.headers, node_actions={0: [act("p0", "pick", BlockingType.HARD)]})
    await rig.vehicle.receive_order(order)
    await rig.clock.run_for(0.5)
    assert rig.vehicle.order is not None and rig.vehicle.order.actions["p0"].status is ActionStatus.RUNNING
    await rig.vehicle.receive_instant_actions(
        instant(rig.headers, act("c", "cancelOrder", BlockingType.NONE))
    )
    assert rig.vehicle.order.actions["p0"].status is ActionStatus.FAILED
    assert rig.rec.first("p0", ActionStatus.FAILED).time <= rig.rec.first("c", ActionStatus.FINISHED).time
    assert rig.vehicle.instant["c"].status is ActionStatus.FINISHED


async def test_cancel_without_order_reports_no_order_to_cancel(rig: Rig) -> None:
    """cancelOrder with no order: the action FAILED and a noOrderToCancel error in state."""
    await rig.vehicle.receive_instant_actions(
        instant(rig.headers, act("c", "cancelOrder", BlockingType.NONE))
    )
    assert rig.vehicle.instant["c"].status is ActionStatus.FAILED
    assert _errors(rig.vehicle) == [
        (ErrorType.NO_ORDER_TO_CANCEL.value, ErrorLevel.WARNING, "cancelOrder 'c': there is no order")
    ]


async def test_drive_retry_is_retried(rig: Rig) -> None:
    """A drive answered RETRY is tried again after retry_delay and the order completes without error."""
    rig.driver.fail_next(NAVIGATE, DriverResult.RETRY)
    await rig.vehicle.receive_order(line_order(rig.headers))
    took = await run_until(rig.clock, rig.over)
    assert rig.vehicle.order is not None and rig.vehicle.order.finished
    assert _errors(rig.vehicle) == [] and took >= 5.0  # 4 m + 1 s retry delay


async def test_drive_retries_exhausted_fail_the_order(rig: Rig) -> None:
    """RETRY more often than drive_retries: the order fails with navigationFailed, actions FAILED."""
    rig.driver.fail_next(NAVIGATE, DriverResult.RETRY)
    rig.driver.fail_next(NAVIGATE, DriverResult.RETRY)
    order = line_order(rig.headers, node_actions={1: [act("p1", "pick", BlockingType.HARD)]})
    await rig.vehicle.receive_order(order)
    await run_until(rig.clock, rig.over)
    progress = rig.vehicle.order
    assert progress is not None and progress.idle and not progress.finished
    assert progress.actions["p1"].status is ActionStatus.FAILED and progress.nodes == []
    [(kind, level, text)] = _errors(rig.vehicle)
    assert (kind, level) == (NAVIGATION_FAILED, ErrorLevel.WARNING) and "after 2 attempts" in text


async def test_drive_impossible_fails_the_order(rig: Rig) -> None:
    """IMPOSSIBLE: the order fails at once with a FATAL navigationImpossible error."""
    rig.driver.fail_next(NAVIGATE, DriverResult.IMPOSSIBLE)
    await rig.vehicle.receive_order(line_order(rig.headers))
    await run_until(rig.clock, rig.over)
    [(kind, level, text)] = _errors(rig.vehicle)
    assert (kind, level) == (NAVIGATION_IMPOSSIBLE, ErrorLevel.FATAL) and "node n1" in text
    assert rig.vehicle.state_body()["node_states"] == []


async def test_failed_action_is_reported_and_the_order_goes_on(rig: Rig) -> None:
    """An action the driver cannot do ends FAILED with an actionFailed error; the order still finishes."""
    order = line_order(rig.headers, node_actions={1: [act("f", "fly", BlockingType.HARD)]})
    await rig.vehicle.receive_order(order)
    await run_until(rig.clock, rig.over)
    assert rig.vehicle.order is not None and rig.vehicle.order.finished
    assert rig.vehicle.order.actions["f"].status is ActionStatus.FAILED
    assert [e[0] for e in _errors(rig.vehicle)] == [ACTION_FAILED]


async def test_waits_at_base_end_then_continues_after_update(rig: Rig) -> None:
    """At the end of the base the robot stops and waits; an update stitched there releases the rest.
    The decision point's action, repeated in the update, runs once."""
    pick = act("p1", "pick", BlockingType.HARD)
    order = line_order(rig.headers, last=3, base_end=1, node_actions={1: [pick]})
    await rig.vehicle.receive_order(order)
    await rig.clock.run_for(10.0)
    body = rig.vehicle.state_body()
    assert body["last_node_id"] == "n1" and not body["driving"]
    assert [(n.node_id, n.released) for n in body["node_states"]] == [("n2", False), ("n3", False)]
    assert rig.vehicle.busy
    update = line_order(rig.headers, update=1, first=1, last=3, node_actions={1: [pick]})
    assert (await rig.vehicle.receive_order(update)).verdict is OrderVerdict.UPDATE
    await run_until(rig.clock, rig.over)
    assert rig.vehicle.last_node_id == "n3" and rig.driver.pose.x == 6.0
    assert [a.action_type for a in rig.driver.action_log] == ["pick"]


async def test_identical_resend_runs_nothing_twice(rig: Rig) -> None:
    """The same order sent again mid-run changes nothing: every action runs once."""
    order = line_order(rig.headers, node_actions={0: [act("p0", "pick", BlockingType.HARD)]})
    await rig.vehicle.receive_order(order)
    await rig.clock.run_for(3.0)
    assert (await rig.vehicle.receive_order(order)).verdict is OrderVerdict.RESEND
    await run_until(rig.clock, rig.over)
    assert (await rig.vehicle.receive_order(order)).verdict is OrderVerdict.RESEND
    await rig.clock.run_for(3.0)
    assert [a.action_type for a in rig.driver.action_log] == ["pick"] and _errors(rig.vehicle) == []


async def test_rejected_order_is_reported_and_nothing_runs(rig: Rig) -> None:
    """A new order far from the robot: orderError in state, no order taken."""
    order = line_order(rig.headers, first=3, last=4)
    decision = await rig.vehicle.receive_order(order)
    assert decision.verdict is OrderVerdict.REJECT and rig.vehicle.order is None
    [(kind, _, text)] = _errors(rig.vehicle)
    assert kind == ErrorType.ORDER_ERROR.value and "6.00 m from first node n3" in text


async def test_instant_soft_action_holds_the_robot(rig: Rig) -> None:
    """An instant SOFT action during a drive stops the robot while it runs; the drive then resumes."""
    await rig.vehicle.receive_order(line_order(rig.headers))
    await rig.clock.run_for(1.0)
    opening = act("io", "openCompartment", BlockingType.SOFT, compartment=0)
    await rig.vehicle.receive_instant_actions(instant(rig.headers, opening))
    await run_until(rig.clock, rig.over)
    running = rig.rec.while_status("io", ActionStatus.RUNNING)
    assert running[-1].x - running[0].x < 0.15  # at most one 0.1 s step before the hold bites
    assert rig.vehicle.instant["io"].status is ActionStatus.FINISHED and rig.driver.pose.x == 4.0


async def test_instant_action_id_runs_once(rig: Rig) -> None:
    """An instantActions message received twice runs its actions once."""
    message = instant(rig.headers, act("io", "openCompartment", BlockingType.SOFT, compartment=0))
    await rig.vehicle.receive_instant_actions(message)
    await rig.vehicle.receive_instant_actions(message)
    await run_until(rig.clock, rig.over)
    assert [a.action_type for a in rig.driver.action_log] == ["openCompartment"]


async def test_agent_level_instant_actions(rig: Rig) -> None:
    """initPosition moves the robot and sets lastNodeId; setOperatingMode, stateRequest and
    factsheetRequest are handled by the agent."""
    await rig.vehicle.receive_instant_actions(
        instant(
            rig.headers,
            act("i", "initPosition", BlockingType.HARD, x=5.0, y=1.0, theta=0.5, mapId=MAP, lastNodeId="n7"),
            act("m", "setOperatingMode", BlockingType.HARD, mode="SERVICE"),
            act("s", "stateRequest", BlockingType.NONE),
            act("f", "factsheetRequest", BlockingType.NONE),
        )
    )
    await run_until(rig.clock, rig.over)
    assert all(r.status is ActionStatus.FINISHED for r in rig.vehicle.instant.values())
    assert rig.driver.pose == Pose(5.0, 1.0, 0.5, MAP) and rig.vehicle.last_node_id == "n7"
    assert rig.vehicle.state_body()["operating_mode"] is OperatingMode.SERVICE
    assert rig.factsheets == [1]


async def test_invalid_instant_actions_are_reported(rig: Rig) -> None:
    """Duplicate ids in one instantActions message: validationError, nothing runs."""
    a = act("x", "openCompartment", BlockingType.SOFT, compartment=0)
    await rig.vehicle.receive_instant_actions(instant(rig.headers, a, a))
    assert rig.vehicle.instant == {}
    [(kind, _, text)] = _errors(rig.vehicle)
    assert kind == ErrorType.VALIDATION_ERROR.value and "'x' is used 2 times" in text


async def test_update_after_the_order_finished_continues_it(rig: Rig) -> None:
    """An order that ran to its end takes an update stitched at its last node and drives on."""
    await rig.vehicle.receive_order(
        line_order(rig.headers, last=1, node_actions={0: [act("b", "beep", BlockingType.NONE)]})
    )
    await rig.clock.run_for(3.0)  # at n1, the beep still running
    update = line_order(rig.headers, update=1, first=1, last=2)
    assert (await rig.vehicle.receive_order(update)).verdict is OrderVerdict.UPDATE
    await run_until(rig.clock, rig.over)
    assert rig.vehicle.last_node_id == "n2" and rig.driver.pose.x == 4.0
    update = line_order(rig.headers, update=2, first=2, last=3)
    assert (await rig.vehicle.receive_order(update)).verdict is OrderVerdict.UPDATE
    await run_until(rig.clock, rig.over)
    assert rig.vehicle.last_node_id == "n3" and rig.vehicle.order is not None and rig.vehicle.order.finished
