"""The live demo: its launch description and the supervisor that runs it (``robopost demo``).

``run_demo(DemoOptions(...))`` writes every process's configuration into the work folder (from
``launch/demo/demo.yaml`` and ``launch/bridge/*.yaml``), then starts, in order, each only once the
one before is *ready* on a real signal:

==============  ==========================================================  ===========================
process         command                                                     ready when
==============  ==========================================================  ===========================
broker          ``mosquitto -c broker/mosquitto.conf`` or the embedded      its port accepts and an
                amqtt broker (``python -m launch.demo embedded-broker``)    MQTT client connects
orchestrator    ``robopost serve --config settings.yaml`` (fleet enabled)   ``GET /healthz`` answers 200
lifts           ``python -m sim.live.fleet --config live/lifts.yaml``:      it prints ``READY_LINE``
                the simulated lift cars and their controllers               (every controller online)
bridge-<B>      ``robopost elevator-bridge --config bridges/<b>.yaml``,     its retained
                all buildings at once                                       ``robopost/bridge/<B>/online``
robots          ``python -m sim.live.fleet --config live/robots.yaml``:     every robot ONLINE in the
                3 carts + 6 indoor robots (VDA 5050 agents, sim bases)      orchestrator's ``/v1/fleet``
==============  ==========================================================  ===========================

Lift hardware comes before the bridges because a bridge opens its lift's controller at start (the
Modbus relay board's pty must exist); the robots come last so the orchestrator sees each of them
connect. Once the store exists the console gets its admin (``console_user``; a new password in
``console-login.txt`` whenever that file is missing), made in a thread of the supervisor.

Every child runs in its own session (its own process group, so a Ctrl-C in the terminal reaches only
the supervisor) and dies with the supervisor (``PR_SET_PDEATHSIG``: SIGTERM, or SIGKILL for the
bridges, whose stop would wait forever for a broker that died too) should the supervisor itself be
killed; Mosquitto is told to stay the user who runs the demo, because a change of user would clear
that. Its stdout and stderr are forwarded line by line, prefixed with its name. On SIGINT/SIGTERM
the supervisor stops the children in reverse order: SIGTERM to the process group, SIGKILL after
``grace_s``, and whatever of the group outlived its leader (socat under the lifts) is killed too.
A child that exits while it should run is reported with its exit code and last lines, and everything
else is stopped; ``run_demo`` then returns 1 (0 after a requested stop). The broker is the exception:
it is started again on the same port (up to ``BROKER_RESTARTS`` times), and every MQTT client —
orchestrator, bridges, lifts, robots — reconnects and republishes what it had retained (robots their
connection, state and factsheet; bridges their ``online`` and lift states), so the demo resumes.

The time factor: the simulated lifts and robots run on ``ScaledClock(time_factor)`` with one shared
``origin`` (all simulated parts read the same virtual time), starting at ``--start-at HH:MM`` campus
time if given (``epoch``). The orchestrator and the bridges have no clock setting
(``orchestrator.settings``, ``elevator_bridge.config``): they run in real time. Rates that are
protocol heartbeats are kept in real seconds: a robot's visualization period, control tick and
kinematic step are stretched by the factor (within their limits), so nine robots at 10x cost what
they cost at 1x; the VDA 5050 state period stays 30 virtual seconds (its maximum), 3 real ones.

The broker is loopback-only and anonymous: this is a demo on one machine (production uses
``robopost fleet broker-config``'s passwords and ACL). ``--broker auto`` takes Mosquitto when it is
installed, else the embedded amqtt broker.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ctypes
import functools
import importlib.util
import logging
import os
import pwd
import re
import secrets
import shutil
import signal
import socket
import sys
from collections import deque
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from importlib.resources import files
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml

from interfaces.clock import Clock, RealClock
from interfaces.mqtt import MqttClient, MqttConfig, MqttError

BrokerChoice = Literal["auto", "mosquitto", "embedded"]
BrokerKind = Literal["mosquitto", "embedded"]

DEMO_FILE = Path(str(files("launch") / "demo" / "demo.yaml"))
BRIDGE_DIR = Path(str(files("launch") / "bridge"))
LIVE_READY_LINE = "sim.live: ready"
"""What ``sim.live.fleet`` prints once up (``sim.live.fleet.READY_LINE``; not imported here so the
supervisor does not load the robot and lift code it only starts)."""
EMBEDDED_READY_LINE = "embedded broker: ready"

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_BAD_INPUT = 2

POLL_S = 0.1
"""Seconds between two looks at an HTTP readiness probe."""
TAIL_LINES = 20
"""Lines of a child's output kept to show when it dies."""
PUMP_DRAIN_S = 1.0
"""Seconds a dead child's remaining output may take to arrive before its death is reported."""

BROKER_RESTARTS = 5
"""How many times a broker that died is started again before the demo gives up."""


class DemoError(Exception):
    """The demo cannot start or stopped because a part failed (one line saying which and why)."""


