"""Daily delivery windows (投递时段) that serve the most pickups: an exact recommendation.

Students come to a cart stop during a few daily windows (SCENARIO.md: 4 a day, around the students'
timetable; peak pickup about 17:00). Given when students would come (observed pick-up times, or the
simulator's preferred times) this module proposes ``count`` windows that maximise the demand falling
inside a window, under the operator's rules (``WindowRules``)::

    rules = WindowRules(count=4, capacity=300)            # 3 carts × ~50 parcels × 2 trips a window
    rec = recommend(times_s, rules, weights=w, stops=s, current=sim.campus_day.WINDOWS)
    rec.windows[0].start_s, rec.served, rec.share, rec.current_share
    print(config_snippet(rec.windows))                      # YAML: windows: [{id, start, end}, ...]

Units: times are seconds since local midnight (``0 <= t <= 86_400``), like ``Window.start_s`` of
``orchestrator.dispatch.campus`` and the campus day of ``sim.campus_day``. Demand is a weight per
time (1 per pickup unless given). A window ``[start_s, end_s]`` is closed: a pickup at 08:30:00 is in
07:30–08:30. What a window *serves* is its demand capped at ``capacity`` (when given): parcels beyond
what the carts bring in one window gain nothing. ``share`` is served weight over all demand (demand
outside the service hours included, so the hours' cost shows).

The defaults (``WindowRules()``), and why:

=================  =========  ===============================================================
length             60–90 min  the campus day's windows are 60 and 90 min (``sim.campus_day``);
                              under an hour a student in a double class period (2 × 45 min +
                              break) cannot reach the cart, over 90 min the cart and its
                              compartments are tied up while the next batch waits at the station
gap                2 h        between one window's end and the next one's start the carts drive
                              back, unload what was not claimed, reload ~50 parcels each (the
                              pickup point reported ~20 min for 200 unloaded + 30 loaded) and
                              top up their batteries; the campus day's tightest gap is 2.5 h
service hours      07:00–     before the first class and until the dorms close; the campus
                   22:30      day's windows (07:30–08:30 … 21:00–22:00) lie inside
step               5 min      window bounds on multiples of 5 minutes, as windows are announced
                              to students (``step_s=60`` for whole minutes, ``None`` for any time)
capacity           none       set it to carts × parcels per trip × trips per window
=================  =========  ===============================================================

**Exactness.** Sort the demand times ``t``. Take any feasible plan ``(s*_j, e*_j)`` and let ``b_j``
be the last demand time inside window ``j``. Build the *greedy* plan left to right: ``E_1`` = the
service start, ``e_j = max(E_j + min_length, g(b_j))`` (``g`` rounds up to the step; just
``E_j + min_length`` for a window without demand), ``s_j = max(E_j, e_j - max_length)``,
``E_{j+1} = e_j + min_gap`` (all on the step when the rules are). By induction ``E_j <= s*_j`` and
``e_j <= e*_j`` (``e*_j`` is on the step, at least ``E_j + min_length`` and at least ``b_j``), so
the greedy plan is feasible (its last end is no later than ``e*_k`` <= the service end), and
``s_j <= s*_j`` (both ``E_j`` and ``e_j - max_length <= e*_j - max_length`` are at most ``s*_j``)
with ``e_j >= b_j``: each greedy window contains everything the original one did, so it serves at
least as much (greedy windows are ``min_gap > 0`` apart: nothing counts twice). Hence some optimal
plan is greedy, and its ends are among::

    ENDS = { g(t_i) + m·(min_gap + min_length) } ∪ { service_start + min_length + m·(min_gap + min_length) }
           for m = 0 … count-1, kept within [service_start + min_length, service_end]

A dynamic programme over ``ENDS`` (layer ``j``: the best total of ``j`` windows with the ``j``-th
ending exactly at ``e``; the window starts as early as the previous end + gap and ``e - max_length``
allow, which never serves less) therefore finds the optimum. Ends at demand times alone (``m = 0``)
do *not* suffice: when the gaps bind, a window may have to end ``min_gap + min_length`` after the
previous one so that the next one can still reach its demand (``test_windows.py`` has such a case).

**Speed.** With ``N = |ENDS| <= count·(n + 1)`` and ``D = min_gap + min_length``, a predecessor end
``e'`` of ``e`` satisfies ``e' <= e - D``; those with ``e' <= e - max_length - min_gap`` let the
window start at ``e - max_length`` (a prefix maximum), the others start it at ``e' + min_gap``, whose
served weight ``min(C, P(e) - Q(e'))`` splits at a threshold on the non-decreasing ``Q`` into two
index ranges: range-maximum queries, answered for all ``e`` at once level by level of a sparse
table (numpy, ``O(count · N log N)``). 10^5 demand times take milliseconds on a step of minutes
and well under a second without a step (``benchmarks/windows/recommend.py``).

**Ties** are broken deterministically: the programme keeps, among equally good predecessors, the
earliest end, and the earliest final end; then, from the last window to the first, every window
becomes the shortest window (at least ``min_length``) holding the demand the programme gave it,
centred on that demand when it has to be longer, as far as its neighbours allow. A window full to its
capacity first moves, within the same room, to where the most demand is (where an extra trip would
pay). With integer weights (counts) ties are exact; float weights are summed in a fixed order, so the
same input always gives the same windows.

Errors: ``ValueError`` with one sentence for rules that contradict each other or cannot fit into the
service hours, bad demand (not finite, negative weight, outside the day) and overlapping current
windows. Pure: no I/O, no clock.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from itertools import pairwise
from types import MappingProxyType

import numpy as np
from numpy.typing import ArrayLike, NDArray

from orchestrator.dispatch.campus import Window

MINUTE = 60.0
HOUR = 3600.0
DAY_S = 86_400.0
"""Seconds in a day: demand times and window bounds lie in ``[0, DAY_S]``."""

_EPS = 1e-9

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.intp]


# ---- rules -------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class WindowRules:
    """What the operator allows: how many windows, how long, how far apart, when, and how much each serves.

    Seconds throughout; ``capacity`` in demand weight (parcels) per window, ``None`` for unlimited;
    ``step_s`` puts every window bound on a multiple of it (``None``: any second, any fraction).
    Raises ``ValueError`` when the rules contradict each other or ``count`` windows cannot fit.
    """

    count: int = 4
    min_length_s: float = 60 * MINUTE
    max_length_s: float = 90 * MINUTE
    min_gap_s: float = 2 * HOUR
    service_start_s: float = 7 * HOUR
    service_end_s: float = 22.5 * HOUR
    capacity: float | None = None
    step_s: float | None = 5 * MINUTE

    def __post_init__(self) -> None:
        if isinstance(self.count, bool) or not isinstance(self.count, int) or self.count < 1:
            raise ValueError(f"window count must be a whole number >= 1, got {self.count!r}")
        for name in ("min_length_s", "max_length_s", "min_gap_s", "service_start_s", "service_end_s"):
            if not math.isfinite(getattr(self, name)):
                raise ValueError(f"{name} must be a finite number of seconds, got {getattr(self, name)!r}")
        if not 0 < self.min_length_s <= self.max_length_s:
            raise ValueError(
                f"window length must satisfy 0 < min ({_span(self.min_length_s)}) <= max "
                f"({_span(self.max_length_s)})"
            )
        if self.min_gap_s <= 0:
            raise ValueError(
                f"the minimum gap between windows must be > 0 (carts return and reload), "
                f"got {self.min_gap_s!r}"
            )
        if not 0 <= self.service_start_s < self.service_end_s <= DAY_S:
            raise ValueError(
                f"service hours {format_time_of_day(self.service_start_s)}–"
                f"{format_time_of_day(self.service_end_s)} must be a non-empty part of one day (00:00–24:00)"
            )
        if self.capacity is not None and not (math.isfinite(self.capacity) and self.capacity > 0):
            raise ValueError(f"window capacity must be > 0 parcels, got {self.capacity!r}")
        self._check_step()
        self._check_fit()

    def _check_step(self) -> None:
        step = self.step_s
        if step is None:
            return
        if not (math.isfinite(step) and step > 0):
            raise ValueError(f"step must be > 0 seconds, got {step!r}")
        for name in ("min_length_s", "max_length_s", "min_gap_s", "service_start_s", "service_end_s"):
            value = getattr(self, name)
            if abs(value / step - round(value / step)) > _EPS:
                raise ValueError(f"{name} = {value:g} s is not a multiple of the step ({step:g} s)")

    def _check_fit(self) -> None:
        needed = self.count * self.min_length_s + (self.count - 1) * self.min_gap_s
        available = self.service_end_s - self.service_start_s
        if needed > available + _EPS:
            raise ValueError(
                f"{self.count} windows of at least {_span(self.min_length_s)} with gaps of at least "
                f"{_span(self.min_gap_s)} need {_span(needed)}, but the service hours "
                f"{format_time_of_day(self.service_start_s)}–{format_time_of_day(self.service_end_s)} "
                f"give only {_span(available)}"
            )

    def violations(self, windows: Sequence[Window]) -> list[str]:
        """What in ``windows`` (in any order) breaks these rules, one sentence each (``[]``: none)."""
        problems = []
        ordered = sorted(windows, key=lambda w: (w.start_s, w.end_s, w.id))
        if len(ordered) != self.count:
            problems.append(f"{len(ordered)} windows, not {self.count}")
        for w in ordered:
            length = w.end_s - w.start_s
            if not self.min_length_s - _EPS <= length <= self.max_length_s + _EPS:
                problems.append(
                    f"{w.id} lasts {_span(length)}, outside {_span(self.min_length_s)}–"
                    f"{_span(self.max_length_s)}"
                )
            if w.start_s < self.service_start_s - _EPS or w.end_s > self.service_end_s + _EPS:
                problems.append(f"{w.id} is outside the service hours")
        for a, b in pairwise(ordered):
            if b.start_s - a.end_s < self.min_gap_s - _EPS:
                problems.append(
                    f"{a.id} and {b.id} are {_span(b.start_s - a.end_s)} apart, less than the gap"
                )
        return problems


# ---- results -----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CoveredWindow:
    """A window and what falls in it: ``demand`` (weight inside), ``served`` (capped at the capacity),
    ``share`` (served / all demand) and ``by_stop`` (demand inside per stop, when stops were given)."""

    id: str
    start_s: float
    end_s: float
    demand: float
    served: float
    share: float
    by_stop: Mapping[str, float] = field(default_factory=dict)

    @property
    def window(self) -> Window:
        """As the dispatcher's ``Window``."""
        return Window(self.id, self.start_s, self.end_s)

    def label(self) -> str:
        """``07:30–08:30``."""
        return f"{format_time_of_day(self.start_s)}–{format_time_of_day(self.end_s)}"


