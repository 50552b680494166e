"""The cart's VDA 5050 agent: a ``Vehicle`` on a ``CartDriver`` whose base is a ``SimDriver`` (virtual
clock) and whose cart is a ``CartService`` over the real ``LockerDriver`` and the simulated locker board
on a pseudo-terminal pair (real clock: serial I/O cannot run on virtual time).

Tests wait on the vehicle's changes, the board or the cart service, each with a time-out; virtual time
moves only while the vehicle has virtual sleepers (a drive, a retry delay)."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from agent_samples import MANUFACTURER, MAP, SERIAL, act, instant, line_order, master_headers
from vda5050_samples import OfficialSchemas

from interfaces.clock import RealClock, VirtualClock
from interfaces.mqtt import MqttClient, MqttConfig
from interfaces.pickup_codes import hash_code
from interfaces.vda5050 import (
    Action,
    ActionStatus,
    AgvError,
    BlockingType,
    Connection,
    ConnectionState,
    ErrorLevel,
    HeaderFactory,
    Order,
    State,
    TopicKind,
    parse_as,
    to_bytes,
)
from robots.agent.agent import Agent, make_mqtt_client
from robots.agent.config import parse_config
from robots.agent.driver import Condition, DriverResult, Pose
from robots.agent.safety import VelocityDriver
from robots.agent.sim_driver import SimDriver, SimDriverConfig
from robots.agent.vehicle import ACTION_FAILED, Vehicle, VehicleSettings
from robots.cart.agent import ALARM_ERRORS, CartDriver, alarm_conditions
from robots.cart.codes import CodeEntry, CodeSheet
from robots.cart.events import EventQueue
from robots.cart.locker import BoardHealth, LockerConfig, LockerDriver
from robots.cart.pickup import Phase
from robots.cart.service import CartAlarm, CartService, CartSettings, Text
from sim.locker_board import LockerBoardSim
from sim.mosquitto import MosquittoBroker

CART, STOP, WINDOW = "cart_1", "stop_dorm_1", "w-1600"
COMPARTMENTS = 8
CODE = "482913"
PARCEL_COMPARTMENT = 3
TAKEN = "parcel in compartment 3 taken"
WAIT = 5.0
"""Real seconds a test waits for a condition before it fails (each normally holds within 0.2 s)."""

FAST_BOARD: dict[str, Any] = {
    "poll_s": 0.02,
    "timeout_s": 0.1,
    "offline_after_s": 0.3,
    "reconnect_s": 0.05,
    "pulse_s": 0.05,
    "status_s": 0.5,
    "report_s": 0.5,
}


@dataclass
class Rig:
    """The vehicle, its cart driver, the cart service, the board and the clocks."""

    clock: VirtualClock
    vehicle: Vehicle
    driver: CartDriver
    cart: CartService
    board: LockerBoardSim
    queue: EventQueue
    headers: HeaderFactory
    changed: asyncio.Event

    async def until(self, predicate: Callable[[], bool], timeout: float = WAIT) -> None:
        """Return once ``predicate()`` holds: virtual time moves on while the vehicle sleeps on it, and
        otherwise the test waits (real time) for the vehicle's next change."""
        async with asyncio.timeout(timeout):
            while True:
                self.changed.clear()
                await self.clock.settle()
                if predicate():
                    return
                if self.clock.pending:
                    await self.clock.run_for(0.05)
                else:
                    await self.changed.wait()

    async def settle_until(self, predicate: Callable[[], bool], timeout: float = WAIT) -> None:
        """Return once ``predicate()`` holds, letting tasks run but never moving virtual time."""
        async with asyncio.timeout(timeout):
            while not predicate():
                await self.clock.settle()

    async def run(self, order: Order) -> None:
        """Run ``order`` to its end."""
        await self.vehicle.receive_order(order)
        await self.until(lambda: not self.vehicle.busy)

    async def cart_until(self, predicate: Callable[[], bool], timeout: float = WAIT) -> None:
        """Return once ``predicate()`` holds, checked at every change of the cart service."""
        async with asyncio.timeout(timeout):
            async for _ in self.cart.changes():
                if predicate():
                    return

    def status(self, action_id: str) -> tuple[ActionStatus, str | None]:
        """An action's status and result description in the next state."""
        state = next(a for a in self.vehicle.state_body()["action_states"] if a.action_id == action_id)
        return state.action_status, state.result_description

    def errors(self) -> list[AgvError]:
        """``errors`` of the next state."""
        errors: list[AgvError] = self.vehicle.state_body()["errors"]
        return errors


