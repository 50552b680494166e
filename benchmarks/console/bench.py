"""How smooth is the console's map with N moving robots? ``run_bench(robots, seconds)`` measures it
in a real browser (issue 11: with 200 robots the map's frame time stays p95 < 50 ms).

Set-up, all on loopback, in temporary folders:

1. its own Mosquitto (``sim.mosquitto``, anonymous);
2. the real orchestrator app (``orchestrator.app.create_app``) served by uvicorn on a free port, with
   the fleet master on a fleet file of ``robots`` robots (manufacturer ``bench``, carts and indoor
   robots alternating), SQLite and the sample campus ``maps/campuses/neijiang.yaml``; a console admin
   made with ``create_user`` before the app starts;
3. ``robots`` robots driving random walks on the campus's outdoor roads at about 2 m/s
   (``movers.MovingFleet``): each publishes the retained ``connection`` ONLINE and a VDA 5050
   ``state`` with its ``agvPosition`` about once a second;
4. headless Debian Chromium (Playwright, viewport 1600 × 900, no network but loopback) opens the
   console, logs in through its login form, opens the map and waits until the map view's hook
   ``window.__robopostMap.robots`` counts every robot drawn.

Then, after ``warmup_s``, for ``seconds`` the page itself (``probe.js``, injected before the page's
scripts) records the time between consecutive ``requestAnimationFrame`` callbacks with
``performance.now()`` (the frame time the operator sees: a frame that takes longer to script, lay out
or paint delays the next callback), long tasks (``PerformanceObserver``), and the ``fleet.robot``
messages arriving on the console stream (``/v1/console/stream``). The map view's own draw-loop costs
(``window.__robopostMap.frames``) are reported beside them. Chromium paces animation frames at 60 Hz,
so 16.7 ms is the floor of the frame time; headless here it rasterises and composites in software on
2 shared cores, a harder place to be smooth than an operator's desktop with a GPU.

Pages: ``console`` is the real console (``orchestrator/console/``, ``views/map.js``); ``minimal``
(``minimal.html``) is a bare page with the same stream and one-canvas drawing, served by the benchmark
on the app's origin: a baseline, and the stand-in while the console's map view does not exist
(``page="auto"`` picks the console when ``views/map.js`` is there).

Each robot's state goes out every ``1.02 × ROBOT_UPDATE_INTERVAL_S`` (1.02 s): about 1 Hz, and just
slower than the console stream's once-a-second throttle per robot, so network jitter does not make the
throttle drop every other update; the stream then carries ~``robots`` ``fleet.robot`` events a second,
the full load the map is meant for.

Result keys: ``robots``, ``seconds``, ``frames``, ``frame_p50_ms``, ``frame_p95_ms``, ``frame_max_ms``,
``fps``, ``robots_drawn``, ``stream_events_per_s``, and the details ``page``, ``target_p95_ms``,
``meets_target``, ``frame_p99_ms``, ``frames_over_50ms``, ``long_tasks``, ``long_task_max_ms``,
``long_tasks_observed`` (whether the browser reports them), ``draw_p50_ms``, ``draw_p95_ms``,
``draw_max_ms`` (None without the hook's ``frames``), ``expected_events_per_s``,
``states_published_per_s``, ``cpu_percent_browser``, ``cpu_percent_bench_process`` (the app, the
robots and Playwright's client share this process), ``cpu_percent_broker`` (percent of one core; the
machine has 2), ``load_average_1m`` (the machine's load when the window closed: anything else running
competes for the same 2 cores, and frame times with it), ``viewport``, ``page_errors``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import socket
import tempfile
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import numpy as np
import psutil
import uvicorn
import yaml
from fastapi import FastAPI
from playwright.async_api import ConsoleMessage, Page, Playwright, async_playwright
from playwright.async_api import TimeoutError as PlaywrightTimeout

from benchmarks.console.movers import MovingFleet, RoadGraph
from interfaces.clock import RealClock
from interfaces.mqtt import MqttClient, MqttConfig
from maps.io import load_map
from maps.model import Site
from orchestrator.api.operators import ROBOT_UPDATE_INTERVAL_S, create_user
from orchestrator.app import create_app
from orchestrator.settings import (
    CampusSettings,
    DatabaseSettings,
    FleetSettings,
    MqttSettings,
    SecuritySettings,
    Settings,
)
from sim.mosquitto import MosquittoBroker

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
CAMPUS = REPO / "maps" / "campuses" / "neijiang.yaml"
CONSOLE_MAP_VIEW = REPO / "orchestrator" / "console" / "views" / "map.js"
MINIMAL_PATH = "/__bench/console-minimal.html"

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"]  # loopback only
MINIMAL_ARGS = ["--disable-features=LocalNetworkAccessChecks"]
"""The minimal page comes from Playwright, not from the network: Chromium would not know its address
space and refuse its WebSocket to loopback (ERR_BLOCKED_BY_LOCAL_NETWORK_ACCESS_CHECKS)."""
VIEWPORT = {"width": 1600, "height": 900}

MANUFACTURER = "bench"
USER = "bench-admin"
STATE_PERIOD_S = ROBOT_UPDATE_INTERVAL_S * 1.02
TARGET_P95_MS = 50.0
MAX_ROBOTS = 2000
MAX_SECONDS = 600.0
WAIT_S = 60.0
"""Longest wait for one set-up step (app up, page loaded, every robot on the map)."""

PAGES = ("auto", "console", "minimal")


def serials(robots: int) -> list[str]:
    """The bench robots' serial numbers ``b0000``, ``b0001``, …"""
    return [f"b{i:04d}" for i in range(robots)]