@dataclass(frozen=True, slots=True)
class Recommendation:
    """The proposed windows (in time order, ids ``w1``…), their served total and share of all demand,
    demand outside the service hours, and the same figures for the current windows when given."""

    windows: tuple[CoveredWindow, ...]
    total: float
    served: float
    share: float
    outside_hours: float
    rules: WindowRules
    current: tuple[CoveredWindow, ...] = ()
    current_served: float | None = None
    current_share: float | None = None
    current_violations: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, object]:
        """A JSON-ready summary (times as seconds and as ``HH:MM``)."""

        def win(c: CoveredWindow) -> dict[str, object]:
            return {
                "id": c.id,
                "start_s": c.start_s,
                "end_s": c.end_s,
                "start": format_time_of_day(c.start_s),
                "end": format_time_of_day(c.end_s),
                "demand": c.demand,
                "served": c.served,
                "share": c.share,
                "by_stop": dict(c.by_stop),
            }

        r = self.rules
        return {
            "windows": [win(c) for c in self.windows],
            "total": self.total,
            "served": self.served,
            "share": self.share,
            "outside_hours": self.outside_hours,
            "current": [win(c) for c in self.current] if self.current else None,
            "current_served": self.current_served,
            "current_share": self.current_share,
            "current_violations": list(self.current_violations),
            "rules": {
                "count": r.count,
                "min_length_s": r.min_length_s,
                "max_length_s": r.max_length_s,
                "min_gap_s": r.min_gap_s,
                "service_start_s": r.service_start_s,
                "service_end_s": r.service_end_s,
                "capacity": r.capacity,
                "step_s": r.step_s,
            },
        }


