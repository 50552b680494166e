"""The campus planner: windows → cart trips → hand-offs → indoor trips → charging → mini-program requests.

``plan_campus(snapshot, now, tables, stop=..., seed=...) -> Plan`` is pure. Per delivery window, in
order:

1. Parcels eligible for the window are grouped by stop (dorm parcels) or by building (office parcels,
   carried to the building's hand-off), cut into visits that fit the smallest cart.
2. PyVRP groups the visits into cart trips from the station (``trips.solve_trips``: fewest trips,
   then metres; every visit optional with a prize, so what cannot fit is left out, not failed).
3. Trips are laid end to end on the carts (earliest free cart first), re-timed in exact seconds:
   loading at the station, a dwell at each stop inside the window, a hand-off where an indoor robot
   of the building meets the cart (the robot that can be there first; the cart comes when it can
   be met, so it never waits longer than ``max_wait_s``), back to the station. A trip that no longer
   fits the window or the battery reserve is not run: its parcels roll to their next window.
4. Office parcels handed off (and those left in the mailroom earlier) are grouped by PyVRP into
   indoor trips from the hand-off point, released when the hand-off ends, and laid into the gaps
   between the indoor robots' meetings.
5. A robot whose battery would end the window below ``charge_below_wh`` goes to the nearest charger
   it can reach until it is full or the next window needs it.

Mini-program requests are then inserted one by one (``insertion.insert_request``). Released legs
(``Robot.committed``) are kept as they are; the robot plans from where and when they end.
"""

from __future__ import annotations

import itertools
import math
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace

from pyvrp.stop import StoppingCriterion

from orchestrator.dispatch.campus import (
    ZERO,
    Dims,
    Handoff,
    Leg,
    LegKind,
    Parcel,
    Plan,
    Robot,
    RobotKind,
    Snapshot,
    Timings,
    Window,
    add_dims,
    fits,
    load_dims,
)
from orchestrator.dispatch.errors import DispatchError
from orchestrator.dispatch.travel import TravelTable
from orchestrator.dispatch.trips import TripModel, Visit, solve_trips

PRIZE = 50_000  # a visit's worth in metres: far above any detour on a campus
PRIZE_PER_PARCEL = 1_000
ROLLED_BONUS = 5_000  # parcels that already came back once go first
URGENT_BONUS = 10_000  # parcels whose last window this is
RETURN_SLACK_S = 1800.0  # a cart may come back to the station this long after its window ends


@dataclass
class _State:
    """A robot while it is being planned: where and when it is free, its battery, its new legs."""

    robot: Robot
    place: str
    free_s: float
    level_wh: float
    legs: list[Leg] = field(default_factory=list)
    trips_in_window: int = 0
    start: tuple[str, float] = ("", 0.0)  # where and when it is free before any new leg

    def __post_init__(self) -> None:
        self.start = (self.place, self.free_s)

    def energy(self, table: TravelTable, a: str, b: str) -> float:
        return self.robot.battery.cost(table.length(a, b), max(0, table.lift_rides(a, b)))


@dataclass(frozen=True)
class _Stop:
    """One leg of a trip before timing: what, where, for which parcels, within which bounds."""

    kind: LegKind
    place: str
    parcels: tuple[str, ...]
    dims: Dims
    duration_s: float
    earliest_s: float
    latest_s: float
    building: str | None = None
    urgent: int = 0  # parcels for which this is the last window that can serve them


def plan_campus(
    snapshot: Snapshot,
    now: float,
    tables: Mapping[str, TravelTable],
    *,
    stop: Callable[[], StoppingCriterion],
    seed: int = 0,
    insert: Callable[..., object] | None = None,
) -> Plan:
    """Plan every remaining window of the day from ``snapshot`` at ``now`` (see the module docstring).

    ``stop`` makes a fresh PyVRP stopping criterion for each solve. ``insert`` (default
    ``insertion.insert_request``) places the mini-program requests.
    """
    return _Planner(snapshot, now, tables, stop, seed).run(insert)


