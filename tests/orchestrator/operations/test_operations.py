"""The operations core: events in, commands out, over the real dispatcher on the sample campus."""

from __future__ import annotations

from pathlib import Path

import pytest

from maps.io import load_map
from maps.model import Site
from orchestrator.dispatch.campus import LegKind, Plan, Request, RequestKind, Size, Snapshot
from orchestrator.dispatch.dispatcher import Dispatcher, Outcome
from orchestrator.dispatch.insertion import Decision
from orchestrator.dispatch.travel import TravelTable
from orchestrator.domain import parcel as domain
from orchestrator.domain.parcel import ParcelState
from orchestrator.operations import (
    STATION,
    Alarm,
    LegArrived,
    LegFinished,
    LiftClosed,
    Operations,
    OperationsError,
    ParcelPickedUp,
    ParcelsArrived,
    ReleaseCodes,
    RequestCreated,
    RequestStatus,
    RobotFailed,
    SetTimer,
    Setup,
    StartLeg,
    TimerFired,
)
from orchestrator.operations.core import MAX_RETRIES
from sim.campus_day import CampusDay, campus_day

CAMPUS = Path(__file__).resolve().parents[3] / "maps" / "campuses" / "neijiang.yaml"
MORNING = 6.5 * 3600


@pytest.fixture(scope="module")
def site() -> Site:
    return load_map(CAMPUS)


@pytest.fixture(scope="module")
def day(site: Site) -> CampusDay:
    return campus_day(site, seed=5, parcels=40, carts=1, indoor=2, requests=5)


def make_ops(site: Site, day: CampusDay) -> Operations:
    snap = day.snapshot
    setup = Setup(snap.robots, snap.windows, snap.station, snap.handoffs, snap.chargers, snap.timings)
    return Operations(Dispatcher(site, iterations=50, seed=0), setup)


def morning(ops: Operations, day: CampusDay) -> list[object]:
    batch = tuple(p for p in day.snapshot.parcels if p.received_s == MORNING)
    return list(ops.on_event(ParcelsArrived(batch), MORNING))


def start_cart(ops: Operations, commands: list[object]) -> tuple[StartLeg, float]:
    """Fire the cart's release timer: the StartLeg of its first leg and the time."""
    timer = next(c for c in commands if isinstance(c, SetTimer) and c.key == "release:cart_1")
    started = [c for c in ops.on_event(TimerFired(timer.key), timer.at) if isinstance(c, StartLeg)]
    assert [c.leg.robot for c in started] == ["cart_1"]
    return started[0], timer.at


def finish(ops: Operations, start: StartLeg, now: float) -> list[object]:
    """Arrive and finish ``start``'s leg at ``now``, moving what it plans to move."""
    leg = start.leg
    ops.on_event(LegArrived(leg.robot, start.token), now)
    moved = leg.parcels if leg.kind in (LegKind.LOAD, LegKind.HANDOFF) else ()
    slots = {p: f"S{k:02d}" for k, p in enumerate(moved)} if leg.kind is LegKind.LOAD else {}
    return list(ops.on_event(LegFinished(leg.robot, start.token, moved, slots), now))


def test_a_batch_is_planned_and_its_parcels_sorted(site: Site, day: CampusDay) -> None:
    """The van's parcels are received, planned into windows (sort) and the robots get release timers."""
    ops = make_ops(site, day)
    commands = morning(ops, day)
    assert ops.plans == [(MORNING, True, None)]
    states = {r.state for r in ops.records.values()}
    assert states <= {ParcelState.SORTED, ParcelState.RECEIVED} and ParcelState.SORTED in states
    assert all(w == STATION for w in ops.where.values())
    assert not [c for c in commands if isinstance(c, StartLeg)]  # nothing is due at 06:30
    assert {c.key for c in commands if isinstance(c, SetTimer)} >= {"release:cart_1", "window:w1"}


