"""``sim.safety_feed``: simulated sensors on all five layers feeding a live agent (``AgentSafety`` on a
``SimDriver``, ``Vehicle`` running orders) in virtual time — people in front, bumper hits, the e-stop,
stuck and dropped-out sensors, ghosts; and ``attach_sim_sensors`` wiring it to an ``Agent``."""

from __future__ import annotations

import asyncio
import math
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
from agent_samples import MANUFACTURER, MAP, SERIAL, line_order, master_headers, run_until

from interfaces.clock import VirtualClock
from interfaces.mqtt import MqttClient, MqttConfig
from interfaces.vda5050 import EStop, HeaderFactory, State, Topic, TopicKind, parse
from robots.agent.agent import Agent, make_driver, make_mqtt_client
from robots.agent.config import parse_config
from robots.agent.driver import Pose
from robots.agent.safety import AgentSafety, SafetySettings
from robots.agent.sim_driver import SimDriver, SimDriverConfig
from robots.agent.vehicle import Vehicle, VehicleSettings
from robots.safety import LAYERS, LatchKind, ObjectClass, SafetyLevel, Source
from sim.mosquitto import MosquittoBroker
from sim.safety_feed import SimSafetyFeed, attach_sim_sensors
from sim.safety_sensors import Actor, Stuck

PERIOD = 0.05
ALL = frozenset(LAYERS)


@dataclass
class Rig:
    clock: VirtualClock
    driver: SimDriver
    vehicle: Vehicle
    safety: AgentSafety
    feed: SimSafetyFeed
    headers: HeaderFactory

    @property
    def level(self) -> SafetyLevel:
        assert self.safety.last is not None
        return self.safety.last.decision.level

    def state(self) -> State:
        return self.headers.make(State, **self.vehicle.state_body())

    def x(self) -> float:
        pose = self.driver.readout().pose
        assert pose is not None
        return pose.x

    async def order(self, length: float = 10.0) -> None:
        """An order straight along +x for ``length`` m (two edges)."""
        await self.vehicle.receive_order(line_order(self.headers, last=2, spacing=length / 2))


@pytest.fixture
async def rig() -> AsyncIterator[Rig]:
    """A 1 m/s robot at the origin facing +x, all five layers external and fed by the simulated
    sensors; control period 50 ms; one virtual second run so every layer has spoken."""
    clock = VirtualClock(1_700_000_000.0)
    driver = SimDriver(clock, SimDriverConfig(speed=1.0, turn_rate=20.0), start=Pose(0, 0, 0, MAP))
    vehicle = Vehicle(driver, clock, VehicleSettings(map_id=MAP))
    settings = SafetySettings(period=PERIOD, readout_layers=frozenset(), external_layers=ALL)
    safety = AgentSafety(vehicle, clock, settings)
    feed = SimSafetyFeed(safety, seed=7)
    await vehicle.start()
    safety.start()
    feed.start()
    await clock.run_for(1.0)
    yield Rig(clock, driver, vehicle, safety, feed, master_headers(clock))
    await feed.stop()
    await safety.stop()
    await vehicle.stop()


async def test_each_layer_reports_at_its_own_rate_and_a_clear_world_is_normal(rig: Rig) -> None:
    """Over 2 s: lidar 15 Hz, ultrasonic 20 Hz, camera 10 Hz, e-stop and bumper 20 Hz (±1 for the
    start); nothing refused; NORMAL, eStop NONE, no errors; an order runs to its end at full speed."""
    before = dict(rig.feed.sent)
    await rig.clock.run_for(2.0)
    got = {layer: rig.feed.sent[layer] - before[layer] for layer in LAYERS}
    assert got == pytest.approx(
        {Source.LIDAR: 30, Source.ULTRASONIC: 40, Source.CAMERA: 20, Source.E_STOP: 40, Source.BUMPER: 40},
        abs=1,
    )
    assert rig.feed.refused == {}
    assert rig.level is SafetyLevel.NORMAL
    state = rig.state()
    assert state.safety_state.e_stop is EStop.NONE and state.errors == []
    await rig.order(4.0)
    await run_until(rig.clock, lambda: rig.driver.readout().vx > 0.0)
    assert rig.driver.readout().vx == pytest.approx(1.0)
    await run_until(rig.clock, lambda: not rig.vehicle.busy, limit=10.0)
    assert rig.vehicle.last_node_id == "n2"