class _Planner:
    def __init__(
        self,
        snapshot: Snapshot,
        now: float,
        tables: Mapping[str, TravelTable],
        stop: Callable[[], StoppingCriterion],
        seed: int,
    ) -> None:
        self.s = snapshot
        self.t: Timings = snapshot.timings
        self.now = now
        self.tables = tables
        self.stop = stop
        self.seed = seed
        self.unplanned: dict[str, str] = {}
        self.states: dict[str, _State] = {}
        for robot in snapshot.robots:
            if robot.online and robot.profile in tables:
                self.states[robot.id] = _State(
                    robot, robot.position, max(now, robot.available_s), _level_after(robot)
                )
        self.carts = [st for st in self.states.values() if st.robot.kind is RobotKind.CART]
        self.indoor: dict[str, list[_State]] = defaultdict(list)
        for st in self.states.values():
            building = st.robot.building
            if st.robot.kind is RobotKind.INDOOR and building is not None and building in snapshot.handoffs:
                self.indoor[building].append(st)
        done = {p for r in snapshot.robots for leg in r.committed for p in leg.parcels}
        self.pending: dict[str, Parcel] = {p.id: p for p in snapshot.parcels if p.id not in done}
        # building -> [(parcel, when it is at the mailroom)]
        self.mailroom: dict[str, list[tuple[Parcel, float]]] = defaultdict(list)
        self._mailroom_from_committed(snapshot)

    def _mailroom_from_committed(self, snapshot: Snapshot) -> None:
        """Parcels a released hand-off left at a mailroom and no released indoor leg took further."""
        handed: dict[str, tuple[str, float]] = {}
        taken: set[str] = set()
        for robot in snapshot.robots:
            for leg in robot.committed:
                if leg.kind is LegKind.HANDOFF:
                    for pid in leg.parcels:
                        handed[pid] = (leg.place, leg.end_s)
                elif robot.kind is not RobotKind.CART and leg.kind in (LegKind.LOAD, LegKind.DELIVER):
                    taken.update(leg.parcels)
        by_id = {p.id: p for p in snapshot.parcels}
        for pid, (place, ready) in handed.items():
            if pid in taken or pid not in by_id:
                continue
            building = next((b for b, h in snapshot.handoffs.items() if h.cart_place == place), None)
            if building is not None:
                self.mailroom[building].append((by_id[pid], ready))

    # ---- the whole day -------------------------------------------------------------------------

    def run(self, insert: Callable[..., object] | None) -> Plan:
        windows = sorted((w for w in self.s.windows if w.end_s > self.now), key=lambda w: w.start_s)
        for k, window in enumerate(windows):
            following = windows[k + 1] if k + 1 < len(windows) else None
            self._window(window, following)
        for parcel in self.pending.values():
            self.unplanned.setdefault(parcel.id, self._why_not(parcel))
        stranded: set[str] = set()
        for building, waiting in self.mailroom.items():
            for parcel, _ in waiting:
                self.unplanned[parcel.id] = f"no indoor robot of {building} could deliver it today"
                stranded.add(parcel.id)
        self._keep_at_station(stranded)
        plan = Plan(created_s=self.now, legs=self._assemble(), unplanned=self.unplanned)
        return self._requests(plan, insert)

    def _why_not(self, parcel: Parcel) -> str:
        cart_table = self._cart_table()
        if cart_table is None or not self.carts:
            return "no cart is online"
        if not cart_table.has(parcel.destination) and self._building_of(parcel.destination) is None:
            return f"no cart or indoor robot can reach {parcel.destination}"
        open_windows = [w for w in self.s.windows if w.end_s > self.now and _eligible(parcel, w)]
        if not open_windows:
            return "none of its delivery windows is left today"
        if all(parcel.deadline_s < w.start_s + self.t.stop_dwell_s for w in open_windows):
            return "its deadline comes before any of its delivery windows could serve it"
        return "no cart capacity left in its delivery windows"

    # ---- one window ----------------------------------------------------------------------------

    def _window(self, window: Window, following: Window | None) -> None:
        for st in self.states.values():  # a released trip of this window counts: the next one reloads
            st.trips_in_window = sum(
                leg.kind is LegKind.LOAD and leg.window == window.id for leg in st.robot.committed
            )
        cart_table = self._cart_table()
        if cart_table is not None and self.carts:
            self._cart_trips(window, cart_table)
        for building, robots in self.indoor.items():
            self._indoor_trips(building, robots, following)
        limit = following.start_s if following else math.inf
        for st in self.states.values():
            self._maybe_charge(st, limit)

    def _cart_table(self) -> TravelTable | None:
        return self.tables.get(self.carts[0].robot.profile) if self.carts else None

    def _building_of(self, place: str) -> str | None:
        for building, handoff in self.s.handoffs.items():
            robots = self.indoor.get(building)
            if robots and self.tables[robots[0].robot.profile].reachable(handoff.robot_place, place):
                return building
        return None

    def _cart_visits(self, window: Window, table: TravelTable, capacity: Dims) -> list[tuple[_Stop, int]]:
        groups: dict[tuple[LegKind, str, str | None], list[Parcel]] = defaultdict(list)
        for parcel in self.pending.values():
            if not _eligible(parcel, window) or parcel.received_s > window.end_s:
                continue
            if parcel.deadline_s < window.start_s + self.t.stop_dwell_s + self.t.dwell_per_parcel_s:
                continue  # cannot be met in this window, and would hold back the others
            if table.has(parcel.destination) and parcel.destination != self.s.station:
                groups[(LegKind.DWELL, parcel.destination, None)].append(parcel)
                continue
            building = self._building_of(parcel.destination)
            if building is not None and table.has(self.s.handoffs[building].cart_place):
                groups[(LegKind.HANDOFF, self.s.handoffs[building].cart_place, building)].append(parcel)
        visits: list[tuple[_Stop, int]] = []
        t = self.t
        for (kind, place, building), parcels in groups.items():
            last = {p.id: self._last_chance(p, window) for p in parcels}
            parcels.sort(key=lambda p: (not last[p.id], -p.rolled, p.deadline_s, p.id))
            for chunk in _chunks(parcels, capacity):
                n = len(chunk)
                if kind is LegKind.DWELL:
                    duration = t.stop_dwell_s + t.dwell_per_parcel_s * n
                    latest = min(window.end_s, *(p.deadline_s for p in chunk)) - duration
                else:
                    duration = t.transfer_s + t.transfer_per_parcel_s * n
                    lead = max(self._indoor_lead(building or "", p) for p in chunk)
                    latest = min(window.end_s, *(p.deadline_s - lead for p in chunk)) - duration
                urgent = sum(last[p.id] for p in chunk)
                prize = PRIZE + PRIZE_PER_PARCEL * n + URGENT_BONUS * urgent
                prize += ROLLED_BONUS * sum(p.rolled > 0 for p in chunk)
                ids = tuple(p.id for p in chunk)
                dims = load_dims(p.size for p in chunk)
                stop = _Stop(kind, place, ids, dims, duration, window.start_s, latest, building, urgent)
                visits.append((stop, prize))
        return visits

    def _last_chance(self, parcel: Parcel, window: Window) -> bool:
        """Whether no later window can still serve the parcel by its deadline."""
        return not any(
            w.start_s > window.start_s
            and _eligible(parcel, w)
            and parcel.deadline_s >= w.start_s + self.t.stop_dwell_s + self.t.dwell_per_parcel_s
            for w in self.s.windows
        )

    def _indoor_lead(self, building: str, parcel: Parcel) -> float:
        """The least time from a hand-off to the parcel's delivery: load one trip, go, call."""
        robots = self.indoor.get(building)
        if not robots:
            return 0.0
        table = self.tables[robots[0].robot.profile]
        travel = table.time(self.s.handoffs[building].robot_place, parcel.destination)
        load = self.t.load_per_parcel_s * robots[0].robot.compartments.total
        return travel + load + self.t.deliver_s

    def _cart_trips(self, window: Window, table: TravelTable) -> None:
        capacity = _min_dims(st.robot.compartments.dims for st in self.carts)
        visits = self._cart_visits(window, table, capacity)
        if not visits:
            return
        t = self.t
        home_service = t.reload_s + t.load_per_parcel_s * capacity[0]
        model = TripModel(
            home=self.s.station,
            capacity=capacity,
            depart_s=max(
                self.now,
                window.start_s - home_service - max(table.time(self.s.station, v.place) for v, _ in visits),
            ),
            return_by_s=window.end_s + RETURN_SLACK_S,
            home_service_s=home_service,
        )
        vrp = [Visit(v.place, v.dims, v.duration_s, v.earliest_s, v.latest_s, prize=p) for v, p in visits]
        trips, _ = solve_trips(model, vrp, table, self.stop, self.seed)
        stops = [v for v, _ in visits]

        def rank(trip: list[int]) -> tuple[int, float]:
            # last-chance parcels first, then the most parcels per minute of cart time
            places = [self.s.station, *(stops[i].place for i in trip), self.s.station]
            travel = sum(table.time(a, b) for a, b in itertools.pairwise(places))
            busy = travel + sum(stops[i].duration_s for i in trip) + home_service
            return (-sum(stops[i].urgent for i in trip), -sum(len(stops[i].parcels) for i in trip) / busy)

        for trip in sorted(trips, key=rank):
            self._place_cart_trip(window, table, [stops[i] for i in trip])

    def _place_cart_trip(self, window: Window, table: TravelTable, trip: list[_Stop]) -> None:
        merged = _merge_same_place(trip, self.t)
        for st in sorted(self.carts, key=lambda s: (s.free_s, s.robot.id)):
            built = self._time_cart_trip(st, window, table, merged)
            if built is None:
                continue
            legs, meets = built
            st.legs.extend(legs)
            st.place, st.free_s = legs[-1].place, legs[-1].end_s
            st.level_wh -= sum(leg_energy(st.robot, leg) for leg in legs)
            st.trips_in_window += 1
            for meet_state, meet in meets:
                meet_state.legs.append(meet)
                meet_state.place, meet_state.free_s = meet.place, meet.end_s
                meet_state.level_wh -= leg_energy(meet_state.robot, meet)
            for leg in legs:
                for pid in leg.parcels:
                    if leg.kind is LegKind.HANDOFF:
                        building = self._building_of_cart_place(leg.place)
                        self.mailroom[building].append((self.pending[pid], leg.end_s))
                    if leg.kind in (LegKind.DWELL, LegKind.HANDOFF):
                        self.pending.pop(pid, None)
            return

    def _building_of_cart_place(self, place: str) -> str:
        for building, handoff in self.s.handoffs.items():
            if handoff.cart_place == place:
                return building
        raise DispatchError(f"{place} is no building's hand-off place")

    def _time_cart_trip(
        self, st: _State, window: Window, table: TravelTable, trip: list[_Stop]
    ) -> tuple[list[Leg], list[tuple[_State, Leg]]] | None:
        """Time a cart trip on ``st`` in exact seconds; None if a bound or the battery fails."""
        t, robot = self.t, st.robot
        parcels = tuple(p for s in trip for p in s.parcels)
        dims = load_dims(self.pending[p].size for p in parcels)
        if not fits(dims, robot.compartments.dims):
            return None
        load_s = t.load_per_parcel_s * len(parcels) + (t.reload_s if st.trips_in_window else 0.0)
        arrive = st.free_s + table.time(st.place, self.s.station)
        received = max(self.pending[p].received_s for p in parcels)
        # leave so as to reach the first stop when it opens (not earlier: students are not there yet)
        leave_by = trip[0].earliest_s - table.time(self.s.station, trip[0].place) - load_s
        start = max(arrive, leave_by, self.now, received)
        legs = [
            self._leg(
                st,
                LegKind.LOAD,
                self.s.station,
                arrive,
                start,
                start + load_s,
                parcels,
                window,
                table,
                st.place,
            )
        ]
        meets: list[tuple[_State, Leg]] = []
        busy: dict[str, float] = {}
        for s in trip:
            prev = legs[-1]
            arrive = prev.end_s + table.time(prev.place, s.place)
            start = max(arrive, s.earliest_s)
            if s.kind is LegKind.HANDOFF:
                found = self._meet(s, start, busy)
                if found is None:
                    return None
                meet_state, start = found
                arrive = max(arrive, start - t.max_wait_s)
            if start > s.latest_s + 1e-9:
                return None
            leg = self._leg(
                st, s.kind, s.place, arrive, start, start + s.duration_s, s.parcels, window, table, prev.place
            )
            leg = replace(leg, earliest_s=s.earliest_s, latest_s=s.latest_s)
            if s.kind is LegKind.HANDOFF:
                meet = Leg(
                    robot=meet_state.robot.id,
                    kind=LegKind.MEET,
                    place=self.s.handoffs[s.building or ""].robot_place,
                    arrive_s=start,
                    start_s=start,
                    end_s=leg.end_s,
                    earliest_s=start,
                    latest_s=start,
                    parcels=s.parcels,
                    window=window.id,
                    partner=robot.id,
                )
                leg = replace(leg, partner=meet_state.robot.id)
                meets.append((meet_state, meet))
                busy[meet_state.robot.id] = leg.end_s
            legs.append(leg)
        prev = legs[-1]
        arrive = prev.end_s + table.time(prev.place, self.s.station)
        legs.append(
            self._leg(
                st, LegKind.RETURN, self.s.station, arrive, arrive, arrive, (), window, table, prev.place
            )
        )
        used = sum(leg_energy(robot, leg) for leg in legs)
        if st.level_wh - used < robot.battery.reserve_wh:
            return None
        return legs, meets

    def _meet(self, s: _Stop, start: float, busy: dict[str, float]) -> tuple[_State, float] | None:
        """The indoor robot that can meet a cart at ``s`` soonest, and when (None: none can)."""
        best: tuple[float, str, _State] | None = None
        handoff: Handoff = self.s.handoffs[s.building or ""]
        for st in self.indoor.get(s.building or "", []):
            table = self.tables[st.robot.profile]
            ready = max(st.free_s, busy.get(st.robot.id, -math.inf)) + table.time(
                st.place, handoff.robot_place
            )
            if not math.isfinite(ready):
                continue
            when = max(start, ready)
            if best is None or (when, st.robot.id) < (best[0], best[1]):
                best = (when, st.robot.id, st)
        return None if best is None else (best[2], best[0])

    def _leg(
        self,
        st: _State,
        kind: LegKind,
        place: str,
        arrive: float,
        start: float,
        end: float,
        parcels: tuple[str, ...],
        window: Window | None,
        table: TravelTable,
        came_from: str,
    ) -> Leg:
        return Leg(
            robot=st.robot.id,
            kind=kind,
            place=place,
            arrive_s=arrive,
            start_s=start,
            end_s=end,
            parcels=parcels,
            window=window.id if window else None,
            metres=table.length(came_from, place),
            lift_rides=max(0, table.lift_rides(came_from, place)),
        )

    # ---- indoor trips --------------------------------------------------------------------------

    def _indoor_trips(self, building: str, robots: list[_State], following: Window | None) -> None:
        waiting = self.mailroom.get(building, [])
        if not waiting or not robots:
            return
        t = self.t
        handoff = self.s.handoffs[building]
        table = self.tables[robots[0].robot.profile]
        capacity = _min_dims(st.robot.compartments.dims for st in robots)
        groups: dict[tuple[str, float], list[Parcel]] = defaultdict(list)
        for parcel, ready in waiting:
            groups[(parcel.destination, ready)].append(parcel)
        stops: list[_Stop] = []
        releases: list[float] = []
        for (place, ready), parcels in groups.items():
            for chunk in _chunks(sorted(parcels, key=lambda p: (p.deadline_s, p.id)), capacity):
                latest = min(p.deadline_s for p in chunk)
                ids = tuple(p.id for p in chunk)
                stops.append(
                    _Stop(
                        LegKind.DELIVER,
                        place,
                        ids,
                        load_dims(p.size for p in chunk),
                        t.deliver_s,
                        0.0,
                        latest,
                    )
                )
                releases.append(ready)
        home_service = t.load_per_parcel_s * capacity[0]
        depart = max(self.now, min(releases) - home_service)
        model = TripModel(
            home=handoff.robot_place,
            capacity=capacity,
            depart_s=depart,
            return_by_s=following.start_s if following else math.inf,
            home_service_s=home_service,
        )
        vrp = [
            Visit(
                s.place,
                s.dims,
                s.duration_s,
                0.0,
                s.latest_s - s.duration_s,
                release_s=r,
                prize=PRIZE + PRIZE_PER_PARCEL * len(s.parcels),
            )
            for s, r in zip(stops, releases, strict=True)
        ]
        trips, _ = solve_trips(model, vrp, table, self.stop, self.seed)
        delivered: set[str] = set()
        for trip in sorted(trips, key=lambda trip: max(releases[i] for i in trip)):
            release = max(releases[i] for i in trip)
            placed = self._place_indoor_trip(robots, handoff, table, [stops[i] for i in trip], release)
            if placed:
                delivered.update(p for i in trip for p in stops[i].parcels)
        self.mailroom[building] = [(p, r) for p, r in waiting if p.id not in delivered]

    def _place_indoor_trip(
        self, robots: list[_State], handoff: Handoff, table: TravelTable, trip: list[_Stop], release: float
    ) -> bool:
        """Put the trip on the robot that finishes it first, in the first gap of its day that fits."""
        options = []
        for st in robots:
            for after, before in _gaps(st, release):
                built = self._time_indoor_trip(st, handoff, table, trip, release, after, before)
                if built is not None:
                    options.append((built[-1].end_s, st.robot.id, st, built))
                    break
        if not options:
            return False
        _, _, st, legs = min(options, key=lambda o: (o[0], o[1]))
        st.legs.extend(legs)
        last = max(st.legs, key=lambda leg: leg.end_s)
        st.place, st.free_s = last.place, last.end_s
        st.level_wh -= sum(leg_energy(st.robot, leg) for leg in legs)
        return True

    def _time_indoor_trip(
        self,
        st: _State,
        handoff: Handoff,
        table: TravelTable,
        trip: list[_Stop],
        release: float,
        after: tuple[str, float],
        before: tuple[str, float] | None,
    ) -> list[Leg] | None:
        """The trip timed from ``after`` (place, time free) so that it is home before ``before``."""
        t, home = self.t, handoff.robot_place
        trip = _merge_same_place(trip, t)
        parcels = tuple(p for s in trip for p in s.parcels)
        if not fits(load_dims(self._parcel(p).size for p in parcels), st.robot.compartments.dims):
            return None
        place, free = after
        arrive = free + table.time(place, home)
        start = max(arrive, release, self.now)
        load_s = t.load_per_parcel_s * len(parcels)
        legs = [self._leg(st, LegKind.LOAD, home, arrive, start, start + load_s, parcels, None, table, place)]
        for s in trip:
            prev = legs[-1]
            arrive = prev.end_s + table.time(prev.place, s.place)
            if arrive + s.duration_s > s.latest_s + 1e-9:  # delivered (the call ends) by the deadline
                return None
            leg = self._leg(
                st,
                LegKind.DELIVER,
                s.place,
                arrive,
                arrive,
                arrive + s.duration_s,
                s.parcels,
                None,
                table,
                prev.place,
            )
            legs.append(replace(leg, latest_s=s.latest_s - s.duration_s))
        prev = legs[-1]
        arrive = prev.end_s + table.time(prev.place, home)
        legs.append(self._leg(st, LegKind.RETURN, home, arrive, arrive, arrive, (), None, table, prev.place))
        if before is not None and arrive + table.time(home, before[0]) > before[1] + 1e-9:
            return None
        if st.level_wh - sum(leg_energy(st.robot, leg) for leg in legs) < st.robot.battery.reserve_wh:
            return None
        return legs

    def _parcel(self, pid: str) -> Parcel:
        for waiting in self.mailroom.values():
            for parcel, _ in waiting:
                if parcel.id == pid:
                    return parcel
        return self.pending[pid]

    def _keep_at_station(self, stranded: set[str]) -> None:
        """Take parcels no indoor robot can deliver off the carts (empty hand-offs and trips go too)."""
        if not stranded:
            return
        for st in self.states.values():
            kept: list[Leg] = []
            for old in st.legs:
                leg = old
                if leg.kind in (LegKind.LOAD, LegKind.HANDOFF, LegKind.MEET) and set(leg.parcels) & stranded:
                    leg = replace(leg, parcels=tuple(p for p in leg.parcels if p not in stranded))
                    if not leg.parcels and leg.kind is not LegKind.LOAD:
                        continue
                if (
                    leg.kind is LegKind.RETURN
                    and kept
                    and kept[-1].kind is LegKind.LOAD
                    and not kept[-1].parcels
                ):
                    kept.pop()  # nothing left to carry: the trip is not run
                    continue
                kept.append(leg)
            st.legs = kept

    # ---- charging ------------------------------------------------------------------------------

    def _maybe_charge(self, st: _State, limit: float) -> None:
        battery = st.robot.battery
        if battery.charge_w <= 0 or st.level_wh >= battery.charge_below_wh:
            return
        table = self.tables[st.robot.profile]
        chargers = [
            c for c in self.s.chargers if table.reachable(st.place, c) and table.reachable(c, st.robot.home)
        ]
        if not chargers:
            return
        charger = min(chargers, key=lambda c: (table.time(st.place, c), c))
        arrive = st.free_s + table.time(st.place, charger)
        back = table.time(charger, st.robot.home)
        full_s = (
            (battery.capacity_wh - (st.level_wh - st.energy(table, st.place, charger)))
            / battery.charge_w
            * 3600
        )
        end = min(arrive + full_s, limit - back - self.t.reload_s - self.t.load_per_parcel_s * 60)
        if end <= arrive:
            return
        leg = self._leg(st, LegKind.CHARGE, charger, arrive, arrive, end, (), None, table, st.place)
        spent = leg_energy(st.robot, leg)
        if st.level_wh - spent < battery.reserve_wh:
            return
        st.legs.append(leg)
        st.place, st.free_s = charger, end
        st.level_wh = min(battery.capacity_wh, st.level_wh - spent + battery.charge_w * (end - arrive) / 3600)

    # ---- assembling ----------------------------------------------------------------------------

    def _assemble(self) -> dict[str, tuple[Leg, ...]]:
        out: dict[str, tuple[Leg, ...]] = {}
        size_of = sizes_of(self.s)
        for robot in self.s.robots:
            st = self.states.get(robot.id)
            new = sorted(st.legs, key=lambda leg: (leg.start_s, leg.end_s)) if st else []
            table = self.tables.get(robot.profile)
            if table is None:
                out[robot.id] = tuple(robot.committed)
                continue
            out[robot.id] = finalise(robot, [*robot.committed, *new], table, size_of)
        return out

    def _requests(self, plan: Plan, insert: Callable[..., object] | None) -> Plan:
        if not self.s.requests:
            return plan
        from orchestrator.dispatch.insertion import Accepted, insert_request

        insert = insert or insert_request
        committed = {r for robot in self.s.robots for leg in robot.committed for r in leg.requests}
        legs_unplanned = dict(plan.unplanned)
        for request in sorted(self.s.requests, key=lambda r: (r.created_s, r.id)):
            if request.id in committed:
                continue
            decision = insert(plan, self.s, request, self.tables, self.now)
            if isinstance(decision, Accepted):
                plan = decision.plan
            else:
                legs_unplanned[request.id] = getattr(decision, "reason", "refused")
                plan = Plan(plan.created_s, plan.legs, legs_unplanned)
        return Plan(plan.created_s, plan.legs, {**plan.unplanned, **legs_unplanned})


