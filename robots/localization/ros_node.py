"""``LocalizationNode``: the localizer as a ROS 2 node (rclpy, standard messages only).

Topics (relative to the robot's namespace; names in ``LocalizationTopics``):

======================  ==========================================  ========================================
topic                   message                                     use
======================  ==========================================  ========================================
``wheel/odom``   (in)   ``nav_msgs/Odometry``                       ``twist``: forward speed and yaw rate
                                                                    (covariance diagonal → σ), the mean
                                                                    since the previous message
``imu``          (in)   ``sensor_msgs/Imu``                         ``angular_velocity.z`` → gyro,
                                                                    ``linear_acceleration.x`` → forward
                                                                    accelerometer (skipped when its
                                                                    covariance is marked unknown, -1)
``gnss/fix``     (in)   ``sensor_msgs/NavSatFix``                   fix type from ``status`` (below),
                                                                    WGS84 → campus ENU, σ from the
                                                                    position covariance
``indoor/pose``  (in)   ``geometry_msgs/PoseWithCovarianceStamped``  scan match or UWB in a floor map;
                                                                    ``frame_id`` names the floor's map
                                                                    frame (``indoor_frames``); a yaw
                                                                    variance ≥ ``position_only_yaw_var``
                                                                    means position only (UWB)
``localization/odom``   ``nav_msgs/Odometry``                       continuous pose in the odometry frame
                 (out)                                              (never jumps), body velocities
``localization/pose``   ``geometry_msgs/PoseWithCovarianceStamped``  map pose in campus ENU (``map_frame``)
                 (out)                                              with its covariance
``diagnostics``  (out)  ``diagnostic_msgs/DiagnosticArray``          status ``localization`` (OK or WARN):
                                                                    score, localized, active sources,
                                                                    floor, position and heading σ
======================  ==========================================  ========================================

**NavSatFix status → fix type.** ``STATUS_NO_FIX`` (or no finite position) → none; ``STATUS_FIX`` and
``STATUS_SBAS_FIX`` → single; ``STATUS_GBAS_FIX`` (RTK) → fixed when the reported σ is at most
``rtk_fixed_std``, else float (NavSatFix has no float/fixed flag; receivers report centimetres when fixed).

**Floors.** An indoor fix in a floor's frame tells the floor: when it differs from the estimate's, a
floor change is fused first (a lift exit is seen by the first scan match on the new floor).

**Output.** Each wheel odometry message is the tick: the odometry-frame pose is integrated from its
speed and the estimate's yaw rate, the map→odom offset moves toward the current estimate at a limited
rate (``offset``), and both poses are published stamped with the wheel message's time. Diagnostics go
out every ``diagnostics_period`` seconds of that time (``health``: the score is VDA 5050's
``localizationScore``). Stamps are the sensors' header stamps, so the node runs on bag time as well.

rclpy runs in its own thread (``robots.rosutil.RosNodeHost``); its callbacks only hand messages to the
asyncio loop, where the localizer lives.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from builtin_interfaces.msg import Time
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from geometry_msgs.msg import PoseWithCovarianceStamped
from nav_msgs.msg import Odometry
from rclpy.publisher import Publisher
from rclpy.qos import QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import Imu, NavSatFix, NavSatStatus

from maps.model import FloorFrame, GeoOrigin
from robots.localization.frames import Pose2, floor_pose_to_enu
from robots.localization.fusion import AnyMeasurement, LocalizerConfig
from robots.localization.health import Health, HealthConfig, localization_health
from robots.localization.localizer import Estimate, Localizer, Outcome, initial_estimate
from robots.localization.measurements import (
    Accel,
    FloorChange,
    GnssFix,
    GnssFixType,
    Gyro,
    PoseFix,
    UwbFix,
    WheelOdometry,
)
from robots.localization.offset import BlendConfig, MapOdomOffset, integrate_odometry
from robots.localization.state import V, W
from robots.rosutil import RosNodeHost, quaternion_to_yaw, to_loop, yaw_to_quaternion

_SENSOR_QOS = QoSProfile(depth=100, reliability=ReliabilityPolicy.BEST_EFFORT)
"""Best effort matches reliable and best-effort publishers alike; deep enough for bursts."""
_OUTPUT_QOS_DEPTH = 10
_MAX_PERIOD = 0.2
"""Longest gap (s) still taken as the sample period of a wheel or IMU message; after a longer one the
reading counts as instantaneous."""


@dataclass(frozen=True, slots=True)
class LocalizationTopics:
    """Topic names, relative to the robot's namespace (see the module docstring)."""

    wheel_odometry: str = "wheel/odom"
    imu: str = "imu"
    gnss: str = "gnss/fix"
    indoor_pose: str = "indoor/pose"
    odometry: str = "localization/odom"
    pose: str = "localization/pose"
    diagnostics: str = "diagnostics"