def test_stored_parcels_continue_their_history_instead_of_being_received_again(
    site: Site, day: CampusDay
) -> None:
    """Live mode hands the core the store's records: parcels received by intake (and one returned
    yesterday) get no second ``receive``; each one's first event here follows its stored version
    (``sort``, or ``roll`` for the returned one); a parcel stored as loaded is refused."""
    batch = tuple(p for p in day.snapshot.parcels if p.received_s == MORNING)
    dorms = [p for p in batch if p.destination.startswith("stop_")]
    assert len(dorms) >= 5
    stored: dict[str, domain.Parcel] = {}
    for parcel in dorms:
        dest = domain.Destination(dorm=parcel.destination, place=parcel.destination)
        stored[parcel.id], _ = domain.receive_parcel(parcel.id, parcel.size.name, dest, 1.7e9)
    back = stored[dorms[0].id]
    for kind, data in (
        (domain.ParcelEvent.SORT, {"window": "w1", "stop": dorms[0].destination}),
        (domain.ParcelEvent.LOAD, {"cart": "cart_1", "compartment": "S01"}),
        (domain.ParcelEvent.RETURN, {}),
    ):
        back, _ = domain.transition(back, kind, 1.7e9, **data)
    stored[back.tracking_number] = back
    ops = make_ops(site, day)
    ops.on_event(ParcelsArrived(batch, stored=stored), MORNING)
    firsts: dict[str, tuple[str, int]] = {}
    for e in ops.history:
        firsts.setdefault(e.entity_id, (str(e.kind), e.sequence))
    assert all(firsts[pid] == ("receive", 1) for pid in firsts if pid not in stored)
    mine = {pid: firsts[pid] for pid in stored if pid in firsts}
    assert back.tracking_number in mine and len(mine) >= 3, mine
    for pid, (kind, sequence) in mine.items():
        assert sequence == stored[pid].version + 1
        assert kind == ("roll" if pid == back.tracking_number else "sort")
    loaded, _ = domain.transition(stored[dorms[1].id], domain.ParcelEvent.SORT, 1.7e9, window="w1", stop="x")
    loaded, _ = domain.transition(loaded, domain.ParcelEvent.LOAD, 1.7e9, cart="cart_1", compartment="S02")
    with pytest.raises(OperationsError, match="is loaded, not at the station"):
        make_ops(site, day).on_event(ParcelsArrived((dorms[1],), stored={dorms[1].id: loaded}), MORNING)


def test_legs_are_released_one_at_a_time(site: Site, day: CampusDay) -> None:
    """At its timer the cart gets its first leg; nothing more until it reports the leg finished."""
    ops = make_ops(site, day)
    start, now = start_cart(ops, morning(ops, day))
    assert start.leg.kind is LegKind.LOAD and start.leg.released
    assert not [c for c in ops.on_event(TimerFired("release:cart_1"), now + 1) if isinstance(c, StartLeg)]
    assert ops.snapshot(now).robot("cart_1").committed == (start.leg,)
    following = [c for c in finish(ops, start, now + 300) if isinstance(c, StartLeg | SetTimer)]
    assert following  # the next leg is started or timed
    assert all(ops.records[p].state is ParcelState.LOADED for p in start.leg.parcels)
    assert all(ops.where[p] == "cart_1" for p in start.leg.parcels)


def test_a_stop_releases_codes_and_unclaimed_parcels_roll(site: Site, day: CampusDay) -> None:
    """At a stop the codes go out; a pickup finishes a parcel; what is left comes back and rolls."""
    ops = make_ops(site, day)
    start, now = start_cart(ops, morning(ops, day))
    commands = finish(ops, start, now)
    picked: str | None = None
    left: set[str] = set()
    for _ in range(40):
        nxt = next((c for c in commands if isinstance(c, StartLeg) and c.leg.robot == "cart_1"), None)
        if nxt is None:
            timer = next(c for c in commands if isinstance(c, SetTimer) and c.key == "release:cart_1")
            now = max(now, timer.at)
            commands = list(ops.on_event(TimerFired(timer.key), now))
            continue
        leg = nxt.leg
        if leg.kind is LegKind.DWELL:
            arrived = ops.on_event(LegArrived("cart_1", nxt.token), now)
            codes = [c for c in arrived if isinstance(c, ReleaseCodes)]
            assert codes and set(codes[0].parcels) == set(leg.parcels)
            assert all(ops.records[p].state is ParcelState.AT_STOP for p in leg.parcels)
            picked = leg.parcels[0]
            ops.on_event(ParcelPickedUp(picked, "cart_1"), now + 60)
            left = set(leg.parcels[1:]) | {p for p, w in ops.where.items() if w == "cart_1"} - {picked}
            commands = list(ops.on_event(LegFinished("cart_1", nxt.token), now + 600))
            now += 600
        elif leg.kind is LegKind.RETURN:
            aboard = tuple(sorted(p for p, w in ops.where.items() if w == "cart_1"))
            ops.on_event(LegArrived("cart_1", nxt.token), now)
            ops.on_event(LegFinished("cart_1", nxt.token, aboard), now + 60)
            break
        else:
            commands = finish(ops, nxt, now)
        now += 120
    assert picked is not None and ops.records[picked].state is ParcelState.PICKED_UP
    assert left
    for pid in left:
        assert ops.where[pid] == STATION
        assert ops.records[pid].state is ParcelState.RETURNED
        assert ops.parcels[pid].rolled == 1
        committed = ops.snapshot(now).robot("cart_1").committed
        assert all(pid not in leg.parcels for leg in committed)  # planned again from the station
    assert ops.where[picked] == "picked_up"


