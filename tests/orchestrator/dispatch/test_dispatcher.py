"""The dispatcher facade: re-planning on events, stability of released legs, never an exception out."""

from __future__ import annotations

from dataclasses import replace
from itertools import count

import campus_builders as cb
import pytest

from orchestrator.dispatch import dispatcher as dispatcher_module
from orchestrator.dispatch.campus import LegKind, Plan, Request, RequestKind, Snapshot
from orchestrator.dispatch.dispatcher import Dispatcher
from orchestrator.dispatch.insertion import Accepted
from orchestrator.dispatch.validate import validate

NOW = 7 * cb.HOUR


def make(**kwargs: object) -> Dispatcher:
    return Dispatcher(cb.site(), iterations=200, **kwargs)  # type: ignore[arg-type]


def day() -> Snapshot:
    return cb.snapshot(
        [cb.cart("cart1"), cb.cart("cart2"), cb.indoor("adm1")],
        [*cb.parcels("stop_dorm_1", 40), *cb.parcels("stop_dorm_4", 30), *cb.parcels("adm_601", 4)],
    )


def released_until(plan: Plan, snap: Snapshot, robot_id: str, count_: int, now: float) -> Snapshot:
    legs = tuple(replace(leg, released=True) for leg in plan.legs[robot_id][:count_])
    robot = replace(snap.robot(robot_id), committed=legs, position=legs[-1].place, available_s=legs[-1].end_s)
    return cb.with_robot(snap, robot)


def test_a_plan_is_validated_and_timed() -> None:
    ticks = count()
    dispatcher = make(budget_s=60.0, clock=lambda: float(next(ticks)))
    outcome = dispatcher.plan(day(), NOW)
    assert outcome.ok and outcome.reason is None
    assert outcome.seconds > 0
    assert validate(outcome.plan, day(), dispatcher.tables(day())) == ()


def test_a_failing_planner_returns_the_previous_plan_and_why(monkeypatch: pytest.MonkeyPatch) -> None:
    dispatcher = make()
    previous = dispatcher.plan(day(), NOW).plan

    def broken(*args: object, **kwargs: object) -> Plan:
        raise RuntimeError("solver crashed")

    monkeypatch.setattr(dispatcher_module, "plan_campus", broken)
    outcome = dispatcher.plan(day(), NOW + 60, previous)
    assert not outcome.ok and outcome.plan is previous
    assert outcome.reason == "planning failed: RuntimeError: solver crashed"


def test_without_a_previous_plan_a_failure_keeps_only_released_legs(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(dispatcher_module, "validate", lambda *a: ("cart1 leg 1: made-up violation",))
    outcome = make().plan(day(), NOW)
    assert not outcome.ok and "made-up violation" in (outcome.reason or "")
    assert all(legs == () for legs in outcome.plan.legs.values())
    assert set(outcome.plan.unplanned) == {p.id for p in day().parcels}


def test_a_plan_over_its_budget_is_not_used() -> None:
    ticks = iter([0.0, 100.0, 100.0])  # start, end (and elapsed for the fallback)
    dispatcher = make(budget_s=10.0, clock=lambda: next(ticks))
    previous = make().plan(day(), NOW).plan
    outcome = dispatcher.plan(day(), NOW, previous)
    assert not outcome.ok and outcome.plan is previous
    assert "over the budget" in (outcome.reason or "")


def test_a_budget_needs_a_clock() -> None:
    with pytest.raises(ValueError, match="needs a clock"):
        Dispatcher(cb.site(), budget_s=5.0)


def test_released_legs_and_the_trip_in_progress_survive_a_replan() -> None:
    dispatcher = make()
    snap = day()
    first = dispatcher.plan(snap, NOW).plan
    # cart1 has been sent its LOAD and first stop; then cart2 goes offline
    later = released_until(first, snap, "cart1", 2, NOW + 1800)
    cart2 = replace(later.robot("cart2"), online=False)
    later = cb.with_robot(later, cart2)
    outcome = dispatcher.plan(later, NOW + 1800, first)
    assert outcome.ok, outcome.reason
    legs = outcome.plan.legs["cart1"]
    assert legs[:2] == later.robot("cart1").committed
    end_of_trip = next(i for i, leg in enumerate(first.legs["cart1"]) if leg.kind is LegKind.RETURN)
    assert legs[2 : end_of_trip + 1] == first.legs["cart1"][2 : end_of_trip + 1]  # kept, not re-planned
    assert outcome.plan.legs["cart2"] == ()
    assert validate(outcome.plan, later, dispatcher.tables(later)) == ()


def test_a_lift_out_of_service_replans_around_it() -> None:
    dispatcher = make()
    snap = day()
    first = dispatcher.plan(snap, NOW).plan
    assert any(leg.lift_rides for leg in first.legs["adm1"])
    closed = replace(snap, closed_lifts=frozenset({"ADM-L1", "ADM-L2"}))
    outcome = dispatcher.plan(closed, NOW, first)
    assert outcome.ok
    assert all(leg.lift_rides == 0 for leg in outcome.plan.legs["adm1"])
    assert all("reach" in outcome.plan.unplanned[f"adm_601-{i}"] for i in range(4))


def test_an_unclaimed_parcel_rolls_to_the_next_window_first() -> None:
    dispatcher = make()
    # a full cart's worth is waiting for w2; the unclaimed parcel that came back must get a place
    snap = cb.snapshot([cb.cart()], cb.parcels("stop_dorm_2", 50), spans=((12, 12.75),))
    back = replace(cb.parcels("stop_dorm_2", 1, prefix="back")[0], rolled=1)
    outcome = dispatcher.plan(replace(snap, parcels=(*snap.parcels, back)), NOW)
    assert outcome.plan.window_of("back-0") == "w1"
    assert sum(1 for p in snap.parcels if p.id in outcome.plan.unplanned) == 1


def test_a_new_request_is_answered_with_an_eta_or_a_reason() -> None:
    dispatcher = make()
    snap = day()
    plan = dispatcher.plan(snap, NOW).plan
    ok = Request("r1", RequestKind.PICKUP, "adm_301", NOW + 600, NOW + 2400, created_s=NOW)
    far = Request("r2", RequestKind.PICKUP, "tea_305", NOW + 600, NOW + 2400, created_s=NOW)
    with_requests = replace(snap, requests=(ok, far))
    accepted = dispatcher.insert(plan, with_requests, ok, NOW)
    assert isinstance(accepted, Accepted) and accepted.robot == "adm1"
    assert NOW + 600 <= accepted.eta_s <= NOW + 2400
    refused = dispatcher.insert(accepted.plan, with_requests, far, NOW)
    assert not isinstance(refused, Accepted) and refused.reason
