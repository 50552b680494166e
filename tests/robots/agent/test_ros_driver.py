"""RosDriver against the simulated ROS 2 base, both real rclpy nodes (own contexts) in this process."""

from __future__ import annotations

import asyncio
import math
import subprocess
import sys
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from ros_fixtures import RosEnv
from std_srvs.srv import Trigger

from robots.agent.driver import ActionOutcome, DriverResult, Pose, Readout
from robots.agent.readout_feed import ReadoutStream
from robots.agent.ros_driver import RosDriver, RosDriverConfig
from robots.rosutil import RosLinkError, RosNodeHost
from sim.ros_base import BaseConfig, SimulatedBase

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[3]
WAIT = 5.0
"""Seconds a test waits for a readout before it fails (every wait here normally takes < 0.5 s)."""


def fast_base(namespace: str, **overrides: Any) -> SimulatedBase:
    """A quick base: 5 m/s, 10 rad/s, odometry at 50 Hz, in the test's namespace."""
    settings: dict[str, Any] = {"speed": 5.0, "turn_rate": 10.0, "odometry_rate": 50.0, **overrides}
    return SimulatedBase(BaseConfig(namespace=namespace, **settings))


async def wait_readout(
    stream: ReadoutStream, predicate: Callable[[Readout], bool], timeout: float = WAIT
) -> Readout:
    """The first readout from ``stream`` that satisfies ``predicate``."""

    async def scan() -> Readout:
        async for readout in stream:
            if predicate(readout):
                return readout
        raise AssertionError("readout stream ended")

    return await asyncio.wait_for(scan(), timeout)


def near(pose: Pose | None, x: float, y: float, tolerance: float = 1e-3) -> bool:
    """Whether ``pose`` is within ``tolerance`` metres of (x, y)."""
    return pose is not None and math.hypot(pose.x - x, pose.y - y) <= tolerance


@pytest.fixture
def base(ros_env: RosEnv) -> Iterator[SimulatedBase]:
    """A running fast simulated base in the test's namespace."""
    simulated = fast_base(ros_env.namespace)
    simulated.start()
    yield simulated
    simulated.close()


@pytest.fixture
async def driver(ros_env: RosEnv, base: SimulatedBase) -> AsyncIterator[RosDriver]:
    """A started RosDriver that has heard the base's odometry."""
    ros_driver = RosDriver(RosDriverConfig(namespace=ros_env.namespace, stall_timeout=2.0))
    await ros_driver.start()
    stream = ros_driver.readouts()
    await wait_readout(stream, lambda r: r.pose is not None)
    stream.close()
    yield ros_driver
    await ros_driver.stop()


async def test_navigate_reaches_the_goal(driver: RosDriver, base: SimulatedBase) -> None:
    """navigate returns SUCCESS within tolerance of the goal; the base then stands exactly on it."""
    stream = driver.readouts()
    result = await asyncio.wait_for(driver.navigate(Pose(3.0, 4.0, math.pi / 2, "map")), WAIT)
    assert result is DriverResult.SUCCESS
    assert near(driver.readout().pose, 3.0, 4.0, tolerance=0.1)
    facing_up = await wait_readout(
        stream, lambda r: near(r.pose, 3.0, 4.0) and r.pose is not None and r.pose.theta > math.pi / 2 - 1e-3
    )
    assert facing_up.pose is not None
    assert facing_up.pose.theta == pytest.approx(math.pi / 2, abs=1e-3)
    assert near((await wait_readout(stream, lambda r: not r.driving)).pose, 3.0, 4.0)
    assert near(base.pose, 3.0, 4.0)


async def test_speed_limit_caps_goal_drives_and_zero_lifts_it(driver: RosDriver, base: SimulatedBase) -> None:
    """``limit_speed`` reaches the base on ``speed_limit``: a goal drive goes no faster than the cap;
    None lifts it (0 on the topic) and a cap of 0 is not sent (standing is the safety hold's job)."""
    stream = driver.readouts()
    driver.limit_speed(1.0)
    await wait_readout(stream, lambda _r: base.speed_limit == 1.0)
    speeds: list[float] = []
    watch = driver.readouts()
    drive = asyncio.create_task(driver.navigate(Pose(2.0, 0.0, 0.0, "map")))
    async for readout in watch:
        speeds.append(readout.vx)
        if drive.done():
            break
    assert await drive is DriverResult.SUCCESS
    assert 0.5 < max(speeds) <= 1.0 + 1e-6  # the base's own top speed is 5 m/s
    driver.limit_speed(0.0)
    driver.limit_speed(None)
    await wait_readout(stream, lambda _r: base.speed_limit == 0.0)


