"""Test kit of the live-loop tests: the real app with the dispatch loop on, a real VDA 5050 cart agent
on a simulated base over a real Mosquitto, both on one ``ScaledClock``, and waits that wake on the
fleet master's states (never a sleep).

The app and the agent share the clock (``FACTOR``x, starting at ``START``, 07:10 campus time: 20
virtual minutes — 5 real seconds — before window w1 opens, so parcels imported at once are planned
into it).
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import yaml
from console_testkit import serving
from delivery_testkit import SAMPLE_CAMPUS
from fastapi import FastAPI

from interfaces.clock import ScaledClock
from maps.io import load_map
from maps.model import Site
from orchestrator.api.live_operations import LiveDispatch
from orchestrator.app import create_app
from orchestrator.domain import ParcelState
from orchestrator.fleet.master import FleetMaster
from orchestrator.fleet.orders import OrderBuilder
from orchestrator.settings import (
    CampusSettings,
    ClockSettings,
    DatabaseSettings,
    FleetSettings,
    MqttSettings,
    OperationsSettings,
    SecuritySettings,
    Settings,
)
from orchestrator.store.domain_repositories import ParcelRepository
from robots.agent.agent import Agent, make_driver, make_mqtt_client
from robots.agent.config import parse_config
from sim.mosquitto import MosquittoBroker

FACTOR = 240.0
START = dt.datetime(2026, 11, 27, 7, 10, tzinfo=ZoneInfo("Asia/Shanghai")).timestamp()
WAIT = 60.0
"""Real seconds a check may take before the test fails."""

CART = "cart_1"
CART_TOKEN = "cart-1-token-0123456789"
STATION_TOKEN = "station-token-0123456789"


@dataclass
class LiveCampus:
    """The served app with the loop on, the cart agent, a client, the shared clock and the host."""

    app: FastAPI
    client: httpx.AsyncClient
    clock: ScaledClock
    master: FleetMaster
    dispatch: LiveDispatch
    host: str
    agent: Agent

    def parcel(self, tn: str) -> ParcelState:
        """A parcel's stored state."""
        services = self.app.state.services
        with services.sessions() as session:
            state: ParcelState = (
                ParcelRepository(session, services.clock, services.personal).get(tn).parcel.state
            )
            return state

    async def until(self, check: Callable[[], bool]) -> None:
        """Until ``check()`` holds, checked again after every state the fleet master takes in."""
        await until_states(self.master, check)

    async def import_parcels(self, rows: list[dict[str, str]]) -> None:
        """``POST /v1/parcels:import`` as the station."""
        answer = await self.client.post(
            "/v1/parcels:import", json={"parcels": rows}, headers={"Authorization": f"Bearer {STATION_TOKEN}"}
        )
        assert answer.status_code == 200, answer.text


async def until_states(master: FleetMaster, check: Callable[[], bool], timeout: float = WAIT) -> None:
    """Until ``check()`` holds, checked again after every state ``master`` takes in (at most
    ``timeout`` real seconds)."""
    changed = asyncio.Event()
    remove = master.add_state_listener(lambda *_: changed.set())

    async def watch() -> None:
        while not check():
            changed.clear()
            await changed.wait()

    try:
        await asyncio.wait_for(watch(), timeout)
    finally:
        remove()


def station_pose(site: Site) -> tuple[str, float, float]:
    """The map id and coordinates of the post station's node (where the carts start)."""
    builder = OrderBuilder(site)
    station = next(p for p in site.places.values() if p.kind.value == "station")
    x, y = builder.map_xy(station.node)
    return builder.map_of(station.node), x, y


def live_settings(
    tmp_path: Path,
    broker: MosquittoBroker,
    factor: float = FACTOR,
    start: float = START,
    *,
    carts: tuple[str, ...] = (CART,),
) -> Settings:
    """The sample campus with ``carts`` (``CART`` has ``CART_TOKEN`` for the cart API), the fleet
    master and the dispatch loop on, on a scaled clock."""
    fleet = {
        "orchestrator": {"username": "orchestrator", "password": "orch-secret"},
        "robots": [
            {"manufacturer": "robopost", "serial": serial, "kind": "cart", "password": f"{serial}-secret"}
            for serial in carts
        ],
    }
    fleet_file = tmp_path / "fleet.yaml"
    fleet_file.write_text(yaml.safe_dump(fleet), encoding="utf-8")
    return Settings(
        campus=CampusSettings(map=SAMPLE_CAMPUS),
        database=DatabaseSettings(url=f"sqlite:///{tmp_path / 'robopost.db'}"),
        security=SecuritySettings(
            keys_file=tmp_path / "keys.yaml", partners={"station": STATION_TOKEN}, carts={CART: CART_TOKEN}
        ),
        mqtt=MqttSettings(port=broker.port, embedded=False),
        # network time-outs in virtual seconds: stretched by the factor, as the demo does
        fleet=FleetSettings(
            enabled=True, config=fleet_file, confirm_timeout_s=5 * factor, stale_after_s=60 * factor
        ),
        operations=OperationsSettings(enabled=True),
        clock=ClockSettings(time_factor=factor, epoch=start),
    )


def cart_agent(broker: MosquittoBroker, clock: ScaledClock, durations: Mapping[str, float]) -> Agent:
    """The cart's VDA 5050 agent on a simulated base at the station; ``durations``: action times
    (virtual seconds), e.g. how long a ``waitForPickup`` lasts."""
    map_id, x, y = station_pose(load_map(SAMPLE_CAMPUS))
    config = parse_config(
        {
            "manufacturer": "robopost",
            "serial_number": CART,
            "kind": "cart",
            "map_id": map_id,
            "mqtt": {
                "host": broker.host,
                "port": broker.port,
                "username": CART,
                "password": f"{CART}-secret",
            },
            "state_period": 30.0,
            "visualization_period": 30.0,
            "driver": {
                "type": "sim",
                "speed": 30.0,
                "step": 1.0,
                "start": {"x": x, "y": y, "theta": 0.0},
                "action_durations": dict(durations),
            },
        }
    )
    return Agent(config, make_driver(config, clock), make_mqtt_client(config, clock), clock)


@asynccontextmanager
async def live_campus(
    tmp_path: Path,
    broker: MosquittoBroker,
    *,
    durations: Mapping[str, float],
    prepare: Callable[[FastAPI], None] = lambda _app: None,
) -> AsyncIterator[LiveCampus]:
    """The app served on a loopback port with its loop on and the cart agent started; ``prepare``
    runs once the app's lifespan is up (e.g. to add console users)."""
    settings = live_settings(tmp_path, broker)
    clock = ScaledClock(FACTOR, epoch=START)
    app = create_app(settings, clock)
    agent = cart_agent(broker, clock, durations)
    async with serving(app) as host, httpx.AsyncClient(base_url=f"http://{host}") as client:
        assert (await client.get("/healthz")).status_code == 200
        prepare(app)
        await agent.start()
        try:
            yield LiveCampus(app, client, clock, app.state.fleet, app.state.operations, host, agent)
        finally:
            await agent.stop()