@dataclass(frozen=True, slots=True)
class DemoOptions:
    """What ``robopost demo`` takes: time factor, console port, broker, work folder and timings.

    ``mqtt_port`` None picks a free loopback port; ``grace_s`` is how long a child may take to stop
    after SIGTERM; ``ready_timeout_s`` how long each step may take to become ready; ``start_at``
    (``HH:MM``, campus time, or ``now``) is the virtual time of day the simulated parts start at (None:
    the demo file's ``start_at``).
    """

    time_factor: float = 10.0
    port: int = 8000
    broker: BrokerChoice = "auto"
    workdir: Path = Path("var/demo")
    mqtt_port: int | None = None
    host: str = "127.0.0.1"
    grace_s: float = 10.0
    ready_timeout_s: float = 60.0
    demo_file: Path = DEMO_FILE
    start_at: str | None = None

    def __post_init__(self) -> None:
        if self.start_at not in (None, "now") and not re.fullmatch(
            r"([01][0-9]|2[0-3]):[0-5][0-9]", self.start_at or ""
        ):
            raise DemoError(f"--start-at must be a time of day HH:MM or now, got {self.start_at!r}")
        if not 0 < self.time_factor <= 1000:
            raise DemoError(f"--time-factor must be within (0, 1000], got {self.time_factor}")
        for name in ("port", "mqtt_port"):
            value = getattr(self, name)
            if value is not None and not 1 <= value <= 65535:
                raise DemoError(f"--{name.replace('_', '-')} must be within 1..65535, got {value}")
        if self.broker not in ("auto", "mosquitto", "embedded"):
            raise DemoError(f"--broker must be auto, mosquitto or embedded, got {self.broker!r}")
        if self.grace_s <= 0 or self.ready_timeout_s <= 0:
            raise DemoError("grace_s and ready_timeout_s must be > 0")


# ---- the launch description ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DemoLayout:
    """``launch/demo/demo.yaml``: campus, robot counts and speeds, bridge files, console user."""

    campus: Path
    seed: int
    carts: int
    indoor: int
    speeds: Mapping[str, float]
    bridges: tuple[Path, ...]
    console_user: str
    timezone: str = "Asia/Shanghai"
    start_at: str | None = None  # HH:MM campus time the simulated day starts at (None: now)
    start_parcels: int = 60  # the station's first batch, imported as the demo starts


def load_layout(path: Path = DEMO_FILE) -> DemoLayout:
    """Read the demo file; ``DemoError`` naming the file and the key when something is wrong."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise DemoError(f"{path}: cannot read the demo file: {' '.join(str(exc).split())}") from None
    if not isinstance(data, dict):
        raise DemoError(f"{path}: must hold a mapping")
    try:
        campus = Path(data["campus"])
        speeds = {str(k): float(v) for k, v in dict(data.get("speeds", {})).items()}
        layout = DemoLayout(
            campus=campus if campus.is_absolute() else Path(str(files("maps") / "campuses")) / campus,
            seed=int(data.get("seed", 0)),
            carts=int(data["carts"]),
            indoor=int(data["indoor"]),
            speeds={"cart": 1.5, "indoor": 1.0, **speeds},
            bridges=tuple(b if Path(b).is_absolute() else BRIDGE_DIR / b for b in map(Path, data["bridges"])),
            console_user=str(data.get("console_user", "demo")),
            timezone=str(data.get("timezone", "Asia/Shanghai")),
            start_at=None if data.get("start_at") is None else str(data["start_at"]),
            start_parcels=int(data.get("start_parcels", 60)),
        )
        ZoneInfo(layout.timezone)
    except (KeyError, TypeError, ValueError, ZoneInfoNotFoundError) as exc:
        raise DemoError(f"{path}: bad or missing key: {exc}") from None
    if layout.carts < 0 or layout.indoor < 0 or layout.carts + layout.indoor == 0:
        raise DemoError(f"{path}: carts and indoor must be >= 0 and not both 0")
    return layout


@dataclass(frozen=True, slots=True)
class DemoFiles:
    """What ``write_demo_files`` wrote (absolute paths) and the facts the supervisor waits on."""

    workdir: Path
    settings: Path
    fleet: Path
    robots_live: Path
    lifts_live: Path
    bridges: Mapping[str, Path]  # building -> bridge file
    broker_dir: Path
    serials: tuple[str, ...]
    http_url: str
    mqtt_host: str
    mqtt_port: int
    console_user: str
    epoch: float  # virtual epoch seconds of the simulated parts at the start
    timezone: str  # the campus's
    cart_screens: Mapping[str, str] = field(default_factory=dict)  # cart -> its kiosk page URL


def virtual_epoch(origin: float, start_at: str | None, timezone: str) -> float:
    """The virtual time at the real instant ``origin``: ``start_at`` (HH:MM) that day in ``timezone``,
    or ``origin`` itself when ``start_at`` is None or ``now``."""
    if start_at is None or start_at == "now":
        return origin
    hour, minute = (int(part) for part in start_at.split(":"))
    day = datetime.fromtimestamp(origin, ZoneInfo(timezone))
    return day.replace(hour=hour, minute=minute, second=0, microsecond=0).timestamp()


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nothing listens on right now (the OS's pick)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def _check_port_free(host: str, port: int, what: str) -> None:
    """``DemoError`` when something listens on ``host:port`` (a port in TIME_WAIT is free: the servers
    set SO_REUSEADDR, so this check does too)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            raise DemoError(f"{what}: {host}:{port} is not free ({exc.strerror})") from None


def _scaled(base: float, factor: float, low: float, high: float) -> float:
    """``base`` virtual seconds stretched by ``factor`` (same real rate), within ``[low, high]``."""
    return round(min(high, max(low, base * factor)), 3)


def _dump(path: Path, data: Any, header: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    text = yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=110)
    path.write_text(
        f"# {header}\n# Written by robopost demo (launch/demo.py); rewritten on every start.\n{text}",
        encoding="utf-8",
    )
    return path


