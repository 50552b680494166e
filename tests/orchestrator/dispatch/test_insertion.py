"""Online insertion of mini-program requests: hand-checkable cases and random plans, all validated.

The little campus (seconds = metres, 1 m/s; door and door2 are upstairs, one lift ride from the ground)::

            home  shop  door  door2  mail  stop
    home      0    50   100   110    30    40
    shop     50     0    80    90    60    45
    door    100    80     0    20    90    95
    door2   110    90    20     0   100   105
    mail     30    60    90   100     0     5
    stop     40    45    95   105     5     0

Profiles: ``robot`` knows every place, ``indoor`` only shop/door/door2/mail, ``cart`` only home/stop.
Hand-off of building B: the cart at ``stop`` meets the indoor robot at ``mail``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from orchestrator.dispatch.campus import (
    INF,
    ZERO,
    Battery,
    Compartments,
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
    Window,
    add_dims,
    load_dims,
)
from orchestrator.dispatch.insertion import Accepted, Refused, insert_request
from orchestrator.dispatch.travel import TravelTable
from orchestrator.dispatch.validate import validate

PLACES = ("home", "shop", "door", "door2", "mail", "stop")
TIMES = np.array(
    [
        [0, 50, 100, 110, 30, 40],
        [50, 0, 80, 90, 60, 45],
        [100, 80, 0, 20, 90, 95],
        [110, 90, 20, 0, 100, 105],
        [30, 60, 90, 100, 0, 5],
        [40, 45, 95, 105, 5, 0],
    ],
    dtype=float,
)
UPSTAIRS = {"door", "door2"}


def _table(profile: str, places: Sequence[str]) -> TravelTable:
    idx = [PLACES.index(p) for p in places]
    times = TIMES[np.ix_(idx, idx)]
    rides = np.array([[int((a in UPSTAIRS) != (b in UPSTAIRS)) for b in places] for a in places])
    return TravelTable(profile, tuple(places), times, times.copy(), rides)


TABLES = {
    "robot": _table("robot", PLACES),
    "indoor": _table("indoor", ("shop", "door", "door2", "mail")),
    "cart": _table("cart", ("home", "stop")),
}
HANDOFFS = {"B": Handoff("B", "stop", "mail")}


SML = Compartments(s=2, m=1, l=1)


def _battery(level: float = 1000.0, reserve: float = 100.0) -> Battery:
    return Battery(capacity_wh=1000.0, level_wh=level, reserve_wh=reserve, per_m_wh=0.1, per_lift_wh=1.0)


def _robot(
    rid: str = "r1",
    *,
    kind: RobotKind = RobotKind.ROBOT,
    position: str = "home",
    compartments: Compartments = SML,
    battery: Battery | None = None,
    online: bool = True,
    available_s: float = 0.0,
    committed: tuple[Leg, ...] = (),
) -> Robot:
    profile = {RobotKind.ROBOT: "robot", RobotKind.INDOOR: "indoor", RobotKind.CART: "cart"}[kind]
    home = {RobotKind.ROBOT: "home", RobotKind.INDOOR: "mail", RobotKind.CART: "home"}[kind]
    return Robot(
        rid, kind, profile, compartments, home, position, battery or _battery(), available_s,
        building="B" if kind is RobotKind.INDOOR else None, online=online, committed=committed,
    )  # fmt: skip


def _snapshot(
    robots: Sequence[Robot],
    requests: Sequence[Request] = (),
    windows: Sequence[Window] = (),
    parcels: Sequence[Parcel] = (),
) -> Snapshot:
    return Snapshot(
        tuple(robots), tuple(windows), tuple(parcels), tuple(requests), station="home", handoffs=HANDOFFS
    )


def _pickup(
    rid: str, place: str = "door", window: tuple[float, float] = (0, 1000), size: Size = Size.S
) -> Request:
    return Request(rid, RequestKind.PICKUP, place, *window, size)


def _coffee(rid: str, place: str = "door", window: tuple[float, float] = (0, 1000)) -> Request:
    return Request(rid, RequestKind.COFFEE, place, *window, Size.S, origin="shop", created_s=0.0)


EMPTY = Plan(0.0, {})


def _accept(plan: Plan, snap: Snapshot, request: Request, now: float = 0.0) -> Accepted:
    decision = insert_request(plan, snap, request, TABLES, now)
    assert isinstance(decision, Accepted), decision
    with_request = replace(snap, requests=(*snap.requests, request))
    assert validate(decision.plan, with_request, TABLES) == ()
    return decision


def _refuse(plan: Plan, snap: Snapshot, request: Request, now: float = 0.0) -> str:
    decision = insert_request(plan, snap, request, TABLES, now)
    assert isinstance(decision, Refused), decision
    assert decision.request == request.id and decision.reason.count(".") <= 1
    return decision.reason


def _kinds(legs: Sequence[Leg]) -> list[tuple[str, str]]:
    return [(leg.kind.value, leg.place) for leg in legs]


# ---- hand-checkable cases -----------------------------------------------------------------------


def test_pickup_into_an_empty_robot_comes_at_the_travel_time_and_closes_the_trip() -> None:
    """Home → door takes 100 s: ETA 100; collect 60 s, back home at 260, RETURN at 320; 11 Wh per way."""
    snap = _snapshot([_robot()])
    decision = _accept(EMPTY, snap, _pickup("q1"))
    legs = decision.plan.legs["r1"]
    assert (decision.robot, decision.eta_s) == ("r1", 100.0)
    assert _kinds(legs) == [("collect", "door"), ("drop", "home"), ("return", "home")]
    assert [(leg.arrive_s, leg.start_s, leg.end_s) for leg in legs] == [
        (100, 100, 160),
        (260, 260, 320),
        (320,) * 3,
    ]
    assert [leg.load for leg in legs] == [(1, 0, 0), ZERO, ZERO]
    assert [leg.level_wh for leg in legs] == pytest.approx([989.0, 978.0, 978.0])
    assert [leg.lift_rides for leg in legs] == [1, 1, 0]


def test_pickup_waits_for_the_promised_window_and_coffee_eta_is_the_drop() -> None:
    """A promise from 500 s gives ETA 500; a coffee: home → shop 50 + 60 s service + shop → door 80 = 190."""
    snap = _snapshot([_robot()])
    assert _accept(EMPTY, snap, _pickup("q1", window=(500, 900))).eta_s == 500.0
    coffee = _accept(EMPTY, snap, _coffee("c1"))
    legs = coffee.plan.legs["r1"]
    assert coffee.eta_s == 190.0
    assert _kinds(legs) == [("collect", "shop"), ("drop", "door"), ("return", "home")]
    assert legs[0].start_s < legs[1].start_s
    assert legs[0].requests == legs[1].requests == ("c1",)


def test_a_promise_nobody_can_meet_is_refused_with_the_earliest_free_time() -> None:
    """The door is 100 s away, the promise ends at 50 s: refused, earliest free time 100 s."""
    reason = _refuse(EMPTY, _snapshot([_robot()]), _pickup("q1", window=(0, 50)))
    assert reason == "no robot free within the promised window: 0–50 s at door (earliest free time 100 s)"


def test_a_busy_robot_is_refused_with_the_earliest_time_it_could_be_there() -> None:
    """r1 must collect at door2 at exactly 150 s. Serving the door first makes that late (door 100..160,
    door2 at 180); after door2 (150..210) the door is reached at 230 s, after the 150 s promise: refused,
    earliest free time 230 s.
    """
    a = _pickup("a", place="door2", window=(150, 150))
    snap = _snapshot([_robot()])
    plan = _accept(EMPTY, snap, a).plan
    reason = _refuse(plan, replace(snap, requests=(a,)), _pickup("q", window=(0, 150)))
    assert reason.endswith("(earliest free time 230 s)")


def test_an_l_parcel_is_refused_when_only_s_compartments_exist() -> None:
    """Compartments are capacity by size: an L pickup needs an L compartment; an S pickup fits."""
    snap = _snapshot([_robot(compartments=Compartments(s=3))])
    assert _refuse(EMPTY, snap, _pickup("big", size=Size.L)) == (
        "compartments too small: no robot that can reach door has a compartment of size L or larger"
    )
    _accept(EMPTY, snap, _pickup("small", size=Size.S))


def test_an_l_parcel_is_refused_when_the_only_l_compartment_is_taken_at_that_time() -> None:
    """r1 (one S, one L) carries L parcel a from the door (exactly at 100 s) home (260..320).

    A second L pickup at door2 within 180..250 could only be collected on that trip (door2 at 180), when
    the L compartment is taken: refused as compartments full. An S pickup there fits the S compartment.
    """
    a = _pickup("a", window=(100, 100), size=Size.L)
    snap = _snapshot([_robot(compartments=Compartments(s=1, l=1))])
    plan = _accept(EMPTY, snap, a).plan
    snap = replace(snap, requests=(a,))
    assert _refuse(plan, snap, _pickup("b", place="door2", window=(180, 250), size=Size.L)).startswith(
        "compartments full"
    )
    small = _accept(plan, snap, _pickup("s", place="door2", window=(180, 250), size=Size.S))
    assert _kinds(small.plan.legs["r1"]) == [
        ("collect", "door"), ("collect", "door2"), ("drop", "home"), ("drop", "home"), ("return", "home"),
    ]  # fmt: skip
    assert small.eta_s == 180.0


def test_battery_reserve_refuses_a_trip_that_would_go_below_it() -> None:
    """The round trip to the door costs 22 Wh; with 20 Wh above the reserve it is refused."""
    snap = _snapshot([_robot(battery=_battery(level=120.0, reserve=100.0))])
    assert _refuse(EMPTY, snap, _pickup("q1")).startswith("battery reserve")
    _accept(EMPTY, _snapshot([_robot(battery=_battery(level=122.0, reserve=100.0))]), _pickup("q1"))


def test_battery_reserve_counts_the_way_home_of_a_new_trip() -> None:
    """A coffee from home costs 5 Wh to the shop, 9 Wh to the door and 11 Wh home: 25 Wh in all."""
    coffee = _coffee("c")
    assert _refuse(EMPTY, _snapshot([_robot(battery=_battery(level=124.0))]), coffee).startswith("battery")
    legs = _accept(EMPTY, _snapshot([_robot(battery=_battery(level=125.0))]), coffee).plan.legs["r1"]
    assert [leg.level_wh for leg in legs] == pytest.approx([120.0, 111.0, 100.0])


def test_battery_reserve_counts_the_legs_after_the_insertion() -> None:
    """r1 (level L, reserve 100) has pickup a at door2: 12 Wh there, 12 Wh home (24 Wh for the trip).

    Coffee c (shop → door by 190 s) fits only first: shop 5 Wh, door 9 Wh, then door2 2 Wh and home
    12 Wh (28 Wh in all). With L = 127 a's legs would end at 99 Wh: refused; with L = 128 accepted.
    """
    a = _pickup("a", place="door2", window=(0, 2000))
    for level, accepted in ((127.0, False), (128.0, True)):
        snap = _snapshot([_robot(battery=_battery(level=level))])
        plan = _accept(EMPTY, snap, a).plan
        snap = replace(snap, requests=(a,))
        coffee = _coffee("c", window=(0, 190))
        if accepted:
            legs = _accept(plan, snap, coffee).plan.legs["r1"]
            assert legs[-1].level_wh == pytest.approx(100.0)
        else:
            assert _refuse(plan, snap, coffee).startswith("battery reserve")


def test_battery_reserve_holds_on_the_way_to_a_charger_between_collect_and_drop() -> None:
    """r1 (112 Wh, reserve 100) goes to charge at the mail room (3 Wh) for an hour (+100 Wh).

    A door pickup by 500 s must come before the charge: 11 Wh to the door leaves 101 Wh, but 10 Wh more
    to the charger would leave 91 Wh before it charges: refused (battery), although the level after
    charging would be fine.
    """
    robot = _robot(battery=replace(_battery(level=112.0), charge_w=100.0))
    legs = (
        _leg("r1", LegKind.CHARGE, "mail", 30, 30, 3630, metres=30.0, level_wh=209.0),
        _leg("r1", LegKind.RETURN, "home", 3660, 3660, 3660, metres=30.0, level_wh=206.0),
    )
    snap = replace(_snapshot([robot]), chargers=("mail",))
    plan = Plan(0.0, {"r1": legs})
    assert validate(plan, snap, TABLES) == ()
    assert _refuse(plan, snap, _pickup("q", window=(0, 500))).startswith("battery reserve")
    assert _accept(plan, snap, _pickup("q", window=(0, 4000))).eta_s == 3630 + 90


def test_released_legs_never_change_and_new_legs_come_after_them() -> None:
    """The first trip's COLLECT and DROP are released: the new request goes after them, they stay equal."""
    snap = _snapshot([_robot()])
    first = _pickup("a", window=(0, 2000))
    plan = _accept(EMPTY, snap, first).plan
    released = tuple(replace(leg, released=True) for leg in plan.legs["r1"][:2])
    robot = _robot(committed=released)
    snap = _snapshot([robot], [first])
    plan = Plan(0.0, {"r1": (*released, *plan.legs["r1"][2:])})
    decision = _accept(plan, snap, _pickup("b", place="door2", window=(0, 2000)))
    legs = decision.plan.legs["r1"]
    assert legs[:2] == released
    assert all("b" not in leg.requests for leg in legs[:2])
    assert decision.eta_s >= released[-1].end_s