@dataclass(frozen=True, slots=True)
class SourceNames:
    """The localizer's source names of the node's inputs (keys of ``LocalizerConfig.sensors``)."""

    wheel: str = "wheel"
    gyro: str = "imu"
    accel: str = "accel"
    gnss: str = "gnss"
    scan_match: str = "lidar"
    uwb: str = "uwb"
    floor: str = "floor"


@dataclass(frozen=True, slots=True)
class IndoorFrame:
    """A floor's map frame: which floor it is and how it sits in campus ENU."""

    floor: str
    frame: FloorFrame


@dataclass(frozen=True, slots=True)
class LocalizationNodeConfig:
    """Everything the node needs; ``initial_pose`` (campus ENU) is also where the odometry frame starts."""

    localizer: LocalizerConfig
    origin: GeoOrigin
    initial_pose: Pose2
    initial_std: tuple[float, float, float] = (1.0, 1.0, 0.1)
    initial_floor: str | None = None
    indoor_frames: Mapping[str, IndoorFrame] = field(default_factory=dict)
    namespace: str = ""
    node_name: str = "robopost_localization"
    domain_id: int | None = None
    topics: LocalizationTopics = field(default_factory=LocalizationTopics)
    sources: SourceNames = field(default_factory=SourceNames)
    map_frame: str = "map"
    odom_frame: str = "odom"
    base_frame: str = "base_link"
    blend: BlendConfig = field(default_factory=BlendConfig)
    health: HealthConfig = field(default_factory=HealthConfig)
    diagnostics_period: float = 1.0
    rtk_fixed_std: float = 0.05
    position_only_yaw_var: float = 1.0

    def __post_init__(self) -> None:
        if not self.diagnostics_period > 0.0:
            raise ValueError(f"diagnostics_period must be > 0, got {self.diagnostics_period!r}")
        if not self.rtk_fixed_std > 0.0:
            raise ValueError(f"rtk_fixed_std must be > 0, got {self.rtk_fixed_std!r}")


# --- message conversions (pure) --------------------------------------------------------------------


def seconds(stamp: Time) -> float:
    """A ROS time as float seconds."""
    return float(stamp.sec) + 1e-9 * float(stamp.nanosec)


def to_time(t: float) -> Time:
    """Float seconds as a ROS time."""
    sec = math.floor(t)
    return Time(sec=sec, nanosec=min(round((t - sec) * 1e9), 999_999_999))


def _std(variance: float, default: float) -> float:
    """``√variance`` if it is a usable variance, else ``default``."""
    return math.sqrt(variance) if variance > 0.0 and math.isfinite(variance) else default


def wheel_reading(msg: Odometry, source: str, period: float) -> WheelOdometry:
    """Wheel odometry from ``nav_msgs/Odometry`` (its twist and twist covariance)."""
    twist, cov = msg.twist.twist, msg.twist.covariance
    return WheelOdometry(
        source,
        seconds(msg.header.stamp),
        float(twist.linear.x),
        float(twist.angular.z),
        _std(cov[0], 0.05),
        _std(cov[35], 0.05),
        period,
    )


