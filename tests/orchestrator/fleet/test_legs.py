"""Dispatcher legs → route stages, end actions per kind, moved items, and orders that validate."""

from __future__ import annotations

import math
from dataclasses import replace

import pytest
from vda5050_samples import OfficialSchemas, headers

from interfaces.vda5050 import (
    Action,
    ActionState,
    ActionStatus,
    BlockingType,
    Handoff,
    HandoffRole,
    OpenCompartment,
    Order,
    TopicKind,
    WaitForPickup,
    read_action,
    to_json,
)
from maps.model import OUTDOOR, FloorFrame, Place, PlaceKind, Site
from maps.routing import Router
from orchestrator.dispatch.campus import Leg, LegKind
from orchestrator.fleet import LegError, OrderBuilder
from orchestrator.fleet.legs import (
    Drive,
    ItemOutcome,
    LegPlan,
    LegPlanner,
    MapPose,
    Passage,
    Ride,
    carried_pose,
    fleet_leg,
    item_outcomes,
    lift_poses,
    moved_from_results,
)
from orchestrator.fleet.orders import Leg as FleetLeg


@pytest.fixture(scope="module")
def planner(campus: Site) -> LegPlanner:
    """One planner on the sample campus for the module (its routers are cached)."""
    return LegPlanner(campus)


def _leg(kind: LegKind, place: str, robot: str = "cart-01", **kw: object) -> Leg:
    defaults: dict[str, object] = {"arrive_s": 100.0, "start_s": 120.0, "end_s": 420.0}
    return Leg(robot, kind, place, **{**defaults, **kw})  # type: ignore[arg-type]


def _state(action: Action, status: ActionStatus, result: str | None = None) -> ActionState:
    return ActionState(
        action_id=action.action_id,
        action_type=action.action_type,
        action_status=status,
        result_description=result,
    )


def _check_orders(site: Site, plan: LegPlan, schemas: OfficialSchemas) -> None:
    """Every drive of ``plan`` (end actions on the last) builds into an order the schema accepts."""
    builder = OrderBuilder(site)
    for k, drive in enumerate(plan.drives):
        last = k == len(plan.drives) - 1
        parts = builder.build(fleet_leg(drive, plan.leg.robot, plan.end_actions if last else ()))
        order = headers(plan.leg.robot).make(
            Order,
            order_id=f"{plan.token}-{k}",
            order_update_id=0,
            nodes=list(parts.nodes),
            edges=list(parts.edges),
        )
        schemas.check(TopicKind.ORDER, to_json(order))
        assert [n.node_id for n in parts.nodes] == list(drive.path)
        assert {n.node_position.map_id for n in parts.nodes if n.node_position} == {drive.map_id}
        assert parts.nodes[-1].actions == (list(plan.end_actions) if last else [])


# ---- stages ----------------------------------------------------------------------------------------


def test_cart_dwell_at_a_dorm_stop(planner: LegPlanner, campus: Site, schemas: OfficialSchemas) -> None:
    """A cart's DWELL from the station is one outdoor drive along the cart route to the stop's node,
    with one SOFT waitForPickup per parcel naming the stop, the window and the dwell time."""
    leg = _leg(LegKind.DWELL, "stop_dorm_1", parcels=("p1", "p2"), window="w-0800")
    plan = planner.plan(leg, token=5, profile="cart", start_node="station", slots={"p1": 3, "p2": 0})
    route = Router(campus, "cart").route("station", "stop_dorm_1")
    assert plan.stages == (Drive(tuple(route.path), OUTDOOR),)
    assert plan.end_node == campus.places["stop_dorm_1"].node == plan.last_drive.end
    assert [read_action(a) for a in plan.end_actions] == [
        WaitForPickup(compartment=3, timeout_s=300.0, stop="stop_dorm_1", window="w-0800"),
        WaitForPickup(compartment=0, timeout_s=300.0, stop="stop_dorm_1", window="w-0800"),
    ]
    assert [a.blocking_type for a in plan.end_actions] == [BlockingType.SOFT] * 2
    assert [a.action_id for a in plan.end_actions] == ["5-0-waitForPickup", "5-1-waitForPickup"]
    _check_orders(campus, plan, schemas)


