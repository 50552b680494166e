"""The independent plan checker on a hand-built valid plan of the neijiang campus and one mutation per rule.

The valid plan (times, metres and lift rides from the travel tables, durations from ``Timings``):

- ``cart_1``, window w1: LOAD d1 d2 o1 o2 at the station → DWELL d1 at stop_dorm_1 → DWELL d2 at
  stop_dorm_2 → HANDOFF o1 o2 at stop_adm (to adm_bot) → RETURN; a second w1 trip (reload): LOAD d3 →
  DWELL d3 at stop_dorm_3 → RETURN; then CHARGE for an hour (capped at the capacity).
- ``adm_bot``: MEET o1 o2 at adm_mailroom (same start and end as the HANDOFF) → LOAD → DELIVER o1 at
  adm_301 (a lift ride) → DELIVER o2 at adm_101 → RETURN; pickup k1: COLLECT at adm_201 → DROP at home →
  RETURN; coffee k2: COLLECT at adm_reception → DROP at adm_402 → RETURN; CHARGE.
- ``tea_bot`` idle; parcel u1 unplanned with a reason.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from maps.io import load_map
from orchestrator.dispatch.campus import (
    INF,
    ZERO,
    Battery,
    Compartments,
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
    Size,
    Snapshot,
    Timings,
    Window,
    add_dims,
    load_dims,
)
from orchestrator.dispatch.travel import TravelBook, TravelTable
from orchestrator.dispatch.validate import validate

CAMPUS = Path(__file__).resolve().parents[3] / "maps" / "campuses" / "neijiang.yaml"
T = Timings()
W1 = Window("w1", 27_000.0, 32_400.0)  # 07:30-09:00
W2 = Window("w2", 43_200.0, 48_600.0)  # 12:00-13:30
VAN = 23_400.0  # 06:30

# leg indices of the valid plan
C_LOAD, C_DWELL1, C_DWELL2, C_HANDOFF, C_RETURN1, C_LOAD2, C_DWELL3, C_RETURN2, C_CHARGE = range(9)
(
    A_MEET,
    A_LOAD,
    A_DELIVER1,
    A_DELIVER2,
    A_RETURN1,
    A_COLLECT1,
    A_DROP1,
    A_RETURN2,
    A_COLLECT2,
    A_DROP2,
    A_RETURN3,
    A_CHARGE,
) = range(12)

_ADD = {LegKind.LOAD, LegKind.COLLECT}
_REMOVE = {LegKind.DWELL, LegKind.HANDOFF, LegKind.DELIVER, LegKind.DROP}


class Route:
    """Builds one robot's legs by hand: earliest arrival from the table, durations given by the test."""

    def __init__(
        self, robot: Robot, table: TravelTable, sizes: Mapping[str, Size], after: Leg | None = None
    ) -> None:
        self.robot, self.table, self.sizes = robot, table, sizes
        self.place = robot.position if after is None else after.place
        self.time_s = robot.available_s if after is None else after.end_s
        self.level = robot.battery.level_wh if after is None else after.level_wh
        self.load: Dims = ZERO if after is None else after.load
        self.legs: list[Leg] = []

    def go(
        self,
        kind: LegKind,
        place: str,
        duration: float = 0.0,
        *,
        parcels: tuple[str, ...] = (),
        requests: tuple[str, ...] = (),
        window: str | None = None,
        partner: str | None = None,
        earliest: float = 0.0,
        latest: float = INF,
        start: float | None = None,
    ) -> Leg:
        arrive = self.time_s + self.table.time(self.place, place)
        start_s = max(arrive, earliest) if start is None else start
        metres, rides = self.table.length(self.place, place), self.table.lift_rides(self.place, place)
        battery = self.robot.battery
        self.level -= battery.cost(metres, rides)
        if kind is LegKind.CHARGE:
            self.level = min(battery.capacity_wh, self.level + battery.charge_w * duration / 3600)
        sign = 1 if kind in _ADD else -1 if kind in _REMOVE else 0
        self.load = add_dims(self.load, load_dims(self.sizes[i] for i in (*parcels, *requests)), sign)
        leg = Leg(
            self.robot.id,
            kind,
            place,
            arrive,
            start_s,
            start_s + duration,
            earliest,
            latest,
            parcels,
            requests,
            window,
            self.load,
            self.level,
            metres,
            rides,
            partner=partner,
        )
        self.legs.append(leg)
        self.place, self.time_s = place, leg.end_s
        return leg


