"""Test helpers for the elevator bridge: an in-memory lift that moves in virtual time, a world that
steps the pure session logic against it, and a pump that runs MQTT scenarios in virtual time.

``FakeLift`` is the equipment (2 s per floor, doors 3 s, like the simulated controllers): it obeys
calls and door commands, closes its doors by itself after a dwell unless held, reverses closing doors
when they are blocked (and reports ``DOOR_BLOCKED``), goes to its fire floor in FIRE mode and stands
still in EMERGENCY / OFFLINE. ``FakeLiftDriver`` wraps it as a ``LiftDriver`` whose physics tick on a
``Clock``. ``PureWorld`` runs a ``Building`` against fake lifts without any I/O. ``Pump`` moves a
``VirtualClock`` on while a scenario talks over a real broker, delivering every message in flight
(``MqttBarrier``) before each step, so virtual time never runs ahead of the messages. The fixtures
``make_rig`` / ``rig`` run a ``BridgeService`` with fake lifts on a real Mosquitto (import them into a
``conftest.py``).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import math
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import pytest

from elevator_bridge.config import BridgeConfig, parse_config
from elevator_bridge.doors import credential_digest
from elevator_bridge.drivers.base import DriverResult, LiftStatus
from elevator_bridge.service import BridgeService
from elevator_bridge.sessions import Building, LiftCommand, LiftSettings, Verb
from interfaces.clock import Clock, VirtualClock
from interfaces.lift import (
    DoorState,
    LiftMode,
    LiftRequest,
    LiftRequestType,
    MotionState,
    Passage,
    SessionEnd,
)
from interfaces.mqtt import MqttClient, MqttConfig, Subscription
from orchestrator.facilities import Facilities
from sim.mosquitto import MosquittoBroker

STILL = {LiftMode.EMERGENCY, LiftMode.OFFLINE}
T = TypeVar("T")


@dataclass
class FakeLift:
    """A lift's equipment, stepped by ``step(dt)``. Positions are floor indexes (0 = lowest)."""

    floors: list[str]
    floor_travel_s: float = 2.0
    door_s: float = 3.0
    dwell_s: float = 5.0
    fire_floor: str | None = None
    pos: float = 0.0
    door_open: float = 0.0  # 0 closed .. 1 open
    door_dir: int = 0  # +1 opening, -1 closing
    hold: bool = False
    dwell_left: float = 0.0
    calls: list[int] = field(default_factory=list)
    mode: LiftMode = LiftMode.HUMAN
    blocked: bool = False
    reversals: int = 0
    log: list[tuple[str, str | None]] = field(default_factory=list)

    # ---- verbs (what a driver sends) ------------------------------------------------------------

    def call(self, floor: str) -> DriverResult:
        self.log.append(("call", floor))
        if floor not in self.floors or self.mode in (LiftMode.FIRE, *STILL):
            return DriverResult.IMPOSSIBLE
        target = self.floors.index(floor)
        if target not in self.calls:
            self.calls.append(target)
        return DriverResult.SUCCESS

    def open_door(self, hold: bool = False) -> DriverResult:
        self.log.append(("open_hold" if hold else "open", None))
        if self.mode in (LiftMode.FIRE, *STILL):
            return DriverResult.IMPOSSIBLE
        if self.moving:
            return DriverResult.RETRY
        self.hold = hold
        self.door_dir = 1 if self.door_open < 1.0 else 0  # also stops doors that were closing
        return DriverResult.SUCCESS

    def close_door(self) -> DriverResult:
        self.log.append(("close", None))
        self.hold = False
        if self.mode in (LiftMode.FIRE, *STILL):
            return DriverResult.IMPOSSIBLE
        if self.door_open > 0.0:
            self.door_dir = -1
        return DriverResult.SUCCESS

    # ---- faults ---------------------------------------------------------------------------------

    def set_mode(self, mode: LiftMode) -> None:
        """FIRE: recall to the fire floor (doors then stay open); EMERGENCY/OFFLINE: stand still."""
        self.mode = mode
        if mode is LiftMode.FIRE:
            self.hold = False
            self.calls = [self.floors.index(self.fire_floor or self.floors[0])]
            if self.door_open > 0:
                self.door_dir = -1

    # ---- physics --------------------------------------------------------------------------------

    @property
    def moving(self) -> bool:
        return bool(self.calls) and abs(self.pos - self.calls[0]) > 1e-9 and self.door_open == 0.0

    def step(self, dt: float) -> None:
        """Move the doors and the cabin ``dt`` seconds on."""
        if self.mode in STILL:
            return
        self._step_doors(dt)
        if self.door_open == 0.0 and self.door_dir == 0 and self.calls:
            self._step_cabin(dt)
        elif self.calls and self.door_open == 1.0 and not self.hold and self.mode is not LiftMode.FIRE:
            self.dwell_left = min(self.dwell_left, 0.0)  # a call is waiting: close soon

    def _step_doors(self, dt: float) -> None:
        if self.door_dir == -1 and self.blocked:
            self.door_dir, self.reversals = 1, self.reversals + 1  # the door edge reopens the doors
        if self.door_dir:
            self.door_open = min(1.0, max(0.0, self.door_open + self.door_dir * dt / self.door_s))
            if self.door_open in (0.0, 1.0):
                self.door_dir = 0
                self.dwell_left = self.dwell_s
            return
        at_fire_floor = self.mode is LiftMode.FIRE and not self.calls
        if self.door_open == 1.0 and not self.hold and not at_fire_floor:
            self.dwell_left -= dt
            if self.dwell_left <= 0:
                self.door_dir = -1

    def _step_cabin(self, dt: float) -> None:
        target = self.calls[0]
        move = dt / self.floor_travel_s
        if abs(target - self.pos) <= move + 1e-9:
            self.pos = float(target)
            self.calls.pop(0)
            self.door_dir = 1  # arrived: open
        else:
            self.pos += math.copysign(move, target - self.pos)

    def status(self, now: float) -> LiftStatus:
        """What the equipment reports now."""
        if self.door_open == 0.0:
            door = DoorState.CLOSED
        elif self.door_open == 1.0 and self.door_dir == 0:
            door = DoorState.OPEN
        else:
            door = DoorState.MOVING
        motion = MotionState.STOPPED
        if self.calls and self.door_open == 0.0 and abs(self.pos - self.calls[0]) > 1e-9:
            motion = MotionState.UP if self.calls[0] > self.pos else MotionState.DOWN
        faults = ("DOOR_BLOCKED",) if self.blocked and self.reversals else ()
        return LiftStatus(now, self.floors[round(self.pos)], motion, door, self.mode, faults)