def test_a_leg_that_started_before_now_stays_and_nothing_goes_before_it() -> None:
    """At now = 120 the COLLECT at 100 has started (not released): the new COLLECT comes after it."""
    snap = _snapshot([_robot()])
    plan = _accept(EMPTY, snap, _pickup("a", window=(0, 2000))).plan
    snap = replace(snap, requests=(_pickup("a", window=(0, 2000)),))
    decision = _accept(plan, snap, _pickup("b", place="door2", window=(0, 2000)), now=120.0)
    legs = decision.plan.legs["r1"]
    assert legs[0] == plan.legs["r1"][0]
    assert _kinds(legs)[1] == ("collect", "door2")
    assert legs[1].start_s == 180.0  # leaves the door at 160, door2 20 s later


def _two_echelon() -> tuple[Snapshot, Plan]:
    """Cart c1 hands office parcel p1 (for door2) to indoor robot i1 at 100..170 (MEET at mail).

    i1 then loads at the mail room 170..176, delivers at door2 276..336 and returns at 436.
    """
    cart = _robot("c1", kind=RobotKind.CART)
    indoor = _robot("i1", kind=RobotKind.INDOOR, position="mail", compartments=Compartments(s=2))
    parcel = Parcel("p1", Size.S, "door2", ("w1",), deadline_s=2000.0)
    snap = _snapshot([cart, indoor], windows=(Window("w1", 0, 3600),), parcels=(parcel,))
    cart_legs = _finish(cart, [
        _leg("c1", LegKind.LOAD, "home", 0, 0, 6, parcels=("p1",), window="w1"),
        _leg("c1", LegKind.HANDOFF, "stop", 46, 100, 170, parcels=("p1",), partner="i1"),
        _leg("c1", LegKind.RETURN, "home", 210, 210, 210),
    ], {"p1": -1}, [1, -1, 0])  # fmt: skip
    indoor_legs = _finish(indoor, [
        _leg("i1", LegKind.MEET, "mail", 0, 100, 170, parcels=("p1",), partner="c1"),
        _leg("i1", LegKind.LOAD, "mail", 170, 170, 176, parcels=("p1",)),
        _leg("i1", LegKind.DELIVER, "door2", 276, 276, 336, parcels=("p1",)),
        _leg("i1", LegKind.RETURN, "mail", 436, 436, 436),
    ], {"p1": -1}, [0, 1, -1, 0])  # fmt: skip
    plan = Plan(0.0, {"c1": cart_legs, "i1": indoor_legs})
    assert validate(plan, snap, TABLES) == ()
    return snap, plan


