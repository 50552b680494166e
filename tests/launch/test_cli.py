"""The robopost CLI: map info/route/import on our files, and one-line errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from launch.cli import app
from maps.io import save_site
from maps.model import Site

runner = CliRunner()


def test_info_and_route_json(small_site: Site, tmp_path: Path) -> None:
    """info --json and route --json give the documented keys."""
    path, _ = save_site(small_site, tmp_path / "small.yaml")
    res = runner.invoke(app, ["map", "info", str(path), "--json"])
    assert res.exit_code == 0, res.output
    info = json.loads(res.stdout)
    assert {"floors", "lifts", "doors", "nodes", "edges", "places", "problems"} <= set(info)
    res = runner.invoke(
        app, ["map", "route", str(path), "mailroom", "office", "--profile", "indoor", "--json"]
    )
    assert res.exit_code == 0, res.output
    route = json.loads(res.stdout)
    assert {"length_m", "time_s", "floors", "lifts", "path"} <= set(route)
    assert route["floors"] == ["H1", "H3"] and route["lifts"] == ["LA"]


def test_human_output(small_site: Site, tmp_path: Path) -> None:
    """Without --json the commands print a readable summary."""
    path, _ = save_site(small_site, tmp_path / "small.yaml")
    res = runner.invoke(app, ["map", "route", str(path), "station", "office", "--profile", "robot"])
    assert res.exit_code == 0 and "outdoor → H1 → H3" in res.stdout
    res = runner.invoke(app, ["map", "info", str(path)])
    assert res.exit_code == 0 and "lift LA: H1 H2 H3" in res.stdout


def test_no_route_and_broken_file_give_one_line(small_site: Site, tmp_path: Path) -> None:
    """No route: exit 1 with one line; a broken file: exit 2 with one line naming file and element."""
    path, _ = save_site(small_site, tmp_path / "small.yaml")
    res = runner.invoke(app, ["map", "route", str(path), "station", "office", "--profile", "cart"])
    assert res.exit_code == 1
    assert res.stderr.strip().count("\n") == 0 and "cannot be used by profile 'cart'" in res.stderr
    path.write_text(path.read_text().replace("kind: office", "kind: spaceship"), encoding="utf-8")
    res = runner.invoke(app, ["map", "info", str(path)])
    assert res.exit_code == 2
    assert (
        res.stderr.strip().count("\n") == 0
        and "small.yaml: places.office.kind: Input should be" in res.stderr
    )


def test_console_script_is_installed(small_site: Site, tmp_path: Path) -> None:
    """The `robopost` entry point runs as a real process."""
    path, _ = save_site(small_site, tmp_path / "small.yaml")
    exe = Path(sys.executable).with_name("robopost")
    out = subprocess.run(
        [str(exe), "map", "info", str(path), "--json"], capture_output=True, text=True, check=True
    )
    assert json.loads(out.stdout)["nodes"] == len(small_site.nodes)