class FakeLiftDriver:
    """``FakeLift`` as a ``LiftDriver``: physics and reports every ``tick_s`` of the clock's time."""

    def __init__(self, lift: FakeLift, clock: Clock, tick_s: float = 0.5) -> None:
        self.lift = lift
        self.floors = lift.floors
        self.clock = clock
        self.tick_s = tick_s
        self.silent = False
        self.commands = 0
        self._latest: LiftStatus | None = None
        self._queues: list[asyncio.Queue[LiftStatus]] = []
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._report()
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def call(self, floor: str) -> DriverResult:
        self.commands += 1
        return self.lift.call(floor)

    async def open_door(self, hold: bool = False) -> DriverResult:
        self.commands += 1
        return self.lift.open_door(hold)

    async def close_door(self) -> DriverResult:
        self.commands += 1
        return self.lift.close_door()

    def status(self) -> LiftStatus | None:
        return self._latest

    def statuses(self) -> AsyncIterator[LiftStatus]:
        queue: asyncio.Queue[LiftStatus] = asyncio.Queue()
        self._queues.append(queue)
        return self._iterate(queue)

    @staticmethod
    async def _iterate(queue: asyncio.Queue[LiftStatus]) -> AsyncIterator[LiftStatus]:
        while True:
            yield await queue.get()

    async def _run(self) -> None:
        while True:
            await self.clock.sleep(self.tick_s)
            self.lift.step(self.tick_s)
            self._report()

    def _report(self) -> None:
        if self.silent:
            return
        self._latest = self.lift.status(self.clock.now())
        for queue in self._queues:
            queue.put_nowait(self._latest)


