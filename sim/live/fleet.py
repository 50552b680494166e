"""Simulated hardware in live mode: robot agents on simulated bases, delivery carts with their locker
boards, lift controllers, station staff and students, one process.

``python -m sim.live.fleet --config LIVE.yaml`` runs, until SIGINT/SIGTERM, everything a live file
lists, all on one ``ScaledClock`` (``time_factor`` × real speed)::

    time_factor: 10            # virtual seconds per real second
    epoch: null                # virtual epoch seconds at ``origin`` (null: the real time then)
    origin: null               # real epoch seconds of the start instant (null: when the process starts)
    mqtt: {host: 127.0.0.1, port: 1884}
    lift_tick_s: 0.5           # virtual seconds between steps of a simulated lift car
    robots: [robots/indoor_adm_1.yaml]   # agent files (robots.agent.config) of plain robots
    lifts:
      - {kind: iot_mqtt, name: ADM-L1, floors: [ADM-1F, ...], labels: ["1", ...], topic_prefix: liftlink}
      - {kind: modbus_relay, name: TEA-L2, floors: [TEA-1F, ...], directory: pty/TEA-L2}
    campus: ../maps/campuses/neijiang.yaml   # stop labels (cart screens; the SMS name stops by label)
    carts:                     # delivery carts (sim.live.carts); not also under robots
      - agent: robots/cart_1.yaml        # the cart's VDA 5050 agent file
        cart: cart_1                     # its id at the orchestrator (security.carts)
        compartments: 50                 # 1-30 S, 31-45 M, 46-50 L (sim.live.carts.compartment_sizes)
        orchestrator: {url: "http://127.0.0.1:8080", token: "<security.carts token>"}   # or null
        data_dir: var/cart_1             # event queue, last code sync, the locker board's pty pair
        screen_port: 8091                # optional: the kiosk page on 127.0.0.1 (0: any free port)
        staff_pin: "246810"              # staff mode PIN (the simulated staff use it too)
        sync_s: 30                       # virtual seconds between code syncs
        station_nodes: [station]         # optional: nodes where the cart is "at the station"
    people:                    # optional (sim.live.people)
      gateway: {host: 127.0.0.1, port: 8095}   # the SMS gateway: notify.webhook_url = http://HOST:PORT/sms
      secret: "<notify.webhook_secret>"
      seed: 1
      forget_share: 0.1        # students who type a wrong code first
      no_show_share: 0.05      # students who never come
      first_half_share: 0.8    # students who come in the first half of what is left of the window
      staff: true              # station staff fill and empty the compartments
    station: {url: "http://127.0.0.1:8080", token: "<station token>"}   # optional (sim.live.station)

Relative paths are taken from the file's folder. Each robot is the real VDA 5050 agent
(``robots.agent.agent.Agent``) on a ``SimDriver``, with its own MQTT connection, last will and
ONLINE/OFFLINE, exactly as ``robopost agent --config`` would run it: only the process is shared.
Each cart is the real cart stack (``sim.live.carts.LiveCart``): a simulated Modbus locker board on a
pty pair, ``LockerDriver``, ``CartService`` with its on-disk event queue and HTTP link to the
orchestrator, and the agent on ``CartDriver`` — as ``robopost cart --config`` composes it. Each lift
is a ``sim.lift.LiftCar`` stepped on the scaled clock behind its controller's real protocol: a
LiftLink IoT box on MQTT (``sim.lift_iot``; its status heartbeat stays in real seconds,
``status_period_s``, because the bridge times the box out in real seconds) or a Modbus RTU relay
board on a pty pair (``sim.lift_modbus``; the bridge opens ``directory/line``). The people
(``sim.live.people``) get the orchestrator's SMS through their gateway and act on the carts.

Why one process for the fleet: nine agents are nine Python interpreters (~60 MB and a second of
start-up each) doing almost nothing; in one process they share the interpreter and the clock, and
start in parallel. Each keeps its own broker session, so the orchestrator cannot tell the difference.

Start order: lifts; robots and carts in parallel (each cart's board answering its driver); people
(the SMS gateway listening); the station feeder. Then the process prints ``READY_LINE`` on stdout
(the launcher's signal). Stop goes in reverse order. A file that cannot be used ends it with exit
code 2 and one line per problem, a failed start-up (broker unreachable, socat missing, a port taken)
with exit code 1.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from collections.abc import Awaitable, Coroutine
from pathlib import Path
from typing import Annotated, Any, Literal, NamedTuple

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from interfaces.clock import Clock, RealClock, ScaledClock, within
from interfaces.mqtt import MqttConfig, MqttError
from interfaces.tasks import cancel_and_wait
from maps.errors import MapError
from robots.agent.agent import Agent, make_driver, make_mqtt_client
from robots.agent.config import AgentConfig, AgentConfigError, load_config
from robots.cart.service import Text
from sim.lift import LiftCar, LiftCarConfig
from sim.lift_iot import IotBoxSim
from sim.lift_modbus import RelayBoardSim
from sim.live.carts import DEFAULT_COMPARTMENTS, DEFAULT_STAFF_PIN, LiveCart, LiveCartSpec
from sim.live.people import People, PeopleSettings
from sim.live.station import StationFeeder, StationSection
from sim.pty import PtyPairError

READY_LINE = "sim.live: ready"
"""Printed on stdout once every lift, robot, cart and the SMS gateway of the file is up."""

EXIT_BAD_CONFIG = 2
EXIT_FAILED = 1

log = logging.getLogger("robopost.sim.live")


class LiveConfigError(Exception):
    """The live file cannot be used (one line per problem, naming the file and the setting)."""


class _Section(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class MqttSection(_Section):
    """The broker the robots and the IoT lift boxes connect to (anonymous on loopback in the demo)."""

    host: str = "127.0.0.1"
    port: int = Field(default=1884, ge=1, le=65535)
    username: str | None = None
    password: str | None = None


class _LiftBase(_Section):
    name: str = Field(min_length=1)
    floors: tuple[str, ...] = Field(min_length=2)
    floor_travel_s: float = Field(default=2.0, gt=0)
    door_time_s: float = Field(default=3.0, gt=0)

    def car(self) -> LiftCar:
        """The simulated car (parked at its lowest floor, doors closed)."""
        return LiftCar(
            LiftCarConfig(self.floors, floor_travel_s=self.floor_travel_s, door_move_s=self.door_time_s)
        )


class IotLiftSection(_LiftBase):
    """A lift behind a LiftLink IoT box on MQTT (``name`` is the box id)."""

    kind: Literal["iot_mqtt"]
    labels: tuple[str, ...] | None = None
    topic_prefix: str = "liftlink"
    status_period_s: float = Field(default=1.0, gt=0)  # real seconds


class RelayLiftSection(_LiftBase):
    """A lift behind a Modbus RTU relay board on a pty pair in ``directory`` (the bridge opens ``line``)."""

    kind: Literal["modbus_relay"]
    directory: Path
    device_id: int = Field(default=1, ge=1, le=247)
    baudrate: int = Field(default=19200, gt=0)


LiftSection = Annotated[IotLiftSection | RelayLiftSection, Field(discriminator="kind")]


class CartLinkSection(_Section):
    """The orchestrator's cart API and this cart's token (``security.carts``)."""

    url: str = Field(min_length=1)
    token: str = Field(min_length=1)  # the orchestrator judges it (security.carts)


class CartSection(_Section):
    """A cart with its locker board, cart service and agent (``sim.live.carts``)."""

    agent: Path
    cart: str = Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_.-]+$")
    compartments: int = Field(default=DEFAULT_COMPARTMENTS, ge=1, le=64)
    orchestrator: CartLinkSection | None = None
    data_dir: Path
    screen_port: int | None = Field(default=None, ge=0, le=65535)  # 0: any free port
    staff_pin: str = Field(default=DEFAULT_STAFF_PIN, pattern=r"^[0-9]{4,12}$")
    sync_s: float = Field(default=30.0, gt=0)
    station_nodes: tuple[str, ...] = ()


class GatewaySection(_Section):
    """Where the simulated SMS gateway listens (loopback)."""

    host: str = "127.0.0.1"
    port: int = Field(default=8095, ge=0, le=65535)


class PeopleSection(_Section):
    """Simulated students (with their SMS gateway) and station staff (``sim.live.people``)."""

    gateway: GatewaySection = Field(default_factory=GatewaySection)
    secret: str = Field(min_length=1)
    seed: int = 1
    forget_share: float = Field(default=0.1, ge=0, le=1)
    no_show_share: float = Field(default=0.05, ge=0, le=1)
    first_half_share: float = Field(default=0.8, ge=0, le=1)
    staff: bool = True

    def settings(self) -> PeopleSettings:
        """The people's behaviour."""
        return PeopleSettings(
            seed=self.seed,
            forget_share=self.forget_share,
            no_show_share=self.no_show_share,
            first_half_share=self.first_half_share,
            staff=self.staff,
        )


