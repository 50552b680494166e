"""The localization node over real rclpy: simulated sensor topics in, odometry, map pose and health out
(issue 8 acceptance)."""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from diagnostic_msgs.msg import DiagnosticArray
from geometry_msgs.msg import PoseWithCovarianceStamped
from nav_msgs.msg import Odometry
from rclpy.event_handler import PublisherEventCallbacks, SubscriptionEventCallbacks
from ros_fixtures import RosEnv
from sensor_msgs.msg import Imu, NavSatFix, NavSatStatus

from maps.model import FloorFrame, GeoOrigin
from robots.localization.frames import Pose2, enu_pose_to_floor, enu_to_geodetic
from robots.localization.fusion import LocalizerConfig, SensorConfig
from robots.localization.gating import GateConfig
from robots.localization.measurements import Accel, GnssFix, GnssFixType, Gyro, PoseFix, UwbFix, WheelOdometry
from robots.localization.ros_node import (
    IndoorFrame,
    LocalizationNode,
    LocalizationNodeConfig,
    LocalizationTopics,
    to_time,
)
from robots.rosutil import RosNodeHost, quaternion_to_yaw, to_loop, yaw_to_quaternion
from sim.sensors import Arrival, Env, Regime, default_extrinsics, simulate, straight, trajectory, turn, wait

pytestmark = pytest.mark.integration

WAIT = 10.0
"""Seconds a test waits for a message or a match before it fails (normally milliseconds)."""
ORIGIN = GeoOrigin(31.2304, 121.4737, 12.0)
FLOOR_FRAME = "building_a/floor_1"
FLOOR = FloorFrame(20.0, -5.0, 0.3)


def scenario() -> tuple[Any, list[Arrival]]:
    """Open sky (RTK fixed) for 12 m, then indoors on floor 1 (lidar and UWB) with a turn: ~20 s."""
    sky = Env(Regime.OPEN_SKY, None, GnssFixType.FIXED)
    hall = Env(Regime.INDOOR, "1", lidar=True, uwb=True)
    legs = [
        wait(1.0, sky),
        straight(12.0, 1.5, sky),
        straight(4.0, 1.0, hall),
        turn(math.pi / 2, 0.8, 3.0, hall),
    ]
    legs.append(straight(4.0, 1.0, hall))
    traj = trajectory(legs, Pose2(0.0, 0.0, 0.3))
    return traj, simulate(traj, 5)


def node_config(namespace: str, start: Pose2) -> LocalizationNodeConfig:
    """The node with the simulated sensors where ``sim.sensors`` puts them; the floor's map frame."""
    ungated = GateConfig(enabled=False)
    sensors = {
        name: SensorConfig(ext, gate=ungated if name in ("wheel", "imu", "accel") else GateConfig())
        for name, ext in default_extrinsics().items()
    }
    return LocalizationNodeConfig(
        localizer=LocalizerConfig(sensors),
        origin=ORIGIN,
        initial_pose=start,
        initial_std=(0.5, 0.5, 0.05),
        indoor_frames={FLOOR_FRAME: IndoorFrame("1", FLOOR)},
        namespace=namespace,
        diagnostics_period=0.5,
    )


# --- sensor messages from simulated measurements --------------------------------------------------------


def odometry_msg(m: WheelOdometry) -> Odometry:
    msg = Odometry()
    msg.header.stamp = to_time(m.stamp)
    msg.twist.twist.linear.x, msg.twist.twist.angular.z = m.speed, m.yaw_rate
    cov = [0.0] * 36
    cov[0], cov[35] = m.speed_std**2, m.yaw_rate_std**2
    msg.twist.covariance = cov
    return msg


def imu_msg(gyro: Gyro, accel: Accel) -> Imu:
    msg = Imu()
    msg.header.stamp = to_time(gyro.stamp)
    msg.orientation_covariance[0] = -1.0  # no orientation
    msg.angular_velocity.z = gyro.yaw_rate
    msg.angular_velocity_covariance[8] = gyro.std**2
    msg.linear_acceleration.x = accel.forward
    msg.linear_acceleration_covariance[0] = accel.std**2
    return msg