def test_a_broken_down_cart_returns_its_parcels(site: Site, day: CampusDay) -> None:
    """Parcels on a cart that fails are returned (back at the station when it is towed), the cart goes
    offline for the dispatcher with a closing RETURN, and a re-plan follows."""
    ops = make_ops(site, day)
    start, now = start_cart(ops, morning(ops, day))
    finish(ops, start, now)
    aboard = [p for p, w in ops.where.items() if w == "cart_1"]
    assert aboard
    commands = ops.on_event(RobotFailed("cart_1", "motor", now + 1800), now + 60)
    assert any(isinstance(c, Alarm) and c.kind == "robot_failed" for c in commands)
    for pid in aboard:
        assert ops.where[pid] == STATION
        assert ops.records[pid].state is ParcelState.RETURNED
        assert ops.parcels[pid].received_s == now + 1800
    robot = ops.snapshot(now + 60).robot("cart_1")
    assert not robot.online
    assert robot.committed[-1].kind is LegKind.RETURN and robot.committed[-1].place == robot.home
    assert ops.plans[-1][0] == now + 60
    assert not [c for c in commands if isinstance(c, StartLeg) and c.leg.robot == "cart_1"]
    assert sum(1 for w in ops.where.values()) == len(ops.parcels)


def test_a_cart_failing_while_it_loads_leaves_its_parcels_to_be_planned_again(
    site: Site, day: CampusDay
) -> None:
    """A LOAD that never finished does not keep its parcels: the re-plan after the failure succeeds."""
    ops = make_ops(site, day)
    start, now = start_cart(ops, morning(ops, day))
    ops.on_event(RobotFailed("cart_1", "motor", now + 600), now + 10)
    assert ops.plans[-1] == (now + 10, True, None)
    committed = ops.snapshot(now + 10).robot("cart_1").committed
    assert committed[0].kind is LegKind.LOAD and committed[0].parcels == ()
    assert all(ops.where[p] == STATION for p in start.leg.parcels)
    assert all(ops.records[p].state is ParcelState.SORTED for p in start.leg.parcels)


def test_repeated_reports_change_nothing(site: Site, day: CampusDay) -> None:
    """A leg finished twice or a pickup reported twice (at-least-once delivery) is applied once."""
    ops = make_ops(site, day)
    start, now = start_cart(ops, morning(ops, day))
    finish(ops, start, now)
    history = len(ops.history)
    moved = start.leg.parcels
    again = ops.on_event(LegFinished("cart_1", start.token, moved, {p: "S01" for p in moved}), now + 1)
    assert len(ops.history) == history
    assert not [c for c in again if isinstance(c, StartLeg) and c.token == start.token]