async def test_person_in_front_stops_the_robot_until_they_leave(rig: Rig) -> None:
    """A person standing 6 m ahead on the map: the robot slows (camera slow zone), then stops short of
    them in a protective stop — zero velocity, fieldViolation, never touching; once they leave, the
    order finishes."""
    person = rig.feed.add_actor(Actor(ObjectClass.PERSON, 6.0, 0.0))
    await rig.order(10.0)
    await run_until(rig.clock, lambda: rig.level is SafetyLevel.SLOW, limit=10.0)
    await run_until(rig.clock, lambda: rig.level is SafetyLevel.PROTECTIVE_STOP, limit=10.0)
    await rig.clock.run_for(3.0)
    assert rig.level is SafetyLevel.PROTECTIVE_STOP
    assert rig.driver.readout().vx == 0.0 and rig.vehicle.busy
    gap = person.x - person.radius - rig.feed.sensors.robot_radius - rig.x()
    assert 0.3 < gap < 1.5  # stopped by the camera's stop zone, clear of the person
    assert rig.state().safety_state.field_violation is True
    assert rig.feed.sensors.touching(rig.feed.now, (rig.x(), 0.0, 0.0)) is False
    assert rig.feed.clear_actors() == 1
    await run_until(rig.clock, lambda: not rig.vehicle.busy, limit=20.0)
    assert rig.vehicle.last_node_id == "n2" and rig.level is SafetyLevel.NORMAL


async def test_person_stepping_in_front_at_runtime_stops_the_robot(rig: Rig) -> None:
    """``ahead`` places somebody 1 m in front of the moving robot: it is stopped within a few control
    periods and stands still while they stay."""
    await rig.order(10.0)
    await run_until(rig.clock, lambda: rig.x() > 1.0)
    rig.feed.add_actor(rig.feed.ahead(ObjectClass.PERSON, 1.0))
    took = await run_until(rig.clock, lambda: rig.driver.readout().vx == 0.0, limit=1.0)
    assert took <= 0.25
    assert rig.level is SafetyLevel.PROTECTIVE_STOP and rig.safety.sent == (0.0, 0.0)
    x = rig.x()
    await rig.clock.run_for(2.0)
    assert rig.x() == x


async def test_bumper_hit_latches_until_acknowledged_on_site(rig: Rig) -> None:
    """A 0.2 s bumper hit while driving: EMERGENCY_STOP with a bumper latch, eStop REMOTE and a
    ``bumperContact`` error; seconds after the contact ended it still holds; the reset key clears it
    and the order goes on."""
    await rig.order(10.0)
    await run_until(rig.clock, lambda: rig.x() > 1.0)
    rig.feed.bumper_hit(0.2)
    await run_until(rig.clock, lambda: rig.level is SafetyLevel.EMERGENCY_STOP, limit=0.2)
    assert rig.driver.readout().vx == 0.0
    await rig.clock.run_for(3.0)
    decision = rig.safety.last.decision if rig.safety.last else None
    assert decision is not None and decision.level is SafetyLevel.EMERGENCY_STOP
    assert [latch.kind for latch in decision.latches] == [LatchKind.BUMPER]
    state = rig.state()
    assert state.safety_state.e_stop is EStop.REMOTE
    assert "bumperContact" in {e.error_type for e in state.errors}
    assert rig.driver.readout().vx == 0.0
    assert rig.safety.acknowledge_on_site() is None
    assert rig.level is SafetyLevel.NORMAL
    await run_until(rig.clock, lambda: not rig.vehicle.busy, limit=20.0)
    assert rig.vehicle.last_node_id == "n2"