# ---- demand ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Demand:
    """Demand sorted by time: ``t`` ascending, ``w`` weights, ``cum[i]`` = weight of ``t[:i]``."""

    t: FloatArray
    w: FloatArray
    cum: FloatArray
    stops: tuple[str | None, ...] | None

    @property
    def total(self) -> float:
        return float(self.cum[-1])

    def weight_in(self, start: FloatArray | float, end: FloatArray | float) -> FloatArray:
        """Weight of demand in the closed intervals ``[start, end]``."""
        right = np.searchsorted(self.t, end, side="right")
        left = np.searchsorted(self.t, start, side="left")
        return np.asarray(self.cum[right] - self.cum[left], dtype=np.float64)

    def by_stop(self, start: float, end: float) -> dict[str, float]:
        if self.stops is None:
            return {}
        lo, hi = np.searchsorted(self.t, start, "left"), np.searchsorted(self.t, end, "right")
        out: dict[str, float] = {}
        for i in range(int(lo), int(hi)):
            stop = self.stops[i]
            if stop is not None:
                out[stop] = out.get(stop, 0.0) + float(self.w[i])
        return dict(sorted(out.items()))


def _demand(times: ArrayLike, weights: ArrayLike | None, stops: Sequence[str | None] | None) -> _Demand:
    t = np.asarray(times, dtype=np.float64).reshape(-1)
    bad = np.flatnonzero(~np.isfinite(t) | (t < 0) | (t > DAY_S))
    if bad.size:
        i = int(bad[0])
        raise ValueError(f"demand time #{i} = {t[i]!r} is not within 0..{DAY_S:g} seconds since midnight")
    if weights is None:
        w = np.ones_like(t)
    else:
        w = np.asarray(weights, dtype=np.float64).reshape(-1)
        if w.shape != t.shape:
            raise ValueError(f"{w.size} weights for {t.size} demand times")
        bad = np.flatnonzero(~np.isfinite(w) | (w < 0))
        if bad.size:
            i = int(bad[0])
            raise ValueError(f"demand weight #{i} = {w[i]!r} must be a finite number >= 0")
    if stops is not None and len(stops) != t.size:
        raise ValueError(f"{len(stops)} stops for {t.size} demand times")
    order = np.argsort(t, kind="stable")
    t, w = t[order], w[order]
    cum = np.concatenate(([0.0], np.cumsum(w)))
    sorted_stops = tuple(stops[int(i)] for i in order) if stops is not None else None
    return _Demand(t, w, cum, sorted_stops)