class LiveConfig(_Section):
    """A live file (see the module docstring)."""

    time_factor: float = Field(default=1.0, gt=0, le=1000)
    epoch: float | None = None
    origin: float | None = None
    mqtt: MqttSection = Field(default_factory=MqttSection)
    lift_tick_s: float = Field(default=0.1, gt=0)
    robots: tuple[Path, ...] = ()
    lifts: tuple[LiftSection, ...] = ()
    campus: Path | None = None
    carts: tuple[CartSection, ...] = ()
    people: PeopleSection | None = None
    station: StationSection | None = None

    def clock(self) -> ScaledClock:
        """The clock every simulated part of this file runs on."""
        return ScaledClock(self.time_factor, epoch=self.epoch, origin=self.origin)


def load_live_config(path: Path) -> tuple[LiveConfig, tuple[AgentConfig, ...]]:
    """The live file at ``path`` and every agent file it runs: the plain robots', then the carts'
    (``LiveConfigError`` naming each problem). To run the file use ``load_live``, which keeps the
    carts apart: a cart's agent is not a plain robot."""
    live = load_live(path)
    return live.config, live.robots + tuple(c.agent for c in live.carts if c.agent is not None)


class LiveFile(NamedTuple):
    """A checked live file: the settings, the plain robots' agent files and the carts."""

    config: LiveConfig
    robots: tuple[AgentConfig, ...]
    carts: tuple[LiveCartSpec, ...]


