"""The fleet master with the real robot agent (simulated driver) over a real Mosquitto."""

from __future__ import annotations

import asyncio

import pytest
from fake_robot import line_site, next_event, one_robot_fleet

from interfaces.clock import RealClock
from interfaces.mqtt import MqttClient, MqttConfig
from interfaces.vda5050 import Drop, Pick, make_action
from orchestrator.fleet import (
    FactsheetReceived,
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
from sim.mosquitto import MosquittoBroker

pytestmark = pytest.mark.integration

WAIT = 15.0


async def test_order_runs_end_to_end_on_the_agent(mqtt_broker: MosquittoBroker) -> None:
    """An order of 5 nodes and 2 actions goes to the real agent: confirmed by its state, every node
    reported passed in order, the order ends FINISHED; the agent's factsheet is registered."""
    clock = RealClock()
    fleet = one_robot_fleet()
    mqtt = MqttClient(MqttConfig(host=mqtt_broker.host, port=mqtt_broker.port))
    await mqtt.connect()
    master = FleetMaster(fleet, mqtt, line_site(), clock=clock, options=FleetOptions(), owns_client=True)
    await master.start()
    config = parse_config(
        {
            "manufacturer": "acme",
            "serial_number": "r1",
            "map_id": "outdoor",
            "mqtt": {"host": mqtt_broker.host, "port": mqtt_broker.port},
            "execution": {"retry_delay": 0.1},
            "driver": {
                "type": "sim",
                "speed": 10.0,
                "turn_rate": 50.0,
                "step": 0.02,
                "action_durations": {"pick": 0.2, "drop": 0.2},
            },
        }
    )
    agent = Agent(config, make_driver(config, clock), make_mqtt_client(config, clock), clock)
    path = ("n0", "n1", "n2", "n3", "n4")
    pick, drop = make_action(Pick(load_id="p-1")), make_action(Drop(load_id="p-1"))
    try:
        with master.subscribe() as events:
            await agent.start()
            await next_event(events, LinkChanged, robot="r1", link=Link.ONLINE)
            handle = await master.send_order(Leg("r1", path, actions={"n2": [pick], "n4": [drop]}))
            await asyncio.wait_for(handle.confirmed, WAIT)
            ended = await asyncio.wait_for(handle.finished, WAIT)
            seen = []
            while events.pending() or not any(isinstance(e, FactsheetReceived) for e in seen):
                seen.append(await asyncio.wait_for(events.get(), WAIT))
    finally:
        await agent.stop()
        await master.stop()
    assert ended.status is OrderStatus.FINISHED and ended.failed_actions == ()
    assert [e.node_id for e in seen if isinstance(e, NodePassed)] == list(path) == handle.passed
    assert master.view("r1").factsheet is not None
