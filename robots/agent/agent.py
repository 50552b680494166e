"""One robot agent: a ``Vehicle`` (order execution on a driver) joined to MQTT by a ``VehicleLink``.

In-process use (the simulator, tests, benchmarks)::

    config = parse_config({"serial_number": "cart-01", "mqtt": {"port": 1883}})
    clock = RealClock()
    driver = make_driver(config, clock)             # or any RobotDriver, e.g. SimDriver(clock, ...)
    agent = Agent(config, driver, make_mqtt_client(config), clock)
    await agent.start()                             # driver up, connected, ONLINE + factsheet + state
    ...
    await agent.stop()                              # OFFLINE (retained), disconnect, driver stopped

or ``async with Agent(...) as agent:``, or ``await agent.run()`` which returns once ``stop()`` was called
elsewhere. The agent's safety layer (``agent.safety``, ``robots.agent.safety.AgentSafety``) runs its
control loop while the agent runs and takes the ``teleop`` messages. ``make_mqtt_client`` sets the
last will (``connection`` CONNECTIONBROKEN); an ``MqttClient`` made otherwise works too but has no will.
``serve(config)`` runs one agent until SIGINT/SIGTERM (``robopost agent --config ROBOT.yaml``).
*Companions* (``Agent.add_companion``) run beside the agent for its lifetime: ``sim.safety_feed``'s
simulated safety sensors (``safety.simulated: true``) are one, added by whoever composes the agent
with ``sim`` (``launch``; ``serve(config, setup=attach_sim_sensors)``).
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Callable
from types import TracebackType
from typing import Protocol

from interfaces.clock import Clock, RealClock
from interfaces.mqtt import Message, MqttClient, MqttConfig
from interfaces.vda5050 import HeaderFactory
from robots.agent.config import AgentConfig, SimDriverSection
from robots.agent.driver import Pose, RobotDriver
from robots.agent.factsheet import build_factsheet
from robots.agent.link import LinkSettings, VehicleLink, connection_will
from robots.agent.safety import AgentSafety, SafetySettings, SpeedZone
from robots.agent.vehicle import Vehicle, VehicleSettings
from robots.safety import Role


class Companion(Protocol):
    """Something that runs beside an agent and lives as long as it (e.g. ``sim.safety_feed``'s
    simulated sensors): started after the agent's safety layer, stopped before it."""

    def start(self) -> None: ...

    async def stop(self) -> None: ...


SIM_ACTION_DURATIONS = {"waitForPickup": 1.0, "handoff": 2.0, "enterLift": 3.0, "exitLift": 3.0}
"""Seconds the simulated robot takes for our custom actions (beside the SimDriver's own defaults)."""


def vehicle_settings(config: AgentConfig) -> VehicleSettings:
    """The vehicle's execution settings from the configuration."""
    ex = config.execution
    return VehicleSettings(
        map_id=config.map_id,
        default_deviation_xy=ex.default_deviation_xy,
        drive_retries=ex.drive_retries,
        action_retries=ex.action_retries,
        retry_delay=ex.retry_delay,
    )


def safety_settings(config: AgentConfig, driver: RobotDriver) -> SafetySettings:
    """The safety layer's settings from the ``safety`` section (``robots.agent.config``).

    The supervisor's ``max_speed`` is the configured one, else the default raised to 1.1 × the robot's
    top speed when that is higher — the driver's ``top_speed`` if it has one, else the configured
    simulated speed or ROS ``nominal_speed`` (a fast robot would otherwise be stopped for overspeed on
    every drive: goals cannot be capped). ``simulated`` makes all five layers external (fed by
    ``sim.safety_feed``).
    """
    section = config.safety
    top = getattr(driver, "top_speed", None)
    if not isinstance(top, int | float):
        drv = config.driver
        top = drv.speed if isinstance(drv, SimDriverSection) else drv.nominal_speed
    zones = tuple(SpeedZone(z.x_min, z.y_min, z.x_max, z.y_max, z.cap, z.name) for z in section.teleop.zones)
    return SafetySettings(
        period=section.period,
        diagnostics_period=section.diagnostics_period,
        readout_layers=section.readout_layers,
        external_layers=section.external_layers,
        lidar_sectors=section.lidar_sectors,
        supervisor=section.supervisor_config(section.effective_max_speed(float(top))),
        modes=section.modes.build(),
        teleop=section.teleop.build(),
        zones=zones,
        on_site_role=Role(section.on_site_role),
    )


def link_settings(config: AgentConfig) -> LinkSettings:
    """The MQTT link's settings from the configuration."""
    return LinkSettings(
        state_period=config.state_period,
        visualization_period=config.visualization_period,
        max_payload_bytes=config.max_payload_bytes,
        interface=config.interface,
    )


def headers_for(config: AgentConfig, clock: Clock) -> HeaderFactory:
    """A header factory for the configured robot."""
    return HeaderFactory(config.manufacturer, config.serial_number, config.version, clock=clock)


def make_mqtt_client(config: AgentConfig, clock: Clock | None = None) -> MqttClient:
    """The robot's MQTT client with its last will; call inside the running event loop."""
    m = config.mqtt
    mqtt_config = MqttConfig(
        host=m.host,
        port=m.port,
        username=m.username,
        password=m.password,
        client_id=config.client_id,
        keepalive=m.keepalive,
    )
    will = connection_will(headers_for(config, clock or RealClock()), config.interface)
    logger = logging.getLogger(f"robopost.agent.{config.serial_number}")
    return MqttClient(mqtt_config, will=will, logger=logger)


