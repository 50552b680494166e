"""``SimulatedBase``: a mobile base as a ROS 2 node of its own, on real time (ROS timers).

It is the other end of ``robots.agent.ros_driver.RosDriver`` (same topic names, ``RobotTopics``,
relative to ``BaseConfig.namespace``):

* ``goal_pose`` (``geometry_msgs/PoseStamped``): turn in place toward the goal at ``turn_rate``, drive
  there in a straight line at ``speed``, then turn to the goal's heading (``turn_to_goal_heading``). A
  goal in another frame than the base's map id is ignored (logged); an empty frame means this map. A
  new goal replaces the running one. Like Nav2's goal checker, a goal within ``goal_tolerance`` metres
  (and ``yaw_tolerance`` radians) of where the base stands counts as reached at once and stops it: that
  is how the driver's stop, a goal at the last odometry pose, halts the base without backing up.
* ``speed_limit`` (``std_msgs/Float64``, transient local): drives toward goals at most this fast
  (m/s; 0 lifts the cap), as Nav2's controller does with its speed limit; velocity commands are not
  capped (the sender caps them).
* ``cmd_vel`` (``geometry_msgs/Twist``): drops any goal and drives at that velocity until
  ``cmd_vel_timeout`` passes without a new command (dead man); a zero twist stops at once.
* ``initialpose`` (``geometry_msgs/PoseWithCovarianceStamped``): the base is put there (frame = new map
  id) and stops.
* publishes ``odom`` (``nav_msgs/Odometry``, frame = map id, body velocities) at ``odometry_rate``,
  ``battery_state`` (``sensor_msgs/BatteryState``; drains ``drain_per_metre`` percent per metre, fills
  at ``charge_rate`` percent per second while charging) at ``battery_rate``, and ``diagnostics``
  (``diagnostic_msgs/DiagnosticArray``: ``e_stop``, ``field_violation`` and injected faults) at
  ``diagnostics_rate`` and at once on every change.

While the e-stop is pressed or the battery is empty the base stands and drops its goal. The test and
simulator handles (``set_e_stop``, ``inject_fault``, ``pose`` ...) may be called from any thread.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass, field
from enum import Enum

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from geometry_msgs.msg import PoseStamped, PoseWithCovarianceStamped, Twist
from nav_msgs.msg import Odometry
from rclpy.node import Node
from rclpy.publisher import Publisher
from sensor_msgs.msg import BatteryState
from std_msgs.msg import Float64

from robots.agent.driver import Pose
from robots.rosutil import (
    E_STOP_STATUS,
    FIELD_VIOLATION_STATUS,
    LATCHED_QOS,
    RobotTopics,
    RosNodeHost,
    angle_difference,
    quaternion_to_yaw,
    yaw_to_quaternion,
)

_QOS_DEPTH = 10
_AT_GOAL = 1e-6
"""Metres (and radians) below which the base counts as at its goal."""


@dataclass(frozen=True, slots=True)
class BaseConfig:
    """Where the base's topics are and how it moves (metres, seconds, radians, percent, hertz)."""

    namespace: str = ""
    node_name: str = "simulated_base"
    domain_id: int | None = None
    topics: RobotTopics = field(default_factory=RobotTopics)
    map_id: str = "map"
    start: Pose = field(default_factory=lambda: Pose(0.0, 0.0))
    speed: float = 1.5
    turn_rate: float = 1.5
    turn_to_goal_heading: bool = True
    odometry_rate: float = 20.0
    battery_rate: float = 1.0
    diagnostics_rate: float = 1.0
    battery: float = 100.0
    drain_per_metre: float = 0.01
    charge_rate: float = 0.05
    voltage_full: float = 50.4
    voltage_empty: float = 42.0
    cmd_vel_timeout: float = 0.5
    goal_tolerance: float = 0.1
    yaw_tolerance: float = 0.25

    def __post_init__(self) -> None:
        positive = (
            "speed",
            "turn_rate",
            "odometry_rate",
            "battery_rate",
            "diagnostics_rate",
            "cmd_vel_timeout",
            "goal_tolerance",
            "yaw_tolerance",
        )
        for name in positive:
            if not getattr(self, name) > 0:
                raise ValueError(f"BaseConfig: {name} must be > 0, got {getattr(self, name)}")
        if not 0.0 <= self.battery <= 100.0:
            raise ValueError(f"BaseConfig: battery must be within 0..100 percent, got {self.battery}")