def load_live(path: Path) -> LiveFile:
    """The live file at ``path`` with its robots' and carts' agent files and the campus's stop labels;
    ``LiveConfigError`` naming each problem (one line each)."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise LiveConfigError(f"{path}: cannot read: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise LiveConfigError(f"{path}: not valid YAML: {' '.join(str(exc).split())}") from None
    if not isinstance(data, dict):
        raise LiveConfigError(f"{path}: must hold a mapping, not {type(data).__name__}")
    try:
        config = LiveConfig.model_validate(data)
    except ValidationError as exc:
        lines = [
            f"{path}: {'.'.join(map(str, e['loc'])) or 'file'}: {e['msg'].removeprefix('Value error, ')}"
            for e in exc.errors(include_url=False)
        ]
        raise LiveConfigError("\n".join(lines)) from None
    config = _relative_to(config, path.parent)
    robots: list[AgentConfig] = []
    problems: list[str] = []
    for robot_file in config.robots:
        try:
            robots.append(load_config(robot_file))
        except AgentConfigError as exc:
            problems.append(str(exc))
    cart_agents: list[AgentConfig] = []
    for cart in config.carts:
        try:
            cart_agents.append(load_config(cart.agent))
        except AgentConfigError as exc:
            problems.append(str(exc))
    labels: dict[str, Text] = {}
    if config.campus is not None:
        try:
            labels = _stop_labels(config.campus)
        except (OSError, ValueError, MapError) as exc:
            problems.append(f"{path}: campus: cannot load {config.campus}: {' '.join(str(exc).split())}")
    problems += _clashes(path, config, robots, cart_agents)
    if config.station is not None and config.station.campus is None:
        problems.append(f"{path}: station.campus: needed (or campus: for the whole file)")
    if config.people is not None and config.carts and config.campus is None:
        problems.append(f"{path}: campus: needed with people and carts (an SMS names its stop by its label)")
    if problems:
        raise LiveConfigError("\n".join(problems))
    carts = tuple(
        _cart_spec(cart, agent, labels) for cart, agent in zip(config.carts, cart_agents, strict=True)
    )
    return LiveFile(config, tuple(robots), carts)


def _relative_to(config: LiveConfig, here: Path) -> LiveConfig:
    """``config`` with every relative path taken from ``here`` (the file's folder)."""
    lifts = tuple(
        lift.model_copy(update={"directory": here / lift.directory})
        if isinstance(lift, RelayLiftSection)
        else lift
        for lift in config.lifts
    )
    carts = tuple(
        cart.model_copy(update={"agent": here / cart.agent, "data_dir": here / cart.data_dir})
        for cart in config.carts
    )
    campus = here / config.campus if config.campus is not None else None
    station = config.station.resolved(here) if config.station is not None else None
    if station is not None and station.campus is None and campus is not None:
        station = station.model_copy(update={"campus": campus})  # the file's campus serves the station too
    return config.model_copy(
        update={
            "station": station,
            "robots": tuple(here / r for r in config.robots),
            "lifts": lifts,
            "carts": carts,
            "campus": campus,
        }
    )


def _clashes(
    path: Path, config: LiveConfig, robots: list[AgentConfig], cart_agents: list[AgentConfig]
) -> list[str]:
    """Problems of the file as a whole: serials, cart ids, data folders or ports used twice; people
    without carts or the reverse is fine, a secret is checked by the section."""
    problems: list[str] = []
    gateway = config.people.gateway.port if config.people is not None else 0
    serials = [r.serial_number for r in robots]
    twice = sorted({s for s in serials if serials.count(s) > 1})
    if twice:
        problems.append(f"{path}: robots: serial numbers used more than once: {', '.join(twice)}")
    both = sorted({a.serial_number for a in cart_agents} & set(serials))
    if both:
        problems.append(f"{path}: carts: agents also listed under robots: {', '.join(both)}")
    ports = [str(c.screen_port) for c in config.carts if c.screen_port]
    if gateway:
        ports.append(str(gateway))
    for what, values in (
        ("cart ids", [c.cart for c in config.carts]),
        ("agent serial numbers", [a.serial_number for a in cart_agents]),
        ("data_dir folders", [str(c.data_dir.resolve()) for c in config.carts]),
        ("ports (screens, SMS gateway)", ports),
    ):
        repeated = sorted({v for v in values if values.count(v) > 1})
        if repeated:
            problems.append(f"{path}: carts: {what} used more than once: {', '.join(repeated)}")
    return problems


def _stop_labels(campus: Path) -> dict[str, Text]:
    from robots.cart.config import stop_labels

    return stop_labels(campus)


def _cart_spec(section: CartSection, agent: AgentConfig, labels: dict[str, Text]) -> LiveCartSpec:
    link = section.orchestrator
    return LiveCartSpec(
        cart=section.cart,
        data_dir=section.data_dir,
        compartments=section.compartments,
        agent=agent,
        orchestrator_url=link.url if link is not None else None,
        token=link.token if link is not None else None,
        screen_port=section.screen_port,
        staff_pin=section.staff_pin,
        sync_s=section.sync_s,
        stop_labels=labels,
        station_nodes=section.station_nodes,
    )


class LiveFleet:
    """The running lifts, robots, carts and people of one live file, on one clock."""

    def __init__(
        self,
        config: LiveConfig,
        robots: tuple[AgentConfig, ...],
        clock: Clock | None = None,
        *,
        carts: tuple[LiveCartSpec, ...] = (),
    ) -> None:
        self.config = config
        self.robot_configs = robots
        self.cart_specs = carts
        self.clock = clock or config.clock()
        self.cars: dict[str, LiftCar] = {}
        self.agents: dict[str, Agent] = {}
        self.carts: dict[str, LiveCart] = {}
        self.people: People | None = None
        self.station: StationFeeder | None = None
        self._boxes: list[IotBoxSim] = []
        self._boards: list[RelayBoardSim] = []
        self._car_tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        """Lifts first (cars stepping, controllers online), then every robot agent and cart in parallel,
        then the people (their SMS gateway listening, staff following the carts), then the station
        feeder (``sim.live.station``: parcels imported at the orchestrator)."""
        try:
            for lift in self.config.lifts:
                await self._start_lift(lift)
            agents = [self._agent(robot) for robot in self.robot_configs]
            carts = [self._cart(spec) for spec in self.cart_specs]
            await asyncio.gather(*(agent.start() for agent in agents), *(cart.start() for cart in carts))
            await asyncio.gather(*(cart.board_ok() for cart in carts))
            people = self.config.people
            if people is not None:
                self.people = People(
                    list(self.carts.values()),
                    self.clock,
                    people.settings(),
                    secret=people.secret,
                    host=people.gateway.host,
                    port=people.gateway.port,
                )
                await self.people.start()
            if self.config.station is not None:
                self.station = StationFeeder(self.config.station, clock=self.clock)
                await self.station.start()
        except BaseException:
            await self.stop()
            raise

    def _agent(self, robot: AgentConfig) -> Agent:
        agent = Agent(robot, make_driver(robot, self.clock), make_mqtt_client(robot, self.clock), self.clock)
        self.agents[robot.serial_number] = agent
        return agent

    def _cart(self, spec: LiveCartSpec) -> LiveCart:
        cart = LiveCart(spec, self.clock)
        self.carts[spec.cart] = cart
        return cart

    async def _start_lift(self, lift: IotLiftSection | RelayLiftSection) -> None:
        car = lift.car()
        self.cars[lift.name] = car
        self._car_tasks.append(
            asyncio.create_task(car.run(self.clock, self.config.lift_tick_s), name=f"lift car {lift.name}")
        )
        if isinstance(lift, IotLiftSection):
            m = self.config.mqtt
            mqtt = MqttConfig(host=m.host, port=m.port, username=m.username, password=m.password)
            box = IotBoxSim(
                car,
                mqtt,
                lift.name,
                labels=lift.labels,
                topic_prefix=lift.topic_prefix,
                clock=RealClock(),  # the box's heartbeat is a real-time protocol
                status_period_s=lift.status_period_s,
            )
            await box.start()
            self._boxes.append(box)
        else:
            lift.directory.mkdir(parents=True, exist_ok=True)
            board = RelayBoardSim(car, lift.directory, device_id=lift.device_id, baudrate=lift.baudrate)
            await board.start()
            self._boards.append(board)

    async def stop(self) -> None:
        """In reverse order of start (safe to call twice): the station feeder; the people (gateway,
        students, staff); the
        robots OFFLINE and disconnected and the carts (screen, agent, service, board); the lift
        controllers; the cars.

        Each part gets ``STOP_TIMEOUT_S`` real seconds: saying OFFLINE waits for the broker's ack, which
        never comes when the broker went first (a launcher that died and took it along); the part is
        then left to its last will, and the process still ends.
        """
        station, self.station = self.station, None
        if station is not None:
            await _report("station", _bounded("station", station.stop()))
        people, self.people = self.people, None
        if people is not None:
            await _report("people", _bounded("people", people.stop()))
        agents, self.agents = list(self.agents.values()), {}
        carts, self.carts = list(self.carts.values()), {}
        stops = [(f"robot {a.config.serial_number}", a.stop()) for a in agents]
        stops += [(f"cart {cart.cart}", cart.stop()) for cart in carts]
        await _stop_all(stops)
        boxes, self._boxes = self._boxes, []
        boards, self._boards = self._boards, []
        tasks, self._car_tasks = self._car_tasks, []
        lifts = [(f"lift {box.box_id}", box.stop()) for box in boxes]
        lifts += [(f"lift board {board.port}", board.stop()) for board in boards]
        await _stop_all(lifts)
        await cancel_and_wait(tasks)


async def _stop_all(stops: list[tuple[str, Coroutine[Any, Any, None]]]) -> None:
    results = await asyncio.gather(*(_bounded(what, stop) for what, stop in stops), return_exceptions=True)
    for (what, _), result in zip(stops, results, strict=True):
        if isinstance(result, BaseException):
            log.error("%s did not stop cleanly: %s", what, result)


async def _report(what: str, stop: Awaitable[None]) -> None:
    try:
        await stop
    except Exception as exc:
        log.error("%s did not stop cleanly: %s", what, exc)


STOP_TIMEOUT_S = 5.0
"""Real seconds one robot or lift controller may take to stop."""


async def _bounded(what: str, stop: Awaitable[None]) -> None:
    if not await within(RealClock(), STOP_TIMEOUT_S, stop):
        log.warning("%s: not stopped within %g s (broker gone?); left to its last will", what, STOP_TIMEOUT_S)


async def serve(
    config: LiveConfig,
    robots: tuple[AgentConfig, ...],
    stop: asyncio.Event,
    carts: tuple[LiveCartSpec, ...] = (),
) -> None:
    """Start everything, print ``READY_LINE``, run until ``stop`` is set, stop everything."""
    fleet = LiveFleet(config, robots, carts=carts)
    await fleet.start()
    log.info(
        "%d lifts, %d robots and %d carts up at %g× real time%s",
        len(fleet.cars),
        len(fleet.agents),
        len(fleet.carts),
        config.time_factor,
        f"; SMS gateway on {fleet.people.gateway_url}" if fleet.people is not None else "",
    )
    print(READY_LINE, flush=True)
    try:
        await stop.wait()
    finally:
        await fleet.stop()


def main(argv: list[str] | None = None) -> int:
    """``python -m sim.live.fleet --config LIVE.yaml [--log-level INFO]``; returns the exit code."""
    parser = argparse.ArgumentParser(prog="python -m sim.live.fleet", description=__doc__.split("\n")[0])
    parser.add_argument("--config", type=Path, required=True, help="live file (see sim/live/fleet.py)")
    parser.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    args = parser.parse_args(argv)
    try:
        config, robots, carts = load_live(args.config)
    except LiveConfigError as exc:
        print(f"sim.live.fleet: {exc}", file=sys.stderr)
        return EXIT_BAD_CONFIG
    logging.basicConfig(level=args.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # the carts' code syncs: one line each otherwise

    async def run() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await serve(config, robots, stop, carts)

    try:
        asyncio.run(run())
    except (MqttError, PtyPairError, OSError, RuntimeError) as exc:
        print(f"sim.live.fleet: {args.config}: {exc}", file=sys.stderr)
        return EXIT_FAILED
    return 0


if __name__ == "__main__":
    sys.exit(main())