def code_sheet(now: float) -> CodeSheet:
    """The cart's codes: one parcel for compartment 3 at the test's stop, valid for a day."""
    key = secrets.token_bytes(32)
    entry = CodeEntry(
        parcel="P-3",
        compartment=str(PARCEL_COMPARTMENT),
        window=WINDOW,
        stop=STOP,
        code_hash=hash_code(key, CART, WINDOW, CODE),
        tail_hash=None,
        expires_at=now + 86_400.0,
    )
    return CodeSheet(CART, key, now, (entry,))


@asynccontextmanager
async def cart_on_board(tmp_path: Path) -> AsyncIterator[tuple[CartService, LockerBoardSim, EventQueue]]:
    """The cart service (real clock) over the real locker driver and the simulated board on a pty, its
    parcel in compartment 3, the codes synced, the board answering; the door alarm after 0.3 s."""
    real = RealClock()
    board = LockerBoardSim(tmp_path, COMPARTMENTS)
    await board.start()
    board.load(PARCEL_COMPARTMENT, "P-3")
    locker = LockerDriver(LockerConfig(port=board.port, compartments=COMPARTMENTS, **FAST_BOARD), real)
    queue = EventQueue(tmp_path / "cart-events.db", CART)
    settings = CartSettings(cart=CART, door_alarm_s=0.3, remind_s=60.0, open_timeout_s=1.0)
    cart = CartService(settings, locker, queue, real)
    await cart.start()
    try:
        cart.load_codes(code_sheet(real.now()))
        async with asyncio.timeout(WAIT):
            async for _ in cart.changes():
                if locker.snapshot().health is BoardHealth.OK:
                    break
        yield cart, board, queue
    finally:
        await cart.stop()
        queue.close()
        await board.stop()


@pytest.fixture
async def rig(tmp_path: Path) -> AsyncIterator[Rig]:
    """The cart at node n0 of map ``m`` (a SimDriver on a virtual clock under a CartDriver); one retry of
    a failed action after 1 virtual second."""
    clock = VirtualClock(1_700_000_000.0)
    async with cart_on_board(tmp_path) as (cart, board, queue):
        base = SimDriver(clock, SimDriverConfig(speed=1.0, turn_rate=20.0), start=Pose(0, 0, 0, MAP))
        driver = CartDriver(base, cart)
        vehicle = Vehicle(driver, clock, VehicleSettings(map_id=MAP, action_retries=1, retry_delay=1.0))
        changed = asyncio.Event()
        vehicle.add_listener(changed.set)
        await vehicle.start()
        try:
            yield Rig(clock, vehicle, driver, cart, board, queue, master_headers(clock), changed)
        finally:
            await vehicle.stop()


def wait_for_pickup(action_id: str, timeout_s: float, compartment: int = PARCEL_COMPARTMENT) -> Action:
    """The dwell's ``waitForPickup`` node action, naming the stop and the window."""
    return act(
        action_id,
        "waitForPickup",
        BlockingType.SOFT,
        compartment=compartment,
        timeoutS=timeout_s,
        stop=STOP,
        window=WINDOW,
    )