def _robots() -> tuple[Robot, ...]:
    cart_battery = Battery(2000.0, 1500.0, 300.0, per_m_wh=0.02, charge_w=1000.0)
    indoor_battery = Battery(500.0, 400.0, 75.0, per_m_wh=0.01, per_lift_wh=1.0, charge_w=200.0)
    return (
        Robot(
            "cart_1",
            RobotKind.CART,
            "cart",
            Compartments(2, 1, 1),
            "post_station",
            "post_station",
            cart_battery,
            available_s=25_000.0,
        ),
        Robot(
            "adm_bot",
            RobotKind.INDOOR,
            "indoor",
            Compartments(2, 1, 0),
            "adm_mailroom",
            "adm_mailroom",
            indoor_battery,
            available_s=25_000.0,
            building="ADM",
        ),
        Robot(
            "tea_bot",
            RobotKind.INDOOR,
            "indoor",
            Compartments(2, 1, 0),
            "tea_handoff",
            "tea_handoff",
            indoor_battery,
            available_s=25_000.0,
            building="TEA",
        ),
    )


def _snapshot() -> Snapshot:
    parcels = (
        Parcel("d1", Size.S, "stop_dorm_1", ("w1",), received_s=VAN),
        Parcel("d2", Size.M, "stop_dorm_2", ("w1", "w2"), received_s=VAN),
        Parcel("d3", Size.S, "stop_dorm_3", ("w1",), received_s=VAN),
        Parcel("o1", Size.S, "adm_301", ("w1",), deadline_s=36_000.0, received_s=VAN),
        Parcel("o2", Size.M, "adm_101", received_s=VAN),
        Parcel("u1", Size.S, "tea_101", received_s=VAN),
    )
    requests = (
        Request("k1", RequestKind.PICKUP, "adm_201", 30_000.0, 31_800.0, Size.M, created_s=29_400.0),
        Request(
            "k2",
            RequestKind.COFFEE,
            "adm_402",
            31_000.0,
            32_200.0,
            origin="adm_reception",
            created_s=31_000.0,
        ),
    )
    handoffs = {
        "ADM": Handoff("ADM", "stop_adm", "adm_mailroom"),
        "TEA": Handoff("TEA", "stop_tea", "tea_handoff"),
    }
    return Snapshot(
        _robots(),
        (W1, W2),
        parcels,
        requests,
        handoffs=handoffs,
        chargers=("cart_charger_1", "adm_charger", "tea_charger"),
        timings=T,
    )


def _sizes(snapshot: Snapshot) -> dict[str, Size]:
    return {**{p.id: p.size for p in snapshot.parcels}, **{r.id: r.size for r in snapshot.requests}}


def _cart_legs(snapshot: Snapshot, table: TravelTable) -> list[Leg]:
    route = Route(snapshot.robot("cart_1"), table, _sizes(snapshot))
    first = ("d1", "d2", "o1", "o2")
    route.go(
        LegKind.LOAD, "post_station", 4 * T.load_per_parcel_s, parcels=first, window="w1", start=25_500.0
    )
    dwell = T.stop_dwell_s + T.dwell_per_parcel_s
    route.go(LegKind.DWELL, "stop_dorm_1", dwell, parcels=("d1",), earliest=W1.start_s, latest=W1.end_s)
    route.go(LegKind.DWELL, "stop_dorm_2", dwell, parcels=("d2",), earliest=W1.start_s, latest=W1.end_s)
    handoff = T.transfer_s + 2 * T.transfer_per_parcel_s
    route.go(LegKind.HANDOFF, "stop_adm", handoff, parcels=("o1", "o2"), partner="adm_bot")
    route.go(LegKind.RETURN, "post_station")
    reload = T.load_per_parcel_s + T.reload_s
    route.go(LegKind.LOAD, "post_station", reload, parcels=("d3",), window="w1")
    route.go(LegKind.DWELL, "stop_dorm_3", dwell, parcels=("d3",), earliest=W1.start_s, latest=W1.end_s)
    route.go(LegKind.RETURN, "post_station")
    route.go(LegKind.CHARGE, "cart_charger_1", 3600.0)
    return route.legs


