"""rclpy inside an asyncio program: one node in its own ``Context``, spun by an executor in a thread.

Used by the robot agent's ROS 2 driver (``robots.agent.ros_driver``) and the simulated base
(``sim.ros_base``). The rules it enforces (../shared/RECIPES.md):

* every ``RosNodeHost`` has its own ``rclpy`` ``Context``, initialised without rclpy's signal handlers
  (the asyncio program owns SIGINT/SIGTERM), so several nodes live in one process independently;
* a ``SingleThreadedExecutor`` spins that node in a daemon thread;
* callbacks that feed asyncio code do nothing but hop to the loop (``to_loop``);
* ``close()`` shuts down in order — stop the spin loop, join the thread, shut the executor down, destroy
  the node, shut the context down — without which the process dies with SIGABRT at exit.

It also holds what the driver and the base must agree on: the topic names (``RobotTopics``), the
diagnostic status names of the safety layers, and yaw ⇄ quaternion conversion.
"""

from __future__ import annotations

import asyncio
import math
import threading
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import rclpy
from geometry_msgs.msg import Quaternion
from rclpy.context import Context
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from rclpy.signals import SignalHandlerOptions

E_STOP_STATUS = "e_stop"
"""``DiagnosticStatus`` name of the emergency stop: level ERROR while pressed, OK when released."""

FIELD_VIOLATION_STATUS = "field_violation"
"""``DiagnosticStatus`` name of the safety scanner's protective field: WARN or ERROR while violated."""

_SPIN_PERIOD = 0.1
"""Longest the spin thread waits before it looks at its stop flag again (``close`` also wakes it)."""


class RosLinkError(RuntimeError):
    """The ROS 2 side cannot be used as asked (not started, already closed)."""


LATCHED_QOS = QoSProfile(
    depth=1, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL
)
"""A value in force (a cap, a mode): the last one is kept for subscribers that join later."""


@dataclass(frozen=True, slots=True)
class RobotTopics:
    """Topic names of one robot's base, relative to the robot's namespace (standard messages only).

    ``goal``: ``geometry_msgs/PoseStamped`` (frame = map id; Nav2's ``bt_navigator`` listens here too);
    ``odometry``: ``nav_msgs/Odometry`` of the base in the map frame; ``battery``:
    ``sensor_msgs/BatteryState``; ``diagnostics``: ``diagnostic_msgs/DiagnosticArray``; ``cmd_vel``:
    ``geometry_msgs/Twist``; ``initial_pose``: ``geometry_msgs/PoseWithCovarianceStamped`` (AMCL's
    ``initialpose``); ``speed_limit``: ``std_msgs/Float64``, the safety supervisor's cap on navigation
    in m/s, 0 = none (Nav2's ``speed_limit`` convention; a two-line relay turns it into
    ``nav2_msgs/SpeedLimit`` with ``percentage`` false), published transient-local so a base that
    starts later still gets the cap in force.
    """

    goal: str = "goal_pose"
    odometry: str = "odom"
    battery: str = "battery_state"
    diagnostics: str = "diagnostics"
    cmd_vel: str = "cmd_vel"
    initial_pose: str = "initialpose"
    speed_limit: str = "speed_limit"


class RosNodeHost:
    """One ``rclpy`` node in a ``Context`` of its own, spun by a ``SingleThreadedExecutor`` in a thread.

    ``domain_id`` None takes ``ROS_DOMAIN_ID`` from the environment. Build the node's publishers,
    subscriptions and timers on ``node`` after ``start()``; call ``close()`` before the process ends.
    """

    def __init__(self, node_name: str, *, namespace: str = "", domain_id: int | None = None) -> None:
        self._node_name = node_name
        self._namespace = namespace
        self._domain_id = domain_id
        self._context: Context | None = None
        self._node: Node | None = None
        self._executor: SingleThreadedExecutor | None = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()

    @property
    def node(self) -> Node:
        """The node; raises ``RosLinkError`` before ``start()`` or after ``close()``."""
        if self._node is None:
            raise RosLinkError(f"ROS node {self._node_name!r} is not running")
        return self._node

    def start(self) -> Node:
        """Initialise the context, create the node and start spinning it; returns the node."""
        if self._context is not None:
            raise RosLinkError(f"ROS node {self._node_name!r} was already started")
        self._stopping.clear()
        self._context = Context()
        rclpy.init(
            context=self._context,
            domain_id=self._domain_id,
            signal_handler_options=SignalHandlerOptions.NO,
        )
        with warnings.catch_warnings():
            # rclpy loads message type support through lark, which imports the deprecated sre_parse and
            # sre_constants modules: rclpy's business, not to fail programs that make warnings errors.
            warnings.filterwarnings("ignore", "module 'sre_.*' is deprecated", DeprecationWarning)
            self._node = Node(self._node_name, namespace=self._namespace, context=self._context)
        self._executor = SingleThreadedExecutor(context=self._context)
        self._executor.add_node(self._node)
        self._thread = threading.Thread(target=self._spin, name=f"ros-{self._node_name}", daemon=True)
        self._thread.start()
        return self._node

    def close(self) -> None:
        """Stop spinning and release node and context, in the order rclpy needs; safe to call twice."""
        self._stopping.set()
        if self._executor is not None:
            self._executor.wake()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        if self._executor is not None:
            self._executor.shutdown()
            self._executor = None
        if self._node is not None:
            self._node.destroy_node()
            self._node = None
        if self._context is not None:
            rclpy.try_shutdown(context=self._context)
            self._context = None

    def _spin(self) -> None:
        """The spin thread: run callbacks until ``close`` or the context shuts down."""
        executor, context = self._executor, self._context
        if executor is None or context is None:
            return
        while not self._stopping.is_set() and context.ok():
            executor.spin_once(timeout_sec=_SPIN_PERIOD)


def to_loop(loop: asyncio.AbstractEventLoop, handler: Callable[[Any], None]) -> Callable[[Any], None]:
    """An rclpy callback that only hands its message to ``handler`` on ``loop`` (thread-safe).

    Messages arriving after the loop has closed are dropped: the asyncio side is gone.
    """

    def callback(msg: Any) -> None:
        if loop.is_closed():
            return
        try:
            loop.call_soon_threadsafe(handler, msg)
        except RuntimeError:  # the loop closed between the check and the call
            return

    return callback


def yaw_to_quaternion(theta: float) -> Quaternion:
    """The quaternion of a rotation by ``theta`` radians about z."""
    return Quaternion(x=0.0, y=0.0, z=math.sin(theta / 2.0), w=math.cos(theta / 2.0))


def quaternion_to_yaw(q: Quaternion) -> float:
    """The rotation about z (radians, -π..π) of a quaternion."""
    return math.atan2(2.0 * (q.w * q.z + q.x * q.y), 1.0 - 2.0 * (q.y * q.y + q.z * q.z))


def angle_difference(a: float, b: float) -> float:
    """``a - b`` wrapped into -π..π."""
    return math.atan2(math.sin(a - b), math.cos(a - b))
