"""The campus planner on small hand-checkable days of the sample campus; every plan is validated."""

from __future__ import annotations

from dataclasses import replace

import campus_builders as cb
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pyvrp.stop import MaxIterations

from orchestrator.dispatch.campus import Compartments, LegKind, Parcel, Plan, Size, Snapshot, Timings
from orchestrator.dispatch.planner import plan_campus
from orchestrator.dispatch.validate import validate

NOW = 7 * cb.HOUR


def plan_of(snap: Snapshot, now: float = NOW, iterations: int = 200) -> Plan:
    tables = cb.tables(snap.closed_lifts)
    plan = plan_campus(snap, now, tables, stop=lambda: MaxIterations(iterations), seed=1)
    assert validate(plan, snap, tables) == ()
    return plan


def legs_of(plan: Plan, robot: str, kind: LegKind) -> list:
    return [leg for leg in plan.legs[robot] if leg.kind is kind]


def test_a_dorm_trip_loads_dwells_in_the_window_and_comes_back() -> None:
    snap = cb.snapshot([cb.cart()], cb.parcels("stop_dorm_1", 5))
    plan = plan_of(snap)
    kinds = [leg.kind for leg in plan.legs["cart1"]]
    assert kinds == [LegKind.LOAD, LegKind.DWELL, LegKind.RETURN]
    load, dwell, back = plan.legs["cart1"]
    assert load.place == "post_station" and len(load.parcels) == 5 and load.load == (5, 0, 0)
    assert load.end_s <= 8 * cb.HOUR  # loaded before the window opens...
    assert dwell.place == "stop_dorm_1"
    assert dwell.start_s == 8 * cb.HOUR  # ...and the dwell starts when it does
    assert dwell.end_s - dwell.start_s == 600 + 6 * 5
    way_back = cb.tables()["cart"].time("stop_dorm_1", "post_station")
    assert back.arrive_s == pytest.approx(dwell.end_s + way_back)
    assert plan.unplanned == {}
    assert all(plan.window_of(p.id) == "w1" for p in snap.parcels)


def test_compartment_sizes_are_the_capacity() -> None:
    # (2 S, 1 M): three parcels fit, but only one of them may be M or larger; an L never fits.
    small = cb.cart(compartments=Compartments(2, 1, 0))
    parcels = [
        *cb.parcels("stop_dorm_2", 2, size=Size.M, prefix="m"),
        *cb.parcels("stop_dorm_2", 2, size=Size.S, prefix="s"),
        *cb.parcels("stop_dorm_2", 1, size=Size.L, prefix="l"),
    ]
    plan = plan_of(cb.snapshot([small], parcels, spans=((8, 10),)))
    for leg in legs_of(plan, "cart1", LegKind.LOAD):
        sizes = [next(p.size for p in parcels if p.id == pid) for pid in leg.parcels]
        assert len(sizes) <= 3 and sum(s >= Size.M for s in sizes) <= 1
    assert "l-0" in plan.unplanned
    assert "m-0" not in plan.unplanned and "m-1" not in plan.unplanned  # two trips in the two hours


def test_what_does_not_fit_a_window_rolls_to_the_next() -> None:
    # One cart, a 30-minute window: a single trip to dorm 1 fits; 60 parcels need two trips.
    snap = cb.snapshot([cb.cart()], cb.parcels("stop_dorm_1", 60), spans=((8, 8.5), (12, 12.5)))
    plan = plan_of(snap)
    windows = [plan.window_of(p.id) for p in snap.parcels]
    assert windows.count("w1") == 50 and windows.count("w2") == 10


def test_a_parcel_only_goes_in_its_eligible_windows_and_by_its_deadline() -> None:
    late = Parcel("late", Size.S, "stop_dorm_6", windows=("w2",))
    urgent = Parcel("urgent", Size.S, "stop_dorm_6", deadline_s=8.5 * cb.HOUR)
    hopeless = Parcel("hopeless", Size.S, "stop_dorm_6", deadline_s=8 * cb.HOUR + 60)
    plan = plan_of(cb.snapshot([cb.cart()], [late, urgent, hopeless]))
    assert plan.window_of("late") == "w2"
    assert plan.window_of("urgent") == "w1"
    assert "hopeless" in plan.unplanned


def test_office_parcels_are_handed_off_to_a_waiting_indoor_robot_then_delivered() -> None:
    snap = cb.snapshot([cb.cart(), cb.indoor("adm1")], cb.parcels("adm_601", 3))
    plan = plan_of(snap)
    (handoff,) = legs_of(plan, "cart1", LegKind.HANDOFF)
    (meet,) = legs_of(plan, "adm1", LegKind.MEET)
    assert handoff.place == "stop_adm" and meet.place == "adm_mailroom"
    assert (handoff.start_s, handoff.end_s) == (meet.start_s, meet.end_s)
    assert handoff.partner == "adm1" and meet.partner == "cart1"
    assert handoff.start_s - handoff.arrive_s <= snap.timings.max_wait_s
    (load,) = legs_of(plan, "adm1", LegKind.LOAD)
    (deliver,) = legs_of(plan, "adm1", LegKind.DELIVER)
    assert load.start_s >= handoff.end_s  # the indoor trip cannot start before the cart was there
    assert deliver.place == "adm_601" and set(deliver.parcels) == {p.id for p in snap.parcels}
    assert deliver.lift_rides == 1