def imu_readings(msg: Imu, gyro_source: str, accel_source: str, period: float) -> list[Gyro | Accel]:
    """The gyro (z) and forward accelerometer (x) readings of ``sensor_msgs/Imu``.

    A covariance whose first element is -1 marks the field as not provided (REP 145)."""
    t = seconds(msg.header.stamp)
    out: list[Gyro | Accel] = []
    if msg.angular_velocity_covariance[0] != -1.0:
        std = _std(msg.angular_velocity_covariance[8], 0.005)
        out.append(Gyro(gyro_source, t, float(msg.angular_velocity.z), std, period))
    if msg.linear_acceleration_covariance[0] != -1.0:
        std = _std(msg.linear_acceleration_covariance[0], 0.05)
        out.append(Accel(accel_source, t, float(msg.linear_acceleration.x), std, period))
    return out


def fix_type(msg: NavSatFix, rtk_fixed_std: float) -> tuple[GnssFixType, float | None]:
    """The fix type and reported horizontal σ of a ``sensor_msgs/NavSatFix`` (module docstring)."""
    std = None
    if msg.position_covariance_type != NavSatFix.COVARIANCE_TYPE_UNKNOWN:
        var = max(msg.position_covariance[0], msg.position_covariance[4])
        std = math.sqrt(var) if var > 0.0 and math.isfinite(var) else None
    status = msg.status.status
    if status <= NavSatStatus.STATUS_NO_FIX or not (
        math.isfinite(msg.latitude) and math.isfinite(msg.longitude)
    ):
        return GnssFixType.NONE, std
    if status == NavSatStatus.STATUS_GBAS_FIX:
        return (GnssFixType.FIXED if std is not None and std <= rtk_fixed_std else GnssFixType.FLOAT), std
    return GnssFixType.SINGLE, std


def gnss_fix(msg: NavSatFix, origin: GeoOrigin, source: str, rtk_fixed_std: float) -> GnssFix:
    """A GNSS fix in campus ENU from ``sensor_msgs/NavSatFix``."""
    kind, std = fix_type(msg, rtk_fixed_std)
    t = seconds(msg.header.stamp)
    if kind is GnssFixType.NONE:
        return GnssFix(source, t, 0.0, 0.0, kind)
    alt = msg.altitude if math.isfinite(msg.altitude) else origin.alt
    return GnssFix.from_geodetic(origin, source, t, msg.latitude, msg.longitude, alt, kind, std)


def indoor_fix(
    msg: PoseWithCovarianceStamped, frame: FloorFrame, sources: SourceNames, position_only_yaw_var: float
) -> PoseFix | UwbFix:
    """A scan-match pose (or a UWB position, when the yaw is unknown) in a floor frame, in campus ENU."""
    t = seconds(msg.header.stamp)
    pose = msg.pose.pose
    local = Pose2(float(pose.position.x), float(pose.position.y), quaternion_to_yaw(pose.orientation))
    c = msg.pose.covariance
    if not c[35] < position_only_yaw_var:
        enu = floor_pose_to_enu(frame, local)
        return UwbFix(sources.uwb, t, enu.x, enu.y, _std(max(c[0], c[7]), 0.15))
    cov = np.array([[c[0], c[1], c[5]], [c[6], c[7], c[11]], [c[30], c[31], c[35]]])
    return PoseFix.from_floor(frame, sources.scan_match, t, local, cov)


def pose_covariance(p: Any) -> list[float]:
    """A 6×6 row-major pose covariance (x, y, z, roll, pitch, yaw) from the state covariance."""
    out = [0.0] * 36
    index = {0: 0, 1: 1, 2: 5}  # state x, y, yaw → pose x, y, yaw
    for i, a in index.items():
        for j, b in index.items():
            out[a * 6 + b] = float(p[i, j])
    return out


# --- the node -----------------------------------------------------------------------------------------


