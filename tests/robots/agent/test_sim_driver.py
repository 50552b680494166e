"""SimDriver: in-process kinematics on a VirtualClock (no wall time passes while it drives)."""

from __future__ import annotations

import asyncio
import math
from collections.abc import Coroutine
from typing import Any, TypeVar

import pytest

from interfaces.clock import VirtualClock
from robots.agent.driver import DriverResult, Pose
from robots.agent.sim_driver import NAVIGATE, SimDriver, SimDriverConfig

T = TypeVar("T")


async def finish(clock: VirtualClock, coro: Coroutine[Any, Any, T], limit: float = 10_000.0) -> T:
    """Run ``coro`` to its end, moving virtual time from one wake-up to the next."""
    task = asyncio.ensure_future(coro)
    await clock.settle()
    while not task.done():
        wakeup = clock.next_wakeup()
        assert wakeup is not None and wakeup - clock.now() <= limit, "the driver is stuck"
        await clock.run_until(wakeup)
    return task.result()


@pytest.fixture
def clock() -> VirtualClock:
    """A virtual clock at epoch 0 (so epoch and monotonic times are the same numbers)."""
    return VirtualClock()


def make_driver(clock: VirtualClock, **settings: Any) -> SimDriver:
    """A SimDriver at the origin of map 'campus', 1.5 m/s and 1.5 rad/s unless told otherwise."""
    return SimDriver(clock, SimDriverConfig(**settings), start=Pose(0.0, 0.0, 0.0, "campus"))


async def test_drives_straight_to_the_goal_in_virtual_time(clock: VirtualClock) -> None:
    """15 m straight ahead at 1.5 m/s: SUCCESS after exactly 10 virtual seconds, standing on the goal."""
    driver = make_driver(clock)
    assert await finish(clock, driver.navigate(Pose(15.0, 0.0, 0.0, "campus"))) is DriverResult.SUCCESS
    assert clock.monotonic() == pytest.approx(10.0)
    assert driver.pose == Pose(15.0, 0.0, 0.0, "campus")
    readout = driver.readout()
    assert (readout.vx, readout.omega, readout.driving) == (0.0, 0.0, False)
    assert readout.time == pytest.approx(10.0)


async def test_turns_in_place_first_and_to_the_goal_heading_last(clock: VirtualClock) -> None:
    """Goal behind-left: turn π/2, drive 3 m, turn π/2 back; readouts show turning, then driving."""
    driver = make_driver(clock, speed=1.0, turn_rate=math.pi / 4)
    stream = driver.readouts()
    result = await finish(clock, driver.navigate(Pose(0.0, 3.0, 0.0)))
    assert result is DriverResult.SUCCESS
    assert clock.monotonic() == pytest.approx(2.0 + 3.0 + 2.0)
    assert driver.pose.x == pytest.approx(0.0) and driver.pose.y == pytest.approx(3.0)
    assert driver.pose.theta == pytest.approx(0.0)
    motions = [(r.vx, r.omega) for r in stream.drain() if r.driving]
    assert motions[0] == (0.0, pytest.approx(math.pi / 4))
    assert (1.0, 0.0) in motions
    assert motions[-1] == (0.0, pytest.approx(-math.pi / 4))


async def test_goal_heading_can_be_left_alone(clock: VirtualClock) -> None:
    """With turn_to_goal_heading off the robot stops facing the way it drove."""
    driver = make_driver(clock, turn_to_goal_heading=False)
    await finish(clock, driver.navigate(Pose(0.0, -2.0, 0.0)))
    assert driver.pose.theta == pytest.approx(-math.pi / 2)


async def test_max_speed_caps_the_speed(clock: VirtualClock) -> None:
    """max_speed below the robot's speed makes the drive take longer; a non-positive one is IMPOSSIBLE."""
    driver = make_driver(clock)
    await finish(clock, driver.navigate(Pose(3.0, 0.0), max_speed=0.5))
    assert clock.monotonic() == pytest.approx(6.0)
    assert await driver.navigate(Pose(0.0, 0.0), max_speed=0.0) is DriverResult.IMPOSSIBLE


async def test_battery_drains_per_metre(clock: VirtualClock) -> None:
    """100 m at 0.05 %/m costs 5 %; the voltage follows the charge."""
    driver = make_driver(clock, drain_per_metre=0.05, step=1.0)
    await finish(clock, driver.navigate(Pose(100.0, 0.0)))
    readout = driver.readout()
    assert readout.battery_charge == pytest.approx(95.0)
    assert readout.battery_voltage == pytest.approx(42.0 + 8.4 * 0.95)