def test_indoor_delivery_to_an_upper_floor(
    planner: LegPlanner, campus: Site, schemas: OfficialSchemas
) -> None:
    """An indoor DELIVER from the mailroom to a 6th-floor office: drive (1F), ride, drive (6F); each
    drive on one floor map, the doors on the way listed with the nodes around them; per parcel
    openCompartment then waitForPickup."""
    leg = _leg(
        LegKind.DELIVER, "adm_601", robot="indoor-01", parcels=("p1", "p2"), start_s=500.0, end_s=560.0
    )
    plan = planner.plan(
        leg, token=9, profile="indoor", start_node="ADM-1F-mailroom", slots={"p1": 1, "p2": 4}
    )
    first, ride, last = plan.stages
    assert isinstance(first, Drive) and isinstance(ride, Ride) and isinstance(last, Drive)
    assert (first.map_id, last.map_id) == ("ADM-1F", "ADM-6F")
    for drive in (first, last):
        assert {campus.nodes[n].floor for n in drive.path} == {drive.map_id}
    lift = campus.lifts[ride.lift]
    assert (ride.building, ride.from_floor, ride.to_floor) == ("ADM", "ADM-1F", "ADM-6F")
    assert (ride.entry_node, ride.exit_node) == (lift.landings["ADM-1F"], lift.landings["ADM-6F"])
    assert (first.end, last.start, last.end) == (ride.entry_node, ride.exit_node, "ADM-6F-601")
    assert ride.edge_id == f"lift:{ride.lift}:{ride.entry_node}:{ride.exit_node}"
    doors = [*first.doors, *last.doors]
    assert [d.id for d in doors] == plan.route.doors and doors
    for d in doors:
        drive = first if d in first.doors else last
        assert drive.path.index(d.after) == drive.path.index(d.before) + 1
        assert campus.edges[d.edge].door == d.id
    assert [read_action(a) for a in plan.end_actions] == [
        OpenCompartment(compartment=1),
        WaitForPickup(compartment=1, timeout_s=60.0),
        OpenCompartment(compartment=4),
        WaitForPickup(compartment=4, timeout_s=60.0),
    ]
    assert plan.item_actions["p2"] == ("9-2-openCompartment", "9-3-waitForPickup")
    _check_orders(campus, plan, schemas)


def test_building_entrance_splits_drives_and_lists_the_gate(
    small_site: Site, schemas: OfficialSchemas
) -> None:
    """An indoor-outdoor robot entering a building without a lift gets a new drive on the floor map,
    ``entered_by`` the entrance edge; the gate on it is listed there and ``crossing=True`` drives it."""
    leg = _leg(LegKind.DELIVER, "office", robot="r1", parcels=("p1",))
    plan = LegPlanner(small_site).plan(leg, token="t", profile="robot", start_node="S", slots={"p1": 0})
    outdoor, ground, ride, upper = plan.stages
    assert outdoor == Drive(("S", "B", "C"), OUTDOOR)
    crossing = Passage("C-h1", "C-h1", "C", "h1")
    assert ground == Drive(("h1",), "H1", gates=(Passage("G", "C-h1", "C", "h1"),), entered_by=crossing)
    assert ride == Ride("H", "LA", "H1", "H3", "h1", "h3a")
    assert upper == Drive(("h3a", "h3b", "off"), "H3", doors=(Passage("D", "h3b-off", "h3b", "off"),))
    across = fleet_leg(ground, "r1", crossing=True)
    assert across.path == ("C", "h1")
    parts = OrderBuilder(small_site).build(across)
    assert [e.edge_id for e in parts.edges] == ["C-h1"]
    with pytest.raises(LegError, match="crosses no map boundary"):
        fleet_leg(upper, "r1", crossing=True)
    _check_orders(small_site, plan, schemas)