def bench_fleet_file(robots: int) -> dict[str, Any]:
    """A fleet file of ``robots`` robots ``b0000``… (manufacturer ``bench``), carts and indoor robots
    alternating."""
    return {
        "orchestrator": {"username": "orchestrator", "password": secrets.token_urlsafe(12)},
        "robots": [
            {
                "manufacturer": MANUFACTURER,
                "serial": serial,
                "kind": "cart" if i % 2 == 0 else "indoor",
                "password": secrets.token_urlsafe(12),
            }
            for i, serial in enumerate(serials(robots))
        ],
    }


def _settings(folder: Path, broker: MosquittoBroker, robots: int) -> Settings:
    fleet_file = folder / "fleet.yaml"
    fleet_file.write_text(yaml.safe_dump(bench_fleet_file(robots)), encoding="utf-8")
    return Settings(
        campus=CampusSettings(map=CAMPUS),
        database=DatabaseSettings(url=f"sqlite:///{folder / 'robopost.db'}"),
        security=SecuritySettings(keys_file=folder / "keys.yaml"),
        mqtt=MqttSettings(host=broker.host, port=broker.port, embedded=False),
        fleet=FleetSettings(enabled=True, config=fleet_file),
    )


@contextlib.asynccontextmanager
async def _serve(app: FastAPI) -> AsyncIterator[str]:
    """Serve ``app`` with uvicorn in this loop on a free loopback port; yields ``host:port`` (the socket
    listens first, so an early request waits in the backlog for the lifespan)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    config = uvicorn.Config(app, log_level="warning", lifespan="on", ws="websockets-sansio", access_log=False)
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        yield f"127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        await task
        sock.close()


def _pick_page(page: str) -> str:
    if page not in PAGES:
        raise ValueError(f"page must be one of {', '.join(PAGES)}, not {page!r}")
    if page == "auto":
        return "console" if CONSOLE_MAP_VIEW.is_file() else "minimal"
    return page


async def _open_map(page: Page, base: str, which: str, password: str, robots: int) -> None:
    """Log in through the page's form, open the map and wait until every robot is drawn."""
    if which == "minimal":
        html = (HERE / "minimal.html").read_text(encoding="utf-8")
        await page.route(
            f"{base}{MINIMAL_PATH}", lambda route: route.fulfill(body=html, content_type="text/html")
        )
        await page.goto(f"{base}{MINIMAL_PATH}")
    else:
        await page.goto(f"{base}/#/map")  # the shell opens the view named in the hash after login
    await page.locator("input[name=username]").fill(USER)
    await page.locator("input[name=password]").fill(password)
    await page.locator("input[name=password]").press("Enter")
    try:
        await page.wait_for_function(
            "n => ((window.__robopostMap || {}).robots || 0) >= n", arg=robots, timeout=WAIT_S * 1000
        )
    except PlaywrightTimeout:
        drawn = await page.evaluate("(window.__robopostMap || {}).robots")
        raise RuntimeError(
            f"the {which} page drew {drawn} of {robots} robots within {WAIT_S:g} s ({page.url})"
        ) from None


def _echo_error(message: ConsoleMessage, say: Callable[[str], Any]) -> None:
    """Pass the page's console errors on (a refused WebSocket shows only there)."""
    if message.type == "error":
        where = message.location.get("url") or "?"
        say(f"console bench: page error: {message.text} ({where})")


def _ms(values: list[float], q: float) -> float:
    return round(float(np.percentile(values, q)), 2)


