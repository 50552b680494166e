"""The ``robopost`` command line.

``robopost map info|route|render|import`` work on any supported map file (robopost YAML, Open-RMF
``.building.yaml``, OpenStreetMap ``.osm``); ``robopost serve`` starts the orchestrator app;
``robopost elevator-bridge --config FILE`` runs one building's lift/door/gate bridge. A broken
input prints one line naming the file, the element and what is wrong (exit code 2); a route that does
not exist prints one line too (exit code 1).
"""

from __future__ import annotations

import json
import sys
import time
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from launch.demo_cli import demo
from launch.sim_cli import sim_app
from launch.windows_cli import windows_app
from maps.errors import MapError, RoutingError

if TYPE_CHECKING:
    from orchestrator.settings import Settings

app = typer.Typer(help="robopost: campus parcel delivery by carts and indoor robots.", no_args_is_help=True)
map_app = typer.Typer(help="Inspect, route on, render and import campus maps.", no_args_is_help=True)
app.add_typer(map_app, name="map")
fleet_app = typer.Typer(
    help="The robot fleet: broker security and the live fleet picture.", no_args_is_help=True
)
app.add_typer(fleet_app, name="fleet")
bench_app = typer.Typer(
    help="Benchmarks (from a source checkout: benchmarks/ is not installed).", no_args_is_help=True
)
app.add_typer(bench_app, name="bench")
app.add_typer(windows_app, name="windows")
app.add_typer(sim_app, name="sim")
app.command("demo")(demo)

EXIT_BAD_INPUT = 2
EXIT_NO_ROUTE = 1


def _fail(message: str, code: int) -> None:
    print(f"robopost: {message}", file=sys.stderr)
    raise typer.Exit(code)


def _load(file: Path) -> Any:
    from maps.io import load_map

    try:
        return load_map(file)
    except MapError as exc:
        _fail(exc.line(), EXIT_BAD_INPUT)


def _print_json(data: Any) -> None:
    print(json.dumps(data, ensure_ascii=False, indent=2))


@map_app.command("info")
def map_info(
    file: Annotated[Path, typer.Argument(help="robopost .yaml, Open-RMF .building.yaml or .osm")],
    as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
) -> None:
    """Floors, lifts, doors, gates, nodes, edges, places and problems of a map."""
    from maps.check import site_info

    info = site_info(_load(file))
    if as_json:
        _print_json(info)
        return
    console = Console()
    table = Table(title=f"{info['site']}  ({file})", show_header=False)
    for key in ("buildings", "floors", "lifts", "doors", "gates", "entrances"):
        table.add_row(key, str(len(info[key])))
    table.add_row("nodes", str(info["nodes"]))
    table.add_row("edges", f"{info['edges']}  ({info['network_length_m']} m)")
    table.add_row("places", ", ".join(f"{k} {v}" for k, v in sorted(info["place_kinds"].items())))
    main = info["main_component"]
    table.add_row("components", f"{info['components']}; main: {main['nodes']} nodes ({main['share']:.1%})")
    table.add_row("problems", str(len(info["problems"])))
    console.print(table)
    for floor in info["floors"]:
        console.print(
            f"  floor {floor['id']} ({floor['building']}, {floor['elevation']} m): {floor['nodes']} nodes"
        )
    for lift in info["lifts"]:
        console.print(f"  lift {lift['id']}: {' '.join(lift['floors'])}")
    for problem in info["problems"]:
        console.print(f"  [yellow]problem[/yellow] {problem}")


@map_app.command("route")
def map_route(
    file: Annotated[Path, typer.Argument(help="map file")],
    start: Annotated[str, typer.Argument(metavar="FROM", help="place name, node id or lat,lon")],
    end: Annotated[str, typer.Argument(metavar="TO", help="place name, node id or lat,lon")],
    profile: Annotated[str, typer.Option(help="robot profile: cart, indoor, robot, ...")] = "cart",
    as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
) -> None:
    """The fastest route between two places for a robot profile."""
    from maps.routing import Router

    site = _load(file)
    try:
        route = Router(site, profile).route(start, end)
    except RoutingError as exc:
        _fail(str(exc), EXIT_NO_ROUTE)
    if as_json:
        data = route.to_dict()
        data["length_m"] = round(route.length_m, 3)
        data["time_s"] = round(route.time_s, 3)
        _print_json(data)
        return
    console = Console()
    console.print(
        f"{start} → {end} ({profile}): [bold]{route.length_m:.1f} m, {route.time_s:.0f} s[/bold], "
        f"{len(route.path)} nodes"
    )
    console.print(f"  floors: {' → '.join(route.floors)}")
    if route.lifts:
        console.print(f"  lifts:  {', '.join(route.lifts)}")
    if route.doors or route.gates:
        console.print(f"  doors:  {', '.join(route.doors) or '-'}; gates: {', '.join(route.gates) or '-'}")