def apply(lift: FakeLift, command: LiftCommand) -> DriverResult:
    """Send one bridge command to a fake lift."""
    if command.verb is Verb.CALL:
        return lift.call(command.floor or "")
    if command.verb is Verb.HOLD_OPEN:
        return lift.open_door(hold=True)
    return lift.close_door()


@dataclass
class PureWorld:
    """A ``Building`` and its fake lifts in virtual time, without I/O: ``run(seconds)`` steps both."""

    building: Building
    lifts: dict[str, FakeLift]
    clock: VirtualClock
    dt: float = 0.5
    silent: set[str] = field(default_factory=set)
    on_command: Callable[[LiftCommand], None] | None = None
    bots: list[Bot] = field(default_factory=list)

    @classmethod
    def make(
        cls, settings: list[LiftSettings], name: str = "B", start: float = 1_000.0, **lift_kw: float
    ) -> PureWorld:
        """A building of fake lifts at their lowest floor, each with its first report taken."""
        clock = VirtualClock(start)
        building = Building(name, settings, clock)
        lifts = {
            s.name: FakeLift(list(s.floors), fire_floor=s.fire_floor, **lift_kw)  # type: ignore[arg-type]
            for s in settings
        }
        world = cls(building, lifts, clock)
        world.report()
        return world

    def report(self) -> None:
        """Every lift that is not silent reports its status."""
        for name, lift in self.lifts.items():
            if name not in self.silent:
                self.building.status(name, lift.status(self.clock.now()))
        self.flush()

    def flush(self) -> None:
        """Carry the building's commands to the lifts and their answers back, until none is left."""
        for _ in range(100):
            commands = self.building.take_commands()
            if not commands:
                return
            for command in commands:
                if self.on_command is not None:
                    self.on_command(command)
                self.building.command_result(command, apply(self.lifts[command.lift], command))
        raise AssertionError("the building keeps sending commands")

    def step(self) -> None:
        """One ``dt``: time, physics, reports, the building's tick, commands."""
        self.clock.advance(self.dt)
        for lift in self.lifts.values():
            lift.step(self.dt)
        self.report()
        for bot in self.bots:
            bot.beat()
        self.building.tick()
        self.flush()

    def run(self, seconds: float, until: Callable[[], bool] | None = None) -> float:
        """Step for ``seconds`` (or until ``until()`` holds); return the time it took."""
        start = self.clock.now()
        while self.clock.now() - start < seconds - 1e-9:
            if until is not None and until():
                break
            self.step()
        return self.clock.now() - start


@dataclass
class Bot:
    """A robot in a ``PureWorld`` speaking the lift protocol; it repeats its request every ``beat_s``."""

    world: PureWorld
    robot: str
    session: str
    lift: str
    destination: str
    door: DoorState = DoorState.OPEN
    passage: Passage = Passage.OUTSIDE
    eta: float | None = None
    alive: bool = True
    beat_s: float = 2.0
    last_sent: float = -math.inf
    ended: bool = False

    def __post_init__(self) -> None:
        self.world.bots.append(self)

    def send(self, **changes: object) -> None:
        """Change what the robot says (destination, door, passage, eta) and send it now."""
        for key, value in changes.items():
            setattr(self, key, value)
        self._send(LiftRequestType.AGV_MODE)

    def end(self) -> None:
        """END_SESSION (the robot is out)."""
        self.passage = Passage.OUTSIDE
        self._send(LiftRequestType.END_SESSION)
        self.ended = True

    def beat(self) -> None:
        """Repeat the last request when due (while alive and not ended)."""
        if self.alive and not self.ended and self.world.clock.now() - self.last_sent >= self.beat_s - 1e-9:
            self._send(LiftRequestType.AGV_MODE)

    def _send(self, kind: LiftRequestType) -> None:
        now = self.world.clock.now()
        request = LiftRequest(
            building=self.world.building.name,
            lift_name=self.lift,
            session_id=self.session,
            robot_id=self.robot,
            request_type=kind,
            destination_floor=self.destination,
            door_state=self.door,
            passage=self.passage,
            request_time=now,
            eta=self.eta,
        )
        self.last_sent = now
        self.world.building.request(request)
        self.world.flush()

    @property
    def served_by(self) -> str | None:
        """The lift bound to this robot's session."""
        return self.world.building.lift_of(self.session)

    def doors_open_at(self, floor: str) -> bool:
        """The lift serving this session stands at ``floor`` with open doors."""
        lift = self.served_by
        if lift is None:
            return False
        st = self.world.lifts[lift].status(self.world.clock.now())
        return st.floor == floor and st.door is DoorState.OPEN and st.motion is MotionState.STOPPED

    def end_record(self) -> SessionEnd | None:
        """How the session ended, from the states of the building's lifts."""
        for lift in self.world.building.lifts:
            record = self.world.building.state(lift).end_of(self.session)
            if record is not None:
                return record
        return None


