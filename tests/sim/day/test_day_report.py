"""The day report files, the ``robopost sim`` command line and the paired comparison."""

from __future__ import annotations

import csv
import json
import math
import struct
from collections.abc import Callable
from pathlib import Path

import pytest
from scipy import stats
from typer.testing import CliRunner

from launch.sim_cli import sim_app
from sim.day.compare import COMPARED, compare, paired_interval
from sim.day.engine import simulate_day
from sim.day.report import write_report
from sim.day.scenario import Scenario

REQUIRED = (
    "parcels",
    "delivered_in_window_pct",
    "pickup_rate_pct",
    "student_wait_p95_s",
    "orders_on_time_pct",
    "robot_utilisation_pct",
    "cart_km",
    "lift_rides",
)


def png_size(path: Path) -> tuple[int, int]:
    """Width and height from a PNG's IHDR chunk."""
    data = path.read_bytes()[:24]
    assert data[:8] == b"\x89PNG\r\n\x1a\n", f"{path.name} is not a PNG"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def test_the_report_has_every_file(small: Callable[..., Scenario], tmp_path: Path) -> None:
    """kpis.json with the required keys, pickups.csv with its columns, three real plots, report.md."""
    figures = write_report(simulate_day(small()), tmp_path / "out", wall_s=1.5)
    out = tmp_path / "out"
    kpis = json.loads((out / "kpis.json").read_text())
    assert kpis == figures
    assert set(REQUIRED) <= set(kpis)
    with (out / "pickups.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == ["parcel", "stop", "window", "preferred_s", "picked_up_s"]
    assert any(r["picked_up_s"] for r in rows) and any(not r["picked_up_s"] for r in rows)
    assert all(float(r["preferred_s"]) > 0 for r in rows)
    for name in ("timeline.png", "utilisation.png", "map.png"):
        width, height = png_size(out / name)
        assert width >= 800 and height >= 300, name
        assert (out / name).stat().st_size > 15_000, f"{name} looks empty"
    report = (out / "report.md").read_text()
    assert "delivered_in_window_pct" in report and "![fleet utilisation](utilisation.png)" in report


def test_sim_day_writes_the_report(write_small: Callable[..., Path], tmp_path: Path) -> None:
    """``robopost sim day --scenario FILE --seed N --report DIR`` prints a summary and writes the files."""
    scenario = write_small(tmp_path / "day.yaml", parcels=80, requests=10)
    result = CliRunner().invoke(
        sim_app,
        ["day", "--scenario", str(scenario), "--seed", "3", "--report", str(tmp_path / "r"), "--quiet"],
    )
    assert result.exit_code == 0, result.output
    assert "seed 3" in result.output
    assert json.loads((tmp_path / "r" / "kpis.json").read_text())["parcels"] == 80


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"carts": "three"}, "carts"),
        ({"colour": "red"}, "colour"),
        ({"campus": "nowhere.yaml"}, "no such map file"),
        (
            {"faults": [{"kind": "lift_out_of_service", "lift": "ADM-L1", "at": "25:99", "minutes": 5}]},
            "faults.0",
        ),
        ({"faults": [{"kind": "meteor", "at": "10:00"}]}, "faults.0"),
        (
            {"faults": [{"kind": "robot_breakdown", "robot": "cart_9", "at": "10:00"}]},
            "unknown robot 'cart_9'",
        ),
        (
            {"faults": [{"kind": "lift_out_of_service", "lift": "X", "at": "10:00", "minutes": 5}]},
            "unknown lift",
        ),
        ({"windows": [{"id": "w1", "start": "09:00", "end": "08:00"}]}, "ends before it starts"),
    ],
)
def test_a_bad_scenario_is_one_clear_line(
    write_small: Callable[..., Path], tmp_path: Path, changes: dict[str, object], expected: str
) -> None:
    """A bad scenario file exits with code 2 and one line naming the file and what is wrong."""
    scenario = write_small(tmp_path / "bad.yaml", **changes)
    result = CliRunner().invoke(
        sim_app, ["day", "--scenario", str(scenario), "--report", str(tmp_path / "r")]
    )
    assert result.exit_code == 2
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and expected in lines[0] and "bad.yaml" in lines[0], result.output
    assert not (tmp_path / "r").exists()


def test_a_scenario_that_is_not_yaml_is_refused(tmp_path: Path) -> None:
    """Broken YAML and a missing file are one line each, exit code 2."""
    broken = tmp_path / "broken.yaml"
    broken.write_text("carts: [1, 2\n")
    for path in (broken, tmp_path / "missing.yaml"):
        result = CliRunner().invoke(
            sim_app, ["day", "--scenario", str(path), "--report", str(tmp_path / "r")]
        )
        assert result.exit_code == 2 and path.name in result.output


def test_the_paired_interval_is_the_t_interval() -> None:
    """B − A per pair, mean ± t(0.975, n−1)·sd/√n."""
    a, b = [1.0, 2.0, 3.0, 4.0], [2.0, 2.5, 4.5, 6.0]
    d = paired_interval(a, b)
    diffs = [1.0, 0.5, 1.5, 2.0]
    half = stats.t.ppf(0.975, 3) * stats.tstd(diffs) / math.sqrt(4)
    assert d.diff == pytest.approx(1.25)
    assert d.low == pytest.approx(1.25 - half, abs=1e-3) and d.high == pytest.approx(1.25 + half, abs=1e-3)
    assert paired_interval([1.0], [2.0]).low is None
    with pytest.raises(ValueError, match="equally long"):
        paired_interval([1.0], [])


def test_compare_runs_both_on_the_same_seeds(
    small: Callable[..., Scenario], write_small: Callable[..., Path], tmp_path: Path
) -> None:
    """One row per compared KPI; more carts change the day; the CLI prints the table and writes JSON."""
    a = write_small(tmp_path / "a.yaml", parcels=60, requests=6, carts=1)
    b = write_small(tmp_path / "b.yaml", parcels=60, requests=6, carts=2)
    out = tmp_path / "cmp.json"
    result = CliRunner().invoke(
        sim_app, ["compare", str(a), str(b), "--seeds", "2", "--json", str(out), "--quiet"]
    )
    assert result.exit_code == 0, result.output
    assert "delivered_in_window_pct" in result.output and "95 % CI" in result.output
    payload = json.loads(out.read_text())
    assert payload["seeds"] == 2
    assert [row["kpi"] for row in payload["kpis"]] == list(COMPARED)
    for row in payload["kpis"]:
        assert set(row) == {"kpi", "a", "b", "diff", "ci95"} and len(row["ci95"]) == 2
    same = compare(small(parcels=40, requests=4), small(parcels=40, requests=4), [0])
    assert all(row.diff == 0 for row in same)