def make_driver(config: AgentConfig, clock: Clock) -> RobotDriver:
    """The configured driver: the in-process simulated robot or the ROS 2 one (rclpy imported only then)."""
    section = config.driver
    if isinstance(section, SimDriverSection):
        from robots.agent.sim_driver import DEFAULT_ACTION_DURATIONS, SimDriver, SimDriverConfig

        durations = {**DEFAULT_ACTION_DURATIONS, **SIM_ACTION_DURATIONS, **(section.action_durations or {})}
        sim = SimDriverConfig(
            speed=section.speed, turn_rate=section.turn_rate, step=section.step, action_durations=durations
        )
        start = Pose(section.start.x, section.start.y, section.start.theta, config.map_id)
        return SimDriver(clock, sim, start=start, battery=section.battery)
    from robots.agent.ros_driver import RosDriver, RosDriverConfig

    ros = RosDriverConfig(
        namespace=section.namespace,
        node_name=section.node_name,
        domain_id=section.domain_id,
        default_map_id=config.map_id,
        position_tolerance=section.position_tolerance,
        nominal_speed=section.nominal_speed,
        stall_timeout=section.stall_timeout,
        acknowledge_service=section.acknowledge_service,
    )
    return RosDriver(ros, clock=clock)


class Agent:
    """The VDA 5050 client of one robot (see the module docstring)."""

    def __init__(
        self,
        config: AgentConfig,
        driver: RobotDriver,
        mqtt: MqttClient,
        clock: Clock,
        *,
        on_teleop: Callable[[Message], None] | None = None,
        safety: SafetySettings | None = None,
        logger: logging.Logger | None = None,
    ) -> None:
        self.config = config
        self.driver = driver
        self.mqtt = mqtt
        self.clock = clock
        self.log = logger or logging.getLogger(f"robopost.agent.{config.serial_number}")
        self.headers = headers_for(config, clock)
        self.vehicle = Vehicle(driver, clock, vehicle_settings(config), logger=self.log)
        self.safety = AgentSafety(
            self.vehicle, clock, safety or safety_settings(config, driver), logger=self.log
        )
        self.link = VehicleLink(
            self.vehicle,
            mqtt,
            self.headers,
            build_factsheet(config, self.headers),
            clock,
            link_settings(config),
            on_teleop=on_teleop or self.safety.on_teleop,
            logger=self.log,
        )
        self.companions: list[Companion] = []
        self._started = False
        self._stopping = False
        self._stopped = asyncio.Event()

    def add_companion(self, companion: Companion) -> None:
        """Run ``companion`` beside the agent: started with it (at once if already started), stopped
        before the safety layer stops."""
        self.companions.append(companion)
        if self._started and not self._stopping:
            companion.start()

    async def start(self, connect_timeout: float = 10.0) -> None:
        """Start the driver, subscribe, connect (ONLINE, factsheet, full state follow)."""
        if self._started:
            return
        self._started = True
        await self.vehicle.start()
        self.safety.start()
        for companion in self.companions:
            companion.start()
        self.link.start()
        if self.mqtt.connected.is_set():
            await self.link.resync()
        else:
            await self.mqtt.connect(timeout=connect_timeout)
        self.log.info("agent %s/%s up", self.config.manufacturer, self.config.serial_number)

    async def stop(self) -> None:
        """Publish OFFLINE, disconnect, stop the vehicle and the driver (safe to call twice)."""
        if self._stopping:
            await self._stopped.wait()
            return
        self._stopping = True
        try:
            await self.link.stop(offline=True)
            await self.mqtt.disconnect()
            for companion in reversed(self.companions):
                await companion.stop()
            await self.safety.stop()
            await self.vehicle.stop()
        finally:
            self._stopped.set()
        self.log.info("agent %s stopped", self.config.serial_number)

    @property
    def stopped(self) -> bool:
        """Whether ``stop()`` has finished."""
        return self._stopped.is_set()

    async def run(self) -> None:
        """Start, then return once ``stop()`` has finished (called by a signal handler, a test...)."""
        await self.start()
        await self._stopped.wait()

    async def __aenter__(self) -> Agent:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()


async def serve(
    config: AgentConfig, clock: Clock | None = None, *, setup: Callable[[Agent], object] | None = None
) -> None:
    """Run one agent with its configured driver until SIGINT or SIGTERM, then stop cleanly.

    ``setup(agent)`` is called before the agent starts, e.g. to add companions (``launch`` passes
    ``sim.safety_feed.attach_sim_sensors``, which ``robots`` may not import).
    """
    clock = clock or RealClock()
    agent = Agent(config, make_driver(config, clock), make_mqtt_client(config, clock), clock)
    if setup is not None:
        setup(agent)
    loop = asyncio.get_running_loop()
    stopping: set[asyncio.Task[None]] = set()

    def on_signal() -> None:
        stopping.add(loop.create_task(agent.stop()))

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, on_signal)
    try:
        await agent.run()
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
        if not agent.stopped:
            await agent.stop()
