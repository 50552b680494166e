"""A dispatcher leg → what its robot must be told: route stages and end actions. Pure: no I/O, no clock.

The operations core emits ``StartLeg(token, leg)`` with a dispatch ``Leg`` (go to ``leg.place``, do
``leg.kind`` there). In live mode an executor carries it out over VDA 5050 (``FleetMaster``) and the
elevator bridge (``orchestrator.facilities``). This module is the part of that executor that needs no
time and no messages:

- ``LegPlanner(site).plan(leg, token=..., profile=..., start_node=..., slots=...)`` → ``LegPlan``:
  the fastest route (``maps.routing.Router``, cached per profile and set of closed lifts) from the
  robot's node to the place's node, cut into **stages**, and the **end actions** to run at the place;
- ``fleet_leg(drive, robot, actions)`` → the ``orchestrator.fleet.orders.Leg`` of one drive, ready for
  ``FleetMaster.send_order``;
- ``item_outcomes(plan, states)`` / ``moved_from_results(plan, states)``: from the VDA 5050 action
  states of the end actions, what happened to each parcel/request, and what the executor reports as
  ``LegFinished.moved``.

**Stages.** A route is a sequence of ``Drive`` and ``Ride`` stages. A ``Drive`` keeps to one map (the
outdoor map or one floor: VDA 5050 ``mapId``, and our robot drivers refuse a goal on another map), so
it can be one order. A ``Ride`` is one lift ride step of the route (the executor's lift session:
call, enter, ride, exit, release). The stages start and end with a ``Drive``; a ride stands between
the drive ending at its entry landing and the drive starting at its exit landing (either may be a
one-node drive). A route that changes map without a lift (a building entrance, outdoor → ground
floor) starts a new ``Drive`` whose ``entered_by`` names the crossing edge (see "What does not fit"
below). A leg at the robot's own node is one ``Drive`` of one node. Doors and gates passed are listed
on the drive that passes them, each with the nodes before and after it (``Passage``), so the executor
can open them as the robot approaches (``orchestrator.facilities``).

**End actions** (on the last node of the last drive; action ids ``f"{token}-{i}-{actionType}"`` with
``i`` the position in the list, so resending the same leg under the same token gives the same ids and
the robot recognises the resend; ``slots`` maps parcel and request ids to compartment numbers):

=========  ========================================================  =========================================
kind       actions (blocking)                                        ``moved`` (``moved_from_results``)
=========  ========================================================  =========================================
LOAD       none: station staff (or the mailroom) fill compartments;  () — the loads are reported by the
           the compartment of each parcel is known only after        locker board / station scan (with
           loading                                                   ``LegFinished.slots``), not by actions
DWELL      per parcel ``waitForPickup(slot, timeoutS, stop=place,    () — each pickup is its own
           window)`` (SOFT: all run side by side, the cart stands)   ``ParcelPickedUp`` (cart API); the core
                                                                     refuses parcels "moved" at a DWELL.
                                                                     ``item_outcomes`` says which were taken
HANDOFF    one ``handoff(giver, partner, [slot of each parcel])``    every parcel if the handoff FINISHED,
           (HARD)                                                    else ()
MEET       one ``handoff(taker, partner, receive_into[:n])`` (HARD)  () — the core counts the parcels in at
                                                                     the indoor robot's next LOAD (report
                                                                     there ``plan.received``)
DELIVER    per parcel ``openCompartment(slot)`` (SOFT) then          the parcels whose waitForPickup
           ``waitForPickup(slot, timeoutS)`` (SOFT)                  FINISHED
COLLECT    per request ``openCompartment(slot)`` (SOFT)              the requests whose compartment opened
DROP       per request ``openCompartment(slot)`` then                the requests whose waitForPickup
           ``waitForPickup(slot, timeoutS)`` (SOFT)                  FINISHED
CHARGE     ``startCharging`` (HARD, VDA 5050 predefined action)      ()
RETURN     none                                                      () — what is still on board comes from
                                                                     the executor's record, not from actions
=========  ========================================================  =========================================

Decisions:

- ``timeoutS`` of a ``waitForPickup`` is the leg's planned service time ``end_s - start_s``, at least
  ``min_wait_s``; it counts from when the robot starts the action (on arrival).
- DWELL waits are SOFT, not NONE: ``robots.agent.vehicle`` runs SOFT actions side by side just as
  well, and SOFT also holds the cart still while students are at it (a NONE wait would let an order
  update drive the cart away with compartments still waiting; the cart would ``depart`` and close its
  codes). Ending a dwell early is a ``cancelOrder``.
- A DWELL needs ``leg.window``: the cart's codes open only for a stop *and* a window
  (``robots.cart.agent``). ``stop`` is the place name (the stop id of the cart's code sheet).
- Hand-off pairing: both sides list compartments in the order of ``leg.parcels`` (a MEET carries the
  same parcels as its HANDOFF), so the giver's k-th compartment goes into the taker's k-th. The taker's
  compartments are the first ``len(leg.parcels)`` of ``receive_into`` (the indoor robot's free
  compartments, chosen by the executor); ``plan.received`` maps each parcel to its taker compartment.
- A HANDOFF or MEET with no parcels left (they were taken out by a re-plan) has no actions: the
  meeting is kept but nothing is handed over.
- Item outcome: DONE when every action of the item FINISHED; NOT_DONE when one FAILED with a
  ``resultDescription`` starting ``timeout`` (nobody came: no fault); FAILED when one FAILED otherwise;
  PENDING while not all are reported ended.

**What does not fit the protocol yet** (the executor must work around it):

- No action says "wait until something was put in" (COLLECT); an opened compartment is taken as
  collected. A ``waitForLoad(compartment, timeoutS)`` would close the gap.
- ``handoff`` reports one status for all compartments: a partial hand-off is all or nothing here.
- A route that enters a building without a lift (only profiles with ``outdoor`` and ``indoor``, e.g.
  ``robot``) changes map on a plain edge. ``fleet_leg(drive, ..., crossing=True)`` builds the order
  that drives that edge (its nodes on two maps, which the schema allows), but today's drivers refuse a
  goal on another map (``SimDriver``/``RosDriver``: IMPOSSIBLE). Until the robot side switches maps on
  such an edge, an executor cannot carry these legs out; carts (outdoor only) and indoor robots (one
  building) never meet the case.

A ``Ride`` is not an order of its own: the executor runs the lift session (``orchestrator.facilities``)
and may send the ride as an order ``entry_node → exit_node`` whose edge ``OrderBuilder`` names
``Ride.edge_id``, with ``enterLift``/``exitLift`` actions; this module does not decide that protocol.

**Lift poses** (``lift_poses``, ``carried_pose``): where a robot that knows no lifts of its own (plain
ROS navigation) is sent by ``enterLift``/``exitLift`` and put by ``initPosition``, as ``MapPose``s on
the floors' maps (``FloorFrame.to_floor``; a floor's map id is its floor id, as ``OrderBuilder``'s):

- in: the cabin's centre (``Lift.cabin``) on the boarding floor's map, heading into the cabin;
- out: the exit landing node on the arrival floor's map, heading out of the cabin;
- carried: a pose on the boarding floor's map moved by the ride — the same site (ENU) point and
  heading, on the arrival floor's map (the cabin only moves vertically; floors may differ in frame).

The heading into the cabin is the direction from the entry landing to the cabin's centre. Maps often
put the landing node *at* the cabin's centre (the sample campus, Open-RMF imports), where that
direction is undefined; then, in this order: from the lift's door on the boarding floor
(``Lift.door_positions``) to the centre, from the node the route came from (``approach``) to the
centre, else the robot's own ``heading``. Out of the cabin likewise: centre → exit landing, centre →
the door on the arrival floor, centre → the route's next node (``leave``), else the reverse of the way
in (a lift entered forwards is left forwards through the same door). Points closer than
``SAME_POINT_M`` count as one.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType

from interfaces.vda5050 import (
    Action,
    ActionParams,
    ActionState,
    ActionStatus,
    BlockingType,
    Handoff,
    HandoffRole,
    OpenCompartment,
    WaitForPickup,
    make_action,
)
from interfaces.vda5050.actions import StartCharging
from maps.errors import RoutingError
from maps.model import OUTDOOR, FloorFrame, Lift, Node, Site
from maps.routing import Route, Router, Step
from orchestrator.dispatch.campus import Leg, LegKind
from orchestrator.fleet.errors import LegError
from orchestrator.fleet.orders import Leg as FleetLeg

MIN_WAIT_S = 30.0
"""Default shortest ``waitForPickup`` timeout (s), for legs planned with (almost) no service time."""

SAME_POINT_M = 0.01
"""Two points closer than this (metres) give no direction (see "Lift poses" above)."""


@dataclass(frozen=True, slots=True)
class Passage:
    """A door, gate or map crossing on map edge ``edge``, passed from node ``before`` to ``after``."""

    id: str
    edge: str
    before: str
    after: str


@dataclass(frozen=True, slots=True)
class Drive:
    """A drive on one map (``map_id``: ``outdoor`` or a floor id) through ``path`` (map node ids).

    ``doors``/``gates``: those passed, in order. ``entered_by``: the edge by which the route came onto
    this map from the previous drive's last node without a lift (a building entrance), else None.
    """

    path: tuple[str, ...]
    map_id: str
    doors: tuple[Passage, ...] = ()
    gates: tuple[Passage, ...] = ()
    entered_by: Passage | None = None

    @property
    def start(self) -> str:
        """The node the drive starts at."""
        return self.path[0]

    @property
    def end(self) -> str:
        """The node the drive ends at."""
        return self.path[-1]


@dataclass(frozen=True, slots=True)
class Ride:
    """One lift ride: in ``building`` by ``lift`` from floor ``from_floor`` (landing node ``entry_node``)
    to ``to_floor`` (landing ``exit_node``)."""

    building: str
    lift: str
    from_floor: str
    to_floor: str
    entry_node: str
    exit_node: str

    @property
    def edge_id(self) -> str:
        """The order edge id ``OrderBuilder`` gives this ride (``lift:<lift>:<from>:<to>``)."""
        return f"lift:{self.lift}:{self.entry_node}:{self.exit_node}"


Stage = Drive | Ride


class ItemOutcome(StrEnum):
    """What became of one parcel or request at the end of a leg, from its end actions' states."""

    DONE = "done"
    """Every action of the item FINISHED (taken, handed over, opened)."""
    NOT_DONE = "not_done"
    """An action FAILED with a "timeout" result: nobody came, the item stays where it was (no fault)."""
    FAILED = "failed"
    """An action FAILED for another reason (locker board, refused, order cancelled)."""
    PENDING = "pending"
    """Not every action of the item has ended (or been reported) yet."""


