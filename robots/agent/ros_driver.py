"""``RosDriver``: the robot's ROS 2 stack as a ``RobotDriver`` (rclpy, standard messages only).

Topics (relative to the robot's namespace; names in ``robots.rosutil.RobotTopics``):

====================  =======================================  ==========================================
topic                 message                                  use
====================  =======================================  ==========================================
``goal_pose``   (out)  ``geometry_msgs/PoseStamped``            navigation goal, ``frame_id`` = map id
``cmd_vel``     (out)  ``geometry_msgs/Twist``                  teleop (``send_velocity``) and stop
``initialpose`` (out)  ``geometry_msgs/PoseWithCovariance…``    VDA 5050 ``initPosition``
``speed_limit`` (out)  ``std_msgs/Float64`` (transient local)   the safety supervisor's cap on
                                                               navigation, m/s; 0 = none (``limit_speed``)
``odom``        (in)   ``nav_msgs/Odometry``                    pose in the map frame (``frame_id`` = map
                                                               id), body velocities
``battery_state`` (in) ``sensor_msgs/BatteryState``             ``percentage`` (0..1) → percent, voltage,
                                                               ``POWER_SUPPLY_STATUS_CHARGING``
``diagnostics`` (in)   ``diagnostic_msgs/DiagnosticArray``      safety layers and faults
``safety/diagnostics``  ``diagnostic_msgs/DiagnosticArray``      the agent's safety supervisor
(out)                                                          (``publish_diagnostics``; never read back)
``safety/acknowledge``  ``std_srvs/srv/Trigger`` (service)       the reset key at the vehicle
====================  =======================================  ==========================================

**Reset key.** The ``acknowledge_service`` (default ``safety/acknowledge``) is the on-site reset key: a
call runs the callback the agent's safety layer registered (``on_acknowledge``; the driver knows
nothing of the safety classes) on the asyncio loop and answers ``success`` true with ``"all latches
cleared"``, or false with why not (button still pressed, a remote stop that only the control centre
releases, no safety layer attached, no answer within ``acknowledge_timeout``). rclpy calls the
service in its spin thread, which waits for the loop's answer (bounded by the timeout, so a closing
node is never blocked for longer); the loop is only asked to run one control tick.

**Goal/outcome convention (no action server).** ``navigate`` publishes the goal and judges the outcome
from odometry alone, so it works with any base that takes goals on a ``PoseStamped`` topic (Nav2's
``bt_navigator`` subscribes to ``goal_pose``; so does ``sim.ros_base``) and needs nothing beyond the
standard messages (no ``nav2_msgs``, no action client):

* ``SUCCESS`` when the odometry pose is within ``position_tolerance`` of the goal (and within
  ``heading_tolerance`` if one is set);
* ``RETRY`` when the robot neither moves nor gets ``progress_step`` closer for ``stall_timeout``
  seconds (obstacle, goal rejected or lost), when the drive outlasts its deadline
  (``deadline_margin + deadline_factor × distance / nominal_speed``), when nobody subscribes to the
  goal topic within ``stall_timeout``, or when the e-stop is pressed;
* ``IMPOSSIBLE`` when the goal is on another map than the odometry's, or a fault is reported.

Until the robot is seen moving the goal is published again every ``goal_resend_period`` (a message lost
during discovery must not cost a stall timeout). ``max_speed`` cannot be expressed with standard
messages: it only stretches the deadline. **Stopping** (cancelled ``navigate``, a failed drive,
``stop()``) publishes a goal at the last odometry pose — which preempts the running goal on any
goal-topic base, Nav2 included — and a zero ``Twist`` on ``cmd_vel`` for bases driven by velocity.

**Diagnostics.** Statuses are remembered by name (arrays may carry only some of them). A status whose
last name segment is in ``e_stop_names`` sets ``e_stop`` at level ERROR; one in
``field_violation_names`` sets ``field_violation`` at WARN or ERROR; any other status at ERROR is a
fault (``"name: message"``). STALE is not a fault.

**Actions.** Plain ROS has no hardware actions: ``initPosition`` (VDA 5050 ``x``, ``y``, ``theta``,
``mapId``) is published on ``initialpose`` as AMCL expects; ``enterLift`` and ``exitLift`` are drives
(below); other types go to the handlers passed as ``actions`` (e.g. the cart's locker board); anything
else is ``IMPOSSIBLE``. A handler passed for ``enterLift`` or ``exitLift`` wins: a vendor's own lift
integration knows its lifts better than a pose does.

**Lift rides** (the orchestrator's lift protocol: ``enterLift``, ride, ``initPosition`` on the arrival
floor's map, ``exitLift``; calling the cabin and holding its doors is the orchestrator's lift session,
not the robot's). Each lift action carries an optional pose (``x``, ``y``, ``theta``, ``mapId``;
``interfaces.vda5050.actions``) and the driver drives there exactly as ``navigate`` does (the same
goal topic and odometry judge; ``SUCCESS`` when there, ``RETRY``/``IMPOSSIBLE`` as for a drive, with a
``resultDescription``): for ``enterLift`` the cabin's centre on the boarding floor's map, for
``exitLift`` the exit landing on the map the robot is on after ``initPosition``. A missing ``mapId``
means the odometry's map. Without a pose a plain navigation stack cannot know where the cabin is:
``IMPOSSIBLE``, with a ``resultDescription`` saying the robot needs that pose (also for a partial or
non-numeric pose). A ``mapId`` other than the odometry's is waited for up to ``stall_timeout`` (the
base reports the map an ``initialpose`` moved it to only with its next odometry), then ``IMPOSSIBLE``.

**QoS.** Commands are reliable (depth 10, volatile: a late subscriber never gets a stale goal). Sensor
subscriptions are best effort, which matches reliable and best-effort publishers alike (vendor drivers
use both); a lost diagnostics message is repaired by the next periodic one (the robot's own safety
layer, not this driver, is what stops it on an e-stop).

rclpy runs in its own thread (``robots.rosutil.RosNodeHost``); its callbacks only hand messages to the
asyncio loop, where all state lives.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import math
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from geometry_msgs.msg import PoseStamped, PoseWithCovarianceStamped, Twist
from nav_msgs.msg import Odometry
from rclpy.publisher import Publisher
from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import BatteryState
from std_msgs.msg import Float64
from std_srvs.srv import Trigger

from interfaces.clock import Clock, RealClock
from robots.agent.driver import ActionOutcome, DriverResult, Pose, Readout
from robots.agent.readout_feed import ReadoutFeed, ReadoutStream
from robots.rosutil import (
    E_STOP_STATUS,
    FIELD_VIOLATION_STATUS,
    LATCHED_QOS,
    RobotTopics,
    RosLinkError,
    RosNodeHost,
    angle_difference,
    quaternion_to_yaw,
    to_loop,
    yaw_to_quaternion,
)
from robots.safety.report import DiagnosticArray as SafetyDiagnostics

ActionHandler = Callable[[Mapping[str, Any]], Awaitable[DriverResult | ActionOutcome]]
"""A hardware action the ROS driver delegates (e.g. to the locker board): parameters → result."""

LIFT_DESTINATIONS = {"enterLift": "the cabin", "exitLift": "the exit landing"}
"""The lift actions the driver drives itself (module doc, "Lift rides"), and where each one goes."""

AcknowledgeHandler = Callable[[], str | None]
"""The reset key's action (``on_acknowledge``): None when every latch was cleared, else why not."""