def test_a_cart_that_would_wait_too_long_comes_later_instead() -> None:
    # The indoor robot is busy until 08:20: the cart arrives at most max_wait before the meeting.
    busy = replace(cb.indoor("adm1"), available_s=8 * cb.HOUR + 20 * 60)
    snap = cb.snapshot([cb.cart(), busy], cb.parcels("adm_201", 2))
    plan = plan_of(snap)
    (handoff,) = legs_of(plan, "cart1", LegKind.HANDOFF)
    assert handoff.start_s >= busy.available_s
    assert handoff.start_s - handoff.arrive_s <= snap.timings.max_wait_s


def test_office_parcels_wait_when_no_indoor_robot_is_online() -> None:
    offline = replace(cb.indoor("adm1"), online=False)
    plan = plan_of(cb.snapshot([cb.cart(), offline], cb.parcels("adm_201", 2)))
    assert set(plan.unplanned) == {"adm_201-0", "adm_201-1"}
    assert plan.legs["adm1"] == ()
    assert not legs_of(plan, "cart1", LegKind.HANDOFF)


def test_never_below_the_battery_reserve_and_charging_when_low() -> None:
    # 400 Wh, reserve 300: dorm 1 and back (~5 km, 250 Wh) would break the reserve; stop_adm is close.
    low = cb.cart(level_wh=400.0)
    snap = cb.snapshot([low, cb.indoor("adm1")], [*cb.parcels("stop_dorm_1", 5), *cb.parcels("adm_201", 1)])
    plan = plan_of(snap)
    assert all(leg.level_wh >= low.battery.reserve_wh for leg in plan.legs["cart1"])
    first = [leg for leg in plan.legs["cart1"] if leg.window == "w1"]
    assert all(leg.place != "stop_dorm_1" for leg in first)
    charges = legs_of(plan, "cart1", LegKind.CHARGE)
    assert charges and charges[0].start_s < 12 * cb.HOUR
    assert plan.window_of("stop_dorm_1-0") == "w2"  # after charging


def test_a_closed_lift_is_routed_around_or_reported() -> None:
    closed = frozenset({"ADM-L1", "ADM-L2"})
    snap = cb.snapshot([cb.cart(), cb.indoor("adm1")], [*cb.parcels("adm_601", 1), *cb.parcels("adm_101", 1)])
    plan = plan_of(replace(snap, closed_lifts=closed))
    assert "adm_601-0" in plan.unplanned and "reach" in plan.unplanned["adm_601-0"]
    assert "adm_101-0" not in plan.unplanned
    assert all(leg.lift_rides == 0 for leg in plan.legs["adm1"])


def test_offline_robots_get_no_new_legs_and_the_plan_is_deterministic() -> None:
    snap = cb.snapshot([cb.cart("a"), replace(cb.cart("b"), online=False)], cb.parcels("stop_dorm_3", 70))
    first, second = plan_of(snap), plan_of(snap)
    assert first.legs["b"] == ()
    assert first == second


def test_released_legs_stay_and_their_parcels_are_not_planned_again() -> None:
    snap = cb.snapshot([cb.cart()], [*cb.parcels("stop_dorm_1", 5), *cb.parcels("stop_dorm_2", 60)])
    before = plan_of(snap)
    trip = before.legs["cart1"][:3]
    assert trip[-1].kind is LegKind.RETURN
    released = tuple(replace(leg, released=True) for leg in trip)
    robot = replace(snap.robots[0], committed=released, position="post_station", available_s=trip[-1].end_s)
    later = cb.with_robot(snap, robot)
    after = plan_of(later, now=trip[0].start_s + 60)
    assert after.legs["cart1"][:3] == released
    again = [p for leg in after.legs["cart1"][3:] for p in leg.parcels]
    assert not set(again) & {p for leg in released for p in leg.parcels}


PLACES = (*cb.DORM_STOPS, "stop_activity_centre", "adm_201", "adm_601", "adm_101", "tea_305", "tea_202")


@st.composite
def campus_days(draw: st.DrawFn) -> Snapshot:
    n_carts = draw(st.integers(1, 2))
    robots = [
        cb.cart(
            f"cart{i}",
            compartments=Compartments(*(draw(st.integers(0, k)) for k in (6, 3, 2))),
            level_wh=draw(st.floats(300, 2000)),
        )
        for i in range(n_carts)
    ]
    for building in draw(st.lists(st.sampled_from(["ADM", "TEA"]), max_size=3)):
        name = f"{building.lower()}{len(robots)}"
        robots.append(cb.indoor(name, building, level_wh=draw(st.floats(75, 500))))
    parcels = [
        Parcel(
            f"p{i}",
            draw(st.sampled_from(list(Size))),
            draw(st.sampled_from(PLACES)),
            windows=tuple(draw(st.lists(st.sampled_from(["w1", "w2"]), max_size=1))),
            deadline_s=draw(st.sampled_from([float("inf"), 9 * cb.HOUR, 12.5 * cb.HOUR])),
        )
        for i in range(draw(st.integers(0, 30)))
    ]
    timings = Timings(stop_dwell_s=draw(st.sampled_from([120.0, 600.0])))
    return cb.snapshot(robots, parcels, spans=((8, 8.75), (12, 13)), timings=timings)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(campus_days())
def test_random_days_give_valid_plans_that_account_for_every_parcel(snap: Snapshot) -> None:
    plan = plan_of(snap, iterations=50)
    planned = {p for leg in plan.all_legs() for p in leg.parcels}
    for parcel in snap.parcels:
        assert (parcel.id in planned) != (parcel.id in plan.unplanned)