@dataclass(frozen=True)
class LegPlan:
    """What ``leg`` (sent under ``token``) means for its robot.

    ``route`` is the fastest route from ``start_node`` to the place's node; ``stages`` that route cut
    into drives and rides; ``end_actions`` the actions at the last node of the last drive;
    ``item_actions`` maps each parcel/request to the ids of the end actions that serve it (a hand-off's
    one action serves every parcel). ``received`` (MEET only): parcel → the taker's compartment.
    """

    leg: Leg
    token: int | str
    start_node: str
    end_node: str
    route: Route
    stages: tuple[Stage, ...]
    end_actions: tuple[Action, ...]
    item_actions: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    received: Mapping[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "item_actions", MappingProxyType(dict(self.item_actions)))
        object.__setattr__(self, "received", MappingProxyType(dict(self.received)))

    @property
    def drives(self) -> tuple[Drive, ...]:
        """The drive stages, in order."""
        return tuple(s for s in self.stages if isinstance(s, Drive))

    @property
    def rides(self) -> tuple[Ride, ...]:
        """The lift rides, in order."""
        return tuple(s for s in self.stages if isinstance(s, Ride))

    @property
    def last_drive(self) -> Drive:
        """The drive that ends at the place (it carries the end actions)."""
        return self.drives[-1]  # the stages always end with a drive

    def final_fleet_leg(self, released: int | None = None) -> FleetLeg:
        """The fleet leg of the last drive, with the end actions on its last node."""
        return fleet_leg(self.last_drive, self.leg.robot, self.end_actions, released)