def _leg(robot: str, kind: LegKind, place: str, arrive: float, start: float, end: float, **kw: object) -> Leg:
    return Leg(robot, kind, place, arrive, start, end, **kw)  # type: ignore[arg-type]


def _finish(robot: Robot, legs: list[Leg], _sizes: dict[str, int], signs: list[int]) -> tuple[Leg, ...]:
    """Fill metres, lift rides, load (one S parcel in/out by ``signs``) and battery along ``legs``."""
    table = TABLES[robot.profile]
    place, level, load = robot.position, robot.battery.level_wh, ZERO
    out = []
    for leg, sign in zip(legs, signs, strict=True):
        metres, rides = table.length(place, leg.place), table.lift_rides(place, leg.place)
        level -= robot.battery.cost(metres, rides)
        load = add_dims(load, load_dims([Size.S]), sign)
        out.append(replace(leg, metres=metres, lift_rides=rides, level_wh=level, load=load))
        place = leg.place
    return tuple(out)


def test_meet_legs_keep_their_start() -> None:
    """i1 meets the cart at exactly 100 s. A door pickup by 150 s would need it away then: refused.

    A door pickup by 400 s goes after the DELIVER at door2 (door at 336 + 20 = 356 s, then home to the
    mail room); the MEET stays at 100..170 and the cart's legs do not change.
    """
    snap, plan = _two_echelon()
    assert "promised window" in _refuse(plan, snap, _pickup("early", window=(0, 150)))
    decision = _accept(plan, snap, _pickup("late", window=(0, 400)))
    legs = decision.plan.legs["i1"]
    assert legs[0] == plan.legs["i1"][0]
    assert _kinds(legs) == [
        ("meet", "mail"), ("load", "mail"), ("deliver", "door2"), ("collect", "door"), ("drop", "mail"),
        ("return", "mail"),
    ]  # fmt: skip
    assert decision.eta_s == 356.0
    assert decision.plan.legs["c1"] == plan.legs["c1"]


