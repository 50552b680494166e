"""``robopost bench localization``: the JSON of the localization benchmark, one object per regime."""

import json
from pathlib import Path

from typer.testing import CliRunner

from launch.cli import app

REGIME_KEYS = {"rmse_m", "p95_m", "max_m", "smoother_rmse_m", "naive_rmse_m"}
TOP_KEYS = {"max_switch_jump_m", "nees_in_bounds_pct", "update_us_mean", "update_us_p99"}


def test_bench_localization_prints_and_writes_the_figures(tmp_path: Path) -> None:
    """One seeded run: the JSON printed and written has every regime's error figures and the top-level
    switch jump, NEES and cost figures; the online filter beats the naive baseline indoors."""
    out = tmp_path / "loc.json"
    res = CliRunner().invoke(app, ["bench", "localization", "--seed", "3", "--json", str(out)])
    assert res.exit_code == 0, res.output
    figures = json.loads(out.read_text())
    assert json.loads(res.stdout) == figures
    assert figures["seed"] == 3
    for regime in ("open_sky", "entrance", "indoor", "lift"):
        assert set(figures[regime]) >= REGIME_KEYS
        assert figures[regime]["smoother_rmse_m"] > 0.0 and figures[regime]["rmse_m"] < 0.05
    assert set(figures) >= TOP_KEYS
    assert figures["max_switch_jump_m"] <= 0.10
    assert 0.0 <= figures["nees_in_bounds_pct"] <= 100.0
    assert figures["indoor"]["naive_rmse_m"] > 5 * figures["indoor"]["rmse_m"]