# ---- the programme -----------------------------------------------------------------------------------


def _up(x: FloatArray, step: float | None) -> FloatArray:
    """``x`` rounded up to the step (never below ``x``, whatever the float rounding)."""
    if step is None:
        return x
    y = np.ceil(x / step) * step
    return np.asarray(np.where(y < x, y + step, y), dtype=np.float64)


def _down(x: float, step: float | None) -> float:
    """``x`` rounded down to the step."""
    if step is None:
        return x
    y = math.floor(x / step) * step
    return y - step if y > x else y


def _range_argmax(values: FloatArray, lo: IntArray, hi: IntArray) -> IntArray:
    """For each query ``i`` the leftmost index of the maximum of ``values[lo[i] : hi[i] + 1]``.

    Sparse table built level by level, keeping only the current level: level ``L`` holds, for every
    start, the argmax of the ``2^L`` values from there; a query of length ``n`` reads two overlapping
    blocks of level ``floor(log2 n)``. Requires ``lo <= hi``.
    """
    out = np.empty(lo.shape, dtype=np.intp)
    if lo.size == 0:
        return out
    length = hi - lo + 1
    level = np.floor(np.log2(length)).astype(np.intp)
    level[(1 << (level + 1)) <= length] += 1  # float log2 may round either way
    level[(1 << level) > length] -= 1
    idx = np.arange(values.size, dtype=np.intp)
    val = values.copy()
    for lvl in range(int(level.max()) + 1):
        sel = np.flatnonzero(level == lvl)
        if sel.size:
            a, b = lo[sel], hi[sel] - (1 << lvl) + 1
            out[sel] = np.where(val[a] >= val[b], idx[a], idx[b])
        half = 1 << lvl
        if half >= val.size:
            break
        keep_left = val[:-half] >= val[half:]
        idx = np.where(keep_left, idx[:-half], idx[half:])
        val = np.where(keep_left, val[:-half], val[half:])
    return out


