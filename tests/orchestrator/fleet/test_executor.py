"""The live leg executor with real parts: Mosquitto, the fleet master, two robot agents on simulated
drivers (a cart outdoors, an indoor robot in building H), and the elevator bridge of building H with
a simulated lift car behind its simulated LiftLink IoT box and the office door D.

Everything runs on the real clock with quick simulated timings (the car rides a storey in 0.3 s, the
robots drive at 20 m/s, ``enterLift``/``exitLift`` take 0.2 s, ``waitForPickup`` its 1 s of
``SIM_ACTION_DURATIONS``), so a lift ride takes about two seconds. Tests wait on reports and MQTT
messages, never on time.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, TypeVar

import pytest
from campus_fixtures import build_small_site
from ros_fixtures import RosEnv

from elevator_bridge.app import build_driver
from elevator_bridge.config import parse_config as parse_bridge_config
from elevator_bridge.service import BridgeService
from interfaces.clock import RealClock
from interfaces.lift import LiftMode, LiftState, SessionOutcome, SessionPhase, lift_states
from interfaces.mqtt import MqttClient, MqttConfig, Subscription
from maps.model import Site
from orchestrator.dispatch.campus import Leg, LegKind
from orchestrator.facilities import Facilities
from orchestrator.fleet import FleetMaster, FleetOptions, Link, LinkChanged, OrderStateError, parse_fleet
from orchestrator.fleet.executor import LegExecutor
from orchestrator.fleet.legs import LegPlanner
from orchestrator.operations.messages import Event, LegArrived, LegFailed, LegFinished
from robots.agent.agent import SIM_ACTION_DURATIONS, Agent, make_driver, make_mqtt_client
from robots.agent.config import parse_config as parse_agent_config
from robots.agent.driver import DriverResult, Pose, RobotDriver
from robots.agent.ros_driver import RosDriver, RosDriverConfig
from robots.agent.sim_driver import NAVIGATE, SimDriver
from sim.lift import LiftCar, LiftCarConfig
from sim.lift_iot import IotBoxSim
from sim.mosquitto import MosquittoBroker
from sim.ros_base import BaseConfig, SimulatedBase

pytestmark = pytest.mark.integration

WAIT = 15.0
"""Seconds a test waits for one report or message before it fails (each comes within ~2 s)."""

CART, INDOOR = "cart-1", "indoor-1"
E = TypeVar("E", bound=Event)


@dataclass
class World:
    """The running parts of one test."""

    site: Site
    master: FleetMaster
    executor: LegExecutor
    car: LiftCar
    drivers: dict[str, SimDriver]
    lift: LiftWatch
    door_commands: Subscription
    reports: asyncio.Queue[Event] = field(default_factory=asyncio.Queue)
    ros: RosIndoor | None = None

    async def report(self, kind: type[E]) -> E:
        """The next report; it must be of ``kind``."""
        event = await asyncio.wait_for(self.reports.get(), WAIT)
        assert isinstance(event, kind), event
        return event

    def actions(self, robot: str) -> list[str]:
        """The action types the robot's driver carried out, in order."""
        return [r.action_type for r in self.drivers[robot].action_log]


class LiftWatch:
    """The latest retained state of lift LA of building H (from the bridge), and a way to wait on it."""

    def __init__(self, mqtt: MqttClient) -> None:
        self.latest: LiftState | None = None
        self._sub = mqtt.subscribe(lift_states("H"), qos=1)

    async def until(self, check: Callable[[LiftState], bool]) -> LiftState:
        """Wait until a state of LA satisfies ``check`` (the latest one counts at once)."""

        async def watch() -> LiftState:
            while self.latest is None or not check(self.latest):
                message = await self._sub.get()
                state = LiftState.model_validate_json(message.payload)
                if state.lift_name == "LA":
                    self.latest = state
            return self.latest

        return await asyncio.wait_for(watch(), WAIT)