async def test_an_empty_battery_ends_the_drive(clock: VirtualClock) -> None:
    """The battery running out mid-drive stops the robot with IMPOSSIBLE; an empty one cannot start."""
    driver = SimDriver(clock, SimDriverConfig(drain_per_metre=1.0), battery=2.0)
    assert await finish(clock, driver.navigate(Pose(10.0, 0.0))) is DriverResult.IMPOSSIBLE
    assert driver.pose.x == pytest.approx(2.0)
    assert driver.readout().battery_charge == 0.0
    assert await driver.navigate(Pose(0.0, 0.0)) is DriverResult.IMPOSSIBLE


async def test_charging_fills_the_battery_until_it_drives(clock: VirtualClock) -> None:
    """startCharging: charge rises at charge_rate %/s; a drive stops charging."""
    driver = SimDriver(clock, SimDriverConfig(charge_rate=0.1), battery=50.0)
    assert await driver.run_action("startCharging", {}) is DriverResult.SUCCESS
    await clock.run_for(100.0)
    readout = driver.readout()
    assert readout.charging and readout.battery_charge == pytest.approx(60.0)
    await finish(clock, driver.navigate(Pose(1.5, 0.0)))
    assert not driver.readout().charging
    assert driver.readout().battery_charge == pytest.approx(60.0 - 0.015)


async def test_cancelling_stops_the_robot_where_it_is(clock: VirtualClock) -> None:
    """Cancelling navigate mid-drive leaves the robot standing part-way; time moving on does not move it."""
    driver = make_driver(clock)
    drive = asyncio.create_task(driver.navigate(Pose(15.0, 0.0)))
    await clock.run_for(4.0)
    drive.cancel()
    with pytest.raises(asyncio.CancelledError):
        await drive
    stopped = driver.pose
    assert 5.0 <= stopped.x <= 6.0
    assert not driver.readout().driving
    await clock.run_for(10.0)
    assert driver.pose == stopped


async def test_e_stop_mid_drive_is_retry(clock: VirtualClock) -> None:
    """Pressing the e-stop during a drive stops it with RETRY; while pressed, drives are refused."""
    driver = make_driver(clock)
    drive = asyncio.create_task(driver.navigate(Pose(15.0, 0.0)))
    await clock.run_for(2.0)
    driver.set_e_stop(True)
    await clock.run_for(1.0)
    assert drive.done() and drive.result() is DriverResult.RETRY
    assert driver.readout().e_stop and not driver.readout().driving
    assert await driver.navigate(Pose(15.0, 0.0)) is DriverResult.RETRY
    driver.set_e_stop(False)
    assert await finish(clock, driver.navigate(Pose(15.0, 0.0))) is DriverResult.SUCCESS


async def test_faults_make_motion_and_actions_impossible(clock: VirtualClock) -> None:
    """An injected fault is read out and makes navigate and actions IMPOSSIBLE until cleared."""
    driver = make_driver(clock)
    driver.inject_fault("drive_motor", "overcurrent")
    driver.set_field_violation(True)
    readout = driver.readout()
    assert readout.faults == ("drive_motor: overcurrent",) and readout.field_violation
    assert await driver.navigate(Pose(1.0, 0.0)) is DriverResult.IMPOSSIBLE
    assert await driver.run_action("pick", {}) is DriverResult.IMPOSSIBLE
    driver.clear_fault("drive_motor")
    assert await finish(clock, driver.navigate(Pose(1.0, 0.0))) is DriverResult.SUCCESS


async def test_blocked_too_long_is_retry(clock: VirtualClock) -> None:
    """An obstacle that stays stall_timeout seconds ends the drive with RETRY; one that clears does not."""
    driver = make_driver(clock, stall_timeout=5.0)
    driver.set_blocked(True)
    assert await finish(clock, driver.navigate(Pose(3.0, 0.0))) is DriverResult.RETRY
    assert clock.monotonic() == pytest.approx(5.0)
    drive = asyncio.create_task(driver.navigate(Pose(3.0, 0.0)))
    await clock.run_for(3.0)
    driver.set_blocked(False)
    assert await finish(clock, drive) is DriverResult.SUCCESS
    assert clock.monotonic() == pytest.approx(5.0 + 3.0 + 2.0, abs=0.11)  # reacts within one step (0.1 s)


async def test_goal_on_another_map_is_impossible_until_init_position(clock: VirtualClock) -> None:
    """A goal on another map is IMPOSSIBLE; initPosition puts the robot on that map."""
    driver = make_driver(clock)
    assert await driver.navigate(Pose(1.0, 0.0, 0.0, "b1_f2")) is DriverResult.IMPOSSIBLE
    parameters = {"x": 4.0, "y": 5.0, "theta": 1.0, "mapId": "b1_f2", "lastNodeId": "lift_out"}
    assert await driver.run_action("initPosition", parameters) is DriverResult.SUCCESS
    assert driver.pose == Pose(4.0, 5.0, 1.0, "b1_f2")
    assert await finish(clock, driver.navigate(Pose(1.0, 0.0, 0.0, "b1_f2"))) is DriverResult.SUCCESS
    assert await driver.run_action("initPosition", {"y": 1.0}) is DriverResult.IMPOSSIBLE


