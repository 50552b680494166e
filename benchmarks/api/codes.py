"""Pickup-code verification under load: ``python -m benchmarks.api.codes [--requests N] [--rate R]
[--carts C] [--database-url URL]``.

Set-up, all on loopback and inside one temporary folder:

1. in this process, the store made ready through the real services (``build_services`` and
   ``Delivery`` on the same database and keys file the server uses): ``requests`` (+ warm-up) parcels
   imported, sorted and loaded onto ``carts`` carts (one code each, 6 digits, stored as hashes), and
   the carts arrived at their stops, so every parcel waits with a live code. The SMS released by the
   arrivals are cancelled first, so the server's outbox worker does not compete with the measurement;
2. the real orchestrator app under uvicorn in a child process (its own event loop and threads, as in
   production), on a SQLite file (WAL) unless ``--database-url`` names another database;
3. in this process, an open-loop client: request ``i`` is sent at ``t0 + i / rate`` whatever the
   answers before it — ``POST /v1/carts/{cart}/codes:verify`` with the right code of the ``i``-th
   parcel, carts taken in turn, each with its bearer token. Every answer should open a compartment.

Latency is measured from the *scheduled* send time to the end of the answer, so a server that falls
behind shows in the figures (no coordinated omission). Five warm-up verifications go first and are not
counted. Result keys: ``requests``, ``target_rate``, ``achieved_rate`` (answers per second from the
first scheduled send to the last answer), ``latency_p50_ms``, ``latency_p90_ms``, ``latency_p99_ms``,
``latency_max_ms``, ``statuses`` (HTTP status → count; transport errors as ``"error"``), ``opened``,
``carts``, ``seconds``, ``setup_seconds``, ``database``, and — since the figures depend on how busy
the machine is — ``server_cpu_ms_per_request`` (the server process's CPU time during the run per
verification: one core serves about ``1000 / that`` per second) and ``load_average_1min``.

``--serve`` is the child's entry point (reads ``BENCH_LISTEN_FD`` and ``ROBOPOST_*``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import httpx
import numpy as np
import psutil

if TYPE_CHECKING:
    from orchestrator.api.delivery import Delivery

T = TypeVar("T")

MAX_REQUESTS = 100_000
MAX_CARTS = 1000
WARMUP = 5
WINDOW = "w-bench"
REPO = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Pickup:
    """One verification to send: the cart (screen) and the parcel's code in clear."""

    cart: str
    code: str