def _indoor_legs(snapshot: Snapshot, table: TravelTable, handoff: Leg) -> list[Leg]:
    route = Route(snapshot.robot("adm_bot"), table, _sizes(snapshot))
    both = ("o1", "o2")
    route.go(
        LegKind.MEET,
        "adm_mailroom",
        handoff.end_s - handoff.start_s,
        parcels=both,
        partner="cart_1",
        start=handoff.start_s,
    )
    route.go(LegKind.LOAD, "adm_mailroom", 2 * T.load_per_parcel_s, parcels=both)
    route.go(LegKind.DELIVER, "adm_301", T.deliver_s, parcels=("o1",))
    route.go(LegKind.DELIVER, "adm_101", T.deliver_s, parcels=("o2",))
    route.go(LegKind.RETURN, "adm_mailroom")
    k1, k2 = snapshot.requests
    route.go(
        LegKind.COLLECT, "adm_201", T.collect_s, requests=("k1",), earliest=k1.earliest_s, latest=k1.latest_s
    )
    route.go(LegKind.DROP, "adm_mailroom", T.collect_s, requests=("k1",))
    route.go(LegKind.RETURN, "adm_mailroom")
    route.go(LegKind.COLLECT, "adm_reception", T.collect_s, requests=("k2",), earliest=k2.created_s)
    route.go(
        LegKind.DROP, "adm_402", T.collect_s, requests=("k2",), earliest=k2.earliest_s, latest=k2.latest_s
    )
    route.go(LegKind.RETURN, "adm_mailroom")
    route.go(LegKind.CHARGE, "adm_charger", 600.0)
    return route.legs


@pytest.fixture(scope="module")
def tables() -> dict[str, TravelTable]:
    book = TravelBook(load_map(CAMPUS))
    return {"cart": book.table("cart"), "indoor": book.table("indoor")}


@pytest.fixture(scope="module")
def base(tables: dict[str, TravelTable]) -> tuple[Plan, Snapshot]:
    snapshot = _snapshot()
    cart = _cart_legs(snapshot, tables["cart"])
    indoor = _indoor_legs(snapshot, tables["indoor"], cart[C_HANDOFF])
    plan = Plan(25_000.0, {"cart_1": cart, "adm_bot": indoor}, {"u1": "no TEA robot is free"})
    return plan, snapshot


# --- mutation helpers ------------------------------------------------------------------------------

Case = tuple[Plan, Snapshot]


def leg(plan: Plan, robot: str, index: int) -> Leg:
    return plan.legs[robot][index]


def with_leg(case: Case, robot: str, index: int, /, **changes: object) -> Case:
    plan, snapshot = case
    legs = {k: list(v) for k, v in plan.legs.items()}
    legs[robot][index] = dataclasses.replace(legs[robot][index], **changes)
    return Plan(plan.created_s, legs, plan.unplanned), snapshot


def with_legs(case: Case, robot: str, legs: Iterable[Leg]) -> Case:
    plan, snapshot = case
    return Plan(plan.created_s, {**plan.legs, robot: tuple(legs)}, plan.unplanned), snapshot


def with_unplanned(case: Case, unplanned: Mapping[str, str]) -> Case:
    plan, snapshot = case
    return Plan(plan.created_s, plan.legs, unplanned), snapshot


def with_snapshot(case: Case, **changes: object) -> Case:
    plan, snapshot = case
    return plan, dataclasses.replace(snapshot, **changes)


def with_parcel(case: Case, parcel_id: str, **changes: object) -> Case:
    parcels = tuple(dataclasses.replace(p, **changes) if p.id == parcel_id else p for p in case[1].parcels)
    return with_snapshot(case, parcels=parcels)


def with_request(case: Case, request_id: str, **changes: object) -> Case:
    requests = tuple(dataclasses.replace(r, **changes) if r.id == request_id else r for r in case[1].requests)
    return with_snapshot(case, requests=requests)


def with_robot(case: Case, robot_id: str, **changes: object) -> Case:
    robots = tuple(dataclasses.replace(r, **changes) if r.id == robot_id else r for r in case[1].robots)
    return with_snapshot(case, robots=robots)


def with_window(case: Case, window: Window) -> Case:
    return with_snapshot(case, windows=tuple(window if w.id == window.id else w for w in case[1].windows))


def swapped(case: Case, robot: str, i: int, j: int) -> Case:
    legs = list(case[0].legs[robot])
    legs[i], legs[j] = legs[j], legs[i]
    return with_legs(case, robot, legs)


def cart_serves_a_request(case: Case, tables: Mapping[str, TravelTable]) -> Case:
    """A pickup at the library (outdoor) collected by the cart and dropped at the station."""
    request = Request("k3", RequestKind.PICKUP, "library", 0.0, INF)
    case = with_snapshot(case, requests=(*case[1].requests, request))
    plan, snapshot = case
    cart = plan.legs["cart_1"]
    route = Route(snapshot.robot("cart_1"), tables["cart"], {"k3": Size.S}, after=cart[-1])
    route.go(LegKind.COLLECT, "library", T.collect_s, requests=("k3",))
    route.go(LegKind.DROP, "post_station", T.collect_s, requests=("k3",))
    return with_legs(case, "cart_1", (*cart, *route.legs))


