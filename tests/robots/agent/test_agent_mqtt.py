"""The robot agent over a real Mosquitto: orders in, state out (official schema), resync, garbage, will."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from agent_samples import MANUFACTURER, MAP, SERIAL, act, instant, line_order
from vda5050_samples import OfficialSchemas

from interfaces.clock import RealClock, VirtualClock
from interfaces.mqtt import MqttClient, MqttConfig
from interfaces.vda5050 import (
    ActionStatus,
    BlockingType,
    Connection,
    ConnectionState,
    ErrorType,
    HeaderFactory,
    State,
    Topic,
    TopicKind,
    parse,
    parse_as,
    to_bytes,
)
from robots.agent.agent import Agent, make_mqtt_client
from robots.agent.config import AgentConfig, parse_config
from robots.agent.driver import Pose
from robots.agent.sim_driver import SimDriver, SimDriverConfig
from sim.mosquitto import MosquittoBroker

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[3]
WAIT = 10.0
"""Seconds a test waits for a message before it fails (each normally comes within a second)."""

KEEPALIVE = 2
DURATIONS = {"pick": 0.3, "drop": 0.3, "openCompartment": 0.1}


def robot_config(broker: MosquittoBroker, **extra: Any) -> AgentConfig:
    """Robot acme/r1 on map ``m`` talking to ``broker``; fast simulated kinematics."""
    data: dict[str, Any] = {
        "manufacturer": MANUFACTURER,
        "serial_number": SERIAL,
        "map_id": MAP,
        "mqtt": {"host": broker.host, "port": broker.port, "keepalive": KEEPALIVE},
        "visualization_period": 0.2,
        "execution": {"retry_delay": 0.1},
        "driver": {"type": "sim", "speed": 10.0, "turn_rate": 50.0, "step": 0.02},
    }
    return parse_config(data | extra)


class Master:
    """Master control's end of the link: watches every robot topic, validates what the robot sends."""

    def __init__(self, mqtt: MqttClient, schemas: OfficialSchemas) -> None:
        self.mqtt = mqtt
        self.schemas = schemas
        self.headers = HeaderFactory(MANUFACTURER, SERIAL, clock=RealClock())
        self.messages: defaultdict[TopicKind, list[Any]] = defaultdict(list)
        self.invalid: list[str] = []
        self._arrived = asyncio.Event()
        self.subscription = mqtt.subscribe(f"robopost/v2/{MANUFACTURER}/{SERIAL}/+")
        self._task = asyncio.create_task(self._watch(self.subscription))

    def topic(self, kind: TopicKind) -> str:
        return str(Topic(manufacturer=MANUFACTURER, serial_number=SERIAL, kind=kind))

    async def _watch(self, sub: Any) -> None:
        async for message in sub:
            kind = TopicKind(message.topic.rsplit("/", 1)[1])
            if kind in (TopicKind.ORDER, TopicKind.INSTANT_ACTIONS, TopicKind.TELEOP):
                continue
            document = message.json()
            self.invalid.extend(f"{kind}: {e}" for e in self.schemas.errors(kind, document))
            self.messages[kind].append(parse(kind, message.payload))
            self._arrived.set()
            self._arrived = asyncio.Event()

    async def wait_for(self, kind: TopicKind, predicate: Callable[[Any], bool], start: int = 0) -> Any:
        """The first message of ``kind`` (from index ``start``) that satisfies ``predicate``."""

        async def scan() -> Any:
            i = start
            while True:
                while i < len(self.messages[kind]):
                    if predicate(self.messages[kind][i]):
                        return self.messages[kind][i]
                    i += 1
                await self._arrived.wait()

        return await asyncio.wait_for(scan(), WAIT)

    async def state(self, predicate: Callable[[State], bool], start: int = 0) -> State:
        state: State = await self.wait_for(TopicKind.STATE, predicate, start)
        return state

    async def connection(self, value: ConnectionState, start: int = 0) -> Connection:
        message: Connection = await self.wait_for(
            TopicKind.CONNECTION, lambda c: c.connection_state is value, start
        )
        return message

    async def send(self, kind: TopicKind, payload: bytes | Any) -> None:
        data = payload if isinstance(payload, bytes) else to_bytes(payload)
        await self.mqtt.publish(self.topic(kind), data, qos=1, wait=True)

    async def close(self) -> None:
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)
        await self.mqtt.disconnect()