def run_bench(
    requests: int = 2000,
    rate: float = 200.0,
    *,
    carts: int = 20,
    database_url: str | None = None,
    folder: Path | None = None,
    progress: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Make ``requests`` parcels wait on ``carts`` carts, serve the app in a child process and verify
    their codes at ``rate`` per second; the figures (module docstring). Works in a new temporary
    folder (inside ``folder`` if given, and then kept)."""
    if not 1 <= requests <= MAX_REQUESTS:
        raise ValueError(f"requests must be within 1..{MAX_REQUESTS}, got {requests}")
    if not 1 <= carts <= MAX_CARTS:
        raise ValueError(f"carts must be within 1..{MAX_CARTS}, got {carts}")
    if not rate > 0:
        raise ValueError(f"rate must be > 0, got {rate}")
    own_folder = folder is None  # a folder given is kept (database, server.log) for a look afterwards
    work = Path(tempfile.mkdtemp(prefix="robopost-bench-codes-", dir=folder))
    url = database_url or f"sqlite:///{work / 'robopost.db'}"
    tokens = {f"c{i:03d}": secrets.token_urlsafe(24) for i in range(carts)}
    env = {k: v for k, v in os.environ.items() if not k.startswith("ROBOPOST_")}
    env.update(
        {
            "ROBOPOST_DATABASE__URL": url,
            "ROBOPOST_SECURITY__KEYS_FILE": str(work / "keys.yaml"),
            "ROBOPOST_LOG_LEVEL": "WARNING",
        }
    )
    env.update({f"ROBOPOST_SECURITY__CARTS__{cart.upper()}": token for cart, token in tokens.items()})
    started = time.perf_counter()
    pickups = _prepare(env, list(tokens), requests + WARMUP)
    setup_s = time.perf_counter() - started
    if progress is not None:
        progress(f"{len(pickups)} parcels waiting on {carts} carts ({setup_s:.1f} s); starting the server")
    sock = socket.create_server(("127.0.0.1", 0), backlog=1024)
    sock.set_inheritable(True)
    log_path = work / "server.log"
    with log_path.open("wb") as log:
        server = subprocess.Popen(
            [sys.executable, "-m", "benchmarks.api.codes", "--serve"],
            env=env | {"BENCH_LISTEN_FD": str(sock.fileno())},
            cwd=REPO,
            pass_fds=[sock.fileno()],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
        )
    try:
        base = f"http://127.0.0.1:{sock.getsockname()[1]}"
        result = asyncio.run(_load(base, tokens, pickups, rate, progress, psutil.Process(server.pid)))
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        sock.close()
        if server.returncode not in (0, -15) and progress is not None:
            progress(log_path.read_text(errors="replace")[-2000:])
        if own_folder:
            shutil.rmtree(work, ignore_errors=True)
    result.update(carts=carts, setup_seconds=round(setup_s, 2), database=url.split(":", 1)[0])
    return result


def _prepare(env: Mapping[str, str], carts: list[str], count: int) -> list[Pickup]:
    """Import, sort, load and arrive ``count`` parcels over ``carts`` through the real services; the
    codes to type, warm-up first. Messages the arrivals released are cancelled."""
    from interfaces.clock import RealClock
    from maps.io import load_map
    from orchestrator.api.delivery import Delivery
    from orchestrator.api.services import build_services
    from orchestrator.app import register_site
    from orchestrator.domain import ParcelEvent
    from orchestrator.notify.outbox import Outbox, OutboxStatus
    from orchestrator.settings import Settings
    from orchestrator.store import make_engine, session_factory
    from orchestrator.store.domain_records import ParcelIntake
    from orchestrator.store.domain_repositories import ParcelRepository

    settings = Settings.load(env=env)
    clock = RealClock()
    site = load_map(settings.campus.map)
    engine = make_engine(settings.database.url)
    try:
        register_site(engine, site, clock)
        sessions = session_factory(engine)
        services = build_services(settings, clock, sessions, site)
        stops = sorted(p.name for p in site.places.values() if p.kind.value == "stop")
        plan = [
            (f"BC{i:06d}", carts[i % len(carts)], stops[i % len(carts) % len(stops)]) for i in range(count)
        ]
        with sessions.begin() as session:
            parcels = ParcelRepository(session, clock, services.personal)
            rows = [
                ParcelIntake(tn, "S", "王五", f"138{i:08d}", dorm="DORM1")
                for i, (tn, _, _) in enumerate(plan)
            ]
            parcels.import_rows(rows)
            for tn, _, stop in plan:
                parcels.transition(tn, ParcelEvent.SORT, window=WINDOW, stop=stop)
        delivery = Delivery.from_services(services, blocking=_inline, wake=lambda: None)
        pickups = asyncio.run(_stage(delivery, plan, len(carts), window_end=clock.now() + 4 * 3600))
        with sessions.begin() as session:
            outbox = Outbox(session, services.cipher, clock)
            while waiting := outbox.list(status=OutboxStatus.PENDING, limit=1000):
                outbox.cancel(e.dedupe_key for e in waiting)
        return pickups
    finally:
        engine.dispose()


async def _stage(
    delivery: Delivery, plan: list[tuple[str, str, str]], carts: int, *, window_end: float
) -> list[Pickup]:
    """Load every parcel (compartments 1, 2, ... per cart), then let each cart arrive at its stop."""
    pickups = []
    for i, (tn, cart, _) in enumerate(plan):
        loaded = await delivery.load(tn, cart, str(i // carts + 1), window_end=window_end)
        if loaded.code is None:
            raise RuntimeError(f"parcel {tn} got no pickup code")
        pickups.append(Pickup(cart, loaded.code.code))
    for cart, stop in sorted({(cart, stop) for _, cart, stop in plan}):
        await delivery.arrive(cart, stop, WINDOW)
    return pickups


async def _inline(func: Callable[[], T], /) -> T:
    return func()


async def _load(
    base: str,
    tokens: Mapping[str, str],
    pickups: list[Pickup],
    rate: float,
    progress: Callable[[str], None] | None,
    server: psutil.Process,
) -> dict[str, Any]:
    limits = httpx.Limits(max_connections=512, max_keepalive_connections=512)
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=120.0) as client:
        await _ready(client)
        for pickup in pickups[:WARMUP]:
            response = await _verify(client, tokens, pickup)
            if response.status_code != 200:
                raise RuntimeError(
                    f"warm-up verification answered {response.status_code}: {response.text[:300]}"
                )
        measured = pickups[WARMUP:]
        if progress is not None:
            progress(f"server ready; sending {len(measured)} verifications at {rate:g}/s")
        loop = asyncio.get_running_loop()
        latencies: list[float] = []
        statuses: Counter[str] = Counter()
        ends: list[float] = []

        async def one(pickup: Pickup, scheduled: float) -> None:
            try:
                response = await _verify(client, tokens, pickup)
            except httpx.HTTPError:
                statuses["error"] += 1
                return
            end = loop.time()
            ends.append(end)
            latencies.append(end - scheduled)
            statuses[str(response.status_code)] += 1

        cpu_before = _cpu_s(server)
        start = loop.time() + 0.05
        tasks = []
        for i, pickup in enumerate(measured):
            scheduled = start + i / rate
            delay = scheduled - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(pickup, scheduled)))
        await asyncio.gather(*tasks)
        server_cpu_s = _cpu_s(server) - cpu_before
    ms = np.array(latencies) * 1000.0 if latencies else np.zeros(1)
    seconds = (max(ends) - start) if ends else 0.0
    return {
        "requests": len(measured),
        "target_rate": rate,
        "achieved_rate": round(len(ends) / seconds, 1) if seconds > 0 else 0.0,
        "latency_p50_ms": round(float(np.percentile(ms, 50)), 2),
        "latency_p90_ms": round(float(np.percentile(ms, 90)), 2),
        "latency_p99_ms": round(float(np.percentile(ms, 99)), 2),
        "latency_max_ms": round(float(ms.max()), 2),
        "statuses": dict(sorted(statuses.items())),
        "opened": statuses["200"],
        "seconds": round(seconds, 2),
        "server_cpu_ms_per_request": round(server_cpu_s * 1000.0 / max(1, len(measured)), 2),
        "load_average_1min": round(os.getloadavg()[0], 2),
    }


def _cpu_s(process: psutil.Process) -> float:
    """CPU seconds (user + system) the process used so far."""
    times = process.cpu_times()
    return float(times.user + times.system)


async def _ready(client: httpx.AsyncClient, timeout_s: float = 60.0) -> None:
    """Wait until the server answers ``/healthz`` (the socket is open from the start; the app may not be)."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            if (await client.get("/healthz")).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"the server did not start within {timeout_s:.0f} s")
        await asyncio.sleep(0.05)


async def _verify(client: httpx.AsyncClient, tokens: Mapping[str, str], pickup: Pickup) -> httpx.Response:
    return await client.post(
        f"/v1/carts/{pickup.cart}/codes:verify",
        json={"code": pickup.code},
        headers={"Authorization": f"Bearer {tokens[pickup.cart]}"},
    )


def _serve() -> None:
    """The child: the app from ``ROBOPOST_*``, on socket ``BENCH_LISTEN_FD``."""
    import uvicorn

    from orchestrator.app import create_app
    from orchestrator.settings import Settings

    settings = Settings.load(env=os.environ)
    sock = socket.socket(fileno=int(os.environ["BENCH_LISTEN_FD"]))
    config = uvicorn.Config(create_app(settings), log_level="warning", lifespan="on", access_log=False)
    uvicorn.Server(config).run(sockets=[sock])


def main(argv: list[str] | None = None) -> None:
    """Parse the options, run the benchmark (or serve, as the child) and print the figures as JSON."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--rate", type=float, default=200.0)
    parser.add_argument("--carts", type=int, default=20)
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--json", type=Path, default=None, help="also write the figures to this file")
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve:
        _serve()
        return
    result = run_bench(
        args.requests, args.rate, carts=args.carts, database_url=args.database_url, progress=print
    )
    text = json.dumps(result, indent=2)
    print(text)
    if args.json is not None:
        args.json.write_text(text + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
