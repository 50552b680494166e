"""Other window times (what-if): the day is drawn for them, and bad ones are refused."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from maps.io import load_map
from orchestrator.dispatch.campus import Window
from sim.campus_day import campus_day
from sim.day.engine import simulate_day
from sim.day.kpis import kpis
from sim.day.scenario import Scenario


def test_a_day_with_three_windows_uses_only_them(small: Callable[..., Scenario]) -> None:
    """Three windows of the scenario: every parcel's windows are among them, pickups happen in them."""
    windows = [
        {"id": "a", "start": "12:00", "end": "13:00"},
        {"id": "b", "start": "17:30", "end": "19:00"},
        {"id": "c", "start": "20:30", "end": "21:30"},
    ]
    result = simulate_day(small(windows=windows, parcels=80, requests=5))
    assert {w.id for w in result.day.snapshot.windows} == {"a", "b", "c"}
    assert all(set(p.windows) <= {"a", "b", "c"} for p in result.day.snapshot.parcels)
    figures = kpis(result)
    assert set(figures["pickup_rate_by_window"]) == {"a", "b", "c"}
    assert {w for _, w, _ in result.pickups.values()} <= {"a", "b", "c"}


@pytest.mark.parametrize(
    ("windows", "message"),
    [
        ((Window("a", 100.0, 200.0), Window("b", 150.0, 300.0)), "overlap"),
        ((Window("a", 36000.0, 40000.0),), "afternoon van"),
        ((), "at least one window"),
    ],
)
def test_bad_window_times_are_refused(
    small: Callable[..., Scenario], windows: tuple[Window, ...], message: str
) -> None:
    """Overlapping windows, none after the afternoon van, or none at all: ``ValueError`` saying so."""
    site = load_map(small().campus)
    with pytest.raises(ValueError, match=message):
        campus_day(site, parcels=5, window_times=windows)
