"""Simulated hardware in live mode: robot agents on simulated bases and lift controllers, one process.

``python -m sim.live.fleet --config LIVE.yaml`` runs, until SIGINT/SIGTERM, everything a live file
lists, all on one ``ScaledClock`` (``time_factor`` × real speed)::

    time_factor: 10            # virtual seconds per real second
    epoch: null                # virtual epoch seconds at ``origin`` (null: the real time then)
    origin: null               # real epoch seconds of the start instant (null: when the process starts)
    mqtt: {host: 127.0.0.1, port: 1884}
    lift_tick_s: 0.5           # virtual seconds between steps of a simulated lift car
    robots: [robots/cart_1.yaml, robots/indoor_adm_1.yaml]   # agent files (robots.agent.config)
    lifts:
      - {kind: iot_mqtt, name: ADM-L1, floors: [ADM-1F, ...], labels: ["1", ...], topic_prefix: liftlink}
      - {kind: modbus_relay, name: TEA-L2, floors: [TEA-1F, ...], directory: pty/TEA-L2}

Relative paths are taken from the file's folder. Each robot is the real VDA 5050 agent
(``robots.agent.agent.Agent``) on a ``SimDriver``, with its own MQTT connection, last will and
ONLINE/OFFLINE, exactly as ``robopost agent --config`` would run it: only the process is shared.
Each lift is a ``sim.lift.LiftCar`` stepped on the scaled clock behind its controller's real
protocol: a LiftLink IoT box on MQTT (``sim.lift_iot``; its status heartbeat stays in real seconds,
``status_period_s``, because the bridge times the box out in real seconds) or a Modbus RTU relay
board on a pty pair (``sim.lift_modbus``; the bridge opens ``directory/line``).

Why one process for the fleet: nine agents are nine Python interpreters (~60 MB and a second of
start-up each) doing almost nothing; in one process they share the interpreter and the clock, and
start in parallel. Each keeps its own broker session, so the orchestrator cannot tell the difference.

Once every lift and robot is up the process prints ``READY_LINE`` on stdout (the launcher's signal);
a file that cannot be used ends it with exit code 2 and one line per problem, a failed start-up
(broker unreachable, socat missing) with exit code 1.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from collections.abc import Awaitable
from pathlib import Path
from typing import Annotated, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from interfaces.clock import Clock, RealClock, ScaledClock, within
from interfaces.mqtt import MqttConfig, MqttError
from interfaces.tasks import cancel_and_wait
from robots.agent.agent import Agent, make_driver, make_mqtt_client
from robots.agent.config import AgentConfig, AgentConfigError, load_config
from sim.lift import LiftCar, LiftCarConfig
from sim.lift_iot import IotBoxSim
from sim.lift_modbus import RelayBoardSim
from sim.pty import PtyPairError

READY_LINE = "sim.live: ready"
"""Printed on stdout once every lift and robot of the file is up."""

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


class LiveConfig(_Section):
    """A live file (see the module docstring)."""

    time_factor: float = Field(default=1.0, gt=0, le=1000)
    epoch: float | None = None
    origin: float | None = None
    mqtt: MqttSection = Field(default_factory=MqttSection)
    lift_tick_s: float = Field(default=0.1, gt=0)
    robots: tuple[Path, ...] = ()
    lifts: tuple[LiftSection, ...] = ()

    def clock(self) -> ScaledClock:
        """The clock every simulated part of this file runs on."""
        return ScaledClock(self.time_factor, epoch=self.epoch, origin=self.origin)


def load_live_config(path: Path) -> tuple[LiveConfig, tuple[AgentConfig, ...]]:
    """The live file at ``path`` and its robots' agent files; ``LiveConfigError`` naming each problem."""
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
    here = path.parent
    lifts = tuple(
        lift.model_copy(update={"directory": here / lift.directory})
        if isinstance(lift, RelayLiftSection)
        else lift
        for lift in config.lifts
    )
    config = config.model_copy(update={"robots": tuple(here / r for r in config.robots), "lifts": lifts})
    robots: list[AgentConfig] = []
    problems: list[str] = []
    for robot_file in config.robots:
        try:
            robots.append(load_config(robot_file))
        except AgentConfigError as exc:
            problems.append(str(exc))
    serials = [r.serial_number for r in robots]
    twice = sorted({s for s in serials if serials.count(s) > 1})
    if twice:
        problems.append(f"{path}: robots: serial numbers used more than once: {', '.join(twice)}")
    if problems:
        raise LiveConfigError("\n".join(problems))
    return config, tuple(robots)


