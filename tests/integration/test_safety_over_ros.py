"""Safety over the real links (issue 9 acceptance): instant actions and teleop on real Mosquitto, the
agent's velocity commands on real rclpy ``cmd_vel``, the simulated ROS 2 base moving by them; the
on-site reset key as the driver's ``std_srvs/Trigger`` service, with the simulated sensors
(``sim.safety_feed``) feeding all five layers from the ROS base's odometry."""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from agent_samples import MANUFACTURER, SERIAL, act, instant
from diagnostic_msgs.msg import DiagnosticArray
from geometry_msgs.msg import Twist
from rclpy.node import Node
from ros_fixtures import RosEnv
from std_srvs.srv import Trigger

from interfaces.clock import RealClock
from interfaces.mqtt import MqttClient, MqttConfig
from interfaces.vda5050 import (
    ActionStatus,
    BlockingType,
    EStop,
    HeaderFactory,
    OperatingMode,
    State,
    Topic,
    TopicKind,
    parse,
    to_bytes,
)
from robots.agent.agent import Agent, make_mqtt_client
from robots.agent.config import parse_config
from robots.agent.ros_driver import RosDriver, RosDriverConfig
from robots.rosutil import RosNodeHost, to_loop
from robots.safety import LAYERS, Source
from sim.mosquitto import MosquittoBroker
from sim.ros_base import BaseConfig, SimulatedBase
from sim.safety_feed import SimSafetyFeed

pytestmark = pytest.mark.integration

WAIT = 20.0
PERIOD = 0.05
DEAD_MAN = 0.3
TRANSPORT = 0.1
"""Allowance for the two transports (MQTT in, DDS out) and scheduling on a loaded test machine."""


@dataclass
class Seen:
    """Messages received, with their arrival time (``time.monotonic()``), and a wake-up on each."""

    items: list[tuple[float, Any]] = field(default_factory=list)
    arrived: asyncio.Event = field(default_factory=asyncio.Event)

    def add(self, item: Any) -> None:
        self.items.append((time.monotonic(), item))
        self.arrived.set()
        self.arrived = asyncio.Event()

    async def first(self, predicate: Callable[[Any], bool], start: int = 0) -> tuple[float, Any]:
        async def scan() -> tuple[float, Any]:
            i = start
            while True:
                while i < len(self.items):
                    if predicate(self.items[i][1]):
                        return self.items[i]
                    i += 1
                await self.arrived.wait()

        return await asyncio.wait_for(scan(), WAIT)


@dataclass
class Rig:
    console: MqttClient
    headers: HeaderFactory
    agent: Agent
    base: SimulatedBase
    cmd_vel: Seen
    diagnostics: Seen
    states: Seen
    node: Node
    feed: SimSafetyFeed | None = None
    seq: int = 0

    def topic(self, kind: TopicKind) -> str:
        return str(Topic(manufacturer=MANUFACTURER, serial_number=SERIAL, kind=kind))

    async def action(self, action_id: str, action_type: str, **params: Any) -> State:
        """Send one instant action; the first state in which it has ended."""
        start = len(self.states.items)
        message = instant(self.headers, act(action_id, action_type, BlockingType.NONE, **params))
        await self.console.publish(self.topic(TopicKind.INSTANT_ACTIONS), to_bytes(message), qos=1)
        _, state = await self.states.first(lambda s: _ended(s, action_id), start)
        return state  # type: ignore[no-any-return]

    async def teleop(self, vx: float) -> float:
        """One teleop command; the time it was sent."""
        self.seq += 1
        payload = {"seq": self.seq, "vx": vx, "omega": 0.0, "sentAt": time.time(), "operator": "alice"}
        sent = time.monotonic()
        await self.console.publish(self.topic(TopicKind.TELEOP), json.dumps(payload).encode(), qos=0)
        return sent

    async def reset_key(self) -> Trigger.Response:
        """Turn the reset key: call the robot's ``safety/acknowledge`` service; its answer."""
        client = self.node.create_client(Trigger, "safety/acknowledge")
        try:
            assert await asyncio.to_thread(client.wait_for_service, timeout_sec=WAIT)
            loop = asyncio.get_running_loop()
            answer: asyncio.Future[Trigger.Response] = loop.create_future()
            call = client.call_async(Trigger.Request())
            call.add_done_callback(lambda done: loop.call_soon_threadsafe(answer.set_result, done.result()))
            return await asyncio.wait_for(answer, WAIT)
        finally:
            self.node.destroy_client(client)


def _ended(state: State, action_id: str) -> bool:
    return any(
        a.action_id == action_id and a.action_status in (ActionStatus.FINISHED, ActionStatus.FAILED)
        for a in state.action_states
    )


def _status(state: State, action_id: str) -> tuple[ActionStatus, str]:
    found = next(a for a in state.action_states if a.action_id == action_id)
    return found.action_status, found.result_description or ""


def _zero(msg: Twist) -> bool:
    return msg.linear.x == 0.0 and msg.angular.z == 0.0


