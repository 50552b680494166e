"""Order creation under load: ``python -m benchmarks.api.orders [--requests N] [--rate R]``.

Set-up, all on loopback and inside one temporary folder:

1. the real orchestrator app under uvicorn in a child process (its own event loop and threads, as in
   production), on a SQLite file (WAL) unless ``--database-url`` names another database, with the
   robots of ``sim.campus_day`` (3 carts, 6 indoor robots) installed as the dispatch snapshot, so
   every order is really inserted by the dispatcher into a growing plan;
2. in this process, an open-loop client: request ``i`` is sent at ``t0 + i / rate`` whatever the
   answers before it, each a signed ``POST /v1/orders`` (HMAC-SHA256 headers, a fresh nonce) with its
   own ``Idempotency-Key``: pickups at the offices of ADM and TEA, promised within a 30-minute window
   starting 10 minutes to 10 hours ahead (seeded).

Latency is measured from the *scheduled* send time to the end of the answer, so a server that falls
behind shows in the figures (no coordinated omission); the percentiles are those of the orders
created (201). Beyond what the server can take, orders are refused at once with 429 (a bounded
queue, ``orchestrator.api.partner.MAX_WAITING_ORDERS``): ``statuses`` shows how many. Five warm-up
orders go first and are not
counted. Result keys: ``requests``, ``target_rate``, ``achieved_rate`` (answers per second from the
first scheduled send to the last answer), ``latency_p50_ms``, ``latency_p90_ms``, ``latency_p99_ms``,
``latency_max_ms``, ``statuses`` (HTTP status → count; transport errors as ``"error <name>"``),
``created_rate`` (201 answers per second), ``accepted``, ``refused``, ``seconds``, ``database``.

``--serve`` is the child's entry point (reads ``BENCH_LISTEN_FD`` and ``ROBOPOST_*``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import httpx
import numpy as np

from orchestrator.security.signing import (
    NONCE_HEADER,
    PARTNER_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    sign,
)

PARTNER = "bench"
MAX_REQUESTS = 100_000
WARMUP = 5
CHINA = timezone(timedelta(hours=8))
REPO = Path(__file__).resolve().parents[2]


def run_bench(
    requests: int = 2000,
    rate: float = 200.0,
    *,
    database_url: str | None = None,
    seed: int = 0,
    progress: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Serve the app in a child process, send ``requests`` orders at ``rate`` per second; the figures."""
    if not 1 <= requests <= MAX_REQUESTS:
        raise ValueError(f"requests must be within 1..{MAX_REQUESTS}, got {requests}")
    if not rate > 0:
        raise ValueError(f"rate must be > 0, got {rate}")
    folder = Path(tempfile.mkdtemp(prefix="robopost-bench-api-"))
    secret = secrets.token_hex(16)
    url = database_url or f"sqlite:///{folder / 'robopost.db'}"
    sock = socket.create_server(("127.0.0.1", 0), backlog=1024)
    sock.set_inheritable(True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("ROBOPOST_")}
    env.update(
        {
            "ROBOPOST_DATABASE__URL": url,
            "ROBOPOST_SECURITY__KEYS_FILE": str(folder / "keys.yaml"),
            f"ROBOPOST_SECURITY__PARTNERS__{PARTNER.upper()}": secret,
            "ROBOPOST_LOG_LEVEL": "WARNING",
            "BENCH_LISTEN_FD": str(sock.fileno()),
        }
    )
    log_path = folder / "server.log"
    with log_path.open("wb") as log:
        server = subprocess.Popen(
            [sys.executable, "-m", "benchmarks.api.orders", "--serve"],
            env=env,
            cwd=REPO,
            pass_fds=[sock.fileno()],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
        )
    try:
        base = f"http://127.0.0.1:{sock.getsockname()[1]}"
        result = asyncio.run(_load(base, secret, requests, rate, seed, progress))
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
        shutil.rmtree(folder, ignore_errors=True)
    result["database"] = url.split(":", 1)[0]
    return result


