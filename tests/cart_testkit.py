"""Test kit for the cart: the real orchestrator served over loopback HTTP, parcels loaded on a cart with
their codes in clear, and a cart stack (simulated locker board on a real pty → LockerDriver →
CartService → HttpUplink to the orchestrator).

The orchestrator can be stopped and started again on the same database and keys (``stop``/``start``):
the cart sees connection refused meanwhile, like a real outage.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import uvicorn
from api_testkit import make_settings
from argon2 import PasswordHasher

from interfaces.clock import Clock, RealClock
from orchestrator.api.delivery import Delivery
from orchestrator.api.services import Services
from orchestrator.app import create_app
from orchestrator.domain import DomainEvent, ParcelEvent, ParcelState
from orchestrator.settings import CampusSettings
from orchestrator.store.domain_records import ParcelIntake
from orchestrator.store.domain_repositories import ParcelRepository
from robots.cart.events import EventQueue
from robots.cart.locker import LockerConfig, LockerDriver
from robots.cart.service import CartService, CartSettings, ScreenView, Text
from robots.cart.uplink import HttpUplink
from sim.locker_board import LockerBoardSim

REPO = Path(__file__).resolve().parents[1]
SAMPLE_CAMPUS = REPO / "maps" / "campuses" / "neijiang.yaml"
CART, CART_TOKEN = "cart_1", "cart-1-token-0123456789abcdef"
WINDOW, STOP = "w-1600", "stop_dorm_1"
STOP_LABEL = Text("1号学生公寓停靠点", "Dorm 1 stop")
STAFF_PIN = "246810"
COMPARTMENTS = 12


class OrchestratorServer:
    """The real orchestrator app under uvicorn on a loopback port that stays the same across restarts."""

    def __init__(self, tmp_path: Path, database_url: str | None = None) -> None:
        url = database_url or f"sqlite:///{tmp_path / 'orchestrator.db'}"
        self.settings = make_settings(
            tmp_path, url, campus=CampusSettings(map=SAMPLE_CAMPUS), security={"carts": {CART: CART_TOKEN}}
        )
        self.port = _free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.services: Services | None = None
        self._server: uvicorn.Server | None = None
        self._task: asyncio.Task[None] | None = None

    @property
    def running(self) -> bool:
        return self._server is not None

    async def start(self) -> None:
        """Build a fresh app on the same database and serve it (the socket listens before this returns)."""
        app = create_app(self.settings, RealClock())
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", self.port))
        sock.listen(64)
        config = uvicorn.Config(app, log_level="warning", lifespan="on")
        config.load()
        server = uvicorn.Server(config)
        server.lifespan = config.lifespan_class(config)  # what Server.serve does before startup
        await server.startup(sockets=[sock])  # returns once the app's lifespan has started
        if server.should_exit:
            raise RuntimeError("the orchestrator did not start (see the log)")
        self._server = server
        self._task = asyncio.get_running_loop().create_task(self._run(server, sock))
        self.services = app.state.services

    @staticmethod
    async def _run(server: uvicorn.Server, sock: socket.socket) -> None:
        await server.main_loop()
        await server.shutdown(sockets=[sock])

    async def stop(self) -> None:
        """Stop serving (connections are refused until ``start``)."""
        server, task = self._server, self._task
        self._server = self._task = None
        if server is None or task is None:
            return
        server.should_exit = True
        with contextlib.suppress(asyncio.CancelledError):
            await task

    def _services(self) -> Services:
        if self.services is None:
            raise RuntimeError("the orchestrator has not started")
        return self.services

    async def load(self, parcels: Iterable[tuple[str, str, int]], *, window_end: float) -> dict[str, str]:
        """Import, sort and load parcels ``(tracking number, phone, compartment)`` on the cart for the
        stop and window; their codes in clear by tracking number."""
        services = self._services()
        rows = list(parcels)
        with services.sessions.begin() as session:
            repo = ParcelRepository(session, services.clock, services.personal)
            repo.import_rows([ParcelIntake(tn, "S", "李四", phone, dorm="DORM1") for tn, phone, _ in rows])
            for tn, _, _ in rows:
                repo.transition(tn, ParcelEvent.SORT, window=WINDOW, stop=STOP)
        codes = {}
        delivery = Delivery.from_services(services)
        for tn, _, compartment in rows:
            issued = await delivery.load(tn, CART, str(compartment), window_end=window_end)
            if issued.code is None:
                raise RuntimeError(f"no code issued for {tn}")
            codes[tn] = issued.code.code
        return codes

    def state(self, tracking_number: str) -> ParcelState:
        """The parcel's state in the orchestrator's store."""
        return self._repo_call(lambda repo: repo.get(tracking_number).state)

    def events(self, tracking_number: str) -> list[DomainEvent]:
        """The parcel's history in the orchestrator's store."""
        return self._repo_call(lambda repo: repo.events(tracking_number))

    def _repo_call(self, work):  # type: ignore[no-untyped-def]
        services = self._services()
        with services.sessions.begin() as session:
            return work(ParcelRepository(session, services.clock, services.personal))


@dataclass
class CartStack:
    """A simulated board on a pty, the real driver, the cart service and its queue."""

    board: LockerBoardSim
    driver: LockerDriver
    service: CartService
    queue: EventQueue


def cart_settings(**changes: object) -> CartSettings:
    """The test cart's settings (staff PIN ``STAFF_PIN``, the stop's label, quick retries)."""
    base: dict[str, object] = {
        "cart": CART,
        "support_phone": "400-820-1234",
        "staff_pin_hash": PasswordHasher(time_cost=1, memory_cost=8192).hash(STAFF_PIN),
        "stop_labels": {STOP: STOP_LABEL},
        "retry_s": 0.05,
        "max_retry_s": 0.2,
        "sync_s": 0.5,
    }
    base.update(changes)
    return CartSettings(**base)  # type: ignore[arg-type]


@asynccontextmanager
async def cart_stack(
    tmp_path: Path,
    orchestrator_url: str | None,
    *,
    settings: CartSettings | None = None,
    clock: Clock | None = None,
    compartments: int = COMPARTMENTS,
) -> AsyncIterator[CartStack]:
    """A started cart stack (board sim on a pty pair in ``tmp_path``); stopped on exit."""
    clock = clock or RealClock()
    board = LockerBoardSim(tmp_path, compartments)
    await board.start()
    driver = LockerDriver(LockerConfig(port=board.port, compartments=compartments), clock)
    queue = EventQueue(tmp_path / "cart-events.db", CART)
    uplink = HttpUplink(orchestrator_url, CART, CART_TOKEN) if orchestrator_url else None
    service = CartService(settings or cart_settings(), driver, queue, clock, uplink)
    await service.start()
    try:
        yield CartStack(board, driver, service, queue)
    finally:
        await service.stop()
        queue.close()
        await board.stop()


async def until(
    service: CartService, predicate: Callable[[ScreenView], bool], timeout: float = 10.0
) -> ScreenView:
    """The first screen view (now or after a change) for which ``predicate`` holds."""

    async def watch() -> ScreenView:
        async for view in service.changes():
            if predicate(view):
                return view
        raise AssertionError("the screen stream ended")

    return await asyncio.wait_for(watch(), timeout)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