def _candidate_ends(d: _Demand, r: WindowRules) -> FloatArray:
    """``ENDS`` of the module docstring, sorted, unique."""
    first_end = r.service_start_s + r.min_length_s
    base = _up(d.t, r.step_s)
    base = base[(base >= first_end - _EPS) & (base <= r.service_end_s + _EPS)]
    base = np.concatenate((np.unique(base), [first_end]))
    stride = r.min_gap_s + r.min_length_s
    ends = np.concatenate([base + m * stride for m in range(r.count)])
    ends = ends[ends <= r.service_end_s + _EPS]
    return np.asarray(np.unique(np.minimum(ends, r.service_end_s)), dtype=np.float64)


def _served(weight: FloatArray, cap: float | None) -> FloatArray:
    return weight if cap is None else np.minimum(weight, cap)


def _solve(d: _Demand, r: WindowRules) -> list[tuple[float, float]]:
    """An optimal plan (start, end) in time order, left-justified (``_place`` then places it)."""
    ends = _candidate_ends(d, r)
    cap = r.capacity
    n = ends.size
    cum_right = d.cum[np.searchsorted(d.t, ends, side="right")]
    # layer 1: start as early as the service hours and the maximum length allow
    best = _served(d.weight_in(np.maximum(r.service_start_s, ends - r.max_length_s), ends), cap)
    back: list[IntArray] = []
    if r.count > 1:
        stride = r.min_gap_s + r.min_length_s
        hi = np.searchsorted(ends, ends - stride + _EPS, side="right") - 1
        mid = np.searchsorted(ends, ends - r.max_length_s - r.min_gap_s + _EPS, side="right") - 1
        full = _served(d.weight_in(ends - r.max_length_s, ends), cap)  # start at e - max_length
        q = d.cum[np.searchsorted(d.t, ends + r.min_gap_s, side="left")]  # weight before e' + gap
        if cap is None:
            split = mid.copy()
        else:
            split = np.searchsorted(q, cum_right - cap + _EPS, side="right") - 1
            split = np.clip(split, mid, hi)
    for _ in range(1, r.count):
        cand = np.full(n, -np.inf)
        arg = np.full(n, -1, dtype=np.intp)
        # part A: predecessors in [0, mid]; prefix argmax (leftmost)
        pref = np.maximum.accumulate(best)
        first = np.flatnonzero(np.concatenate(([True], best[1:] > pref[:-1])))
        pref_arg = first[np.searchsorted(first, np.arange(n), side="right") - 1]
        has = mid >= 0
        cand[has] = pref[mid[has]] + full[has]
        arg[has] = pref_arg[mid[has]]
        # part B1: predecessors in (mid, split]: the window serves its capacity
        sel = np.flatnonzero(split > mid)
        if sel.size and cap is not None:
            j = _range_argmax(best, mid[sel] + 1, split[sel])
            _take(cand, arg, sel, best[j] + cap, j)
        # part B2: predecessors in (split, hi]: start at e' + gap
        sel = np.flatnonzero(hi > split)
        if sel.size:
            j = _range_argmax(best - q, split[sel] + 1, hi[sel])
            _take(cand, arg, sel, best[j] - q[j] + cum_right[sel], j)
        back.append(arg)
        best = cand
    if not np.isfinite(best).any():  # cannot happen once the rules fit; kept as a guard
        raise ValueError("no plan of windows fits the rules")
    i = int(np.argmax(best))
    chosen = [i]
    for arg in reversed(back):
        i = int(arg[i])
        chosen.append(i)
    chosen.reverse()
    out: list[tuple[float, float]] = []
    earliest = r.service_start_s
    for i in chosen:
        e = float(ends[i])
        s = max(earliest, e - r.max_length_s)
        out.append((s, e))
        earliest = e + r.min_gap_s
    return out


def _take(cand: FloatArray, arg: IntArray, sel: IntArray, value: FloatArray, j: IntArray) -> None:
    """Keep ``value`` (from predecessor ``j``) where it beats the current candidate; ties keep the
    earlier predecessor (the parts are visited in index order, so the current one is earlier)."""
    better = value > cand[sel]
    cand[sel[better]] = value[better]
    arg[sel[better]] = j[better]


