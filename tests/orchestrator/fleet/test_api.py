"""``GET /v1/fleet``: the app starts the fleet master from its settings and serves the fleet picture."""

from __future__ import annotations

from pathlib import Path

import httpx
import yaml
from fake_robot import SAMPLE_FLEET, FakeRobot, StateWaiter
from vda5050_samples import OfficialSchemas

from interfaces.clock import VirtualClock
from maps.io import save_site
from maps.model import Site
from orchestrator.app import create_app
from orchestrator.settings import CampusSettings, DatabaseSettings, FleetSettings, MqttSettings, Settings
from sim.mosquitto import MosquittoBroker


def _settings(tmp_path: Path, site: Site, broker: MosquittoBroker | None) -> Settings:
    campus, _ = save_site(site, tmp_path / "small.yaml")
    fleet_file = tmp_path / "fleet.yaml"
    fleet_file.write_text(yaml.safe_dump(SAMPLE_FLEET), encoding="utf-8")
    return Settings(
        campus=CampusSettings(map=campus),
        database=DatabaseSettings(url=f"sqlite:///{tmp_path / 'robopost.db'}"),
        mqtt=MqttSettings(port=broker.port if broker else 1, embedded=False),
        fleet=FleetSettings(enabled=broker is not None, config=fleet_file),
    )


async def test_fleet_route_shows_the_picture(
    tmp_path: Path,
    small_site: Site,
    mqtt_broker: MosquittoBroker,
    clock: VirtualClock,
    schemas: OfficialSchemas,
) -> None:
    """With fleet.enabled the app's lifespan starts the master on settings.mqtt; GET /v1/fleet lists
    every robot of the fleet file with its link and last state summary."""
    app = create_app(_settings(tmp_path, small_site, mqtt_broker))
    async with app.router.lifespan_context(app):
        seen = StateWaiter(app.state.fleet)
        robot = FakeRobot(mqtt_broker, "r1", clock, schemas)
        await robot.start()
        robot.battery = 64.5
        await robot.publish_state()
        await seen.wait("r1", 1)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://robopost.test") as client:
            response = await client.get("/v1/fleet")
        await robot.close()
    assert response.status_code == 200
    body = response.json()
    robots = {r["serial"]: r for r in body["robots"]}
    assert sorted(robots) == ["r1", "r2"]
    r1 = robots["r1"]
    assert r1["online"] is True and r1["link"] == "ONLINE" and r1["battery_charge"] == 64.5
    assert r1["name"] == "Cart 1" and r1["kind"] == "cart" and r1["position"]["map_id"] == "outdoor"
    assert r1["state_at"].endswith("Z") and r1["age_s"] >= 0
    assert robots["r2"]["link"] == "UNKNOWN" and robots["r2"]["age_s"] is None
    assert body["stats"]["received"]["state"] == 1


async def test_fleet_route_without_a_master(tmp_path: Path, small_site: Site) -> None:
    """With the fleet off, GET /v1/fleet answers 503 problem+json saying how to turn it on."""
    app = create_app(_settings(tmp_path, small_site, None))
    async with app.router.lifespan_context(app):
        assert app.state.fleet is None
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://robopost.test") as client:
            response = await client.get("/v1/fleet")
    assert response.status_code == 503
    assert response.headers["content-type"].startswith("application/problem+json")
    assert "fleet.enabled" in response.json()["detail"]