_COMMAND_QOS_DEPTH = 10
_INITIAL_POSE_COVARIANCE = (0.25, 0.25, 0.0, 0.0, 0.0, 0.06853891945200942)
"""Diagonal of an ``initialpose`` covariance (x, y, z, roll, pitch, yaw): RViz's 2D pose estimate."""


@dataclass(frozen=True, slots=True)
class RosDriverConfig:
    """Where the robot's topics are and how ``navigate`` judges a drive (metres, seconds, radians)."""

    namespace: str = ""
    node_name: str = "robopost_agent"
    domain_id: int | None = None
    topics: RobotTopics = field(default_factory=RobotTopics)
    default_map_id: str = "map"
    position_tolerance: float = 0.1
    heading_tolerance: float | None = None
    lift_heading_tolerance: float = 0.05
    """``enterLift``/``exitLift`` are reached only when facing the pose's heading too: a robot must
    stand square in the cabin (and in the landing, out of the doors' way) before the doors close."""
    moving_threshold: float = 0.01
    progress_step: float = 0.05
    stall_timeout: float = 5.0
    nominal_speed: float = 0.5
    deadline_factor: float = 3.0
    deadline_margin: float = 30.0
    goal_resend_period: float = 1.0
    check_period: float = 0.1
    e_stop_names: tuple[str, ...] = (E_STOP_STATUS, "emergency_stop", "estop")
    field_violation_names: tuple[str, ...] = (FIELD_VIOLATION_STATUS, "protective_field")
    safety_diagnostics: str = "safety/diagnostics"
    acknowledge_service: str = "safety/acknowledge"
    acknowledge_timeout: float = 2.0

    def __post_init__(self) -> None:
        for name in ("position_tolerance", "stall_timeout", "nominal_speed", "goal_resend_period"):
            if not getattr(self, name) > 0:
                raise ValueError(f"RosDriverConfig: {name} must be > 0, got {getattr(self, name)}")
        if not self.check_period > 0:
            raise ValueError(f"RosDriverConfig: check_period must be > 0, got {self.check_period}")
        if not self.acknowledge_timeout > 0:
            raise ValueError(
                f"RosDriverConfig: acknowledge_timeout must be > 0, got {self.acknowledge_timeout}"
            )