@dataclass
class RosIndoor:
    """The indoor robot on ROS 2: its ``RosDriver``, the simulated base it drives, and the hardware
    actions its handlers carried out (``openCompartment``, ``waitForPickup``: done at once)."""

    driver: RosDriver
    base: SimulatedBase
    handled: list[str]


def _ros_indoor(ros: RosEnv, x: float, y: float) -> RosIndoor:
    """A fast simulated base on H1 at (x, y) and a RosDriver for it (neither started yet)."""
    handled: list[str] = []

    def handler(kind: str) -> Callable[[Mapping[str, Any]], Awaitable[DriverResult]]:
        async def run(parameters: Mapping[str, Any]) -> DriverResult:
            del parameters
            handled.append(kind)
            return DriverResult.SUCCESS

        return run

    base = SimulatedBase(
        BaseConfig(
            namespace=ros.namespace,
            map_id="H1",
            start=Pose(x, y, 0.0, "H1"),
            speed=20.0,
            turn_rate=50.0,
            odometry_rate=50.0,
        )
    )
    config = RosDriverConfig(
        namespace=ros.namespace, default_map_id="H1", nominal_speed=20.0, stall_timeout=2.0
    )
    actions = {kind: handler(kind) for kind in ("openCompartment", "waitForPickup")}
    return RosIndoor(RosDriver(config, actions=actions), base, handled)


def _agent_config(broker: MosquittoBroker, serial: str, map_id: str, x: float, y: float) -> Any:
    return parse_agent_config(
        {
            "manufacturer": "acme",
            "serial_number": serial,
            "map_id": map_id,
            "mqtt": {"host": broker.host, "port": broker.port},
            "visualization_period": 0.5,
            "execution": {"retry_delay": 0.1},
            "driver": {
                "type": "sim",
                "speed": 100.0,
                "turn_rate": 50.0,
                "step": 0.02,
                "start": {"x": x, "y": y, "theta": 0.0},
                "action_durations": {"enterLift": 0.2, "exitLift": 0.2, "openCompartment": 0.1},
            },
        }
    )


def _bridge_config() -> Any:
    """Building H: lift LA over H1..H3 behind IoT box ``LA-box``; the office door D (quick relay)."""
    return parse_bridge_config(
        {
            "building": "H",
            "tick_s": 0.05,
            "state_period_s": 1.0,
            "resume_grace_s": 0,
            "session": {"heartbeat_timeout_s": 5, "status_timeout_s": 3},
            "lifts": {
                "LA": {
                    "floors": ["H1", "H2", "H3"],
                    "fire_floor": "H1",
                    "floor_travel_s": 0.3,
                    "door_time_s": 0.2,
                    "driver": {"kind": "iot_mqtt", "box_id": "LA-box", "ack_timeout_s": 1.0},
                }
            },
            "door_defaults": {"open_s": 0.1, "close_s": 0.1, "auto_close_s": 0.5},
            "doors": {"D": {"iot": "H/3/D"}},
        }
    )