def return_between_collect_and_drop(case: Case) -> Case:
    legs = list(case[0].legs["adm_bot"])
    drop, back = legs[A_DROP1], legs[A_RETURN2]
    legs[A_DROP1] = dataclasses.replace(
        back, arrive_s=drop.arrive_s, start_s=drop.arrive_s, end_s=drop.arrive_s
    )
    legs[A_RETURN2] = dataclasses.replace(drop, arrive_s=drop.arrive_s, metres=0.0, lift_rides=0)
    return with_legs(case, "adm_bot", legs)


def dwell_in_another_trip(case: Case) -> Case:
    """d3 goes on the first trip's LOAD but still dwells on the second trip."""
    first = leg(case[0], "cart_1", C_LOAD)
    case = with_leg(case, "cart_1", C_LOAD, parcels=(*first.parcels, "d3"))
    return with_leg(case, "cart_1", C_LOAD2, parcels=())


Mutation = Callable[[Case, Mapping[str, TravelTable]], Case]


def _m(fn: Callable[[Case], Case]) -> Mutation:
    return lambda case, _tables: fn(case)


MUTATIONS: dict[str, tuple[Mutation, str]] = {
    # order and release
    "plan for a robot not in the snapshot": (
        _m(lambda c: with_legs(c, "ghost", [dataclasses.replace(leg(c[0], "cart_1", 0), robot="ghost")])),
        "ghost: not a robot of the snapshot",
    ),
    "leg names another robot": (_m(lambda c: with_leg(c, "cart_1", C_DWELL1, robot="x")), "names robot x"),
    "legs out of time order": (_m(lambda c: swapped(c, "adm_bot", A_DELIVER1, A_DELIVER2)), "of travel from"),
    "first leg before the robot is available": (
        _m(lambda c: with_robot(c, "cart_1", available_s=26_600.0)),
        "cart_1 leg 0 (load at post_station): arrives at 25000.00, before 26600.00",
    ),
    "offline robot gets new legs": (_m(lambda c: with_robot(c, "cart_1", online=False)), "cart_1: offline"),
    # travel
    "arrives too early": (
        _m(lambda c: with_leg(c, "cart_1", C_DWELL2, arrive_s=leg(c[0], "cart_1", C_DWELL2).arrive_s - 1)),
        "cart_1 leg 2 (dwell at stop_dorm_2): arrives at",
    ),
    "place the profile cannot reach": (
        _m(lambda c: with_leg(c, "cart_1", C_CHARGE, place="adm_charger")),
        "adm_charger cannot be reached from post_station by cart",
    ),
    "wrong metres": (
        _m(lambda c: with_leg(c, "cart_1", C_DWELL1, metres=leg(c[0], "cart_1", C_DWELL1).metres + 5)),
        "cart_1 leg 1 (dwell at stop_dorm_1): travels",
    ),
    "wrong lift rides": (
        _m(lambda c: with_leg(c, "adm_bot", A_DELIVER1, lift_rides=0)),
        "adm_bot leg 2 (deliver at adm_301): counts 0 lift rides, the route has 1",
    ),
    # service
    "starts before it arrives": (
        _m(lambda c: with_leg(c, "adm_bot", A_LOAD, start_s=leg(c[0], "adm_bot", A_LOAD).arrive_s - 5)),
        "adm_bot leg 1 (load at adm_mailroom): starts at",
    ),
    "starts before its earliest": (
        _m(lambda c: with_leg(c, "cart_1", C_DWELL1, earliest_s=W1.start_s + 10)),
        "before its earliest",
    ),
    "starts after its latest": (
        _m(lambda c: with_leg(c, "cart_1", C_DWELL1, latest_s=W1.start_s - 10)),
        "after its latest",
    ),
    "dwell shorter than per-parcel time": (
        _m(
            lambda c: with_leg(
                c, "cart_1", C_DWELL1, end_s=leg(c[0], "cart_1", C_DWELL1).start_s + T.stop_dwell_s
            )
        ),
        "cart_1 leg 1 (dwell at stop_dorm_1): ends at",
    ),
    "second trip of a window without reload time": (
        _m(lambda c: with_leg(c, "cart_1", C_LOAD2, end_s=leg(c[0], "cart_1", C_LOAD2).start_s + 6)),
        "cart_1 leg 5 (load at post_station): ends at",
    ),
    "deliver too short": (
        _m(lambda c: with_leg(c, "adm_bot", A_DELIVER1, end_s=leg(c[0], "adm_bot", A_DELIVER1).start_s + 1)),
        "adm_bot leg 2 (deliver at adm_301): ends at",
    ),
    # who does what, where
    "cart loads away from the station": (
        _m(lambda c: with_snapshot(c, station="cart_parking_1")),
        "a cart loads only at the station",
    ),
    "return away from home": (
        _m(lambda c: with_robot(c, "cart_1", home="cart_parking_1")),
        "a return goes home to cart_parking_1",
    ),
    "charge away from a charger": (_m(lambda c: with_snapshot(c, chargers=())), "is not a charger"),
    "dwell by an indoor robot": (
        _m(lambda c: with_robot(c, "cart_1", kind=RobotKind.INDOOR)),
        "only a cart does a dwell",
    ),
    "handoff away from a hand-off stop": (
        _m(lambda c: with_snapshot(c, handoffs={"TEA": c[1].handoffs["TEA"]})),
        "stop_adm is not the cart side of any hand-off",
    ),
    "cart waits too long for the indoor robot": (
        _m(lambda c: with_leg(c, "cart_1", C_HANDOFF, arrive_s=leg(c[0], "cart_1", C_HANDOFF).start_s - 200)),
        "the cart waits 200.00 s for the indoor robot",
    ),
    # load
    "wrong load counters": (
        _m(lambda c: with_leg(c, "cart_1", C_DWELL1, load=(9, 9, 9))),
        "says load (9, 9, 9)",
    ),
    "load above the compartments": (
        _m(lambda c: with_robot(c, "cart_1", compartments=Compartments(2, 1, 0))),
        "does not fit the compartments (3, 1, 0)",
    ),
    "unloads what is not on board": (
        _m(lambda c: with_leg(c, "adm_bot", A_LOAD, parcels=("o1",))),
        "unloads more than is on board",
    ),
    "returns with parcels on board": (
        _m(lambda c: with_leg(c, "cart_1", C_DWELL2, parcels=())),
        "cart_1 leg 4 (return at post_station): returns with load (1, 1, 0), not empty",
    ),
    # battery
    "wrong battery level": (
        _m(lambda c: with_leg(c, "cart_1", C_DWELL1, level_wh=leg(c[0], "cart_1", C_DWELL1).level_wh + 1)),
        "cart_1 leg 1 (dwell at stop_dorm_1): says battery",
    ),
    "charging beyond the capacity": (
        _m(
            lambda c: with_leg(c, "cart_1", C_CHARGE, level_wh=leg(c[0], "cart_1", C_RETURN2).level_wh + 1000)
        ),
        "recomputed 2000.00 Wh",
    ),
    "battery below the reserve": (
        _m(
            lambda c: with_robot(
                c,
                "adm_bot",
                battery=Battery(500.0, 76.0, 75.0, per_m_wh=0.01, per_lift_wh=1.0, charge_w=200.0),
            )
        ),
        "below the reserve 75.00 Wh",
    ),
    # dorm parcels
    "dwell before the window opens": (
        _m(lambda c: with_window(c, Window("w1", W1.start_s + 60, W1.end_s))),
        "parcel d1: cart_1 leg 1 (dwell at stop_dorm_1) starts at 27000.00, before window w1 opens",
    ),
    "dwell after the window closes": (
        _m(lambda c: with_window(c, Window("w1", W1.start_s, 28_000.0))),
        "after window w1 closes at 28000.00",
    ),
    "window not eligible": (
        _m(lambda c: with_parcel(c, "d1", windows=("w2",))),
        "parcel d1: goes out in window w1, not one of its windows w2",
    ),
    "load names no window": (_m(lambda c: with_leg(c, "cart_1", C_LOAD2, window=None)), "names no window"),
    "dwell after the deadline": (
        _m(lambda c: with_parcel(c, "d1", deadline_s=27_500.0)),
        "parcel d1: cart_1 leg 1 (dwell at stop_dorm_1) ends at 27606.00, after the deadline",
    ),
    "loaded before it is received": (
        _m(lambda c: with_parcel(c, "d1", received_s=25_600.0)),
        "parcel d1: loaded at 25500.00, before it is received",
    ),
    "dwell at another stop": (
        _m(lambda c: with_parcel(c, "d1", destination="stop_dorm_4")),
        "parcel d1: goes to stop_dorm_4, not to cart_1 leg 1",
    ),
    "dwell in another trip": (_m(dwell_in_another_trip), "parcel d3: its dwell cart_1 leg 6"),
    # office parcels
    "handed off at another building": (
        _m(lambda c: with_parcel(c, "o1", destination="tea_101")),
        "parcel o1: handed off at stop_adm, not at the stop of TEA",
    ),
    "no hand-off reaches the destination": (
        _m(
            lambda c: with_parcel(
                with_snapshot(c, handoffs={"ADM": c[1].handoffs["ADM"]}), "o1", destination="tea_101"
            )
        ),
        "parcel o1: no hand-off point reaches its destination tea_101",
    ),
    "meet at another time": (
        _m(lambda c: with_leg(c, "adm_bot", A_MEET, start_s=leg(c[0], "adm_bot", A_MEET).start_s + 1)),
        "cart_1 leg 3 (handoff at stop_adm): no MEET of adm_bot",
    ),
    "meet carries other parcels": (
        _m(lambda c: with_leg(c, "adm_bot", A_MEET, parcels=("o1",))),
        "adm_bot leg 0 (meet at adm_mailroom): hands over other parcels",
    ),
    "indoor load before the handoff ends": (
        _m(lambda c: with_leg(c, "adm_bot", A_LOAD, start_s=leg(c[0], "adm_bot", A_MEET).end_s - 5)),
        "parcel o1: adm_bot leg 1 (load at adm_mailroom) starts at",
    ),
    "indoor load by a robot of another building": (
        _m(lambda c: with_robot(c, "adm_bot", building="TEA")),
        "is not a load by a robot of ADM",
    ),
    "delivered at another door": (
        _m(lambda c: with_parcel(c, "o1", destination="adm_302")),
        "parcel o1: goes to adm_302, not to adm_bot leg 2",
    ),
    "delivered after the deadline": (
        _m(lambda c: with_parcel(c, "o1", deadline_s=28_000.0)),
        "parcel o1: adm_bot leg 2 (deliver at adm_301) ends at",
    ),
    "delivered in a later trip": (
        _m(lambda c: swapped(c, "adm_bot", A_DELIVER2, A_RETURN1)),
        "parcel o2: its delivery adm_bot leg 4",
    ),
    # requests
    "pickup outside its promise": (
        _m(lambda c: with_request(c, "k1", earliest_s=29_000.0, latest_s=29_500.0)),
        "request k1: adm_bot leg 5 (collect at adm_201) starts at 30000.00, outside the promise",
    ),
    "pickup at another door": (
        _m(lambda c: with_request(c, "k1", place="adm_202")),
        "request k1: is at adm_202, not in adm_bot leg 5",
    ),
    "pickup dropped away from home": (
        _m(lambda c: with_robot(c, "adm_bot", home="adm_charger")),
        "request k1: a pickup is dropped at home adm_charger",
    ),
    "coffee collected before the order": (
        _m(lambda c: with_request(c, "k2", created_s=31_100.0, earliest_s=31_100.0)),
        "before the order at 31100.00",
    ),
    "coffee from another shop": (
        _m(lambda c: with_request(c, "k2", origin="adm_101")),
        "request k2: collected at adm_101",
    ),
    "coffee late": (
        _m(lambda c: with_request(c, "k2", latest_s=31_050.0)),
        "request k2: adm_bot leg 9 (drop at adm_402)",
    ),
    "cart serves a request": (cart_serves_a_request, "request k3: served by the cart cart_1"),
    "trip ends between collect and drop": (
        _m(return_between_collect_and_drop),
        "request k1: its drop adm_bot leg 7",
    ),
    # accounting
    "parcel neither planned nor unplanned": (
        _m(lambda c: with_unplanned(c, {})),
        "parcel u1 is neither planned",
    ),
    "parcel both planned and unplanned": (
        _m(lambda c: with_unplanned(c, {"u1": "x", "d1": "late"})),
        "parcel d1 is unplanned (late) yet in cart_1 leg 0",
    ),
    "parcel dwelt twice": (
        _m(lambda c: with_leg(c, "cart_1", C_DWELL3, parcels=("d3", "d1"))),
        "parcel d1 has 2 dwell legs, not one",
    ),
    "request in a parcel leg": (
        _m(lambda c: with_leg(c, "cart_1", C_DWELL1, requests=("k1",))),
        "a dwell leg carries requests k1",
    ),
    "parcel in a charge leg": (
        _m(lambda c: with_leg(c, "cart_1", C_CHARGE, parcels=("d1",))),
        "a charge leg carries parcels d1",
    ),
    "unknown parcel in a leg": (
        _m(lambda c: with_leg(c, "cart_1", C_DWELL1, parcels=("d1", "zz"))),
        "parcel zz is not in the snapshot",
    ),
    "unplanned id that is nothing": (
        _m(lambda c: with_unplanned(c, {"u1": "x", "nope": "gone"})),
        "nope: unplanned, but not a parcel or request",
    ),
    "unplanned without a reason": (
        _m(lambda c: with_unplanned(c, {"u1": " "})),
        "u1: unplanned without a reason",
    ),
}


