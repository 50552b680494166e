"""A delivery cart in live mode: the real cart stack on a simulated locker board, in the fleet process.

``LiveCart(spec, clock)`` composes what ``robots.cart.config.run`` composes for a real cart, on the
fleet's ``ScaledClock`` and without taking the process over::

    LockerBoardSim (pty pair in data_dir/locker, via socat) ◀─Modbus RTU─ LockerDriver
        ▲ people open doors, put and take parcels                │ snapshots
        │                                                        ▼
    kiosk page (optional, loopback) ──▶ CartService ◀── CartDriver ◀── VDA 5050 Agent (own MQTT link)
                                           │ EventQueue (data_dir/events.db)
                                           ▼ HttpUplink (cart token)
                                     orchestrator /v1/carts/{cart}/...

Start order: board, driver + service (the service starts the driver), agent, screen; ``stop`` goes in
reverse, and each part is stopped even if an earlier one failed to.

Compartment numbering and sizes. Compartments are numbered 1..N as ``LockerDriver`` numbers them (coil
and inputs of compartment k at base + k - 1). By convention the small ones come first: for the default
N = 50, compartments 1-30 are size S, 31-45 size M and 46-50 size L (``compartment_sizes``); for another
N the same shares (60 % S, 30 % M, the rest L, each rounded) are used. The orchestrator assigns a
parcel's compartment when it is loaded; the board itself does not know sizes.

Clocks. The service, its code guard, pickup tracking and the agent run on the fleet's scaled clock.
The locker board's wire does not: a Modbus reply takes a few real milliseconds whatever the time
factor, so the driver polls, pulses and times out in real seconds (``BoardClock``: real ``sleep`` and
``monotonic``), while its snapshots are stamped with the fleet's ``now()`` so the service's pickup
tracker compares like with like. The tracker's "the lock did not release" time-out is a service
setting in virtual seconds; it is stretched to at least one real second (``open_timeout_s``), since
the driver needs a few real polls to see a door open.

Station staff log in to the cart's staff mode with ``staff_pin`` (the demo's PIN, also for a newcomer
on the kiosk page); its argon2 hash is made once at start with cheap parameters (a simulation, not a
secret).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from argon2 import PasswordHasher

from interfaces.clock import Clock, ScaledClock
from robots.agent.agent import Agent, make_driver, make_mqtt_client
from robots.agent.config import AgentConfig
from robots.cart.agent import CartDriver
from robots.cart.events import EventQueue
from robots.cart.hmi.app import create_kiosk_app
from robots.cart.locker import BoardHealth, LockerConfig, LockerDriver
from robots.cart.service import CartService, CartSettings, Text
from robots.cart.uplink import HttpUplink
from sim.live.serving import AppServer
from sim.locker_board import LockerBoardSim

DEFAULT_COMPARTMENTS = 50
DEFAULT_STAFF_PIN = "246810"
SIZE_SHARES = (("S", 0.6), ("M", 0.3))
"""Shares of small and medium compartments (numbered first); the rest are large."""
OPEN_TIMEOUT_REAL_S = 1.0
"""Real seconds the pickup tracker gives a door to open after a pulse, at least."""

log = logging.getLogger("robopost.sim.live.carts")


def compartment_sizes(count: int = DEFAULT_COMPARTMENTS) -> dict[int, str]:
    """Size of each compartment 1..``count``: S first, then M, then L (see the module docstring)."""
    if count < 1:
        raise ValueError(f"a cart needs at least one compartment, got {count}")
    small = round(count * SIZE_SHARES[0][1])
    medium = round(count * SIZE_SHARES[1][1])
    return {k: "S" if k <= small else "M" if k <= small + medium else "L" for k in range(1, count + 1)}


class BoardClock:
    """The clock of the locker driver: real ``sleep`` and ``monotonic`` (the serial line's time), the
    fleet's ``now()`` for timestamps (see the module docstring)."""

    def __init__(self, stamps: Clock) -> None:
        self._stamps = stamps

    def now(self) -> float:
        """The fleet's time (snapshot stamps)."""
        return self._stamps.now()

    def monotonic(self) -> float:
        """Real seconds (timeouts and poll periods of the wire)."""
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        """Sleep real seconds."""
        await asyncio.sleep(max(0.0, seconds))


@dataclass(frozen=True, slots=True)
class LiveCartSpec:
    """One live cart: its id, board size, data folder, link to the orchestrator, agent and screen."""

    cart: str
    data_dir: Path
    compartments: int = DEFAULT_COMPARTMENTS
    agent: AgentConfig | None = None
    orchestrator_url: str | None = None
    token: str | None = None
    screen_host: str = "127.0.0.1"
    screen_port: int | None = None
    staff_pin: str = DEFAULT_STAFF_PIN
    sync_s: float = 30.0
    stop_labels: Mapping[str, Text] = field(default_factory=dict)
    station_nodes: tuple[str, ...] = ()
    """Map nodes where the cart is at the station (staff unload there); empty: wherever it is not at
    a stop."""


class LiveCart:
    """The running cart of ``spec`` (see the module docstring). Parts are public for the simulated
    people and for tests: ``board``, ``driver``, ``queue``, ``service``, ``agent``, ``screen``."""

    def __init__(self, spec: LiveCartSpec, clock: Clock, *, logger: logging.Logger | None = None) -> None:
        self.spec = spec
        self.clock = clock
        self._log = logger or logging.getLogger(f"robopost.sim.live.cart.{spec.cart}")
        self.board = LockerBoardSim(spec.data_dir / "locker", spec.compartments)
        self.driver = LockerDriver(
            LockerConfig(port=self.board.port, compartments=spec.compartments, poll_s=0.05),
            BoardClock(clock),
        )
        self.queue: EventQueue | None = None
        self.service: CartService | None = None
        self.agent: Agent | None = None
        self.screen: AppServer | None = None
        self._stops: list[tuple[str, Callable[[], Awaitable[None]]]] = []

    @property
    def cart(self) -> str:
        return self.spec.cart

    def settings(self) -> CartSettings:
        """The cart service's settings (stop labels, staff PIN, the stretched open time-out)."""
        factor = self.clock.factor if isinstance(self.clock, ScaledClock) else 1.0
        hasher = PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1)
        return CartSettings(
            cart=self.spec.cart,
            staff_pin_hash=hasher.hash(self.spec.staff_pin),
            stop_labels=dict(self.spec.stop_labels),
            sync_s=self.spec.sync_s,
            open_timeout_s=max(3.0, OPEN_TIMEOUT_REAL_S * factor),
        )

    def need_service(self) -> CartService:
        """The cart service (``RuntimeError`` before ``start``)."""
        if self.service is None:
            raise RuntimeError(f"cart {self.cart} has not started")
        return self.service

    def at_station(self) -> bool:
        """Whether the cart stands at the station: at no stop, and on a station node if any are named."""
        if self.service is None or self.service.stop_id is not None:
            return False
        if not self.spec.station_nodes or self.agent is None:
            return True
        return self.agent.vehicle.last_node_id in self.spec.station_nodes

    async def start(self) -> None:
        """Board, service (with the driver), agent, screen; everything started is stopped on failure."""
        spec = self.spec
        try:
            spec.data_dir.mkdir(parents=True, exist_ok=True)
            (spec.data_dir / "locker").mkdir(exist_ok=True)
            await self.board.start()
            self._stops.append(("board", self.board.stop))
            queue = EventQueue(spec.data_dir / "events.db", spec.cart)
            self.queue = queue
            self._stops.append(("event queue", _closing(queue)))
            uplink = (
                HttpUplink(spec.orchestrator_url, spec.cart, spec.token)
                if spec.orchestrator_url is not None and spec.token is not None
                else None
            )
            service = CartService(self.settings(), self.driver, queue, self.clock, uplink, logger=self._log)
            self.service = service
            await service.start()
            self._stops.append(("service", service.stop))
            if spec.agent is not None:
                await self._start_agent(spec.agent, service)
            if spec.screen_port is not None:
                screen = AppServer(
                    create_kiosk_app(service), spec.screen_host, spec.screen_port, name=f"{spec.cart} screen"
                )
                await screen.start()
                self.screen = screen
                self._stops.append(("screen", screen.stop))
                self._log.info("cart %s: screen on %s", spec.cart, screen.url)
        except BaseException:
            await self.stop()
            raise

    async def _start_agent(self, robot: AgentConfig, service: CartService) -> None:
        driver = CartDriver(make_driver(robot, self.clock), service)
        agent = Agent(robot, driver, make_mqtt_client(robot, self.clock), self.clock)
        await agent.start()
        self.agent = agent
        self._stops.append(("agent", agent.stop))

    async def stop(self) -> None:
        """Stop what was started, in reverse order (safe to call twice); errors are logged."""
        stops, self._stops = self._stops, []
        for what, stop in reversed(stops):
            try:
                await stop()
            except Exception:
                self._log.exception("cart %s: %s did not stop cleanly", self.cart, what)
        self.agent = self.screen = None

    async def board_ok(self, timeout_s: float = 5.0) -> None:
        """Return once the driver has polled the board (real seconds; ``TimeoutError`` after)."""
        service = self.need_service()
        async with asyncio.timeout(timeout_s):
            async for view in service.changes():
                if view.board is BoardHealth.OK:
                    return


def _closing(queue: EventQueue) -> Callable[[], Awaitable[None]]:
    async def close() -> None:
        queue.close()

    return close
