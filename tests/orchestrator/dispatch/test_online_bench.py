"""The online-insertion benchmark runs on the sample campus, fills valid plans and reports its figures."""

from __future__ import annotations

import random
from collections.abc import Callable

import pytest

from benchmarks.dispatch import online
from maps.io import load_map
from maps.model import Site
from orchestrator.dispatch.campus import LegKind, RobotKind, Snapshot
from orchestrator.dispatch.validate import validate


@pytest.fixture(scope="module")
def campus() -> Site:
    """The sample campus (maps/campuses/neijiang.yaml)."""
    return load_map(online.SAMPLE_CAMPUS)


def _ticking(step: float) -> Callable[[], float]:
    """A fake clock advancing ``step`` seconds at every reading."""
    now = [0.0]

    def clock() -> float:
        now[0] += step
        return now[0]

    return clock


def test_run_online_times_every_sample_with_the_given_clock(campus: Site) -> None:
    """With a clock that ticks 1 ms per reading every insertion takes exactly 1 ms; counts add up."""
    result = online.run_online(campus, robots=4, tasks=12, samples=5, seed=3, clock=_ticking(0.001))
    assert (result["robots"], result["open_tasks"], result["samples"]) == (4, 12, 5)
    assert result["accepted"] + result["refused"] == 5
    assert sum(result["refusals"].values()) == result["refused"]
    assert result["p50_ms"] == result["p95_ms"] == result["p99_ms"] == result["max_ms"] == pytest.approx(1.0)
    assert result["legs"] >= 2 * 12


def test_the_filled_plan_is_valid_and_uses_only_capable_robots(campus: Site) -> None:
    """Filling 8 robots with 40 open requests gives a plan the independent validator accepts."""
    rng = random.Random(5)
    tables = online.tables_of(campus)
    snapshot = Snapshot(online.fleet(8, rng), (), (), handoffs=online.HANDOFFS)
    assert {r.kind for r in snapshot.robots} == {RobotKind.ROBOT, RobotKind.INDOOR}
    plan, filled, _ = online.fill(snapshot, tables, 40, rng, online.doors(campus))
    assert len(filled.requests) == 40
    assert validate(plan, filled, tables) == ()
    collects = [leg for leg in plan.all_legs() if leg.kind is LegKind.COLLECT]
    assert sorted(r for leg in collects for r in leg.requests) == sorted(r.id for r in filled.requests)


def test_main_prints_the_percentiles(capsys: pytest.CaptureFixture[str]) -> None:
    """``python -m benchmarks.dispatch.online`` prints robots, open tasks and p50/p95/p99."""
    online.main(["--robots", "3", "--tasks", "6", "--samples", "3"])
    out = capsys.readouterr().out
    assert "3 robots, 6 open tasks" in out
    assert "p50" in out and "p95" in out and "p99" in out


def test_run_online_rejects_an_empty_fleet(campus: Site) -> None:
    """No robots or no samples is a caller mistake, reported as ValueError."""
    with pytest.raises(ValueError, match="robots and samples must be >= 1"):
        online.run_online(campus, robots=0)
