"""The console's map view in a real headless Chromium: after login it fetches /v1/map, draws it with
Leaflet and switches floors."""

from __future__ import annotations

import shutil
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
import uvicorn
from console_testkit import PASSWORD, add_users
from PIL import Image
from playwright.sync_api import Page, sync_playwright

from interfaces.clock import RealClock
from orchestrator.app import create_app
from orchestrator.settings import CampusSettings, DatabaseSettings, HttpSettings, SecuritySettings, Settings

REPO = Path(__file__).resolve().parents[2]
SAMPLE_CAMPUS = REPO / "maps" / "campuses" / "neijiang.yaml"
CHROMIUM = "/usr/bin/chromium"
# keep the browser off the network: only loopback resolves
CHROMIUM_ARGS = ["--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"]
SHOWCASE_PNG = Path("/tmp/robopost_map_page.png")

pytestmark = pytest.mark.integration


@contextmanager
def _serving(map_file: Path, store: Path) -> Iterator[str]:
    """The app serving ``map_file`` (store in folder ``store``) on a free loopback port (uvicorn in a
    thread); yields the base URL.

    The socket is bound and listening before the server starts, so the first request simply waits in
    the backlog until uvicorn accepts it: no polling for readiness.
    """
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    port = sock.getsockname()[1]
    settings = Settings(
        campus=CampusSettings(map=map_file),
        http=HttpSettings(port=port),
        database=DatabaseSettings(url=f"sqlite:///{store / 'robopost.db'}"),
        security=SecuritySettings(keys_file=store / "keys.yaml"),
    )
    add_users(settings, RealClock(), ["viewer"])
    server = uvicorn.Server(uvicorn.Config(create_app(settings), log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        sock.close()


@pytest.fixture
def server_url(tmp_path: Path) -> Iterator[str]:
    """The app serving the sample campus."""
    with _serving(SAMPLE_CAMPUS, tmp_path) as url:
        yield url


@pytest.fixture
def page() -> Iterator[Page]:
    """A fresh page in headless Debian Chromium (1400 × 900), failing the test on any page error."""
    errors: list[str] = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            yield page
        finally:
            browser.close()
    assert errors == [], f"errors in the page: {errors}"


def _open(page: Page, url: str) -> None:
    """Open the console at ``url`` and log in as the viewer."""
    page.goto(url)
    page.fill("#login-username", "viewer")
    page.fill("#login-password", PASSWORD)
    page.click("#login-submit")
    page.wait_for_selector('body[data-screen="shell"]', timeout=30_000)


def _wait_drawn(page: Page, floor: str) -> None:
    page.wait_for_selector(f'.view-map[data-ready="1"][data-floor="{floor}"]', timeout=30_000)


def _labels(page: Page) -> list[str]:
    return page.locator(".leaflet-tooltip.place-label").all_text_contents()


def _drawn_share(png: Path) -> float:
    """Share of pixels that differ from the map's plain background colour."""
    img = np.asarray(Image.open(png).convert("RGB"), dtype=np.int16)
    background = np.array([238, 241, 244])
    return float((np.abs(img - background).sum(axis=2) > 40).mean())


def test_page_draws_the_outdoor_network_with_bilingual_labels(
    server_url: str, page: Page, tmp_path: Path
) -> None:
    """Opening / and logging in draws the outdoor network: stops labelled in Chinese, in English after
    the language toggle; gates marked; the outdoor button pressed."""
    _open(page, f"{server_url}/")
    _wait_drawn(page, "outdoor")
    assert any("邮政驿站" in t for t in _labels(page))
    assert any("师生活动中心" in t for t in _labels(page))
    assert page.locator('.floor-btn[data-floor="outdoor"][aria-pressed="true"]').count() == 1
    shot = tmp_path / "outdoor.png"
    page.screenshot(path=str(shot))
    shutil.copyfile(shot, SHOWCASE_PNG.with_name("robopost_map_page_outdoor.png"))
    assert _drawn_share(shot) > 0.02
    page.click("#lang")
    _wait_drawn(page, "outdoor")
    page.wait_for_function(
        "[...document.querySelectorAll('.place-label')].some(e => e.textContent === 'post_station')"
    )


def test_floor_switcher_draws_one_floor_with_lifts_and_offices(
    server_url: str, page: Page, tmp_path: Path
) -> None:
    """Clicking ADM 3F redraws the map with that floor: both lifts, IoT doors, office labels."""
    _open(page, f"{server_url}/")
    _wait_drawn(page, "outdoor")
    page.click('.floor-btn[data-floor="ADM-3F"]')
    _wait_drawn(page, "ADM-3F")
    assert page.locator(".fac-lift").count() == 2
    assert page.locator(".fac-door").count() >= 6
    assert any("行政楼301办公室" in t for t in _labels(page))
    assert page.locator('.floor-btn[data-floor="ADM-3F"][aria-pressed="true"]').count() == 1
    shot = tmp_path / "adm-3f.png"
    page.screenshot(path=str(shot))
    shutil.copyfile(shot, SHOWCASE_PNG)
    with Image.open(shot) as img:
        assert img.size == (1400, 900)
    assert _drawn_share(shot) > 0.02


def test_floor_in_the_address_opens_that_floor(server_url: str, page: Page) -> None:
    """A link to /#/map?floor=TEA-1F opens the teaching building's ground floor with its entrance gate."""
    _open(page, f"{server_url}/#/map?floor=TEA-1F")
    _wait_drawn(page, "TEA-1F")
    assert page.locator('.fac-gate[data-id="TEA-gate"]').count() == 1
    assert "教学楼交接点" in _labels(page)


def test_building_without_outdoor_network_opens_on_its_first_floor(
    shared_data: Path, page: Page, tmp_path: Path
) -> None:
    """The Open-RMF hotel (no outdoor nodes) opens on L1, offers no outdoor button, and L3 shows its lifts."""
    with _serving(shared_data / "maps" / "rmf" / "hotel.building.yaml", tmp_path) as url:
        _open(page, f"{url}/")
        _wait_drawn(page, "L1")
        assert page.locator('.floor-btn[data-floor="outdoor"]').count() == 0
        assert page.locator(".floor-btn").count() == 3
        page.click('.floor-btn[data-floor="L3"]')
        _wait_drawn(page, "L3")
        assert page.locator(".fac-lift").count() == 2
        assert "L3_room1" in " ".join(_labels(page))
