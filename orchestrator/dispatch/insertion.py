"""Online insertion of a mini-program request into the current plan (issue 5, item 4).

``insert_request(plan, snapshot, request, tables, now)`` answers at once ``Accepted`` (the robot, the
ETA and the new plan) or ``Refused`` (one sentence why). Pure: no I/O, no clock; ``now`` is passed in.

The request becomes two legs of one robot (``campus`` docstring, "Request"): a COLLECT and a later DROP
in the same trip (no RETURN between them). PICKUP: COLLECT at the door inside the promise, DROP at the
robot's home. COFFEE: COLLECT at the shop (``origin``) no earlier than ``created_s``, DROP at the door
inside the promise. The ETA is the start of the leg at the door.

How (Savelsbergh 1992, "The vehicle routing problem with time windows: minimizing route duration"):
every online robot of kind INDOOR or ROBOT whose travel table reaches the places is tried (a CART never
is); per robot one backward pass gives each unreleased leg its *latest arrival* (the latest time it can
be reached without any later leg starting after its latest start) and the suffix minimum of battery
margins; then every pair of positions (COLLECT before leg ``i``, DROP before leg ``j >= i``) is checked
in O(1) each while the legs between them are walked once (running maximum of loads, minimum of battery
margins, their pushed start times). The cheapest feasible pair wins: least added travel time plus
``HOLD_WEIGHT`` × time on board, then the earliest ETA, then the robot order of the snapshot. Only that
robot's legs are rebuilt.

Rules kept on top of the ``campus`` plan rules:

- Frozen legs never change and nothing goes before them: released legs, legs that started before
  ``now``, and every leg before one of those. The first new leg leaves from the last frozen leg (or
  from ``Robot.position``) no earlier than ``now`` (and ``Robot.available_s``).
- Legs after an insertion only move later: start = max(new arrival, old start). So hand-off
  synchronisation and other links between robots hold without being restated; MEET and HANDOFF legs
  keep their exact start (their latest start is their start).
- A leg's latest start is its ``latest_s``, tightened by its parcels' deadlines (DELIVER and DWELL end
  by them), a DWELL's window end and its requests' promises.
- Appended after all legs, the pair is followed by a RETURN home when nothing else is on board (a new
  trip that ends empty and at home).
- Battery: levels of later legs drop by the extra energy; a CHARGE leg's cap could absorb part of that
  drop, which the O(1) check ignores (it may refuse a position a CHARGE would have saved, never accept a
  wrong one). Levels of the rebuilt legs are recomputed exactly (a CHARGE pays its travel first, then
  charges ``charge_w`` × (end − start) / 3600 Wh, capped at capacity).

Refusals name the blocker: no capable robot online; nobody can reach the place; compartments too small
(no robot has one of the size); compartments full (taken when it could be served); no robot free within
the promised window (with the earliest time one could be there); battery reserve.
When several blockers occur, a position blocked by capacity alone wins over one blocked by battery
alone, which wins over lateness.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TypeAlias

import numpy as np

from orchestrator.dispatch.campus import (
    INF,
    ZERO,
    Dims,
    Leg,
    LegKind,
    Plan,
    Request,
    RequestKind,
    Robot,
    RobotKind,
    Snapshot,
    Timings,
    load_dims,
)
from orchestrator.dispatch.travel import TravelTable

CAPABLE = frozenset({RobotKind.INDOOR, RobotKind.ROBOT})
FIXED_START = frozenset({LegKind.MEET, LegKind.HANDOFF})
# Seconds of cost per second a request spends on board: without it the cheapest detour often keeps a
# parcel for hours (dropping it when the robot happens to pass home), filling compartments; with 20
# robots and 500 requests (benchmarks/dispatch/online.py) it cut refusals while filling from 406 to 113.
HOLD_WEIGHT = 0.05

# why a position fails (bit flags, combined per position)
_CAPACITY = 1
_LATE = 2  # an existing leg would start after its latest start
_WINDOW = 4  # the new COLLECT or DROP would miss its promise
_BATTERY = 8


@dataclass(frozen=True, slots=True)
class Accepted:
    """The request is planned on ``robot``; ``eta_s`` is when it starts at the door; ``plan`` the new plan.

    The ETA is the COLLECT's start for a PICKUP and the DROP's start for a COFFEE.
    """

    request: str
    robot: str
    eta_s: float
    plan: Plan


@dataclass(frozen=True, slots=True)
class Refused:
    """The request cannot be served; ``reason`` is one sentence for the sender."""

    request: str
    reason: str


Decision: TypeAlias = Accepted | Refused


def insert_request(
    plan: Plan, snapshot: Snapshot, request: Request, tables: Mapping[str, TravelTable], now: float
) -> Decision:
    """Insert ``request`` into ``plan`` at the cheapest feasible place, or say why it cannot be.

    ``tables`` maps a robot profile to its ``TravelTable`` (built with the snapshot's closed lifts);
    robots whose profile has no table are skipped. ``snapshot.requests`` need not contain ``request``.
    The returned plan differs from ``plan`` only in the chosen robot's legs and in ``unplanned`` (the
    request is removed from it).
    """
    if any(request.id in leg.requests for leg in plan.all_legs()):
        return Refused(request.id, f"request {request.id} is already in the plan")
    capable = [r for r in snapshot.robots if r.kind in CAPABLE and r.online]
    if not capable:
        return Refused(
            request.id,
            "no capable robot online: a request needs an online indoor robot or robot, carts never serve one",
        )
    spec = _Spec.of(request, snapshot.timings)
    limits = _Limits(snapshot)
    grids: dict[str, _Grid] = {}
    tally = _Tally()
    best: _Choice | None = None
    for order, robot in enumerate(capable):
        table = tables.get(robot.profile)
        if table is None:
            continue
        grid = grids.get(robot.profile)
        if grid is None:
            grid = grids[robot.profile] = _Grid.of(table)
        legs = plan.legs.get(robot.id, robot.committed)
        choice = _Search(robot, legs, spec, grid, limits, now, tally).best(order)
        if choice is not None and (best is None or choice.key < best.key):
            best = choice
    if best is None:
        return Refused(request.id, tally.reason(spec))
    new_legs = _rebuild(best, spec, grids[best.robot.profile], now)
    all_legs = dict(plan.legs)
    all_legs[best.robot.id] = new_legs
    unplanned = {k: v for k, v in plan.unplanned.items() if k != request.id}
    return Accepted(request.id, best.robot.id, best.eta, Plan(plan.created_s, all_legs, unplanned))


# ---- the request as two legs ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Spec:
    """Where and when the COLLECT and DROP may be; ``drop_place`` None means the robot's home."""

    request: Request
    collect_place: str
    collect_earliest: float
    collect_latest: float
    drop_place: str | None
    drop_earliest: float
    drop_latest: float
    dims: Dims
    service_s: float
    eta_at_drop: bool

    @classmethod
    def of(cls, request: Request, timings: Timings) -> _Spec:
        dims = load_dims([request.size])
        if request.kind is RequestKind.PICKUP:
            return cls(
                request, request.place, request.earliest_s, request.latest_s, None, 0.0, INF, dims,
                timings.collect_s, False,
            )  # fmt: skip
        if not request.origin:
            raise ValueError(f"request {request.id}: a coffee order needs an origin (the shop)")
        return cls(
            request, request.origin, request.created_s, INF, request.place, request.earliest_s,
            request.latest_s, dims, timings.collect_s, True,
        )  # fmt: skip

    def places(self) -> str:
        """The places of the request, for messages."""
        if self.request.kind is RequestKind.COFFEE:
            return f"{self.collect_place} and {self.drop_place}"
        return self.collect_place