async def _load(
    base: str, secret: str, count: int, rate: float, seed: int, progress: Callable[[str], None] | None
) -> dict[str, Any]:
    rng = random.Random(seed)
    doors = _doors()
    limits = httpx.Limits(max_connections=512, max_keepalive_connections=512)
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=120.0) as client:
        for i in range(WARMUP):
            response = await _order(client, secret, _body(f"warmup-{i}", rng, doors), f"warmup-{i}")
            if response.status_code != 201:
                raise RuntimeError(f"warm-up order answered {response.status_code}: {response.text[:300]}")
        if progress is not None:
            progress(f"server ready; sending {count} orders at {rate:g}/s")
        bodies = [_body(f"o-{i}", rng, doors) for i in range(count)]
        loop = asyncio.get_running_loop()
        latencies: list[float] = []
        statuses: Counter[str] = Counter()
        states: Counter[str] = Counter()
        ends: list[float] = []

        async def one(i: int, scheduled: float) -> None:
            try:
                response = await _order(client, secret, bodies[i], f"o-{i}")
            except httpx.HTTPError as exc:
                statuses[f"error {type(exc).__name__}"] += 1
                return
            end = loop.time()
            ends.append(end)
            statuses[str(response.status_code)] += 1
            if response.status_code == 201:
                latencies.append(end - scheduled)
                states[response.json()["state"]] += 1

        start = loop.time() + 0.05
        tasks = []
        for i in range(count):
            scheduled = start + i / rate
            delay = scheduled - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(i, scheduled)))
        await asyncio.gather(*tasks)
    ms = np.array(latencies) * 1000.0 if latencies else np.zeros(1)
    seconds = (max(ends) - start) if ends else 0.0
    return {
        "requests": count,
        "target_rate": rate,
        "achieved_rate": round(len(ends) / seconds, 1) if seconds > 0 else 0.0,
        "created_rate": round(statuses["201"] / seconds, 1) if seconds > 0 else 0.0,
        "latency_p50_ms": round(float(np.percentile(ms, 50)), 2),
        "latency_p90_ms": round(float(np.percentile(ms, 90)), 2),
        "latency_p99_ms": round(float(np.percentile(ms, 99)), 2),
        "latency_max_ms": round(float(ms.max()), 2),
        "statuses": dict(sorted(statuses.items())),
        "accepted": states["accepted"],
        "refused": states["refused"],
        "seconds": round(seconds, 2),
    }


async def _order(client: httpx.AsyncClient, secret: str, body: bytes, key: str) -> httpx.Response:
    request = client.build_request(
        "POST",
        "/v1/orders",
        content=body,
        headers={"Content-Type": "application/json", "Idempotency-Key": key},
    )
    stamp = str(int(time.time()))
    nonce = secrets.token_hex(12)
    request.headers[PARTNER_HEADER] = PARTNER
    request.headers[TIMESTAMP_HEADER] = stamp
    request.headers[NONCE_HEADER] = nonce
    request.headers[SIGNATURE_HEADER] = sign(
        secret, "POST", request.url.raw_path.decode(), stamp, nonce, body
    )
    return await client.send(request)


def _doors() -> list[str]:
    from maps.io import load_map
    from maps.model import PlaceKind
    from orchestrator.settings import default_campus_map

    site = load_map(default_campus_map())
    return sorted(
        p.name
        for p in site.places.values()
        if p.kind is PlaceKind.OFFICE and p.tags.get("building") in ("ADM", "TEA")
    )


def _body(ref: str, rng: random.Random, doors: list[str]) -> bytes:
    earliest = datetime.now(tz=UTC) + timedelta(seconds=rng.uniform(600.0, 36_000.0))
    order = {
        "kind": "pickup",
        "ref": ref,
        "place": rng.choice(doors),
        "earliest": earliest.astimezone(CHINA).isoformat(timespec="seconds"),
        "latest": (earliest + timedelta(minutes=30)).astimezone(CHINA).isoformat(timespec="seconds"),
        "size": rng.choices(["S", "M", "L"], weights=[6, 3, 1])[0],
        "contact": {"name": "张三", "phone": f"138{rng.randrange(10**8):08d}"},
    }
    return json.dumps(order, ensure_ascii=False).encode()


def _serve() -> None:
    """The child: the app from ``ROBOPOST_*`` with the campus-day robots, on socket ``BENCH_LISTEN_FD``."""
    import uvicorn

    from maps.io import load_map
    from orchestrator.api.partner import install_snapshot
    from orchestrator.app import create_app
    from orchestrator.settings import Settings
    from sim.campus_day import campus_day

    settings = Settings.load(env=os.environ)
    app = create_app(settings)
    day = campus_day(load_map(settings.campus.map), seed=0, parcels=0, requests=0)
    install_snapshot(app, day.snapshot)
    sock = socket.socket(fileno=int(os.environ["BENCH_LISTEN_FD"]))
    # keep idle connections longer than the client's pool may leave them idle under load
    config = uvicorn.Config(app, log_level="warning", lifespan="on", access_log=False, timeout_keep_alive=300)
    uvicorn.Server(config).run(sockets=[sock])


def main(argv: list[str] | None = None) -> None:
    """Parse the options, run the benchmark (or serve, as the child) and print the figures as JSON."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--rate", type=float, default=200.0)
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, default=None, help="also write the figures to this file")
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve:
        _serve()
        return
    result = run_bench(
        args.requests, args.rate, database_url=args.database_url, seed=args.seed, progress=print
    )
    text = json.dumps(result, indent=2)
    print(text)
    if args.json is not None:
        args.json.write_text(text + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
