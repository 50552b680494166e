"""The independent plan checker: ``validate(plan, snapshot, tables)`` lists every broken plan rule.

It checks the rules of the ``campus`` module docstring from the snapshot, the robots' ``Battery`` and
``Timings`` and the travel tables alone (it shares no code with any planner) and returns one short
sentence per violation, naming the robot and leg (``cart_1 leg 3 (dwell at stop_dorm_1)``), the parcel
or the request; an empty tuple means the plan is valid. Numbers are compared with a relative
tolerance of ``EPS`` (``|a - b| <= EPS * max(1, |a|, |b|)``).

How the rules are read where ``campus`` leaves room (what an operator would expect):

- Released legs are frozen: they are only compared with ``Robot.committed`` (and must come first).
  Travel, service, load and battery are checked on the unreleased legs, which continue from the last
  released leg's place, end, load and ``level_wh`` — or, without released legs, from
  ``Robot.position`` at ``Robot.available_s`` with ``Robot.battery.level_wh`` and nothing on board.
  Parcel, request and hand-off rules look at all legs (a released LOAD pairs with a later DWELL).
- A trip is a run of legs closed by a RETURN; the legs after the last RETURN are an open trip (a plan
  need not end with a RETURN). Only RETURN ends a trip (a CHARGE does not).
- A parcel is a dorm parcel when a cart's travel table knows its destination (the stops), otherwise an
  office parcel; its building is the one whose hand-off ``robot_place`` reaches the destination in the
  travel table of an indoor robot's profile. Planning a parcel no hand-off reaches is a violation.
- A robot "of building B" has ``Robot.building == B``: only such a robot may MEET a cart at B's
  hand-off or LOAD B's parcels there.
- Every cart LOAD is at the station; an indoor LOAD is at a hand-off ``robot_place``. A parcel is never
  loaded before ``received_s``. ``Parcel.windows`` binds every parcel's cart LOAD (dorm and office);
  only a dorm parcel's DWELL must also lie inside that window. Deadlines are met by the END of the
  DWELL or DELIVER.
- An office parcel's indoor LOAD may be done by any indoor robot of the building (the mailroom holds
  the parcels), not only the robot that had the MEET. A MEET carries the same parcels as its HANDOFF.
- Reload time: a cart LOAD whose window already had a LOAD of that cart in an earlier trip adds
  ``reload_s``. DELIVER takes ``deliver_s`` however many parcels it lists.
- Battery costs use the travel tables' metres and lift rides (not the leg's own fields, which are
  checked separately); a CHARGE leg first pays its travel, which must stay above the reserve, then
  charges ``charge_w`` × (end − start) / 3600 Wh (watts times hours), capped at the capacity. Falling
  below the reserve is reported once, at the first leg that spends energy under it; a robot already
  below its reserve may drive straight to a CHARGE (that is what it must do).
- Ids in ``Plan.unplanned`` must be parcels or requests of the snapshot and need a non-empty reason.
  A parcel id in an unreleased leg must be a parcel of the snapshot (a released leg may carry parcels
  the snapshot no longer lists).

Mistakes of the caller rather than of the plan raise ``ValueError``: a robot's profile without a travel
table, or tables built with other closed lifts than the snapshot's.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from orchestrator.dispatch.campus import (
    ZERO,
    Dims,
    Handoff,
    Leg,
    LegKind,
    Parcel,
    Plan,
    Request,
    RequestKind,
    Robot,
    RobotKind,
    Snapshot,
    add_dims,
    fits,
    load_dims,
)
from orchestrator.dispatch.travel import TravelTable

EPS = 1e-6

_ADDS = frozenset({LegKind.LOAD})
_REMOVES = frozenset({LegKind.DWELL, LegKind.HANDOFF, LegKind.DELIVER})
_NO_PARCELS = frozenset({LegKind.COLLECT, LegKind.DROP, LegKind.RETURN, LegKind.CHARGE})
_REQUEST_KINDS = frozenset({LegKind.COLLECT, LegKind.DROP})


def _tol(a: float, b: float) -> float:
    return EPS * max(1.0, abs(a), abs(b))


def _le(a: float, b: float) -> bool:
    """``a <= b`` within the tolerance."""
    return a <= b + _tol(a, b)


def _eq(a: float, b: float) -> bool:
    return abs(a - b) <= _tol(a, b)


def _t(x: float) -> str:
    return f"{x:.2f}"


@dataclass(frozen=True, slots=True)
class _At:
    """A leg and where it sits: its robot, index among the robot's legs and trip number."""

    robot: Robot
    index: int
    leg: Leg
    trip: int

    def __str__(self) -> str:
        return f"{self.robot.id} leg {self.index} ({self.leg.kind.value} at {self.leg.place})"

    def before_in_trip(self, other: _At) -> bool:
        """Whether ``other`` comes after this leg, by the same robot, in the same trip."""
        return self.robot.id == other.robot.id and self.trip == other.trip and self.index < other.index