# ---- lookups -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Grid:
    """A travel table as nested lists: plain Python indexing is several times faster than NumPy's here."""

    index: Mapping[str, int]
    time: list[list[float]]
    metres: list[list[float]]
    rides: list[list[int]]

    @classmethod
    def of(cls, table: TravelTable) -> _Grid:
        rides = np.maximum(table.rides, 0).tolist()  # -1 marks "unreachable", where time is inf anyway
        return cls(table.index, table.time_s.tolist(), table.metres.tolist(), rides)


class _Limits:
    """Latest start of an existing leg: its own bound, its parcels' deadlines, its requests' promises."""

    def __init__(self, snapshot: Snapshot) -> None:
        self._snapshot = snapshot
        self._deadlines: dict[str, float] | None = None
        self._requests: dict[str, Request] | None = None
        self._window_ends: dict[str, float] | None = None

    def latest(self, leg: Leg) -> float:
        kind = leg.kind
        if kind in FIXED_START:
            return leg.start_s
        latest = leg.latest_s
        duration = leg.end_s - leg.start_s
        if leg.parcels and kind in (LegKind.DELIVER, LegKind.DWELL):
            deadlines = self._deadline_map()
            for parcel in leg.parcels:
                latest = min(latest, deadlines.get(parcel, INF) - duration)
        if kind is LegKind.DWELL and leg.window is not None:
            if self._window_ends is None:
                self._window_ends = {w.id: w.end_s for w in self._snapshot.windows}
            latest = min(latest, self._window_ends.get(leg.window, INF) - duration)
        if leg.requests:
            requests = self._request_map()
            for rid in leg.requests:
                req = requests.get(rid)
                if req is None:
                    continue
                at_door = (kind is LegKind.COLLECT) == (req.kind is RequestKind.PICKUP)
                if at_door:
                    latest = min(latest, req.latest_s)
        return latest

    def _deadline_map(self) -> dict[str, float]:
        if self._deadlines is None:
            self._deadlines = {p.id: p.deadline_s for p in self._snapshot.parcels}
        return self._deadlines

    def _request_map(self) -> dict[str, Request]:
        if self._requests is None:
            self._requests = {r.id: r for r in self._snapshot.requests}
        return self._requests