def write_demo_files(
    options: DemoOptions, layout: DemoLayout, *, mqtt_port: int, origin: float, password: Callable[[], str]
) -> DemoFiles:
    """Write the settings, fleet, robot, bridge and live files of one demo run into ``options.workdir``.

    ``origin`` is the real epoch time the simulated parts' virtual time starts from (at ``epoch``:
    ``options.start_at`` on ``origin``'s day in the campus's time zone, else ``origin`` itself);
    ``password`` makes the fleet's MQTT passwords (the broker lets anyone in on loopback, the files
    still need them).
    """
    from maps.errors import MapError
    from maps.io import load_map
    from orchestrator.fleet.orders import OrderBuilder
    from sim.campus_day import campus_day

    work = options.workdir.resolve()
    work.mkdir(parents=True, exist_ok=True)
    try:
        site = load_map(layout.campus)
        day = campus_day(
            site, seed=layout.seed, parcels=0, requests=0, carts=layout.carts, indoor=layout.indoor
        )
    except MapError as exc:
        raise DemoError(exc.line()) from None
    except ValueError as exc:  # campus_day: no station, stop or building with a hand-off point
        raise DemoError(f"{layout.campus}: {exc}") from None
    builder = OrderBuilder(site)
    factor = options.time_factor
    host = options.host
    http_url = f"http://{host}:{options.port}"
    _fresh_run(work)
    station_node = next(p.node for p in site.places.values() if p.kind.value == "station")

    robot_files: list[str] = []
    carts: list[dict[str, Any]] = []
    cart_tokens: dict[str, str] = {}
    screens: dict[str, str] = {}
    fleet_robots: list[dict[str, Any]] = []
    for robot in day.snapshot.robots:
        kind = robot.kind.value
        node = site.places[robot.home].node
        x, y = builder.map_xy(node)
        secret = password()
        fleet_robots.append(
            {
                "manufacturer": "robopost",
                "serial": robot.id,
                "kind": kind,
                "password": secret,
                "name": robot.id,
                "home": robot.home,
                **({"building": robot.building} if robot.building else {}),
            }
        )
        battery = round(100.0 * robot.battery.level_wh / robot.battery.capacity_wh, 1)
        agent = {
            "manufacturer": "robopost",
            "serial_number": robot.id,
            "kind": kind,
            "map_id": builder.map_of(node),
            "mqtt": {"host": host, "port": mqtt_port, "username": robot.id, "password": secret},
            "state_period": 30.0,
            "visualization_period": _scaled(1.0, factor, 1.0, 60.0),  # about 1 a real second
            "driver": {
                "type": "sim",
                "speed": layout.speeds.get(kind, 1.0),
                "step": _scaled(0.05, factor, 0.1, 1.0),  # a kinematic step about every 50 real ms
                "battery": battery,
                "start": {"x": x, "y": y, "theta": 0.0},
            },
            "factsheet": {"series_name": f"robopost-{kind}"},
            "safety": {"period": _scaled(0.05, factor, 0.05, 1.0)},  # a control tick every 50 real ms
        }
        path = _dump(
            work / "robots" / f"{robot.id}.yaml", agent, f"robot {robot.id} ({kind}) at {robot.home}"
        )
        if kind != "cart":
            robot_files.append(str(path))
            continue
        cart_tokens[robot.id] = token = password()
        screen = free_port(host)
        screens[robot.id] = f"http://{host}:{screen}/"
        carts.append(
            {
                "agent": str(path),
                "cart": robot.id,
                "compartments": robot.compartments.total,
                "orchestrator": {"url": http_url, "token": token},
                "data_dir": str(work / "carts" / robot.id),
                "screen_port": screen,
                "station_nodes": [station_node],
            }
        )

    fleet_file = _dump(
        work / "fleet.yaml",
        {"orchestrator": {"username": "orchestrator", "password": password()}, "robots": fleet_robots},
        "the demo fleet (orchestrator.fleet.config)",
    )
    fleet_file.chmod(0o600)

    bridges: dict[str, Path] = {}
    lifts: list[dict[str, Any]] = []
    for source in layout.bridges:
        building, bridge, simulated = _bridge_and_lifts(source, work, host, mqtt_port)
        bridges[building] = _dump(work / "bridges" / source.name, bridge, f"elevator bridge of {building}")
        lifts.extend(simulated)

    epoch = virtual_epoch(origin, options.start_at or layout.start_at, layout.timezone)
    clock = {
        "time_factor": factor,
        "epoch": epoch,
        "origin": origin,
        "mqtt": {"host": host, "port": mqtt_port},
    }
    lifts_live = _dump(
        work / "live" / "lifts.yaml",
        {**clock, "lift_tick_s": _scaled(0.05, factor, 0.1, 1.0), "lifts": lifts},
        "the simulated lift cars and controllers (sim.live.fleet)",
    )
    gateway = {"host": host, "port": free_port(host)}
    sms_secret, station_token = password(), password()
    people = {"gateway": gateway, "secret": sms_secret, "seed": layout.seed, "staff": True}
    station = {
        "url": http_url,
        "token": station_token,
        "campus": str(layout.campus),
        "seed": layout.seed,
        "time_zone": layout.timezone,
        "start_parcels": layout.start_parcels,
    }
    robots_live = _dump(
        work / "live" / "robots.yaml",
        {
            **clock,
            "campus": str(layout.campus),
            "robots": robot_files,
            "carts": carts,
            "people": people,
            "station": station,
        },
        "the simulated fleet, carts, people and station (sim.live.fleet)",
    )
    robots_live.chmod(0o600)  # tokens
    secrets_ = DemoSecrets(
        cart_tokens=cart_tokens,
        station_token=station_token,
        sms_url=f"http://{gateway['host']}:{gateway['port']}/sms",
        sms_secret=sms_secret,
    )
    settings = _dump(
        work / "settings.yaml",
        orchestrator_settings(options, layout, work, mqtt_port, secrets_, clock=(factor, epoch, origin)),
        "the orchestrator's settings (orchestrator.settings)",
    )
    settings.chmod(0o600)
    return DemoFiles(
        workdir=work,
        settings=settings,
        fleet=fleet_file,
        robots_live=robots_live,
        lifts_live=lifts_live,
        bridges=bridges,
        broker_dir=work / "broker",
        serials=tuple(r.id for r in day.snapshot.robots),
        http_url=f"http://{host}:{options.port}",
        mqtt_host=host,
        mqtt_port=mqtt_port,
        console_user=layout.console_user,
        epoch=epoch,
        timezone=layout.timezone,
        cart_screens=screens,
    )