@dataclass(slots=True)
class _State:
    """Where a robot is after a leg: place, time, load, battery level, and whether it is below its
    reserve with that already reported (so it is said once, where it happens)."""

    place: str
    time_s: float
    load: Dims
    level_wh: float
    under_reported: bool = False


def validate(plan: Plan, snapshot: Snapshot, tables: Mapping[str, TravelTable]) -> tuple[str, ...]:
    """Every rule of the ``campus`` docstring that ``plan`` breaks, one sentence each (empty: valid).

    ``tables`` holds a ``TravelTable`` per robot profile, built with the snapshot's closed lifts.
    Raises ``ValueError`` when a robot's profile has no table or a table has other closed lifts.
    """
    return _Checker(plan, snapshot, tables).run()


class _Checker:
    """One validation run: indexes the snapshot, walks every robot's legs, then every parcel and request."""

    def __init__(self, plan: Plan, snapshot: Snapshot, tables: Mapping[str, TravelTable]) -> None:
        self.plan = plan
        self.snap = snapshot
        self.timings = snapshot.timings
        self.tables = tables
        self.out: list[str] = []
        self.robots = {r.id: r for r in snapshot.robots}
        self.parcels = {p.id: p for p in snapshot.parcels}
        self.requests = {r.id: r for r in snapshot.requests}
        self.windows = {w.id: w for w in snapshot.windows}
        self.chargers = frozenset(snapshot.chargers)
        self.by_cart_place: dict[str, list[Handoff]] = defaultdict(list)
        self.by_robot_place: dict[str, list[Handoff]] = defaultdict(list)
        for handoff in snapshot.handoffs.values():
            self.by_cart_place[handoff.cart_place].append(handoff)
            self.by_robot_place[handoff.robot_place].append(handoff)
        self.parcel_at: dict[str, list[_At]] = defaultdict(list)
        self.request_at: dict[str, list[_At]] = defaultdict(list)
        self.handoff_legs: list[_At] = []
        self.meet_legs: list[_At] = []
        self.paired: dict[int, _At] = {}  # id(HANDOFF _At) -> its MEET
        self._buildings_cache: dict[str, frozenset[str]] = {}
        self._check_inputs()
        self.indoor_profiles = sorted({r.profile for r in snapshot.robots if r.kind is not RobotKind.CART})
        self.cart_places = frozenset(
            place for r in snapshot.robots if r.kind is RobotKind.CART for place in tables[r.profile].places
        )

    def _check_inputs(self) -> None:
        for robot in self.snap.robots:
            table = self.tables.get(robot.profile)
            if table is None:
                raise ValueError(f"no travel table for profile {robot.profile!r} of robot {robot.id}")
            if table.closed_lifts != self.snap.closed_lifts:
                raise ValueError(
                    f"the travel table of profile {robot.profile!r} closes lifts "
                    f"{sorted(table.closed_lifts)}, the snapshot {sorted(self.snap.closed_lifts)}"
                )

    def run(self) -> tuple[str, ...]:
        for robot_id, legs in self.plan.legs.items():
            if robot_id not in self.robots:
                self.out.append(
                    f"{robot_id}: not a robot of the snapshot, yet the plan gives it {len(legs)} legs"
                )
        for robot in self.snap.robots:
            self._robot(robot, self.plan.legs.get(robot.id, ()))
        self._pair_handoffs()
        for parcel in self.snap.parcels:
            self._parcel(parcel)
        for request in self.snap.requests:
            self._request(request)
        self._unplanned()
        return tuple(self.out)

    # --- per robot: order, release, travel, service, load, battery ---------------------------------

    def _robot(self, robot: Robot, legs: tuple[Leg, ...]) -> None:
        released = 0
        while released < len(legs) and legs[released].released:
            released += 1
        if legs[:released] != robot.committed:
            self.out.append(
                f"{robot.id}: its {released} released legs are not its {len(robot.committed)} committed legs"
            )
        if not robot.online and released < len(legs):
            self.out.append(f"{robot.id}: offline, yet given {len(legs) - released} new legs")
        if released:
            last = legs[released - 1]
            state = _State(last.place, last.end_s, last.load, last.level_wh)
        else:
            state = _State(robot.position, robot.available_s, ZERO, robot.battery.level_wh)
        table = self.tables[robot.profile]
        first_trip_of_window: dict[str, int] = {}
        trip = 0
        for index, leg in enumerate(legs):
            at = _At(robot, index, leg, trip)
            self._index(at)
            reload = False
            if leg.kind is LegKind.LOAD and robot.kind is RobotKind.CART and leg.window is not None:
                reload = first_trip_of_window.setdefault(leg.window, trip) < trip
            if index >= released:
                if leg.released:
                    self.out.append(f"{at}: released after an unreleased leg")
                if leg.robot != robot.id:
                    self.out.append(f"{at}: the leg names robot {leg.robot}")
                state = self._leg(at, state, table, reload)
            if leg.kind is LegKind.RETURN:
                trip += 1

    def _index(self, at: _At) -> None:
        for parcel_id in at.leg.parcels:
            self.parcel_at[parcel_id].append(at)
        for request_id in at.leg.requests:
            self.request_at[request_id].append(at)
        if at.leg.kind is LegKind.HANDOFF:
            self.handoff_legs.append(at)
        elif at.leg.kind is LegKind.MEET:
            self.meet_legs.append(at)

    def _leg(self, at: _At, before: _State, table: TravelTable, reload: bool) -> _State:
        leg = at.leg
        metres, rides = self._travel(at, before, table)
        self._service(at, reload)
        self._structure(at)
        load = self._load(at, before.load)
        level, under = self._battery(at, before, metres, rides)
        return _State(leg.place, leg.end_s, load, level, under)

    def _travel(self, at: _At, before: _State, table: TravelTable) -> tuple[float, int]:
        leg = at.leg
        time_s = table.time(before.place, leg.place)
        if not math.isfinite(time_s):
            self.out.append(f"{at}: {leg.place} cannot be reached from {before.place} by {table.profile}")
            if not _le(before.time_s, leg.arrive_s):
                self.out.append(
                    f"{at}: arrives at {_t(leg.arrive_s)}, before the previous end {_t(before.time_s)}"
                )
            return leg.metres, leg.lift_rides
        if not _le(before.time_s + time_s, leg.arrive_s):
            self.out.append(
                f"{at}: arrives at {_t(leg.arrive_s)}, before {_t(before.time_s)} + {_t(time_s)} s "
                f"of travel from {before.place}"
            )
        metres, rides = table.length(before.place, leg.place), table.lift_rides(before.place, leg.place)
        if not _eq(leg.metres, metres):
            self.out.append(
                f"{at}: travels {leg.metres:.1f} m, the route from {before.place} is {metres:.1f} m"
            )
        if leg.lift_rides != rides:
            self.out.append(f"{at}: counts {leg.lift_rides} lift rides, the route has {rides}")
        return metres, rides

    def _duration(self, leg: Leg, reload: bool) -> float:
        t, n = self.timings, len(leg.parcels)
        kind = leg.kind
        if kind is LegKind.LOAD:
            return t.load_per_parcel_s * n + (t.reload_s if reload else 0.0)
        if kind is LegKind.DWELL:
            return t.stop_dwell_s + t.dwell_per_parcel_s * n
        if kind in (LegKind.HANDOFF, LegKind.MEET):
            return t.transfer_s + t.transfer_per_parcel_s * n
        if kind is LegKind.DELIVER:
            return t.deliver_s
        if kind in _REQUEST_KINDS:
            return t.collect_s
        return 0.0

    def _service(self, at: _At, reload: bool) -> None:
        leg = at.leg
        if not _le(leg.arrive_s, leg.start_s):
            self.out.append(f"{at}: starts at {_t(leg.start_s)}, before it arrives at {_t(leg.arrive_s)}")
        if not _le(leg.earliest_s, leg.start_s):
            self.out.append(f"{at}: starts at {_t(leg.start_s)}, before its earliest {_t(leg.earliest_s)}")
        if not _le(leg.start_s, leg.latest_s):
            self.out.append(f"{at}: starts at {_t(leg.start_s)}, after its latest {_t(leg.latest_s)}")
        duration = self._duration(leg, reload)
        if not _le(leg.start_s + duration, leg.end_s):
            self.out.append(
                f"{at}: ends at {_t(leg.end_s)}, before {_t(leg.start_s)} + {_t(duration)} s of service"
            )

    def _structure(self, at: _At) -> None:
        """Who may do what, and where."""
        leg, robot = at.leg, at.robot
        kind, cart = leg.kind, robot.kind is RobotKind.CART
        if leg.requests and kind not in _REQUEST_KINDS:
            self.out.append(f"{at}: a {kind.value} leg carries requests {', '.join(leg.requests)}")
        if leg.parcels and kind in _NO_PARCELS:
            self.out.append(f"{at}: a {kind.value} leg carries parcels {', '.join(leg.parcels)}")
        for parcel_id in leg.parcels:
            if parcel_id not in self.parcels:
                self.out.append(f"{at}: parcel {parcel_id} is not in the snapshot")
        for request_id in leg.requests:
            if request_id not in self.requests:
                self.out.append(f"{at}: request {request_id} is not in the snapshot")
        if kind is LegKind.LOAD and cart and leg.place != self.snap.station:
            self.out.append(f"{at}: a cart loads only at the station {self.snap.station}")
        elif kind is LegKind.LOAD and not cart and leg.place not in self.by_robot_place:
            self.out.append(f"{at}: an indoor robot loads only at a hand-off point")
        elif kind in (LegKind.DWELL, LegKind.HANDOFF) and not cart:
            self.out.append(f"{at}: only a cart does a {kind.value}")
        elif kind in (LegKind.MEET, LegKind.DELIVER, *_REQUEST_KINDS) and cart:
            self.out.append(f"{at}: a cart does no {kind.value}")
        elif kind is LegKind.RETURN and leg.place != robot.home:
            self.out.append(f"{at}: a return goes home to {robot.home}")
        elif kind is LegKind.CHARGE and leg.place not in self.chargers:
            self.out.append(f"{at}: {leg.place} is not a charger")
        if kind is LegKind.HANDOFF:
            self._handoff_leg(at)
        elif kind is LegKind.MEET and leg.place not in self.by_robot_place:
            self.out.append(f"{at}: an indoor robot meets a cart only at a hand-off point")

    def _handoff_leg(self, at: _At) -> None:
        leg = at.leg
        if leg.place not in self.by_cart_place:
            self.out.append(f"{at}: {leg.place} is not the cart side of any hand-off")
        wait = leg.start_s - leg.arrive_s
        if not _le(wait, self.timings.max_wait_s):
            self.out.append(
                f"{at}: the cart waits {_t(wait)} s for the indoor robot, "
                f"more than {_t(self.timings.max_wait_s)} s"
            )

    def _load(self, at: _At, before: Dims) -> Dims:
        """The counters after the leg; an overflow is reported where it starts, not on every later leg.

        A RETURN unloads whatever is left (reported if anything is), so the next trip starts empty.
        """
        leg = at.leg
        if leg.kind in _REQUEST_KINDS:
            sizes = [self.requests[r].size for r in leg.requests if r in self.requests]
        else:
            sizes = [self.parcels[p].size for p in leg.parcels if p in self.parcels]
        sign = 0
        if leg.kind in _ADDS or leg.kind is LegKind.COLLECT:
            sign = 1
        elif leg.kind in _REMOVES or leg.kind is LegKind.DROP:
            sign = -1
        load = add_dims(before, load_dims(sizes), sign) if sign else before
        capacity = at.robot.compartments.dims
        if min(load) < 0 <= min(before):
            self.out.append(f"{at}: unloads more than is on board (compartment counters {load})")
        elif not fits(load, capacity) and fits(before, capacity):
            self.out.append(f"{at}: load {load} does not fit the compartments {capacity}")
        if leg.load != load:
            self.out.append(f"{at}: says load {leg.load}, recomputed {load}")
        if leg.kind is LegKind.RETURN:
            if load != ZERO:
                self.out.append(f"{at}: returns with load {load}, not empty")
            return ZERO
        return load

    def _battery(self, at: _At, before: _State, metres: float, rides: int) -> tuple[float, bool]:
        """The level after the leg and whether the robot is under its reserve with that reported.

        Falling below the reserve is reported once, at the first leg that spends energy under it; a
        robot that is already below it may still drive straight to a CHARGE.
        """
        leg, battery = at.leg, at.robot.battery
        cost = battery.cost(metres, rides)
        level = before.level_wh - cost
        under = not _le(battery.reserve_wh, level)
        already_under = not _le(battery.reserve_wh, before.level_wh)
        excused = cost <= 0 or (already_under and leg.kind is LegKind.CHARGE)
        if under and not before.under_reported and not excused:
            self.out.append(
                f"{at}: battery falls to {level:.2f} Wh, below the reserve {battery.reserve_wh:.2f} Wh"
            )
        if leg.kind is LegKind.CHARGE:
            charged = battery.charge_w * max(0.0, leg.end_s - leg.start_s) / 3600
            level = min(battery.capacity_wh, level + charged)
        if not _eq(leg.level_wh, level):
            self.out.append(f"{at}: says battery {leg.level_wh:.2f} Wh, recomputed {level:.2f} Wh")
        reported = before.under_reported or (under and not excused)
        return level, reported and not _le(battery.reserve_wh, level)

    # --- hand-offs: each HANDOFF with its MEET ---------------------------------------------------

    def _pair_handoffs(self) -> None:
        meets: dict[tuple[str, str | None, str], list[_At]] = defaultdict(list)
        for at in self.meet_legs:
            meets[(at.robot.id, at.leg.partner, at.leg.place)].append(at)
        used: set[int] = set()
        for handoff in self.handoff_legs:
            meet = self._find_meet(handoff, meets)
            frozen = handoff.leg.released and (meet is None or meet.leg.released)
            if meet is None:
                if not frozen:
                    self.out.append(
                        f"{handoff}: no MEET of {handoff.leg.partner} at the hand-off point "
                        "with the same start and end"
                    )
                continue
            used.add(id(meet))
            self.paired[id(handoff)] = meet
            if not frozen and sorted(meet.leg.parcels) != sorted(handoff.leg.parcels):
                self.out.append(f"{meet}: hands over other parcels than {handoff}")
        for at in self.meet_legs:
            if id(at) not in used and not at.leg.released:
                self.out.append(f"{at}: no HANDOFF of {at.leg.partner} with the same start and end meets it")

    def _find_meet(self, handoff: _At, meets: Mapping[tuple[str, str | None, str], list[_At]]) -> _At | None:
        leg = handoff.leg
        if leg.partner is None:
            return None
        for spot in self.by_cart_place.get(leg.place, ()):
            partner = self.robots.get(leg.partner)
            if partner is None or partner.building != spot.building:
                continue
            for meet in meets.get((leg.partner, handoff.robot.id, spot.robot_place), ()):
                if _eq(meet.leg.start_s, leg.start_s) and _eq(meet.leg.end_s, leg.end_s):
                    return meet
        return None

    # --- parcels ---------------------------------------------------------------------------------

    def _parcel(self, parcel: Parcel) -> None:
        ats = self.parcel_at.get(parcel.id, [])
        if not self._planned_once_or_unplanned(f"parcel {parcel.id}", parcel.id, ats):
            return
        if parcel.destination in self.cart_places:
            self._dorm(parcel, ats)
        else:
            self._office(parcel, ats)

    def _planned_once_or_unplanned(self, what: str, key: str, ats: list[_At]) -> bool:
        """Whether ``what`` is planned (in legs) and not also unplanned; reports the other cases."""
        if key in self.plan.unplanned:
            if ats:
                self.out.append(f"{what} is unplanned ({self.plan.unplanned[key]}) yet in {ats[0]}")
            return False
        if not ats:
            self.out.append(f"{what} is neither planned nor unplanned")
        return bool(ats)

    def _by_kind(self, what: str, ats: Iterable[_At], wanted: Mapping[str, int]) -> dict[str, list[_At]]:
        """Group legs by role; report roles not seen exactly once and roles not wanted at all."""
        groups: dict[str, list[_At]] = defaultdict(list)
        for at in ats:
            groups[_role(at)].append(at)
        for role, ats_of_role in groups.items():
            if role not in wanted:
                self.out.append(f"{what} has no business in {ats_of_role[0]}")
        for role in wanted:
            count = len(groups.get(role, ()))
            if count != 1:
                self.out.append(f"{what} has {count} {role} legs, not one")
        return groups

    def _dorm(self, parcel: Parcel, ats: list[_At]) -> None:
        what = f"parcel {parcel.id}"
        groups = self._by_kind(what, ats, {"cart load": 1, "dwell": 1})
        if len(groups.get("cart load", ())) != 1 or len(groups.get("dwell", ())) != 1:
            return
        load, dwell = groups["cart load"][0], groups["dwell"][0]
        if not load.before_in_trip(dwell):
            self.out.append(f"{what}: its dwell {dwell} is not after its load {load} in the same trip")
        if dwell.leg.place != parcel.destination:
            self.out.append(f"{what}: goes to {parcel.destination}, not to {dwell}")
        self._cart_load(parcel, load)
        window = self.windows.get(load.leg.window) if load.leg.window is not None else None
        if window is None:
            self.out.append(f"{what}: its load {load} names no window of the snapshot")
        else:
            if not _le(window.start_s, dwell.leg.start_s):
                self.out.append(
                    f"{what}: {dwell} starts at {_t(dwell.leg.start_s)}, "
                    f"before window {window.id} opens at {_t(window.start_s)}"
                )
            if not _le(dwell.leg.end_s, window.end_s):
                self.out.append(
                    f"{what}: {dwell} ends at {_t(dwell.leg.end_s)}, "
                    f"after window {window.id} closes at {_t(window.end_s)}"
                )
        if not _le(dwell.leg.end_s, parcel.deadline_s):
            self.out.append(
                f"{what}: {dwell} ends at {_t(dwell.leg.end_s)}, after the deadline {_t(parcel.deadline_s)}"
            )

    def _cart_load(self, parcel: Parcel, load: _At) -> None:
        """A parcel's cart LOAD: after receipt, in one of its windows."""
        what, leg = f"parcel {parcel.id}", load.leg
        if not _le(parcel.received_s, leg.start_s):
            self.out.append(
                f"{what}: loaded at {_t(leg.start_s)}, before it is received at {_t(parcel.received_s)}"
            )
        if leg.window is not None and leg.window not in self.windows:
            self.out.append(f"{what}: {load} names window {leg.window}, not a window of the snapshot")
        elif parcel.windows and leg.window not in parcel.windows:
            self.out.append(
                f"{what}: goes out in window {leg.window}, not one of its windows {', '.join(parcel.windows)}"
            )

    def _buildings_reaching(self, place: str) -> frozenset[str]:
        """Buildings whose hand-off robot place reaches ``place`` for an indoor profile."""
        cached = self._buildings_cache.get(place)
        if cached is not None:
            return cached
        found = {
            handoff.building
            for handoff in self.snap.handoffs.values()
            if any(self.tables[p].reachable(handoff.robot_place, place) for p in self.indoor_profiles)
        }
        result = frozenset(found)
        self._buildings_cache[place] = result
        return result

    def _office(self, parcel: Parcel, ats: list[_At]) -> None:
        what = f"parcel {parcel.id}"
        roles = {"cart load": 1, "handoff": 1, "meet": 1, "indoor load": 1, "deliver": 1}
        groups = self._by_kind(what, ats, roles)
        if any(len(groups.get(role, ())) != 1 for role in roles):
            return
        load, handoff, meet = groups["cart load"][0], groups["handoff"][0], groups["meet"][0]
        indoor, deliver = groups["indoor load"][0], groups["deliver"][0]
        self._cart_load(parcel, load)
        buildings = self._buildings_reaching(parcel.destination)
        if not buildings:
            self.out.append(f"{what}: no hand-off point reaches its destination {parcel.destination}")
            return
        if not load.before_in_trip(handoff):
            self.out.append(f"{what}: its handoff {handoff} is not after its load {load} in the same trip")
        spot = next(
            (h for h in self.by_cart_place.get(handoff.leg.place, ()) if h.building in buildings), None
        )
        if spot is None:
            self.out.append(
                f"{what}: handed off at {handoff.leg.place}, "
                f"not at the stop of {', '.join(sorted(buildings))}"
            )
            return
        paired = self.paired.get(id(handoff))
        if paired is not None and paired is not meet:
            self.out.append(f"{what}: its meet {meet} is not the one paired with its handoff {handoff}")
        if indoor.robot.building != spot.building or indoor.leg.place != spot.robot_place:
            self.out.append(
                f"{what}: {indoor} is not a load by a robot of {spot.building} at {spot.robot_place}"
            )
        if not _le(handoff.leg.end_s, indoor.leg.start_s):
            self.out.append(
                f"{what}: {indoor} starts at {_t(indoor.leg.start_s)}, "
                f"before the handoff ends at {_t(handoff.leg.end_s)}"
            )
        if not indoor.before_in_trip(deliver):
            self.out.append(f"{what}: its delivery {deliver} is not after its load {indoor} in the same trip")
        if deliver.leg.place != parcel.destination:
            self.out.append(f"{what}: goes to {parcel.destination}, not to {deliver}")
        if not _le(deliver.leg.end_s, parcel.deadline_s):
            self.out.append(
                f"{what}: {deliver} ends at {_t(deliver.leg.end_s)}, "
                f"after the deadline {_t(parcel.deadline_s)}"
            )

    # --- requests --------------------------------------------------------------------------------

    def _request(self, request: Request) -> None:
        what = f"request {request.id}"
        ats = self.request_at.get(request.id, [])
        if not self._planned_once_or_unplanned(what, request.id, ats):
            return
        groups = self._by_kind(what, ats, {"collect": 1, "drop": 1})
        if len(groups.get("collect", ())) != 1 or len(groups.get("drop", ())) != 1:
            return
        collect, drop = groups["collect"][0], groups["drop"][0]
        if collect.robot.kind is RobotKind.CART:
            self.out.append(f"{what}: served by the cart {collect.robot.id}; carts never serve requests")
        if not collect.before_in_trip(drop):
            self.out.append(f"{what}: its drop {drop} is not after its collect {collect} in the same trip")
        if request.kind is RequestKind.PICKUP:
            self._at_place_within(what, collect, request.place, request)
            if drop.leg.place != drop.robot.home:
                self.out.append(f"{what}: a pickup is dropped at home {drop.robot.home}, not in {drop}")
        else:
            if collect.leg.place != request.origin:
                self.out.append(f"{what}: collected at {request.origin}, not in {collect}")
            if not _le(request.created_s, collect.leg.start_s):
                self.out.append(
                    f"{what}: {collect} starts at {_t(collect.leg.start_s)}, "
                    f"before the order at {_t(request.created_s)}"
                )
            self._at_place_within(what, drop, request.place, request)

    def _at_place_within(self, what: str, at: _At, place: str, request: Request) -> None:
        if at.leg.place != place:
            self.out.append(f"{what}: is at {place}, not in {at}")
        start = at.leg.start_s
        if not (_le(request.earliest_s, start) and _le(start, request.latest_s)):
            self.out.append(
                f"{what}: {at} starts at {_t(start)}, outside the promise "
                f"{_t(request.earliest_s)}..{_t(request.latest_s)}"
            )

    def _unplanned(self) -> None:
        for item, reason in self.plan.unplanned.items():
            if item not in self.parcels and item not in self.requests:
                self.out.append(f"{item}: unplanned, but not a parcel or request of the snapshot")
            elif not reason.strip():
                self.out.append(f"{item}: unplanned without a reason")


def _role(at: _At) -> str:
    """A leg's role for the parcels and requests it carries."""
    kind = at.leg.kind
    if kind is LegKind.LOAD:
        return "cart load" if at.robot.kind is RobotKind.CART else "indoor load"
    return kind.value
