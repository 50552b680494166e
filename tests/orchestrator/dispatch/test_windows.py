"""Delivery-window recommendation: exact against brute force, rules kept, capacity, determinism, errors."""

from __future__ import annotations

import dataclasses
import random

import numpy as np
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from orchestrator.dispatch.campus import Window
from orchestrator.dispatch.windows import (
    HOUR,
    MINUTE,
    WindowRules,
    config_snippet,
    evaluate,
    format_time_of_day,
    parse_span,
    parse_time_of_day,
    parse_windows,
    recommend,
)
from sim.campus_day import WINDOWS as CAMPUS_DAY_WINDOWS


def brute_force(times: list[int], weights: list[int], rules: WindowRules) -> float:
    """Best served weight over every plan of windows with integer bounds (on the rules' step)."""
    step = int(rules.step_s or 1)
    lo, hi = int(rules.service_start_s), int(rules.service_end_s)
    lengths = range(int(rules.min_length_s), int(rules.max_length_s) + 1, step)
    spans = [(s, s + n) for s in range(lo, hi + 1, step) for n in lengths if s + n <= hi]

    def served(s: int, e: int) -> float:
        inside = sum(w for t, w in zip(times, weights, strict=True) if s <= t <= e)
        return inside if rules.capacity is None else min(inside, rules.capacity)

    value = {span: served(*span) for span in spans}
    gap = int(rules.min_gap_s)

    def best(left: int, earliest: int) -> float:
        if left == 0:
            return 0.0
        options = [value[(s, e)] + best(left - 1, e + gap) for s, e in spans if s >= earliest]
        return max(options, default=-np.inf)

    return best(rules.count, lo)


@st.composite
def instances(draw: st.DrawFn) -> tuple[list[int], list[int], WindowRules]:
    """Small integer instances: up to 3 windows in up to ~40 s of service, up to 10 weighted points."""
    count = draw(st.integers(1, 3))
    min_length = draw(st.integers(1, 4))
    max_length = min_length + draw(st.integers(0, 3))
    gap = draw(st.integers(1, 4))
    start = draw(st.integers(0, 5))
    end = start + count * min_length + (count - 1) * gap + draw(st.integers(0, 12))
    capacity = draw(st.sampled_from([None, 1, 2, 3, 5]))
    points = draw(st.lists(st.tuples(st.integers(0, end + 3), st.integers(0, 3)), max_size=10))
    rules = WindowRules(
        count=count,
        min_length_s=min_length,
        max_length_s=max_length,
        min_gap_s=gap,
        service_start_s=start,
        service_end_s=end,
        capacity=capacity,
        step_s=1,
    )
    return [t for t, _ in points], [w for _, w in points], rules


@settings(max_examples=300, deadline=None, derandomize=True)
@given(instances(), st.sampled_from([1, None]))
def test_optimal_like_brute_force_and_within_the_rules(
    instance: tuple[list[int], list[int], WindowRules], step: int | None
) -> None:
    """On the step's grid and with any bounds (step None) the served weight equals the brute-force
    optimum over integer windows, and the proposed windows keep every rule."""
    times, weights, rules = instance
    rules = dataclasses.replace(rules, step_s=step)
    rec = recommend(times, rules, weights=weights)
    assert rec.served == pytest.approx(brute_force(times, weights, rules))
    assert rules.violations([c.window for c in rec.windows]) == []
    assert [c.id for c in rec.windows] == [f"w{i}" for i in range(1, rules.count + 1)]
    assert rec.served == pytest.approx(sum(c.served for c in rec.windows))
    assert rec.total == pytest.approx(sum(weights))


def test_ends_at_demand_times_are_not_enough_when_gaps_bind() -> None:
    """Window 2 can only serve the pickup at 190 by ending at 240 (not a demand time), the latest end
    that still lets window 3 start at 360: all five pickups are served only that way."""
    rules = WindowRules(3, 60, 60, 120, 0, 1000, step_s=None)
    rec = recommend([0, 60, 190, 360, 420], rules)
    assert rec.served == 5
    assert [(c.start_s, c.end_s) for c in rec.windows] == [(0, 60), (180, 240), (360, 420)]


def test_windows_follow_the_demand_on_the_minute_grid() -> None:
    """Four clusters of pickups get four windows around them, on whole 5 minutes, inside the hours."""
    rng = np.random.default_rng(4)
    centres = [8 * HOUR, 12.5 * HOUR, 17 * HOUR, 21 * HOUR]
    times = np.concatenate([rng.normal(c, 15 * MINUTE, 300) for c in centres])
    rec = recommend(times)
    assert len(rec.windows) == 4
    for c, centre in zip(rec.windows, centres, strict=True):
        assert c.start_s < centre < c.end_s
        assert c.start_s % 300 == 0 and c.end_s % 300 == 0
    assert rec.share > 0.9
    assert WindowRules().violations([c.window for c in rec.windows]) == []


