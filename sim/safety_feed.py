"""Simulated safety sensors feeding a live robot: ``SimSafetySensors`` run against an agent's driver.

``sim.safety_sensors`` simulates the five protection layers around a robot it moves itself (``run``,
for the supervisor alone). ``SimSafetyFeed`` runs the same sensors beside a *live* agent instead: the
robot's pose is the driver's (``driver.readout().pose``, on the robot's map), time is the agent's clock,
and every reading goes to ``AgentSafety.observe`` as an *external* layer, its heartbeat included —
so a feed that stops, a dropped-out or stuck layer, is seen by the supervisor exactly as a real one
would be. With ``safety.simulated: true`` in the robot's file all five layers are external
(``robots.agent.config``); ``attach_sim_sensors(agent)`` then adds the feed to the agent, which starts
and stops it with itself (``Agent.add_companion``)::

    agent = Agent(config, make_driver(config, clock), make_mqtt_client(config, clock), clock)
    feed = attach_sim_sensors(agent)         # None unless the config says safety.simulated
    ...
    feed.add_actor(feed.ahead(ObjectClass.PERSON, gap=1.0))   # somebody steps in front
    feed.bumper_hit(0.5)                                      # latches until acknowledged
    feed.stuck(Source.LIDAR)                                  # one silent layer: SLOW

**Time.** The sensors' time line (``now``, the ``appear``/``vanish`` of actors, fault windows) is
seconds of the agent's monotonic clock since the feed was made; readings are stamped on it and moved
to the clock's monotonic time when observed. The feed sleeps until the next layer is due
(``SimSafetySensors.next_due``), so each layer keeps its own rate (lidar 15 Hz, ultrasonic 20 Hz,
camera 10 Hz, switches 20 Hz by default) whatever the control period; on a ``VirtualClock`` it runs in
virtual time like the rest of the agent.

**World.** Actors are discs on the robot's map (the frame of ``Readout.pose``), with a constant
velocity from the time they appear; ``ahead`` places one relative to where the robot is now. While
the driver has no pose the feed sends nothing (the layers go silent and the robot stands).

**Runtime faults.** ``press_e_stop``/``release_e_stop``, ``bumper_hit(duration)``/``release_bumper``,
``stuck``, ``dropout`` and ``false_detection`` (each until ``heal`` or for a duration), and
``inject(fault)`` for any ``sim.safety_sensors`` fault whose window is given *relative to now*
(``Stuck(LIDAR, 0, 2)``: stuck from now for 2 s). They take effect at each layer's next reading
(at most one period: 50 ms for the switches). Acknowledging a latch stays the operator's act:
``AgentSafety.acknowledge_on_site`` or the driver's reset key.
"""

from __future__ import annotations

import asyncio
import logging
import math
import zlib
from dataclasses import replace
from typing import TYPE_CHECKING

from robots.agent.safety import AgentSafety
from robots.safety.readings import ObjectClass, Reading, Source
from sim.safety_sensors import (
    Actor,
    BumperHit,
    Dropout,
    EStopPress,
    FalseDetection,
    Fault,
    SensorSpec,
    SimSafetySensors,
    Stuck,
)

if TYPE_CHECKING:
    from robots.agent.agent import Agent

MIN_SLEEP = 1e-3
"""Shortest wait between two polls (s): guards against a due time that rounding left just behind."""

_RANGED = (Source.LIDAR, Source.ULTRASONIC, Source.CAMERA)


