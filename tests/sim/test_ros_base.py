"""SimulatedBase: a real rclpy node, driven and watched by a probe node (own context) in this process."""

from __future__ import annotations

import asyncio
import math
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from geometry_msgs.msg import PoseStamped, PoseWithCovarianceStamped, Twist
from nav_msgs.msg import Odometry
from ros_fixtures import RosEnv
from sensor_msgs.msg import BatteryState

from robots.agent.driver import Pose
from robots.rosutil import RobotTopics, RosNodeHost, quaternion_to_yaw, to_loop, yaw_to_quaternion
from sim.ros_base import BaseConfig, SimulatedBase

pytestmark = pytest.mark.integration

WAIT = 5.0
"""Seconds a test waits for a message before it fails (normally a few tens of milliseconds)."""


class Probe:
    """A test node on the base's topics: publishes commands, queues what the base publishes."""

    def __init__(self, namespace: str) -> None:
        self._host = RosNodeHost("probe", namespace=namespace)
        self._queues: dict[type, asyncio.Queue[Any]] = {}
        self._publishers: dict[type, Any] = {}

    def start(self) -> None:
        loop, node, topics = asyncio.get_running_loop(), self._host.start(), RobotTopics()
        for msg_type, topic in ((Odometry, topics.odometry), (BatteryState, topics.battery)):
            self._subscribe(loop, node, msg_type, topic)
        self._subscribe(loop, node, DiagnosticArray, topics.diagnostics)
        for msg_type, topic in (
            (PoseStamped, topics.goal),
            (Twist, topics.cmd_vel),
            (PoseWithCovarianceStamped, topics.initial_pose),
        ):
            self._publishers[msg_type] = node.create_publisher(msg_type, topic, 10)

    def close(self) -> None:
        self._host.close()

    def _subscribe(self, loop: asyncio.AbstractEventLoop, node: Any, msg_type: type, topic: str) -> None:
        queue: asyncio.Queue[Any] = asyncio.Queue()
        self._queues[msg_type] = queue
        node.create_subscription(msg_type, topic, to_loop(loop, queue.put_nowait), 10)

    async def next(self, msg_type: type, predicate: Callable[[Any], bool] = lambda m: True) -> Any:
        """The next message of ``msg_type`` satisfying ``predicate``."""

        async def scan() -> Any:
            while True:
                msg = await self._queues[msg_type].get()
                if predicate(msg):
                    return msg

        return await asyncio.wait_for(scan(), WAIT)

    async def send(self, msg: Any, heard: Callable[[], bool]) -> None:
        """Publish ``msg`` once per odometry message until ``heard()`` (discovery may drop the first)."""
        for _ in range(int(WAIT * 50)):
            self._publishers[type(msg)].publish(msg)
            await self.next(Odometry)
            if heard():
                return
        raise AssertionError(f"the base never heard {type(msg).__name__}")


def goal(x: float, y: float, theta: float = 0.0, frame: str = "map") -> PoseStamped:
    msg = PoseStamped()
    msg.header.frame_id = frame
    msg.pose.position.x, msg.pose.position.y = x, y
    msg.pose.orientation = yaw_to_quaternion(theta)
    return msg


def twist(vx: float, omega: float) -> Twist:
    msg = Twist()
    msg.linear.x, msg.angular.z = vx, omega
    return msg


def at(msg: Odometry, x: float, y: float, tolerance: float = 1e-3) -> bool:
    position = msg.pose.pose.position
    return math.hypot(position.x - x, position.y - y) <= tolerance


def standing(msg: Odometry) -> bool:
    return msg.twist.twist.linear.x == 0.0 and msg.twist.twist.angular.z == 0.0


def levels(msg: DiagnosticArray) -> dict[str, int]:
    return {status.name: status.level[0] for status in msg.status}


@pytest.fixture
def base(ros_env: RosEnv) -> Iterator[SimulatedBase]:
    """A running base: 4 m/s, 8 rad/s, 50 Hz odometry, 10 Hz battery state, 0.5 % battery per metre."""
    config = BaseConfig(
        namespace=ros_env.namespace,
        speed=4.0,
        turn_rate=8.0,
        odometry_rate=50.0,
        battery_rate=10.0,
        drain_per_metre=0.5,
    )
    simulated = SimulatedBase(config)
    simulated.start()
    yield simulated
    simulated.close()