class _Tally:
    """Why positions failed, to explain a refusal."""

    def __init__(self) -> None:
        self.reachable = 0
        self.too_small = 0  # reachable robots without a compartment of the request's size
        self.single = 0  # flags that were the only blocker of some position
        self.seen = 0  # every flag seen
        self.window_eta = INF  # earliest ETA of a position blocked by the promise alone
        self.time_eta = INF  # earliest ETA of a position blocked by time only

    def note(self, flags: int, eta: float) -> None:
        self.seen |= flags
        if flags & (flags - 1) == 0:
            self.single |= flags
        if flags == _WINDOW:
            self.window_eta = min(self.window_eta, eta)
        if flags & ~(_WINDOW | _LATE) == 0:
            self.time_eta = min(self.time_eta, eta)

    def reason(self, spec: _Spec) -> str:
        request = spec.request
        if self.reachable == 0:
            return f"nobody can reach {spec.places()}: no online indoor robot or robot has a route there"
        if self.too_small == self.reachable:
            return (
                f"compartments too small: no robot that can reach {spec.places()} has a compartment "
                f"of size {request.size.name} or larger"
            )
        for flag in (_CAPACITY, _BATTERY):
            if self.single & flag:
                return self._sentence(flag, spec)
        if self.seen & (_WINDOW | _LATE):
            return self._sentence(_WINDOW, spec)
        if self.seen & _CAPACITY:
            return self._sentence(_CAPACITY, spec)
        if self.seen & _BATTERY:
            return self._sentence(_BATTERY, spec)
        return f"no feasible position found for {request.id}"

    def _sentence(self, flag: int, spec: _Spec) -> str:
        request = spec.request
        if flag == _CAPACITY:
            return (
                f"compartments full: no robot that could serve {request.id} in time has a free "
                f"compartment of size {request.size.name} or larger"
            )
        if flag == _BATTERY:
            return f"battery reserve: every robot that could serve {request.id} would fall below its reserve"
        eta = self.window_eta if math.isfinite(self.window_eta) else self.time_eta
        earliest = f" (earliest free time {eta:.0f} s)" if math.isfinite(eta) else ""
        return (
            f"no robot free within the promised window: {request.earliest_s:.0f}–{request.latest_s:.0f} s "
            f"at {request.place}{earliest}"
        )


# ---- searching one robot -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Choice:
    """The best position on one robot: COLLECT before unfrozen leg ``i``, DROP before ``j`` (relative)."""

    key: tuple[float, float, int]
    robot: Robot
    legs: tuple[Leg, ...]
    frozen: int
    i: int
    j: int
    eta: float
    close_trip: bool