def test_closed_lift_routes_via_the_other_lift(small_site: Site) -> None:
    """With lift LA closed the robot rides LB (from its own landing); with both closed: a clear LegError."""
    planner = LegPlanner(small_site)
    leg = _leg(LegKind.DELIVER, "office", robot="r1", parcels=("p1",))
    kw = {"token": 1, "profile": "indoor", "start_node": "h1", "slots": {"p1": 0}}
    assert planner.plan(leg, **kw).rides[0].lift == "LA"  # type: ignore[arg-type]
    plan = planner.plan(leg, closed_lifts={"LA"}, **kw)  # type: ignore[arg-type]
    assert plan.rides == (Ride("H", "LB", "H1", "H3", "h1b", "h3b"),)
    assert plan.drives[0].path == ("h1", "h1b")
    with pytest.raises(LegError, match=r"robot r1: deliver at office: no route from 'h1' to 'off'"):
        planner.plan(leg, closed_lifts=frozenset({"LA", "LB"}), **kw)  # type: ignore[arg-type]


def test_campus_closed_lift(planner: LegPlanner) -> None:
    """On the campus, the administration building's first lift closed: the ride takes the second."""
    leg = _leg(LegKind.DELIVER, "adm_601", robot="indoor-01", parcels=("p1",))
    kw = {"token": 1, "profile": "indoor", "start_node": "ADM-1F-mailroom", "slots": {"p1": 0}}
    assert planner.plan(leg, **kw).rides[0].lift == "ADM-L1"  # type: ignore[arg-type]
    ride = planner.plan(leg, closed_lifts={"ADM-L1"}, **kw).rides[0]  # type: ignore[arg-type]
    assert (ride.lift, ride.from_floor, ride.to_floor) == ("ADM-L2", "ADM-1F", "ADM-6F")


def test_leg_at_the_robot_s_node_is_one_node_drive(small_site: Site, schemas: OfficialSchemas) -> None:
    """A CHARGE at the node the robot stands on: one drive of one node, a HARD startCharging there."""
    small_site.places["charger"] = Place("charger", PlaceKind.CHARGER, "S")
    plan = LegPlanner(small_site).plan(
        _leg(LegKind.CHARGE, "charger"), token=3, profile="cart", start_node="S", slots={}
    )
    assert plan.stages == (Drive(("S",), OUTDOOR),)
    assert [(a.action_type, a.action_id, a.blocking_type) for a in plan.end_actions] == [
        ("startCharging", "3-0-startCharging", BlockingType.HARD)
    ]
    _check_orders(small_site, plan, schemas)


# ---- end actions -----------------------------------------------------------------------------------


def test_handoff_and_meet_pair(planner: LegPlanner, campus: Site, schemas: OfficialSchemas) -> None:
    """The cart gives (its compartments in parcel order), the indoor robot takes into the first free
    compartments it offers; the k-th given goes into the k-th taken (``received``)."""
    parcels = ("p1", "p2", "p3")
    handoff = _leg(LegKind.HANDOFF, "stop_adm", parcels=parcels, partner="indoor-01")
    meet = _leg(LegKind.MEET, "adm_mailroom", robot="indoor-01", parcels=parcels, partner="cart-01")
    give = planner.plan(
        handoff, token=11, profile="cart", start_node="station", slots={"p1": 5, "p2": 2, "p3": 7}
    )
    take = planner.plan(
        meet, token=12, profile="indoor", start_node="ADM-1F-mailroom", slots={}, receive_into=(4, 0, 1, 2)
    )
    assert [read_action(a) for a in give.end_actions] == [
        Handoff(role=HandoffRole.GIVER, peer_serial_number="indoor-01", compartments=[5, 2, 7])
    ]
    assert [read_action(a) for a in take.end_actions] == [
        Handoff(role=HandoffRole.TAKER, peer_serial_number="cart-01", compartments=[4, 0, 1])
    ]
    assert [a.blocking_type for a in (*give.end_actions, *take.end_actions)] == [BlockingType.HARD] * 2
    assert dict(take.received) == {"p1": 4, "p2": 0, "p3": 1} and not give.received
    assert take.stages == (Drive(("ADM-1F-mailroom",), "ADM-1F"),)
    _check_orders(campus, give, schemas)
    _check_orders(campus, take, schemas)
    with pytest.raises(LegError, match="MEET at adm_mailroom takes 3 parcels but only 2 free compartments"):
        planner.plan(
            meet, token=12, profile="indoor", start_node="ADM-1F-mailroom", slots={}, receive_into=(0, 1)
        )
    with pytest.raises(LegError, match="names no partner"):
        planner.plan(
            _leg(LegKind.HANDOFF, "stop_adm", parcels=parcels),
            token=11,
            profile="cart",
            start_node="station",
            slots={"p1": 5, "p2": 2, "p3": 7},
        )