async def test_a_five_node_route_runs_in_seconds(driver: RosDriver, base: SimulatedBase) -> None:
    """Five goals in a row all succeed and the base ends on the last one."""
    route = [(2.0, 0.0), (2.0, 2.0), (0.0, 3.0), (-2.0, 1.0), (0.0, 0.0)]
    for x, y in route:
        assert await asyncio.wait_for(driver.navigate(Pose(x, y)), WAIT) is DriverResult.SUCCESS
    stream = driver.readouts()
    await wait_readout(stream, lambda r: not r.driving and near(r.pose, 0.0, 0.0))
    assert base.goals_received >= len(route)


async def test_cancelling_navigate_stops_the_base(driver: RosDriver, base: SimulatedBase) -> None:
    """Cancelling a drive halfway stops the base where it is: odometry speed drops to 0 and stays."""
    stream = driver.readouts()
    drive = asyncio.create_task(driver.navigate(Pose(30.0, 0.0)))
    moving = await wait_readout(stream, lambda r: r.vx > 1.0)
    drive.cancel()
    with pytest.raises(asyncio.CancelledError):
        await drive
    stopped = await wait_readout(stream, lambda r: r.vx == 0.0 and r.omega == 0.0)
    assert stopped.pose is not None and moving.pose is not None
    assert 0.0 < stopped.pose.x < 30.0
    for _ in range(5):  # the next odometry messages: standing, where it stopped
        later = await wait_readout(stream, lambda r: True)
        assert later.vx == 0.0 and later.omega == 0.0
        assert near(later.pose, stopped.pose.x, stopped.pose.y)
    assert base.velocity == (0.0, 0.0)


async def test_battery_state_becomes_the_readout(driver: RosDriver, base: SimulatedBase) -> None:
    """BatteryState percentage (0..1) reads as percent, with its voltage and the charging flag."""
    stream = driver.readouts()
    base.set_battery(42.0)
    base.set_charging(True)
    readout = await wait_readout(stream, lambda r: r.charging)
    assert readout.battery_charge == pytest.approx(42.0, abs=0.1)
    assert readout.battery_voltage == pytest.approx(42.0 + 8.4 * 0.42, abs=0.01)
    base.set_charging(False)
    assert not (await wait_readout(stream, lambda r: not r.charging)).charging


async def test_e_stop_reads_out_and_refuses_driving(driver: RosDriver, base: SimulatedBase) -> None:
    """An e-stop diagnostic sets readout.e_stop and navigate answers RETRY until it is released."""
    stream = driver.readouts()
    base.set_e_stop(True)
    assert (await wait_readout(stream, lambda r: r.e_stop)).e_stop
    assert await driver.navigate(Pose(1.0, 0.0)) is DriverResult.RETRY
    base.set_e_stop(False)
    await wait_readout(stream, lambda r: not r.e_stop)
    assert await asyncio.wait_for(driver.navigate(Pose(1.0, 0.0)), WAIT) is DriverResult.SUCCESS


async def test_e_stop_during_a_drive_ends_it_with_retry(driver: RosDriver, base: SimulatedBase) -> None:
    """Pressing the e-stop mid-drive makes navigate return RETRY and the base stand."""
    stream = driver.readouts()
    drive = asyncio.create_task(driver.navigate(Pose(30.0, 0.0)))
    await wait_readout(stream, lambda r: r.vx > 1.0)
    base.set_e_stop(True)
    assert await asyncio.wait_for(drive, WAIT) is DriverResult.RETRY
    assert (await wait_readout(stream, lambda r: r.vx == 0.0)).e_stop