class SimSafetyFeed:
    """``SimSafetySensors`` feeding an ``AgentSafety`` from its driver's pose on its clock (module doc)."""

    def __init__(
        self,
        safety: AgentSafety,
        sensors: SimSafetySensors | None = None,
        *,
        seed: int = 0,
        spec: SensorSpec | None = None,
        robot_radius: float = 0.4,
        logger: logging.Logger | None = None,
    ) -> None:
        self.safety = safety
        self.clock = safety.clock
        self.sensors = sensors or SimSafetySensors(seed=seed, spec=spec, robot_radius=robot_radius)
        self.log = logger or logging.getLogger("robopost.sim.safety_feed")
        self.origin = self.clock.monotonic()
        self.sent: dict[Source, int] = {}
        self.refused: dict[Source, int] = {}
        self._task: asyncio.Task[None] | None = None

    # --- life cycle -------------------------------------------------------------------------------------

    def start(self) -> None:
        """Send the readings due now and keep sending each layer at its rate (in the running loop)."""
        if self._task is None:
            self.poll()
            self._task = asyncio.create_task(self._run(), name="sim-safety-feed")

    async def stop(self) -> None:
        """Stop sending (the layers then go silent: the supervisor stops the robot)."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    @property
    def running(self) -> bool:
        """Whether the feed is sending."""
        return self._task is not None and not self._task.done()

    @property
    def now(self) -> float:
        """The sensors' time: seconds of the agent's monotonic clock since the feed was made."""
        return self.clock.monotonic() - self.origin

    def pose(self) -> tuple[float, float, float] | None:
        """The robot's pose (x, y, heading) on its map, from the driver; None while it has none."""
        pose = self.safety.driver.readout().pose
        return None if pose is None else (pose.x, pose.y, pose.theta)

    def poll(self) -> list[Reading]:
        """Send the readings due now to the supervisor; the ones sent (stamped on the sensors' time)."""
        pose = self.pose()
        if pose is None:
            return []
        readings = self.sensors.poll(self.now, pose)
        for reading in readings:
            layer = reading.layer
            if self.safety.observe(replace(reading, stamp=reading.stamp + self.origin)):
                self.sent[layer] = self.sent.get(layer, 0) + 1
            else:
                self.refused[layer] = self.refused.get(layer, 0) + 1
        return readings

    async def _run(self) -> None:
        while True:
            wait = self.sensors.next_due() - self.now
            await self.clock.sleep(max(wait, MIN_SLEEP))
            try:
                self.poll()
            except Exception:  # a bad pose must not end the feed for good; the next poll tries again
                self.log.exception("simulated safety sensors failed")

    # --- the world --------------------------------------------------------------------------------------

    def add_actor(self, actor: Actor) -> Actor:
        """Put ``actor`` (map frame, times on the sensors' time line) in the world; returns it."""
        self.sensors.add_actor(actor)
        return actor

    def ahead(
        self,
        kind: ObjectClass,
        gap: float,
        *,
        lateral: float = 0.0,
        speed: float = 0.0,
        radius: float = 0.25,
        duration: float = math.inf,
    ) -> Actor:
        """An actor (not yet added) ``gap`` m ahead of the robot's outline now, ``lateral`` m to its left,
        walking towards the robot at ``speed`` m/s, present from now for ``duration`` s."""
        pose = self.pose()
        if pose is None:
            raise ValueError("SimSafetyFeed.ahead: the robot has no pose yet")
        x, y, heading = pose
        reach = gap + self.sensors.robot_radius + radius
        cos, sin = math.cos(heading), math.sin(heading)
        now = self.now
        return Actor(
            kind,
            x + reach * cos - lateral * sin,
            y + reach * sin + lateral * cos,
            vx=-speed * cos,
            vy=-speed * sin,
            radius=radius,
            appear=now,
            vanish=now + duration,
        )

    def clear_actors(self) -> int:
        """Every actor leaves the world now (those yet to appear never will); how many were present."""
        now = self.now
        present = sum(actor.present(now) for actor in self.sensors.actors)
        self.sensors.actors = tuple(
            replace(actor, vanish=min(actor.vanish, now))
            for actor in self.sensors.actors
            if actor.appear < now
        )
        return present

    # --- faults -----------------------------------------------------------------------------------------

    def inject(self, fault: Fault) -> Fault:
        """Add ``fault`` with its window taken relative to now; returns it on the sensors' time line."""
        now = self.now
        shifted = replace(fault, start=now + fault.start, end=now + fault.end)
        self.sensors.add_fault(shifted)
        return shifted

    def press_e_stop(self) -> None:
        """Press the e-stop button and hold it down (until ``release_e_stop``)."""
        self.sensors.add_fault(EStopPress(self.now))

    def release_e_stop(self) -> None:
        """Release the button (the latch stays until acknowledged on site)."""
        self.sensors.end_faults(self.now, lambda f: isinstance(f, EStopPress))

    def bumper_hit(self, duration: float = 0.2) -> None:
        """The bumper strips report contact from now for ``duration`` s (the latch stays)."""
        if not duration > 0.0:
            raise ValueError(f"SimSafetyFeed.bumper_hit: duration must be > 0 s, got {duration!r}")
        now = self.now
        self.sensors.add_fault(BumperHit(now, now + duration))

    def release_bumper(self) -> None:
        """End every bumper hit now (the latch stays until acknowledged)."""
        self.sensors.end_faults(self.now, lambda f: isinstance(f, BumperHit))

    def stuck(self, layer: Source, duration: float = math.inf) -> None:
        """``layer`` repeats its last reading (stale heartbeat) from now for ``duration`` s."""
        self.inject(Stuck(layer, 0.0, duration))

    def dropout(self, layer: Source, duration: float = math.inf) -> None:
        """``layer`` sends nothing from now for ``duration`` s."""
        self.inject(Dropout(layer, 0.0, duration))

    def false_detection(
        self,
        layer: Source,
        distance: float,
        *,
        bearing: float = 0.0,
        kind: ObjectClass = ObjectClass.PERSON,
        duration: float = math.inf,
    ) -> None:
        """A ghost for ``layer`` (lidar, ultrasonic or camera) at ``distance`` m, ``bearing`` rad."""
        if layer not in _RANGED:
            raise ValueError(f"SimSafetyFeed.false_detection: {layer.value} has no detections to fake")
        self.inject(FalseDetection(layer, 0.0, duration, distance, bearing, kind))

    def heal(self, layer: Source | None = None) -> int:
        """End the stuck, dropout and false-detection faults of ``layer`` (None: every layer); how many."""

        def match(fault: Fault) -> bool:
            if not isinstance(fault, Stuck | Dropout | FalseDetection):
                return False
            return layer is None or fault.layer is layer

        return self.sensors.end_faults(self.now, match)


def sim_seed(serial_number: str) -> int:
    """A robot's own noise seed: the same robot draws the same noise every run, two robots differ."""
    return zlib.crc32(serial_number.encode())


def attach_sim_sensors(agent: Agent, *, spec: SensorSpec | None = None) -> SimSafetyFeed | None:
    """Add a ``SimSafetyFeed`` to ``agent`` if its config says ``safety.simulated`` (else None).

    The agent starts the feed right after its safety layer and stops it before (``add_companion``);
    ``serve(config, setup=attach_sim_sensors)`` is the whole wiring for ``robopost agent``.
    """
    if not agent.config.safety.simulated:
        return None
    feed = SimSafetyFeed(agent.safety, seed=sim_seed(agent.config.serial_number), spec=spec, logger=agent.log)
    agent.add_companion(feed)
    return feed