class LocalizationNode:
    """The localizer behind ROS 2 topics (see the module docstring); ``await start()``, then ``close()``."""

    def __init__(self, config: LocalizationNodeConfig, logger: logging.Logger | None = None) -> None:
        self._config = cfg = config
        self._log = logger or logging.getLogger(__name__)
        self._host = RosNodeHost(cfg.node_name, namespace=cfg.namespace, domain_id=cfg.domain_id)
        self._localizer: Localizer | None = None
        self._blend = MapOdomOffset(cfg.blend)
        self._odom = cfg.initial_pose
        self._started_output = False
        self._last_wheel: float | None = None
        self._last_imu: float | None = None
        self._last_diagnostics = -math.inf
        self._health: Health | None = None
        self._publishers: dict[str, Publisher] = {}

    @property
    def localizer(self) -> Localizer | None:
        """The localizer (read it on the asyncio loop only); None before the first measurement."""
        return self._localizer

    @property
    def health(self) -> Health | None:
        """The health as last published (None before the first wheel odometry)."""
        return self._health

    async def start(self) -> None:
        """Start the node: subscriptions for the sensors, publishers for the poses and diagnostics."""
        loop = asyncio.get_running_loop()
        node = self._host.start()
        topics = self._config.topics
        self._publishers = {
            "odometry": node.create_publisher(Odometry, topics.odometry, _OUTPUT_QOS_DEPTH),
            "pose": node.create_publisher(PoseWithCovarianceStamped, topics.pose, _OUTPUT_QOS_DEPTH),
            "diagnostics": node.create_publisher(DiagnosticArray, topics.diagnostics, _OUTPUT_QOS_DEPTH),
        }
        for msg_type, topic, handler in (
            (Odometry, topics.wheel_odometry, self._on_wheel),
            (Imu, topics.imu, self._on_imu),
            (NavSatFix, topics.gnss, self._on_gnss),
            (PoseWithCovarianceStamped, topics.indoor_pose, self._on_indoor),
        ):
            node.create_subscription(msg_type, topic, to_loop(loop, handler), _SENSOR_QOS)

    def close(self) -> None:
        """Stop the node (safe to call twice)."""
        self._publishers = {}
        self._host.close()

    # --- inputs (on the asyncio loop) ----------------------------------------------------------------

    def _loc(self, t: float) -> Localizer:
        """The localizer, started at the initial pose just before the first measurement's time ``t``
        (stamps are the sensors', so the start time comes from them)."""
        if self._localizer is None:
            cfg = self._config
            initial = initial_estimate(t - 1e-6, cfg.initial_pose, cfg.initial_std, cfg.initial_floor)
            self._localizer = Localizer(cfg.localizer, initial)
        return self._localizer

    def _process(self, meas: AnyMeasurement) -> Outcome | None:
        try:
            return self._loc(meas.stamp).process(meas)
        except ValueError as exc:  # an unconfigured source: a deployment error, reported, not fatal
            self._log.error("localization: %s", exc)
            return None

    def _on_wheel(self, msg: Odometry) -> None:
        t = seconds(msg.header.stamp)
        period = _period(self._last_wheel, t)
        reading = wheel_reading(msg, self._config.sources.wheel, period)
        if self._process(reading) not in (Outcome.APPLIED, Outcome.REPLAYED):
            return
        dt = 0.0 if self._last_wheel is None else max(0.0, t - self._last_wheel)
        self._last_wheel = t
        self._publish(t, reading, dt)

    def _on_imu(self, msg: Imu) -> None:
        t = seconds(msg.header.stamp)
        period = _period(self._last_imu, t)
        self._last_imu = t
        sources = self._config.sources
        for reading in imu_readings(msg, sources.gyro, sources.accel, period):
            self._process(reading)

    def _on_gnss(self, msg: NavSatFix) -> None:
        cfg = self._config
        self._process(gnss_fix(msg, cfg.origin, cfg.sources.gnss, cfg.rtk_fixed_std))

    def _on_indoor(self, msg: PoseWithCovarianceStamped) -> None:
        cfg = self._config
        indoor = cfg.indoor_frames.get(msg.header.frame_id)
        if indoor is None:
            self._log.warning("localization: indoor fix in unknown frame %r dropped", msg.header.frame_id)
            return
        fix = indoor_fix(msg, indoor.frame, cfg.sources, cfg.position_only_yaw_var)
        if self._loc(fix.stamp).latest.floor != indoor.floor:
            self._process(FloorChange(cfg.sources.floor, fix.stamp, indoor.floor))
        self._process(fix)

    # --- outputs --------------------------------------------------------------------------------------

    def _publish(self, t: float, reading: WheelOdometry, dt: float) -> None:
        loc = self._loc(t)
        current = loc.latest
        self._odom = integrate_odometry(self._odom, reading.speed, float(current.x[W]), dt)
        if self._started_output:
            published = self._blend.update(self._odom, current.pose, dt)
        else:
            self._blend.reset(self._odom, current.pose)
            published, self._started_output = current.pose, True
        stamp = to_time(t)
        self._publishers["odometry"].publish(self._odometry_message(stamp, current))
        self._publishers["pose"].publish(self._pose_message(stamp, published, current))
        if t - self._last_diagnostics >= self._config.diagnostics_period:
            self._last_diagnostics = t
            self._health = localization_health(current, loc.last_used, self._config.health)
            self._publishers["diagnostics"].publish(_diagnostics(stamp, self._health))

    def _odometry_message(self, stamp: Time, current: Estimate) -> Odometry:
        cfg = self._config
        msg = Odometry()
        msg.header.stamp = stamp
        msg.header.frame_id = cfg.odom_frame
        msg.child_frame_id = cfg.base_frame
        msg.pose.pose.position.x = self._odom.x
        msg.pose.pose.position.y = self._odom.y
        msg.pose.pose.orientation = yaw_to_quaternion(self._odom.yaw)
        msg.pose.covariance = pose_covariance(current.p)
        msg.twist.twist.linear.x = float(current.x[V])
        msg.twist.twist.angular.z = float(current.x[W])
        twist_cov = [0.0] * 36
        twist_cov[0], twist_cov[35] = float(current.p[V, V]), float(current.p[W, W])
        msg.twist.covariance = twist_cov
        return msg

    def _pose_message(self, stamp: Time, pose: Pose2, current: Estimate) -> PoseWithCovarianceStamped:
        msg = PoseWithCovarianceStamped()
        msg.header.stamp = stamp
        msg.header.frame_id = self._config.map_frame
        msg.pose.pose.position.x = pose.x
        msg.pose.pose.position.y = pose.y
        msg.pose.pose.orientation = yaw_to_quaternion(pose.yaw)
        msg.pose.covariance = pose_covariance(current.p)
        return msg