def _fresh_run(work: Path) -> None:
    """Each demo run starts from an empty store and empty carts: its simulated day begins again at the
    start time, and a store holding the later hours of an earlier run would contradict it. The keys
    and the written files stay; the console login is made again."""
    for stale in ("robopost.db", "robopost.db-wal", "robopost.db-shm", "console-login.txt"):
        (work / stale).unlink(missing_ok=True)
    shutil.rmtree(work / "carts", ignore_errors=True)


def _bridge_and_lifts(
    source: Path, work: Path, host: str, mqtt_port: int
) -> tuple[str, dict[str, Any], list[dict[str, Any]]]:
    """A bridge file of ``launch/bridge`` pointed at the demo's broker (and its relay boards' ptys in
    the work folder), and the ``sim.live.fleet`` lifts that play its lift controllers."""
    try:
        bridge = yaml.safe_load(source.read_text(encoding="utf-8"))
        building = str(bridge["building"])
        bridge["mqtt"] = {**dict(bridge.get("mqtt") or {}), "host": host, "port": mqtt_port}
        lifts: list[dict[str, Any]] = []
        for name, lift in dict(bridge.get("lifts") or {}).items():
            driver = dict(lift["driver"])
            common = {
                "floors": lift["floors"],
                "floor_travel_s": lift.get("floor_travel_s", 2.0),
                "door_time_s": lift.get("door_time_s", 3.0),
            }
            if driver["kind"] == "iot_mqtt":
                labels, prefix = driver.get("labels"), driver.get("topic_prefix", "liftlink")
                lifts.append(
                    {"kind": "iot_mqtt", "name": driver["box_id"], "labels": labels, "topic_prefix": prefix}
                    | common
                )
            else:
                directory = work / "pty" / name
                driver["port"] = str(directory / "line")
                lifts.append(
                    {
                        "kind": "modbus_relay",
                        "name": name,
                        "directory": str(directory),
                        "device_id": driver.get("device_id", 1),
                        "baudrate": driver.get("baudrate", 19200),
                    }
                    | common
                )
            lift["driver"] = driver
    except (OSError, yaml.YAMLError, KeyError, TypeError, AttributeError) as exc:
        raise DemoError(f"{source}: cannot use this bridge file: {exc!r}") from None
    return building, bridge, lifts


@dataclass(frozen=True, slots=True)
class DemoSecrets:
    """What the orchestrator and the simulated fleet must agree on: the carts' and the station's
    tokens, and where the SMS go (the simulated students' gateway) with its signing secret."""

    cart_tokens: Mapping[str, str]
    station_token: str
    sms_url: str
    sms_secret: str


def orchestrator_settings(
    options: DemoOptions,
    layout: DemoLayout,
    work: Path,
    mqtt_port: int,
    secrets_: DemoSecrets,
    *,
    clock: tuple[float, float, float],
) -> dict[str, Any]:
    """The orchestrator's settings for the demo: fleet master and dispatch loop on, the simulated
    fleet's clock ``(time_factor, epoch, origin)``, store and keys in the work folder, SMS to the
    simulated students.

    The orchestrator runs on the simulated clock (``settings.clock``), so windows, leg times and code
    validity agree with the robots'. Time-outs that wait for an answer over the network are stretched
    by the factor (they are virtual seconds now): order confirmation and the console's control routes.
    """
    factor, epoch, origin = clock
    return {
        "database": {"url": f"sqlite:///{work / 'robopost.db'}"},
        "campus": {"map": str(layout.campus), "timezone": layout.timezone},
        # no line per request: the carts sync their codes every 30 virtual seconds
        "http": {"host": options.host, "port": options.port, "access_log": False},
        "mqtt": {"host": options.host, "port": mqtt_port, "embedded": False},
        "fleet": {"enabled": True, "config": "fleet.yaml", "confirm_timeout_s": round(5.0 * factor, 3)},
        # a robot is failed for the plan after its link is down this long: at least 30 real seconds,
        # so a broker restart (everything reconnects within seconds) re-plans nothing
        "operations": {"enabled": True, "robot_failed_after_s": round(max(180.0, 30.0 * factor), 3)},
        "clock": {"time_factor": factor, "epoch": epoch, "origin": origin},
        "safety": {"action_timeout_s": round(3.0 * factor, 3)},
        "security": {
            "keys_file": str(work / "var" / "keys.yaml"),
            "partners": {"station": secrets_.station_token},
            "carts": dict(secrets_.cart_tokens),
        },
        "notify": {
            "provider": "webhook",
            "webhook_url": secrets_.sms_url,
            "webhook_secret": secrets_.sms_secret,
        },
        "log_level": "INFO",
    }


def resolve_broker(choice: BrokerChoice) -> BrokerKind:
    """``auto``: Mosquitto when installed, else the embedded broker; ``DemoError`` if the pick is missing."""
    mosquitto = mosquitto_path()
    if choice == "mosquitto" or (choice == "auto" and mosquitto is not None):
        if mosquitto is None:
            raise DemoError("--broker mosquitto: mosquitto is not installed (Debian package mosquitto)")
        return "mosquitto"
    if importlib.util.find_spec("amqtt") is None:
        raise DemoError(
            "--broker embedded: the amqtt package is missing (pip install -e . installs it)"
            if choice == "embedded"
            else "no MQTT broker: install mosquitto, or amqtt for the embedded broker (pip install -e .)"
        )
    return "embedded"