def _fullest(d: _Demand, r: WindowRules, room: float, limit: float) -> tuple[float, float]:
    """The window within ``[room, limit]`` holding the most demand (the earliest of equals)."""
    first_end = room + r.min_length_s
    ends = _up(d.t, r.step_s)
    ends = np.concatenate(([first_end], ends[(ends >= first_end) & (ends <= limit)]))
    starts = np.maximum(room, ends - r.max_length_s)
    weight = d.weight_in(starts, ends)
    i = int(np.argmax(weight))  # ends are sorted: the first maximum is the earliest end
    return float(starts[i]), float(ends[i])


def _place(d: _Demand, r: WindowRules, plan: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """Each window of an optimal (left-justified) plan, from the last to the first, as the shortest
    window (>= min length) holding the demand the plan gave it, centred on that demand as far as its
    neighbours allow (the previous one where the plan has it, the next one where it was just put).
    A window full to its capacity first moves, within that room, to where the most demand is.

    The demand stays inside (or, for a full window, at least the capacity) and nothing moves into a
    neighbour's reach, so the plan stays optimal.
    """
    placed: list[tuple[float, float]] = []
    limit = r.service_end_s
    for j in range(len(plan) - 1, -1, -1):
        start, end = plan[j]
        room = plan[j - 1][1] + r.min_gap_s if j else r.service_start_s
        if r.capacity is not None and float(d.weight_in(start, end)) >= r.capacity:
            start, end = _fullest(d, r, room, limit)
        lo, hi = np.searchsorted(d.t, start, "left"), np.searchsorted(d.t, end, "right")
        if hi <= lo:
            s, e = start, start + r.min_length_s
        else:
            a = max(start, _down(float(d.t[lo]), r.step_s))
            b = min(end, float(_up(d.t[hi - 1 : hi], r.step_s)[0]))
            if b - a >= r.min_length_s - _EPS:
                s, e = a, b
            else:
                earliest, latest = max(room, b - r.min_length_s), min(a, limit - r.min_length_s)
                centred = _down((a + b - r.min_length_s) / 2, r.step_s)
                s = min(max(centred, earliest), latest)
                e = s + r.min_length_s
        placed.append((s, e))
        limit = s - r.min_gap_s
    placed.reverse()
    return placed


# ---- public functions --------------------------------------------------------------------------------


def _cover(d: _Demand, windows: Sequence[Window], cap: float | None) -> tuple[CoveredWindow, ...]:
    total = d.total
    out = []
    for w in windows:
        demand = float(d.weight_in(w.start_s, w.end_s))
        served = demand if cap is None else min(demand, cap)
        out.append(
            CoveredWindow(
                w.id,
                w.start_s,
                w.end_s,
                demand,
                served,
                served / total if total > 0 else 0.0,
                MappingProxyType(d.by_stop(w.start_s, w.end_s)),
            )
        )
    return tuple(out)


def evaluate(
    windows: Sequence[Window],
    times: ArrayLike,
    *,
    weights: ArrayLike | None = None,
    stops: Sequence[str | None] | None = None,
    capacity: float | None = None,
) -> tuple[CoveredWindow, ...]:
    """What ``windows`` (in time order) serve of the demand; ``ValueError`` if two of them overlap."""
    ordered = sorted(windows, key=lambda w: (w.start_s, w.end_s, w.id))
    for a, b in pairwise(ordered):
        if b.start_s <= a.end_s:
            raise ValueError(f"windows {a.id} and {b.id} overlap: a pickup would count twice")
    return _cover(_demand(times, weights, stops), ordered, capacity)


def recommend(
    times: ArrayLike,
    rules: WindowRules | None = None,
    *,
    weights: ArrayLike | None = None,
    stops: Sequence[str | None] | None = None,
    current: Sequence[Window] | None = None,
) -> Recommendation:
    """The ``rules.count`` windows serving the most demand (exact; see the module docstring).

    ``times``: seconds since midnight, one per pickup; ``weights``: the weight of each (default 1);
    ``stops``: the stop of each (for ``CoveredWindow.by_stop``); ``current``: windows to compare with.
    """
    r = rules if rules is not None else WindowRules()
    d = _demand(times, weights, stops)
    chosen = _place(d, r, _solve(d, r))
    windows = [Window(f"w{i}", s, e) for i, (s, e) in enumerate(chosen, start=1)]
    covered = _cover(d, windows, r.capacity)
    total = d.total
    served = sum(c.served for c in covered)
    inside = float(d.weight_in(r.service_start_s, r.service_end_s))
    rec = Recommendation(
        windows=covered,
        total=total,
        served=served,
        share=served / total if total > 0 else 0.0,
        outside_hours=total - inside,
        rules=r,
    )
    if current is None:
        return rec
    now = evaluate(current, d.t, weights=d.w, stops=d.stops, capacity=r.capacity)
    now_served = sum(c.served for c in now)
    return replace(
        rec,
        current=now,
        current_served=now_served,
        current_share=now_served / total if total > 0 else 0.0,
        current_violations=tuple(r.violations([c.window for c in now])),
    )


# ---- times of day and the config snippet -------------------------------------------------------------


def format_time_of_day(seconds: float) -> str:
    """``HH:MM`` (``HH:MM:SS`` when not on a whole minute) of seconds since midnight; 86400 is 24:00."""
    whole = round(seconds)
    if abs(seconds - whole) > 1e-6:
        whole = math.floor(seconds)
    h, rest = divmod(int(whole), 3600)
    m, s = divmod(rest, 60)
    return f"{h:02d}:{m:02d}" if s == 0 else f"{h:02d}:{m:02d}:{s:02d}"


def parse_time_of_day(text: str) -> float:
    """Seconds since midnight of ``HH:MM`` or ``HH:MM:SS`` (``24:00`` allowed); ``ValueError`` otherwise."""
    parts = text.strip().split(":")
    ok = len(parts) in (2, 3) and all(p.isdigit() and len(p) <= 2 for p in parts)
    if ok:
        h, m, s = (int(p) for p in [*parts, "0"][:3])
        ok = m < 60 and s < 60 and (h < 24 or (h == 24 and m == s == 0))
        if ok:
            return float(h * 3600 + m * 60 + s)
    raise ValueError(f"{text.strip()!r} is not a time of day HH:MM (00:00–24:00)")


def parse_span(text: str) -> tuple[float, float]:
    """``07:30-08:30`` (or with an en dash) as (start, end) seconds since midnight, start before end."""
    parts = text.replace("–", "-").split("-")
    if len(parts) != 2:
        raise ValueError(f"{text.strip()!r} is not a span HH:MM-HH:MM")
    start, end = parse_time_of_day(parts[0]), parse_time_of_day(parts[1])
    if end <= start:
        raise ValueError(f"{text.strip()!r}: the end is not after the start")
    return start, end


def parse_windows(text: str) -> tuple[Window, ...]:
    """``07:30-08:30,12:00-13:30,…`` as windows ``w1``, ``w2``, … in the order given."""
    spans = [p for p in (part.strip() for part in text.split(",")) if p]
    if not spans:
        raise ValueError("no windows given (expected HH:MM-HH:MM,HH:MM-HH:MM,…)")
    return tuple(Window(f"w{i}", *parse_span(p)) for i, p in enumerate(spans, start=1))


def config_snippet(windows: Sequence[CoveredWindow | Window], key: str = "windows") -> str:
    """A YAML list under ``key`` in the shape of a simulator scenario's windows (``sim/day/scenario.py``)::

        windows:
          - {id: w1, start: "07:30", end: "08:30"}

    Times are ``"HH:MM"``, or seconds since midnight when not on a whole minute (``step_s=None``).
    """
    lines = [f"{key}:"]
    for w in windows:
        lines.append(f"  - {{id: {w.id}, start: {_yaml_time(w.start_s)}, end: {_yaml_time(w.end_s)}}}")
    return "\n".join(lines) + "\n"


def _yaml_time(seconds: float) -> str:
    """``"07:30"`` on a whole minute, else the seconds (``27009.5``)."""
    if float(seconds).is_integer() and int(seconds) % 60 == 0:
        return f'"{format_time_of_day(seconds)}"'
    return str(int(seconds)) if float(seconds).is_integer() else repr(float(seconds))


def _span(seconds: float) -> str:
    """``1 h 30 min``, ``45 min``, ``90 s``."""
    if seconds % 60:
        return f"{seconds:g} s"
    h, m = divmod(int(seconds // 60), 60)
    if h and m:
        return f"{h} h {m} min"
    return f"{h} h" if h else f"{m} min"