def settings(name: str, floors: int = 6, prefix: str = "F", **kw: object) -> LiftSettings:
    """A lift serving ``prefix``1 .. ``prefix``N with the fire floor at the bottom."""
    names = tuple(f"{prefix}{i}" for i in range(1, floors + 1))
    return LiftSettings(name=name, floors=names, fire_floor=names[0], **kw)  # type: ignore[arg-type]


class MqttBarrier:
    """Makes sure every message one client published has reached the other (both ways).

    A probe published by ``a`` after its other messages reaches ``b`` after them (one connection, one
    subscriber, QoS 1: in order), so once ``b`` has the probe, ``b`` has everything ``a`` sent before.
    """

    _ids = itertools.count(1)

    def __init__(self, a: MqttClient, b: MqttClient) -> None:
        self.a, self.b = a, b
        self.root = f"test/barrier/{next(self._ids)}"
        self._at_b = b.subscribe(f"{self.root}/to-b", qos=1)
        self._at_a = a.subscribe(f"{self.root}/to-a", qos=1)
        self._seq = 0

    async def cross(self, attempts: int = 10) -> None:
        """One probe each way; returns once both arrived. A probe is sent again when it does not come
        back within 0.5 s (a subscription the broker has not taken yet loses the first ones)."""
        for sender, subscription, leg in ((self.a, self._at_b, "to-b"), (self.b, self._at_a, "to-a")):
            for _ in range(attempts):
                self._seq += 1
                await sender.publish(f"{self.root}/{leg}", str(self._seq), qos=1)
                if await self._receive(subscription, str(self._seq).encode()):
                    break
            else:
                raise AssertionError(f"MQTT barrier: no probe came through {leg} in {attempts} attempts")

    @staticmethod
    async def _receive(subscription: Subscription, probe: bytes) -> bool:
        with contextlib.suppress(TimeoutError):
            while (await asyncio.wait_for(subscription.get(), 0.5)).payload != probe:
                pass
            return True
        return False


class Pump:
    """Runs a scenario while moving virtual time on in ``step_s`` steps; before each step every
    message in flight is delivered (``barriers``) and every command answered (``idle``)."""

    def __init__(
        self,
        clock: VirtualClock,
        barriers: list[MqttBarrier],
        idle: Callable[[], Awaitable[None]],
        step_s: float = 0.5,
    ) -> None:
        self.clock = clock
        self.barriers = barriers
        self.idle = idle
        self.step_s = step_s

    async def sync(self) -> None:
        """Deliver what is in flight and let everybody react (no virtual time passes)."""
        for _ in range(2):
            for barrier in self.barriers:
                await barrier.cross()
            await self.clock.settle()
            await asyncio.wait_for(self.idle(), 5.0)
            await self.clock.settle()

    async def run(self, scenario: Awaitable[T], limit_s: float = 600.0) -> T:
        """Run ``scenario`` to its end (virtual time passing), or fail after ``limit_s`` virtual seconds."""
        task = asyncio.ensure_future(scenario)
        start = self.clock.now()
        try:
            while True:
                await self.sync()
                if task.done():
                    return task.result()
                if self.clock.now() - start > limit_s:
                    raise AssertionError(f"the scenario did not finish within {limit_s} virtual seconds")
                await self.clock.run_for(self.step_s)
        finally:
            if not task.done():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    async def wait(self, seconds: float) -> None:
        """Let ``seconds`` of virtual time pass, in steps, keeping messages caught up."""
        end = self.clock.now() + seconds
        while self.clock.now() < end - 1e-9:
            await self.sync()
            await self.clock.run_for(min(self.step_s, end - self.clock.now()))
        await self.sync()