@map_app.command("render")
def map_render(
    file: Annotated[Path, typer.Argument(help="map file")],
    out: Annotated[Path, typer.Option("-o", "--out", help="PNG to write")],
) -> None:
    """Draw the outdoor network and every floor to a PNG."""
    from maps.render import render_site

    site = _load(file)
    render_site(site, out)
    print(f"wrote {out}")


class ImportKind(StrEnum):
    rmf = "rmf"
    osm = "osm"


@map_app.command("import")
def map_import(
    kind: Annotated[ImportKind, typer.Argument(help="rmf (Open-RMF building.yaml) or osm")],
    src: Annotated[Path, typer.Argument(help="file to import")],
    out: Annotated[Path, typer.Option("-o", "--out", help="robopost map to write (.yaml)")],
) -> None:
    """Convert an Open-RMF or OpenStreetMap file to robopost's format."""
    from maps.io import save_site

    started = time.perf_counter()
    try:
        if kind is ImportKind.rmf:
            from maps.importers.rmf import import_rmf

            site = import_rmf(src)
        else:
            from maps.importers.osm import import_osm

            site = import_osm(src)
    except MapError as exc:
        _fail(exc.line(), EXIT_BAD_INPUT)
    if out.suffix not in (".yaml", ".yml"):
        _fail(f"{out}: the output must be a .yaml file", EXIT_BAD_INPUT)
    yaml_path, net_path = save_site(site, out)
    took = time.perf_counter() - started
    print(
        f"wrote {yaml_path} and {net_path}: {len(site.nodes)} nodes, {len(site.edges)} edges ({took:.2f} s)"
    )


def _settings(config: Path | None, **overrides: object) -> Settings:
    """Settings from ``config`` and the environment, with the command line's overrides on top."""
    from orchestrator.settings import Settings, SettingsError

    try:
        settings = Settings.load(config)
        sections: dict[str, dict[str, object]] = {}
        for path, value in overrides.items():
            if value is not None:
                section, key = path.split("__")
                sections.setdefault(section, {})[key] = value
        if sections:
            merged = settings.model_dump()
            for section, values in sections.items():
                merged[section] = {**merged[section], **values}
            settings = Settings(**merged)
    except (SettingsError, ValueError) as exc:
        _fail(str(exc), EXIT_BAD_INPUT)
    return settings


@app.command("serve")
def serve(
    config: Annotated[Path | None, typer.Option(help="settings YAML file")] = None,
    host: Annotated[str | None, typer.Option(help="listen address (default http.host)")] = None,
    port: Annotated[int | None, typer.Option(help="listen port (default http.port)")] = None,
    database_url: Annotated[str | None, typer.Option(help="SQLAlchemy URL (default database.url)")] = None,
) -> None:
    """Start the orchestrator alone: HTTP APIs (intake, partner, carts, console), map page, metrics."""
    from orchestrator.app import run

    run(_settings(config, http__host=host, http__port=port, database__url=database_url))


user_app = typer.Typer(help="Console operators (viewer, operator, admin).", no_args_is_help=True)
app.add_typer(user_app, name="user")
SettingsFile = Annotated[Path | None, typer.Option("--config", help="settings YAML file")]
NewPassword = Annotated[
    str, typer.Option(prompt=True, hide_input=True, confirmation_prompt=True, help="8-256 characters")
]


@user_app.command("add")
def user_add(
    username: str,
    role: Annotated[str, typer.Option(help="viewer, operator or admin")] = "admin",
    config: SettingsFile = None,
    password: NewPassword = "",
) -> None:
    """Create a console user (the first admin of a new installation, for example)."""
    from orchestrator.api.operators import create_user
    from orchestrator.store.errors import ConflictError

    try:
        user = create_user(_settings(config), username, password, role=role)
    except (ValueError, ConflictError) as exc:
        _fail(str(exc), EXIT_BAD_INPUT)
    print(f"user {user.username} ({user.role.value}) created")


