"""The whole fleet loop: orchestrator → MQTT → agent → ROS 2 → simulated base → ROS 2 → agent → MQTT →
orchestrator, with real Mosquitto and real rclpy (issue 3 acceptance)."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

import pytest
from fake_robot import line_site, next_event, one_robot_fleet
from ros_fixtures import RosEnv

from interfaces.clock import RealClock
from interfaces.mqtt import MqttClient, MqttConfig
from interfaces.vda5050 import Drop, Pick, make_action
from orchestrator.fleet import (
    FleetMaster,
    FleetOptions,
    Leg,
    Link,
    LinkChanged,
    NodePassed,
    OrderStatus,
)
from robots.agent.agent import Agent, make_mqtt_client
from robots.agent.config import parse_config
from robots.agent.driver import DriverResult, Pose
from robots.agent.ros_driver import RosDriver, RosDriverConfig
from sim.mosquitto import MosquittoBroker
from sim.ros_base import BaseConfig, SimulatedBase

pytestmark = pytest.mark.integration

WAIT = 30.0
PATH = ("n0", "n1", "n2", "n3", "n4")


class Locker:
    """The robot's load handling as the ROS driver's action handlers: records every action it runs."""

    def __init__(self) -> None:
        self.done: list[tuple[str, str]] = []

    def handler(self, kind: str):  # type: ignore[no-untyped-def]
        async def run(params: Mapping[str, Any]) -> DriverResult:
            self.done.append((kind, str(params.get("loadId", ""))))
            return DriverResult.SUCCESS

        return run


async def test_order_with_five_nodes_and_two_actions_runs_through_the_ros_base(
    mqtt_broker: MosquittoBroker, ros_env: RosEnv
) -> None:
    """The orchestrator's order (5 nodes, pick at n1, drop at n3) is driven by the simulated ROS 2 base:
    the orchestrator sees every node passed in order and the order FINISHED; each action ran once and
    the base stands at the last node."""
    clock = RealClock()
    fleet = one_robot_fleet("ros1", "indoor")
    mqtt = MqttClient(MqttConfig(host=mqtt_broker.host, port=mqtt_broker.port))
    await mqtt.connect()
    master = FleetMaster(
        fleet, mqtt, line_site(5, 2.0), clock=clock, options=FleetOptions(), owns_client=True
    )
    await master.start()
    base = SimulatedBase(
        BaseConfig(
            namespace=ros_env.namespace, map_id="outdoor", speed=8.0, turn_rate=20.0, odometry_rate=50.0
        )
    )
    base.start()
    locker = Locker()
    driver = RosDriver(
        RosDriverConfig(namespace=ros_env.namespace, default_map_id="outdoor", nominal_speed=8.0),
        clock=clock,
        actions={"pick": locker.handler("pick"), "drop": locker.handler("drop")},
    )
    config = parse_config(
        {
            "manufacturer": "acme",
            "serial_number": "ros1",
            "map_id": "outdoor",
            "mqtt": {"host": mqtt_broker.host, "port": mqtt_broker.port},
            "driver": {"type": "ros", "namespace": ros_env.namespace},
        }
    )
    agent = Agent(config, driver, make_mqtt_client(config, clock), clock)
    pick, drop = make_action(Pick(load_id="parcel-7")), make_action(Drop(load_id="parcel-7"))
    try:
        with master.subscribe() as events:
            await agent.start()
            await next_event(events, LinkChanged, robot="ros1", link=Link.ONLINE)
            stream = driver.readouts()
            while driver.readout().pose is None:  # the base's first odometry: discovery is done
                await asyncio.wait_for(stream.get(), WAIT)
            handle = await master.send_order(Leg("ros1", PATH, actions={1: [pick], 3: [drop]}))
            await asyncio.wait_for(handle.confirmed, WAIT)
            ended = await asyncio.wait_for(handle.finished, WAIT)
            passed = []
            while events.pending():
                event = events.get_nowait()
                if isinstance(event, NodePassed):
                    passed.append(event.node_id)
    finally:
        await agent.stop()
        await master.stop()
        base.close()
    assert ended.status is OrderStatus.FINISHED and ended.failed_actions == ()
    assert passed == list(PATH) == handle.passed
    assert locker.done == [("pick", "parcel-7"), ("drop", "parcel-7")]
    end: Pose = base.pose
    assert abs(end.x - 8.0) < 0.2 and abs(end.y) < 0.2