def mosquitto_path() -> str | None:
    """The Mosquitto binary (on PATH or Debian's /usr/sbin), or None."""
    found = shutil.which("mosquitto")
    if found:
        return found
    return "/usr/sbin/mosquitto" if os.access("/usr/sbin/mosquitto", os.X_OK) else None


def broker_command(kind: BrokerKind, directory: Path, host: str, port: int) -> list[str]:
    """The broker's command line; writes Mosquitto's config (loopback, anonymous, log to stdout)."""
    directory.mkdir(parents=True, exist_ok=True)
    if kind == "embedded":
        return [sys.executable, "-m", "launch.demo", "embedded-broker", "--host", host, "--port", str(port)]
    conf = directory / "mosquitto.conf"
    # ``user``: stay whoever runs the demo. Started as root, Mosquitto would otherwise switch to user
    # mosquitto, and a change of user clears PR_SET_PDEATHSIG: it would outlive a killed supervisor.
    me = pwd.getpwuid(os.geteuid()).pw_name
    conf.write_text(
        "# The demo's broker (launch/demo.py): loopback only, anonymous, nothing kept on disk.\n"
        f"listener {port} {host}\nallow_anonymous true\npersistence false\nset_tcp_nodelay true\n"
        f"user {me}\nlog_dest stderr\nlog_type error\nlog_type warning\n",
        encoding="utf-8",
    )
    mosquitto = mosquitto_path()
    assert mosquitto is not None  # resolve_broker checked
    return [mosquitto, "-c", str(conf)]


def python_command(module: str, *args: str) -> list[str]:
    """``python -m module args`` with this interpreter (the venv's)."""
    return [sys.executable, "-m", module, *args]


# ---- processes ----------------------------------------------------------------------------------------


_libc: Any = None
with contextlib.suppress(OSError):
    _libc = ctypes.CDLL(None, use_errno=True)
_PR_SET_PDEATHSIG = 1


def _die_with_parent(sig: signal.Signals) -> None:
    """In the child before exec: ``sig`` when the supervisor dies (Linux; elsewhere nothing)."""
    if _libc is not None and sys.platform.startswith("linux"):
        _libc.prctl(_PR_SET_PDEATHSIG, int(sig))


@dataclass
class Child:
    """One started process: its name, the process, its last lines and the lines it is waited for;
    ``argv`` and ``death_signal`` to start it again, and how often it may be (``restarts_left``)."""

    name: str
    proc: asyncio.subprocess.Process
    argv: tuple[str, ...] = ()
    death_signal: signal.Signals = signal.SIGTERM
    restarts_left: int = 0
    restarts: int = 0
    tail: deque[str] = field(default_factory=lambda: deque(maxlen=TAIL_LINES))
    seen: set[str] = field(default_factory=set)
    line_seen: asyncio.Event = field(default_factory=asyncio.Event)
    pump: asyncio.Task[None] | None = None
    exited: asyncio.Task[int] | None = None

    @property
    def pid(self) -> int:
        return int(self.proc.pid)

    @property
    def running(self) -> bool:
        return self.proc.returncode is None