async def test_open_compartment_pulses_the_lock_and_finishes(rig: Rig) -> None:
    """An order's ``openCompartment`` at its second node pulses that compartment's lock on the board
    (the door springs open) and ends FINISHED; the robot drives on afterwards."""
    order = line_order(
        rig.headers,
        last=2,
        node_actions={1: [act("o5", "openCompartment", BlockingType.SOFT, compartment=5)]},
    )
    await rig.run(order)
    assert rig.status("o5") == (ActionStatus.FINISHED, "compartment 5 unlocked")
    assert rig.board.pulses(5) == 1 and rig.board.door_open(5)
    assert [n for n in range(1, COMPARTMENTS + 1) if rig.board.pulses(n)] == [5]
    assert rig.vehicle.last_node_id == "n2"
    assert ACTION_FAILED not in {e.error_type for e in rig.errors()}


async def test_open_compartment_that_does_not_exist_fails(rig: Rig) -> None:
    """``openCompartment`` for a compartment the board lacks fails at once with the reason, reported
    as an ``actionFailed`` error; nothing is pulsed."""
    await rig.vehicle.receive_instant_actions(
        instant(rig.headers, act("o9", "openCompartment", BlockingType.SOFT, compartment=COMPARTMENTS + 1))
    )
    await rig.until(lambda: not rig.vehicle.busy)
    assert rig.status("o9") == (ActionStatus.FAILED, f"this cart has no compartment {COMPARTMENTS + 1}")
    assert [e.error_type for e in rig.errors()] == [ACTION_FAILED]
    assert all(rig.board.pulses(n) == 0 for n in range(1, COMPARTMENTS + 1))


async def test_open_compartment_retries_while_the_board_is_down(rig: Rig) -> None:
    """With the board's cable pulled, ``openCompartment`` answers RETRY and the cart reports the FATAL
    ``cartBoardOffline``; the board is back before the retry, so the retry pulses the lock and the action
    FINISHES; the FATAL error goes when the board answers again."""
    await rig.board.unplug()
    await rig.until(lambda: any(e.error_type == "cartBoardOffline" for e in rig.errors()))
    offline = next(e for e in rig.errors() if e.error_type == "cartBoardOffline")
    (alarm,) = rig.cart.alarms()
    assert offline.error_level is ErrorLevel.FATAL and alarm.kind == "board_offline"
    assert (offline.error_description or "").startswith(alarm.message.en.rstrip("."))
    await rig.vehicle.receive_instant_actions(
        instant(rig.headers, act("o2", "openCompartment", BlockingType.NONE, compartment=2))
    )
    await rig.settle_until(lambda: rig.clock.pending == 1)  # the retry delay after the first RETRY
    assert rig.status("o2")[0] is ActionStatus.RUNNING and rig.board.pulses(2) == 0
    await rig.board.replug()
    await rig.cart_until(lambda: rig.cart.board.snapshot().health is BoardHealth.OK)
    await rig.until(lambda: not rig.vehicle.busy)
    assert rig.status("o2") == (ActionStatus.FINISHED, "compartment 2 unlocked")
    assert rig.board.pulses(2) == 1
    await rig.until(lambda: not any(e.error_type == "cartBoardOffline" for e in rig.errors()))
    assert ACTION_FAILED not in {e.error_type for e in rig.errors()}


async def test_open_compartment_fails_after_retries_with_the_board_down(rig: Rig) -> None:
    """If the board stays down, ``openCompartment`` ends FAILED after the retry, saying why."""
    await rig.board.unplug()
    await rig.cart_until(lambda: rig.cart.board.snapshot().health is BoardHealth.LINK_DOWN)
    await rig.vehicle.receive_instant_actions(
        instant(rig.headers, act("o2", "openCompartment", BlockingType.NONE, compartment=2))
    )
    await rig.until(lambda: not rig.vehicle.busy)
    assert rig.status("o2") == (ActionStatus.FAILED, "compartment 2: the locker board does not answer")
    assert sorted(e.error_type for e in rig.errors()) == [ACTION_FAILED, "cartBoardOffline"]


