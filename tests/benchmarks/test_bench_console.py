"""``robopost bench console``: the console map benchmark runs end to end on a small fleet."""

from __future__ import annotations

import json
import math
import random
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks.console.movers import RoadGraph, Walker
from maps.io import load_map

REPO = Path(__file__).resolve().parents[2]

KEYS = {
    "robots",
    "seconds",
    "frames",
    "frame_p50_ms",
    "frame_p95_ms",
    "frame_max_ms",
    "fps",
    "robots_drawn",
    "stream_events_per_s",
}


def test_walkers_drive_along_outdoor_roads() -> None:
    """A walker on the sample campus is always on a road between two outdoor nodes it may drive from
    one to the other, and covers speed × time along it (no jumps)."""
    graph = RoadGraph.outdoor(load_map(REPO / "maps" / "campuses" / "neijiang.yaml"))
    walker = Walker(graph, random.Random(7), speed=2.0)
    x0, y0, _ = walker.pose()
    for _ in range(500):
        walker.advance(0.25)
        assert walker.b in graph.neighbours[walker.a]
        x, y, theta = walker.pose()
        (ax, ay), (bx, by) = graph.xy[walker.a], graph.xy[walker.b]
        assert math.dist((ax, ay), (x, y)) + math.dist((x, y), (bx, by)) == pytest.approx(
            math.dist((ax, ay), (bx, by)), abs=1e-6
        )
        assert theta == pytest.approx(math.atan2(by - ay, bx - ax))
        assert math.dist((x0, y0), (x, y)) <= 0.5 + 1e-6  # straight-line distance ≤ path driven
        x0, y0 = x, y


@pytest.mark.integration
def test_bench_console_runs_small(tmp_path: Path) -> None:
    """20 moving robots for 2 s through the command line (own Mosquitto, the app, Chromium): the JSON
    has the keys, frames were measured, every robot is drawn and fleet.robot events arrived."""
    out = tmp_path / "bench.json"
    args = ["bench", "console", "--robots", "20", "--seconds", "2", "--warmup", "0", "--json", str(out)]
    proc = subprocess.run(
        [sys.executable, "-c", "from launch.cli import main; main()", *args],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(out.read_text())
    assert set(result) >= KEYS
    assert result["robots"] == 20 and result["robots_drawn"] == 20
    assert result["frames"] > 0 and result["fps"] > 0
    assert 0 < result["frame_p50_ms"] <= result["frame_p95_ms"] <= result["frame_max_ms"]
    assert result["stream_events_per_s"] > 0
    assert result["page_errors"] == []
    assert "robots on the map" in proc.stdout