def test_a_cart_is_never_chosen() -> None:
    """A cart standing at the door (with a profile that reaches it) loses to a robot 100 s away."""
    cart = replace(_robot("c1", kind=RobotKind.CART, position="door"), profile="robot")
    snap = _snapshot([cart, _robot("r1")])
    assert _accept(EMPTY, snap, _pickup("q1")).robot == "r1"
    assert _refuse(EMPTY, _snapshot([cart]), _pickup("q1")).startswith("no capable robot online")


def test_an_offline_robot_is_never_chosen() -> None:
    """r0 is offline at the door; r1 online at home serves; alone, r0 means a refusal."""
    r0 = _robot("r0", position="door", online=False)
    snap = _snapshot([r0, _robot("r1")])
    decision = _accept(EMPTY, snap, _pickup("q1"))
    assert decision.robot == "r1" and "r0" not in decision.plan.legs
    assert _refuse(EMPTY, _snapshot([r0]), _pickup("q1")).startswith("no capable robot online")


def test_an_indoor_robot_serves_only_places_its_table_reaches() -> None:
    """A pickup at ``home`` (outdoors) with only an indoor robot: nobody can reach it."""
    snap = _snapshot([_robot("i1", kind=RobotKind.INDOOR, position="mail")])
    assert _refuse(EMPTY, snap, _pickup("q1", place="home")).startswith("nobody can reach home")
    assert _accept(EMPTY, snap, _pickup("q2", place="door")).robot == "i1"