async def test_acknowledge_refused_while_the_bumper_is_pressed(rig: Rig) -> None:
    """While the strips still touch, the reset key is refused with the reason; after the release it works."""
    rig.feed.bumper_hit(math.inf)
    await rig.clock.run_for(0.2)
    answer = rig.safety.acknowledge_on_site()
    assert answer is not None and "still in contact" in answer
    rig.feed.release_bumper()
    await rig.clock.run_for(0.2)
    assert rig.level is SafetyLevel.EMERGENCY_STOP
    assert rig.safety.acknowledge_on_site() is None


async def test_e_stop_press_and_release_still_needs_the_reset_key(rig: Rig) -> None:
    """The simulated button: eStop MANUAL while pressed and after the release, until acknowledged."""
    rig.feed.press_e_stop()
    await rig.clock.run_for(0.1)
    assert rig.state().safety_state.e_stop is EStop.MANUAL
    assert "still pressed" in (rig.safety.acknowledge_on_site() or "")
    rig.feed.release_e_stop()
    await rig.clock.run_for(1.0)
    assert rig.state().safety_state.e_stop is EStop.MANUAL
    assert rig.safety.acknowledge_on_site() is None
    assert rig.state().safety_state.e_stop is EStop.NONE


async def test_stuck_sensor_degrades_to_slow_and_recovers(rig: Rig) -> None:
    """A stuck lidar (same reading, aging stamp) is silent after its heartbeat: SLOW, the drive goes
    on at no more than the slow speed, a ``safetySensorSilent`` warning; healed, full speed again."""
    await rig.order(20.0)
    await run_until(rig.clock, lambda: rig.driver.readout().vx == pytest.approx(1.0))
    rig.feed.stuck(Source.LIDAR)
    await run_until(rig.clock, lambda: rig.level is SafetyLevel.SLOW, limit=1.0)
    await rig.clock.run_for(0.5)
    x = rig.x()
    await rig.clock.run_for(2.0)
    assert rig.level is SafetyLevel.SLOW
    assert rig.safety.last is not None and rig.safety.last.decision.silent == (Source.LIDAR,)
    assert 0.0 < rig.driver.readout().vx <= 0.5 and 0.5 < rig.x() - x <= 1.0 + 1e-6
    assert "safetySensorSilent" in {e.error_type for e in rig.state().errors}
    assert rig.feed.heal(Source.LIDAR) == 1
    await run_until(rig.clock, lambda: rig.driver.readout().vx == pytest.approx(1.0), limit=2.0)
    assert rig.level is SafetyLevel.NORMAL


async def test_two_dropped_out_layers_stop_and_a_dead_feed_stops_too(rig: Rig) -> None:
    """Ultrasonic and camera drop out: two silent layers, PROTECTIVE_STOP. A stopped feed silences
    every layer: the robot stands."""
    rig.feed.dropout(Source.ULTRASONIC)
    rig.feed.dropout(Source.CAMERA, duration=3.0)
    await run_until(rig.clock, lambda: rig.level is SafetyLevel.PROTECTIVE_STOP, limit=1.0)
    assert set(rig.safety.last.decision.silent if rig.safety.last else ()) == {
        Source.ULTRASONIC,
        Source.CAMERA,
    }
    await rig.clock.run_for(3.5)  # the camera's window and the hold-off are over: one silent layer
    assert rig.level is SafetyLevel.SLOW
    await rig.feed.stop()
    await rig.clock.run_for(1.0)
    assert rig.level is SafetyLevel.PROTECTIVE_STOP and not rig.feed.running


async def test_false_detection_stops_then_releases_by_itself(rig: Rig) -> None:
    """A ghost person 1 m ahead for the camera for 1 s: protective stop; after the ghost and the
    hold-off, NORMAL again without anybody acknowledging (fields release by themselves)."""
    rig.feed.false_detection(Source.CAMERA, 1.0, duration=1.0)
    await run_until(rig.clock, lambda: rig.level is SafetyLevel.PROTECTIVE_STOP, limit=0.5)
    await run_until(rig.clock, lambda: rig.level is SafetyLevel.NORMAL, limit=2.0)
    with pytest.raises(ValueError, match="e_stop has no detections"):
        rig.feed.false_detection(Source.E_STOP, 1.0)


