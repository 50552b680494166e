"""How many robots can the fleet master follow? ``run_bench(robots, seconds)`` measures it.

Set-up, all on loopback and inside one temporary folder:

1. a fleet of ``robots`` robots (manufacturer ``bench``), with the broker files of
   ``robopost fleet broker-config`` (per-robot passwords and the ACL: the broker checks both, as in
   production);
2. its own Mosquitto on a free port;
3. ``processes`` child processes of lightweight robots (``robots.py``), **one MQTT connection per
   robot**, each publishing a ~1 kB ``state`` every 0.5 s (2 Hz), phases spread evenly;
4. in this process, the real ``FleetMaster`` (orchestrator account, snapshots to SQLite every 5 s).

After ``warmup_s`` it records, for ``seconds``, every state taken into the fleet picture: its age =
receive time − the state's header timestamp (both from the machine's clock; the header is cut to
milliseconds), the message rate, and the CPU time of the master process, the robot processes and
Mosquitto (``psutil``; percent of one core, so 2 cores = 200 %).

Result keys: ``robots``, ``msgs_per_s``, ``state_age_p50_ms``, ``state_age_p99_ms``, ``cpu_percent``
(master + robots + broker), and the details ``cpu_percent_master``, ``cpu_percent_robots``,
``cpu_percent_broker``, ``expected_msgs_per_s``, ``robots_reporting``, ``state_age_p90_ms``,
``state_age_max_ms``, ``dropped``, ``seconds``, ``processes``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing
import os
import secrets
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import psutil

from benchmarks.fleet.robots import RobotSpec, run_robots
from interfaces.clock import RealClock
from interfaces.mqtt import MqttClient, MqttConfig
from maps.model import GeoOrigin, Site
from orchestrator.fleet import FleetConfig, FleetMaster, FleetOptions, SnapshotStore, parse_fleet
from orchestrator.fleet.broker import write_broker_files
from orchestrator.fleet.digest import StateDigest
from orchestrator.store import SiteRepository, make_engine, session_factory, upgrade
from sim.mosquitto import MosquittoBroker

MAX_ROBOTS = 5000
MAX_SECONDS = 600.0
PERIOD_S = 0.5


def bench_fleet(robots: int) -> FleetConfig:
    """A fleet of ``robots`` carts ``b0000``… with random passwords."""
    return parse_fleet(
        {
            "orchestrator": {"username": "orchestrator", "password": secrets.token_urlsafe(12)},
            "robots": [
                {
                    "manufacturer": "bench",
                    "serial": f"b{i:04d}",
                    "kind": "cart",
                    "password": secrets.token_urlsafe(12),
                }
                for i in range(robots)
            ],
        }
    )


def _cpu_seconds(pids: list[int]) -> float:
    total = 0.0
    for pid in pids:
        with contextlib.suppress(psutil.NoSuchProcess):
            times = psutil.Process(pid).cpu_times()
            total += times.user + times.system
    return total


class _Recorder:
    """Collects state ages while recording is on."""

    def __init__(self) -> None:
        self.recording = False
        self.ages: list[float] = []
        self.robots: set[str] = set()

    def __call__(self, serial: str, digest: StateDigest, at: float) -> None:
        if self.recording:
            self.ages.append(at - digest.sent_at)
            self.robots.add(serial)


async def _measure(
    fleet: FleetConfig,
    broker: MosquittoBroker,
    go: Any,
    robot_pids: list[int],
    seconds: float,
    warmup_s: float,
    folder: Path,
) -> dict[str, Any]:
    """Run the master, let the robots go, record one window; the figures."""
    clock = RealClock()
    mqtt = MqttClient(
        MqttConfig(
            host=broker.host,
            port=broker.port,
            username=fleet.orchestrator.username,
            password=fleet.orchestrator.password,
            client_id="bench-orchestrator",
        )
    )
    await mqtt.connect()
    engine = make_engine(f"sqlite:///{folder / 'robopost.db'}")
    upgrade(engine)
    with session_factory(engine).begin() as session:
        site_id = SiteRepository(session, clock).add("bench", GeoOrigin(0.0, 0.0, 0.0)).id
    options = FleetOptions(request_factsheet=False)
    master = FleetMaster(
        fleet,
        mqtt,
        Site("bench", GeoOrigin(0.0, 0.0, 0.0)),
        clock=clock,
        options=options,
        snapshots=SnapshotStore(engine, site_id, clock),
        owns_client=True,
    )
    await master.start()
    recorder = _Recorder()
    master.add_state_listener(recorder)
    go.set()
    await asyncio.sleep(warmup_s)
    groups = {
        "master": [os.getpid()],
        "robots": robot_pids,
        "broker": [broker.proc.pid] if broker.proc else [],
    }
    cpu0 = {name: _cpu_seconds(pids) for name, pids in groups.items()}
    t0 = time.monotonic()
    recorder.recording = True
    await asyncio.sleep(seconds)
    recorder.recording = False
    elapsed = time.monotonic() - t0
    cpu = {name: 100.0 * (_cpu_seconds(pids) - cpu0[name]) / elapsed for name, pids in groups.items()}
    dropped = master.stats()["dropped"]
    await master.stop()
    engine.dispose()
    ages_ms = np.array(recorder.ages) * 1000.0 if recorder.ages else np.array([np.nan])
    return {
        "robots": len(fleet.robots),
        "seconds": round(elapsed, 3),
        "msgs_per_s": round(len(recorder.ages) / elapsed, 1),
        "expected_msgs_per_s": round(len(fleet.robots) / PERIOD_S, 1),
        "robots_reporting": len(recorder.robots),
        "state_age_p50_ms": round(float(np.percentile(ages_ms, 50)), 2),
        "state_age_p90_ms": round(float(np.percentile(ages_ms, 90)), 2),
        "state_age_p99_ms": round(float(np.percentile(ages_ms, 99)), 2),
        "state_age_max_ms": round(float(np.max(ages_ms)), 2),
        "cpu_percent": round(sum(cpu.values()), 1),
        "cpu_percent_master": round(cpu["master"], 1),
        "cpu_percent_robots": round(cpu["robots"], 1),
        "cpu_percent_broker": round(cpu["broker"], 1),
        "dropped": dropped,
    }


def run_bench(
    robots: int,
    seconds: float,
    *,
    processes: int = 1,
    warmup_s: float = 3.0,
    progress: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Measure the fleet master with ``robots`` robots at 2 Hz for ``seconds`` (see the module doc)."""
    if not 1 <= robots <= MAX_ROBOTS:
        raise ValueError(f"robots must be 1..{MAX_ROBOTS}, not {robots}")
    if not 0 < seconds <= MAX_SECONDS:
        raise ValueError(f"seconds must be in (0, {MAX_SECONDS}], not {seconds}")
    if not 1 <= processes <= robots:
        raise ValueError(f"processes must be 1..{robots}, not {processes}")
    say = progress or (lambda _m: None)
    logging.getLogger("robopost").setLevel(logging.WARNING)
    fleet = bench_fleet(robots)
    folder = Path(tempfile.mkdtemp(prefix="robopost-bench-"))
    # The broker gets the whole (private) folder: Mosquitto, run as its own user, must enter it.
    files = write_broker_files(fleet, folder / "security", iterations=101)
    broker = MosquittoBroker(folder=folder, conf_extra=files.conf.read_text(), log=False)
    ctx = multiprocessing.get_context("fork")  # before any thread of ours exists
    go, stop = ctx.Event(), ctx.Event()
    procs: list[multiprocessing.process.BaseProcess] = []
    try:
        broker.start()
        say(f"mosquitto on 127.0.0.1:{broker.port}; starting {robots} robots in {processes} process(es)")
        readies = []
        for k in range(processes):
            chunk = tuple((r.serial, r.password) for r in fleet.robots[k::processes])
            ready = ctx.Event()
            spec = RobotSpec(broker.host, broker.port, "bench", chunk, period_s=PERIOD_S)
            proc = ctx.Process(target=run_robots, args=(spec, go, stop, ready), daemon=True)
            proc.start()
            procs.append(proc)
            readies.append(ready)
        for ready in readies:
            if not ready.wait(120):
                raise RuntimeError("robots did not all connect within 120 s")
        say(f"robots connected; warming up {warmup_s} s, then measuring {seconds} s")
        pids = [p.pid for p in procs if p.pid is not None]
        return asyncio.run(_measure(fleet, broker, go, pids, seconds, warmup_s, folder))
    finally:
        stop.set()
        go.set()
        for proc in procs:
            proc.join(10)
            if proc.is_alive():
                proc.terminate()
                proc.join(5)
        broker.stop()
        shutil.rmtree(folder, ignore_errors=True)