@pytest.fixture
async def make_world(mqtt_broker: MosquittoBroker) -> AsyncIterator[Callable[..., Awaitable[World]]]:
    """``await make_world(start_floor=..., floor_travel_s=..., cabin=..., ros=...)``: everything started;
    stopped at the end. ``cabin``: where lift LA's cabin centre is (default: at its landings, (200, 20));
    ``ros``: the indoor robot runs on ROS 2 (``RosDriver`` and ``sim.ros_base``) in that environment."""
    stops: list[Callable[[], Awaitable[Any]]] = []
    config = MqttConfig(host=mqtt_broker.host, port=mqtt_broker.port)

    async def client() -> MqttClient:
        mqtt = MqttClient(config)
        await mqtt.connect()
        stops.append(mqtt.disconnect)
        return mqtt

    async def make(
        start_floor: str = "H1",
        floor_travel_s: float = 0.3,
        cabin: tuple[float, float] | None = None,
        ros: RosEnv | None = None,
    ) -> World:
        clock = RealClock()
        site = build_small_site()
        if cabin is not None:
            lift = site.lifts["LA"]
            site.lifts["LA"] = replace(lift, cabin=replace(lift.cabin, x=cabin[0], y=cabin[1]))
        # the lift: car, IoT box, bridge (with door D)
        car = LiftCar(
            LiftCarConfig(
                ("H1", "H2", "H3"),
                start_floor=start_floor,
                floor_travel_s=floor_travel_s,
                door_move_s=0.2,
                door_dwell_s=2.0,
            )
        )
        car_task = asyncio.ensure_future(car.run(clock, tick_s=0.02))
        stops.append(lambda: _cancel(car_task))
        box = IotBoxSim(car, config, "LA-box", status_period_s=0.2)
        await box.start()
        stops.append(box.stop)
        bridge_mqtt = await client()
        bridge = _bridge_config()
        service = BridgeService(
            bridge, bridge_mqtt, {"LA": build_driver(bridge.lifts["LA"], bridge_mqtt, clock)}, clock
        )
        await service.start()
        stops.append(service.stop)
        # the orchestrator's side: fleet master, facilities clients, executor
        fleet = parse_fleet(
            {
                "orchestrator": {"username": "orchestrator", "password": "x"},
                "robots": [
                    {"manufacturer": "acme", "serial": CART, "kind": "cart", "password": "x"},
                    {"manufacturer": "acme", "serial": INDOOR, "kind": "indoor", "password": "x"},
                ],
            }
        )
        master_mqtt = MqttClient(config)
        await master_mqtt.connect()
        master = FleetMaster(
            fleet,
            master_mqtt,
            site,
            clock=clock,
            options=FleetOptions(request_factsheet=False),
            owns_client=True,
        )
        await master.start()
        stops.append(master.stop)
        watch_mqtt = await client()
        lift = LiftWatch(watch_mqtt)
        door_commands = watch_mqtt.subscribe("robopost/iot/H/3/D/command", qos=1)
        facilities_mqtt = await client()
        reports: asyncio.Queue[Event] = asyncio.Queue()
        executor = LegExecutor(
            master,
            lambda robot: Facilities(facilities_mqtt, clock, robot, heartbeat_s=0.5),
            LegPlanner(site),
            site,
            clock,
            reports.put_nowait,
        )
        # the robots: the cart at the station S, the indoor robot at the lift's landing h1 on H1
        drivers: dict[str, SimDriver] = {}
        indoor_ros = _ros_indoor(ros, 200.0, 20.0) if ros is not None else None
        with master.subscribe() as events:
            for serial, map_id, (x, y) in ((CART, "outdoor", (0.0, 0.0)), (INDOOR, "H1", (200.0, 20.0))):
                agent_config = _agent_config(mqtt_broker, serial, map_id, x, y)
                driver: RobotDriver
                if serial == INDOOR and indoor_ros is not None:
                    indoor_ros.base.start()
                    stops.append(_closer(indoor_ros.base))  # closed after the agent stopped
                    driver = indoor_ros.driver
                else:
                    simulated = make_driver(agent_config, clock)
                    assert isinstance(simulated, SimDriver)
                    driver = drivers[serial] = simulated
                agent = Agent(agent_config, driver, make_mqtt_client(agent_config, clock), clock)
                await agent.start()
                stops.append(agent.stop)
            online: set[str] = set()
            while online != {CART, INDOOR}:  # in whichever order they come
                event = await asyncio.wait_for(events.get(), WAIT)
                if isinstance(event, LinkChanged) and event.link is Link.ONLINE:
                    online.add(event.robot)
        stops.append(executor.stop)  # first to stop: legs cancelled while the robots still listen
        await door_commands.wait_granted()
        await lift.until(lambda s: s.current_mode is LiftMode.AGV or LiftMode.AGV in s.available_modes)
        if indoor_ros is not None:  # the base's first odometry: the robot knows where it stands
            stream = indoor_ros.driver.readouts()
            while indoor_ros.driver.readout().pose is None:
                await asyncio.wait_for(stream.get(), WAIT)
            stream.close()
        return World(site, master, executor, car, drivers, lift, door_commands, reports, indoor_ros)

    yield make
    for stop in reversed(stops):
        await stop()