LOCALIZATION_STATUS = "localization"
"""The diagnostic status name (last segment) of ``robots.localization.ros_node``'s health."""


@dataclass(slots=True)
class _Sensed:
    """The latest values from each topic (mutated on the asyncio loop only)."""

    pose: Pose | None = None
    vx: float = 0.0
    vy: float = 0.0
    omega: float = 0.0
    battery_charge: float = 100.0
    battery_voltage: float | None = None
    charging: bool = False
    diagnostics: dict[str, tuple[int, str]] = field(default_factory=dict)
    localization: tuple[float, bool] | None = None
    """(score, localized) from the localization node's ``localization`` status, once it reported."""


class RosDriver:
    """A ``RobotDriver`` over ROS 2 topics (see the module docstring for the conventions)."""

    def __init__(
        self,
        config: RosDriverConfig | None = None,
        *,
        clock: Clock | None = None,
        actions: Mapping[str, ActionHandler] | None = None,
    ) -> None:
        self._config = config or RosDriverConfig()
        self._clock = clock or RealClock()
        self._actions = dict(actions or {})
        self._host = RosNodeHost(
            self._config.node_name, namespace=self._config.namespace, domain_id=self._config.domain_id
        )
        self._sensed = _Sensed()
        self._feed = ReadoutFeed()
        self._publishers: dict[str, Publisher] = {}
        self._latest = self._build_readout()
        self._acknowledge: AcknowledgeHandler | None = None
        self._speed_limit: float | None = None  # last published on speed_limit (0: none)
        self._loop: asyncio.AbstractEventLoop | None = None

    # --- RobotDriver ---------------------------------------------------------------------------------

    async def start(self) -> None:
        """Start the node: publishers for goals/velocity/initial pose, subscriptions for the sensors."""
        loop = asyncio.get_running_loop()
        self._loop = loop
        node = self._host.start()
        topics = self._config.topics
        self._publishers = {
            "goal": node.create_publisher(PoseStamped, topics.goal, _COMMAND_QOS_DEPTH),
            "cmd_vel": node.create_publisher(Twist, topics.cmd_vel, _COMMAND_QOS_DEPTH),
            "initial_pose": node.create_publisher(
                PoseWithCovarianceStamped, topics.initial_pose, _COMMAND_QOS_DEPTH
            ),
            "safety_diagnostics": node.create_publisher(
                DiagnosticArray, self._config.safety_diagnostics, _COMMAND_QOS_DEPTH
            ),
            "speed_limit": node.create_publisher(Float64, topics.speed_limit, LATCHED_QOS),
        }
        # Best effort receives from reliable and best-effort publishers alike (drivers use both).
        for msg_type, topic, handler in (
            (Odometry, topics.odometry, self._on_odometry),
            (BatteryState, topics.battery, self._on_battery),
            (DiagnosticArray, topics.diagnostics, self._on_diagnostics),
        ):
            node.create_subscription(msg_type, topic, to_loop(loop, handler), qos_profile_sensor_data)
        node.create_service(Trigger, self._config.acknowledge_service, self._on_acknowledge_call)

    async def stop(self) -> None:
        """Stop the robot if it is moving, then close the node (safe to call twice)."""
        if self._publishers and self._latest.driving:
            self._publish_stop()
        self._publishers = {}
        self._host.close()

    async def navigate(
        self, goal: Pose, *, max_speed: float | None = None, heading_tolerance: float | None = None
    ) -> DriverResult:
        """Publish ``goal`` and watch odometry until it is reached or the drive fails (module doc);
        ``heading_tolerance`` overrides the configured one for this drive."""
        refusal = self._refusal(goal)
        if refusal is not None:
            return refusal
        goal_msg = self._goal_message(goal)
        if not await self._wait_for_subscriber("goal"):
            return DriverResult.RETRY
        stream = self._feed.subscribe()
        watch = self._new_watch(goal, max_speed, heading_tolerance)
        self._publishers["goal"].publish(goal_msg)
        try:
            verdict = await self._follow(watch, stream, goal_msg)
        except asyncio.CancelledError:
            self._publish_stop()
            raise
        finally:
            stream.close()
        if verdict is not DriverResult.SUCCESS:
            self._publish_stop()
        return verdict

    async def run_action(
        self, action_type: str, parameters: Mapping[str, Any]
    ) -> DriverResult | ActionOutcome:
        """``initPosition`` over ROS, delegated types through their handler, ``enterLift``/``exitLift``
        without a handler as drives to their pose, anything else IMPOSSIBLE (module doc)."""
        if action_type == "initPosition":
            return await self._init_position(parameters)
        handler = self._actions.get(action_type)
        if handler is not None:
            return await handler(parameters)
        if action_type in LIFT_DESTINATIONS:
            return await self._lift_drive(action_type, parameters)
        return DriverResult.IMPOSSIBLE

    def readout(self) -> Readout:
        """The latest readout (``pose`` is None until the first odometry message)."""
        return self._latest

    def readouts(self) -> ReadoutStream:
        """Every readout from now on: one per odometry, battery and diagnostics message."""
        return self._feed.subscribe()

    # --- teleop ----------------------------------------------------------------------------------------

    def send_velocity(self, vx: float, omega: float) -> None:
        """Publish a velocity command (m/s forward, rad/s counter-clockwise) on ``cmd_vel``.

        The base's own ``cmd_vel`` timeout (dead man) stops it when commands stop coming.
        """
        twist = Twist()
        twist.linear.x = float(vx)
        twist.angular.z = float(omega)
        self._publisher("cmd_vel").publish(twist)

    def limit_speed(self, limit: float | None) -> None:
        """Cap navigation at ``limit`` m/s (None: no cap) on ``speed_limit`` — published when the cap
        changes. A cap of 0 is not sent (0 means "none" on that topic): standing still is the safety
        layer's hold and zero ``cmd_vel``, not a speed limit."""
        wanted = 0.0 if limit is None or not math.isfinite(limit) else float(limit)
        if wanted <= 0.0 and limit is not None:
            return
        if wanted == self._speed_limit:
            return
        msg = Float64()
        msg.data = wanted
        self._publisher("speed_limit").publish(msg)
        self._speed_limit = wanted

    @property
    def top_speed(self) -> float:
        """The fastest the base is expected to drive (m/s): ``nominal_speed``."""
        return self._config.nominal_speed

    def publish_diagnostics(self, array: SafetyDiagnostics) -> None:
        """Publish the safety supervisor's diagnostics on ``safety_diagnostics`` (not read back)."""
        msg = DiagnosticArray()
        seconds = math.floor(array.stamp)
        msg.header.stamp.sec = int(seconds)
        msg.header.stamp.nanosec = min(999_999_999, int((array.stamp - seconds) * 1e9))
        for status in array.status:
            out = DiagnosticStatus()
            out.level = bytes([int(status.level)])
            out.name = status.name
            out.message = status.message
            out.hardware_id = status.hardware_id
            out.values = [KeyValue(key=kv.key, value=kv.value) for kv in status.values]
            msg.status.append(out)
        self._publisher("safety_diagnostics").publish(msg)

    # --- the reset key -----------------------------------------------------------------------------------

    def on_acknowledge(self, callback: AcknowledgeHandler | None) -> None:
        """Who answers the reset key (``acknowledge_service``): called on the asyncio loop; None: nobody."""
        self._acknowledge = callback

    def _on_acknowledge_call(self, request: Trigger.Request, response: Trigger.Response) -> Trigger.Response:
        """The service callback (rclpy's spin thread): ask the loop, wait for its answer (module doc)."""
        del request  # Trigger's request is empty
        loop, callback = self._loop, self._acknowledge
        if loop is None or loop.is_closed() or callback is None:
            response.success, response.message = False, "no safety layer takes acknowledgements"
            return response
        answer: concurrent.futures.Future[str | None] = concurrent.futures.Future()

        def run() -> None:
            if not answer.set_running_or_notify_cancel():
                return
            try:
                answer.set_result(callback())
            except Exception as exc:  # the caller hears why; the loop goes on
                answer.set_exception(exc)

        try:
            loop.call_soon_threadsafe(run)
            refusal = answer.result(timeout=self._config.acknowledge_timeout)
        except concurrent.futures.TimeoutError:
            answer.cancel()
            response.success, response.message = False, "the agent did not answer in time"
        except Exception as exc:
            response.success, response.message = False, f"acknowledgement failed: {exc}"
        else:
            response.success = refusal is None
            response.message = "all latches cleared" if refusal is None else refusal
        return response

    # --- incoming messages (run on the asyncio loop) ---------------------------------------------------

    def _on_odometry(self, msg: Odometry) -> None:
        pose = msg.pose.pose
        frame = msg.header.frame_id or self._config.default_map_id
        self._sensed.pose = Pose(pose.position.x, pose.position.y, quaternion_to_yaw(pose.orientation), frame)
        twist = msg.twist.twist
        self._sensed.vx, self._sensed.vy, self._sensed.omega = twist.linear.x, twist.linear.y, twist.angular.z
        self._emit()

    def _on_battery(self, msg: BatteryState) -> None:
        if math.isfinite(msg.percentage):
            self._sensed.battery_charge = min(100.0, max(0.0, msg.percentage * 100.0))
        self._sensed.battery_voltage = msg.voltage if math.isfinite(msg.voltage) else None
        self._sensed.charging = msg.power_supply_status == BatteryState.POWER_SUPPLY_STATUS_CHARGING
        self._emit()

    def _on_diagnostics(self, msg: DiagnosticArray) -> None:
        for status in msg.status:
            self._sensed.diagnostics[status.name] = (_level(status.level), status.message)
            if status.name.rsplit("/", 1)[-1] == LOCALIZATION_STATUS:
                self._sensed.localization = _localization(status) or self._sensed.localization
        self._emit()

    def _emit(self) -> None:
        self._latest = self._build_readout()
        self._feed.publish(self._latest)

    def _build_readout(self) -> Readout:
        s, cfg = self._sensed, self._config
        e_stop, field_violation, faults = _safety(s.diagnostics, cfg.e_stop_names, cfg.field_violation_names)
        moving = max(abs(s.vx), abs(s.vy), abs(s.omega)) > cfg.moving_threshold
        return Readout(
            time=self._clock.now(),
            pose=s.pose,
            localized=s.pose is not None and (s.localization is None or s.localization[1]),
            localization_score=_score(s),
            vx=s.vx,
            vy=s.vy,
            omega=s.omega,
            battery_charge=s.battery_charge,
            battery_voltage=s.battery_voltage,
            charging=s.charging,
            driving=moving,
            e_stop=e_stop,
            field_violation=field_violation,
            faults=faults,
        )

    # --- navigation ------------------------------------------------------------------------------------

    def _refusal(self, goal: Pose) -> DriverResult | None:
        """Why a drive cannot start now (other map, fault, e-stop), or None."""
        readout = self._latest
        here = readout.pose
        if goal.map_id and here is not None and here.map_id and goal.map_id != here.map_id:
            return DriverResult.IMPOSSIBLE
        if readout.faults:
            return DriverResult.IMPOSSIBLE
        return DriverResult.RETRY if readout.e_stop else None

    def _new_watch(
        self, goal: Pose, max_speed: float | None, heading_tolerance: float | None = None
    ) -> _GoalWatch:
        """A progress judge for a drive starting now."""
        cfg, now, here = self._config, self._clock.monotonic(), self._latest.pose
        if heading_tolerance is not None:
            cfg = replace(cfg, heading_tolerance=heading_tolerance)
        distance = math.hypot(goal.x - here.x, goal.y - here.y) if here is not None else 0.0
        speed = min(cfg.nominal_speed, max_speed) if max_speed and max_speed > 0 else cfg.nominal_speed
        deadline = now + cfg.deadline_margin + cfg.deadline_factor * distance / speed
        return _GoalWatch(goal, cfg, deadline=deadline, last_progress=now, last_sent=now)

    async def _follow(self, watch: _GoalWatch, stream: ReadoutStream, goal_msg: PoseStamped) -> DriverResult:
        """Judge each readout (or the latest one every ``check_period``) until there is a verdict."""
        readout = self._latest
        while True:
            now = self._clock.monotonic()
            verdict = watch.verdict(readout, now)
            if verdict is not None:
                return verdict
            if watch.should_resend(now):
                self._publishers["goal"].publish(goal_msg)
                watch.last_sent = now
            readout = await self._next_readout(stream)

    async def _next_readout(self, stream: ReadoutStream) -> Readout:
        """The next readout from ``stream``, or the latest one after ``check_period`` of silence."""
        getter = asyncio.ensure_future(stream.get())
        ticker = asyncio.ensure_future(self._clock.sleep(self._config.check_period))
        try:
            await asyncio.wait((getter, ticker), return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (getter, ticker):
                task.cancel()
            await asyncio.gather(getter, ticker, return_exceptions=True)
        if getter.done() and not getter.cancelled():
            return getter.result()
        return self._latest

    async def _wait_for_subscriber(self, name: str) -> bool:
        """Wait until someone subscribes to our ``name`` topic; False after ``stall_timeout``."""
        publisher = self._publisher(name)
        give_up = self._clock.monotonic() + self._config.stall_timeout
        while publisher.get_subscription_count() == 0:
            if self._clock.monotonic() >= give_up:
                return False
            await self._clock.sleep(self._config.check_period)
        return True

    def _goal_message(self, goal: Pose) -> PoseStamped:
        """``goal`` as a ``PoseStamped`` in its map's frame (else the odometry's, else the default)."""
        here = self._latest.pose
        msg = PoseStamped()
        msg.header.frame_id = goal.map_id or (here.map_id if here else "") or self._config.default_map_id
        msg.header.stamp = self._host.node.get_clock().now().to_msg()
        msg.pose.position.x = float(goal.x)
        msg.pose.position.y = float(goal.y)
        msg.pose.orientation = yaw_to_quaternion(goal.theta)
        return msg

    def _publish_stop(self) -> None:
        """Stop: a goal where the robot is (preempts any goal) and a zero ``Twist``."""
        here = self._latest.pose
        if here is not None and "goal" in self._publishers:
            self._publishers["goal"].publish(self._goal_message(here))
        if "cmd_vel" in self._publishers:
            self._publishers["cmd_vel"].publish(Twist())

    def _publisher(self, name: str) -> Publisher:
        publisher = self._publishers.get(name)
        if publisher is None:
            raise RosLinkError(f"RosDriver: not started (no {name} publisher); call start() first")
        return publisher

    # --- actions ---------------------------------------------------------------------------------------

    async def _init_position(self, parameters: Mapping[str, Any]) -> DriverResult:
        """VDA 5050 ``initPosition`` → ``initialpose``; IMPOSSIBLE for bad parameters, RETRY if unheard."""
        msg = _initial_pose_message(parameters, self._latest.pose, self._config.default_map_id)
        if msg is None:
            return DriverResult.IMPOSSIBLE
        if not await self._wait_for_subscriber("initial_pose"):
            return DriverResult.RETRY
        msg.header.stamp = self._host.node.get_clock().now().to_msg()
        self._publishers["initial_pose"].publish(msg)
        return DriverResult.SUCCESS

    async def _lift_drive(
        self, action_type: str, parameters: Mapping[str, Any]
    ) -> DriverResult | ActionOutcome:
        """``enterLift``/``exitLift``: drive to the pose they carry (module doc, "Lift rides")."""
        where = LIFT_DESTINATIONS[action_type]
        try:
            goal = _lift_goal(parameters)
        except ValueError as exc:
            return ActionOutcome(DriverResult.IMPOSSIBLE, f"{action_type}: {exc}")
        if goal is None:
            return ActionOutcome(
                DriverResult.IMPOSSIBLE,
                f"{action_type}: this robot needs the pose of {where} (x, y, theta, mapId): "
                "it has no lift integration of its own",
            )
        if not await self._reach_map(goal.map_id):
            here = self._latest.pose.map_id if self._latest.pose is not None else ""
            return ActionOutcome(
                DriverResult.IMPOSSIBLE,
                f"{action_type}: {where} is on map {goal.map_id!r}, the robot on {here!r}",
            )
        result = await self.navigate(goal, heading_tolerance=self._config.lift_heading_tolerance)
        if result is DriverResult.SUCCESS:
            return result
        return ActionOutcome(result, f"{action_type}: the drive to {where} ended {result.value}")

    async def _reach_map(self, map_id: str) -> bool:
        """Whether the odometry is on ``map_id`` (or on no known map), waiting up to ``stall_timeout``
        for it: right after ``initPosition`` the base has not reported its new map yet."""
        stream = self._feed.subscribe()
        give_up = self._clock.monotonic() + self._config.stall_timeout
        try:
            while not _on_map(self._latest.pose, map_id):
                if self._clock.monotonic() >= give_up:
                    return False
                await self._next_readout(stream)
        finally:
            stream.close()
        return True


@dataclass(slots=True)
class _GoalWatch:
    """Judges one drive from readouts: reached, stalled, over its deadline, e-stopped or faulted."""

    goal: Pose
    config: RosDriverConfig
    deadline: float
    last_progress: float
    last_sent: float
    best: float = math.inf
    moved: bool = False

    def verdict(self, readout: Readout, now: float) -> DriverResult | None:
        """The drive's result if it is decided by ``readout`` at monotonic time ``now``, else None."""
        if readout.faults:
            return DriverResult.IMPOSSIBLE
        if readout.e_stop:
            return DriverResult.RETRY
        if readout.pose is not None:
            if self._reached(readout.pose):
                return DriverResult.SUCCESS
            self._note_distance(readout.pose, now)
        if readout.driving:
            self.moved = True
            self.last_progress = now
        if now - self.last_progress > self.config.stall_timeout or now > self.deadline:
            return DriverResult.RETRY
        return None

    def should_resend(self, now: float) -> bool:
        """Whether to publish the goal again: the robot has not moved yet and a period has passed."""
        return not self.moved and now - self.last_sent >= self.config.goal_resend_period

    def _reached(self, pose: Pose) -> bool:
        cfg = self.config
        if math.hypot(self.goal.x - pose.x, self.goal.y - pose.y) > cfg.position_tolerance:
            return False
        tolerance = cfg.heading_tolerance
        return tolerance is None or abs(angle_difference(self.goal.theta, pose.theta)) <= tolerance

    def _note_distance(self, pose: Pose, now: float) -> None:
        distance = math.hypot(self.goal.x - pose.x, self.goal.y - pose.y)
        if distance < self.best - self.config.progress_step:
            self.best = distance
            self.last_progress = now


def _lift_goal(parameters: Mapping[str, Any]) -> Pose | None:
    """The pose a lift action carries (``x``, ``y``, ``theta``, optional ``mapId``; module doc), None
    when it carries none; ``ValueError`` with why for a partial or unusable one."""
    given = [key for key in ("x", "y", "theta") if parameters.get(key) is not None]
    if not given:
        return None
    if len(given) < 3:
        raise ValueError(f"a pose needs x, y and theta together, got only {', '.join(given)}")
    values = [parameters[key] for key in ("x", "y", "theta")]
    if any(isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v) for v in values):
        raise ValueError(f"x, y and theta must be finite numbers, got {values}")
    map_id = parameters.get("mapId")
    if map_id is not None and not isinstance(map_id, str):
        raise ValueError(f"mapId must be a string, got {map_id!r}")
    x, y, theta = (float(v) for v in values)
    return Pose(x, y, theta, map_id or "")


