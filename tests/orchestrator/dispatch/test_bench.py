"""``robopost bench dispatch``: rows per instance, JSON a checker can re-verify, clear bad-input errors."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from typer.testing import CliRunner

from launch.cli import app
from orchestrator.dispatch.check import check
from orchestrator.dispatch.instances import read_lilim_text

runner = CliRunner()
KEYS = {"instance", "vehicles", "distance", "bks_vehicles", "bks_distance", "feasible", "seconds", "routes"}


def test_pdptw_bench_prints_rows_and_writes_checkable_json(shared_data: Path, tmp_path: Path) -> None:
    """One Li & Lim instance: a printed row, a summary, JSON rows whose routes pass the checker."""
    folder = shared_data / "pdptw" / "lilim"
    out = tmp_path / "rows.json"
    args = [
        "bench",
        "dispatch",
        "--suite",
        "pdptw",
        "--instances",
        str(folder),
        "--bks",
        str(folder / "bks.json"),
    ]
    res = runner.invoke(app, [*args, "--time-limit", "0.2", "--limit", "1", "--json", str(out)])
    assert res.exit_code == 0, res.output
    assert res.output.startswith("lc101    robopost")
    assert '"bks_vehicles_reached"' in res.output
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
    args = [
        "bench",
        "dispatch",
        "--suite",
        "vrptw",
        "--instances",
        str(folder),
        "--bks",
        str(folder / "bks.json"),
    ]
    res = runner.invoke(app, [*args, "--time-limit", "0.2", "--limit", "1"])
    assert res.exit_code == 0, res.output
    assert res.output.startswith("C101     robopost")
    assert "feasible" in res.output.splitlines()[0]


def test_a_broken_instance_exits_2_with_one_line(shared_data: Path, tmp_path: Path) -> None:
    """A malformed instance file stops the bench with exit code 2 and a line naming the file."""
    folder = shared_data / "vrptw" / "solomon"
    shutil.copy(folder / "bks.json", tmp_path / "bks.json")
    (tmp_path / "C101.txt").write_text("C101\nVEHICLE\n25 200\n0 40 50 0 0 1236\n")
    args = [
        "bench",
        "dispatch",
        "--suite",
        "vrptw",
        "--instances",
        str(tmp_path),
        "--bks",
        str(tmp_path / "bks.json"),
    ]
    res = runner.invoke(app, args)
    assert res.exit_code == 2
    assert f"robopost: {tmp_path / 'C101.txt'}:4: expected 7 numbers, found 6" in res.output


def test_an_empty_folder_exits_2(tmp_path: Path) -> None:
    """A folder without instances is a clear error."""
    args = [
        "bench",
        "dispatch",
        "--suite",
        "pdptw",
        "--instances",
        str(tmp_path),
        "--bks",
        str(tmp_path / "b.json"),
    ]
    res = runner.invoke(app, args)
    assert res.exit_code == 2
    assert "no *.txt instance files" in res.output
