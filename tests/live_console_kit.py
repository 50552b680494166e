"""Test kit of the console's browser tests (its fixtures are re-exported by ``tests/console/conftest.py``):
the real app with the fleet master and the live dispatch loop on a ``ScaledClock``, a real Mosquitto,
simulated carts as real VDA 5050 agents on ``SimDriver`` (sharing the clock), console users, and a page
in headless Debian Chromium.

Time. The app and the agents share one ``ScaledClock`` (``FACTOR`` times real time) that starts a few
virtual minutes before window w1 opens, so parcels imported at once are planned into w1 and the carts
leave the station while the test watches. Remote driving is time-critical on the robot: the dead man
(``deadman_timeout``) and the command age limit are virtual seconds, so the agents' teleop section is
stretched by the factor, as the demo stretches network time-outs, while the browser sends at 10 Hz real.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest_asyncio
from console_testkit import PASSWORD, add_users_to, serving
from delivery_testkit import SAMPLE_CAMPUS
from live_testkit import STATION_TOKEN, live_settings, station_pose, until_states
from playwright.async_api import Browser, Page, async_playwright

from interfaces.clock import ScaledClock
from maps.io import load_map
from orchestrator.app import create_app
from orchestrator.fleet.master import FleetMaster
from orchestrator.fleet.picture import RobotView
from robots.agent.agent import Agent, make_driver, make_mqtt_client
from robots.agent.config import parse_config
from sim.mosquitto import MosquittoBroker

FACTOR = 10.0
"""Virtual seconds per real second."""
START = dt.datetime(2026, 11, 27, 7, 24, tzinfo=ZoneInfo("Asia/Shanghai")).timestamp()
"""Six virtual minutes before window w1 (07:30) opens."""
WAIT = 60.0
"""Real seconds any one check may take before the test fails."""
CARTS = ("cart_1", "cart_2", "cart_3")
SPACING = 25.0
"""Metres between the carts at the start (apart enough to click one on the map)."""
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"]  # loopback only
SCREENSHOTS = Path(__file__).resolve().parents[1] / "build" / "screenshots" / "console"


@dataclass
class LiveConsole:
    """The served app (fleet + live loop), its URL, the agents, a client and the shared clock."""

    app: Any
    url: str
    client: httpx.AsyncClient
    clock: ScaledClock
    master: FleetMaster
    agents: dict[str, Agent] = field(default_factory=dict)

    def view(self, serial: str) -> RobotView:
        """The fleet master's picture of one robot."""
        return self.master.view(serial)

    async def until(self, check: Callable[[], bool], timeout: float = WAIT) -> None:
        """Until ``check()`` holds, checked again after every state the fleet master takes in."""
        await until_states(self.master, check, timeout)

    async def import_parcels(self, count: int = 6) -> None:
        """Parcels for the dorms' stops, imported at the station (planned into w1)."""
        dorms = ("DORM1", "DORM2", "DORM3")
        rows = [
            {
                "tracking_number": f"CS{i:03d}",
                "recipient_name": "张三",
                "phone": f"1381234{i:04d}",
                "dorm": dorms[i % len(dorms)],
                "size": "S",
            }
            for i in range(count)
        ]
        answer = await self.client.post(
            "/v1/parcels:import", json={"parcels": rows}, headers={"Authorization": f"Bearer {STATION_TOKEN}"}
        )
        assert answer.status_code == 200, answer.text


def _agent(broker: MosquittoBroker, clock: ScaledClock, serial: str, index: int) -> Agent:
    """A cart on the outdoor map next to the post station, as a real VDA 5050 agent on a SimDriver."""
    map_id, x, y = station_pose(load_map(SAMPLE_CAMPUS))
    config = parse_config(
        {
            "manufacturer": "robopost",
            "serial_number": serial,
            "kind": "cart",
            "map_id": map_id,
            "mqtt": {
                "host": broker.host,
                "port": broker.port,
                "username": serial,
                "password": f"{serial}-secret",
            },
            "state_period": 5.0,
            "visualization_period": 0.0,
            "driver": {
                "type": "sim",
                "speed": 1.5,
                "step": 0.5,
                "start": {"x": x + SPACING * index, "y": y, "theta": 0.0},
            },
            "safety": {
                "period": 0.5,
                # virtual seconds: stretched so a 10 Hz (real) stream of commands keeps it alive
                "teleop": {
                    "deadman_timeout": 0.35 * FACTOR,
                    "max_age": 0.3 * FACTOR,
                    "clock_allowance": 0.1 * FACTOR,
                    "max_rate": 50.0,
                    "burst": 10,
                },
            },
        }
    )
    return Agent(config, make_driver(config, clock), make_mqtt_client(config, clock), clock)


@pytest_asyncio.fixture
async def live_console(tmp_path: Path, mqtt_broker: MosquittoBroker) -> AsyncIterator[LiveConsole]:
    """The app with the fleet master and the live loop, served on loopback; three cart agents online;
    console users ``viewer``, ``operator`` and ``admin`` (password ``console_testkit.PASSWORD``)."""
    settings = live_settings(tmp_path, mqtt_broker, FACTOR, START, carts=CARTS)
    clock = ScaledClock(FACTOR, epoch=START)
    app = create_app(settings, clock)
    agents = {serial: _agent(mqtt_broker, clock, serial, i) for i, serial in enumerate(CARTS)}
    async with serving(app) as host, httpx.AsyncClient(base_url=f"http://{host}") as client:
        assert (await client.get("/healthz")).status_code == 200
        await asyncio.to_thread(add_users_to, app)
        live = LiveConsole(app, f"http://{host}", client, clock, app.state.fleet, agents)
        for agent in agents.values():
            await agent.start()
        try:
            await live.until(lambda: all(live.view(s).online and live.view(s).position for s in CARTS))
            yield live
        finally:
            for agent in agents.values():
                await agent.stop()


@pytest_asyncio.fixture
async def browser() -> AsyncIterator[Browser]:
    """Headless Debian Chromium, kept off the network."""
    async with async_playwright() as pw:
        chromium = await pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            await chromium.close()


@pytest_asyncio.fixture
async def page(browser: Browser) -> AsyncIterator[Page]:
    """A fresh 1440 × 900 page that fails the test on any error in the page."""
    errors: list[str] = []
    context = await browser.new_context(
        viewport={"width": 1440, "height": 900}, locale="zh-CN", timezone_id="Asia/Shanghai"
    )
    page = await context.new_page()
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    try:
        yield page
    finally:
        await context.close()
    assert errors == [], f"errors in the page: {errors}"


async def log_in(page: Page, url: str, username: str = "operator", password: str = PASSWORD) -> None:
    """Open the console and log in through its form; returns once the shell is shown."""
    await page.goto(f"{url}/")
    await page.fill("#login-username", username)
    await page.fill("#login-password", password)
    await page.click("#login-submit")
    await page.wait_for_selector('body[data-screen="shell"]')


async def shot(page: Page, name: str) -> Path:
    """Save the page as ``build/screenshots/console/{name}.png``."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    await page.screenshot(path=str(path))
    return path