# ---- helpers -----------------------------------------------------------------------------------


def _gaps(st: _State, release: float) -> Iterable[tuple[tuple[str, float], tuple[str, float] | None]]:
    """The free stretches of a robot's new legs, in time order, that end after ``release``.

    Each is (place and time it is free from, place and arrival time of the next leg or None).
    """
    after = st.start
    for leg in sorted(st.legs, key=lambda leg: (leg.start_s, leg.end_s)):
        if leg.arrive_s > release:
            yield after, (leg.place, leg.arrive_s)
        after = (leg.place, leg.end_s)
    yield after, None


def leg_energy(robot: Robot, leg: Leg) -> float:
    """Energy in Wh spent getting to ``leg`` (charging is accounted separately)."""
    return robot.battery.cost(leg.metres, leg.lift_rides)


def finalise(
    robot: Robot, legs: Sequence[Leg], table: TravelTable, size_of: Mapping[str, Dims]
) -> tuple[Leg, ...]:
    """Fill in travel (``metres``, ``lift_rides``), ``load`` and ``level_wh`` along ``legs``.

    Released legs are kept as they are. ``size_of`` gives the counters of each parcel and request id.
    Raises ``DispatchError`` if a leg is reached before the previous one ends plus the travel time (a
    planner bug: the plan is then not used).
    """
    out: list[Leg] = []
    load: Dims = ZERO
    level = robot.battery.level_wh
    place, free = robot.position, -math.inf
    for leg in legs:
        if leg.released:
            out.append(leg)
            load, level, place, free = leg.load, leg.level_wh, leg.place, leg.end_s
            continue
        travel = table.time(place, leg.place)
        if leg.arrive_s + 1e-6 < free + travel:
            raise DispatchError(
                f"{robot.id}: {leg.kind} at {leg.place} at {leg.arrive_s:.0f} s is before it can get there"
            )
        metres, rides = table.length(place, leg.place), max(0, table.lift_rides(place, leg.place))
        level -= robot.battery.cost(metres, rides)
        if leg.kind is LegKind.CHARGE:
            gained = robot.battery.charge_w * (leg.end_s - leg.start_s) / 3600
            level = min(robot.battery.capacity_wh, level + gained)
        for item in leg.parcels + leg.requests:
            sign = -1 if leg.kind in _REMOVES else (1 if leg.kind in _ADDS else 0)
            load = add_dims(load, size_of[item], sign)
        out.append(replace(leg, metres=metres, lift_rides=rides, load=load, level_wh=level))
        place, free = leg.place, leg.end_s
    return tuple(out)