@user_app.command("passwd")
def user_passwd(
    username: str,
    config: SettingsFile = None,
    password: NewPassword = "",
) -> None:
    """Set a user's password (re-enables the user and ends their sessions)."""
    from orchestrator.api.operators import set_password
    from orchestrator.store.errors import NotFoundError

    try:
        user = set_password(_settings(config), username, password)
    except (ValueError, NotFoundError) as exc:
        _fail(str(exc), EXIT_BAD_INPUT)
    print(f"password of {user.username} set")


@user_app.command("list")
def user_list(config: SettingsFile = None) -> None:
    """The console users and their roles."""
    from orchestrator.api.operators import list_users

    for user in list_users(_settings(config)):
        print(f"{user.username}\t{user.role.value}\t{'enabled' if user.enabled else 'disabled'}")


@app.command("agent")
def robot_agent(
    config: Annotated[Path, typer.Option(help="robot YAML file (see robots/agent/config.py)")],
    log_level: Annotated[str, typer.Option(help="DEBUG, INFO, WARNING or ERROR")] = "INFO",
) -> None:
    """Run one robot's VDA 5050 agent until SIGINT/SIGTERM (then connection OFFLINE)."""
    import asyncio
    import logging

    from interfaces.mqtt import MqttConnectError
    from robots.agent.agent import serve as serve_agent
    from robots.agent.config import AgentConfigError, load_config
    from sim.safety_feed import attach_sim_sensors

    try:
        robot = load_config(config)
    except AgentConfigError as exc:
        _fail(str(exc), EXIT_BAD_INPUT)
    level = log_level.upper()
    if level not in ("DEBUG", "INFO", "WARNING", "ERROR"):
        _fail(f"--log-level: {log_level!r} is not DEBUG, INFO, WARNING or ERROR", EXIT_BAD_INPUT)
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        asyncio.run(serve_agent(robot, setup=attach_sim_sensors))
    except MqttConnectError as exc:
        _fail(str(exc), 1)


cart_app = typer.Typer(help="The delivery cart: locker board, pickup-code screen.", no_args_is_help=True)
app.add_typer(cart_app, name="cart")