class LiveFleet:
    """The running lifts and robots of one live file, on one clock."""

    def __init__(
        self, config: LiveConfig, robots: tuple[AgentConfig, ...], clock: Clock | None = None
    ) -> None:
        self.config = config
        self.robot_configs = robots
        self.clock = clock or config.clock()
        self.cars: dict[str, LiftCar] = {}
        self.agents: dict[str, Agent] = {}
        self._boxes: list[IotBoxSim] = []
        self._boards: list[RelayBoardSim] = []
        self._car_tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        """Lifts first (cars stepping, controllers online), then every robot agent in parallel."""
        try:
            for lift in self.config.lifts:
                await self._start_lift(lift)
            agents = [self._agent(robot) for robot in self.robot_configs]
            await asyncio.gather(*(agent.start() for agent in agents))
        except BaseException:
            await self.stop()
            raise

    def _agent(self, robot: AgentConfig) -> Agent:
        agent = Agent(robot, make_driver(robot, self.clock), make_mqtt_client(robot, self.clock), self.clock)
        self.agents[robot.serial_number] = agent
        return agent

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
        """Robots OFFLINE and disconnected, then the lift controllers, then the cars (safe to call twice).

        Each part gets ``STOP_TIMEOUT_S`` real seconds: saying OFFLINE waits for the broker's ack, which
        never comes when the broker went first (a launcher that died and took it along); the part is
        then left to its last will, and the process still ends.
        """
        agents, self.agents = list(self.agents.values()), {}
        boxes, self._boxes = self._boxes, []
        boards, self._boards = self._boards, []
        tasks, self._car_tasks = self._car_tasks, []
        stops = [(f"robot {a.config.serial_number}", a.stop()) for a in agents]
        stops += [(f"lift {box.box_id}", box.stop()) for box in boxes]
        stops += [(f"lift board {board.port}", board.stop()) for board in boards]
        results = await asyncio.gather(
            *(_bounded(what, stop) for what, stop in stops), return_exceptions=True
        )
        for (what, _), result in zip(stops, results, strict=True):
            if isinstance(result, BaseException):
                log.error("%s did not stop cleanly: %s", what, result)
        await cancel_and_wait(tasks)


STOP_TIMEOUT_S = 5.0
"""Real seconds one robot or lift controller may take to stop."""


async def _bounded(what: str, stop: Awaitable[None]) -> None:
    if not await within(RealClock(), STOP_TIMEOUT_S, stop):
        log.warning("%s: not stopped within %g s (broker gone?); left to its last will", what, STOP_TIMEOUT_S)


async def serve(config: LiveConfig, robots: tuple[AgentConfig, ...], stop: asyncio.Event) -> None:
    """Start everything, print ``READY_LINE``, run until ``stop`` is set, stop everything."""
    fleet = LiveFleet(config, robots)
    await fleet.start()
    log.info(
        "%d lifts and %d robots up at %g× real time", len(fleet.cars), len(fleet.agents), config.time_factor
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
        config, robots = load_live_config(args.config)
    except LiveConfigError as exc:
        print(f"sim.live.fleet: {exc}", file=sys.stderr)
        return EXIT_BAD_CONFIG
    logging.basicConfig(level=args.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    async def run() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await serve(config, robots, stop)

    try:
        asyncio.run(run())
    except (MqttError, PtyPairError, OSError) as exc:
        print(f"sim.live.fleet: {args.config}: {exc}", file=sys.stderr)
        return EXIT_FAILED
    return 0


if __name__ == "__main__":
    sys.exit(main())