@pytest.mark.parametrize(
    ("kind", "parcels", "requests", "want"),
    [
        (LegKind.LOAD, ("p1",), (), []),
        (LegKind.RETURN, (), (), []),
        (LegKind.HANDOFF, (), (), []),
        (LegKind.COLLECT, (), ("q1", "q2"), [OpenCompartment(compartment=1), OpenCompartment(compartment=2)]),
        (
            LegKind.DROP,
            (),
            ("q1",),
            [OpenCompartment(compartment=1), WaitForPickup(compartment=1, timeout_s=300.0)],
        ),
    ],
)
def test_end_actions_of_other_kinds(
    small_site: Site,
    kind: LegKind,
    parcels: tuple[str, ...],
    requests: tuple[str, ...],
    want: list[object],
) -> None:
    """LOAD, RETURN and an emptied HANDOFF have no actions; COLLECT opens, DROP opens and waits."""
    leg = _leg(kind, "station", robot="r1", parcels=parcels, requests=requests, partner="r2")
    slots = {"q1": 1, "q2": 2}
    plan = LegPlanner(small_site).plan(leg, token=1, profile="robot", start_node="A", slots=slots)
    assert [read_action(a) for a in plan.end_actions] == want


def test_wait_has_a_floor(small_site: Site) -> None:
    """A leg planned with no service time still gives the recipient ``min_wait_s`` to come."""
    leg = _leg(LegKind.DROP, "station", robot="r1", requests=("q1",), start_s=50.0, end_s=50.0)
    plan = LegPlanner(small_site, min_wait_s=45.0).plan(
        leg, token=1, profile="robot", start_node="S", slots={"q1": 0}
    )
    assert read_action(plan.end_actions[1]) == WaitForPickup(compartment=0, timeout_s=45.0)
    with pytest.raises(ValueError, match="min_wait_s must be > 0"):
        LegPlanner(small_site, min_wait_s=0.0)


@pytest.mark.parametrize(
    ("leg", "slots", "message"),
    [
        (
            _leg(LegKind.DELIVER, "office", parcels=("p1", "p2")),
            {"p1": 0},
            "robot cart-01: deliver at office: no compartment known for p2",
        ),
        (_leg(LegKind.DWELL, "stop_c", parcels=("p1",)), {"p1": 0}, "DWELL at stop_c has no window"),
        (
            _leg(LegKind.COLLECT, "office", requests=("q1",)),
            {"q1": -1},
            "compartment of q1 must be an int >= 0",
        ),
        (_leg(LegKind.DWELL, "nowhere"), {}, "dwell leg at unknown place 'nowhere'"),
    ],
)
def test_bad_legs_are_clear_errors(small_site: Site, leg: Leg, slots: dict[str, int], message: str) -> None:
    """A missing slot, a DWELL without window, a bad compartment or an unknown place: one-line LegError."""
    with pytest.raises(LegError, match=message):
        LegPlanner(small_site).plan(leg, token=1, profile="robot", start_node="S", slots=slots)


def test_unknown_start_or_profile(small_site: Site) -> None:
    """An unknown start node or profile is a LegError too."""
    leg = _leg(LegKind.RETURN, "station")
    with pytest.raises(LegError, match="start node 'nope' is not on the map"):
        LegPlanner(small_site).plan(leg, token=1, profile="robot", start_node="nope", slots={})
    with pytest.raises(LegError, match="unknown profile 'boat'"):
        LegPlanner(small_site).plan(leg, token=1, profile="boat", start_node="S", slots={})