def navsat_msg(m: GnssFix) -> NavSatFix:
    msg = NavSatFix()
    msg.header.stamp = to_time(m.stamp)
    msg.latitude, msg.longitude, msg.altitude = enu_to_geodetic(ORIGIN, m.east, m.north, 0.0)
    status, sigma = {
        GnssFixType.FIXED: (NavSatStatus.STATUS_GBAS_FIX, 0.02),
        GnssFixType.FLOAT: (NavSatStatus.STATUS_GBAS_FIX, 0.3),
        GnssFixType.SINGLE: (NavSatStatus.STATUS_FIX, 2.0),
    }[m.fix]
    msg.status.status = status
    msg.position_covariance = [sigma**2, 0.0, 0.0, 0.0, sigma**2, 0.0, 0.0, 0.0, 4 * sigma**2]
    msg.position_covariance_type = NavSatFix.COVARIANCE_TYPE_DIAGONAL_KNOWN
    return msg


def indoor_msg(m: PoseFix | UwbFix) -> PoseWithCovarianceStamped:
    msg = PoseWithCovarianceStamped()
    msg.header.stamp = to_time(m.stamp)
    msg.header.frame_id = FLOOR_FRAME
    enu = m.pose if isinstance(m, PoseFix) else Pose2(m.east, m.north, 0.0)
    local = enu_pose_to_floor(FLOOR, enu)
    msg.pose.pose.position.x, msg.pose.pose.position.y = local.x, local.y
    msg.pose.pose.orientation = yaw_to_quaternion(local.yaw)
    cov = [0.0] * 36
    if isinstance(m, PoseFix):
        cov[0], cov[7], cov[35] = m.cov[0][0], m.cov[1][1], m.cov[2][2]
    else:
        cov[0] = cov[7] = m.std**2
        cov[35] = 1e6  # no heading: a position-only (UWB) fix
    msg.pose.covariance = cov
    return msg


# --- the probe ------------------------------------------------------------------------------------------


class Probe:
    """A test node: publishes the sensor topics, queues what the localization node publishes."""

    def __init__(self, namespace: str, topics: LocalizationTopics) -> None:
        self._host = RosNodeHost("localization_probe", namespace=namespace)
        self._topics = topics
        self.publishers: dict[type, Any] = {}
        self.queues: dict[type, asyncio.Queue[Any]] = {}
        self._matched: list[asyncio.Event] = []

    def start(self) -> None:
        loop, node, topics = asyncio.get_running_loop(), self._host.start(), self._topics
        for msg_type, topic in (
            (Odometry, topics.wheel_odometry),
            (Imu, topics.imu),
            (NavSatFix, topics.gnss),
            (PoseWithCovarianceStamped, topics.indoor_pose),
        ):
            callbacks = PublisherEventCallbacks(matched=self._on_match(loop))
            self.publishers[msg_type] = node.create_publisher(msg_type, topic, 100, event_callbacks=callbacks)
        for msg_type, topic in (
            (Odometry, topics.odometry),
            (PoseWithCovarianceStamped, topics.pose),
            (DiagnosticArray, topics.diagnostics),
        ):
            queue: asyncio.Queue[Any] = asyncio.Queue()
            self.queues[msg_type] = queue
            callbacks = SubscriptionEventCallbacks(matched=self._on_match(loop))
            node.create_subscription(
                msg_type, topic, to_loop(loop, queue.put_nowait), 100, event_callbacks=callbacks
            )

    def _on_match(self, loop: asyncio.AbstractEventLoop) -> Callable[[Any], None]:
        """A matched-event callback (spin thread) that sets an event on the loop once matched."""
        event = asyncio.Event()
        self._matched.append(event)

        def matched(status: Any) -> None:
            if status.current_count > 0:
                event.set()

        return to_loop(loop, matched)

    async def all_matched(self) -> None:
        """Until every publisher and subscription has met the localization node's."""
        await asyncio.wait_for(asyncio.gather(*(e.wait() for e in self._matched)), WAIT)

    async def next(self, msg_type: type, predicate: Callable[[Any], bool] = lambda m: True) -> Any:
        """The next message of ``msg_type`` satisfying ``predicate``."""

        async def scan() -> Any:
            while True:
                msg = await self.queues[msg_type].get()
                if predicate(msg):
                    return msg

        return await asyncio.wait_for(scan(), WAIT)

    def close(self) -> None:
        self._host.close()