class _Mode(Enum):
    IDLE = "idle"
    GOAL = "goal"
    VELOCITY = "velocity"


@dataclass(slots=True)
class _Kinematics:
    """The base's motion state and one integration step; no ROS, no locking (the node does that)."""

    config: BaseConfig
    x: float
    y: float
    theta: float
    map_id: str
    battery: float
    mode: _Mode = _Mode.IDLE
    goal: Pose | None = None
    command: tuple[float, float] = (0.0, 0.0)
    command_until: float = 0.0
    vx: float = 0.0
    omega: float = 0.0
    charging: bool = False
    speed_limit: float = 0.0  # m/s on goals; 0: none

    def halt(self) -> None:
        """Stop and forget goal and velocity command."""
        self.mode, self.goal, self.vx, self.omega = _Mode.IDLE, None, 0.0, 0.0

    def set_goal(self, goal: Pose) -> None:
        """Head for ``goal``; one within the goal tolerance of here is reached at once (heading aside)."""
        cfg = self.config
        if math.hypot(goal.x - self.x, goal.y - self.y) > cfg.goal_tolerance:
            self.goal, self.mode = goal, _Mode.GOAL
        elif cfg.turn_to_goal_heading and abs(angle_difference(goal.theta, self.theta)) > cfg.yaw_tolerance:
            self.goal, self.mode = Pose(self.x, self.y, goal.theta, goal.map_id), _Mode.GOAL
        else:
            self.halt()

    def step(self, dt: float, now: float, can_move: bool) -> None:
        """Move for ``dt`` seconds (``now``: monotonic seconds, for the ``cmd_vel`` dead man)."""
        if self.charging:
            self.battery = min(100.0, self.battery + self.config.charge_rate * dt)
        if not can_move or self.battery <= 0.0:
            self.halt()
        elif self.mode is _Mode.GOAL and self.goal is not None:
            self._step_goal(self.goal, dt)
        elif self.mode is _Mode.VELOCITY and now <= self.command_until:
            self._step_velocity(dt)
        else:
            self.halt()

    def _step_goal(self, goal: Pose, dt: float) -> None:
        remaining = math.hypot(goal.x - self.x, goal.y - self.y)
        if remaining > _AT_GOAL:
            heading = math.atan2(goal.y - self.y, goal.x - self.x)
            if abs(angle_difference(heading, self.theta)) > _AT_GOAL:
                self._turn_toward(heading, dt)
            else:
                self._drive(goal, remaining, dt)
        elif self.config.turn_to_goal_heading and abs(angle_difference(goal.theta, self.theta)) > _AT_GOAL:
            self._turn_toward(goal.theta, dt)
        else:
            self.halt()

    def _turn_toward(self, heading: float, dt: float) -> None:
        error = angle_difference(heading, self.theta)
        turned = min(self.config.turn_rate * dt, abs(error))
        self.theta = _wrap(self.theta + math.copysign(turned, error))
        self.vx, self.omega = 0.0, math.copysign(turned / dt, error)

    def _drive(self, goal: Pose, remaining: float, dt: float) -> None:
        speed = self.config.speed if self.speed_limit <= 0.0 else min(self.config.speed, self.speed_limit)
        distance = min(speed * dt, remaining)
        if distance >= remaining:
            self.x, self.y = goal.x, goal.y
        else:
            self.x += (goal.x - self.x) * distance / remaining
            self.y += (goal.y - self.y) * distance / remaining
        self._drain(distance)
        self.vx, self.omega = distance / dt, 0.0

    def _step_velocity(self, dt: float) -> None:
        vx, omega = self.command
        distance = vx * dt
        self.x += distance * math.cos(self.theta)
        self.y += distance * math.sin(self.theta)
        self.theta = _wrap(self.theta + omega * dt)
        self._drain(abs(distance))
        self.vx, self.omega = vx, omega

    def _drain(self, metres: float) -> None:
        self.battery = max(0.0, self.battery - metres * self.config.drain_per_metre)