async def test_actions_take_their_duration_and_are_logged(clock: VirtualClock) -> None:
    """pick takes its configured time; each action is logged once with its parameters and result."""
    driver = make_driver(clock, action_durations={"pick": 2.0, "openCompartment": 0.5})
    assert await finish(clock, driver.run_action("pick", {"loadId": "P1"})) is DriverResult.SUCCESS
    assert clock.monotonic() == pytest.approx(2.0)
    assert await finish(clock, driver.run_action("openCompartment", {})) is DriverResult.SUCCESS
    assert [(a.time, a.action_type, a.parameters, a.result) for a in driver.action_log] == [
        (0.0, "pick", {"loadId": "P1"}, DriverResult.SUCCESS),
        (2.0, "openCompartment", {}, DriverResult.SUCCESS),
    ]


async def test_unknown_actions_are_impossible(clock: VirtualClock) -> None:
    """An action type the robot does not have answers IMPOSSIBLE at once."""
    driver = make_driver(clock)
    assert await driver.run_action("makeCoffee", {}) is DriverResult.IMPOSSIBLE
    assert clock.monotonic() == 0.0


async def test_injected_results_are_used_once(clock: VirtualClock) -> None:
    """fail_next makes exactly the next navigate/action of that kind answer the injected result."""
    driver = make_driver(clock)
    driver.fail_next(NAVIGATE, DriverResult.RETRY)
    driver.fail_next("drop", DriverResult.IMPOSSIBLE)
    assert await driver.navigate(Pose(1.0, 0.0)) is DriverResult.RETRY
    assert driver.pose == Pose(0.0, 0.0, 0.0, "campus")
    assert await driver.run_action("drop", {}) is DriverResult.IMPOSSIBLE
    assert await finish(clock, driver.navigate(Pose(1.0, 0.0))) is DriverResult.SUCCESS
    assert await finish(clock, driver.run_action("drop", {})) is DriverResult.SUCCESS


async def test_readouts_stream_every_step(clock: VirtualClock) -> None:
    """A stream made before the drive receives each step's readout, ending standing at the goal."""
    driver = make_driver(clock, step=0.5)
    stream = driver.readouts()
    await finish(clock, driver.navigate(Pose(3.0, 0.0)))
    readouts = stream.drain()
    positions = [r.pose.x for r in readouts if r.pose is not None]
    assert positions == sorted(positions)
    assert positions[-1] == 3.0
    assert len({r.time for r in readouts}) == 5  # t = 0, 0.5, 1.0, 1.5, 2.0
    assert not readouts[-1].driving
    stream.close()
    await finish(clock, driver.navigate(Pose(0.0, 0.0)))
    assert stream.drain() == []


@pytest.mark.parametrize(
    "settings",
    [{"speed": 0.0}, {"step": -1.0}, {"drain_per_metre": -0.1}, {"action_durations": {"pick": -1}}],
)
def test_bad_settings_are_refused(settings: dict[str, Any]) -> None:
    """Non-positive speeds/steps and negative rates or durations raise ValueError naming the setting."""
    with pytest.raises(ValueError, match="SimDriverConfig"):
        SimDriverConfig(**settings)


async def test_speed_limit_caps_a_drive_from_its_next_step(clock: VirtualClock) -> None:
    """``limit_speed(0.5)`` halfway through a 1 m/s drive: the rest at 0.5 m/s; 0 makes it stand
    (without a stall), None lifts the cap; a bad limit is refused."""
    driver = make_driver(clock, speed=1.0, step=0.1)
    task = asyncio.ensure_future(driver.navigate(Pose(4.0, 0.0, 0.0, "campus")))
    await clock.run_for(1.0)
    assert driver.readout().vx == 1.0
    driver.limit_speed(0.5)
    await clock.run_for(1.0)
    assert driver.readout().vx == 0.5 and driver.pose.x == pytest.approx(1.5, abs=0.06)
    driver.limit_speed(0.0)
    await clock.run_for(30.0)  # longer than stall_timeout: a speed limit is no obstacle
    assert driver.readout().vx == 0.0 and not task.done()
    driver.limit_speed(None)
    assert await finish(clock, task) is DriverResult.SUCCESS
    assert driver.pose.x == pytest.approx(4.0) and driver.speed_limit is None
    with pytest.raises(ValueError, match="limit must be"):
        driver.limit_speed(-1.0)