@cart_app.command("run")
def cart_run(
    config: Annotated[Path, typer.Option(help="cart YAML file (see robots/cart/config.py)")],
) -> None:
    """Run one cart: its locker board, offline code check and kiosk screen, until SIGINT/SIGTERM."""
    import logging

    from robots.cart.config import CartConfigError, load_config, run
    from sim.safety_feed import attach_sim_sensors

    try:
        cart = load_config(config)
    except CartConfigError as exc:
        _fail(str(exc), EXIT_BAD_INPUT)
    logging.basicConfig(level="INFO", format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        run(cart, setup=attach_sim_sensors)
    except CartConfigError as exc:  # the agent's robot file
        _fail(str(exc), EXIT_BAD_INPUT)


@cart_app.command("hash-pin")
def cart_hash_pin(
    pin: Annotated[str, typer.Option(prompt=True, hide_input=True, help="the staff PIN (4-12 digits)")],
) -> None:
    """Print the argon2 hash of a staff PIN for the cart file's ``staff_pin_hash``."""
    from argon2 import PasswordHasher

    if not (pin.isascii() and pin.isdigit() and 4 <= len(pin) <= 12):
        _fail("a staff PIN is 4 to 12 digits", EXIT_BAD_INPUT)
    print(PasswordHasher().hash(pin))


# ---- fleet -------------------------------------------------------------------------------------------

EXIT_UNAVAILABLE = 1


@fleet_app.command("broker-config")
def fleet_broker_config(
    fleet: Annotated[Path, typer.Option("--fleet", help="fleet file (robots and their MQTT accounts)")],
    out: Annotated[Path, typer.Option("-o", "--out", help="folder for passwd, acl and mosquitto.conf")],
) -> None:
    """Write Mosquitto's password file, ACL and config snippet for a fleet."""
    from orchestrator.fleet.broker import write_broker_files
    from orchestrator.fleet.config import load_fleet
    from orchestrator.fleet.errors import FleetConfigError

    try:
        config = load_fleet(fleet)
    except FleetConfigError as exc:
        _fail(str(exc), EXIT_BAD_INPUT)
    files = write_broker_files(config, out, source=str(fleet))
    print(f"wrote {files.passwd}, {files.acl} and {files.conf} ({len(config.robots)} robots)")
    print(f"add the lines of {files.conf} to the broker's mosquitto.conf, after its listener")


def _fleet_url(config: Path | None, url: str | None) -> str:
    if url:
        return url.rstrip("/")
    from orchestrator.settings import Settings, SettingsError

    try:
        settings = Settings.load(config)
    except SettingsError as exc:
        _fail(str(exc), EXIT_BAD_INPUT)
    return f"http://{settings.http.host}:{settings.http.port}"


def _get_json(url: str) -> Any:
    """GET ``url`` and decode its JSON; one-line failure for an unreachable or unwilling server."""
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return json.loads(response.read())
    except urllib.error.HTTPError as exc:
        try:
            detail = json.loads(exc.read()).get("detail", exc.reason)
        except ValueError:
            detail = exc.reason
        _fail(f"{url}: {exc.code} {detail}", EXIT_UNAVAILABLE)
    except (urllib.error.URLError, OSError) as exc:
        _fail(f"cannot reach the orchestrator at {url}: {getattr(exc, 'reason', exc)}", EXIT_UNAVAILABLE)


def _robot_row(robot: dict[str, Any]) -> list[str]:
    age = robot["age_s"]
    order = robot["order_id"] or "-"
    if robot["order_id"]:
        order = f"{order[:12]}/{robot['order_update_id']}"
    pos = robot["position"]
    where = f"{pos['x']:.1f},{pos['y']:.1f} @{pos['map_id']}" if pos else "-"
    flags = ", ".join(f for f, on in (("driving", robot["driving"]), ("paused", robot["paused"])) if on)
    errors = robot["errors"]
    battery = f"{robot['battery_charge']:.0f}%" if robot["battery_charge"] is not None else "-"
    link_style = "green" if robot["online"] else "red"
    return [
        robot["serial"],
        robot["kind"],
        f"[{link_style}]{robot['link']}[/{link_style}]",
        "-" if age is None else f"{age:.1f} s",
        battery,
        order,
        robot["last_node_id"] or "-",
        robot["operating_mode"] or "-",
        flags or "-",
        where,
        f"{len(errors)}: {errors[0]['type']}" if errors else "-",
    ]


@fleet_app.command("status")
def fleet_status(
    config: Annotated[
        Path | None, typer.Option(help="orchestrator settings YAML (for http host/port)")
    ] = None,
    url: Annotated[
        str | None, typer.Option(help="orchestrator base URL (default: from the settings)")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print the JSON of GET /v1/fleet")] = False,
) -> None:
    """The fleet picture of a running orchestrator: link, age, battery, order, position, errors."""
    body = _get_json(f"{_fleet_url(config, url)}/v1/fleet")
    if as_json:
        _print_json(body)
        return
    robots = body["robots"]
    online = sum(1 for r in robots if r["online"])
    table = Table(title=f"fleet: {online}/{len(robots)} online")
    for column in (
        "robot",
        "kind",
        "link",
        "age",
        "battery",
        "order",
        "last node",
        "mode",
        "state",
        "position",
    ):
        table.add_column(column)
    table.add_column("errors")
    for robot in robots:
        table.add_row(*_robot_row(robot))
    Console().print(table)


# ---- bench -------------------------------------------------------------------------------------------


def _emit_json(result: Any, json_out: Path | None) -> None:
    """Print a benchmark's result as JSON, and write it to ``json_out`` when given."""
    text = json.dumps(result, indent=2)
    print(text)
    if json_out is not None:
        json_out.write_text(text + "\n", encoding="utf-8")


def _benchmark(name: str) -> Any:
    """Import ``benchmarks.<name>`` from the source checkout this CLI runs from."""
    import importlib

    root = Path(__file__).resolve().parents[1]
    if not (root / "benchmarks" / name.split(".", maxsplit=1)[0]).is_dir():
        _fail(f"{root / 'benchmarks' / name} not found: benchmarks need a source checkout", EXIT_BAD_INPUT)
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))
    return importlib.import_module(f"benchmarks.{name}")


@bench_app.command("fleet")
def bench_fleet(
    robots: Annotated[int, typer.Option(help="robots publishing state at 2 Hz (1..5000)")] = 100,
    seconds: Annotated[float, typer.Option(help="length of the measured window")] = 10.0,
    json_out: Annotated[Path | None, typer.Option("--json", help="write the result as JSON here")] = None,
    processes: Annotated[int, typer.Option(help="processes the robots are spread over")] = 1,
    warmup: Annotated[float, typer.Option(help="seconds before the window opens")] = 3.0,
) -> None:
    """Fleet master under load: own Mosquitto, N robots (one connection each) at 2 Hz, state age and CPU."""
    bench = _benchmark("fleet")
    try:
        result = bench.run_bench(robots, seconds, processes=processes, warmup_s=warmup, progress=print)
    except (ValueError, RuntimeError) as exc:
        _fail(str(exc), EXIT_BAD_INPUT)
    _emit_json(result, json_out)