@pytest.fixture
async def master(mqtt_broker: MosquittoBroker, shared_data: Path) -> AsyncIterator[Master]:
    """Master control connected to the test's broker; fails the test if the robot sent anything invalid."""
    client = MqttClient(MqttConfig(host=mqtt_broker.host, port=mqtt_broker.port, keepalive=KEEPALIVE))
    await client.connect()
    master = Master(client, OfficialSchemas(shared_data))
    await master.subscription.wait_granted()  # nothing the robot sends from now on is missed
    yield master
    await master.close()
    assert master.invalid == []


def sim_driver(clock: RealClock) -> SimDriver:
    config = SimDriverConfig(speed=10.0, turn_rate=50.0, step=0.02, action_durations=DURATIONS)
    return SimDriver(clock, config, start=Pose(0.0, 0.0, 0.0, MAP))


@pytest.fixture
async def robot(mqtt_broker: MosquittoBroker, master: Master) -> AsyncIterator[tuple[Agent, SimDriver]]:
    """A running agent for acme/r1 with a SimDriver in real time; stopped at the end.

    Ready once master control has seen it ONLINE: the robot subscribes before it says so, and the
    broker handles one client's packets in order, so orders sent from then on reach it.
    """
    clock = RealClock()
    config = robot_config(mqtt_broker)
    driver = sim_driver(clock)
    agent = Agent(config, driver, make_mqtt_client(config, clock), clock)
    await agent.start()
    await master.connection(ConnectionState.ONLINE)
    yield agent, driver
    await agent.stop()


def _finished(order_id: str, update: int = 0) -> Callable[[State], bool]:
    """A state saying the order is done: no nodes left, every action over."""
    return lambda s: (
        s.order_id == order_id
        and s.order_update_id == update
        and not s.node_states
        and all(a.action_status in (ActionStatus.FINISHED, ActionStatus.FAILED) for a in s.action_states)
        and not s.driving
    )


async def test_order_in_state_out(master: Master, robot: tuple[Agent, SimDriver]) -> None:
    """ONLINE, factsheet and state on connect; an order runs node by node to its end; visualization
    flows; everything the robot sends validates against the official 2.1 schemas."""
    _, driver = robot
    await master.connection(ConnectionState.ONLINE)
    await master.wait_for(TopicKind.FACTSHEET, lambda f: f.serial_number == SERIAL)
    await master.state(lambda s: s.order_id == "")
    order = line_order(master.headers, last=2, node_actions={1: [act("p1", "pick", BlockingType.HARD)]})
    await master.send(TopicKind.ORDER, order)
    accepted = await master.state(lambda s: s.order_id == "o-1")
    assert [n.node_id for n in accepted.node_states] == ["n1", "n2"]
    passed = await master.state(lambda s: s.last_node_id == "n1")
    assert passed.node_states[0].node_id == "n2"
    done = await master.state(_finished("o-1"))
    assert done.last_node_id == "n2" and done.errors == []
    assert [(a.action_id, a.action_status) for a in done.action_states] == [("p1", ActionStatus.FINISHED)]
    await master.wait_for(TopicKind.VISUALIZATION, lambda v: v.agv_position is not None)
    assert [a.action_type for a in driver.action_log] == ["pick"]


async def test_identical_resend_is_ignored(master: Master, robot: tuple[Agent, SimDriver]) -> None:
    """The same order sent three times runs once: no error, no action twice."""
    _, driver = robot
    order = line_order(master.headers, node_actions={0: [act("p0", "pick", BlockingType.HARD)]})
    for _ in range(3):
        await master.send(TopicKind.ORDER, order)
    done = await master.state(_finished("o-1"))
    seen = len(master.messages[TopicKind.STATE])
    await master.send(TopicKind.ORDER, order)
    again = await master.state(lambda s: s.order_id == "o-1", start=seen)
    assert done.errors == [] and again.errors == [] and not again.node_states
    assert [a.action_type for a in driver.action_log] == ["pick"]