async def test_faults_and_field_violation_read_out(driver: RosDriver, base: SimulatedBase) -> None:
    """A fault diagnostic makes navigate IMPOSSIBLE until cleared; a field violation is reported."""
    stream = driver.readouts()
    base.inject_fault("lidar", "no scans")
    base.set_field_violation(True)
    readout = await wait_readout(stream, lambda r: bool(r.faults) and r.field_violation)
    assert readout.faults == ("lidar: no scans",)
    assert await driver.navigate(Pose(1.0, 0.0)) is DriverResult.IMPOSSIBLE
    base.clear_fault("lidar")
    base.set_field_violation(False)
    cleared = await wait_readout(stream, lambda r: not r.faults and not r.field_violation)
    assert not cleared.e_stop


async def test_aggregated_diagnostic_names_are_understood(ros_env: RosEnv) -> None:
    """Statuses named with a path ('/safety/e_stop') count by their last segment; arrays may be partial."""
    driver = RosDriver(RosDriverConfig(namespace=ros_env.namespace))
    await driver.start()
    publisher_host = RosNodeHost("diagnostics_source", namespace=ros_env.namespace)
    publisher = publisher_host.start().create_publisher(DiagnosticArray, "diagnostics", 10)
    stream = driver.readouts()
    try:
        for status in (
            DiagnosticStatus(name="/safety/e_stop", level=DiagnosticStatus.ERROR, message="pressed"),
            DiagnosticStatus(name="/motors/left", level=DiagnosticStatus.ERROR, message="overcurrent"),
        ):
            # republished until heard: the first messages may go out before discovery completes
            await _publish_until(publisher, DiagnosticArray(status=[status]), stream, status.name)
        readout = driver.readout()
        assert readout.e_stop
        assert readout.faults == ("/motors/left: overcurrent",)
    finally:
        stream.close()
        publisher_host.close()
        await driver.stop()


async def test_the_localization_nodes_score_is_the_readouts(
    driver: RosDriver, base: SimulatedBase, ros_env: RosEnv
) -> None:
    """The localization node's ``localization`` status (score 0.42, not localized) sets the readout's
    ``localization_score`` and ``localized`` (VDA 5050 localizationScore, positionInitialized)."""
    publisher_host = RosNodeHost("localization_source", namespace=ros_env.namespace)
    publisher = publisher_host.start().create_publisher(DiagnosticArray, "diagnostics", 10)
    stream = driver.readouts()
    status = DiagnosticStatus(name="localization", level=DiagnosticStatus.WARN, message="score 0.42")
    status.values = [
        KeyValue(key="localization_score", value="0.420"),
        KeyValue(key="localized", value="false"),
    ]
    try:
        await _publish_until(
            publisher,
            DiagnosticArray(status=[status]),
            stream,
            "localization",
            heard=lambda r: r.pose is not None and r.localization_score == pytest.approx(0.42),
        )
        readout = driver.readout()
        assert not readout.localized and not readout.faults  # WARN is no fault
    finally:
        stream.close()
        publisher_host.close()


async def _publish_until(
    publisher: Any,
    msg: DiagnosticArray,
    stream: ReadoutStream,
    name: str,
    heard: Callable[[Readout], bool] | None = None,
) -> None:
    """Publish ``msg`` every 0.1 s until a readout reflects the status ``name`` (or ``heard`` holds)."""

    def reflects(readout: Readout) -> bool:
        if heard is not None:
            return heard(readout)
        return readout.e_stop if name.endswith("e_stop") else any(f.startswith(name) for f in readout.faults)

    for _ in range(int(WAIT / 0.1)):
        publisher.publish(msg)
        try:
            await wait_readout(stream, reflects, timeout=0.1)
        except TimeoutError:
            continue
        return
    raise AssertionError(f"diagnostic {name} never reached the driver")


async def test_send_velocity_drives_the_base(driver: RosDriver, base: SimulatedBase) -> None:
    """send_velocity moves the base at that velocity; without new commands it stops (dead man)."""
    stream = driver.readouts()
    driver.send_velocity(1.0, 0.5)
    moving = await wait_readout(stream, lambda r: r.vx > 0.0)
    assert (moving.vx, moving.omega) == (pytest.approx(1.0), pytest.approx(0.5))
    stopped = await wait_readout(stream, lambda r: r.vx == 0.0 and r.omega == 0.0)
    assert stopped.pose is not None and stopped.pose.x > 0.0