@bench_app.command("console")
def bench_console(
    robots: Annotated[int, typer.Option(help="moving robots on the map (1..2000)")] = 200,
    seconds: Annotated[float, typer.Option(help="length of the measured window")] = 10.0,
    json_out: Annotated[Path | None, typer.Option("--json", help="write the result as JSON here")] = None,
    page: Annotated[
        str, typer.Option(help="auto (the console once its map view exists), console, or minimal (baseline)")
    ] = "auto",
    warmup: Annotated[float, typer.Option(help="seconds between all robots drawn and the window")] = 1.0,
    screenshot: Annotated[Path | None, typer.Option(help="save a PNG of the page after the window")] = None,
) -> None:
    """Console map in headless Chromium with N robots moving (own Mosquitto, the app, VDA 5050 states at
    1 Hz): frame time p50/p95/max, fps and stream events per second (issue 11: p95 < 50 ms)."""
    try:
        bench = _benchmark("console")
    except ModuleNotFoundError as exc:  # Playwright comes with the test extra
        _fail(f"bench console needs {exc.name} (pip install -e '.[test]')", EXIT_BAD_INPUT)
    try:
        result = bench.run_bench(
            robots, seconds, page=page, warmup_s=warmup, screenshot=screenshot, progress=print
        )
    except (ValueError, RuntimeError) as exc:
        _fail(str(exc), EXIT_BAD_INPUT)
    _emit_json(result, json_out)


@bench_app.command("cart")
def bench_cart(
    trials: Annotated[int, typer.Option(help="typed codes timed against an instant board")] = 2000,
    parcels: Annotated[int, typer.Option(help="parcels (codes and compartments) on the cart")] = 50,
    board_trials: Annotated[int, typer.Option(help="codes timed through the simulated board on a pty")] = 100,
    seed: Annotated[int, typer.Option(help="random seed")] = 1,
    json_out: Annotated[Path | None, typer.Option("--json", help="write the result as JSON here")] = None,
) -> None:
    """Pickup-code check on the cart (p50/p99 ms), and typed code → lock pulse confirmed over a real pty."""
    bench = _benchmark("cart.bench")
    _emit_json(bench.run_bench(trials, parcels, board_trials, seed), json_out)


@bench_app.command("safety")
def bench_safety(
    trials: Annotated[int, typer.Option(help="e-stops timed")] = 200,
    json_out: Annotated[Path | None, typer.Option("--json", help="write the result as JSON here")] = None,
) -> None:
    """E-stop propagation: console API call on the orchestrator → zero cmd_vel published on ROS 2 by the
    robot (own Mosquitto, the app, the agent on a RosDriver, the simulated base; p50/p99 ms)."""
    bench = _benchmark("safety.bench")
    try:
        result = bench.run_bench(trials, progress=print)
    except (ValueError, RuntimeError) as exc:
        _fail(str(exc), EXIT_BAD_INPUT)
    _emit_json(result, json_out)


@bench_app.command("localization")
def bench_localization(
    seed: Annotated[int, typer.Option(help="seed of the simulated sensors")] = 1,
    json_out: Annotated[Path | None, typer.Option("--json", help="write the result as JSON here")] = None,
) -> None:
    """Fused localization on the scripted outdoor → entrance → lift → floor 6 run: error per regime
    against an RTS smoother and a naive baseline, pose jumps at source switches, NEES, update cost."""
    bench = _benchmark("localization.bench")
    _emit_json(bench.run_bench(seed), json_out)


class DispatchSuite(StrEnum):
    """The ``bench dispatch`` suites (``benchmarks.dispatch.bench.SUITES``)."""

    vrptw = "vrptw"
    pdptw = "pdptw"
    campus = "campus"
    online = "online"


def _dispatch_line(row: dict[str, Any]) -> str:
    bks = f"{row['bks_vehicles']}/{row['bks_distance']}" if row["bks_vehicles"] is not None else "-"
    gap = f"{row['gap_pct']:+.2f}%" if row["gap_pct"] is not None else "-"
    verdict = "feasible" if row["feasible"] else "INFEASIBLE"
    return (
        f"{row['instance']:<8} {row.get('solver', ''):<9} {row['vehicles']:>3} {row['distance']:>10.2f}  "
        f"bks {bks:<13} gap {gap:>8}  {verdict}  {row['seconds']:.1f} s"
    )


