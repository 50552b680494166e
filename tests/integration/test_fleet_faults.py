"""Fleet link faults with the real fleet master and the real agent: a killed agent process, and a
broker restart in the middle of an order (issue 3 acceptance)."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from fake_robot import line_site, next_event, one_robot_fleet

from interfaces.clock import RealClock
from interfaces.mqtt import MqttClient, MqttConfig
from interfaces.vda5050 import Drop, Pick, make_action
from maps.model import Site
from orchestrator.fleet import (
    FleetMaster,
    FleetOptions,
    Leg,
    Link,
    LinkChanged,
    NodePassed,
    OrderStatus,
)
from robots.agent.agent import Agent, make_driver, make_mqtt_client
from robots.agent.config import parse_config
from robots.agent.sim_driver import SimDriver
from sim.mosquitto import MosquittoBroker

pytestmark = pytest.mark.integration

WAIT = 20.0
KEEPALIVE = 2


def agent_settings(broker: MosquittoBroker, speed: float) -> dict[str, Any]:
    return {
        "manufacturer": "acme",
        "serial_number": "r1",
        "map_id": "outdoor",
        "mqtt": {"host": broker.host, "port": broker.port, "keepalive": KEEPALIVE},
        "execution": {"retry_delay": 0.1},
        "driver": {
            "type": "sim",
            "speed": speed,
            "turn_rate": 50.0,
            "step": 0.02,
            "action_durations": {"pick": 0.2, "drop": 0.2},
        },
    }


async def start_master(broker: MosquittoBroker, site: Site) -> FleetMaster:
    fleet = one_robot_fleet()
    mqtt = MqttClient(MqttConfig(host=broker.host, port=broker.port))
    await mqtt.connect()
    master = FleetMaster(
        fleet, mqtt, site, clock=RealClock(), options=FleetOptions(confirm_timeout_s=2.0), owns_client=True
    )
    await master.start()
    return master


async def test_killed_agent_process_is_marked_broken_by_the_orchestrator(
    mqtt_broker: MosquittoBroker, tmp_path: Path
) -> None:
    """SIGKILL the `robopost agent` process: within 1.5 × keep-alive the broker's last will reaches the
    fleet master, which marks the robot CONNECTIONBROKEN (offline)."""
    master = await start_master(mqtt_broker, line_site(2, 1.0))
    config = tmp_path / "robot.yaml"
    config.write_text(yaml.safe_dump(agent_settings(mqtt_broker, 2.0)), encoding="utf-8")
    exe = Path(sys.executable).with_name("robopost")
    proc = subprocess.Popen([str(exe), "agent", "--config", str(config)], stderr=subprocess.DEVNULL)
    try:
        with master.subscribe() as events:
            await next_event(events, LinkChanged, robot="r1", link=Link.ONLINE)
            killed = time.monotonic()
            proc.send_signal(signal.SIGKILL)
            await next_event(events, LinkChanged, robot="r1", link=Link.CONNECTIONBROKEN)
            assert time.monotonic() - killed < 1.5 * KEEPALIVE
        assert master.view("r1").link is Link.CONNECTIONBROKEN
    finally:
        proc.kill()
        proc.wait()
        await master.stop()


async def test_broker_restart_mid_order_completes_without_running_an_action_twice(
    mqtt_broker: MosquittoBroker,
) -> None:
    """The broker restarts while the robot drives: master and agent reconnect by themselves, the order
    completes with every node passed, and the pick and the drop each ran exactly once."""
    path = tuple(f"n{i}" for i in range(6))
    master = await start_master(mqtt_broker, line_site(6, 3.0))
    clock = RealClock()
    config = parse_config(agent_settings(mqtt_broker, 3.0))
    driver = make_driver(config, clock)
    assert isinstance(driver, SimDriver)
    agent = Agent(config, driver, make_mqtt_client(config, clock), clock)
    pick, drop = make_action(Pick(load_id="p-1")), make_action(Drop(load_id="p-1"))
    try:
        with master.subscribe() as events:
            await agent.start()
            await next_event(events, LinkChanged, robot="r1", link=Link.ONLINE)
            handle = await master.send_order(Leg("r1", path, actions={"n1": [pick], "n4": [drop]}))
            await next_event(events, NodePassed, robot="r1", node_id="n2")
            mqtt_broker.restart()
            ended = await asyncio.wait_for(handle.finished, WAIT)
    finally:
        await agent.stop()
        await master.stop()
    assert ended.status is OrderStatus.FINISHED and ended.failed_actions == ()
    assert handle.passed == list(path)
    ran = [(r.action_type, r.result.value) for r in driver.action_log]
    assert ran.count(("pick", "success")) == 1 and ran.count(("drop", "success")) == 1
    assert len([r for r in driver.action_log if r.action_type in ("pick", "drop")]) == 2