def test_the_hand_built_plan_is_valid(base: Case, tables: dict[str, TravelTable]) -> None:
    """Every leg built from the tables and Timings: no violation at all."""
    plan, snapshot = base
    assert validate(plan, snapshot, tables) == ()


def test_the_hand_built_plan_uses_what_it_claims(base: Case) -> None:
    """The fixture exercises the interesting paths: a lift ride, a reload, a capped charge, a wait."""
    plan, snapshot = base
    assert leg(plan, "adm_bot", A_DELIVER1).lift_rides == 1
    load2 = leg(plan, "cart_1", C_LOAD2)
    assert load2.end_s - load2.start_s == T.load_per_parcel_s + T.reload_s
    assert leg(plan, "cart_1", C_CHARGE).level_wh == snapshot.robot("cart_1").battery.capacity_wh
    handoff, meet = leg(plan, "cart_1", C_HANDOFF), leg(plan, "adm_bot", A_MEET)
    assert (handoff.start_s, handoff.end_s) == (meet.start_s, meet.end_s)
    assert leg(plan, "cart_1", C_DWELL1).start_s == W1.start_s


@pytest.mark.parametrize("name", list(MUTATIONS))
def test_each_broken_rule_is_reported(name: str, base: Case, tables: dict[str, TravelTable]) -> None:
    """One mutation per rule of the campus docstring; the violation names the robot/leg/parcel/request."""
    mutate, expected = MUTATIONS[name]
    plan, snapshot = mutate(base, tables)
    violations = validate(plan, snapshot, tables)
    assert any(expected in v for v in violations), violations