class Supervisor:
    """Starts children, forwards their output, notices deaths and stops them all in reverse order.

    ``out`` takes every output line (default: our stdout), each prefixed with the child's name;
    ``env`` and ``cwd`` are the children's (default: ours); a child's line equal to one of
    ``ready_lines`` can be waited for with ``line_printed``. After a child's unexpected exit
    ``failed`` is set and ``failure`` says which child, its exit code (and signal).
    """

    def __init__(
        self,
        *,
        clock: Clock | None = None,
        grace_s: float = 10.0,
        out: Callable[[str], None] | None = None,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
        ready_lines: Sequence[str] = (LIVE_READY_LINE, EMBEDDED_READY_LINE),
    ) -> None:
        self.clock = clock or RealClock()
        self.grace_s = grace_s
        self.children: list[Child] = []
        self.failed = asyncio.Event()
        self.failure: str | None = None
        self.stopping = False
        self._out = out or _print
        self._env = dict(os.environ if env is None else env)
        self._env["PYTHONUNBUFFERED"] = "1"  # lines reach us as they are written
        self._cwd = cwd
        self._ready_lines = frozenset(ready_lines)
        self._width = 12

    def say(self, text: str) -> None:
        """A line of the supervisor's own."""
        self._out(f"{'demo':>{self._width}} | {text}")

    async def start(
        self,
        name: str,
        argv: Sequence[str],
        *,
        death_signal: signal.Signals = signal.SIGTERM,
        restarts: int = 0,
    ) -> Child:
        """Start ``argv`` as ``name`` in its own session; output forwarded, death watched.

        ``death_signal`` is what the child gets should the supervisor itself be killed: SIGTERM for
        a clean stop, SIGKILL for a process whose stop could hang once the broker is gone too.
        ``restarts``: how many times an unexpected exit starts it again instead of failing the demo
        (the broker: everything else reconnects to it by itself).
        """
        if self.stopping:
            raise DemoError(f"{name}: not started, the demo is stopping")
        proc = await self._spawn(argv, death_signal)
        child = Child(name, proc, tuple(argv), death_signal, restarts_left=restarts)
        self.children.append(child)
        child.pump = asyncio.create_task(self._pump(child), name=f"demo output {name}")
        child.exited = asyncio.create_task(self._watch(child), name=f"demo watch {name}")
        self.say(f"started {name} (pid {child.pid}): {' '.join(_short(a) for a in argv)}")
        return child

    async def _spawn(self, argv: Sequence[str], death_signal: signal.Signals) -> asyncio.subprocess.Process:
        return await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            cwd=self._cwd,
            env=self._env,
            start_new_session=True,
            preexec_fn=functools.partial(_die_with_parent, death_signal),
        )

    async def _pump(self, child: Child) -> None:
        assert child.proc.stdout is not None
        while raw := await child.proc.stdout.readline():
            line = raw.decode("utf-8", errors="replace").rstrip()
            child.tail.append(line)
            if line in self._ready_lines:
                child.seen.add(line)
                child.line_seen.set()
            self._out(f"{child.name:>{self._width}} | {line}")

    async def _watch(self, child: Child) -> int:
        while True:
            code = await _exit_code(child.proc, self.clock)
            if child.pump is not None:
                # Its last lines, if they come at once: a helper left in its group (socat) may hold
                # the pipe open until ``_stop`` ends the group.
                await asyncio.wait({child.pump}, timeout=PUMP_DRAIN_S)
            if self.stopping:
                return code
            what = f"{child.name} (pid {child.pid}) exited unexpectedly with code {_code(code)}"
            if child.restarts_left <= 0:
                self._fail(what, child)
                return code
            child.restarts_left -= 1
            child.restarts += 1
            if _group_alive(child.pid):  # what it left in its group goes with it
                _killpg(child.pid, signal.SIGKILL)
            child.proc = await self._spawn(child.argv, child.death_signal)
            if self.stopping:  # stop_all began meanwhile and may have missed the new process
                _killpg(child.pid, signal.SIGTERM)
            child.pump = asyncio.create_task(self._pump(child), name=f"demo output {child.name}")
            self.say(f"{what}; restarted it (pid {child.pid}, restart {child.restarts})")

    def _fail(self, message: str, child: Child | None = None) -> None:
        if self.failure is None:
            self.failure = message
            self.say(f"ERROR: {message}")
            if child is not None and child.tail:
                self.say(f"last lines of {child.name}:")
                for line in child.tail:
                    self.say(f"    {line}")
        self.failed.set()

    async def until_ready(self, child: Child, what: str, check: Awaitable[object], timeout_s: float) -> None:
        """Wait for ``check`` (a readiness probe of ``child``); ``DemoError`` if the child dies first,
        the demo fails elsewhere, or ``timeout_s`` passes."""
        probe = asyncio.ensure_future(check)
        failed = asyncio.ensure_future(self.failed.wait())
        timer = asyncio.ensure_future(self.clock.sleep(timeout_s))
        try:
            await asyncio.wait({probe, failed, timer}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (failed, timer):
                task.cancel()
            if not probe.done():
                probe.cancel()
        if probe.done() and not probe.cancelled():
            probe.result()  # a probe that raised says why
            return
        if self.failure is not None:
            raise DemoError(self.failure)
        raise DemoError(f"{child.name} was not ready within {timeout_s:g} s: {what}")

    async def stop_all(self) -> None:
        """Stop every child in reverse start order: SIGTERM to its group, SIGKILL after the grace."""
        self.stopping = True
        began = self.clock.monotonic()
        for child in reversed(self.children):
            await self._stop(child)
        if self.children:
            self.say(f"{len(self.children)} processes stopped in {self.clock.monotonic() - began:.1f} s")

    async def _stop(self, child: Child) -> None:
        pgid = child.pid  # each child leads its own session and process group
        if child.running:
            self.say(f"stopping {child.name} (pid {child.pid})")
            _killpg(pgid, signal.SIGTERM)
            if not await self._exited(child, self.grace_s):
                self.say(f"{child.name} did not stop within {self.grace_s:g} s: SIGKILL")
                _killpg(pgid, signal.SIGKILL)
                await self._exited(child, self.grace_s)
        if _group_alive(pgid):  # helpers that outlived their leader (e.g. socat)
            _killpg(pgid, signal.SIGTERM)
            for _ in range(int(self.grace_s / POLL_S)):
                if not _group_alive(pgid):
                    break
                await self.clock.sleep(POLL_S)
            _killpg(pgid, signal.SIGKILL)
        if child.exited is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await child.exited
        # Its group is gone, so are the pipe's writers: let asyncio finish the process's transport.
        await asyncio.wait({asyncio.ensure_future(child.proc.wait())}, timeout=self.grace_s)
        if child.pump is not None:
            await asyncio.wait({child.pump}, timeout=PUMP_DRAIN_S)

    async def _exited(self, child: Child, timeout_s: float) -> bool:
        assert child.exited is not None
        done, _ = await asyncio.wait({child.exited}, timeout=timeout_s)
        return bool(done)


async def _exit_code(proc: asyncio.subprocess.Process, clock: Clock) -> int:
    """The exit code of ``proc`` (negative: killed by that signal) as soon as it exits.

    Not ``proc.wait()``: asyncio answers that only once the output pipe is closed too, and a helper
    the child started (socat under the lifts) keeps it open after the child died. A pidfd becomes
    readable when the process ends; ``waitid(WNOWAIT)`` reads its status without reaping it, which
    stays asyncio's job. Where pidfds are missing (not Linux 5.3+), ``proc.wait()`` it is.
    """
    try:
        fd = os.pidfd_open(proc.pid)
    except (AttributeError, OSError):
        return await proc.wait()
    loop = asyncio.get_running_loop()
    try:
        ended: asyncio.Future[None] = loop.create_future()
        loop.add_reader(fd, lambda: None if ended.done() else ended.set_result(None))
        try:
            await ended
        finally:
            loop.remove_reader(fd)
        try:
            info = os.waitid(os.P_PIDFD, fd, os.WEXITED | os.WNOWAIT)
        except ChildProcessError:
            info = None  # asyncio's child watcher reaped it first: the code is on its way to ``proc``
    finally:
        os.close(fd)
    if info is not None:
        return info.si_status if info.si_code == os.CLD_EXITED else -info.si_status
    while proc.returncode is None:
        await clock.sleep(0.01)
    return proc.returncode


def _print(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def _short(arg: str) -> str:
    return Path(arg).name if arg.startswith("/") and ("python" in arg or "mosquitto" in arg) else arg


def _code(code: int) -> str:
    return f"{code} (signal {signal.Signals(-code).name})" if code < 0 else str(code)


def _killpg(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


# ---- readiness probes -------------------------------------------------------------------------------


async def port_accepts(host: str, port: int, clock: Clock) -> None:
    """Return once ``host:port`` accepts a TCP connection."""
    while True:
        with contextlib.suppress(OSError):
            _reader, writer = await asyncio.open_connection(host, port)
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()
            return
        await clock.sleep(POLL_S)


async def http_ok(url: str, clock: Clock) -> None:
    """Return once ``GET url`` answers 200."""
    import httpx

    async with httpx.AsyncClient(timeout=2.0) as client:
        while True:
            with contextlib.suppress(httpx.HTTPError):
                if (await client.get(url)).status_code == 200:
                    return
            await clock.sleep(POLL_S)


async def fleet_online(url: str, serials: Sequence[str], clock: Clock) -> None:
    """Return once every robot in ``serials`` is online in the orchestrator's ``GET /v1/fleet``."""
    import httpx

    wanted = set(serials)
    async with httpx.AsyncClient(timeout=2.0) as client:
        while True:
            with contextlib.suppress(httpx.HTTPError, ValueError, KeyError, TypeError):
                answer = await client.get(f"{url}/v1/fleet")
                if answer.status_code == 200:
                    online = {r["serial"] for r in answer.json()["robots"] if r["online"]}
                    if wanted <= online:
                        return
            await clock.sleep(POLL_S)


async def line_printed(child: Child, line: str) -> None:
    """Return once ``child`` has printed ``line``."""
    while line not in child.seen:
        child.line_seen.clear()
        await child.line_seen.wait()


class RetainedWatch:
    """The supervisor's MQTT client: keeps the last payload of the topics it is asked to watch."""

    def __init__(self, host: str, port: int) -> None:
        self._config = MqttConfig(host=host, port=port, client_id=f"robopost-demo-{secrets.token_hex(4)}")
        self._client: MqttClient | None = None
        self._last: dict[str, bytes] = {}
        self._changed = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def start(self, pattern: str) -> None:
        """Connect and follow ``pattern``."""
        self._client = MqttClient(self._config, logger=logging.getLogger("robopost.demo.mqtt"))
        await self._client.connect(timeout=5.0)
        sub = self._client.subscribe(pattern, qos=1)
        await sub.wait_granted()

        async def follow() -> None:
            async for message in sub:
                self._last[message.topic] = message.payload
                self._changed.set()

        self._task = asyncio.create_task(follow(), name="demo mqtt watch")

    async def until(self, topic: str, payload: bytes) -> None:
        """Return once ``topic``'s last message is ``payload``."""
        while self._last.get(topic) != payload:
            self._changed.clear()
            await self._changed.wait()

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._client is not None:
            with contextlib.suppress(MqttError):
                await self._client.disconnect()


# ---- the run ---------------------------------------------------------------------------------------


async def start_demo(sup: Supervisor, options: DemoOptions) -> tuple[DemoFiles, float]:
    """Write the files and start every process in order; returns the files and the start-up seconds."""
    clock = sup.clock
    started = clock.monotonic()
    layout = load_layout(options.demo_file)
    broker = resolve_broker(options.broker)
    _check_port_free(options.host, options.port, "--port")
    mqtt_port = options.mqtt_port or free_port(options.host)
    _check_port_free(options.host, mqtt_port, "--mqtt-port")
    files_ = write_demo_files(
        options, layout, mqtt_port=mqtt_port, origin=clock.now(), password=lambda: secrets.token_urlsafe(18)
    )
    timeout = options.ready_timeout_s
    sup.say(f"work folder {files_.workdir}; broker {broker} on {options.host}:{mqtt_port}")
    overrides = sorted(name for name in os.environ if name.upper().startswith("ROBOPOST_"))
    if overrides:  # they apply to the orchestrator over settings.yaml (orchestrator.settings)
        sup.say(f"note: the orchestrator also takes {', '.join(overrides)} from the environment")

    command = broker_command(broker, files_.broker_dir, options.host, mqtt_port)
    child = await sup.start("broker", command, restarts=BROKER_RESTARTS)
    await sup.until_ready(child, "its port accepting", port_accepts(options.host, mqtt_port, clock), timeout)
    watch = RetainedWatch(options.host, mqtt_port)
    try:
        await sup.until_ready(child, "an MQTT connection", watch.start("robopost/bridge/+/online"), timeout)
        command = python_command("launch.cli", "serve", "--config", str(files_.settings))
        child = await sup.start("orchestrator", command)
        await sup.until_ready(child, "GET /healthz", http_ok(f"{files_.http_url}/healthz", clock), timeout)
        login = files_.workdir / "console-login.txt"
        console = asyncio.ensure_future(
            asyncio.to_thread(ensure_console_user, files_.settings, files_.console_user, login)
        )

        child = await sup.start("lifts", python_command("sim.live.fleet", "--config", str(files_.lifts_live)))
        await sup.until_ready(
            child, "every lift controller online", line_printed(child, LIVE_READY_LINE), timeout
        )
        bridges = []
        for building, path in files_.bridges.items():
            command = python_command("launch.cli", "elevator-bridge", "--config", str(path))
            # SIGKILL: a bridge's stop waits for the broker's ack of its "offline", forever if the
            # broker died with the supervisor; its last will says offline anyway.
            bridge = await sup.start(f"bridge-{building}", command, death_signal=signal.SIGKILL)
            bridges.append((building, bridge))
        for building, child in bridges:
            topic = f"robopost/bridge/{building}/online"
            await sup.until_ready(child, topic, watch.until(topic, b"online"), timeout)

        child = await sup.start(
            "robots", python_command("sim.live.fleet", "--config", str(files_.robots_live))
        )
        await sup.until_ready(child, "every robot agent up", line_printed(child, LIVE_READY_LINE), timeout)
        serials = files_.serials
        online = fleet_online(files_.http_url, serials, clock)
        await sup.until_ready(child, f"all {len(serials)} robots ONLINE in /v1/fleet", online, timeout)
        await console
    finally:
        await watch.stop()
    return files_, clock.monotonic() - started


def ensure_console_user(settings_file: Path, username: str, login: Path) -> None:
    """Give the console an admin ``username`` whose password is in ``login`` (mode 0600).

    Nothing happens while ``login`` exists; otherwise a new password is made and the user created,
    or its password set when the store already has it (a work folder whose login file was removed).
    """
    if login.exists():
        return
    from orchestrator.api.operators import create_user, set_password
    from orchestrator.settings import Settings, SettingsError
    from orchestrator.store.errors import ConflictError

    try:
        settings = Settings.load(settings_file)
    except SettingsError as exc:
        raise DemoError(str(exc)) from None
    password = secrets.token_urlsafe(9)
    try:
        create_user(settings, username, password, role="admin")
    except ConflictError:
        set_password(settings, username, password)
    _write_private(login, f"user: {username}\npassword: {password}\n")


def _write_private(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)


async def demo_main(options: DemoOptions, *, clock: Clock | None = None) -> int:
    """Run the demo until SIGINT/SIGTERM (0) or until a part fails (1); see the module docstring."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    sup = Supervisor(clock=clock, grace_s=options.grace_s)
    code = EXIT_OK
    try:
        starting = asyncio.ensure_future(start_demo(sup, options))
        stopped = asyncio.ensure_future(stop.wait())
        await asyncio.wait({starting, stopped}, return_when=asyncio.FIRST_COMPLETED)
        if not starting.done():
            sup.say("stop requested during start-up")
            starting.cancel()
            with contextlib.suppress(asyncio.CancelledError, DemoError):
                await starting
        else:
            files_, took = starting.result()
            login = files_.workdir / "console-login.txt"
            sup.say(
                f"all up in {took:.1f} s: {len(files_.serials)} robots online, "
                f"simulated hardware at {options.time_factor:g}x real time"
            )
            campus_time = datetime.fromtimestamp(files_.epoch, ZoneInfo(files_.timezone))
            sup.say(f"simulated time started at {campus_time:%Y-%m-%d %H:%M} campus time")
            sup.say(f"console {files_.http_url}/ (login in {login}); fleet {files_.http_url}/v1/fleet")
            for cart, url in files_.cart_screens.items():
                sup.say(f"{cart}'s screen (the kiosk students type codes on) {url}")
            sup.say("Ctrl-C stops everything")
            failed = asyncio.ensure_future(sup.failed.wait())
            await asyncio.wait({stopped, failed}, return_when=asyncio.FIRST_COMPLETED)
            failed.cancel()
            if sup.failure is not None:
                code = EXIT_FAILED
        stopped.cancel()
    except DemoError as exc:
        if sup.failure is None:
            sup.say(f"ERROR: {exc}")
        code = EXIT_FAILED
    finally:
        await sup.stop_all()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
    if sup.failure is not None:
        code = EXIT_FAILED
    sup.say("stopped" if code == EXIT_OK else f"stopped after a failure: {sup.failure or 'see above'}")
    return code


def run_demo(options: DemoOptions) -> int:
    """``robopost demo``: run until Ctrl-C; the exit code (0 after a requested stop, 1 on a failure)."""
    return asyncio.run(demo_main(options))


# ---- the embedded broker -------------------------------------------------------------------------------


async def embedded_broker(host: str, port: int, stop: asyncio.Event) -> None:
    """Run an amqtt broker on ``host:port`` (anonymous, nothing on disk) until ``stop`` is set."""
    from amqtt.broker import Broker

    broker = Broker(
        {
            "listeners": {"default": {"type": "tcp", "bind": f"{host}:{port}"}},
            "plugins": {"amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True}},
        }
    )
    await broker.start()
    print(EMBEDDED_READY_LINE, flush=True)
    try:
        await stop.wait()
    finally:
        await broker.shutdown()


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m launch.demo embedded-broker --host H --port P`` (what the supervisor starts)."""
    parser = argparse.ArgumentParser(prog="python -m launch.demo")
    commands = parser.add_subparsers(dest="command", required=True)
    broker = commands.add_parser("embedded-broker", help="an amqtt MQTT broker on loopback")
    broker.add_argument("--host", default="127.0.0.1")
    broker.add_argument("--port", type=int, required=True)
    args = parser.parse_args(argv)
    if not re.fullmatch(r"[0-9.:a-fA-F]+|localhost", args.host):
        print(f"launch.demo: --host {args.host!r} is not an address", file=sys.stderr)
        return EXIT_BAD_INPUT
    logging.basicConfig(level="WARNING", format="%(levelname)s %(name)s: %(message)s")

    async def run() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await embedded_broker(args.host, args.port, stop)

    try:
        asyncio.run(run())
    except OSError as exc:
        print(f"launch.demo: embedded broker on {args.host}:{args.port}: {exc}", file=sys.stderr)
        return EXIT_FAILED
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
