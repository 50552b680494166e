"""The campus-day benchmark on a small day: every figure is there and the final plan breaks no rule."""

from __future__ import annotations

from itertools import count

import campus_builders as cb
from typer.testing import CliRunner

from benchmarks.dispatch.campus import format_campus, run_campus
from launch.cli import app


def test_a_small_campus_day_is_planned_and_served_online() -> None:
    ticks = count()
    result = run_campus(
        cb.site(), seed=3, parcels=200, requests=20, iterations=100, clock=lambda: next(ticks) / 1000
    )
    assert result["planned_ok"] and result["violations"] == 0
    assert 0.5 <= result["parcels_on_time"] <= 1.0
    assert result["parcels_on_time"] >= result["first_window"]
    assert result["unplanned_parcels"] == round((1 - result["parcels_on_time"]) * 200)
    assert result["requests_accepted"] + sum(result["requests_refused"].values()) == 20
    assert result["cart_km"] > 0 and set(result["utilisation"]) == {"cart", "indoor"}
    assert "plan rule violations: 0" in format_campus(result)


def test_the_cli_runs_the_online_suite() -> None:
    out = CliRunner().invoke(app, ["bench", "dispatch", "--suite", "online", "--seed", "2"])
    assert out.exit_code == 0, out.output
    assert "p95" in out.output and "500 open tasks" in out.output