def test_capacity_changes_the_choice() -> None:
    """Unlimited, a crowd of 200 at 12:00 plus 10 at 20:00 beats 100 at 10:30 plus 100 at 13:30
    (the crowd's window clashes with both); with 100 parcels a window the two hundreds win."""
    times = [12 * HOUR] * 200 + [20 * HOUR] * 10 + [10.5 * HOUR] * 100 + [13.5 * HOUR] * 100
    rules = WindowRules(count=2, min_length_s=HOUR, max_length_s=HOUR)
    free = recommend(times, rules)
    assert free.served == 210
    assert any(c.start_s <= 12 * HOUR <= c.end_s for c in free.windows)
    capped = recommend(times, WindowRules(count=2, min_length_s=HOUR, max_length_s=HOUR, capacity=100))
    assert capped.served == 200
    assert [c.demand for c in capped.windows] == [100, 100]
    assert not any(c.start_s <= 12 * HOUR <= c.end_s for c in capped.windows)


def test_served_is_capped_per_window() -> None:
    """A window's demand beyond the capacity is not served."""
    rec = recommend([17 * HOUR] * 80, WindowRules(count=1, capacity=50))
    (window,) = rec.windows
    assert (window.demand, window.served, rec.served, rec.share) == (80, 50, 50, 50 / 80)


def test_a_full_window_sits_at_the_crowd() -> None:
    """When several places fill a window to its capacity, it goes where the most students are."""
    times = [12 * HOUR] * 100 + [17 * HOUR] * 300
    (window,) = recommend(times, WindowRules(count=1, capacity=50)).windows
    assert window.start_s <= 17 * HOUR <= window.end_s
    assert (window.demand, window.served) == (300, 50)


def test_same_demand_in_any_order_gives_the_same_windows() -> None:
    """Deterministic: shuffled input, repeated calls, ties (flat demand) always give one answer."""
    rng = random.Random(2)
    times = [rng.uniform(7 * HOUR, 22 * HOUR) for _ in range(2000)] + [float(h * HOUR) for h in range(7, 23)]
    first = recommend(times)
    shuffled = times[:]
    rng.shuffle(shuffled)
    assert recommend(shuffled) == first
    flat = [float(t) for t in range(int(7 * HOUR), int(22.5 * HOUR), 60)]
    assert recommend(flat) == recommend(list(reversed(flat)))


def test_windows_are_no_longer_than_their_demand_needs() -> None:
    """A lone pickup gets a minimum-length window centred on it; a spread one the span it needs."""
    (lone,) = recommend([12 * HOUR + 10 * MINUTE], WindowRules(count=1)).windows
    assert (lone.start_s, lone.end_s) == (11.5 * HOUR + 10 * MINUTE, 12.5 * HOUR + 10 * MINUTE)
    spread = [12 * HOUR, 13 * HOUR + 15 * MINUTE]
    (wide,) = recommend(spread, WindowRules(count=1)).windows
    assert (wide.start_s, wide.end_s) == (12 * HOUR, 13 * HOUR + 15 * MINUTE)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"service_start_s": 7 * HOUR, "service_end_s": 12 * HOUR}, "need 10 h, but the service hours"),
        ({"min_length_s": 100 * MINUTE}, "0 < min"),
        ({"min_gap_s": 0}, "gap between windows must be > 0"),
        ({"count": 0}, "count must be a whole number"),
        ({"capacity": 0}, "capacity must be > 0"),
        ({"service_start_s": 20 * HOUR, "service_end_s": 8 * HOUR}, "service hours 20:00–08:00"),
        ({"min_length_s": 62 * MINUTE}, "min_length_s = 3720 s is not a multiple of the step"),
        ({"step_s": -1.0}, "step must be > 0"),
    ],
)
def test_rules_that_cannot_hold_are_refused(kwargs: dict[str, float], message: str) -> None:
    """Contradicting or unfittable rules raise ValueError saying what is wrong."""
    with pytest.raises(ValueError, match=message):
        WindowRules(**kwargs)  # type: ignore[arg-type]


def test_just_fitting_rules_are_accepted() -> None:
    """4 × 60 min + 3 × 2 h = 10 h fit exactly into 08:00–18:00: the windows are forced."""
    rec = recommend([9 * HOUR], WindowRules(service_start_s=8 * HOUR, service_end_s=18 * HOUR))
    assert [c.label() for c in rec.windows] == ["08:00–09:00", "11:00–12:00", "14:00–15:00", "17:00–18:00"]


def test_bad_demand_is_refused() -> None:
    """Times outside the day or not finite, negative weights and misaligned lists are errors."""
    with pytest.raises(ValueError, match="demand time #1"):
        recommend([100.0, float("nan")])
    with pytest.raises(ValueError, match="demand time #0"):
        recommend([-5.0])
    with pytest.raises(ValueError, match="demand weight #0"):
        recommend([100.0], weights=[-1.0])
    with pytest.raises(ValueError, match="2 weights for 1 demand times"):
        recommend([100.0], weights=[1.0, 1.0])
    with pytest.raises(ValueError, match="1 stops for 2 demand times"):
        recommend([100.0, 200.0], stops=["a"])