async def test_broker_restart_mid_order(
    mqtt_broker: MosquittoBroker, master: Master, robot: tuple[Agent, SimDriver]
) -> None:
    """The broker restarts mid-order: both sides reconnect, the robot says ONLINE and resyncs its state,
    the order resent by master control is ignored, the order completes and no action runs twice."""
    agent, driver = robot
    picks = {i: [act(f"p{i}", "pick", BlockingType.HARD)] for i in (1, 2, 3)}
    order = line_order(master.headers, last=3, spacing=5.0, node_actions=picks)
    await master.send(TopicKind.ORDER, order)
    await master.state(lambda s: s.last_node_id == "n1")
    connected = agent.mqtt.connections
    seen = len(master.messages[TopicKind.CONNECTION])
    mqtt_broker.restart()
    assert agent.vehicle.busy  # the order is still running while the link is down
    await master.connection(ConnectionState.ONLINE, start=seen)
    assert agent.mqtt.connections == connected + 1
    await master.send(TopicKind.ORDER, order)  # as master control does when a confirmation went missing
    done = await master.state(_finished("o-1"))
    assert done.last_node_id == "n3" and done.errors == []
    assert sorted(a.action_type for a in driver.action_log) == ["pick", "pick", "pick"]
    assert {a.action_id: a.action_status for a in done.action_states} == dict.fromkeys(
        ("p1", "p2", "p3"), ActionStatus.FINISHED
    )


async def test_garbage_is_dropped_and_reported(master: Master, robot: tuple[Agent, SimDriver]) -> None:
    """Not JSON, wrong types, a huge payload, another robot's header: each dropped with a validationError;
    teleop garbage is dropped quietly; the agent carries on and runs the next valid order."""
    agent, _ = robot
    other = HeaderFactory(MANUFACTURER, "r2", clock=RealClock())
    await master.send(TopicKind.ORDER, b"\xff not json")
    await master.send(TopicKind.ORDER, b'{"headerId": "one", "nodes": 5}')
    await master.send(TopicKind.INSTANT_ACTIONS, b'{"actions": [1, 2]}')
    await master.send(TopicKind.ORDER, b"[" * (2 * 1024 * 1024))
    await master.send(TopicKind.ORDER, line_order(other))
    await master.send(TopicKind.INSTANT_ACTIONS, instant(other, act("x", "stateRequest", BlockingType.NONE)))
    await master.send(TopicKind.TELEOP, b"\x00\x01")
    state = await master.state(lambda s: len(s.errors) >= 6)
    assert {e.error_type for e in state.errors} == {ErrorType.VALIDATION_ERROR.value}
    text = " | ".join(e.error_description or "" for e in state.errors)
    for reason in (
        "not JSON",
        "headerId",
        "exceeds the limit",
        "serialNumber 'r2'",
        "instantActions dropped",
    ):
        assert reason in text
    assert agent.link.dropped == 6
    await master.send(TopicKind.ORDER, line_order(master.headers))
    done = await master.state(_finished("o-1"))
    assert done.errors == []


async def test_clean_shutdown_says_offline(mqtt_broker: MosquittoBroker, master: Master) -> None:
    """stop() publishes connection OFFLINE, retained: a later subscriber still reads it."""
    clock = RealClock()
    config = robot_config(mqtt_broker)
    agent = Agent(config, sim_driver(clock), make_mqtt_client(config, clock), clock)
    async with agent:
        await master.connection(ConnectionState.ONLINE)
    await master.connection(ConnectionState.OFFLINE)
    late = MqttClient(MqttConfig(host=mqtt_broker.host, port=mqtt_broker.port))
    await late.connect()
    sub = late.subscribe(master.topic(TopicKind.CONNECTION))
    retained = await asyncio.wait_for(sub.get(), WAIT)
    assert retained.retain and parse_as(Connection, retained.payload).connection_state == "OFFLINE"
    await late.disconnect()


async def test_run_returns_after_stop(mqtt_broker: MosquittoBroker, master: Master) -> None:
    """run() serves until stop() is called elsewhere, then returns."""
    clock = RealClock()
    config = robot_config(mqtt_broker)
    agent = Agent(config, sim_driver(clock), make_mqtt_client(config, clock), clock)
    running = asyncio.create_task(agent.run())
    await master.connection(ConnectionState.ONLINE)
    assert not running.done()
    await agent.stop()
    await asyncio.wait_for(running, WAIT)
    assert agent.stopped