# ---- a bridge service on a real broker, with fake lifts and facilities clients ---------------------------


FLOORS = [f"B-{n}F" for n in range(1, 7)]
SECRET = "s3cret-of-robot-1"


def bridge_config(lifts: int = 2, **session: Any) -> BridgeConfig:
    """Building B: ``lifts`` lifts over B-1F..B-6F, a door, a gate knowing robot-1's credential."""
    return parse_config(
        {
            "building": "B",
            "tick_s": 0.5,
            "resume_grace_s": 0,
            "session": {"heartbeat_timeout_s": 8, "status_timeout_s": 4, "door_hold_max_s": 40, **session},
            "lifts": {
                f"B-L{i}": {
                    "floors": FLOORS,
                    "fire_floor": "B-1F",
                    "driver": {"kind": "iot_mqtt", "box_id": f"L{i}"},
                }
                for i in range(1, lifts + 1)
            },
            "doors": {"B-1F-door": {"iot": "b/1f/door"}},
            "gates": {"B-gate": {"iot": "b/gate", "credentials": {"robot-1": credential_digest(SECRET)}}},
        }
    )


@dataclass
class Rig:
    """A running bridge with fake lifts, two robots' facilities clients and a pump for virtual time."""

    clock: VirtualClock
    service: BridgeService
    lifts: dict[str, FakeLift]
    drivers: dict[str, FakeLiftDriver]
    bridge_mqtt: MqttClient
    robot_mqtt: MqttClient
    pump: Pump

    def robot(self, robot_id: str, heartbeat_s: float = 2.0) -> Facilities:
        """A facilities client for ``robot_id`` on the robots' connection."""
        return Facilities(self.robot_mqtt, self.clock, robot_id, heartbeat_s=heartbeat_s)


@pytest.fixture
async def make_rig(mqtt_broker: MosquittoBroker) -> AsyncIterator[Callable[..., Awaitable[Rig]]]:
    """Start rigs: ``await make_rig(config)``; everything is stopped at the end."""
    stops: list[Callable[[], Awaitable[None]]] = []

    async def make(config: BridgeConfig | None = None) -> Rig:
        config = config or bridge_config()
        clock = VirtualClock(1_767_000_000.0)
        mqtt = MqttConfig(host=mqtt_broker.host, port=mqtt_broker.port)
        bridge_mqtt, robot_mqtt = MqttClient(mqtt), MqttClient(mqtt)
        for client in (bridge_mqtt, robot_mqtt):
            await client.connect()
            stops.append(client.disconnect)
        lifts = {
            name: FakeLift(list(lift.floors), fire_floor=lift.fire_floor)
            for name, lift in config.lifts.items()
        }
        drivers = {name: FakeLiftDriver(lift, clock) for name, lift in lifts.items()}
        service = BridgeService(config, bridge_mqtt, drivers, clock)
        await service.start()
        stops.append(service.stop)
        pump = Pump(clock, [MqttBarrier(bridge_mqtt, robot_mqtt)], service.idle)
        await pump.sync()
        return Rig(clock, service, lifts, drivers, bridge_mqtt, robot_mqtt, pump)

    yield make
    for stop in reversed(stops):
        await stop()


@pytest.fixture
async def rig(make_rig: Callable[..., Awaitable[Rig]]) -> Rig:
    """A bridge for building B with two fake lifts at B-1F."""
    return await make_rig()