@contextlib.asynccontextmanager
async def _rig(
    mqtt_broker: MosquittoBroker, ros_env: RosEnv, safety: dict[str, Any] | None = None
) -> AsyncIterator[Rig]:
    """The simulated ROS base, the agent on a RosDriver, a console MQTT client and a ROS listener;
    with ``safety`` (the robot file's section) all five layers external and fed by simulated sensors."""
    loop = asyncio.get_running_loop()
    clock = RealClock()
    base = SimulatedBase(BaseConfig(namespace=ros_env.namespace, speed=1.0, odometry_rate=50.0))
    base.start()
    listener = RosNodeHost("safety_listener", namespace=ros_env.namespace)
    node = listener.start()
    cmd_vel, diagnostics, states = Seen(), Seen(), Seen()
    node.create_subscription(Twist, "cmd_vel", to_loop(loop, cmd_vel.add), 10)
    node.create_subscription(DiagnosticArray, "safety/diagnostics", to_loop(loop, diagnostics.add), 10)
    driver = RosDriver(RosDriverConfig(namespace=ros_env.namespace), clock=clock)
    config = parse_config(
        {
            "manufacturer": MANUFACTURER,
            "serial_number": SERIAL,
            "mqtt": {"host": mqtt_broker.host, "port": mqtt_broker.port},
            "driver": {"type": "ros", "namespace": ros_env.namespace},
        }
        | ({"safety": safety} if safety is not None else {})
    )
    console = MqttClient(MqttConfig(host=mqtt_broker.host, port=mqtt_broker.port))
    await console.connect()
    sub = console.subscribe(str(Topic(manufacturer=MANUFACTURER, serial_number=SERIAL, kind=TopicKind.STATE)))
    await sub.wait_granted()

    async def watch() -> None:
        async for message in sub:
            states.add(parse(TopicKind.STATE, message.payload))

    watcher = asyncio.create_task(watch())
    agent = Agent(config, driver, make_mqtt_client(config, clock), clock)
    feed = SimSafetyFeed(agent.safety, seed=1) if safety is not None else None
    if feed is not None:
        agent.add_companion(feed)
    await agent.start()
    stream = driver.readouts()
    try:
        while driver.readout().pose is None:  # the base's first odometry: discovery is done
            await asyncio.wait_for(stream.get(), WAIT)
    finally:
        stream.close()
    rig = Rig(
        console,
        HeaderFactory(MANUFACTURER, SERIAL, clock=clock),
        agent,
        base,
        cmd_vel,
        diagnostics,
        states,
        node,
        feed,
    )
    await states.first(lambda s: True)
    try:
        yield rig
    finally:
        await agent.stop()
        watcher.cancel()
        await asyncio.gather(watcher, return_exceptions=True)
        await console.disconnect()
        listener.close()
        base.close()


@pytest.fixture
async def rig(mqtt_broker: MosquittoBroker, ros_env: RosEnv) -> AsyncIterator[Rig]:
    """The robot with its default safety layers (e-stop and lidar from the base's diagnostics)."""
    async with _rig(mqtt_broker, ros_env) as made:
        yield made


@pytest.fixture
async def sensed(mqtt_broker: MosquittoBroker, ros_env: RosEnv) -> AsyncIterator[Rig]:
    """The robot with all five layers fed by simulated sensors (``sim.safety_feed``) at its odometry pose."""
    layers = [layer.value for layer in LAYERS]
    async with _rig(mqtt_broker, ros_env, {"readout": [], "external": layers}) as made:
        yield made


async def _semiautomatic(rig: Rig) -> None:
    """Hand the robot over to remote driving by alice."""
    state = await rig.action(
        "m1", "setOperatingMode", mode="SEMIAUTOMATIC", operator="alice", role="operator"
    )
    assert _status(state, "m1")[0] is ActionStatus.FINISHED
    state = await rig.action("m2", "confirmOperatingMode", operator="alice", role="operator")
    assert _status(state, "m2")[0] is ActionStatus.FINISHED
    assert state.operating_mode is OperatingMode.SEMIAUTOMATIC


async def _drive(rig: Rig) -> None:
    """Teleop at 0.5 m/s until the base moves (one command per control period)."""
    while rig.base.velocity[0] < 0.2:
        await rig.teleop(0.5)
        await asyncio.wait_for(rig.cmd_vel.arrived.wait(), WAIT)


async def test_safety_stop_publishes_zero_cmd_vel_and_remote_e_stop(rig: Rig) -> None:
    """A console stop (safetyStop on MQTT): the robot publishes zero ``cmd_vel``, its state says
    ``safetyState.eStop`` REMOTE with the action FINISHED, and its diagnostics report the stop."""
    start = len(rig.cmd_vel.items)
    state = await rig.action("s1", "safetyStop", kind="operator", operator="bob", role="operator")
    assert _status(state, "s1")[0] is ActionStatus.FINISHED
    assert state.safety_state.e_stop is EStop.REMOTE
    assert "operatorStop" in {e.error_type for e in state.errors}
    await rig.cmd_vel.first(_zero, start)
    _, array = await rig.diagnostics.first(
        lambda a: any(s.name == "safety/supervisor" and "EMERGENCY_STOP" in s.message for s in a.status)
    )
    assert array.status