def _period(last: float | None, t: float) -> float:
    """The sample period of a reading stamped ``t`` after one stamped ``last`` (0: instantaneous)."""
    if last is None:
        return 0.0
    gap = t - last
    return gap if 0.0 < gap <= _MAX_PERIOD else 0.0


def _diagnostics(stamp: Time, health: Health) -> DiagnosticArray:
    """The ``localization`` diagnostic status: OK when localized with a score ≥ 0.5, WARN otherwise.

    Never ERROR: on the robot's ``diagnostics`` topic an ERROR status is a fault to the agent's ROS
    driver, and being unlocalized (e.g. before the first fix) is reported through VDA 5050
    ``positionInitialized`` and ``localizationScore`` (the ``localized`` and ``localization_score``
    values), not as a fault.
    """
    status = DiagnosticStatus()
    status.name = "localization"
    status.hardware_id = "localization"
    ok = health.localized and health.localization_score >= 0.5
    status.level = DiagnosticStatus.OK if ok else DiagnosticStatus.WARN
    sources = ",".join(health.active_sources)
    status.message = f"score {health.localization_score:.2f}, sources {sources or 'none'}"
    status.values = [
        KeyValue(key="localization_score", value=f"{health.localization_score:.3f}"),
        KeyValue(key="localized", value=str(health.localized).lower()),
        KeyValue(key="active_sources", value=sources),
        KeyValue(key="floor", value=health.floor or ""),
        KeyValue(key="position_std_m", value=f"{health.position_std_m:.3f}"),
        KeyValue(key="yaw_std_rad", value=f"{health.yaw_std_rad:.4f}"),
    ]
    msg = DiagnosticArray()
    msg.header.stamp = stamp
    msg.status = [status]
    return msg