def _same_stamp(t: float) -> Callable[[Any], bool]:
    stamp = to_time(t)
    return lambda msg: msg.header.stamp.sec == stamp.sec and msg.header.stamp.nanosec == stamp.nanosec


async def test_node_follows_a_simulated_drive_from_open_sky_indoors(ros_env: RosEnv) -> None:
    """Wheel odometry, IMU, RTK GNSS (NavSatFix) and floor-frame scan matches / UWB fed as topics: the
    published map pose stays within 10 cm of the truth and never jumps, the continuous odometry pose
    follows the truth, and the diagnostics report a localized robot with its sources and score."""
    traj, arrivals = scenario()
    config = node_config(ros_env.namespace, traj.pose(0))
    node = LocalizationNode(config)
    probe = Probe(ros_env.namespace, config.topics)
    await node.start()
    probe.start()
    published: list[tuple[float, Pose2, Pose2]] = []  # stamp, map pose, odometry pose
    diagnostics: list[dict[str, str]] = []
    try:
        await probe.all_matched()
        pending_imu: dict[float, Gyro] = {}
        for a in arrivals:
            m = a.meas
            if isinstance(m, WheelOdometry):
                probe.publishers[Odometry].publish(odometry_msg(m))
                pose = await probe.next(PoseWithCovarianceStamped, _same_stamp(m.stamp))
                odom = await probe.next(Odometry, _same_stamp(m.stamp))
                published.append((m.stamp, _pose(pose.pose.pose), _pose(odom.pose.pose)))
            elif isinstance(m, Gyro):
                pending_imu[m.stamp] = m
            elif isinstance(m, Accel):
                probe.publishers[Imu].publish(imu_msg(pending_imu.pop(m.stamp), m))
            elif isinstance(m, GnssFix):
                probe.publishers[NavSatFix].publish(navsat_msg(m))
            elif isinstance(m, PoseFix | UwbFix):
                probe.publishers[PoseWithCovarianceStamped].publish(indoor_msg(m))
        while not probe.queues[DiagnosticArray].empty():
            msg = probe.queues[DiagnosticArray].get_nowait()
            diagnostics.append({kv.key: kv.value for kv in msg.status[0].values})
    finally:
        probe.close()
        node.close()
    stamps = np.array([p[0] for p in published])
    k = np.rint(stamps / 0.02).astype(int)
    truth = np.column_stack([traj.x[k], traj.y[k]])
    map_xy = np.array([[p[1].x, p[1].y] for p in published])
    odom_xy = np.array([[p[2].x, p[2].y] for p in published])
    assert len(published) == sum(isinstance(a.meas, WheelOdometry) for a in arrivals)
    settled = stamps > 2.0
    assert np.max(np.linalg.norm(map_xy - truth, axis=1)[settled]) < 0.10
    assert np.max(np.linalg.norm(odom_xy - truth, axis=1)) < 0.30
    jumps = np.linalg.norm(np.diff(map_xy, axis=0) - np.diff(truth, axis=0), axis=1)
    assert np.max(jumps) < 0.02
    assert diagnostics, "no diagnostics published"
    scores = [float(d["localization_score"]) for d in diagnostics]
    assert all(0.0 <= s <= 1.0 for s in scores)
    assert diagnostics[-1]["localized"] == "true" and scores[-1] > 0.5
    assert "gnss" in diagnostics[len(diagnostics) // 4]["active_sources"]
    assert "lidar" in diagnostics[-1]["active_sources"] and diagnostics[-1]["floor"] == "1"


def _pose(p: Any) -> Pose2:
    return Pose2(p.position.x, p.position.y, quaternion_to_yaw(p.orientation))