def _closer(base: SimulatedBase) -> Callable[[], Awaitable[None]]:
    async def close() -> None:
        base.close()

    return close


async def _cancel(task: asyncio.Task[Any]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


def _deliver_upstairs() -> Leg:
    """The indoor robot's DELIVER of parcel p7 at the office on H3 (from h1: lift LA, then door D)."""
    return Leg(INDOOR, LegKind.DELIVER, "office", 0.0, 0.0, 60.0, parcels=("p7",))


async def test_cart_dwell_leg_outdoors(make_world: Callable[..., Awaitable[World]]) -> None:
    """A cart's DWELL at stop C: one order S → B → C; LegArrived when it stands at C while its
    waitForPickup actions still run, then LegFinished (a dwell moves nothing by itself); both waits ran
    on the cart with the stop and window, and the cart stands at C."""
    world = await make_world()
    leg = Leg(CART, LegKind.DWELL, "stop_c", 0.0, 0.0, 60.0, parcels=("p1", "p2"), window="w-1")
    await world.executor.start(1, leg, start_node="S", slots={"p1": 0, "p2": 3})
    assert list(world.executor.running()) == [CART]

    assert await world.report(LegArrived) == LegArrived(CART, 1)
    assert "waitForPickup" not in world.actions(CART)  # arrived before the 1 s waits ended
    assert await world.report(LegFinished) == LegFinished(CART, 1, (), {})

    waits = [r.parameters for r in world.drivers[CART].action_log if r.action_type == "waitForPickup"]
    assert sorted((w["compartment"], w["stop"], w["window"]) for w in waits) == [
        (0, "stop_c", "w-1"),
        (3, "stop_c", "w-1"),
    ]
    pose = world.drivers[CART].pose
    assert (round(pose.x, 3), round(pose.y, 3), pose.map_id) == (200.0, 0.0, "outdoor")
    assert world.executor.running() == {}
    assert SIM_ACTION_DURATIONS["waitForPickup"] == 1.0  # the margin the LegArrived check relies on


async def test_indoor_delivery_upstairs_through_the_lift(make_world: Callable[..., Awaitable[World]]) -> None:
    """An indoor DELIVER from h1 (H1) to the office (H3): a lift session on LA (enterLift, ride,
    initPosition on H3 at h3a, exitLift, release: FINISHED), door D opened on the way; the robot ends
    on the H3 map at the office; LegFinished with the parcel delivered. A resend of the token is
    ignored; another leg for the busy robot is refused."""
    world = await make_world()
    await world.executor.start(7, _deliver_upstairs(), start_node="h1", slots={"p7": 2})
    await world.executor.start(7, _deliver_upstairs(), start_node="h1", slots={"p7": 2})  # ignored
    with pytest.raises(OrderStateError, match="still runs leg 7"):
        await world.executor.start(8, _deliver_upstairs(), start_node="h1", slots={"p7": 2})

    assert await world.report(LegArrived) == LegArrived(INDOOR, 7)
    assert await world.report(LegFinished) == LegFinished(INDOOR, 7, ("p7",), {})
    assert world.reports.empty()

    log = world.drivers[INDOOR].action_log
    assert world.actions(INDOOR) == [
        "enterLift",
        "initPosition",
        "exitLift",
        "openCompartment",
        "waitForPickup",
    ]
    enter, init, exit_ = (r.parameters for r in log[:3])
    assert (enter["building"], enter["lift"], enter["floor"]) == ("H", "LA", "H1")
    assert (init["mapId"], init["lastNodeId"], init["x"], init["y"]) == ("H3", "h3a", 200.0, 20.0)
    assert (exit_["lift"], exit_["floor"]) == ("LA", "H3")
    # the lift poses: LA's landings are at the cabin's centre, so the way in is the robot's own heading
    # (it has not moved yet: 0) and the way out the route's next node h3b, due east (0)
    assert _pose_of(enter) == (200.0, 20.0, 0.0, "H1")
    assert _pose_of(exit_) == (200.0, 20.0, 0.0, "H3")
    assert log[3].parameters["compartment"] == log[4].parameters["compartment"] == 2
    pose = world.drivers[INDOOR].pose
    assert (round(pose.x, 3), round(pose.y, 3), pose.map_id) == (220.0, 30.0, "H3")
    assert world.master.view(INDOOR).last_node_id == "off"

    session = enter["sessionId"]
    state = await world.lift.until(lambda s: s.end_of(session) is not None)
    end = state.end_of(session)
    assert end is not None and end.outcome is SessionOutcome.FINISHED and end.robot_id == INDOOR
    assert state.current_floor == "H3"
    opened = json.loads((await asyncio.wait_for(world.door_commands.get(), WAIT)).payload)
    closed = json.loads((await asyncio.wait_for(world.door_commands.get(), WAIT)).payload)
    assert (opened["open"], closed["open"]) == (True, False)  # held for the robot, then let go


def _pose_of(parameters: dict[str, Any]) -> tuple[float, float, float, str]:
    """The lift pose sent with an enterLift/exitLift (rounded to mm and mrad)."""
    x, y, theta = (round(float(parameters[k]), 3) for k in ("x", "y", "theta"))
    return x, y, theta, str(parameters["mapId"])


async def test_lift_poses_with_the_cabin_behind_the_landings(
    make_world: Callable[..., Awaitable[World]],
) -> None:
    """With LA's cabin centre 1.5 m north of its landings, enterLift carries that centre on H1's map
    facing north (from the landing into the cabin) and exitLift the landing h3a on H3's map facing
    south (out of the cabin); initPosition puts the robot where it reported itself on H1 (the simulated
    robot does not move for enterLift), carried to H3 — so it still starts the office drive at h3a."""
    world = await make_world(cabin=(200.0, 21.5))
    await world.executor.start(12, _deliver_upstairs(), start_node="h1", slots={"p7": 2})
    assert await world.report(LegArrived) == LegArrived(INDOOR, 12)
    assert await world.report(LegFinished) == LegFinished(INDOOR, 12, ("p7",), {})

    enter, init, exit_ = (r.parameters for r in world.drivers[INDOOR].action_log[:3])
    north, south = round(math.pi / 2, 3), round(-math.pi / 2, 3)
    assert _pose_of(enter) == (200.0, 21.5, north, "H1")
    assert _pose_of(exit_) == (200.0, 20.0, south, "H3")
    assert (init["x"], init["y"], init["mapId"], init["lastNodeId"]) == (200.0, 20.0, "H3", "h3a")
    pose = world.drivers[INDOOR].pose
    assert (round(pose.x, 3), round(pose.y, 3), pose.map_id) == (220.0, 30.0, "H3")


async def test_a_ros_robot_rides_the_lift_on_the_poses(
    make_world: Callable[..., Awaitable[World]], ros_env: RosEnv
) -> None:
    """The indoor robot on ROS 2 (RosDriver, simulated base; no lift integration of its own) delivers
    upstairs with LA's cabin 1.5 m north of the landings: enterLift drives the base into the cabin on
    H1's map facing north, initPosition moves it to the same spot on H3's map, exitLift drives it out
    to the landing h3a facing south, and the office drive ends at the office on H3: LegFinished."""
    world = await make_world(cabin=(200.0, 21.5), ros=ros_env)
    assert world.ros is not None
    driver, base = world.ros.driver, world.ros.base
    seen: list[Pose] = []
    stream = driver.readouts()

    async def track() -> None:
        async for readout in stream:
            if readout.pose is not None and not readout.driving:
                seen.append(readout.pose)  # where the base stood still

    tracker = asyncio.ensure_future(track())
    try:
        await world.executor.start(13, _deliver_upstairs(), start_node="h1", slots={"p7": 2})
        assert await world.report(LegArrived) == LegArrived(INDOOR, 13)
        assert await world.report(LegFinished) == LegFinished(INDOOR, 13, ("p7",), {})
    finally:
        stream.close()
        await _cancel(tracker)

    def stood(x: float, y: float, theta: float, map_id: str) -> int:
        """The first index in ``seen`` where the base stood at that pose (ValueError if never)."""
        return next(
            i
            for i, p in enumerate(seen)
            if p.map_id == map_id and math.hypot(p.x - x, p.y - y) < 0.1 and abs(p.theta - theta) < 0.05
        )

    in_cabin = stood(200.0, 21.5, math.pi / 2, "H1")
    carried = stood(200.0, 21.5, math.pi / 2, "H3")
    at_landing = stood(200.0, 20.0, -math.pi / 2, "H3")
    assert in_cabin < carried < at_landing
    end = base.pose
    assert end.map_id == "H3" and math.hypot(end.x - 220.0, end.y - 30.0) < 0.1
    assert world.ros.handled == ["openCompartment", "waitForPickup"]


async def test_cancelled_leg_releases_the_lift(make_world: Callable[..., Awaitable[World]]) -> None:
    """Cancelling a DELIVER while its robot waits for the cabin (a slow car coming down from H3):
    LegFailed("cancelled"), the lift session is released (FINISHED) and the robot never boarded."""
    world = await make_world(start_floor="H3", floor_travel_s=5.0)
    await world.executor.start(3, _deliver_upstairs(), start_node="h1", slots={"p7": 1})
    bound = await world.lift.until(lambda s: s.robot_id == INDOOR and bool(s.session_id))
    assert bound.current_floor != "H1"  # the car is still on its way

    await world.executor.cancel(INDOOR, 3)
    await world.executor.cancel(INDOOR, 99)  # not running: ignored

    assert await world.report(LegFailed) == LegFailed(INDOOR, 3, "cancelled")
    state = await world.lift.until(lambda s: s.end_of(bound.session_id) is not None)
    end = state.end_of(bound.session_id)
    assert end is not None and end.outcome is SessionOutcome.FINISHED
    assert state.session_id != bound.session_id
    assert "enterLift" not in world.actions(INDOOR)
    assert world.drivers[INDOOR].pose.map_id == "H1"
    assert world.executor.running() == {}


async def test_lift_that_refuses_fails_the_leg(make_world: Callable[..., Awaitable[World]]) -> None:
    """A lift in fire recall refuses the session: LegFailed naming the lift and FIRE, no LegArrived, and
    the robot stays on H1 without having been told to board."""
    world = await make_world()
    world.car.set_fire(True)
    await world.lift.until(lambda s: s.current_mode is LiftMode.FIRE)
    await world.executor.start(4, _deliver_upstairs(), start_node="h1", slots={"p7": 1})

    failed = await world.report(LegFailed)
    assert failed.robot == INDOOR and failed.token == 4
    assert failed.reason.startswith("lift LA H1→H3: ") and "FIRE" in failed.reason, failed.reason
    assert world.reports.empty()
    assert "enterLift" not in world.actions(INDOOR)
    assert world.drivers[INDOOR].pose.map_id == "H1"


async def test_cancel_in_the_cabin_waits_for_the_exit(make_world: Callable[..., Awaitable[World]]) -> None:
    """A cancel while the robot rides does not leave it in the cabin: the ride is completed (arrival
    floor's map, exitLift, session FINISHED), then LegFailed("cancelled") without the office drive."""
    world = await make_world(floor_travel_s=1.0)
    await world.executor.start(5, _deliver_upstairs(), start_node="h1", slots={"p7": 1})
    riding = await world.lift.until(lambda s: s.robot_id == INDOOR and s.phase is SessionPhase.RIDING)
    await world.executor.cancel(INDOOR, 5)

    assert await world.report(LegFailed) == LegFailed(INDOOR, 5, "cancelled")
    assert world.actions(INDOOR) == ["enterLift", "initPosition", "exitLift"]
    pose = world.drivers[INDOOR].pose
    assert (round(pose.x, 3), round(pose.y, 3), pose.map_id) == (200.0, 20.0, "H3")
    state = await world.lift.until(lambda s: s.end_of(riding.session_id) is not None)
    end = state.end_of(riding.session_id)
    assert end is not None and end.outcome is SessionOutcome.FINISHED


async def test_a_leg_that_cannot_be_planned_fails_at_once(
    make_world: Callable[..., Awaitable[World]],
) -> None:
    """A leg to a place the map does not know is reported LegFailed at once, naming the place; no
    order goes out and the robot is free for the next leg."""
    world = await make_world()
    leg = Leg(CART, LegKind.DWELL, "nowhere", 0.0, 0.0, 60.0, parcels=("p1",), window="w-1")
    await world.executor.start(6, leg, start_node="S", slots={"p1": 0})
    failed = await world.report(LegFailed)
    assert (failed.robot, failed.token) == (CART, 6) and "'nowhere'" in failed.reason
    assert world.executor.running() == {}
    assert world.master.view(CART).order_id in (None, "")


async def test_a_drive_that_fails_before_the_place_fails_the_leg(
    make_world: Callable[..., Awaitable[World]],
) -> None:
    """The cart's navigation answers IMPOSSIBLE: the order ends FAILED before stop C, so the leg is
    LegFailed (naming the drive and the order's end), with no LegArrived."""
    world = await make_world()
    world.drivers[CART].fail_next(NAVIGATE, DriverResult.IMPOSSIBLE)
    leg = Leg(CART, LegKind.DWELL, "stop_c", 0.0, 0.0, 60.0, parcels=("p1",), window="w-1")
    await world.executor.start(2, leg, start_node="S", slots={"p1": 0})
    failed = await world.report(LegFailed)
    assert failed.reason.startswith("drive 1/1 to C: order ") and "ended FAILED" in failed.reason, failed
    assert "waitForPickup" not in world.actions(CART)


async def test_a_failed_end_action_at_the_place_still_finishes_the_leg(
    make_world: Callable[..., Awaitable[World]],
) -> None:
    """A DELIVER of two parcels at the mailroom (where the robot stands) whose first waitForPickup
    fails: the robot was there, so the leg is LegFinished with only the other parcel moved."""
    world = await make_world()
    world.drivers[INDOOR].fail_next("waitForPickup", DriverResult.IMPOSSIBLE)
    leg = Leg(INDOOR, LegKind.DELIVER, "mailroom", 0.0, 0.0, 60.0, parcels=("p1", "p2"))
    await world.executor.start(9, leg, start_node="h1", slots={"p1": 1, "p2": 2})
    assert await world.report(LegArrived) == LegArrived(INDOOR, 9)
    finished = await world.report(LegFinished)
    assert finished.token == 9 and len(finished.moved) == 1 and set(finished.moved) < {"p1", "p2"}
    assert world.actions(INDOOR).count("waitForPickup") == 2


async def test_stop_ends_the_legs_quietly_and_releases_the_lift(
    make_world: Callable[..., Awaitable[World]],
) -> None:
    """``stop()`` while a robot waits for a slow cabin: no report, the lift session is released, and a
    later ``start`` is refused."""
    world = await make_world(start_floor="H3", floor_travel_s=5.0)
    await world.executor.start(10, _deliver_upstairs(), start_node="h1", slots={"p7": 1})
    bound = await world.lift.until(lambda s: s.robot_id == INDOOR and bool(s.session_id))
    await world.executor.stop()
    state = await world.lift.until(lambda s: s.end_of(bound.session_id) is not None)
    end = state.end_of(bound.session_id)
    assert end is not None and end.outcome is SessionOutcome.FINISHED
    assert world.reports.empty() and world.executor.running() == {}
    with pytest.raises(RuntimeError, match="stopped"):
        await world.executor.start(11, _deliver_upstairs(), start_node="h1", slots={"p7": 1})
