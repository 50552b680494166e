"""``robopost bench dispatch``: rows per instance, JSON a checker can re-verify, clear bad-input errors."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from typer.testing import CliRunner

from benchmarks.dispatch.bench import summarise
from launch.cli import app
from orchestrator.dispatch.check import check
from orchestrator.dispatch.instances import read_lilim_text, read_solomon_text

runner = CliRunner()
KEYS = {"instance", "vehicles", "distance", "bks_vehicles", "bks_distance", "feasible", "seconds", "routes"}


def _args(suite: str, folder: Path, *extra: str) -> list[str]:
    bks = folder / "bks.json"
    return ["bench", "dispatch", "--suite", suite, "--instances", str(folder), "--bks", str(bks), *extra]


def test_pdptw_bench_prints_rows_and_writes_checkable_json(shared_data: Path, tmp_path: Path) -> None:
    """One Li & Lim instance: a printed row, a summary, JSON rows whose routes pass the checker."""
    folder = shared_data / "pdptw" / "lilim"
    out = tmp_path / "rows.json"
    res = runner.invoke(app, _args("pdptw", folder, "--iterations", "50", "--limit", "1", "--json", str(out)))
    assert res.exit_code == 0, res.output
    assert res.output.startswith("lc101    robopost   10     828.94  bks 10/828.94")
    assert '"bks_vehicles_reached": 1' in res.output
    rows = json.loads(out.read_text())
    assert len(rows) == 1
    row = rows[0]
    assert row.keys() >= KEYS
    assert (row["instance"], row["bks_vehicles"], row["bks_distance"]) == ("lc101", 10, 828.94)
    problem = read_lilim_text((folder / "lc101.txt").read_text(), "lc101")
    verdict = check(problem, row["routes"])
    assert verdict.feasible == row["feasible"] is True
    assert round(verdict.distance, 4) == row["distance"]


def test_vrptw_bench_runs(shared_data: Path) -> None:
    """The Solomon suite prints a feasible row for its first instance."""
    folder = shared_data / "vrptw" / "solomon"
    res = runner.invoke(app, _args("vrptw", folder, "--iterations", "30", "--limit", "1"))
    assert res.exit_code == 0, res.output
    assert res.output.startswith("C101     robopost")
    assert "feasible" in res.output.splitlines()[0]


def test_baseline_rows_follow_ours_and_are_checked(shared_data: Path, tmp_path: Path) -> None:
    """With --baseline, OR-Tools' row follows ours on the same instance; its routes pass the checker."""
    folder = shared_data / "vrptw" / "solomon"
    out = tmp_path / "rows.json"
    extra = ("--iterations", "30", "--time-limit", "1", "--limit", "1", "--baseline", "--json", str(out))
    res = runner.invoke(app, _args("vrptw", folder, *extra))
    assert res.exit_code == 0, res.output
    rows = json.loads(out.read_text())
    assert [(r["instance"], r["solver"]) for r in rows] == [("C101", "robopost"), ("C101", "ortools")]
    problem = read_solomon_text((folder / "C101.txt").read_text())
    assert check(problem, rows[1]["routes"]).feasible == rows[1]["feasible"] is True
    assert '"ortools"' in res.output


def test_a_broken_instance_exits_2_with_one_line(shared_data: Path, tmp_path: Path) -> None:
    """A malformed instance file stops the bench with exit code 2 and a line naming the file."""
    folder = shared_data / "vrptw" / "solomon"
    shutil.copy(folder / "bks.json", tmp_path / "bks.json")
    (tmp_path / "C101.txt").write_text("C101\nVEHICLE\n25 200\n0 40 50 0 0 1236\n")
    res = runner.invoke(app, _args("vrptw", tmp_path))
    assert res.exit_code == 2
    assert f"robopost: {tmp_path / 'C101.txt'}:4: expected 7 numbers, found 6" in res.output


def test_an_empty_folder_exits_2(tmp_path: Path) -> None:
    """A folder without instances is a clear error."""
    res = runner.invoke(app, _args("pdptw", tmp_path))
    assert res.exit_code == 2
    assert "no *.txt instance files" in res.output


def test_a_classical_suite_needs_instances_and_bks(tmp_path: Path) -> None:
    """--suite vrptw without --bks exits 2 saying what is missing."""
    res = runner.invoke(app, ["bench", "dispatch", "--suite", "vrptw", "--instances", str(tmp_path)])
    assert res.exit_code == 2
    assert "--suite vrptw needs --instances DIR and --bks FILE" in res.output


def _summary_row(solver: str, vehicles: int, gap: float | None, feasible: bool = True) -> dict[str, Any]:
    return {
        "solver": solver,
        "vehicles": vehicles,
        "bks_vehicles": 10,
        "gap_pct": gap,
        "feasible": feasible,
        "seconds": 2.0,
    }


def test_summary_counts_bks_vehicle_hits_and_averages_gaps_only_on_them() -> None:
    """Per solver: a row with too many vehicles or infeasible is not a hit and its gap is not averaged."""
    rows = [
        _summary_row("robopost", 10, 0.2),
        _summary_row("robopost", 10, 0.6),
        _summary_row("robopost", 11, -3.0),
        _summary_row("ortools", 10, 2.0),
        _summary_row("ortools", 9, None, feasible=False),
    ]
    summary = summarise(rows)
    assert summary["robopost"] == {
        "instances": 3,
        "feasible": 3,
        "bks_vehicles_reached": 2,
        "bks_vehicles_reached_pct": 66.7,
        "mean_gap_pct_on_those": 0.4,
        "max_gap_pct_on_those": 0.6,
        "mean_seconds": 2.0,
    }
    assert (summary["ortools"]["feasible"], summary["ortools"]["bks_vehicles_reached"]) == (1, 1)