async def test_init_position_moves_the_base_to_another_map(driver: RosDriver, base: SimulatedBase) -> None:
    """initPosition publishes initialpose: the base jumps there; goals on the old map are then IMPOSSIBLE."""
    stream = driver.readouts()
    parameters = {"x": 5.0, "y": -2.0, "theta": 1.0, "mapId": "b1_f3", "lastNodeId": "n7"}
    assert await driver.run_action("initPosition", parameters) is DriverResult.SUCCESS
    readout = await wait_readout(stream, lambda r: r.pose is not None and r.pose.map_id == "b1_f3")
    assert near(readout.pose, 5.0, -2.0)
    assert await driver.navigate(Pose(0.0, 0.0, 0.0, "map")) is DriverResult.IMPOSSIBLE
    assert await asyncio.wait_for(driver.navigate(Pose(5.0, 0.0, 0.0, "b1_f3")), WAIT) is DriverResult.SUCCESS
    assert await driver.run_action("initPosition", {"x": "east"}) is DriverResult.IMPOSSIBLE


async def test_actions_without_ros_mapping(ros_env: RosEnv) -> None:
    """Unknown action types are IMPOSSIBLE; types given a handler go to that handler."""
    calls: list[Mapping[str, Any]] = []

    async def open_compartment(parameters: Mapping[str, Any]) -> DriverResult:
        calls.append(parameters)
        return DriverResult.SUCCESS

    driver = RosDriver(
        RosDriverConfig(namespace=ros_env.namespace), actions={"openCompartment": open_compartment}
    )
    await driver.start()
    try:
        assert await driver.run_action("pick", {}) is DriverResult.IMPOSSIBLE
        assert await driver.run_action("openCompartment", {"compartment": "A3"}) is DriverResult.SUCCESS
        assert calls == [{"compartment": "A3"}]
    finally:
        await driver.stop()


async def test_navigate_without_a_base_retries(ros_env: RosEnv) -> None:
    """With nobody subscribed to the goal topic navigate gives up after the stall timeout: RETRY."""
    driver = RosDriver(RosDriverConfig(namespace=ros_env.namespace, stall_timeout=0.3))
    await driver.start()
    try:
        assert driver.readout().pose is None
        assert await asyncio.wait_for(driver.navigate(Pose(1.0, 0.0)), WAIT) is DriverResult.RETRY
    finally:
        await driver.stop()


async def test_a_base_that_does_not_move_is_a_stall(ros_env: RosEnv) -> None:
    """A base that hears the goal but never moves (e-stop not reported) makes navigate RETRY."""
    stuck = fast_base(ros_env.namespace, speed=1e-9, turn_rate=1e-9)
    stuck.start()
    driver = RosDriver(RosDriverConfig(namespace=ros_env.namespace, stall_timeout=0.5))
    await driver.start()
    try:
        await wait_readout(driver.readouts(), lambda r: r.pose is not None)
        assert await asyncio.wait_for(driver.navigate(Pose(2.0, 1.0)), WAIT) is DriverResult.RETRY
        assert stuck.goals_received >= 1
    finally:
        await driver.stop()
        stuck.close()


async def test_teleop_before_start_is_an_error() -> None:
    """send_velocity on a driver that was never started raises RosLinkError (nothing is published)."""
    with pytest.raises(RosLinkError, match="not started"):
        RosDriver().send_velocity(0.5, 0.0)


SHUTDOWN_SCRIPT = """
import asyncio, sys
from robots.agent.driver import Pose
from robots.agent.ros_driver import RosDriver, RosDriverConfig
from sim.ros_base import BaseConfig, SimulatedBase

async def main(namespace):
    base = SimulatedBase(BaseConfig(namespace=namespace, speed=5.0, turn_rate=10.0))
    base.start()
    driver = RosDriver(RosDriverConfig(namespace=namespace))
    await driver.start()
    try:
        print(await asyncio.wait_for(driver.navigate(Pose(1.0, 0.5)), 20))
    finally:
        await driver.stop()
        base.close()

asyncio.run(main(sys.argv[1]))
"""