def _on_map(here: Pose | None, map_id: str) -> bool:
    """Whether a goal on ``map_id`` ("": any) may be driven from ``here`` (as ``navigate`` judges it)."""
    return not map_id or here is None or not here.map_id or here.map_id == map_id


def _localization(status: DiagnosticStatus) -> tuple[float, bool] | None:
    """(score, localized) from a ``localization`` status's key-values; None when they are unusable."""
    values = {kv.key: kv.value for kv in status.values}
    try:
        score = float(values["localization_score"])
    except (KeyError, ValueError):
        return None
    if not math.isfinite(score):
        return None
    return min(1.0, max(0.0, score)), values.get("localized", "true").lower() == "true"


def _score(s: _Sensed) -> float:
    """The localization node's score when it reports one; else 1 with a pose, 0 without."""
    if s.pose is None:
        return 0.0
    return s.localization[0] if s.localization is not None else 1.0


def _level(level: bytes | int) -> int:
    """A ``DiagnosticStatus.level`` (a one-byte ``bytes`` in rclpy) as an int."""
    return level[0] if isinstance(level, bytes) else int(level)


def _safety(
    diagnostics: Mapping[str, tuple[int, str]], e_stop_names: tuple[str, ...], field_names: tuple[str, ...]
) -> tuple[bool, bool, tuple[str, ...]]:
    """(e_stop, field_violation, faults) from the diagnostic statuses seen, by name and level."""
    error, warn = _level(DiagnosticStatus.ERROR), _level(DiagnosticStatus.WARN)
    e_stop = field_violation = False
    faults: list[str] = []
    for name, (level, message) in diagnostics.items():
        kind = name.rsplit("/", 1)[-1].strip().lower()
        if kind in e_stop_names:
            e_stop = e_stop or level == error
        elif kind in field_names:
            field_violation = field_violation or level in (warn, error)
        elif level == error:
            faults.append(f"{name}: {message}" if message else name)
    return e_stop, field_violation, tuple(faults)


def _initial_pose_message(
    parameters: Mapping[str, Any], here: Pose | None, default_map_id: str
) -> PoseWithCovarianceStamped | None:
    """The ``initialpose`` message for VDA 5050 ``initPosition`` parameters, or None if they are bad."""
    try:
        x, y = float(parameters["x"]), float(parameters["y"])
        theta = float(parameters.get("theta", here.theta if here else 0.0))
    except (KeyError, TypeError, ValueError):
        return None
    if not all(math.isfinite(v) for v in (x, y, theta)):
        return None
    msg = PoseWithCovarianceStamped()
    msg.header.frame_id = str(parameters.get("mapId") or (here.map_id if here else "") or default_map_id)
    msg.pose.pose.position.x = x
    msg.pose.pose.position.y = y
    msg.pose.pose.orientation = yaw_to_quaternion(theta)
    covariance = [0.0] * 36
    for i, variance in enumerate(_INITIAL_POSE_COVARIANCE):
        covariance[i * 7] = variance
    msg.pose.covariance = covariance
    return msg