def test_the_nearest_free_robot_wins_and_ties_go_to_the_earliest_eta() -> None:
    """r_far at home (door 100 s away) and r_near at door2 (20 s): r_near serves, ETA 20."""
    snap = _snapshot([_robot("r_far"), _robot("r_near", position="door2")])
    decision = _accept(EMPTY, snap, _pickup("q1"))
    assert (decision.robot, decision.eta_s) == ("r_near", 20.0)


def test_equal_detours_go_where_the_parcel_spends_least_time_on_board() -> None:
    """r1 collects a at door2 at exactly 1000 s. Pickup b at the door costs a 10 s detour either before
    (door at 100, on board until home at 1190) or after a (door at 1080, home at 1240): it goes after,
    dropped at home first, on board 220 s instead of 1150 s (``HOLD_WEIGHT``).
    """
    a = _pickup("a", place="door2", window=(1000, 1000))
    snap = _snapshot([_robot()])
    plan = _accept(EMPTY, snap, a).plan
    decision = _accept(plan, replace(snap, requests=(a,)), _pickup("b", window=(0, 2000)))
    assert decision.eta_s == 1080.0
    assert [leg.requests for leg in decision.plan.legs["r1"]] == [("a",), ("b",), ("b",), ("a",), ()]


def test_a_request_already_planned_is_refused() -> None:
    """Inserting the same request twice is refused, naming it."""
    snap = _snapshot([_robot()])
    plan = _accept(EMPTY, snap, _pickup("q1")).plan
    assert "already in the plan" in _refuse(plan, replace(snap, requests=(_pickup("q1"),)), _pickup("q1"))