@dataclass(frozen=True, slots=True)
class _Anchor:
    """Where the robot is when its first unfrozen leg begins: place, time, battery, load."""

    frozen: int
    place: str
    time: float
    level: float
    load: Dims

    @classmethod
    def of(cls, robot: Robot, legs: Sequence[Leg], now: float) -> _Anchor:
        frozen = 0
        for k, leg in enumerate(legs):
            if leg.released or leg.start_s < now:
                frozen = k + 1
        if frozen:
            last = legs[frozen - 1]
            return cls(frozen, last.place, max(last.end_s, now), last.level_wh, last.load)
        return cls(0, robot.position, max(robot.available_s, now), robot.battery.level_wh, ZERO)


class _Search:
    """All positions of the request on one robot, each checked in O(1) after one O(n) pass."""

    def __init__(
        self,
        robot: Robot,
        legs: Sequence[Leg],
        spec: _Spec,
        grid: _Grid,
        limits: _Limits,
        now: float,
        tally: _Tally,
    ) -> None:
        self.robot, self.legs, self.spec, self.grid = robot, tuple(legs), spec, grid
        self.limits, self.now, self.tally = limits, now, tally
        self.anchor = _Anchor.of(robot, self.legs, now)
        self.sub = self.legs[self.anchor.frozen :]

    def _places(self) -> tuple[int, int, int, int, list[int]] | None:
        """Table indices of collect, drop, home, anchor and every unfrozen leg; None if any is unknown."""
        index = self.grid.index
        c = index.get(self.spec.collect_place)
        d = index.get(self.spec.drop_place or self.robot.home)
        h = index.get(self.robot.home)
        a = index.get(self.anchor.place)
        places = [index.get(leg.place) for leg in self.sub]
        if c is None or d is None or h is None or a is None:
            return None
        out = [p for p in places if p is not None]
        if len(out) != len(places):
            return None
        time = self.grid.time
        if not (math.isfinite(time[a][c]) and math.isfinite(time[c][d]) and math.isfinite(time[d][h])):
            return None
        return c, d, h, a, out

    def best(self, order: int) -> _Choice | None:
        """The cheapest feasible position on this robot (failures go to the tally)."""
        found = self._places()
        if found is None:
            return None
        self.tally.reachable += 1
        cap = self.robot.compartments.dims
        dims = self.spec.dims
        if dims[0] > cap[0] or dims[1] > cap[1] or dims[2] > cap[2]:
            self.tally.too_small += 1
            return None
        return self._scan(order, *found)

    def _scan(self, order: int, c: int, d: int, h: int, a: int, p: list[int]) -> _Choice | None:
        robot, spec, anchor, now, tally = self.robot, self.spec, self.anchor, self.now, self.tally
        T, M, R = self.grid.time, self.grid.metres, self.grid.rides
        battery = robot.battery
        pm, pr, reserve = battery.per_m_wh, battery.per_lift_wh, battery.reserve_wh
        c0, c1, c2 = robot.compartments.dims
        d0, d1, d2 = spec.dims
        sub = self.sub
        m = len(sub)
        S = [leg.start_s for leg in sub]
        dur = [leg.end_s - leg.start_s for leg in sub]
        L = [self.limits.latest(leg) for leg in sub]
        lev = [leg.level_wh for leg in sub]
        load = [leg.load for leg in sub]
        ret = [leg.kind is LegKind.RETURN for leg in sub]
        w = [leg.metres * pm + leg.lift_rides * pr for leg in sub]  # energy of the travel into each leg
        # latest arrival and suffix minimum of battery margins (a CHARGE counts before it charges)
        MG = [level - reserve for level in lev]
        for k, leg in enumerate(sub):
            if leg.kind is LegKind.CHARGE:
                MG[k] = min(MG[k], (lev[k - 1] if k else anchor.level) - w[k] - reserve)
        LA = [INF] * (m + 1)
        SM = [INF] * (m + 1)
        for k in range(m - 1, -1, -1):
            onward = LA[k + 1] - dur[k] - T[p[k]][p[k + 1]] if k + 1 < m else INF
            LA[k] = max(S[k], min(L[k], onward))
            SM[k] = min(SM[k + 1], MG[k])
        ce, cl, de, dl = spec.collect_earliest, spec.collect_latest, spec.drop_earliest, spec.drop_latest
        svc, eta_at_drop = spec.service_s, spec.eta_at_drop
        Tc, Td, Mc, Md, Rc, Rd = T[c], T[d], M[c], M[d], R[c], R[d]
        close_trip = (load[m - 1] if m else anchor.load) == ZERO
        home_time = Td[h]
        home_energy = Md[h] * pm + Rd[h] * pr
        best: _Choice | None = None
        best_key: tuple[float, float, int] | None = None
        for i in range(m + 1):
            if i == 0:
                pp, pe, plv, pl = a, anchor.time, anchor.level, anchor.load
            else:
                pp, pe, plv, pl = p[i - 1], max(sub[i - 1].end_s, now), lev[i - 1], load[i - 1]
            Tpp = T[pp]
            flags_c = 0
            if pl[0] + d0 > c0 or pl[1] + d1 > c1 or pl[2] + d2 > c2:
                flags_c |= _CAPACITY
            arrive_c = pe + Tpp[c]
            start_c = arrive_c if arrive_c > ce else ce
            if start_c > cl:
                flags_c |= _WINDOW
            level_c = plv - (M[pp][c] * pm + R[pp][c] * pr)
            if level_c < reserve:
                flags_c |= _BATTERY
            if i < m:
                pi = p[i]
                detour_c = Tpp[c] + Tc[pi] - Tpp[pi]
                delta_seg = (plv - level_c) + (Mc[pi] * pm + Rc[pi] * pr) - w[i]
            else:
                detour_c = delta_seg = 0.0
            cur, cur_end, cur_level = c, start_c + svc, level_c
            seg = flags_c
            # a COLLECT that already fails fails at every j: only j = i is looked at (for the refusal)
            for j in range(i, i + 1 if flags_c else m + 1):
                if j > i:
                    k = j - 1
                    if ret[k] or seg:  # a trip ends, or every later j fails like this one
                        if seg:
                            tally.note(seg, INF)
                        break
                    pk = p[k]
                    arrive_k = cur_end + T[cur][pk]
                    start_k = arrive_k if arrive_k > S[k] else S[k]
                    if start_k > L[k]:
                        seg |= _LATE
                    lk = load[k]
                    if lk[0] + d0 > c0 or lk[1] + d1 > c1 or lk[2] + d2 > c2:
                        seg |= _CAPACITY
                    cur_level = lev[k] - delta_seg
                    if MG[k] < delta_seg:
                        seg |= _BATTERY
                    cur, cur_end = pk, start_k + dur[k]
                Tcur = T[cur]
                arrive_d = cur_end + Tcur[d]
                start_d = arrive_d if arrive_d > de else de
                flags = seg
                if start_d > dl:
                    flags |= _WINDOW
                level_d = cur_level - (M[cur][d] * pm + R[cur][d] * pr)
                if level_d < reserve:
                    flags |= _BATTERY
                end_d = start_d + svc
                if j < m:
                    pj = p[j]
                    if end_d + Td[pj] > LA[j]:
                        flags |= _LATE
                    old_before = plv if j == i else lev[j - 1]
                    drop = (old_before - w[j]) - (level_d - (Md[pj] * pm + Rd[pj] * pr))
                    if drop > SM[j]:
                        flags |= _BATTERY
                    if j == i:
                        added = Tpp[c] + Tc[d] + Td[pj] - Tpp[pj]
                    else:
                        added = detour_c + Tcur[d] + Td[pj] - Tcur[pj]
                else:
                    added = Tpp[c] + Tc[d] if j == i else detour_c + Tcur[d]
                    if close_trip:
                        added += home_time
                        if level_d - home_energy < reserve:
                            flags |= _BATTERY
                eta = start_d if eta_at_drop else start_c
                if flags:
                    tally.note(flags, eta)
                    if start_d > dl:  # a later DROP only comes later (triangle inequality of fastest routes)
                        break
                    continue
                cost = added + HOLD_WEIGHT * (end_d - start_c)
                key = (round(cost, 6), eta, order)  # rounded: equal costs tie on the ETA
                if best_key is None or key < best_key:
                    best_key = key
                    best = _Choice(key, robot, self.legs, anchor.frozen, i, j, eta, close_trip and j == m)
        return best