async def test_wait_for_pickup_finishes_when_the_student_takes_the_parcel(rig: Rig) -> None:
    """At the dwell node the cart arrives at its stop for the window (an ``arrival`` event is queued
    and the code opens there); the student types the code, the door springs open, the parcel is taken
    and the door shut: ``waitForPickup`` FINISHES, the pickup is queued, and the cart departs as it
    drives on (no code opens on the way)."""
    order = line_order(rig.headers, last=2, node_actions={1: [wait_for_pickup("w3", 600.0)]})
    await rig.vehicle.receive_order(order)
    await rig.until(lambda: rig.status("w3")[0] is ActionStatus.RUNNING)
    assert (rig.cart.stop_id, rig.cart.window) == (STOP, WINDOW)
    arrivals = [(e.kind, e.body["stop"], e.body["window"]) for e in rig.queue.events()]
    assert arrivals == [("arrival", STOP, WINDOW)]
    assert not rig.vehicle.readout.driving and rig.vehicle.last_node_id == "n1"

    answer = await rig.cart.enter_code(CODE)
    assert (answer.result, answer.compartment) == ("open", PARCEL_COMPARTMENT)
    await rig.board.wait_for(lambda: rig.board.door_open(PARCEL_COMPARTMENT))
    await rig.cart_until(lambda: _phase(rig.cart, PARCEL_COMPARTMENT) is Phase.OPEN)
    assert rig.status("w3")[0] is ActionStatus.RUNNING  # the door is open but nothing is taken yet
    assert rig.board.take(PARCEL_COMPARTMENT) == "P-3"
    rig.board.close_door(PARCEL_COMPARTMENT)

    await rig.until(lambda: not rig.vehicle.busy)
    assert rig.status("w3") == (ActionStatus.FINISHED, TAKEN)
    assert [e.kind for e in rig.queue.events()] == ["arrival", "pickup"]
    assert rig.vehicle.last_node_id == "n2" and rig.cart.stop_id is None
    await rig.until(lambda: rig.errors() == [])  # a door-left-open alarm, if raised, went with the door


async def test_wait_for_pickup_fails_on_timeout_without_an_error(rig: Rig) -> None:
    """Nobody comes: ``waitForPickup`` ends FAILED with "timeout: ..." after ``timeoutS`` (on the cart's
    clock), raises no ``actionFailed`` error (an unclaimed parcel is not a fault), and the cart drives on
    with the parcel still inside."""
    order = line_order(rig.headers, last=2, node_actions={1: [wait_for_pickup("w3", 0.3)]})
    await rig.run(order)
    assert rig.status("w3") == (
        ActionStatus.FAILED,
        "timeout: parcel in compartment 3 not taken within 0.3 s",
    )
    assert rig.errors() == []
    assert rig.vehicle.last_node_id == "n2" and rig.board.occupied(PARCEL_COMPARTMENT)
    assert [e.kind for e in rig.queue.events()] == ["arrival"]


async def test_wait_for_pickup_with_nothing_to_wait_for(rig: Rig) -> None:
    """A ``waitForPickup`` for a compartment with no parcel on the code sheet FAILS at once (nobody could
    open it) instead of waiting: the order ends at once."""
    order = line_order(rig.headers, last=1, node_actions={1: [wait_for_pickup("w7", 600.0, compartment=7)]})
    await rig.run(order)
    assert rig.status("w7") == (
        ActionStatus.FAILED,
        "compartment 7: no parcel on the code sheet, nobody can open it",
    )