def _released(case: Case, count: int) -> Case:
    """The cart's first ``count`` legs released and committed; its position where they end."""
    legs = [
        dataclasses.replace(x, released=True) if i < count else x
        for i, x in enumerate(case[0].legs["cart_1"])
    ]
    case = with_legs(case, "cart_1", legs)
    return with_robot(case, "cart_1", committed=tuple(legs[:count]), position=legs[count - 1].place)


def test_released_legs_that_equal_the_committed_ones_are_valid(
    base: Case, tables: dict[str, TravelTable]
) -> None:
    """The unreleased legs continue from the last released leg (place, end, load, battery)."""
    plan, snapshot = _released(base, 2)
    assert validate(plan, snapshot, tables) == ()


def test_released_legs_are_frozen(base: Case, tables: dict[str, TravelTable]) -> None:
    """A changed released leg, a missing one, or a released leg after an unreleased one is reported."""
    case = _released(base, 2)
    changed = with_leg(case, "cart_1", C_DWELL1, end_s=leg(case[0], "cart_1", C_DWELL1).end_s + 1)
    assert "cart_1: its 2 released legs are not its 2 committed legs" in validate(*changed, tables)
    dropped = with_legs(case, "cart_1", case[0].legs["cart_1"][1:])
    assert "cart_1: its 1 released legs are not its 2 committed legs" in validate(*dropped, tables)
    late = with_leg(case, "cart_1", C_HANDOFF, released=True)
    assert "cart_1 leg 3 (handoff at stop_adm): released after an unreleased leg" in validate(*late, tables)