async def test_factsheet_and_state_on_request(master: Master, robot: tuple[Agent, SimDriver]) -> None:
    """factsheetRequest publishes the factsheet again; stateRequest a state; both actions FINISHED."""
    await master.wait_for(TopicKind.FACTSHEET, lambda f: True)
    request = instant(
        master.headers,
        act("f", "factsheetRequest", BlockingType.NONE),
        act("s", "stateRequest", BlockingType.NONE),
    )
    await master.send(TopicKind.INSTANT_ACTIONS, request)
    await master.wait_for(TopicKind.FACTSHEET, lambda f: True, start=1)
    done = await master.state(
        lambda s: (
            {a.action_id: a.action_status for a in s.action_states}
            == {"f": ActionStatus.FINISHED, "s": ActionStatus.FINISHED}
        )
    )
    assert done.errors == []


async def test_state_and_visualization_periods_follow_the_clock(
    mqtt_broker: MosquittoBroker, master: Master
) -> None:
    """With nothing changing a state still goes out every state_period, and visualization every
    visualization_period, in the agent's clock time (a virtual clock here)."""
    clock = VirtualClock(1_700_000_000.0)
    config = robot_config(mqtt_broker, state_period=5.0, visualization_period=1.0)
    driver = SimDriver(clock, SimDriverConfig(), start=Pose(0.0, 0.0, 0.0, MAP))
    agent = Agent(config, driver, make_mqtt_client(config, clock), clock)
    async with agent:
        first = await master.state(lambda s: True)
        start = first.timestamp.timestamp()
        for _ in range(15):
            await clock.run_for(1.0)
        await master.state(lambda s: s.timestamp.timestamp() >= start + 15)
        await master.wait_for(TopicKind.VISUALIZATION, lambda v: v.timestamp.timestamp() >= start + 15)
    states = [s.timestamp.timestamp() - start for s in master.messages[TopicKind.STATE]]
    assert states[:4] == [0.0, 5.0, 10.0, 15.0]
    shown = [v.timestamp.timestamp() - start for v in master.messages[TopicKind.VISUALIZATION]]
    assert shown[:15] == [float(i) for i in range(1, 16)]


def _start_cli(config: AgentConfig, tmp_path: Path) -> subprocess.Popen[bytes]:
    """``robopost agent --config ROBOT.yaml`` as a real process."""
    path = tmp_path / "robot.yaml"
    path.write_text(yaml.safe_dump(config.model_dump(mode="json")), encoding="utf-8")
    env = os.environ | {"PYTHONPATH": str(REPO)}
    command = [sys.executable, "-m", "launch.cli", "agent", "--config", str(path)]
    return subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


async def test_killed_agent_process_leaves_connection_broken(
    mqtt_broker: MosquittoBroker, master: Master, tmp_path: Path
) -> None:
    """SIGKILL the agent process: the broker publishes its last will CONNECTIONBROKEN within
    1.5 × keep-alive."""
    proc = _start_cli(robot_config(mqtt_broker), tmp_path)
    try:
        await master.connection(ConnectionState.ONLINE)
        seen = len(master.messages[TopicKind.CONNECTION])
        killed = time.monotonic()
        proc.send_signal(signal.SIGKILL)
        broken = await master.connection(ConnectionState.CONNECTIONBROKEN, start=seen)
        assert time.monotonic() - killed < 1.5 * KEEPALIVE
        assert broken.serial_number == SERIAL
    finally:
        proc.kill()
        proc.wait()
        if proc.stderr:
            proc.stderr.close()


async def test_sigterm_stops_the_agent_process_cleanly(
    mqtt_broker: MosquittoBroker, master: Master, tmp_path: Path
) -> None:
    """SIGTERM: the agent process says OFFLINE and exits with status 0."""
    proc = _start_cli(robot_config(mqtt_broker), tmp_path)
    try:
        await master.connection(ConnectionState.ONLINE)
        proc.send_signal(signal.SIGTERM)
        await master.connection(ConnectionState.OFFLINE)
        code = await asyncio.to_thread(proc.wait, WAIT)
        stderr = proc.stderr.read().decode() if proc.stderr else ""
        assert code == 0, stderr
    finally:
        proc.kill()
        proc.wait()
        if proc.stderr:
            proc.stderr.close()