def test_action_ids_are_deterministic(planner: LegPlanner) -> None:
    """The same leg and token give the same actions (a resend is recognised); another token other ids."""
    leg = _leg(LegKind.DWELL, "stop_dorm_2", parcels=("p1", "p2", "p3"), window="w1")
    kw = {"profile": "cart", "start_node": "station", "slots": {"p1": 0, "p2": 1, "p3": 2}}
    once = planner.plan(leg, token=42, **kw)  # type: ignore[arg-type]
    again = LegPlanner(planner.site).plan(leg, token=42, **kw)  # type: ignore[arg-type]
    other = planner.plan(leg, token=43, **kw)  # type: ignore[arg-type]
    assert once.end_actions == again.end_actions
    ids = [a.action_id for a in once.end_actions]
    assert len(set(ids)) == 3 and all(i.startswith("42-") for i in ids)
    assert not set(ids) & {a.action_id for a in other.end_actions}


def test_planner_caches_routers(planner: LegPlanner) -> None:
    """One router per (profile, closed lifts), whatever order the lifts are given in."""
    assert planner.router("indoor", ["ADM-L1", "ADM-L2"]) is planner.router("indoor", ("ADM-L2", "ADM-L1"))
    assert planner.router("indoor") is not planner.router("indoor", ["ADM-L1"])


def test_fleet_leg_puts_actions_on_the_last_node() -> None:
    """``fleet_leg``: the drive's path, the actions on its last index, ``released`` passed on."""
    action = Action(action_type="x", action_id="a", blocking_type=BlockingType.NONE)
    assert fleet_leg(Drive(("a", "b", "a"), OUTDOOR), "r", [action], released=2) == FleetLeg(
        "r", ("a", "b", "a"), {2: (action,)}, released=2
    )
    assert fleet_leg(Drive(("a",), OUTDOOR), "r").actions == {}
    with pytest.raises(LegError, match="only a Drive becomes a fleet leg, not Ride"):
        fleet_leg(Ride("H", "L", "1", "2", "a", "b"), "r")  # type: ignore[arg-type]


# ---- results ---------------------------------------------------------------------------------------


def test_moved_at_a_delivery(planner: LegPlanner) -> None:
    """DELIVER: a parcel whose wait FINISHED moved; "timeout" is NOT_DONE, another failure FAILED, a
    parcel with an action still running PENDING; only the DONE ones are moved."""
    leg = _leg(LegKind.DELIVER, "adm_601", robot="indoor-01", parcels=("p1", "p2", "p3", "p4"))
    plan = planner.plan(
        leg, token=2, profile="indoor", start_node="ADM-6F-601", slots={"p1": 0, "p2": 1, "p3": 2, "p4": 3}
    )
    a = plan.end_actions
    F, X, R = ActionStatus.FINISHED, ActionStatus.FAILED, ActionStatus.RUNNING
    states = [
        _state(a[0], F),
        _state(a[1], F),
        _state(a[2], F),
        _state(a[3], X, "timeout: parcel in compartment 1 not taken within 60 s"),
        _state(a[4], X, "compartment 2: the locker board refused to open it"),
        _state(a[5], X, "order cancelled"),
        _state(a[6], F),
        _state(a[7], R),
    ]
    assert item_outcomes(plan, states) == {
        "p1": ItemOutcome.DONE,
        "p2": ItemOutcome.NOT_DONE,
        "p3": ItemOutcome.FAILED,
        "p4": ItemOutcome.PENDING,
    }
    assert moved_from_results(plan, states) == ("p1",)
    assert moved_from_results(plan, []) == ()


