"""The ``robopost`` command line.

``robopost map info|route|render|import`` work on any supported map file (robopost YAML, Open-RMF
``.building.yaml``, OpenStreetMap ``.osm``); ``robopost serve`` starts the orchestrator app. A broken
input prints one line naming the file, the element and what is wrong (exit code 2); a route that does
not exist prints one line too (exit code 1).
"""

from __future__ import annotations

import json
import sys
import time
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from maps.errors import MapError, RoutingError

app = typer.Typer(help="robopost: campus parcel delivery by carts and indoor robots.", no_args_is_help=True)
map_app = typer.Typer(help="Inspect, route on, render and import campus maps.", no_args_is_help=True)
app.add_typer(map_app, name="map")

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


@app.command("serve")
def serve(
    config: Annotated[Path | None, typer.Option(help="settings YAML file")] = None,
) -> None:
    """Start the orchestrator app (HTTP API and map page) for the configured campus."""
    from orchestrator.app import run
    from orchestrator.settings import Settings, SettingsError

    try:
        settings = Settings.load(config)
    except SettingsError as exc:
        _fail(str(exc), EXIT_BAD_INPUT)
    run(settings)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
