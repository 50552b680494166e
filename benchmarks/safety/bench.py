"""E-stop propagation latency: the console's ``POST /v1/console/robots/{serial}:estop`` on the
orchestrator → the robot publishes a zero ``cmd_vel`` on ROS 2.

Everything is real and on loopback: an own Mosquitto (``sim.mosquitto``), the orchestrator app served by
uvicorn with the fleet master, the robot agent on a ``RosDriver`` and the simulated ROS 2 base
(``sim.ros_base``), and a ROS 2 listener on the robot's ``cmd_vel``.

Set-up: the robot is handed over to remote driving through the console API (``:mode`` SEMIAUTOMATIC,
then ``:mode-confirm``). Each trial: drive through the console's teleop WebSocket (0.5 m/s, a command
every 50 ms) until the robot publishes a non-zero ``cmd_vel``; then time from just before the e-stop
request is sent to the arrival of the first zero ``cmd_vel`` at the listener (teleop keeps flowing, so
the dead-man timer cannot be what stops it); ``:release`` and the next trial.

Result keys: ``trials``, ``p50_ms``, ``p99_ms`` (and ``max_ms``, ``mean_ms``, ``api_p50_ms``: the HTTP
answer, which waits for the robot's FINISHED). Target: p99 < 100 ms. If the agent does not answer an
instant action or never publishes a zero ``cmd_vel``, ``RuntimeError`` says which.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import socket
import statistics
import tempfile
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import uvicorn
import yaml
from geometry_msgs.msg import Twist
from websockets.asyncio.client import connect

from interfaces.clock import RealClock
from orchestrator.api.operators import create_user
from orchestrator.app import create_app
from orchestrator.fleet.events import LinkChanged
from orchestrator.fleet.master import FleetMaster
from orchestrator.fleet.picture import Link
from orchestrator.settings import (
    DatabaseSettings,
    FleetSettings,
    MqttSettings,
    SecuritySettings,
    Settings,
)
from robots.agent.agent import Agent, make_mqtt_client
from robots.agent.config import parse_config
from robots.agent.ros_driver import RosDriver, RosDriverConfig
from robots.rosutil import RosNodeHost, to_loop
from sim.mosquitto import MosquittoBroker
from sim.ros_base import BaseConfig, SimulatedBase

SERIAL, MANUFACTURER = "bench1", "acme"
USER, PASSWORD = "bench-operator", "bench-password-1"
WAIT = 10.0
TELEOP_PERIOD = 0.05


class Twists:
    """``cmd_vel`` messages with their arrival time (``time.perf_counter()``)."""

    def __init__(self) -> None:
        self.items: list[tuple[float, float, float]] = []
        self.arrived = asyncio.Event()

    def add(self, msg: Twist) -> None:
        self.items.append((time.perf_counter(), msg.linear.x, msg.angular.z))
        self.arrived.set()

    async def first(self, predicate: Callable[[float, float], bool], start: int, what: str) -> float:
        """The arrival time of the first message from index ``start`` on that fits ``predicate``."""
        deadline = time.perf_counter() + WAIT
        i = start
        while True:
            while i < len(self.items):
                at, vx, omega = self.items[i]
                if predicate(vx, omega):
                    return at
                i += 1
            self.arrived.clear()
            left = deadline - time.perf_counter()
            if left <= 0:
                raise RuntimeError(f"the robot published no {what} cmd_vel within {WAIT:g} s")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.arrived.wait(), left)


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


@contextlib.asynccontextmanager
async def _serve(app: Any) -> AsyncIterator[str]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    config = uvicorn.Config(app, log_level="warning", lifespan="on", ws="websockets-sansio")
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        yield f"127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        await task
        sock.close()


def _settings(folder: Path, broker: MosquittoBroker) -> Settings:
    fleet = {
        "orchestrator": {"username": "orchestrator", "password": "orch-secret"},
        "robots": [
            {"manufacturer": MANUFACTURER, "serial": SERIAL, "kind": "indoor", "password": "x-secret"}
        ],
    }
    (folder / "fleet.yaml").write_text(yaml.safe_dump(fleet), encoding="utf-8")
    return Settings(
        database=DatabaseSettings(url=f"sqlite:///{folder / 'robopost.db'}"),
        security=SecuritySettings(keys_file=folder / "keys.yaml"),
        mqtt=MqttSettings(host=broker.host, port=broker.port, embedded=False),
        fleet=FleetSettings(enabled=True, config=folder / "fleet.yaml"),
    )


async def _post(client: httpx.AsyncClient, path: str, headers: dict[str, str], **body: Any) -> httpx.Response:
    response = await client.post(f"/v1/console/robots/{SERIAL}:{path}", json=body or None, headers=headers)
    if response.status_code != 200:
        raise RuntimeError(f"{path}: HTTP {response.status_code}: {response.text[:300]}")
    return response


async def _bench(trials: int, folder: Path, progress: Callable[[str], Any]) -> dict[str, Any]:
    loop = asyncio.get_running_loop()
    clock = RealClock()
    namespace = f"/bench_{random.randrange(16**8):08x}"
    broker = MosquittoBroker()
    broker.start()
    settings = _settings(folder, broker)
    await asyncio.to_thread(create_user, settings, USER, PASSWORD, "operator", clock=clock)
    app = create_app(settings, clock)
    base = SimulatedBase(BaseConfig(namespace=namespace, speed=1.0, odometry_rate=50.0))
    listener = RosNodeHost("estop_bench_listener", namespace=namespace)
    twists = Twists()
    agent: Agent | None = None
    try:
        base.start()
        node = listener.start()
        node.create_subscription(Twist, "cmd_vel", to_loop(loop, twists.add), 100)
        driver = RosDriver(RosDriverConfig(namespace=namespace), clock=clock)
        config = parse_config({
            "manufacturer": MANUFACTURER, "serial_number": SERIAL,
            "mqtt": {"host": broker.host, "port": broker.port},
            "driver": {"type": "ros", "namespace": namespace},
        })  # fmt: skip
        async with _serve(app) as host, httpx.AsyncClient(base_url=f"http://{host}", timeout=WAIT) as client:
            await client.get("/healthz")  # answered once the lifespan is up
            master: FleetMaster = app.state.fleet
            agent = Agent(config, driver, make_mqtt_client(config, clock), clock)
            with master.subscribe() as events:
                await agent.start()
                while not master.view(SERIAL).online:
                    event = await asyncio.wait_for(events.get(), WAIT)
                    if isinstance(event, LinkChanged) and event.link is Link.ONLINE:
                        break
            stream = driver.readouts()
            try:
                while driver.readout().pose is None:  # the base's first odometry: discovery is done
                    await asyncio.wait_for(stream.get(), WAIT)
            finally:
                stream.close()
            login = await client.post("/v1/console/login", json={"username": USER, "password": PASSWORD})
            token = login.json()["token"]
            headers = {"Authorization": f"Bearer {token}"}
            progress("safety bench: robot online; handing over to remote driving")
            await _post(client, "mode", headers, mode="SEMIAUTOMATIC")
            await _post(client, "mode-confirm", headers)
            latencies, api = await _trials(trials, host, token, client, headers, twists, progress)
    finally:
        if agent is not None:
            await agent.stop()
        listener.close()
        base.close()
        broker.close()
    return {
        "trials": len(latencies),
        "p50_ms": round(statistics.median(latencies) * 1000, 3),
        "p99_ms": round(_percentile(latencies, 0.99) * 1000, 3),
        "max_ms": round(max(latencies) * 1000, 3),
        "mean_ms": round(statistics.fmean(latencies) * 1000, 3),
        "api_p50_ms": round(statistics.median(api) * 1000, 3),
    }


async def _trials(
    trials: int,
    host: str,
    token: str,
    client: httpx.AsyncClient,
    headers: dict[str, str],
    twists: Twists,
    progress: Callable[[str], Any],
) -> tuple[list[float], list[float]]:
    latencies: list[float] = []
    api: list[float] = []
    async with connect(f"ws://{host}/v1/console/robots/{SERIAL}/teleop?token={token}") as ws:

        async def drive() -> None:
            while True:
                await ws.send(json.dumps({"vx": 0.5, "omega": 0.0}))
                await ws.recv()
                await asyncio.sleep(TELEOP_PERIOD)  # the operator's joystick rate

        driving = asyncio.create_task(drive())
        try:
            for n in range(trials):
                await twists.first(lambda vx, _w: vx > 0.0, len(twists.items), "non-zero (teleop)")
                start = len(twists.items)
                t0 = time.perf_counter()
                await _post(client, "estop", headers, reason="benchmark")
                t_api = time.perf_counter()
                t_zero = await twists.first(lambda vx, w: vx == 0.0 and w == 0.0, start, "zero")
                latencies.append(t_zero - t0)
                api.append(t_api - t0)
                await _post(client, "release", headers, reason="benchmark")
                if (n + 1) % 50 == 0:
                    progress(f"safety bench: {n + 1}/{trials} trials")
        finally:
            driving.cancel()
            await asyncio.gather(driving, return_exceptions=True)
    return latencies, api


def run_bench(trials: int = 200, progress: Callable[[str], Any] | None = None) -> dict[str, Any]:
    """Run the benchmark (module docstring); the result as a JSON-ready dict."""
    if trials < 1:
        raise ValueError(f"trials must be >= 1, got {trials}")
    os.environ.setdefault("ROS_DOMAIN_ID", str(1 + random.randrange(100)))
    os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
    os.environ.pop("ROS_LOCALHOST_ONLY", None)
    with tempfile.TemporaryDirectory(prefix="robopost-safety-bench-") as folder:
        return asyncio.run(_bench(trials, Path(folder), progress or (lambda _text: None)))