def _figures(raw: dict[str, Any], draws: list[float], robots: int, drawn: int) -> dict[str, Any]:
    """The result from the probe's raw record (module doc for the keys)."""
    deltas: list[float] = raw["deltas"] or [float("nan")]
    elapsed_s = raw["elapsedMs"] / 1000.0
    long_tasks: list[float] = raw["longTasks"]
    return {
        "robots": robots,
        "seconds": round(elapsed_s, 3),
        "frames": len(raw["deltas"]),
        "frame_p50_ms": _ms(deltas, 50),
        "frame_p95_ms": _ms(deltas, 95),
        "frame_p99_ms": _ms(deltas, 99),
        "frame_max_ms": round(max(deltas), 2),
        "frames_over_50ms": sum(1 for d in deltas if d > TARGET_P95_MS),
        "fps": round(len(raw["deltas"]) / elapsed_s, 1),
        "robots_drawn": drawn,
        "stream_events_per_s": round(raw["robotEvents"] / elapsed_s, 1),
        "expected_events_per_s": round(robots / STATE_PERIOD_S, 1),
        "target_p95_ms": TARGET_P95_MS,
        "meets_target": _ms(deltas, 95) < TARGET_P95_MS,
        "long_tasks": len(long_tasks),
        "long_task_max_ms": round(max(long_tasks), 1) if long_tasks else 0.0,
        "long_tasks_observed": raw["longTaskSupported"],
        "draw_p50_ms": _ms(draws, 50) if draws else None,
        "draw_p95_ms": _ms(draws, 95) if draws else None,
        "draw_max_ms": round(max(draws), 2) if draws else None,
    }


async def _measure(page: Page, seconds: float) -> tuple[dict[str, Any], list[float], int]:
    """The probe's record over ``seconds``, the map's draw costs in that window, robots drawn at its end."""
    raw: dict[str, Any] = await page.evaluate("ms => window.__bench.record(ms)", seconds * 1000.0)
    hook: dict[str, Any] = await page.evaluate(
        "() => { const m = window.__robopostMap || {};"
        " return {robots: m.robots || 0, frames: Array.isArray(m.frames) ? m.frames.slice() : []}; }"
    )
    # the hook keeps the last 600 draws, at most one per animation frame: the window's are its tail
    frames = [float(f) for f in hook["frames"]]
    draws = frames[len(frames) - min(len(frames), len(raw["deltas"])) :]
    return raw, draws, int(hook["robots"])


class _CpuMeter:
    """CPU time used from now on by the browser (this process's Chromium children), this process (the
    app, the robots, Playwright's client) and the broker; percent of one core (2 cores = 200 %)."""

    def __init__(self, broker_pid: int | None) -> None:
        me = psutil.Process()
        browser = [p for p in me.children(recursive=True) if "chrom" in p.name().lower()]
        broker = [psutil.Process(broker_pid)] if broker_pid is not None else []
        self.groups = {"browser": browser, "bench_process": [me], "broker": broker}
        self.start = {name: self._seconds(procs) for name, procs in self.groups.items()}

    @staticmethod
    def _seconds(procs: list[psutil.Process]) -> float:
        total = 0.0
        for proc in procs:
            with contextlib.suppress(psutil.NoSuchProcess):
                times = proc.cpu_times()
                total += times.user + times.system
        return total

    def percent(self, elapsed: float) -> dict[str, float]:
        """``cpu_percent_<group>`` since the start, over ``elapsed`` seconds."""
        return {
            f"cpu_percent_{name}": round(100.0 * (self._seconds(procs) - self.start[name]) / elapsed, 1)
            for name, procs in self.groups.items()
        }


