"""Moving bench robots: N VDA 5050 robots driving random walks on the campus's outdoor roads.

``RoadGraph.outdoor(site)`` takes the outdoor nodes (on the outdoor map, coordinates from
``OrderBuilder(site).map_xy``) and the edges joining two of them. Each robot is a ``Walker``: it starts
at a random road node and keeps driving to a random neighbour (not back where it came from unless the
road ends there) at about 2 m/s, straight from node to node.

``MovingFleet`` publishes for every robot through **one** MQTT client (the benchmark's broker is
anonymous, so one connection may speak for all robots: the load under test is the console, not the
broker's per-client bookkeeping, which ``benchmarks.fleet`` measures): the retained ``connection``
ONLINE once, then a ``state`` (a real ``interfaces.vda5050.State``, ~0.6 kB) with the current
``agvPosition`` every ``period_s``. Robots are spread over ten slots of the period so the load is
smooth. The fleet master takes ``agvPosition`` from ``state`` (``visualization`` is not needed).
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import random
from collections.abc import Sequence
from dataclasses import dataclass

from interfaces.clock import Clock
from interfaces.mqtt import MqttClient
from interfaces.vda5050 import (
    AgvPosition,
    BatteryState,
    Connection,
    ConnectionState,
    EStop,
    HeaderFactory,
    OperatingMode,
    SafetyState,
    State,
    Topic,
    TopicKind,
    Velocity,
    to_bytes,
)
from maps.model import OUTDOOR, Site
from orchestrator.fleet.orders import OrderBuilder

SLOTS = 10
"""Publishing slots per period: each tick publishes the robots of one slot."""

MIN_EDGE_M = 0.05
"""Edges shorter than this (two nodes on one spot) are left out of the walk."""


@dataclass(frozen=True, slots=True)
class RoadGraph:
    """Outdoor road nodes (local metres on the outdoor map) and where one can drive from each."""

    xy: dict[str, tuple[float, float]]
    neighbours: dict[str, tuple[str, ...]]

    @classmethod
    def outdoor(cls, site: Site) -> RoadGraph:
        """The outdoor part of ``site``'s graph (one-way edges kept one-way)."""
        builder = OrderBuilder(site)
        xy = {n: builder.map_xy(n) for n in site.nodes if builder.map_of(n) == OUTDOOR}
        links: dict[str, set[str]] = {}
        for edge in site.edges.values():
            if edge.a not in xy or edge.b not in xy or math.dist(xy[edge.a], xy[edge.b]) < MIN_EDGE_M:
                continue
            links.setdefault(edge.a, set()).add(edge.b)
            if not edge.oneway:
                links.setdefault(edge.b, set()).add(edge.a)
        if not links:
            raise ValueError(f"site {site.name!r} has no outdoor roads to drive on")
        return cls(xy, {n: tuple(sorted(to)) for n, to in links.items()})


class Walker:
    """One robot's random walk along the roads at ``speed`` m/s."""

    def __init__(self, graph: RoadGraph, rng: random.Random, speed: float) -> None:
        self.graph, self.rng, self.speed = graph, rng, speed
        self.a = rng.choice(sorted(graph.neighbours))
        self.b = rng.choice(graph.neighbours[self.a])
        self.along = rng.uniform(0.0, self._length())

    def _length(self) -> float:
        return math.dist(self.graph.xy[self.a], self.graph.xy[self.b])

    def advance(self, dt: float) -> None:
        """Drive on for ``dt`` seconds, turning at nodes."""
        self.along += self.speed * dt
        while self.along >= self._length():
            self.along -= self._length()
            options = self.graph.neighbours.get(self.b, ())
            onward = [n for n in options if n != self.a] or list(options)
            if not onward:  # a one-way dead end: start again somewhere else
                self.a = self.rng.choice(sorted(self.graph.neighbours))
                onward = list(self.graph.neighbours[self.a])
            else:
                self.a = self.b
            self.b = self.rng.choice(onward)

    def pose(self) -> tuple[float, float, float]:
        """Position (x, y) and heading theta (rad) now."""
        (ax, ay), (bx, by) = self.graph.xy[self.a], self.graph.xy[self.b]
        f = min(1.0, self.along / self._length())
        return ax + f * (bx - ax), ay + f * (by - ay), math.atan2(by - ay, bx - ax)


class MovingFleet:
    """Publishes the state of many walking robots through one MQTT client (see the module doc)."""

    def __init__(
        self,
        mqtt: MqttClient,
        serials: Sequence[str],
        graph: RoadGraph,
        clock: Clock,
        *,
        manufacturer: str = "bench",
        period_s: float = 1.0,
        speed: float = 2.0,
        seed: int = 1,
    ) -> None:
        rng = random.Random(seed)
        self.mqtt, self.clock, self.period_s = mqtt, clock, period_s
        self.serials = list(serials)
        self.headers = {s: HeaderFactory(manufacturer, s, clock=clock) for s in self.serials}
        self.topics = {
            s: Topic(manufacturer=manufacturer, serial_number=s, kind=TopicKind.STATE) for s in self.serials
        }
        self.walkers = {s: Walker(graph, rng, speed * rng.uniform(0.85, 1.15)) for s in self.serials}
        self.battery = {s: rng.uniform(40.0, 100.0) for s in self.serials}
        self.moved_at: dict[str, float] = {}
        self.published = 0

    async def announce(self) -> None:
        """Every robot's retained ``connection`` ONLINE (QoS 1, acknowledged by the broker)."""
        for serial in self.serials:
            online = self.headers[serial].make(Connection, connection_state=ConnectionState.ONLINE)
            topic = self.topics[serial].sibling(TopicKind.CONNECTION)
            await self.mqtt.publish(str(topic), to_bytes(online), qos=1, retain=True, wait=True, timeout=10)

    def state_of(self, serial: str) -> bytes:
        """Move the robot to now and render its ``state``."""
        now = self.clock.monotonic()
        walker = self.walkers[serial]
        walker.advance(now - self.moved_at.get(serial, now))
        self.moved_at[serial] = now
        self.battery[serial] = max(5.0, self.battery[serial] - 0.001)
        x, y, theta = walker.pose()
        state = self.headers[serial].make(
            State,
            order_id="",
            order_update_id=0,
            last_node_id=walker.a,
            last_node_sequence_id=0,
            node_states=[],
            edge_states=[],
            driving=True,
            paused=False,
            action_states=[],
            battery_state=BatteryState(battery_charge=round(self.battery[serial], 1), charging=False),
            operating_mode=OperatingMode.AUTOMATIC,
            errors=[],
            safety_state=SafetyState(e_stop=EStop.NONE, field_violation=False),
            agv_position=AgvPosition(
                x=round(x, 3), y=round(y, 3), theta=round(theta, 4), map_id=OUTDOOR, position_initialized=True
            ),
            velocity=Velocity(vx=walker.speed, vy=0.0, omega=0.0),
        )
        return to_bytes(state)

    async def run(self, stop: asyncio.Event) -> int:
        """Publish states until ``stop`` is set; how many were published."""
        slots = [self.serials[k::SLOTS] for k in range(SLOTS)]
        tick = self.period_s / SLOTS
        due = self.clock.monotonic()
        k = 0
        while not stop.is_set():
            for serial in slots[k]:
                await self.mqtt.publish(str(self.topics[serial]), self.state_of(serial), qos=0)
                self.published += 1
            k = (k + 1) % SLOTS
            due += tick
            delay = due - self.clock.monotonic()
            if delay > 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), delay)
        return self.published
