"""A seeded campus day for the dispatcher's benchmark and tests: robots, windows, parcels, requests.

``campus_day(site, seed=0, parcels=2000, windows=4, carts=3, indoor=6, requests=300)`` builds, from a
``maps`` site such as ``maps/campuses/neijiang.yaml``, the ``Snapshot`` of a morning at 06:00 (robots
at home, every parcel of the day with its receipt time, no request yet) and the day's mini-program
requests (``CampusDay.requests``, by ``created_s``: the online events; ``with_requests(t)`` is the
snapshot with those created by ``t``). The same seed gives the same day. Times are seconds since
midnight. Figures (from ``../shared/SCENARIO.md`` where it has them):

==================  ===========================================================================
robots              free at 06:00 (``DAY_START_S``) at home
carts               ``cart_1..``, profile ``cart``, home the station; 30 S + 15 M + 5 L compartments
                    (~50 parcels a trip); battery 2 kWh, reserve 15 % (300 Wh), 20 Wh/km
                    (0.02 Wh/m: ~85 km above the reserve), 1 kW charger, go charging below 30 %;
                    level at 06:00 drawn in 90–100 %
indoor robots       ``indoor_<building>_<k>``, profile ``indoor``, spread evenly over the
                    buildings with a hand-off point, home its ``robot_place`` (the mailroom);
                    4 S + 2 M + 1 L; battery 500 Wh, reserve 15 %, 10 Wh/km, 0.5 Wh a lift ride
                    (about a minute of waiting and riding at ~30 W), 200 W charger, charging below
                    30 %; level drawn in 80–100 %
windows             w1 07:30–08:30, w2 12:00–13:30, w3 17:00–18:30, w4 21:00–22:00 (around the
                    students' timetable); ``windows=n`` keeps the last n (every parcel still has one);
                    ``window_times`` replaces them (what-if scenarios of ``sim.day``)
parcels             received from the morning van at 06:30 (55 %) or the afternoon van at 15:30;
                    eligible windows: those starting after receipt; sizes 70 % S, 22 % M, 8 % L;
                    28 % to offices and rooms of buildings with a hand-off point (uniform over the
                    places), the rest to the dorm stops (stops that are not a hand-off's cart side;
                    the activity centre's stop half as likely as a dorm's); deadline: end of the
                    last window for dorm parcels, 18:30 (offices close) for office parcels whose
                    first eligible window opens before then, else the end of the last window
requests            created uniformly over 08:00–18:00; 70 % PICKUP at an office door (size 60 % S,
                    30 % M, 10 % L) promised in a 30-min window starting 10 min after the order;
                    30 % COFFEE (size S) from the building's coffee counter to an office door,
                    within 20 min of the order. The counter is on the ground floor of the door's
                    building (indoor robots never go outside): ``COFFEE_COUNTERS`` names it
                    (neijiang: ADM's reception, TEA's room 101), otherwise the building's
                    lowest-floor room or office first by name.
==================  ===========================================================================

Places a profile cannot reach both ways (station ↔ stop for a cart, mailroom ↔ door for an indoor
robot) are left out, so every generated destination can be served.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from maps.model import Place, PlaceKind, Site
from orchestrator.dispatch.campus import (
    Handoff,
    Parcel,
    Request,
    RequestKind,
    Robot,
    RobotKind,
    Size,
    Snapshot,
    Window,
)
from orchestrator.dispatch.travel import TravelTable
from orchestrator.operations.setup import (
    CART_COMPARTMENTS,
    INDOOR_COMPARTMENTS,
    OFFICE_CLOSE_S,
    cart_battery,
    indoor_battery,
)

HOUR = 3600.0
DAY_START_S = 6 * HOUR
MORNING_VAN_S = 6.5 * HOUR
AFTERNOON_VAN_S = 15.5 * HOUR
MORNING_SHARE = 0.55
OFFICE_SHARE = 0.28
ACTIVITY_CENTRE_WEIGHT = 0.5
WINDOWS = (
    Window("w1", 7.5 * HOUR, 8.5 * HOUR),
    Window("w2", 12 * HOUR, 13.5 * HOUR),
    Window("w3", 17 * HOUR, 18.5 * HOUR),
    Window("w4", 21 * HOUR, 22 * HOUR),
)
PARCEL_SIZES = ((Size.S, 0.70), (Size.M, 0.22), (Size.L, 0.08))
PICKUP_SIZES = ((Size.S, 0.60), (Size.M, 0.30), (Size.L, 0.10))
REQUESTS_FROM_S, REQUESTS_TO_S = 8 * HOUR, 18 * HOUR
PICKUP_SHARE = 0.70
PICKUP_LEAD_S, PICKUP_WINDOW_S = 600.0, 1800.0
COFFEE_DEADLINE_S = 1200.0
COFFEE_COUNTERS: Mapping[str, str] = {"ADM": "adm_reception", "TEA": "tea_101"}


@dataclass(frozen=True)
class CampusDay:
    """A generated day: the 06:00 snapshot (no requests yet) and the requests in order of creation."""

    snapshot: Snapshot
    requests: tuple[Request, ...]
    seed: int

    def with_requests(self, until_s: float = math.inf) -> Snapshot:
        """The snapshot with the requests created by ``until_s`` (default: all of the day's)."""
        return dataclasses.replace(
            self.snapshot, requests=tuple(r for r in self.requests if r.created_s <= until_s)
        )


@dataclass(frozen=True)
class _Places:
    """The places of a site the day is drawn from."""

    station: str
    dorm_stops: tuple[str, ...]
    handoffs: dict[str, Handoff]
    doors: dict[str, tuple[str, ...]]  # building -> offices and rooms (parcel destinations)
    offices: dict[str, tuple[str, ...]]  # building -> offices (request doors)
    counters: dict[str, str]  # building -> coffee counter
    chargers: tuple[str, ...]


def campus_day(
    site: Site,
    *,
    seed: int = 0,
    parcels: int = 2000,
    windows: int = 4,
    carts: int = 3,
    indoor: int = 6,
    requests: int = 300,
    window_times: Sequence[Window] | None = None,
) -> CampusDay:
    """The campus day of ``seed`` on ``site`` (see the module docstring for every figure).

    ``window_times`` replaces the four default windows (then ``windows`` is ignored): what-if
    scenarios with other window times; a parcel's eligible windows are those starting after its van.

    Raises ``ValueError`` for negative counts, ``windows`` outside 1..4, custom windows that overlap,
    that no van's parcels can use or that are not in time order, or a site without a station, a dorm
    stop or a building with a hand-off point and offices.
    """
    for name, value in (("parcels", parcels), ("carts", carts), ("indoor", indoor), ("requests", requests)):
        if value < 0:
            raise ValueError(f"{name} must be >= 0, got {value}")
    if not 1 <= windows <= len(WINDOWS):
        raise ValueError(f"windows must be within 1..{len(WINDOWS)}, got {windows}")
    rng = random.Random(seed)
    places = _places(site)
    day_windows = WINDOWS[len(WINDOWS) - windows :] if window_times is None else _check_windows(window_times)
    robots = _robots(places, carts, indoor, rng)
    snapshot = Snapshot(
        robots=robots,
        windows=day_windows,
        parcels=_parcels(places, day_windows, parcels, rng),
        station=places.station,
        handoffs=places.handoffs,
        chargers=places.chargers,
    )
    return CampusDay(snapshot, _requests(places, requests, rng), seed)


def _check_windows(windows: Sequence[Window]) -> tuple[Window, ...]:
    if not windows:
        raise ValueError("window_times must list at least one window")
    for a, b in itertools.pairwise(windows):
        if b.start_s < a.end_s:
            raise ValueError(f"windows {a.id} and {b.id} overlap or are not in time order")
    if len({w.id for w in windows}) != len(windows):
        raise ValueError("window ids must be unique")
    if windows[-1].start_s <= AFTERNOON_VAN_S:
        raise ValueError("the last window must start after the afternoon van (15:30)")
    return tuple(windows)


def _places(site: Site) -> _Places:
    by_kind: dict[PlaceKind, list[Place]] = {}
    for place in sorted(site.places.values(), key=lambda p: p.name):
        by_kind.setdefault(place.kind, []).append(place)
    stations = by_kind.get(PlaceKind.STATION, [])
    if not stations:
        raise ValueError(f"site {site.name} has no station place")
    station = stations[0].name
    handoffs = _handoffs(site, by_kind)
    cart_sides = {h.cart_place for h in handoffs.values()}
    stops = [p.name for p in by_kind.get(PlaceKind.STOP, []) if p.name not in cart_sides]
    cart = TravelTable.from_site(site, "cart", places=[station, *stops, *cart_sides])
    dorm_stops = tuple(s for s in stops if _both_ways(cart, station, s))
    handoffs = {b: h for b, h in handoffs.items() if _both_ways(cart, station, h.cart_place)}
    if not dorm_stops:
        raise ValueError(f"site {site.name} has no dorm stop a cart reaches from {station}")
    doors, offices, counters = _doors(site, handoffs)
    handoffs = {b: h for b, h in handoffs.items() if b in doors}
    if not handoffs:
        raise ValueError(f"site {site.name} has no building with a hand-off point and offices")
    chargers = tuple(p.name for p in by_kind.get(PlaceKind.CHARGER, []))
    return _Places(station, dorm_stops, handoffs, doors, offices, counters, chargers)


def _handoffs(site: Site, by_kind: Mapping[PlaceKind, list[Place]]) -> dict[str, Handoff]:
    """Per building: the stop that serves it (cart side) and its hand-off place (robot side)."""
    stops = by_kind.get(PlaceKind.STOP, [])
    result: dict[str, Handoff] = {}
    for place in by_kind.get(PlaceKind.HANDOFF, []):
        building = place.tags.get("building") or site.building_of(place.node)
        stop = next((s.name for s in stops if s.tags.get("serves") == building), None)
        if building is not None and stop is not None and building not in result:
            result[building] = Handoff(building, stop, place.name)
    return result


def _doors(
    site: Site, handoffs: Mapping[str, Handoff]
) -> tuple[dict[str, tuple[str, ...]], dict[str, tuple[str, ...]], dict[str, str]]:
    """Per building: parcel destinations, request doors and the coffee counter, all reachable."""
    doors: dict[str, tuple[str, ...]] = {}
    offices: dict[str, tuple[str, ...]] = {}
    counters: dict[str, str] = {}
    for building, handoff in handoffs.items():
        inside = sorted(
            (p for p in site.places.values() if p.kind in (PlaceKind.OFFICE, PlaceKind.ROOM)),
            key=lambda p: p.name,
        )
        inside = [p for p in inside if site.building_of(p.node) == building]
        table = TravelTable.from_site(site, "indoor", places=[handoff.robot_place, *(p.name for p in inside)])
        reachable = [p for p in inside if _both_ways(table, handoff.robot_place, p.name)]
        counter = _counter(site, building, reachable)
        if counter is None:
            continue
        counters[building] = counter
        doors[building] = tuple(p.name for p in reachable if p.name != counter)
        offices[building] = tuple(
            p.name for p in reachable if p.kind is PlaceKind.OFFICE and p.name != counter
        )
        if not offices[building]:
            offices[building] = doors[building]
        if not doors[building]:
            del doors[building], offices[building], counters[building]
    return doors, offices, counters


def _counter(site: Site, building: str, reachable: Sequence[Place]) -> str | None:
    named = COFFEE_COUNTERS.get(building)
    if named is not None and any(p.name == named for p in reachable):
        return named
    if not reachable:
        return None

    def elevation(place: Place) -> float:
        floor = site.nodes[place.node].floor
        return 0.0 if floor is None else site.floors[floor].elevation

    return min(reachable, key=lambda p: (elevation(p), p.name)).name


def _both_ways(table: TravelTable, a: str, b: str) -> bool:
    return table.reachable(a, b) and table.reachable(b, a)


def _robots(places: _Places, carts: int, indoor: int, rng: random.Random) -> tuple[Robot, ...]:
    robots = [
        Robot(
            f"cart_{k}",
            RobotKind.CART,
            "cart",
            CART_COMPARTMENTS,
            places.station,
            places.station,
            cart_battery(level_share=round(rng.uniform(0.9, 1.0), 3)),
            available_s=DAY_START_S,
        )
        for k in range(1, carts + 1)
    ]
    buildings = sorted(places.handoffs)
    for b, building in enumerate(buildings):
        home = places.handoffs[building].robot_place
        for k in range(indoor // len(buildings) + int(b < indoor % len(buildings))):
            robots.append(
                Robot(
                    f"indoor_{building.lower()}_{k + 1}",
                    RobotKind.INDOOR,
                    "indoor",
                    INDOOR_COMPARTMENTS,
                    home,
                    home,
                    indoor_battery(level_share=round(rng.uniform(0.8, 1.0), 3)),
                    available_s=DAY_START_S,
                    building=building,
                )
            )
    return tuple(robots)


def _size(rng: random.Random, shares: Sequence[tuple[Size, float]]) -> Size:
    return rng.choices([s for s, _ in shares], weights=[w for _, w in shares])[0]


def _parcels(
    places: _Places, windows: Sequence[Window], count: int, rng: random.Random
) -> tuple[Parcel, ...]:
    stops = list(places.dorm_stops)
    stop_weights = [ACTIVITY_CENTRE_WEIGHT if "activity" in s else 1.0 for s in stops]
    doors = [door for building in sorted(places.doors) for door in places.doors[building]]
    last_end = windows[-1].end_s
    parcels = []
    for i in range(count):
        received = MORNING_VAN_S if rng.random() < MORNING_SHARE else AFTERNOON_VAN_S
        eligible = [w for w in windows if w.start_s > received]
        office = rng.random() < OFFICE_SHARE
        if office:
            destination = rng.choice(doors)
            deadline = OFFICE_CLOSE_S if eligible[0].start_s < OFFICE_CLOSE_S else last_end
        else:
            destination = rng.choices(stops, weights=stop_weights)[0]
            deadline = last_end
        parcels.append(
            Parcel(
                f"p{i:05d}",
                _size(rng, PARCEL_SIZES),
                destination,
                tuple(w.id for w in eligible),
                deadline_s=deadline,
                received_s=received,
            )
        )
    return tuple(sorted(parcels, key=lambda p: (p.received_s, p.id)))


def _requests(places: _Places, count: int, rng: random.Random) -> tuple[Request, ...]:
    buildings = sorted(places.offices)
    weights = [len(places.offices[b]) for b in buildings]
    created = sorted(round(rng.uniform(REQUESTS_FROM_S, REQUESTS_TO_S), 1) for _ in range(count))
    result = []
    for i, created_s in enumerate(created):
        building = rng.choices(buildings, weights=weights)[0]
        door = rng.choice(places.offices[building])
        if rng.random() < PICKUP_SHARE:
            earliest = created_s + PICKUP_LEAD_S
            request = Request(
                f"q{i:04d}",
                RequestKind.PICKUP,
                door,
                earliest,
                earliest + PICKUP_WINDOW_S,
                _size(rng, PICKUP_SIZES),
                created_s=created_s,
            )
        else:
            request = Request(
                f"q{i:04d}",
                RequestKind.COFFEE,
                door,
                created_s,
                created_s + COFFEE_DEADLINE_S,
                Size.S,
                origin=places.counters[building],
                created_s=created_s,
            )
        result.append(request)
    return tuple(result)