# ---- rebuilding the chosen robot's legs ----------------------------------------------------------


class _Walker:
    """Lays legs one after another, recomputing travel, times, load and battery exactly."""

    def __init__(
        self, robot: Robot, spec: _Spec, grid: _Grid, place: str, time: float, level: float, load: Dims
    ) -> None:
        self.robot, self.spec, self.grid = robot, spec, grid
        self.place, self.time, self.level, self.load = place, time, level, load
        self.out: list[Leg] = []

    def _travel(self, place: str) -> tuple[float, float, int]:
        i, j = self.grid.index[self.place], self.grid.index[place]
        return self.grid.time[i][j], self.grid.metres[i][j], self.grid.rides[i][j]

    def _level(self, leg: Leg, metres: float, rides: int) -> float:
        battery = self.robot.battery
        level = self.level - battery.cost(metres, rides)
        if leg.kind is LegKind.CHARGE:
            gained = battery.charge_w * max(0.0, leg.end_s - leg.start_s) / 3600
            level = min(battery.capacity_wh, level + gained)
        return level

    def new(self, kind: LegKind, place: str, earliest: float = 0.0, latest: float = INF) -> None:
        """A new leg of the request (COLLECT, DROP) or the RETURN closing its trip."""
        spec = self.spec
        travel, metres, rides = self._travel(place)
        arrive = self.time + travel
        start = max(arrive, earliest)
        service = 0.0 if kind is LegKind.RETURN else spec.service_s
        requests: tuple[str, ...] = ()
        if kind is LegKind.COLLECT:
            requests, self.load = (spec.request.id,), _plus(self.load, spec.dims, 1)
        elif kind is LegKind.DROP:
            requests, self.load = (spec.request.id,), _plus(self.load, spec.dims, -1)
        leg = Leg(
            self.robot.id, kind, place, arrive, start, start + service, earliest, latest,
            requests=requests, load=self.load, metres=metres, lift_rides=rides,
        )  # fmt: skip
        self._append(leg, metres, rides)

    def shift(self, leg: Leg, extra: Dims, moved: bool) -> None:
        """An existing leg after the insertion carrying ``extra`` more (``moved``: a new predecessor)."""
        travel, metres, rides = self._travel(leg.place)
        if not moved:
            metres, rides = leg.metres, leg.lift_rides
        arrive = max(leg.arrive_s, self.time + travel)
        start = max(arrive, leg.start_s)
        self.load = _plus(leg.load, extra, 1)
        shifted = replace(
            leg, arrive_s=arrive, start_s=start, end_s=start + (leg.end_s - leg.start_s),
            load=self.load, metres=metres, lift_rides=rides,
        )  # fmt: skip
        self._append(shifted, metres, rides)

    def _append(self, leg: Leg, metres: float, rides: int) -> None:
        self.level = self._level(leg, metres, rides)
        if leg.level_wh != self.level:
            leg = replace(leg, level_wh=self.level)
        self.out.append(leg)
        self.place, self.time = leg.place, leg.end_s