class _Run:
    """One benchmark run's parameters and the page errors seen."""

    def __init__(
        self,
        robots: int,
        seconds: float,
        which: str,
        warmup_s: float,
        say: Callable[[str], Any],
        screenshot: Path | None = None,
    ) -> None:
        self.robots, self.seconds, self.which, self.warmup_s, self.say = robots, seconds, which, warmup_s, say
        self.screenshot = screenshot
        self.broker_pid: int | None = None
        self.password = secrets.token_urlsafe(16)
        self.errors: list[str] = []

    async def browse(self, pw: Playwright, base: str, fleet: MovingFleet) -> dict[str, Any]:
        """Chromium on the page: open the map, warm up, measure; the figures."""
        args = CHROMIUM_ARGS + (MINIMAL_ARGS if self.which == "minimal" else [])
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=args, headless=True)
        try:
            context = await browser.new_context(viewport=VIEWPORT)  # type: ignore[arg-type]
            await context.add_init_script(path=str(HERE / "probe.js"))
            page = await context.new_page()
            page.on("pageerror", lambda exc: self.errors.append(str(exc)))
            page.on("console", lambda msg: _echo_error(msg, self.say))
            await _open_map(page, base, self.which, self.password, self.robots)
            self.say(
                f"console bench: {self.robots} robots on the map; "
                f"warming up {self.warmup_s:g} s, measuring {self.seconds:g} s"
            )
            await asyncio.sleep(self.warmup_s)
            published0, t0 = fleet.published, time.monotonic()
            cpu = _CpuMeter(self.broker_pid)
            raw, draws, drawn = await _measure(page, self.seconds)
            elapsed = time.monotonic() - t0
            published_rate = (fleet.published - published0) / elapsed
            cpu_percent = cpu.percent(elapsed)
            if self.screenshot is not None:
                self.screenshot.parent.mkdir(parents=True, exist_ok=True)
                await page.screenshot(path=self.screenshot)
        finally:
            await browser.close()
        result = _figures(raw, draws, self.robots, drawn)
        result.update(
            page=self.which,
            states_published_per_s=round(published_rate, 1),
            **cpu_percent,
            load_average_1m=round(os.getloadavg()[0], 2),
            viewport=f"{VIEWPORT['width']}x{VIEWPORT['height']}",
            page_errors=self.errors[:5],
        )
        return result

    async def drive(self, pw: Playwright, base: str, broker: MosquittoBroker, site: Site) -> dict[str, Any]:
        """The robots driving while the browser measures."""
        mqtt = MqttClient(MqttConfig(host=broker.host, port=broker.port, client_id="bench-movers"))
        await mqtt.connect()
        stop = asyncio.Event()
        publishing: asyncio.Task[int] | None = None
        try:
            fleet = MovingFleet(
                mqtt, serials(self.robots), RoadGraph.outdoor(site), RealClock(), manufacturer=MANUFACTURER,
                period_s=STATE_PERIOD_S,
            )  # fmt: skip
            await fleet.announce()
            publishing = asyncio.create_task(fleet.run(stop))
            self.say(f"console bench: {self.robots} robots driving; opening {self.which} page")
            return await self.browse(pw, base, fleet)
        finally:
            stop.set()
            if publishing is not None:
                await publishing
            await mqtt.disconnect()

    async def run(self, folder: Path) -> dict[str, Any]:
        """Broker, app and robots up; measure; everything down again."""
        clock = RealClock()
        broker = MosquittoBroker(log=False)
        broker.start()
        self.broker_pid = broker.proc.pid if broker.proc else None
        try:
            settings = _settings(folder, broker, self.robots)
            await asyncio.to_thread(create_user, settings, USER, self.password, "admin", clock=clock)
            site = await asyncio.to_thread(load_map, CAMPUS)
            async with _serve(create_app(settings, clock)) as host, async_playwright() as pw:
                self.say(
                    f"console bench: mosquitto on 127.0.0.1:{broker.port}, orchestrator on http://{host}"
                )
                result = await self.drive(pw, f"http://{host}", broker, site)
        finally:
            broker.close()
        self.say(
            f"console bench: {result['frames']} frames, p50 {result['frame_p50_ms']} ms, "
            f"p95 {result['frame_p95_ms']} ms, max {result['frame_max_ms']} ms, {result['fps']} fps, "
            f"{result['stream_events_per_s']} fleet.robot events/s"
        )
        return result


def run_bench(
    robots: int = 200,
    seconds: float = 10.0,
    *,
    page: str = "auto",
    warmup_s: float = 1.0,
    screenshot: Path | None = None,
    progress: Callable[[str], Any] | None = None,
) -> dict[str, Any]:
    """Measure the console map's frame time with ``robots`` moving robots for ``seconds`` (module doc).

    ``page``: ``auto`` (the console when its map view exists, else ``minimal``), ``console`` or
    ``minimal``. ``screenshot``: a PNG of the page after the window. ``ValueError`` for arguments out
    of range; ``RuntimeError`` when the page has not drawn every robot within ``WAIT_S`` (other set-up
    failures, e.g. Playwright's, propagate as they are).
    """
    if not 1 <= robots <= MAX_ROBOTS:
        raise ValueError(f"robots must be 1..{MAX_ROBOTS}, not {robots}")
    if not 0 < seconds <= MAX_SECONDS:
        raise ValueError(f"seconds must be in (0, {MAX_SECONDS:g}], not {seconds}")
    if warmup_s < 0:
        raise ValueError(f"warmup_s must be >= 0, not {warmup_s}")
    which = _pick_page(page)
    logging.getLogger("robopost").setLevel(logging.WARNING)
    with tempfile.TemporaryDirectory(prefix="robopost-console-bench-") as folder:
        run = _Run(robots, seconds, which, warmup_s, progress or (lambda _text: None), screenshot)
        return asyncio.run(run.run(Path(folder)))
