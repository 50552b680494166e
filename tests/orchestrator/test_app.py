"""The orchestrator app: health, the campus map as GeoJSON (ENU and WGS84), the console page."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx
import pymap3d
import pytest
from fastapi import FastAPI

from interfaces.clock import VirtualClock
from maps.errors import MapError
from maps.io import load_site
from orchestrator.app import create_app
from orchestrator.settings import CampusSettings, DatabaseSettings, Settings
from orchestrator.store import SiteRepository, make_engine, session_factory

REPO = Path(__file__).resolve().parents[2]
SAMPLE_CAMPUS = REPO / "maps" / "campuses" / "neijiang.yaml"


def _get(app: FastAPI, *paths: str) -> list[httpx.Response]:
    """GET each path in turn with the app's lifespan running (in-memory ASGI transport)."""

    async def run() -> list[httpx.Response]:
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://robopost.test") as client:
                return [await client.get(p) for p in paths]

    return asyncio.run(run())


def _settings(folder: Path, campus: Path) -> Settings:
    """Settings serving ``campus`` with a SQLite store in ``folder``."""
    return Settings(
        campus=CampusSettings(map=campus),
        database=DatabaseSettings(url=f"sqlite:///{folder / 'robopost.db'}"),
    )


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> FastAPI:
    """The app serving the sample campus."""
    return create_app(_settings(tmp_path_factory.mktemp("app"), SAMPLE_CAMPUS))


@pytest.fixture(scope="module")
def maps(app: FastAPI) -> dict[str, Any]:
    """The /v1/map answers: default, ?crs=enu and ?crs=wgs84, plus the response of the default."""
    default, enu, wgs84 = _get(app, "/v1/map", "/v1/map?crs=enu", "/v1/map?crs=wgs84")
    return {"response": default, "default": default.json(), "enu": enu.json(), "wgs84": wgs84.json()}