def test_process_exits_cleanly(ros_env: RosEnv) -> None:
    """A process that drives and then shuts both nodes down exits with 0 (no SIGABRT at exit)."""
    done = subprocess.run(
        [sys.executable, "-c", SHUTDOWN_SCRIPT, ros_env.namespace],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().splitlines()[-1] == "success"


async def test_acknowledge_service_answers_through_the_registered_callback(ros_env: RosEnv) -> None:
    """The reset-key Trigger service (custom name here): false with no safety layer attached; then the
    callback's answer (None → success, a reason → refused with it; an exception → refused, named)."""
    driver = RosDriver(RosDriverConfig(namespace=ros_env.namespace, acknowledge_service="reset_key"))
    await driver.start()
    caller = RosNodeHost("key_caller", namespace=ros_env.namespace)
    node = caller.start()
    client = node.create_client(Trigger, "reset_key")
    loop = asyncio.get_running_loop()

    async def call() -> tuple[bool, str]:
        answer: asyncio.Future[Trigger.Response] = loop.create_future()
        future = client.call_async(Trigger.Request())
        future.add_done_callback(lambda done: loop.call_soon_threadsafe(answer.set_result, done.result()))
        response = await asyncio.wait_for(answer, WAIT)
        return response.success, response.message

    def broken() -> str | None:
        raise RuntimeError("tick failed")

    try:
        assert await asyncio.to_thread(client.wait_for_service, timeout_sec=WAIT)
        assert await call() == (False, "no safety layer takes acknowledgements")
        driver.on_acknowledge(lambda: "refused bumper: the bumper is still in contact")
        assert await call() == (False, "refused bumper: the bumper is still in contact")
        driver.on_acknowledge(lambda: None)
        assert await call() == (True, "all latches cleared")
        driver.on_acknowledge(broken)
        assert await call() == (False, "acknowledgement failed: tick failed")
        driver.on_acknowledge(None)
        assert await call() == (False, "no safety layer takes acknowledgements")
    finally:
        caller.close()
        await driver.stop()


# ---- lift rides (enterLift / exitLift with their pose) ----------------------------------------------

LIFT = {"building": "H", "lift": "LA"}


async def test_enter_lift_drives_into_the_cabin(driver: RosDriver, base: SimulatedBase) -> None:
    """enterLift with the cabin's pose (on the base's map) drives the base there through the goal topic,
    SUCCESS once odometry says it arrived; the base then stands on it facing into the cabin."""
    goals = base.goals_received
    cabin = {"x": 2.0, "y": 1.5, "theta": math.pi / 2, "mapId": "map"}
    result = await asyncio.wait_for(
        driver.run_action("enterLift", {**LIFT, "floor": "H1", "sessionId": "s-1", **cabin}), WAIT
    )
    assert result is DriverResult.SUCCESS
    assert base.goals_received > goals
    assert near(driver.readout().pose, 2.0, 1.5, tolerance=0.1)
    stream = driver.readouts()
    standing = await wait_readout(stream, lambda r: not r.driving and near(r.pose, 2.0, 1.5))
    assert standing.pose is not None and standing.pose.theta == pytest.approx(math.pi / 2, abs=0.01)
    stream.close()


async def test_lift_actions_without_a_pose_are_impossible(driver: RosDriver, base: SimulatedBase) -> None:
    """Without a pose (an older orchestrator) the robot cannot know where the cabin is: IMPOSSIBLE with
    a resultDescription saying so; a partial pose is refused the same way; nothing is driven."""
    goals = base.goals_received
    enter = await driver.run_action("enterLift", {**LIFT, "floor": "H1", "sessionId": "s-1"})
    assert isinstance(enter, ActionOutcome) and enter.result is DriverResult.IMPOSSIBLE
    assert enter.description is not None and "needs the pose of the cabin" in enter.description
    exit_ = await driver.run_action("exitLift", {**LIFT, "floor": "H3"})
    assert isinstance(exit_, ActionOutcome) and exit_.result is DriverResult.IMPOSSIBLE
    assert exit_.description is not None and "needs the pose of the exit landing" in exit_.description
    partial = await driver.run_action("exitLift", {**LIFT, "floor": "H3", "x": 1.0, "y": 2.0})
    assert isinstance(partial, ActionOutcome) and partial.result is DriverResult.IMPOSSIBLE
    assert partial.description is not None and "together" in partial.description
    assert base.goals_received == goals
    assert near(base.pose, 0.0, 0.0)


async def test_exit_lift_after_init_position_drives_to_the_landing(
    driver: RosDriver, base: SimulatedBase
) -> None:
    """The ride as the orchestrator runs it: enterLift into the cabin on H1's map, initPosition at the
    cabin on H3's map, then at once exitLift to the landing on H3's map: the driver waits for the
    odometry on H3 (not IMPOSSIBLE for the old map) and the base drives out and stands at the landing."""
    cabin = {"x": 1.0, "y": 2.0, "theta": math.pi / 2}
    assert await driver.run_action("initPosition", {"x": 1.0, "y": 0.0, "theta": 0.0, "mapId": "H1"}) is (
        DriverResult.SUCCESS
    )
    entered = await asyncio.wait_for(
        driver.run_action("enterLift", {**LIFT, "floor": "H1", "sessionId": "s-2", **cabin, "mapId": "H1"}),
        WAIT,
    )
    assert entered is DriverResult.SUCCESS and base.pose.map_id == "H1" and near(base.pose, 1.0, 2.0, 0.1)
    moved = {"x": 1.0, "y": 2.0, "theta": math.pi / 2, "mapId": "H3", "lastNodeId": "h3a"}
    assert await driver.run_action("initPosition", moved) is DriverResult.SUCCESS
    landing = {"x": 1.0, "y": 0.5, "theta": -math.pi / 2, "mapId": "H3"}
    exited = await asyncio.wait_for(driver.run_action("exitLift", {**LIFT, "floor": "H3", **landing}), WAIT)
    assert exited is DriverResult.SUCCESS
    readout = driver.readout()
    assert readout.pose is not None and readout.pose.map_id == "H3" and near(readout.pose, 1.0, 0.5, 0.1)
    assert base.pose.map_id == "H3"


async def test_exit_lift_to_another_map_than_the_robots_is_impossible(
    ros_env: RosEnv, base: SimulatedBase
) -> None:
    """An exitLift whose landing is on a map the odometry never reports (no initPosition came) is
    IMPOSSIBLE after the stall timeout, naming both maps; the base did not move."""
    driver = RosDriver(RosDriverConfig(namespace=ros_env.namespace, stall_timeout=0.3))
    await driver.start()
    try:
        await wait_readout(driver.readouts(), lambda r: r.pose is not None)
        landing = {"x": 3.0, "y": 0.0, "theta": 0.0, "mapId": "H3"}
        outcome = await asyncio.wait_for(
            driver.run_action("exitLift", {**LIFT, "floor": "H3", **landing}), WAIT
        )
        assert isinstance(outcome, ActionOutcome) and outcome.result is DriverResult.IMPOSSIBLE
        assert outcome.description == "exitLift: the exit landing is on map 'H3', the robot on 'map'"
        assert near(base.pose, 0.0, 0.0)
    finally:
        await driver.stop()


async def test_a_vendor_lift_handler_wins_over_the_pose(ros_env: RosEnv, base: SimulatedBase) -> None:
    """A handler passed for enterLift (the vendor's own lift integration) gets the action, pose or not;
    the base is sent no goal."""
    calls: list[Mapping[str, Any]] = []

    async def vendor_enter(parameters: Mapping[str, Any]) -> DriverResult:
        calls.append(parameters)
        return DriverResult.SUCCESS

    driver = RosDriver(RosDriverConfig(namespace=ros_env.namespace), actions={"enterLift": vendor_enter})
    await driver.start()
    try:
        parameters = {**LIFT, "floor": "H1", "sessionId": "s-3", "x": 4.0, "y": 0.0, "theta": 0.0}
        assert await driver.run_action("enterLift", parameters) is DriverResult.SUCCESS
        assert await driver.run_action("enterLift", {**LIFT, "floor": "H1", "sessionId": "s-4"}) is (
            DriverResult.SUCCESS
        )
        assert [c["sessionId"] for c in calls] == ["s-3", "s-4"]
        assert base.goals_received == 0
    finally:
        await driver.stop()