async def test_inject_takes_the_window_relative_to_now(rig: Rig) -> None:
    """``inject(Stuck(layer, 0.5, 1.5))`` at time T is stuck during [T+0.5, T+1.5)."""
    now = rig.feed.now
    fault = rig.feed.inject(Stuck(Source.CAMERA, 0.5, 1.5))
    assert (fault.start, fault.end) == pytest.approx((now + 0.5, now + 1.5))
    await rig.clock.run_for(0.5)
    assert rig.level is SafetyLevel.NORMAL
    await run_until(rig.clock, lambda: rig.level is SafetyLevel.SLOW, limit=1.0)
    await run_until(rig.clock, lambda: rig.level is SafetyLevel.NORMAL, limit=2.0)


async def test_attach_sim_sensors_follows_the_config() -> None:
    """``safety.simulated: true``: all five layers external and a feed added to the agent, started and
    stopped with it (here by hand: no broker needed); otherwise nothing is attached."""
    clock = VirtualClock(1_700_000_000.0)
    plain = parse_config({"serial_number": "r1", "map_id": MAP})
    agent = Agent(plain, make_driver(plain, clock), make_mqtt_client(plain, clock), clock)
    assert attach_sim_sensors(agent) is None and agent.companions == []
    config = parse_config({"serial_number": "r1", "map_id": MAP, "safety": {"simulated": True}})
    agent = Agent(config, make_driver(config, clock), make_mqtt_client(config, clock), clock)
    assert agent.safety.settings.external_layers == ALL and agent.safety.settings.readout_layers == set()
    feed = attach_sim_sensors(agent)
    assert feed is not None and agent.companions == [feed]
    await agent.vehicle.start()
    agent.safety.start()
    assert agent.safety.last is not None
    assert agent.safety.last.decision.level is SafetyLevel.PROTECTIVE_STOP  # silent until they speak
    feed.start()
    await clock.run_for(1.0)  # the layers speak, then the hold-off (0.5 s) passes
    assert agent.safety.last.decision.level is SafetyLevel.NORMAL
    await feed.stop()
    await agent.safety.stop()
    await agent.vehicle.stop()


@pytest.mark.integration
async def test_simulated_agent_over_mqtt_reports_a_person_in_front(mqtt_broker: MosquittoBroker) -> None:
    """The whole composition ``robopost agent`` gets (``serve(config, setup=attach_sim_sensors)``) on a
    real broker: the agent starts the feed with itself, a person stepping in front makes it publish a
    state with ``fieldViolation`` and a protective stop, and stopping the agent stops the feed."""
    clock = VirtualClock(1_700_000_000.0)
    config = parse_config(
        {
            "manufacturer": MANUFACTURER,
            "serial_number": SERIAL,
            "map_id": MAP,
            "mqtt": {"host": mqtt_broker.host, "port": mqtt_broker.port},
            "safety": {"simulated": True},
        }
    )
    agent = Agent(config, make_driver(config, clock), make_mqtt_client(config, clock), clock)
    feed = attach_sim_sensors(agent)
    assert feed is not None
    console = MqttClient(MqttConfig(host=mqtt_broker.host, port=mqtt_broker.port))
    await console.connect()
    sub = console.subscribe(str(Topic(manufacturer=MANUFACTURER, serial_number=SERIAL, kind=TopicKind.STATE)))
    await sub.wait_granted()

    async def violated() -> State:
        async for message in sub:
            state = parse(TopicKind.STATE, message.payload)
            assert isinstance(state, State)
            if state.safety_state.field_violation:
                return state
        raise AssertionError("state subscription ended")

    try:
        async with agent:
            assert feed.running
            await clock.run_for(1.0)
            assert agent.safety.last is not None
            assert agent.safety.last.decision.level is SafetyLevel.NORMAL
            feed.add_actor(feed.ahead(ObjectClass.PERSON, 0.5))
            waiting = asyncio.create_task(violated())
            await clock.run_for(0.3)
            state = await asyncio.wait_for(waiting, 10.0)
            assert state.safety_state.e_stop is EStop.AUTOACK
            assert agent.safety.last.decision.level is SafetyLevel.PROTECTIVE_STOP
        assert not feed.running
    finally:
        await console.disconnect()