_ADDS = frozenset({LegKind.LOAD, LegKind.COLLECT})
_REMOVES = frozenset({LegKind.DWELL, LegKind.HANDOFF, LegKind.DELIVER, LegKind.DROP})


def sizes_of(snapshot: Snapshot) -> dict[str, Dims]:
    """The compartment counters of every parcel and request of the snapshot, by id."""
    out = {p.id: load_dims([p.size]) for p in snapshot.parcels}
    out.update({r.id: load_dims([r.size]) for r in snapshot.requests})
    return out


def _level_after(robot: Robot) -> float:
    if robot.committed:
        return robot.committed[-1].level_wh
    return robot.battery.level_wh


def _eligible(parcel: Parcel, window: Window) -> bool:
    return (not parcel.windows or window.id in parcel.windows) and parcel.deadline_s > window.start_s


def _min_dims(all_dims: Iterable[Dims]) -> Dims:
    dims = list(all_dims)
    return (min(d[0] for d in dims), min(d[1] for d in dims), min(d[2] for d in dims))


def _chunks(parcels: Sequence[Parcel], capacity: Dims) -> list[list[Parcel]]:
    """Consecutive groups of ``parcels`` that each fit ``capacity`` (large parcels spread evenly)."""
    out: list[list[Parcel]] = []
    current: list[Parcel] = []
    for parcel in parcels:
        if current and not fits(load_dims([*(p.size for p in current), parcel.size]), capacity):
            out.append(current)
            current = []
        if fits(load_dims([parcel.size]), capacity):
            current.append(parcel)
    if current:
        out.append(current)
    return out


def _merge_same_place(trip: list[_Stop], timings: Timings) -> list[_Stop]:
    """Consecutive stops of one kind at one place become one (one fixed dwell or call, all parcels)."""
    out: list[_Stop] = []
    for s in trip:
        if out and out[-1].place == s.place and out[-1].kind is s.kind:
            last = out[-1]
            parcels = last.parcels + s.parcels
            n = len(parcels)
            if s.kind is LegKind.DWELL:
                duration = timings.stop_dwell_s + timings.dwell_per_parcel_s * n
            elif s.kind is LegKind.DELIVER:
                duration = timings.deliver_s
            else:
                duration = timings.transfer_s + timings.transfer_per_parcel_s * n
            end_bound = min(last.latest_s + last.duration_s, s.latest_s + s.duration_s)
            out[-1] = _Stop(
                s.kind,
                s.place,
                parcels,
                add_dims(last.dims, s.dims),
                duration,
                max(last.earliest_s, s.earliest_s),
                end_bound - duration,
                s.building,
            )
        else:
            out.append(s)
    return out