class LegPlanner:
    """Plans legs on one site; keeps one ``Router`` per (profile, closed lifts), so calls are cheap.

    Build once per site (the site must not change). Not thread-safe (the cache is a plain dict).
    """

    def __init__(self, site: Site, *, min_wait_s: float = MIN_WAIT_S) -> None:
        if not min_wait_s > 0:
            raise ValueError(f"min_wait_s must be > 0, got {min_wait_s}")
        self.site = site
        self.min_wait_s = min_wait_s
        self._routers: dict[tuple[str, frozenset[str]], Router] = {}

    def router(self, profile: str, closed_lifts: Iterable[str] = ()) -> Router:
        """The (cached) router of ``profile`` with ``closed_lifts`` out of service."""
        key = (profile, frozenset(closed_lifts))
        router = self._routers.get(key)
        if router is None:
            router = self._routers[key] = Router(self.site, profile, key[1])
        return router

    def plan(
        self,
        leg: Leg,
        *,
        token: int | str,
        profile: str,
        start_node: str,
        slots: Mapping[str, int],
        closed_lifts: Iterable[str] = frozenset(),
        receive_into: Sequence[int] = (),
    ) -> LegPlan:
        """The route stages and end actions of ``leg`` for a robot of ``profile`` at ``start_node``.

        ``slots``: compartment of each parcel/request on board (or chosen for it, COLLECT);
        ``receive_into``: the taker's free compartments (MEET). ``LegError`` with one line when the
        place is unknown, no route exists, or a slot/partner/window the kind needs is missing.
        """
        place = self.site.places.get(leg.place)
        if place is None:
            raise LegError(f"robot {leg.robot}: {leg.kind.value} leg at unknown place {leg.place!r}")
        if start_node not in self.site.nodes:
            raise LegError(f"robot {leg.robot}: start node {start_node!r} is not on the map")
        try:
            route = self.router(profile, closed_lifts).route(start_node, place.node)
        except RoutingError as exc:
            raise LegError(f"robot {leg.robot}: {leg.kind.value} at {leg.place}: {exc}") from None
        actions, items, received = _end_actions(leg, token, slots, receive_into, self.min_wait_s)
        return LegPlan(
            leg=leg,
            token=token,
            start_node=start_node,
            end_node=place.node,
            route=route,
            stages=_stages(self.site, route),
            end_actions=actions,
            item_actions=items,
            received=received,
        )