def _plus(a: Dims, b: Dims, sign: int) -> Dims:
    return (a[0] + sign * b[0], a[1] + sign * b[1], a[2] + sign * b[2])


def _rebuild(choice: _Choice, spec: _Spec, grid: _Grid, now: float) -> tuple[Leg, ...]:
    """The chosen robot's legs with the request's COLLECT and DROP (and maybe a RETURN) inserted."""
    robot, legs, f, i, j = choice.robot, choice.legs, choice.frozen, choice.i, choice.j
    sub = legs[f:]
    if i == 0:
        anchor = _Anchor.of(robot, legs, now)
        walker = _Walker(robot, spec, grid, anchor.place, anchor.time, anchor.level, anchor.load)
    else:
        last = sub[i - 1]
        walker = _Walker(robot, spec, grid, last.place, max(last.end_s, now), last.level_wh, last.load)
    walker.new(LegKind.COLLECT, spec.collect_place, spec.collect_earliest, spec.collect_latest)
    for k in range(i, j):
        walker.shift(sub[k], spec.dims, moved=k == i)
    walker.new(LegKind.DROP, spec.drop_place or robot.home, spec.drop_earliest, spec.drop_latest)
    for k in range(j, len(sub)):
        walker.shift(sub[k], ZERO, moved=k == j)
    if choice.close_trip:
        walker.new(LegKind.RETURN, robot.home)
    return (*legs[: f + i], *walker.out)