def test_moved_per_kind(planner: LegPlanner, small_site: Site) -> None:
    """HANDOFF: all or nothing; DWELL, MEET, LOAD, RETURN, CHARGE: nothing (reported elsewhere) even
    when every action FINISHED; COLLECT: the opened ones; DROP: the taken ones."""
    F, X = ActionStatus.FINISHED, ActionStatus.FAILED

    def finished(plan: LegPlan) -> list[ActionState]:
        return [_state(a, F) for a in plan.end_actions]

    parcels = ("p1", "p2")
    slots = {"p1": 0, "p2": 1, "q1": 2, "q2": 3}
    give = planner.plan(
        _leg(LegKind.HANDOFF, "stop_adm", parcels=parcels, partner="in"),
        token=1,
        profile="cart",
        start_node="station",
        slots=slots,
    )
    assert moved_from_results(give, finished(give)) == parcels
    assert moved_from_results(give, [_state(give.end_actions[0], X, "peer did not come")]) == ()

    dwell = planner.plan(
        _leg(LegKind.DWELL, "stop_dorm_1", parcels=parcels, window="w"),
        token=2,
        profile="cart",
        start_node="station",
        slots=slots,
    )
    states = [_state(dwell.end_actions[0], F), _state(dwell.end_actions[1], X, "timeout: not taken")]
    assert moved_from_results(dwell, states) == ()
    assert item_outcomes(dwell, states) == {"p1": ItemOutcome.DONE, "p2": ItemOutcome.NOT_DONE}

    meet = planner.plan(
        _leg(LegKind.MEET, "adm_mailroom", parcels=parcels, partner="cart"),
        token=3,
        profile="indoor",
        start_node="ADM-1F-mailroom",
        slots={},
        receive_into=(0, 1),
    )
    assert moved_from_results(meet, finished(meet)) == ()
    assert item_outcomes(meet, finished(meet)) == {"p1": ItemOutcome.DONE, "p2": ItemOutcome.DONE}

    for kind in (LegKind.LOAD, LegKind.RETURN, LegKind.CHARGE):
        plan = LegPlanner(small_site).plan(
            _leg(kind, "station", parcels=parcels),
            token=4,
            profile="cart",
            start_node="S",
            slots=slots,
        )
        assert moved_from_results(plan, finished(plan)) == ()

    collect = LegPlanner(small_site).plan(
        _leg(LegKind.COLLECT, "office", requests=("q1", "q2")),
        token=5,
        profile="indoor",
        start_node="off",
        slots=slots,
    )
    opened = [_state(collect.end_actions[0], X, "board down"), _state(collect.end_actions[1], F)]
    assert moved_from_results(collect, opened) == ("q2",)

    drop = LegPlanner(small_site).plan(
        _leg(LegKind.DROP, "office", requests=("q1", "q2")),
        token=6,
        profile="indoor",
        start_node="off",
        slots=slots,
    )
    a = drop.end_actions
    states = [_state(a[0], F), _state(a[1], F), _state(a[2], F), _state(a[3], X, "timeout: not taken")]
    assert moved_from_results(drop, states) == ("q1",)


# ---- lift poses ------------------------------------------------------------------------------------

RIDE_LA = Ride("H", "LA", "H1", "H3", "h1", "h3a")


def _rounded(pose: MapPose) -> tuple[float, float, float, str]:
    return round(pose.x, 6), round(pose.y, 6), round(pose.theta, 6), pose.map_id


def test_lift_poses_face_from_the_landing_into_the_cabin_and_out_again(small_site: Site) -> None:
    """A cabin centre 1.5 m north of both landings: in = the centre on H1's map facing north, out = the
    exit landing on H3's map facing south; the route's neighbours and the robot's heading do not count
    when the landings give the way."""
    lift = small_site.lifts["LA"]
    small_site.lifts["LA"] = replace(lift, cabin=replace(lift.cabin, y=21.5))
    inside, out = lift_poses(small_site, RIDE_LA, approach="h1b", leave="h3b", heading=3.0)
    assert _rounded(inside) == (200.0, 21.5, round(math.pi / 2, 6), "H1")
    assert _rounded(out) == (200.0, 20.0, round(-math.pi / 2, 6), "H3")