def fleet_leg(
    stage: Drive,
    robot: str,
    actions_at_end: Sequence[Action] = (),
    released: int | None = None,
    *,
    crossing: bool = False,
) -> FleetLeg:
    """The fleet ``Leg`` of one drive: its path, ``actions_at_end`` on its last node.

    ``crossing=True`` starts the path at the node before ``stage.entered_by`` (where the previous drive
    ended, on the other map), so the order drives the crossing edge too.
    """
    if not isinstance(stage, Drive):
        raise LegError(f"robot {robot}: only a Drive becomes a fleet leg, not {type(stage).__name__}")
    path = stage.path
    if crossing:
        if stage.entered_by is None:
            raise LegError(f"robot {robot}: the drive from {stage.start!r} crosses no map boundary")
        path = (stage.entered_by.before, *path)
    actions: dict[int | str, Sequence[Action]] = (
        {len(path) - 1: tuple(actions_at_end)} if actions_at_end else {}
    )
    return FleetLeg(robot, path, actions, released=released)


def item_outcomes(plan: LegPlan, action_states: Iterable[ActionState]) -> dict[str, ItemOutcome]:
    """Per parcel/request with end actions, what became of it (``ItemOutcome``), from the states of
    the robot's ``actionStates`` (others are ignored; the last state of an id counts)."""
    by_id = {s.action_id: s for s in action_states}
    return {item: _outcome([by_id.get(a) for a in ids]) for item, ids in plan.item_actions.items()}


