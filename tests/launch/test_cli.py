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


def test_acceptance_on_the_real_open_rmf_hotel(shared_data: Path) -> None:
    """hotel.building.yaml: 3 floors, 2 lifts; lobby → L3_room1 indoors rides a lift from L1 to L3."""
    hotel = shared_data / "maps" / "rmf" / "hotel.building.yaml"
    info = json.loads(runner.invoke(app, ["map", "info", str(hotel), "--json"]).stdout)
    assert len(info["floors"]) == 3 and len(info["lifts"]) == 2
    res = runner.invoke(
        app, ["map", "route", str(hotel), "lobby", "L3_room1", "--profile", "indoor", "--json"]
    )
    assert res.exit_code == 0, res.output
    route = json.loads(res.stdout)
    assert route["floors"] == ["L1", "L3"] and len(route["lifts"]) == 1


def test_acceptance_on_the_real_osm_extract(shared_data: Path, tmp_path: Path) -> None:
    """uw_campus.osm: info reports the main connected component; import writes our format."""
    osm = shared_data / "maps" / "osm" / "uw_campus.osm"
    info = json.loads(runner.invoke(app, ["map", "info", str(osm), "--json"]).stdout)
    assert info["main_component"]["share"] > 0.95 and info["components"] > 1
    res = runner.invoke(app, ["map", "import", "osm", str(osm), "-o", str(tmp_path / "uw.yaml")])
    assert res.exit_code == 0, res.output
    again = json.loads(runner.invoke(app, ["map", "info", str(tmp_path / "uw.yaml"), "--json"]).stdout)
    assert again["nodes"] == info["nodes"] and again["edges"] == info["edges"]


def test_broken_rmf_file_through_the_cli(shared_data: Path, tmp_path: Path) -> None:
    """A lane to a missing vertex in a building.yaml: exit 2, one line naming file and lane."""
    text = (shared_data / "maps" / "rmf" / "office.building.yaml").read_text(encoding="utf-8")
    start = text.index("lanes:")
    first_lane = text.index("- [", start)
    end = text.index(",", first_lane)
    broken = text[:first_lane] + "- [9999" + text[end:]
    path = tmp_path / "broken.building.yaml"
    path.write_text(broken, encoding="utf-8")
    res = runner.invoke(app, ["map", "info", str(path)])
    assert res.exit_code == 2
    line = res.stderr.strip()
    assert "\n" not in line and "broken.building.yaml" in line and "lanes[0]" in line and "9999" in line