def test_no_demand_still_gives_windows() -> None:
    """Without pickups the windows are placed (feasibly) and serve nothing; shares are 0."""
    rec = recommend([], current=CAMPUS_DAY_WINDOWS)
    assert len(rec.windows) == 4 and rec.served == 0 and rec.share == 0 and rec.current_share == 0


def test_current_windows_are_compared() -> None:
    """The campus day's windows are evaluated on the same demand; the recommendation never serves less,
    and here more (the peak is at 16:00, before the current 17:00 window)."""
    rng = np.random.default_rng(1)
    times = np.concatenate([rng.normal(16 * HOUR, 20 * MINUTE, 500), rng.uniform(7 * HOUR, 22 * HOUR, 500)])
    rec = recommend(times, current=CAMPUS_DAY_WINDOWS)
    assert [c.id for c in rec.current] == ["w1", "w2", "w3", "w4"]
    assert rec.current_served == sum(c.served for c in rec.current)
    expected = sum(int(((times >= w.start_s) & (times <= w.end_s)).sum()) for w in CAMPUS_DAY_WINDOWS)
    assert rec.current_served == expected
    assert rec.served > rec.current_served
    assert rec.current_violations == ()  # the campus day's windows keep the default rules


def test_current_windows_that_break_the_rules_are_named() -> None:
    """Current windows too close together or too long are reported, and overlapping ones refused."""
    current = [Window("a", 8 * HOUR, 9 * HOUR), Window("b", 10 * HOUR, 12 * HOUR)]
    rec = recommend([9 * HOUR], WindowRules(count=2), current=current)
    assert any("b lasts 2 h" in p for p in rec.current_violations)
    assert any("a and b are 1 h apart" in p for p in rec.current_violations)
    with pytest.raises(ValueError, match="windows a and b overlap"):
        evaluate([Window("a", 8 * HOUR, 9 * HOUR), Window("b", 9 * HOUR, 10 * HOUR)], [1.0])


def test_demand_outside_the_hours_counts_in_the_total() -> None:
    """Pickups outside the service hours cannot be served but lower the share."""
    rec = recommend([6 * HOUR, 23 * HOUR, 12 * HOUR, 12 * HOUR])
    assert (rec.total, rec.outside_hours, rec.served, rec.share) == (4, 2, 2, 0.5)


def test_per_stop_demand_and_weights() -> None:
    """Weights count instead of rows; each window tells its demand per stop."""
    rec = recommend(
        [8 * HOUR, 8 * HOUR, 17 * HOUR],
        WindowRules(count=2),
        weights=[2.0, 1.5, 4.0],
        stops=["dorm_a", "dorm_b", "dorm_a"],
    )
    assert [dict(c.by_stop) for c in rec.windows] == [{"dorm_a": 2.0, "dorm_b": 1.5}, {"dorm_a": 4.0}]
    assert rec.served == 7.5


def test_snippet_has_the_scenario_shape() -> None:
    """The YAML snippet is a scenario's ``windows:`` list: ``{id, start: "HH:MM", end}``, seconds
    when a bound is not on a whole minute."""
    rec = recommend([8 * HOUR, 12.5 * HOUR + 30.5])
    items = yaml.safe_load(config_snippet(rec.windows))["windows"]
    assert items[0] == {"id": "w1", "start": "07:30", "end": "08:30"}
    as_windows = [Window(i["id"], parse_time_of_day(i["start"]), parse_time_of_day(i["end"])) for i in items]
    assert as_windows == [c.window for c in rec.windows]
    odd = yaml.safe_load(config_snippet([Window("x", 100.25, 4000.0), Window("y", 4200, 7200)]))
    assert odd["windows"] == [
        {"id": "x", "start": 100.25, "end": 4000},
        {"id": "y", "start": "01:10", "end": "02:00"},
    ]


def test_times_of_day() -> None:
    """HH:MM parsing and printing, spans and window lists; bad text is refused with the text."""
    assert parse_time_of_day("07:30") == 27000 and parse_time_of_day("24:00") == 86400
    assert parse_time_of_day("7:05:09") == 7 * 3600 + 5 * 60 + 9
    assert format_time_of_day(27000) == "07:30" and format_time_of_day(27009.5) == "07:30:09"
    assert parse_span("07:00–22:30") == (25200, 81000)
    assert parse_windows("07:30-08:30, 12:00-13:30") == (
        Window("w1", 27000, 30600),
        Window("w2", 43200, 48600),
    )
    for bad in ("7", "25:00", "07:60", "x:00"):
        with pytest.raises(ValueError, match="not a time of day"):
            parse_time_of_day(bad)
    with pytest.raises(ValueError, match="end is not after the start"):
        parse_span("09:00-08:00")
    with pytest.raises(ValueError, match="no windows given"):
        parse_windows(" , ")