def test_an_offline_robot_may_keep_its_released_legs(base: Case, tables: dict[str, TravelTable]) -> None:
    """Offline: only its released legs; anything new is a violation."""
    case = _released(base, 2)
    kept = with_legs(case, "cart_1", case[0].legs["cart_1"][:2])
    offline = with_robot(kept, "cart_1", online=False)
    violations = validate(*offline, tables)
    assert not any(v.startswith("cart_1: offline") for v in violations)
    assert not any(v.startswith("cart_1 leg") for v in violations)


def test_an_empty_plan_reports_every_parcel_and_request(base: Case, tables: dict[str, TravelTable]) -> None:
    """Nothing planned and nothing unplanned: each parcel and request is named once."""
    snapshot = base[1]
    violations = validate(Plan(0.0, {}), snapshot, tables)
    assert sorted(violations) == sorted(
        [f"parcel {p.id} is neither planned nor unplanned" for p in snapshot.parcels]
        + [f"request {r.id} is neither planned nor unplanned" for r in snapshot.requests]
    )


def test_everything_unplanned_with_reasons_is_valid(base: Case, tables: dict[str, TravelTable]) -> None:
    """An empty plan that gives a reason for every parcel and request is valid (if useless)."""
    snapshot = base[1]
    ids = [p.id for p in snapshot.parcels] + [r.id for r in snapshot.requests]
    assert validate(Plan(0.0, {}, dict.fromkeys(ids, "no robot")), snapshot, tables) == ()