async def test_door_left_open_is_a_warning_while_it_lasts(rig: Rig) -> None:
    """The cart opens compartment 5 for its own hand-off; the door stays open past the alarm time: the
    state's ``errors`` gain a WARNING ``cartDoorLeftOpen`` naming compartment 5, which goes once the
    door is shut."""
    await rig.vehicle.receive_instant_actions(
        instant(rig.headers, act("o5", "openCompartment", BlockingType.NONE, compartment=5))
    )
    await rig.until(lambda: any(e.error_type == "cartDoorLeftOpen" for e in rig.errors()))
    (error,) = rig.errors()
    assert error.error_level is ErrorLevel.WARNING
    assert [(r.reference_key, r.reference_value) for r in error.error_references or []] == [
        ("compartment", "5")
    ]
    assert (error.error_description or "").startswith("compartment 5: door left open since ")
    rig.board.close_door(5)
    await rig.until(lambda: rig.errors() == [])
    assert rig.status("o5") == (ActionStatus.FINISHED, "compartment 5 unlocked")


def test_alarms_of_one_kind_make_one_error() -> None:
    """Two doors left open make one ``cartDoorLeftOpen`` naming both; every alarm kind has its own
    error type; only an offline board is FATAL."""
    t = 1_800_000_000.0
    text = Text("…", "Code entry locked after too many wrong codes.")
    alarms = [
        CartAlarm("door_left_open", t, text, 4),
        CartAlarm("code_lockout", t + 1, text),
        CartAlarm("door_left_open", t + 2, text, 6),
    ]
    assert alarm_conditions(alarms) == (
        Condition(
            "cartDoorLeftOpen",
            "compartment 4: door left open since 2027-01-15T08:00:00Z; "
            "compartment 6: door left open since 2027-01-15T08:00:02Z",
            ErrorLevel.WARNING,
            (("compartment", "4"), ("compartment", "6")),
        ),
        Condition(
            "cartCodeLockout",
            "Code entry locked after too many wrong codes (since 2027-01-15T08:00:01Z)",
            ErrorLevel.WARNING,
        ),
    )
    assert len({error_type for error_type, _ in ALARM_ERRORS.values()}) == len(ALARM_ERRORS) == 6
    assert [kind for kind, (_, level) in ALARM_ERRORS.items() if level is ErrorLevel.FATAL] == [
        "board_offline"
    ]


async def test_other_actions_go_to_the_base(rig: Rig) -> None:
    """Actions that are not the cart's go to the base driver unchanged and its answer stands."""
    base = rig.driver.base
    assert isinstance(base, SimDriver)
    pick = asyncio.create_task(rig.driver.run_action("pick", {"loadId": "x"}))
    await rig.clock.run_for(3.0)  # the simulated pick takes 2 s
    assert pick.result() is DriverResult.SUCCESS
    assert await rig.driver.run_action("makeCoffee", {}) is DriverResult.IMPOSSIBLE
    assert [(a.action_type, dict(a.parameters)) for a in base.action_log] == [
        ("pick", {"loadId": "x"}),
        ("makeCoffee", {}),
    ]


async def test_velocity_commands_and_top_speed_reach_the_base(rig: Rig) -> None:
    """The safety layer drives a cart like any robot: ``send_velocity`` moves the base (teleop, the zero
    of a stop), the cart is a ``VelocityDriver``, its top speed is the base's, and the supervisor's speed
    limit reaches the base."""
    base = rig.driver.base
    assert isinstance(base, SimDriver)
    assert isinstance(rig.driver, VelocityDriver)
    assert rig.driver.top_speed == base.top_speed
    rig.driver.send_velocity(0.5, 0.0)
    await rig.clock.run_for(2.0)
    rig.driver.send_velocity(0.0, 0.0)
    moved = rig.driver.readout().pose
    assert moved is not None and moved.x == pytest.approx(1.0, abs=0.05)
    await rig.clock.run_for(1.0)
    still = rig.driver.readout().pose
    assert still is not None and still.x == pytest.approx(moved.x)
    rig.driver.limit_speed(0.2)
    assert base.speed_limit == 0.2
    rig.driver.limit_speed(None)
    assert base.speed_limit is None