class SimulatedBase:
    """A simulated mobile base on ROS 2 (see the module docstring); ``start()`` then ``close()``."""

    def __init__(self, config: BaseConfig | None = None) -> None:
        self._config = cfg = config or BaseConfig()
        self._host = RosNodeHost(cfg.node_name, namespace=cfg.namespace, domain_id=cfg.domain_id)
        self._lock = threading.Lock()
        start = cfg.start
        self._state = _Kinematics(cfg, start.x, start.y, start.theta, start.map_id or cfg.map_id, cfg.battery)
        self._e_stop = False
        self._field_violation = False
        self._faults: dict[str, str | None] = {}
        self._publishers: dict[str, Publisher] = {}
        self._last_tick: float | None = None
        self._goals_received = 0

    # --- lifecycle -------------------------------------------------------------------------------------

    def start(self) -> None:
        """Create the node's publishers, subscriptions and timers and start spinning."""
        node = self._host.start()
        topics = self._config.topics
        self._publishers = {
            "odometry": node.create_publisher(Odometry, topics.odometry, _QOS_DEPTH),
            "battery": node.create_publisher(BatteryState, topics.battery, _QOS_DEPTH),
            "diagnostics": node.create_publisher(DiagnosticArray, topics.diagnostics, _QOS_DEPTH),
        }
        node.create_subscription(PoseStamped, topics.goal, self._on_goal, _QOS_DEPTH)
        node.create_subscription(Twist, topics.cmd_vel, self._on_cmd_vel, _QOS_DEPTH)
        node.create_subscription(Float64, topics.speed_limit, self._on_speed_limit, LATCHED_QOS)
        node.create_subscription(
            PoseWithCovarianceStamped, topics.initial_pose, self._on_initial_pose, _QOS_DEPTH
        )
        node.create_timer(1.0 / self._config.odometry_rate, self._on_odometry_timer)
        node.create_timer(1.0 / self._config.battery_rate, self._publish_battery)
        node.create_timer(1.0 / self._config.diagnostics_rate, self._publish_diagnostics)

    def close(self) -> None:
        """Stop spinning and release the node (safe to call twice)."""
        self._publishers = {}
        self._host.close()

    def __enter__(self) -> SimulatedBase:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- handles for tests and the simulator (any thread) ------------------------------------------------

    @property
    def pose(self) -> Pose:
        """Where the base is now."""
        with self._lock:
            s = self._state
            return Pose(s.x, s.y, s.theta, s.map_id)

    @property
    def velocity(self) -> tuple[float, float]:
        """(forward m/s, turn rad/s) of the last odometry step."""
        with self._lock:
            return self._state.vx, self._state.omega

    @property
    def battery(self) -> float:
        """State of charge in percent."""
        with self._lock:
            return self._state.battery

    @property
    def goals_received(self) -> int:
        """How many goals arrived on the goal topic (ignored ones included)."""
        with self._lock:
            return self._goals_received

    def set_e_stop(self, pressed: bool) -> None:
        """Press (the base stops and drops its goal) or release the emergency stop."""
        with self._lock:
            self._e_stop = pressed
            if pressed:
                self._state.halt()
        self._publish_diagnostics()

    def set_field_violation(self, violated: bool) -> None:
        """Report a protective-field violation (WARN) or clear it; motion is not affected."""
        with self._lock:
            self._field_violation = violated
        self._publish_diagnostics()

    def inject_fault(self, name: str, message: str = "fault") -> None:
        """Report a fault as a diagnostic status ``name`` at level ERROR."""
        with self._lock:
            self._faults[name] = message
        self._publish_diagnostics()

    def clear_fault(self, name: str) -> None:
        """Report fault ``name`` as OK again (it stays in the array so readers see it clear)."""
        with self._lock:
            if name in self._faults:
                self._faults[name] = None
        self._publish_diagnostics()

    def set_battery(self, percent: float) -> None:
        """Set the state of charge (0..100) and publish it."""
        if not 0.0 <= percent <= 100.0:
            raise ValueError(f"SimulatedBase: battery must be within 0..100 percent, got {percent}")
        with self._lock:
            self._state.battery = float(percent)
        self._publish_battery()

    def set_charging(self, charging: bool) -> None:
        """Start or stop charging and publish the battery state."""
        with self._lock:
            self._state.charging = charging
        self._publish_battery()

    # --- ROS callbacks (spin thread) ---------------------------------------------------------------------

    def _on_goal(self, msg: PoseStamped) -> None:
        with self._lock:
            self._goals_received += 1
            s = self._state
            frame = msg.header.frame_id
            if frame and frame != s.map_id:
                self._node.get_logger().warning(
                    f"goal in frame {frame!r} ignored: the base is on {s.map_id!r}"
                )
                return
            position, theta = msg.pose.position, quaternion_to_yaw(msg.pose.orientation)
            s.set_goal(Pose(position.x, position.y, theta, s.map_id))

    def _on_cmd_vel(self, msg: Twist) -> None:
        now = self._now()
        with self._lock:
            s = self._state
            if msg.linear.x == 0.0 and msg.angular.z == 0.0:
                s.halt()
                return
            s.goal, s.mode = None, _Mode.VELOCITY
            s.command, s.command_until = (msg.linear.x, msg.angular.z), now + self._config.cmd_vel_timeout

    def _on_speed_limit(self, msg: Float64) -> None:
        with self._lock:
            self._state.speed_limit = max(0.0, float(msg.data)) if math.isfinite(msg.data) else 0.0

    @property
    def speed_limit(self) -> float:
        """The cap on goal drives in force (m/s; 0: none)."""
        with self._lock:
            return self._state.speed_limit

    def _on_initial_pose(self, msg: PoseWithCovarianceStamped) -> None:
        pose = msg.pose.pose
        with self._lock:
            s = self._state
            s.halt()
            s.x, s.y, s.theta = pose.position.x, pose.position.y, quaternion_to_yaw(pose.orientation)
            s.map_id = msg.header.frame_id or s.map_id

    def _on_odometry_timer(self) -> None:
        now = self._now()
        dt = 0.0 if self._last_tick is None else now - self._last_tick
        self._last_tick = now
        with self._lock:
            if dt > 0.0:
                self._state.step(dt, now, can_move=not self._e_stop)
            msg = self._odometry_message()
        self._publish("odometry", msg)

    # --- outgoing messages -------------------------------------------------------------------------------

    def _odometry_message(self) -> Odometry:
        s = self._state
        msg = Odometry()
        msg.header.stamp = self._node.get_clock().now().to_msg()
        msg.header.frame_id = s.map_id
        msg.child_frame_id = "base_link"
        msg.pose.pose.position.x, msg.pose.pose.position.y = s.x, s.y
        msg.pose.pose.orientation = yaw_to_quaternion(s.theta)
        msg.twist.twist.linear.x, msg.twist.twist.angular.z = s.vx, s.omega
        return msg

    def _publish_battery(self) -> None:
        cfg = self._config
        with self._lock:
            charge, charging = self._state.battery, self._state.charging
        msg = BatteryState()
        msg.header.stamp = self._node.get_clock().now().to_msg()
        msg.percentage = charge / 100.0
        msg.voltage = cfg.voltage_empty + (cfg.voltage_full - cfg.voltage_empty) * charge / 100.0
        msg.present = True
        msg.power_supply_status = (
            BatteryState.POWER_SUPPLY_STATUS_CHARGING
            if charging
            else BatteryState.POWER_SUPPLY_STATUS_DISCHARGING
        )
        self._publish("battery", msg)

    def _publish_diagnostics(self) -> None:
        with self._lock:
            statuses = [
                _status(
                    E_STOP_STATUS,
                    DiagnosticStatus.ERROR if self._e_stop else DiagnosticStatus.OK,
                    "pressed" if self._e_stop else "released",
                ),
                _status(
                    FIELD_VIOLATION_STATUS,
                    DiagnosticStatus.WARN if self._field_violation else DiagnosticStatus.OK,
                    "violated" if self._field_violation else "clear",
                ),
            ]
            statuses += [
                _status(name, DiagnosticStatus.OK if text is None else DiagnosticStatus.ERROR, text or "ok")
                for name, text in self._faults.items()
            ]
        msg = DiagnosticArray(status=statuses)
        msg.header.stamp = self._node.get_clock().now().to_msg()
        self._publish("diagnostics", msg)

    def _publish(self, name: str, msg: object) -> None:
        publisher = self._publishers.get(name)
        if publisher is not None:
            publisher.publish(msg)

    @property
    def _node(self) -> Node:
        return self._host.node

    def _now(self) -> float:
        """Seconds on the node's clock (ROS time: wall time unless ``use_sim_time``)."""
        return float(self._node.get_clock().now().nanoseconds) / 1e9


def _status(name: str, level: bytes, message: str) -> DiagnosticStatus:
    return DiagnosticStatus(level=level, name=name, message=message, hardware_id="simulated_base")


def _wrap(angle: float) -> float:
    return math.atan2(math.sin(angle), math.cos(angle))