@pytest.fixture
async def probe(ros_env: RosEnv, base: SimulatedBase) -> AsyncIterator[Probe]:
    """A probe node that has heard the base's odometry."""
    node = Probe(ros_env.namespace)
    node.start()
    await node.next(Odometry)
    yield node
    node.close()


async def test_turns_first_then_drives_straight_to_the_goal(base: SimulatedBase, probe: Probe) -> None:
    """A goal to the left: odometry shows turning in place, then straight driving at speed, then arrival."""
    await probe.send(goal(0.0, 2.0, math.pi), heard=lambda: base.goals_received > 0)
    turning = await probe.next(Odometry, lambda m: m.twist.twist.angular.z > 0.0)
    assert turning.twist.twist.linear.x == 0.0
    driving = await probe.next(Odometry, lambda m: m.twist.twist.linear.x > 0.0)
    assert driving.twist.twist.linear.x == pytest.approx(4.0)
    assert quaternion_to_yaw(driving.pose.pose.orientation) == pytest.approx(math.pi / 2)
    assert driving.pose.pose.position.x == pytest.approx(0.0, abs=1e-9)
    arrived = await probe.next(Odometry, lambda m: at(m, 0.0, 2.0) and standing(m))
    assert quaternion_to_yaw(arrived.pose.pose.orientation) == pytest.approx(math.pi, abs=1e-6)
    assert (arrived.header.frame_id, arrived.child_frame_id) == ("map", "base_link")
    assert base.pose == Pose(0.0, 2.0, pytest.approx(math.pi, abs=1e-6), "map")


async def test_battery_drains_per_metre_driven(base: SimulatedBase, probe: Probe) -> None:
    """4 m at 0.5 %/m: the next BatteryState after arrival reads 98 % (0.98) and discharging."""
    await probe.send(goal(4.0, 0.0), heard=lambda: base.goals_received > 0)
    await probe.next(Odometry, lambda m: at(m, 4.0, 0.0) and standing(m))
    state = await probe.next(BatteryState, lambda m: m.percentage < 0.98 + 1e-6)
    assert state.percentage == pytest.approx(0.98, abs=1e-6)
    assert base.battery == pytest.approx(98.0)
    assert state.power_supply_status == BatteryState.POWER_SUPPLY_STATUS_DISCHARGING
    assert state.voltage == pytest.approx(42.0 + 8.4 * 0.98, abs=1e-3)


async def test_cmd_vel_drives_until_the_dead_man_times_out(base: SimulatedBase, probe: Probe) -> None:
    """A Twist drives the base at that velocity; with no further commands it stops by itself."""
    await probe.send(twist(0.5, 0.0), heard=lambda: base.velocity != (0.0, 0.0))
    moving = await probe.next(Odometry, lambda m: m.twist.twist.linear.x > 0.0)
    assert moving.twist.twist.linear.x == pytest.approx(0.5)
    stopped = await probe.next(Odometry, standing)
    assert stopped.pose.pose.position.x > 0.0


async def test_zero_twist_stops_a_drive_at_once(base: SimulatedBase, probe: Probe) -> None:
    """A zero Twist during a goal drops the goal: the base stands and stays short of the goal."""
    await probe.send(goal(40.0, 0.0), heard=lambda: base.goals_received > 0)
    await probe.next(Odometry, lambda m: m.twist.twist.linear.x > 0.0)
    await probe.send(twist(0.0, 0.0), heard=lambda: base.velocity == (0.0, 0.0))
    stopped = await probe.next(Odometry, standing)
    for _ in range(5):
        later = await probe.next(Odometry)
        assert standing(later)
        assert later.pose.pose.position.x == stopped.pose.pose.position.x < 40.0