def _phase(cart: CartService, compartment: int) -> Phase | None:
    watch = cart.tracker.watch(compartment)
    return watch.phase if watch is not None else None


@pytest.mark.integration
async def test_dwell_through_mosquitto(
    tmp_path: Path, mqtt_broker: MosquittoBroker, shared_data: Path
) -> None:
    """Through a real Mosquitto, master control sends the dwell order; its states show ``waitForPickup``
    RUNNING at the stop, the door left open as a WARNING ``cartDoorLeftOpen`` while the student dawdles,
    then the error gone and the action FINISHED once the parcel is taken and the door shut; every state
    validates against the official 2.1 schema."""
    schemas, clock = OfficialSchemas(shared_data), RealClock()
    master = MqttClient(MqttConfig(host=mqtt_broker.host, port=mqtt_broker.port, keepalive=5))
    await master.connect()
    try:
        await _dwell_over_mqtt(tmp_path, mqtt_broker, master, schemas, clock)
    finally:
        await master.disconnect()


async def _dwell_over_mqtt(
    tmp_path: Path, broker: MosquittoBroker, master: MqttClient, schemas: OfficialSchemas, clock: RealClock
) -> None:
    states = master.subscribe(f"robopost/v2/{MANUFACTURER}/{SERIAL}/state")
    connections = master.subscribe(f"robopost/v2/{MANUFACTURER}/{SERIAL}/connection")
    await states.wait_granted()
    await connections.wait_granted()
    headers = HeaderFactory(MANUFACTURER, SERIAL, clock=clock)

    async def state(predicate: Callable[[State], bool]) -> State:
        async with asyncio.timeout(WAIT):
            async for message in states:
                schemas.check(TopicKind.STATE, message.json())
                received = parse_as(State, message.payload)
                if predicate(received):
                    return received
        raise AssertionError("the state subscription ended")

    def action(s: State, action_id: str) -> tuple[ActionStatus, str | None] | None:
        found = [(a.action_status, a.result_description) for a in s.action_states if a.action_id == action_id]
        return found[0] if found else None

    config = parse_config(
        {
            "manufacturer": MANUFACTURER,
            "serial_number": SERIAL,
            "map_id": MAP,
            "mqtt": {"host": broker.host, "port": broker.port, "keepalive": 5},
        }
    )
    async with cart_on_board(tmp_path) as (cart, board, _):
        base = SimDriver(
            clock, SimDriverConfig(speed=20.0, turn_rate=50.0, step=0.02), start=Pose(0, 0, 0, MAP)
        )
        async with Agent(config, CartDriver(base, cart), make_mqtt_client(config, clock), clock):
            async with asyncio.timeout(WAIT):  # the robot subscribes to its orders before it says ONLINE
                async for message in connections:
                    if parse_as(Connection, message.payload).connection_state is ConnectionState.ONLINE:
                        break
            order = line_order(headers, last=1, node_actions={1: [wait_for_pickup("w3", 600.0)]})
            await master.publish(
                f"robopost/v2/{MANUFACTURER}/{SERIAL}/order", to_bytes(order), qos=1, wait=True
            )
            await state(lambda s: action(s, "w3") == (ActionStatus.RUNNING, None))
            assert (await cart.enter_code(CODE)).result == "open"
            dawdling = await state(lambda s: any(e.error_type == "cartDoorLeftOpen" for e in s.errors))
            (error,) = dawdling.errors
            assert error.error_level is ErrorLevel.WARNING and action(dawdling, "w3") == (
                ActionStatus.RUNNING,
                None,
            )
            board.take(PARCEL_COMPARTMENT)
            board.close_door(PARCEL_COMPARTMENT)
            done = await state(lambda s: action(s, "w3") == (ActionStatus.FINISHED, TAKEN) and not s.errors)
            assert done.last_node_id == "n1" and not done.node_states