@bench_app.command("dispatch")
def bench_dispatch(
    suite: Annotated[
        DispatchSuite,
        typer.Option(help="vrptw (Solomon), pdptw (Li & Lim), campus (generated day) or online (insertion)"),
    ],
    instances: Annotated[
        Path | None, typer.Option(help="folder of *.txt instance files (vrptw, pdptw)")
    ] = None,
    bks: Annotated[Path | None, typer.Option(help="best-known solutions JSON (vrptw, pdptw)")] = None,
    time_limit: Annotated[float, typer.Option("--time-limit", help="seconds per instance")] = 10.0,
    iterations: Annotated[
        int | None, typer.Option(help="also stop after this many solver iterations per instance")
    ] = None,
    json_out: Annotated[Path | None, typer.Option("--json", help="write the rows as JSON here")] = None,
    limit: Annotated[int | None, typer.Option(help="only the first N instances (sorted by name)")] = None,
    seed: Annotated[int, typer.Option(help="solver seed")] = 1,
    baseline: Annotated[
        bool, typer.Option(help="also run OR-Tools guided local search (the bench extra)")
    ] = False,
) -> None:
    """Dispatcher figures: classical VRPTW/PDPTW instances (vehicles, distance, gap to the best known,
    feasibility), a generated campus day (``campus``) or online insertion times (``online``)."""
    if suite in (DispatchSuite.campus, DispatchSuite.online):
        _bench_dispatch_campus(suite, seed=seed, json_out=json_out)
        return
    bench = _benchmark("dispatch")
    from orchestrator.dispatch.errors import InstanceFormatError

    if instances is None or bks is None:
        _fail(f"--suite {suite.value} needs --instances DIR and --bks FILE", EXIT_BAD_INPUT)
        return
    try:
        rows = bench.run_bench(
            suite.value,
            instances,
            bks,
            time_limit_s=time_limit,
            iterations=iterations,
            limit=limit,
            seed=seed,
            baseline=baseline,
            progress=lambda row: print(_dispatch_line(row), flush=True),
        )
    except (InstanceFormatError, ValueError, OSError, ImportError) as exc:
        _fail(str(exc), EXIT_BAD_INPUT)
    print(json.dumps(bench.summarise(rows), indent=2))
    if json_out is not None:
        json_out.write_text(json.dumps(rows, indent=1) + "\n", encoding="utf-8")
        print(f"wrote {json_out}")


def _bench_dispatch_campus(suite: DispatchSuite, *, seed: int, json_out: Path | None) -> None:
    """``--suite campus``: a generated day of 2,000 parcels; ``--suite online``: insertion p50/p95/p99."""
    from maps.io import load_map
    from orchestrator.settings import default_campus_map

    site = load_map(default_campus_map())
    _benchmark("dispatch")  # puts the source checkout on the path
    if suite is DispatchSuite.campus:
        campus = _benchmark("dispatch.campus")
        result = campus.run_campus(site, seed=seed)
        print(campus.format_campus(result))
    else:
        online = _benchmark("dispatch.online")
        result = online.run_online(site, seed=seed)
        print(online.format_result(result))
    if json_out is not None:
        json_out.write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
        print(f"wrote {json_out}")


@app.command("elevator-bridge")
def elevator_bridge(
    config: Annotated[
        Path, typer.Option("--config", help="the building's bridge YAML (launch/bridge/*.yaml)")
    ],
    check: Annotated[bool, typer.Option("--check", help="only check the file and print a summary")] = False,
    log_level: Annotated[str, typer.Option(help="DEBUG, INFO, WARNING or ERROR")] = "INFO",
) -> None:
    """Run one building's lift/door/gate bridge: MQTT towards robots, drivers towards the equipment."""
    import logging

    from elevator_bridge.config import BridgeConfigError, load_config

    try:
        bridge = load_config(config)
    except BridgeConfigError as exc:
        _fail(str(exc), EXIT_BAD_INPUT)
    if check:
        lifts = ", ".join(
            f"{name} ({lift.driver.kind}, {len(lift.floors)} floors)" for name, lift in bridge.lifts.items()
        )
        print(f"{bridge.building}: lifts {lifts}; {len(bridge.doors)} doors; {len(bridge.gates)} gates")
        return
    from elevator_bridge.app import run
    from interfaces.mqtt import MqttConnectError

    logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        run(bridge)
    except MqttConnectError as exc:
        _fail(str(exc), 1)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