def moved_from_results(plan: LegPlan, action_states: Iterable[ActionState]) -> tuple[str, ...]:
    """What the executor reports as ``LegFinished.moved`` (see the module's table), in leg order."""
    kind = plan.leg.kind
    if kind not in (LegKind.HANDOFF, LegKind.DELIVER, LegKind.COLLECT, LegKind.DROP):
        return ()
    outcomes = item_outcomes(plan, action_states)
    items = plan.leg.requests if kind in (LegKind.COLLECT, LegKind.DROP) else plan.leg.parcels
    return tuple(i for i in items if outcomes.get(i) is ItemOutcome.DONE)


# ---- stages ----------------------------------------------------------------------------------------


def _stages(site: Site, route: Route) -> tuple[Stage, ...]:
    """Cut a route into drives (one map each) and rides; starts and ends with a drive."""
    stages: list[Stage] = []
    drive: list[str] = [route.path[0]]
    doors: list[Passage] = []
    gates: list[Passage] = []
    entered: Passage | None = None

    def close() -> None:
        map_id = site.nodes[drive[0]].floor or OUTDOOR
        stages.append(Drive(tuple(drive), map_id, tuple(doors), tuple(gates), entered))
        doors.clear()
        gates.clear()

    for step in route.steps:
        if step.kind == "lift":
            close()
            stages.append(_ride(site, step))
            drive, entered = [step.b], None
            continue
        if site.nodes[step.a].floor != site.nodes[step.b].floor:
            close()
            drive, entered = [], Passage(step.ref, step.ref, step.a, step.b)
        drive.append(step.b)
        if step.door is not None:
            doors.append(Passage(step.door, step.ref, step.a, step.b))
        if step.gate is not None:
            gates.append(Passage(step.gate, step.ref, step.a, step.b))
    close()
    return tuple(stages)


def _ride(site: Site, step: Step) -> Ride:
    lift = site.lifts[step.ref]
    from_floor, to_floor = site.nodes[step.a].floor, site.nodes[step.b].floor
    if from_floor is None or to_floor is None:  # a map whose lift lands outdoors: refuse clearly
        raise LegError(f"lift {lift.id}: landing {step.a!r} or {step.b!r} is on no floor")
    return Ride(lift.building, lift.id, from_floor, to_floor, step.a, step.b)


# ---- end actions -----------------------------------------------------------------------------------


class _Actions:
    """End actions under construction: deterministic ids, which item each serves."""

    def __init__(self, token: int | str) -> None:
        self.token = token
        self.actions: list[Action] = []
        self.items: dict[str, list[str]] = {}

    def add(self, params: ActionParams, *items: str, blocking: BlockingType | None = None) -> None:
        action_id = f"{self.token}-{len(self.actions)}-{params.action_type.value}"
        self.actions.append(make_action(params, action_id=action_id, blocking_type=blocking))
        for item in items:
            self.items.setdefault(item, []).append(action_id)