def test_an_accepted_request_leaves_unplanned() -> None:
    """A request the plan listed as unplanned is taken out of ``unplanned`` once accepted."""
    snap = _snapshot([_robot()], [_pickup("q1")])
    plan = Plan(0.0, {}, {"q1": "no robot earlier"})
    decision = insert_request(plan, snap, _pickup("q1"), TABLES, 0.0)
    assert isinstance(decision, Accepted) and "q1" not in decision.plan.unplanned
    assert validate(decision.plan, snap, TABLES) == ()


# ---- random plans --------------------------------------------------------------------------------

DOORS = ("door", "door2", "door", "door2", "shop", "home", "mail")


@st.composite
def _robots(draw: st.DrawFn) -> list[Robot]:
    robots = []
    for n in range(draw(st.integers(1, 3))):
        kind = draw(st.sampled_from([RobotKind.ROBOT] * 3 + [RobotKind.INDOOR] * 2 + [RobotKind.CART]))
        places = TABLES[
            {RobotKind.ROBOT: "robot", RobotKind.INDOOR: "indoor", RobotKind.CART: "cart"}[kind]
        ].places
        s, m, l_ = draw(st.integers(0, 2)), draw(st.integers(0, 1)), draw(st.integers(0, 1))
        robots.append(
            _robot(
                f"r{n}",
                kind=kind,
                position=draw(st.sampled_from(places)),
                compartments=Compartments(s=max(s, 1), m=m, l=l_),
                battery=_battery(level=draw(st.floats(100, 1000)), reserve=100.0),
                online=draw(st.booleans()) or n == 0,
                available_s=draw(st.sampled_from([0.0, 50.0, 400.0])),
            )
        )
    return robots


