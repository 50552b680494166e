"""``robopost sim day|compare``: the fast-mode campus simulator from the command line.

``sim_app`` is registered by ``launch/cli.py`` as ``robopost sim``. A bad scenario file prints one line
naming the file and the field (exit code 2). A progress bar (rich) runs on stderr when it is a terminal
and ``--quiet`` is not given.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NoReturn

import typer
from rich.console import Console
from rich.table import Table

if TYPE_CHECKING:
    from sim.day.scenario import Scenario

sim_app = typer.Typer(
    help="The campus simulator (fast mode: a whole day on a virtual clock).", no_args_is_help=True
)

EXIT_BAD_INPUT = 2


def _fail(message: str) -> NoReturn:
    print(f"robopost: {message}", file=sys.stderr)
    raise typer.Exit(EXIT_BAD_INPUT)


def _scenario(campus: Path | None, scenario: Path | None, seed: int | None) -> Scenario:
    from sim.day.scenario import ScenarioError, load_scenario, scenario_from_dict

    try:
        if scenario is not None and campus is None:
            return load_scenario(scenario, seed=seed)
        if campus is None or scenario is not None:
            raise ScenarioError("give either --campus FILE or --scenario FILE")
        return scenario_from_dict(
            {"campus": str(campus.resolve()), "name": campus.stem},
            base=Path.cwd(),
            source=str(campus),
            seed=seed,
        )
    except ScenarioError as exc:
        print(f"robopost: {exc}", file=sys.stderr)
        raise typer.Exit(EXIT_BAD_INPUT) from None


@sim_app.command("day")
def day(
    report: Annotated[
        Path, typer.Option("--report", help="Directory for report.md, kpis.json, pickups.csv, PNGs.")
    ],
    campus: Annotated[
        Path | None, typer.Option("--campus", help="A campus map: the default day on it.")
    ] = None,
    scenario: Annotated[
        Path | None, typer.Option("--scenario", help="A scenario YAML (sim/scenarios/).")
    ] = None,
    seed: Annotated[
        int | None, typer.Option("--seed", help="The day's seed (default: the scenario's).")
    ] = None,
    quiet: Annotated[bool, typer.Option("--quiet", help="No progress bar.")] = False,
) -> None:
    """Simulate one day and write its report."""
    from sim.day.engine import DAY_BEGIN_S, DAY_END_S, Simulation
    from sim.day.report import write_report

    chosen = _scenario(campus, scenario, seed)
    started = time.perf_counter()
    try:
        simulation = Simulation(chosen)
    except ValueError as exc:
        _fail(f"{scenario or campus}: {exc}")
    console = Console(stderr=True)
    if quiet or not console.is_terminal:
        result = simulation.run()
    else:
        from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

        with Progress(
            TextColumn("simulating"), BarColumn(), TextColumn("{task.description}"), TimeElapsedColumn(),
            console=console, transient=True,
        ) as progress:  # fmt: skip
            task = progress.add_task("06:00", total=DAY_END_S - DAY_BEGIN_S)

            def tick(t: float) -> None:
                progress.update(
                    task,
                    completed=t - DAY_BEGIN_S,
                    description=f"{int(t // 3600):02d}:{int(t % 3600 // 60):02d}",
                )

            simulation.progress = tick
            result = simulation.run()
    wall = time.perf_counter() - started
    figures = write_report(result, report, wall_s=wall)
    print(
        f"{chosen.name or 'day'} seed {result.seed}: {figures['parcels']} parcels, "
        f"delivered in window {figures['delivered_in_window_pct']} %, "
        f"pickup rate {figures['pickup_rate_pct']} %, "
        f"orders on time {figures['orders_on_time_pct']} %, cart-km {figures['cart_km']}, "
        f"{wall:.1f} s wall; report in {report}"
    )


@sim_app.command("compare")
def compare_cmd(
    a: Annotated[Path, typer.Argument(help="Scenario A (YAML).")],
    b: Annotated[Path, typer.Argument(help="Scenario B (YAML).")],
    seeds: Annotated[int, typer.Option("--seeds", min=1, help="Seeds 0..N-1, paired.")] = 10,
    json_out: Annotated[Path | None, typer.Option("--json", help="Also write the table as JSON.")] = None,
    quiet: Annotated[bool, typer.Option("--quiet", help="No progress lines.")] = False,
) -> None:
    """Run A and B on the same seeds; each KPI's means and B − A with a 95 % paired t interval."""
    from sim.day.compare import compare
    from sim.day.scenario import ScenarioError, load_scenario

    try:
        sa, sb = load_scenario(a), load_scenario(b)
    except ScenarioError as exc:
        _fail(str(exc))
    console = Console(stderr=True)

    def on_run(label: str, seed: int) -> None:
        if not quiet and console.is_terminal:
            console.print(f"running {label} seed {seed}", style="dim")

    try:
        rows = compare(sa, sb, range(seeds), on_run=on_run)
    except ValueError as exc:
        _fail(str(exc))
    table = Table(title=f"A = {a.name}, B = {b.name}, {seeds} paired seed(s)")
    for column in ("KPI", "A", "B", "B − A", "95 % CI"):
        table.add_column(column, justify="left" if column == "KPI" else "right")
    for row in rows:
        ci = "—" if row.low is None else f"[{row.low:g}, {row.high:g}]"
        table.add_row(row.kpi, f"{row.a:g}", f"{row.b:g}", f"{row.diff:+g}", ci)
    Console(width=120).print(table)
    if json_out is not None:
        payload = {"a": str(a), "b": str(b), "seeds": seeds, "kpis": [r.as_dict() for r in rows]}
        json_out.write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