async def test_a_goal_where_the_base_stands_stops_it_without_backing_up(
    base: SimulatedBase, probe: Probe
) -> None:
    """A goal a little behind the moving base (the driver's stop) counts as reached: it halts there."""
    await probe.send(goal(40.0, 0.0), heard=lambda: base.goals_received > 0)
    moving = await probe.next(Odometry, lambda m: m.pose.pose.position.x > 1.0)
    x = moving.pose.pose.position.x
    await probe.send(goal(x, 0.0), heard=lambda: base.goals_received > 1)
    stopped = await probe.next(Odometry, standing)
    assert x <= stopped.pose.pose.position.x <= x + 0.1
    assert base.velocity == (0.0, 0.0)


async def test_goal_in_another_frame_is_ignored(base: SimulatedBase, probe: Probe) -> None:
    """A goal whose frame is not the base's map id is heard but not driven to."""
    await probe.send(goal(3.0, 0.0, frame="b2_f1"), heard=lambda: base.goals_received > 0)
    for _ in range(5):
        assert standing(await probe.next(Odometry))
    assert base.pose == Pose(0.0, 0.0, 0.0, "map")


async def test_initial_pose_moves_the_base_to_another_map(base: SimulatedBase, probe: Probe) -> None:
    """initialpose puts the base at that pose on the map named by its frame; goals there are followed."""
    msg = PoseWithCovarianceStamped()
    msg.header.frame_id = "b2_f1"
    msg.pose.pose.position.x, msg.pose.pose.position.y = 10.0, 5.0
    await probe.send(msg, heard=lambda: base.pose.map_id == "b2_f1")
    moved = await probe.next(Odometry, lambda m: m.header.frame_id == "b2_f1")
    assert at(moved, 10.0, 5.0)
    await probe.send(goal(11.0, 5.0, frame="b2_f1"), heard=lambda: base.goals_received > 0)
    await probe.next(Odometry, lambda m: at(m, 11.0, 5.0) and standing(m))


async def test_e_stop_stops_the_base_and_drops_its_goal(base: SimulatedBase, probe: Probe) -> None:
    """Pressing the e-stop publishes it as ERROR and stops the base; after release it does not resume."""
    await probe.send(goal(40.0, 0.0), heard=lambda: base.goals_received > 0)
    await probe.next(Odometry, lambda m: m.twist.twist.linear.x > 0.0)
    base.set_e_stop(True)
    pressed = await probe.next(DiagnosticArray, lambda m: levels(m).get("e_stop") == 2)
    assert levels(pressed)["field_violation"] == 0
    stopped = await probe.next(Odometry, standing)
    base.set_e_stop(False)
    await probe.next(DiagnosticArray, lambda m: levels(m).get("e_stop") == 0)
    later = await probe.next(Odometry)
    assert standing(later) and later.pose.pose.position.x == stopped.pose.pose.position.x


async def test_faults_are_published_and_cleared(base: SimulatedBase, probe: Probe) -> None:
    """An injected fault is an ERROR status with its message; cleared, the same name turns OK."""
    base.inject_fault("lidar", "no scans")
    raised = await probe.next(DiagnosticArray, lambda m: "lidar" in levels(m))
    lidar = next(s for s in raised.status if s.name == "lidar")
    assert (lidar.level, lidar.message) == (DiagnosticStatus.ERROR, "no scans")
    base.clear_fault("lidar")
    cleared = await probe.next(DiagnosticArray, lambda m: levels(m).get("lidar") == 0)
    assert all(s.level == DiagnosticStatus.OK for s in cleared.status)


async def test_charging_is_published(base: SimulatedBase, probe: Probe) -> None:
    """set_charging shows in BatteryState's power_supply_status at once."""
    base.set_battery(30.0)
    base.set_charging(True)
    state = await probe.next(
        BatteryState, lambda m: m.power_supply_status == BatteryState.POWER_SUPPLY_STATUS_CHARGING
    )
    assert state.percentage == pytest.approx(0.30, abs=1e-3)


@pytest.mark.parametrize("settings", [{"speed": 0.0}, {"odometry_rate": -1.0}, {"battery": 120.0}])
def test_bad_settings_are_refused(settings: dict[str, Any]) -> None:
    """Non-positive speeds or rates and a battery outside 0..100 raise ValueError."""
    with pytest.raises(ValueError, match="BaseConfig"):
        BaseConfig(**settings)