def test_caller_mistakes_raise(base: Case, tables: dict[str, TravelTable]) -> None:
    """A missing profile table or tables built with other closed lifts are errors, not violations."""
    plan, snapshot = base
    with pytest.raises(ValueError, match="no travel table for profile 'indoor'"):
        validate(plan, snapshot, {"cart": tables["cart"]})
    closed = dataclasses.replace(snapshot, closed_lifts=frozenset({"ADM-L1"}))
    with pytest.raises(ValueError, match="closes lifts"):
        validate(plan, closed, tables)


_FIELDS = st.sampled_from(["arrive_s", "end_s", "level_wh", "metres", "load"])


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    robot=st.sampled_from(["cart_1", "adm_bot"]),
    index=st.integers(min_value=0, max_value=11),
    field=_FIELDS,
    delta=st.floats(min_value=0.1, max_value=1e4),
)
def test_any_tampered_leg_is_blamed(
    base: Case, tables: dict[str, TravelTable], robot: str, index: int, field: str, delta: float
) -> None:
    """An earlier arrival or end, a changed battery level, metres or load is always reported on that leg."""
    legs = base[0].legs[robot]
    index %= len(legs)
    original = legs[index]
    assume(not (field == "end_s" and original.kind is LegKind.CHARGE))  # a shorter charge may still fill up
    if field == "load":
        changed = with_leg(base, robot, index, load=add_dims(original.load, (1, 0, 0)))
    elif field in ("arrive_s", "end_s"):
        changed = with_leg(base, robot, index, **{field: getattr(original, field) - delta})
    else:
        changed = with_leg(base, robot, index, **{field: getattr(original, field) + delta})
    where = f"{robot} leg {index} ("
    violations = validate(*changed, tables)
    assert any(v.startswith(where) for v in violations), violations
    assert all(isinstance(v, str) and v for v in violations)


def test_falling_below_the_reserve_is_reported_once(base: Case, tables: dict[str, TravelTable]) -> None:
    """Only the first leg under the reserve is named, not every later one."""
    battery = Battery(500.0, 76.0, 75.0, per_m_wh=0.01, per_lift_wh=1.0, charge_w=200.0)
    violations = validate(*with_robot(base, "adm_bot", battery=battery), tables)
    assert [v for v in violations if "below the reserve" in v] == [
        "adm_bot leg 2 (deliver at adm_301): battery falls to 74.38 Wh, below the reserve 75.00 Wh"
    ]


def test_a_robot_below_its_reserve_may_only_go_and_charge(base: Case, tables: dict[str, TravelTable]) -> None:
    """Already under its reserve: straight to a charger is valid, any other drive is reported."""
    battery = Battery(500.0, 70.0, 75.0, per_m_wh=0.01, per_lift_wh=1.0, charge_w=200.0)
    case = with_snapshot(base, parcels=(), requests=())
    case = with_unplanned(with_robot(case, "adm_bot", battery=battery), {})
    robot = case[1].robot("adm_bot")
    charge = Route(robot, tables["indoor"], {})
    charge.go(LegKind.RETURN, "adm_mailroom")
    charge.go(LegKind.CHARGE, "adm_charger", 600.0)
    plan = Plan(0.0, {"adm_bot": charge.legs})
    assert validate(plan, case[1], tables) == ()
    drive = Route(robot, tables["indoor"], {})
    drive.go(LegKind.DELIVER, "adm_301", T.deliver_s)
    drive.go(LegKind.RETURN, "adm_mailroom")
    assert validate(Plan(0.0, {"adm_bot": drive.legs}), case[1], tables) == (
        "adm_bot leg 0 (deliver at adm_301): battery falls to 68.38 Wh, below the reserve 75.00 Wh",
    )