def _end_actions(
    leg: Leg, token: int | str, slots: Mapping[str, int], receive_into: Sequence[int], min_wait_s: float
) -> tuple[tuple[Action, ...], dict[str, tuple[str, ...]], dict[str, int]]:
    out = _Actions(token)
    received: dict[str, int] = {}
    kind = leg.kind
    wait_s = max(leg.end_s - leg.start_s, min_wait_s)
    if kind is LegKind.DWELL and leg.parcels:
        if leg.window is None:
            raise LegError(
                f"robot {leg.robot}: DWELL at {leg.place} has no window (the cart's codes need one)"
            )
        for pid in leg.parcels:
            slot = _slot(leg, slots, pid)
            out.add(WaitForPickup(compartment=slot, timeout_s=wait_s, stop=leg.place, window=leg.window), pid)
    elif kind is LegKind.HANDOFF and leg.parcels:
        compartments = [_slot(leg, slots, pid) for pid in leg.parcels]
        out.add(Handoff(role=HandoffRole.GIVER, peer_serial_number=_partner(leg), compartments=compartments))
        out.items.update({pid: [out.actions[-1].action_id] for pid in leg.parcels})
    elif kind is LegKind.MEET and leg.parcels:
        taken = _receiving(leg, receive_into)
        received = dict(zip(leg.parcels, taken, strict=True))
        out.add(Handoff(role=HandoffRole.TAKER, peer_serial_number=_partner(leg), compartments=taken))
        out.items.update({pid: [out.actions[-1].action_id] for pid in leg.parcels})
    elif kind in (LegKind.DELIVER, LegKind.DROP):
        for item in leg.parcels if kind is LegKind.DELIVER else leg.requests:
            slot = _slot(leg, slots, item)
            out.add(OpenCompartment(compartment=slot), item)
            out.add(WaitForPickup(compartment=slot, timeout_s=wait_s), item)
    elif kind is LegKind.COLLECT:
        for rid in leg.requests:
            out.add(OpenCompartment(compartment=_slot(leg, slots, rid)), rid)
    elif kind is LegKind.CHARGE:
        out.add(StartCharging())
    items = {item: tuple(ids) for item, ids in out.items.items()}
    return tuple(out.actions), items, received


def _slot(leg: Leg, slots: Mapping[str, int], item: str) -> int:
    slot = slots.get(item)
    if slot is None:
        raise LegError(f"robot {leg.robot}: {leg.kind.value} at {leg.place}: no compartment known for {item}")
    if isinstance(slot, bool) or not isinstance(slot, int) or slot < 0:
        raise LegError(f"robot {leg.robot}: compartment of {item} must be an int >= 0, not {slot!r}")
    return slot


def _partner(leg: Leg) -> str:
    if not leg.partner:
        raise LegError(f"robot {leg.robot}: {leg.kind.value} at {leg.place} names no partner robot")
    return leg.partner


def _receiving(leg: Leg, free: Sequence[int]) -> list[int]:
    """The taker's compartments for the MEET's parcels: the first ``len(parcels)`` free ones."""
    free = list(free)
    if len(set(free)) != len(free) or any(isinstance(c, bool) or c < 0 for c in free):
        raise LegError(f"robot {leg.robot}: free compartments {free} must be distinct ints >= 0")
    if len(free) < len(leg.parcels):
        raise LegError(
            f"robot {leg.robot}: MEET at {leg.place} takes {len(leg.parcels)} parcels "
            f"but only {len(free)} free compartments were given"
        )
    return free[: len(leg.parcels)]


def _outcome(states: Sequence[ActionState | None]) -> ItemOutcome:
    failed = [s for s in states if s is not None and s.action_status is ActionStatus.FAILED]
    if failed:
        timeout = all((s.result_description or "").startswith("timeout") for s in failed)
        return ItemOutcome.NOT_DONE if timeout else ItemOutcome.FAILED
    if all(s is not None and s.action_status is ActionStatus.FINISHED for s in states):
        return ItemOutcome.DONE
    return ItemOutcome.PENDING


# ---- lift poses ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MapPose:
    """A pose on one map: ``x``, ``y`` (m) and ``theta`` (rad, counter-clockwise from the map's x axis)
    in the frame of ``map_id`` (VDA 5050 ``x``, ``y``, ``theta``, ``mapId``)."""

    x: float
    y: float
    theta: float
    map_id: str