def test_landings_at_the_cabin_centre_take_the_lift_door(small_site: Site) -> None:
    """Landings at the cabin's centre (as on the sample campus) give no direction: the lift's door on
    each floor does (door south of the centre → in facing north, out facing south)."""
    lift = small_site.lifts["LA"]
    small_site.lifts["LA"] = replace(lift, door_positions={"H1": (200.0, 19.3), "H3": (200.0, 19.3)})
    inside, out = lift_poses(small_site, RIDE_LA, approach="h1b", leave="h3b")
    assert _rounded(inside) == (200.0, 20.0, round(math.pi / 2, 6), "H1")
    assert _rounded(out) == (200.0, 20.0, round(-math.pi / 2, 6), "H3")


def test_without_doors_the_route_and_then_the_robot_decide(small_site: Site) -> None:
    """No door either: in faces from the route's previous node (h1b, east of LA → west), out toward the
    next node (h3b → east); without neighbours, in is the robot's heading and out its reverse."""
    inside, out = lift_poses(small_site, RIDE_LA, approach="h1b", leave="h3b", heading=1.0)
    assert (round(inside.theta, 6), round(out.theta, 6)) == (round(math.pi, 6), 0.0)
    inside, out = lift_poses(small_site, RIDE_LA, heading=1.0)
    assert (round(inside.theta, 6), round(out.theta, 6)) == (1.0, round(1.0 - math.pi, 6))


def test_lift_poses_are_in_each_floors_frame(small_site: Site) -> None:
    """H3's map turned a quarter (origin at ENU (200, 0)): the exit landing (200, 20) is (20, 0) there and
    an ENU heading south (-pi/2) reads -pi; the boarding floor's robot heading is in H1's frame."""
    small_site.floors["H3"] = replace(small_site.floors["H3"], frame=FloorFrame(200.0, 0.0, math.pi / 2))
    lift = small_site.lifts["LA"]
    small_site.lifts["LA"] = replace(lift, cabin=replace(lift.cabin, y=21.5))
    _, out = lift_poses(small_site, RIDE_LA)
    assert _rounded(out) == (20.0, 0.0, round(-math.pi, 6), "H3")
    carried = carried_pose(small_site, RIDE_LA, MapPose(200.0, 21.5, math.pi / 2, "H1"))
    assert _rounded(carried) == (21.5, 0.0, 0.0, "H3")
    with pytest.raises(LegError, match="does not ride from H1"):
        carried_pose(small_site, RIDE_LA, MapPose(0.0, 0.0, 0.0, "H3"))
    with pytest.raises(LegError, match="lift LX"):
        lift_poses(small_site, replace(RIDE_LA, lift="LX"))


def test_campus_lift_poses_come_from_its_doors(planner: LegPlanner, campus: Site) -> None:
    """On the sample campus (landings at the cabin centres, doors 0.7 m south of them): a ride's way in
    is the centre at the landing's map coordinates facing from the door, and the way out faces the door."""
    leg = _leg(LegKind.DELIVER, "adm_601", robot="indoor-01", parcels=("p1",))
    plan = planner.plan(leg, token=1, profile="indoor", start_node="ADM-1F-mailroom", slots={"p1": 0})
    (ride,) = plan.rides
    lift = campus.lifts[ride.lift]
    inside, out = lift_poses(campus, ride)
    builder = OrderBuilder(campus)
    assert (inside.x, inside.y) == pytest.approx(builder.map_xy(ride.entry_node))
    assert (out.x, out.y) == pytest.approx(builder.map_xy(ride.exit_node))
    door = lift.door_positions[ride.from_floor]
    way_in = math.atan2(lift.cabin.y - door[1], lift.cabin.x - door[0])
    yaw = campus.floors[ride.from_floor].frame.yaw
    assert math.cos(inside.theta - (way_in - yaw)) == pytest.approx(1.0)
    assert math.cos(out.theta - inside.theta) == pytest.approx(-1.0)  # same axes on every floor
    assert (inside.map_id, out.map_id) == (ride.from_floor, ride.to_floor)