def test_reports_that_contradict_the_core_are_refused(site: Site, day: CampusDay) -> None:
    """An unknown robot, a leg never given, a pickup of a parcel not on that cart: OperationsError."""
    ops = make_ops(site, day)
    start, now = start_cart(ops, morning(ops, day))
    with pytest.raises(OperationsError, match="never given"):
        ops.on_event(LegFinished("cart_1", start.token + 99), now)
    with pytest.raises(OperationsError, match="unknown robot"):
        ops.on_event(RobotFailed("cart_9", "x", now), now)
    with pytest.raises(OperationsError, match="picked up from cart_1"):
        ops.on_event(ParcelPickedUp(start.leg.parcels[0], "cart_1"), now)
    with pytest.raises(OperationsError, match="arrived twice"):
        ops.on_event(ParcelsArrived(day.snapshot.parcels[:1]), now)


def test_a_request_is_inserted_or_refused_with_a_reason(site: Site, day: CampusDay) -> None:
    """A mini-program order goes into the current plan on an indoor robot (or is refused, with an alarm)."""
    ops = make_ops(site, day)
    morning(ops, day)
    request = day.requests[0]
    ops.on_event(RequestCreated(request), request.created_s)
    record = ops.requests[request.id]
    assert record.status is RequestStatus.ACCEPTED and record.robot is not None
    assert record.robot.startswith("indoor_")
    assert any(request.id in leg.requests for leg in ops.plan.legs[record.robot])
    impossible = type(request)("q9999", RequestKind.PICKUP, request.place, 0.0, 1.0, Size.S, created_s=0.0)
    commands = ops.on_event(RequestCreated(impossible), request.created_s)
    assert ops.requests["q9999"].status is RequestStatus.REFUSED
    assert any(isinstance(c, Alarm) and c.kind == "request_refused" for c in commands)


class FlakyPlanner:
    """The real dispatcher, except that the re-plans listed in ``refuse`` (by call number) keep the
    previous plan, as the dispatcher does when a new plan breaks a rule."""

    def __init__(self, inner: Dispatcher, refuse: set[int]) -> None:
        self.inner = inner
        self.refuse = refuse
        self.calls = 0

    def plan(self, snapshot: Snapshot, now: float, previous: Plan | None = None) -> Outcome:
        self.calls += 1
        if self.calls in self.refuse:
            return Outcome(previous or Plan(now, {}), False, "the new plan broke 1 rule(s)")
        return self.inner.plan(snapshot, now, previous)

    def insert(self, plan: Plan, snapshot: Snapshot, request: Request, now: float) -> Decision:
        return self.inner.insert(plan, snapshot, request, now)

    def tables(self, snapshot: Snapshot) -> dict[str, TravelTable]:
        return self.inner.tables(snapshot)


def test_a_kept_plan_raises_an_alarm_and_is_tried_again_after_a_trip(site: Site, day: CampusDay) -> None:
    """A re-plan the dispatcher refuses keeps the current plan (robots go on), raises ``plan_kept`` and
    is tried again when a robot ends a trip (not at every event)."""
    snap = day.snapshot
    planner = FlakyPlanner(
        Dispatcher(site, iterations=50, seed=0), refuse={2, 3, 4, 5}
    )  # the plan, its retries
    setup = Setup(
        snap.robots, snap.windows, snap.station, snap.handoffs, snap.chargers, snap.timings, retry_s=0.0
    )
    ops = Operations(planner, setup)
    start, now = start_cart(ops, morning(ops, day))
    before = ops.plan
    commands = ops.on_event(LiftClosed("ADM-L1"), now)
    assert any(isinstance(c, Alarm) and c.kind == "plan_kept" for c in commands)
    assert ops.plan.legs["cart_1"][1:] == before.legs["cart_1"][1:]
    assert planner.calls == 2 + MAX_RETRIES  # refused, then refused again without the held parcels
    commands = finish(ops, start, now + 300)  # a LOAD ends no trip: no retry yet
    assert planner.calls == 2 + MAX_RETRIES
    for _ in range(200):  # run the cart's trip to its RETURN
        nxt = next((c for c in commands if isinstance(c, StartLeg) and c.leg.robot == "cart_1"), None)
        if nxt is None:
            now += 300
            commands = ops.on_event(TimerFired("release:cart_1"), now)
            continue
        commands = finish(ops, nxt, now)
        if nxt.leg.kind is LegKind.RETURN:
            break
        now += 60
    assert planner.calls == 3 + MAX_RETRIES and ops.plans[-1][1]