@st.composite
def _requests(draw: st.DrawFn) -> list[Request]:
    out = []
    for n in range(draw(st.integers(1, 10))):
        place = draw(st.sampled_from(DOORS))
        earliest = draw(st.integers(0, 1500))
        window = (float(earliest), float(earliest + draw(st.integers(0, 1200))))
        if draw(st.booleans()):
            out.append(_pickup(f"q{n}", place, window, draw(st.sampled_from(list(Size)))))
        else:
            origin = draw(st.sampled_from(("shop", "mail")))
            created = float(draw(st.integers(0, 300)))
            out.append(Request(f"q{n}", RequestKind.COFFEE, place, *window, Size.S, origin, created))
    return out


def _check_accepted(before: Plan, decision: Accepted, snap: Snapshot, request: Request, now: float) -> None:
    after = decision.plan
    assert validate(after, snap, TABLES) == ()
    for rid, legs in before.legs.items():
        if rid != decision.robot:
            assert after.legs[rid] == legs
    robot = snap.robot(decision.robot)
    assert robot.kind is not RobotKind.CART and robot.online
    old, new = before.legs.get(robot.id, ()), after.legs[robot.id]
    frozen = max((k + 1 for k, leg in enumerate(old) if leg.released or leg.start_s < now), default=0)
    assert new[:frozen] == old[:frozen]
    for leg in old:  # every old leg is still there, never earlier, and a MEET exactly where it was
        same = (
            x
            for x in new
            if (x.kind, x.place, x.requests, x.parcels) == (leg.kind, leg.place, leg.requests, leg.parcels)
        )
        moved = next(x for x in same if x.start_s >= leg.start_s)
        if leg.kind in (LegKind.MEET, LegKind.HANDOFF):
            assert moved.start_s == leg.start_s
    mine = [leg for leg in new if request.id in leg.requests]
    assert [leg.kind for leg in mine] == [LegKind.COLLECT, LegKind.DROP]
    door_leg = mine[1] if request.kind is RequestKind.COFFEE else mine[0]
    assert door_leg.start_s == decision.eta_s >= now
    assert len(new) - len(old) in (2, 3)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(robots=_robots(), requests=_requests(), base=st.booleans(), released=st.integers(0, 3),
       now=st.sampled_from([0.0, 120.0, 300.0]))  # fmt: skip
def test_random_requests_into_random_plans_give_valid_plans(
    robots: list[Robot], requests: list[Request], base: bool, released: int, now: float
) -> None:
    """Every accepted insertion passes the independent validator and keeps frozen and MEET legs.

    The plan starts empty or with the two-echelon day (the indoor robot's first legs possibly released);
    requests are inserted one after another.
    """
    if base:
        snap, plan = _two_echelon()
        legs = plan.legs["i1"]
        committed = tuple(replace(leg, released=True) for leg in legs[:released])
        indoor = replace(snap.robot("i1"), committed=committed)
        plan = Plan(0.0, {**plan.legs, "i1": (*committed, *legs[released:])})
        extra = [replace(r, id=f"x{r.id}") for r in robots]
        snap = replace(snap, robots=(snap.robot("c1"), indoor, *extra))
    else:
        snap, plan = _snapshot(robots), EMPTY
    for request in requests:
        decision = insert_request(plan, snap, request, TABLES, now)
        if isinstance(decision, Refused):
            assert decision.reason and decision.request == request.id
            continue
        snap = replace(snap, requests=(*snap.requests, request))
        _check_accepted(plan, decision, snap, request, now)
        plan = decision.plan


def test_latest_start_of_an_existing_request_is_its_promise_even_if_its_leg_says_more() -> None:
    """A plan whose COLLECT leg forgot its promise (latest_s = inf) is still not pushed past it."""
    a = _pickup("a", place="door2", window=(110, 110))
    snap = _snapshot([_robot()], [a])
    plan = _accept(EMPTY, replace(snap, requests=()), a).plan
    loose = tuple(replace(leg, latest_s=INF) if leg.requests == ("a",) else leg for leg in plan.legs["r1"])
    reason = _refuse(Plan(0.0, {"r1": loose}), snap, _pickup("q", window=(0, 120)))
    assert "promised window" in reason