def lift_poses(
    site: Site, ride: Ride, *, approach: str | None = None, leave: str | None = None, heading: float = 0.0
) -> tuple[MapPose, MapPose]:
    """(into the cabin, out at the exit landing) of ``ride``: the cabin's centre on the boarding floor's
    map heading in, and the exit landing on the arrival floor's map heading out ("Lift poses" above).

    ``approach``/``leave``: the route's node before the entry landing and after the exit landing (None
    when the route starts or ends there); ``heading``: the robot's heading on the boarding floor's map,
    the last resort for the way in. ``LegError`` when the lift, a floor or a node is not on the map.
    """
    lift, entry, exit_node = _lift_of(site, ride)
    cabin = (lift.cabin.x, lift.cabin.y)
    from_frame, to_frame = _frame(site, ride.from_floor), _frame(site, ride.to_floor)
    inward = _first_heading(
        ((entry.x, entry.y), cabin),
        (lift.door_positions.get(ride.from_floor), cabin),
        (_xy(site, approach), cabin),
    )
    if inward is None:
        inward = heading + from_frame.yaw
    outward = _first_heading(
        (cabin, (exit_node.x, exit_node.y)),
        (cabin, lift.door_positions.get(ride.to_floor)),
        (cabin, _xy(site, leave)),
    )
    if outward is None:
        outward = inward + math.pi
    return (
        MapPose(*from_frame.to_floor(*cabin), _angle(inward - from_frame.yaw), ride.from_floor),
        MapPose(*to_frame.to_floor(exit_node.x, exit_node.y), _angle(outward - to_frame.yaw), ride.to_floor),
    )


def carried_pose(site: Site, ride: Ride, pose: MapPose) -> MapPose:
    """``pose`` (on the boarding floor's map) after the ride: the same site point and heading on the
    arrival floor's map. ``LegError`` when ``pose`` is on another map or a floor is unknown."""
    if pose.map_id != ride.from_floor:
        raise LegError(
            f"lift {ride.lift}: a pose on map {pose.map_id!r} does not ride from {ride.from_floor}"
        )
    from_frame, to_frame = _frame(site, ride.from_floor), _frame(site, ride.to_floor)
    x, y = to_frame.to_floor(*from_frame.to_enu(pose.x, pose.y))
    return MapPose(x, y, _angle(pose.theta + from_frame.yaw - to_frame.yaw), ride.to_floor)


def _lift_of(site: Site, ride: Ride) -> tuple[Lift, Node, Node]:
    lift = site.lifts.get(ride.lift)
    entry, exit_node = site.nodes.get(ride.entry_node), site.nodes.get(ride.exit_node)
    if lift is None or entry is None or exit_node is None:
        raise LegError(
            f"lift {ride.lift} or its landings {ride.entry_node}, {ride.exit_node} are not on the map"
        )
    return lift, entry, exit_node


def _frame(site: Site, floor_id: str) -> FloorFrame:
    floor = site.floors.get(floor_id)
    if floor is None:
        raise LegError(f"floor {floor_id!r} is not on the map")
    return floor.frame


def _xy(site: Site, node_id: str | None) -> tuple[float, float] | None:
    node = site.nodes.get(node_id) if node_id is not None else None
    return (node.x, node.y) if node is not None else None


def _first_heading(
    *pairs: tuple[tuple[float, float] | None, tuple[float, float] | None],
) -> float | None:
    """The ENU heading from the first to the second point of the first pair whose points are both
    known and at least ``SAME_POINT_M`` apart; None when no pair gives one."""
    for a, b in pairs:
        if a is not None and b is not None and math.hypot(b[0] - a[0], b[1] - a[1]) >= SAME_POINT_M:
            return math.atan2(b[1] - a[1], b[0] - a[0])
    return None


def _angle(theta: float) -> float:
    """``theta`` wrapped to [-pi, pi] (VDA 5050's range for theta)."""
    return math.atan2(math.sin(theta), math.cos(theta))


__all__ = [
    "MIN_WAIT_S",
    "SAME_POINT_M",
    "Drive",
    "ItemOutcome",
    "LegPlan",
    "LegPlanner",
    "MapPose",
    "Passage",
    "Ride",
    "Stage",
    "carried_pose",
    "fleet_leg",
    "item_outcomes",
    "lift_poses",
    "moved_from_results",
]