def _features(collection: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    return [f for f in collection["features"] if f["properties"]["feature"] == kind]


def test_healthz_names_the_site(app: FastAPI) -> None:
    """GET /healthz says ok and names the campus it serves."""
    (resp,) = _get(app, "/healthz")
    assert resp.status_code == 200
    assert resp.json() == {"status": "ok", "site": "neijiang"}


def test_map_is_geojson_in_local_metres_by_default(maps: dict[str, Any]) -> None:
    """GET /v1/map is a FeatureCollection in ENU metres, announced by a robopost:enu crs member."""
    assert maps["response"].status_code == 200
    assert maps["response"].headers["content-type"].startswith("application/geo+json")
    body = maps["default"]
    assert body == maps["enu"]
    assert body["type"] == "FeatureCollection"
    assert body["crs"] == {"type": "name", "properties": {"name": "robopost:enu"}}
    station = next(f for f in _features(body, "place") if f["properties"]["name"] == "post_station")
    assert station["geometry"] == {"type": "Point", "coordinates": [-570.0, -455.0]}
    assert station["properties"] == {
        "feature": "place",
        "name": "post_station",
        "kind": "station",
        "label": "邮政驿站",
        "floor": None,
        "building": None,
    }


def test_map_holds_every_edge_place_lift_and_building_but_no_nodes(maps: dict[str, Any]) -> None:
    """The collection has one feature per edge, place, lift and footprint, and none for bare nodes."""
    site = load_site(SAMPLE_CAMPUS)
    body = maps["default"]
    kinds = [f["properties"]["feature"] for f in body["features"]]
    assert set(kinds) == {"building", "edge", "place", "lift"}
    assert kinds.count("edge") == len(site.edges)
    assert kinds.count("place") == len(site.places)
    assert kinds.count("lift") == len(site.lifts)
    assert kinds.count("building") == len(site.buildings)
    assert {f["geometry"]["type"] for f in _features(body, "edge")} == {"LineString"}
    assert {f["geometry"]["type"] for f in _features(body, "building")} == {"Polygon"}


def test_edges_carry_their_passage_properties(maps: dict[str, Any]) -> None:
    """Edge properties tell floor, one-way, width, door, gate, kerb, step, barrier and cart use."""
    edges = {f["properties"]["id"]: f["properties"] for f in _features(maps["default"], "edge")}
    gate = edges["TEA-entrance"]
    assert gate["gate"] == "TEA-gate" and gate["entrance"] is True and gate["floor"] == "TEA-1F"
    assert gate["cart"] is False  # carts never go indoors
    assert edges["rd-north-1"]["oneway"] is True and edges["rd-north-1"]["width"] == 6.0
    assert edges["rd-north-1"]["floor"] is None and edges["rd-north-1"]["cart"] is True
    assert edges["ba-lib-avenue"]["barrier"] == "bollard" and edges["ba-lib-avenue"]["cart"] is False
    assert edges["st-lib"]["step"] is True and edges["fp-dorm-canteen"]["kerb"] is True
    assert edges["ADM-3F-c24-hall"]["door"] == "ADM-3F-fire-W"
    assert set(gate) == {
        "feature",
        "id",
        "a",
        "b",
        "floor",
        "oneway",
        "length",
        "width",
        "speed_limit",
        "door",
        "gate",
        "kerb",
        "step",
        "barrier",
        "entrance",
        "cart",
    }


def test_site_member_lists_floors_with_building_and_elevation(maps: dict[str, Any]) -> None:
    """The top-level site member gives name, origin and each floor's building, elevation and map frame
    (where its own coordinates sit in site metres: indoor robots report poses in it) in order."""
    site = maps["default"]["site"]
    assert site["name"] == "neijiang"
    assert site["origin"] == {"lat": 29.58, "lon": 105.06, "alt": 350.0}
    floors = {f["id"]: f for f in site["floors"]}
    assert len(floors) == 16
    assert floors["ADM-10F"] == {
        "id": "ADM-10F",
        "building": "ADM",
        "name": "10F",
        "elevation": 32.4,
        "frame": {"x": -460.0, "y": -430.0, "yaw": 0.0},
    }
    adm = [f["id"] for f in site["floors"] if f["building"] == "ADM"]
    assert adm == [f"ADM-{n}F" for n in range(1, 11)]


def test_lifts_are_points_listing_their_floors(maps: dict[str, Any]) -> None:
    """Each lift is a Point at its cabin with the floors it serves."""
    lifts = {f["properties"]["id"]: f for f in _features(maps["default"], "lift")}
    assert set(lifts) == {"ADM-L1", "ADM-L2", "TEA-L1", "TEA-L2"}
    assert lifts["TEA-L2"]["properties"]["floors"] == [f"TEA-{n}F" for n in range(1, 7)]
    assert lifts["TEA-L2"]["geometry"]["type"] == "Point"


def test_wgs84_map_is_rfc7946_lon_lat(maps: dict[str, Any]) -> None:
    """?crs=wgs84 gives longitude/latitude (no crs member), matching the ENU points through pymap3d."""
    body = maps["wgs84"]
    assert "crs" not in body
    station = next(f for f in _features(body, "place") if f["properties"]["name"] == "post_station")
    lat, lon, _ = pymap3d.enu2geodetic(-570.0, -455.0, 0.0, 29.58, 105.06, 350.0)
    assert station["geometry"]["coordinates"] == pytest.approx([lon, lat], abs=1e-7)
    for f in body["features"]:
        coords = f["geometry"]["coordinates"]
        flat = (
            [coords]
            if f["geometry"]["type"] == "Point"
            else (coords if f["geometry"]["type"] == "LineString" else coords[0])
        )
        assert all(105.04 < c[0] < 105.08 and 29.57 < c[1] < 29.59 for c in flat)
    ring = _features(body, "building")[0]["geometry"]["coordinates"][0]
    assert ring[0] == ring[-1]  # closed linear ring


def test_unknown_crs_is_refused(app: FastAPI) -> None:
    """?crs=utm is a 422 validation error, not a guess."""
    (resp,) = _get(app, "/v1/map?crs=utm")
    assert resp.status_code == 422


def test_root_serves_the_console_page_and_its_scripts(app: FastAPI) -> None:
    """GET / is the console page; it loads its scripts, stylesheet and the vendored Leaflet from /console/,
    and the map view draws GET /v1/map."""
    page, script, style, view, leaflet, licence = _get(
        app,
        "/",
        "/console/app.js",
        "/console/style.css",
        "/console/views/map.js",
        "/console/vendor/leaflet/leaflet.js",
        "/console/vendor/leaflet/LICENSE",
    )
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert '<script type="module" src="/console/app.js">' in page.text
    assert "/console/vendor/leaflet/leaflet.css" in page.text and "/console/style.css" in page.text
    assert script.status_code == 200 and "./views/" in script.text
    assert style.status_code == 200
    assert view.status_code == 200 and 'fetch("/v1/map")' in view.text
    assert leaflet.status_code == 200 and "Leaflet 1.9.4" in leaflet.text
    assert licence.status_code == 200


def test_app_loads_the_map_only_when_started(tmp_path: Path) -> None:
    """create_app reads nothing; starting it with a missing map fails with the one-line map error."""
    app = create_app(_settings(tmp_path, tmp_path / "missing.yaml"))
    with pytest.raises(MapError, match=r"missing\.yaml: cannot read"):
        _get(app, "/healthz")
    assert not (tmp_path / "robopost.db").exists()


def test_app_registers_its_campus_in_the_store_once(tmp_path: Path) -> None:
    """Start-up migrates the store and records the campus; a restart finds the same site row."""
    settings = _settings(tmp_path, SAMPLE_CAMPUS)
    clock = VirtualClock(start=1_800_000_000.0)
    _get(create_app(settings, clock), "/healthz")
    clock.advance(3600)
    _get(create_app(settings, clock), "/healthz")
    engine = make_engine(settings.database.url)
    try:
        with session_factory(engine).begin() as session:
            (site,) = SiteRepository(session, clock).list()
    finally:
        engine.dispose()
    assert site.name == "neijiang" and site.label.startswith("内江")
    assert site.created_at.timestamp() == 1_800_000_000.0
    assert site.map_source == str(SAMPLE_CAMPUS)