async def test_teleop_cut_gives_zero_within_dead_man_and_a_period(rig: Rig) -> None:
    """Remote driving moves the base; once the stream is cut, a zero ``cmd_vel`` follows within 300 ms
    plus one control period (plus the transports' allowance)."""
    await _semiautomatic(rig)
    await _drive(rig)
    last = await rig.teleop(0.5)
    _, moving = await rig.cmd_vel.first(lambda m: m.linear.x > 0.0)
    start = len(rig.cmd_vel.items)
    at, _ = await rig.cmd_vel.first(_zero, start)
    assert at - last <= DEAD_MAN + PERIOD + TRANSPORT
    assert moving.linear.x == pytest.approx(0.5)


async def test_mode_switch_while_moving_is_refused(rig: Rig) -> None:
    """While the base moves under teleop, a switch back to AUTOMATIC FAILS (moving); the mode stays."""
    await _semiautomatic(rig)
    await _drive(rig)
    sender = asyncio.create_task(_keep_driving(rig))
    try:
        state = await rig.action(
            "m3", "setOperatingMode", mode="AUTOMATIC", operator="alice", role="operator"
        )
    finally:
        sender.cancel()
        await asyncio.gather(sender, return_exceptions=True)
    status, reason = _status(state, "m3")
    assert status is ActionStatus.FAILED and "mov" in reason
    assert state.operating_mode is OperatingMode.SEMIAUTOMATIC


async def _keep_driving(rig: Rig) -> None:
    while True:
        await rig.teleop(0.5)
        await asyncio.wait_for(rig.cmd_vel.arrived.wait(), WAIT)


def _bumper_free(array: DiagnosticArray) -> bool:
    return any(
        s.name == "safety/bumper" and any(kv.key == "state" and kv.value == "free" for kv in s.values)
        for s in array.status
    )


async def test_reset_key_service_clears_a_bumper_latch_and_refuses_otherwise(sensed: Rig) -> None:
    """The ``safety/acknowledge`` Trigger service is the on-site reset key: with nothing latched it
    answers false; a simulated bumper hit latches eStop REMOTE and the key is refused while the strips
    still touch; released, the key clears it (state eStop NONE); a console stop is never cleared on
    site."""
    rig, feed = sensed, sensed.feed
    assert feed is not None
    await rig.states.first(lambda s: s.safety_state.e_stop is EStop.NONE and not s.errors)
    answer = await rig.reset_key()
    assert (answer.success, answer.message) == (False, "nothing to clear")

    start = len(rig.states.items)
    feed.bumper_hit(math.inf)
    _, state = await rig.states.first(lambda s: s.safety_state.e_stop is EStop.REMOTE, start)
    assert "bumperContact" in {e.error_type for e in state.errors}
    answer = await rig.reset_key()
    assert answer.success is False and "still in contact" in answer.message

    start = len(rig.diagnostics.items)
    feed.release_bumper()
    await rig.diagnostics.first(_bumper_free, start)
    start = len(rig.states.items)
    answer = await rig.reset_key()
    assert (answer.success, answer.message) == (True, "all latches cleared")
    _, state = await rig.states.first(lambda s: s.safety_state.e_stop is EStop.NONE, start)
    assert "bumperContact" not in {e.error_type for e in state.errors}

    state = await rig.action("s1", "safetyStop", kind="operator", operator="bob", role="operator")
    assert state.safety_state.e_stop is EStop.REMOTE
    answer = await rig.reset_key()
    assert (answer.success, answer.message) == (False, "nothing to clear")
    assert rig.agent.safety.last is not None and rig.agent.safety.last.decision.latches


async def _base_cap(rig: Rig, predicate: Callable[[float], bool]) -> float:
    """The base's speed cap once ``predicate`` holds, checked at each safety diagnostics message."""
    while True:
        start = len(rig.diagnostics.items)
        if predicate(rig.base.speed_limit):
            return rig.base.speed_limit
        await rig.diagnostics.first(lambda _a: True, start)


async def test_slow_caps_navigation_on_the_speed_limit_topic(sensed: Rig) -> None:
    """A silent lidar makes the supervisor SLOW: the cap reaches the ROS base on ``speed_limit``
    (std_msgs/Float64, transient local), so goal drives slow down instead of tripping the overspeed
    monitor; once the lidar speaks again the cap is back at the supervisor's top speed."""
    feed = sensed.feed
    assert feed is not None
    config = sensed.agent.safety.settings.supervisor
    assert await _base_cap(sensed, lambda cap: cap == config.max_speed) == config.max_speed
    feed.stuck(Source.LIDAR)
    assert await _base_cap(sensed, lambda cap: cap == config.slow_speed) == config.slow_speed
    feed.heal(Source.LIDAR)
    assert await _base_cap(sensed, lambda cap: cap == config.max_speed) == config.max_speed
