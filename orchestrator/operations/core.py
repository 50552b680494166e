"""The operations core: the fleet decisions that turn the dispatcher's Plan into action over a day.

``Operations(dispatcher, setup)`` is pure (no I/O, no clock of its own): ``on_event(event, now)``
takes one fact from the world and answers the commands it decides (``messages``). The simulator's
fast mode drives it from its event heap; the live orchestrator drives the same object from the VDA
5050 fleet master, the cart API and the partner API (see ``orchestrator/operations/__init__.py``).

**Legs are released one at a time**, when the robot is free and it is time to leave for the leg
(``leg.start_s`` minus the travel time, ``release_lead_s`` early): ``StartLeg(token, leg)``. Released
legs are the robots' ``committed`` legs for the dispatcher, so a re-plan never changes what a robot
was told. A HANDOFF and its MEET are released together (the partner's legs up to the MEET are
committed and queued until it is free): the dispatcher keeps a released hand-off only with its
released partner. A request that comes in is inserted into the current plan (milliseconds) and can
use any robot's free time because legs are not released early.

**Re-plans keep what is under way** (``_kept``): the core, not the dispatcher's ``previous``, pins the
legs that must survive a re-plan, by passing them as released: the rest of a cart trip in progress (to
its RETURN) and an indoor robot's legs until it is empty again, extended to the MEETs of kept
hand-offs; a cart between trips is planned afresh. (The dispatcher's own pinning keeps an indoor
robot's legs "to its RETURN", which after inserted requests can hold hours of meetings with carts
whose trips are not kept, and the plan is then refused by the validator.)

**When it re-plans** (``Dispatcher.plan``, a second or two for a day): an inbound batch arrives; a
window's carts are back (``window_end + replan_after_window_s``: unclaimed parcels roll to the next
window); a robot fails or comes back; a lift closes or reopens. If the dispatcher keeps the previous
plan (``Outcome.ok`` False, e.g. a kept trip no longer fits the closed lift), the core raises an
``Alarm`` and tries again at the next end of a trip (at most every ``retry_s``).

**What happens on events** (parcel states are the real ``orchestrator.domain.parcel`` machine; every
transition's ``DomainEvent`` is kept in ``history``; its ``at`` is in the caller's seconds, like ``now``,
not epoch seconds — ``LiveOperations`` converts it before storing):

- a plan gives parcels a window: ``sort`` (or ``roll`` for a parcel that came back);
- LOAD done at the station: ``load`` (cart, compartment); at a mailroom: ``load_robot``;
- the cart reached a stop (DWELL): ``arrive`` and ``ReleaseCodes`` to the recipients; a code typed:
  ``pick_up``;
- HANDOFF done: ``hand_off`` (the parcels wait in the mailroom for an indoor LOAD); DELIVER: ``deliver``;
- RETURN with parcels still on board (unclaimed, a failed hand-off): ``return`` and the parcels are at
  the station again, ``rolled`` + 1, for the next re-plan;
- a repeated report (the same leg finished twice, a pickup again) changes nothing: MQTT and the
  cart's outbox deliver at least once;
- robot failed: its parcels ``return`` (office parcels ``fail`` first) with ``received_s`` set to
  when they are back at the station; its requests fail; its partners' hand-off legs with it are
  cancelled (``CancelLeg``) or dropped from their queues; the robot is offline for the dispatcher
  until ``RobotRecovered``.

The dispatcher's model needs the legs already done (released) to stay in ``committed`` for the whole
day: a HANDOFF with no indoor LOAD after it is how it knows a parcel waits in a mailroom. Parcels that
come back are therefore taken out of every committed leg (they are at the station again) and out of
any leg of the current plan made before they came back, and a robot that broke down gets a closing
RETURN at its home, so its next trip starts empty.

Parcel locations (``where``): ``station``, a robot id, ``mailroom:<building>``, ``picked_up``,
``delivered``. Times are seconds on the caller's clock (the simulator: seconds since midnight).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Protocol

from orchestrator.dispatch.campus import (
    ZERO,
    Handoff,
    Leg,
    LegKind,
    Parcel,
    Plan,
    Request,
    Robot,
    RobotKind,
    Snapshot,
    Timings,
    Window,
)
from orchestrator.dispatch.dispatcher import Outcome
from orchestrator.dispatch.insertion import Accepted, Decision
from orchestrator.dispatch.travel import TravelTable
from orchestrator.domain import parcel as domain
from orchestrator.domain.events import DomainEvent
from orchestrator.operations.messages import (
    Alarm,
    CancelLeg,
    Command,
    Event,
    LegArrived,
    LegFailed,
    LegFinished,
    LiftClosed,
    LiftReopened,
    ParcelPickedUp,
    ParcelsArrived,
    ReleaseCodes,
    RequestCreated,
    RobotFailed,
    RobotRecovered,
    SetTimer,
    StartLeg,
    TimerFired,
)

MAX_RETRIES = 3
"""Re-plans without stranded parcels tried after a refused one (each adds the building it names)."""

STATION = "station"
"""``Operations.where`` value of a parcel at the station."""

AT_STATION = frozenset({domain.ParcelState.RECEIVED, domain.ParcelState.SORTED, domain.ParcelState.RETURNED})
"""States of a stored parcel that may arrive (``ParcelsArrived.stored``): it is at the station."""


class OperationsError(Exception):
    """A report that contradicts what the core knows (unknown robot, leg or parcel)."""


class Planner(Protocol):
    """What the core needs of ``orchestrator.dispatch.Dispatcher``."""

    def plan(self, snapshot: Snapshot, now: float, previous: Plan | None = None) -> Outcome:
        """A new plan, or the previous one with a reason."""
        ...

    def insert(self, plan: Plan, snapshot: Snapshot, request: Request, now: float) -> Decision:
        """Insert one request."""
        ...

    def tables(self, snapshot: Snapshot) -> dict[str, TravelTable]:
        """Travel tables per profile for the snapshot's closed lifts."""
        ...


class RequestStatus(StrEnum):
    """A mini-program request in the core."""

    ACCEPTED = "accepted"
    REFUSED = "refused"
    COLLECTED = "collected"
    DONE = "done"
    FAILED = "failed"


@dataclass(frozen=True)
class Setup:
    """The campus the core runs: robots at the start of the day, windows, places, timings."""

    robots: tuple[Robot, ...]
    windows: tuple[Window, ...]
    station: str
    handoffs: Mapping[str, Handoff]
    chargers: tuple[str, ...] = ()
    timings: Timings = field(default_factory=Timings)
    release_lead_s: float = 60.0  # a leg is released this long before the robot must leave
    replan_after_window_s: float = 2100.0  # re-plan this long after a window ends (its carts are back)
    retry_s: float = 900.0  # a kept plan is tried again at most this often


@dataclass
class RequestRecord:
    """A request and what became of it (times in seconds)."""

    request: Request
    status: RequestStatus
    robot: str | None = None
    eta_s: float | None = None
    reason: str | None = None
    collected_s: float | None = None
    done_s: float | None = None
    served_s: float | None = None  # when the promise was met: COLLECT start (pickup), DROP (coffee)


@dataclass
class _RobotState:
    base: Robot
    online: bool = True
    committed: list[Leg] = field(default_factory=list)
    running: int | None = None  # token of the leg it runs
    queue: list[int] = field(default_factory=list)  # committed legs not started yet (tokens)
    free_s: float = 0.0
    wake_s: float | None = None  # a release timer is set for this time


class Operations:
    """The fleet decisions of one campus (see the module docstring). Drive it with ``on_event``."""

    def __init__(self, planner: Planner, setup: Setup) -> None:
        self.planner = planner
        self.setup = setup
        self.robots = {
            r.id: _RobotState(r, r.online, list(r.committed), free_s=r.available_s) for r in setup.robots
        }
        self.closed_lifts: set[str] = set()
        self.plan = Plan(created_s=0.0, legs={r.id: tuple(r.committed) for r in setup.robots})
        self.parcels: dict[str, Parcel] = {}  # the dispatcher's view of every parcel received
        self.records: dict[str, domain.Parcel] = {}  # the domain state machine of every parcel
        self.where: dict[str, str] = {}  # station | robot id | mailroom:<building> | picked_up | delivered
        self.requests: dict[str, RequestRecord] = {}
        self.history: list[DomainEvent] = []
        self.alarms: list[Alarm] = []
        self.plans: list[tuple[float, bool, str | None]] = []  # (now, ok, reason) of every re-plan
        self.legs: dict[int, Leg] = {}  # token -> leg
        self._next_token = 1
        self._replan_wanted = False
        self._last_try_s = -math.inf
        self._office: dict[str, bool] = {}
        self._came_back_at: dict[str, float] = {}  # when a parcel last came back to the station
        self._tables: dict[str, TravelTable] = {}
        self._timers_set = False
        self._reported: set[int] = set()  # tokens whose end (finished or failed) was reported

    # ---- the one entry point -------------------------------------------------------------------

    def on_event(self, event: Event, now: float) -> list[Command]:
        """Apply one event at ``now``; the commands it leads to, in order."""
        out: list[Command] = []
        if not self._timers_set:
            self._timers_set = True
            out.extend(
                SetTimer(w.end_s + self.setup.replan_after_window_s, f"window:{w.id}")
                for w in self.setup.windows
            )
        match event:
            case ParcelsArrived():
                self._arrived(event, now)
                self._replan(now, out)
            case RequestCreated():
                self._request(event.request, now, out)
            case LegArrived():
                self._leg_arrived(event, now, out)
            case LegFinished():
                self._leg_finished(event, now, out)
            case LegFailed():
                self._leg_failed(event, now, out)
            case ParcelPickedUp():
                self._picked_up(event, now)
            case RobotFailed():
                self._robot_failed(event, now, out)
                self._replan(now, out)
            case RobotRecovered():
                self._state(event.robot).online = True
                self._replan(now, out)
            case LiftClosed():
                self.closed_lifts.add(event.lift)
                self._replan(now, out)
            case LiftReopened():
                self.closed_lifts.discard(event.lift)
                self._replan(now, out)
            case TimerFired():
                if event.key.startswith("window:"):
                    self._replan(now, out)
            case _:
                raise OperationsError(f"unknown event {event!r}")
        self._release_all(now, out)
        return out

    # ---- the dispatcher's view -----------------------------------------------------------------

    def snapshot(self, now: float, kept: Mapping[str, list[Leg]] | None = None) -> Snapshot:
        """What the dispatcher is given now: robots with their committed legs (and the ``kept`` legs
        of a re-plan, marked released), open parcels and requests."""
        robots = []
        for rid, st in self.robots.items():
            extra = [replace(leg, released=True) for leg in (kept or {}).get(rid, [])]
            committed = (*st.committed, *extra)
            last = committed[-1] if committed else None
            robots.append(
                replace(
                    st.base,
                    online=st.online,
                    position=last.place if last else st.base.position,
                    available_s=max(now, st.free_s, last.end_s if last else -math.inf),
                    committed=committed,
                )
            )
        parcels = tuple(
            p for pid, p in self.parcels.items() if self.where[pid] not in ("picked_up", "delivered")
        )
        requests = tuple(
            r.request
            for r in self.requests.values()
            if r.status in (RequestStatus.ACCEPTED, RequestStatus.COLLECTED)
        )
        return Snapshot(
            robots=tuple(robots),
            windows=self.setup.windows,
            parcels=parcels,
            requests=requests,
            station=self.setup.station,
            handoffs=self.setup.handoffs,
            chargers=self.setup.chargers,
            closed_lifts=frozenset(self.closed_lifts),
            timings=self.setup.timings,
        )

    def _replan(self, now: float, out: list[Command]) -> None:
        self._last_try_s = now
        kept = self._kept()
        snapshot = self.snapshot(now, kept)
        # Hand-off parcels past their deadline (offices closed) wait for tomorrow: left out up front,
        # since the dispatcher would strand them and refuse its own plan (see _replan_without_stranded).
        overdue = {p for p in self._in_handoff(kept) if self.parcels[p].deadline_s <= now}
        if overdue:
            snapshot = replace(snapshot, parcels=tuple(p for p in snapshot.parcels if p.id not in overdue))
        outcome = self.planner.plan(snapshot, now, None)
        if not outcome.ok:
            outcome = self._replan_without_stranded(snapshot, kept, outcome, now, out)
        self._tables = self.planner.tables(snapshot)
        self.plans.append((now, outcome.ok, outcome.reason))
        if not outcome.ok:
            self._replan_wanted = True
            self._alarm(out, "plan_kept", f"re-plan at {now:.0f} s kept the previous plan: {outcome.reason}")
            return
        self._replan_wanted = False
        legs = {}
        for rid, own in outcome.plan.legs.items():
            done = len(self.robots[rid].committed) if rid in self.robots else 0
            legs[rid] = (
                *own[:done],
                *(replace(leg, released=False) if leg.released else leg for leg in own[done:]),
            )
        self.plan = Plan(outcome.plan.created_s, legs, outcome.plan.unplanned)
        self._sort(now)

    def _replan_without_stranded(
        self,
        snapshot: Snapshot,
        kept: Mapping[str, list[Leg]],
        failed: Outcome,
        now: float,
        out: list[Command],
    ) -> Outcome:
        """Plan again without the office parcels the dispatcher strands and then refuses its own plan for.

        When no indoor robot of a building can deliver a parcel today (robots down, all lifts of the
        building out of service), the dispatcher lists it as unplanned although a kept hand-off, the
        mailroom or one of its own new cart trips carries it, and its validator refuses the plan
        ("unplanned yet in a leg", "no hand-off point reaches its destination"). The core then leaves
        out of this re-plan the mailroom's parcels, those of kept hand-offs, the station's parcels for
        the building named in the reason and every parcel whose door no indoor robot reaches now: they wait
        for a later re-plan (an ``Alarm`` says how many). Each retry adds the building the last refusal
        names, up to ``MAX_RETRIES``.
        """
        held = self._in_handoff(kept)
        table = self.planner.tables(snapshot).get(self._indoor_profile() or "")
        if table is not None:
            inside = [h.robot_place for h in self.setup.handoffs.values()]
            held |= {
                p
                for p, w in self.where.items()
                if w not in ("picked_up", "delivered")
                and self._office[p]
                and not any(table.reachable(h, self.parcels[p].destination) for h in inside)
            }
        outcome, buildings = failed, set()
        for _ in range(MAX_RETRIES):
            match = re.search(r"no indoor robot of (\S+) could deliver", outcome.reason or "")
            if match is not None and match.group(1) not in buildings:
                buildings.add(match.group(1))
                held |= {
                    p
                    for p, w in self.where.items()
                    if w == STATION and self._office[p] and self._building_at(self._stop_of(p)) in buildings
                }
            retry = replace(snapshot, parcels=tuple(p for p in snapshot.parcels if p.id not in held))
            outcome = self.planner.plan(retry, now, None)
            if outcome.ok:
                break
        if not outcome.ok:
            return failed
        self._alarm(out, "parcels_held", f"{len(held)} office parcels left out of the re-plan at {now:.0f} s")
        return outcome

    def _in_handoff(self, kept: Mapping[str, list[Leg]]) -> set[str]:
        """Parcels in a mailroom or on a kept cart trip to a hand-off."""
        held = {p for p, w in self.where.items() if w.startswith("mailroom:")}
        held |= {
            p for rest in kept.values() for leg in rest if leg.kind is LegKind.HANDOFF for p in leg.parcels
        }
        return held

    def _kept(self) -> dict[str, list[Leg]]:
        """Per robot, the unreleased legs a re-plan keeps (the core pins them itself, see ``_replan``).

        A cart in the middle of a trip keeps the rest of it, to its RETURN (the dispatcher's own rule);
        an indoor robot keeps its legs until it is empty again (request legs do not end with a RETURN,
        so "to the RETURN" could keep hours of meetings with carts whose trips are not kept), extended
        to the MEET of every kept cart HANDOFF. A cart between trips (idle, empty: a CHARGE does not
        end a trip for the dispatcher) keeps nothing.
        """
        plan = self._aligned()
        kept: dict[str, list[Leg]] = {}
        for rid, st in self.robots.items():
            if not st.online or not st.committed or st.committed[-1].kind is LegKind.RETURN:
                continue
            later = plan.legs[rid][len(st.committed) :]
            if st.base.kind is RobotKind.CART:
                if self._free_to_replan(st):
                    continue
                rest = []
                for leg in later:
                    rest.append(leg)
                    if leg.kind is LegKind.RETURN:
                        break
                kept[rid] = rest
            elif st.committed[-1].load != ZERO:
                rest = []
                for leg in later:
                    rest.append(leg)
                    if leg.load == ZERO:
                        break
                kept[rid] = rest
        for rest in list(kept.values()):
            for leg in rest:
                if leg.kind is LegKind.HANDOFF and leg.partner in self.robots:
                    self._keep_until_meet(plan, kept, leg)
        return {rid: [self._without_returned(leg) for leg in rest] for rid, rest in kept.items()}

    def _without_returned(self, leg: Leg) -> Leg:
        """A leg of the current plan without the parcels that came back to the station after the plan
        was made (a failed hand-off, a robot that broke down): they are planned again from the station."""
        if leg.kind is LegKind.LOAD and leg.place == self.setup.station:
            return leg
        stale = self.plan.created_s
        back = [p for p in leg.parcels if self._came_back_at.get(p, -math.inf) > stale]
        if not back:
            return leg
        return replace(leg, parcels=tuple(p for p in leg.parcels if p not in back))

    def _keep_until_meet(self, plan: Plan, kept: dict[str, list[Leg]], handoff: Leg) -> None:
        partner = str(handoff.partner)
        st = self.robots[partner]
        later = plan.legs[partner][len(st.committed) :]
        for k, leg in enumerate(later):
            if leg.kind is LegKind.MEET and leg.partner == handoff.robot and leg.start_s == handoff.start_s:
                if len(kept.get(partner, [])) < k + 1:
                    kept[partner] = list(later[: k + 1])
                return

    def _aligned(self) -> Plan:
        """The current plan with each robot's released legs replaced by its committed legs; offline
        robots and legs with an offline partner keep nothing unreleased."""
        legs: dict[str, tuple[Leg, ...]] = {}
        for rid, st in self.robots.items():
            old = self.plan.legs.get(rid, ())
            done = sum(1 for leg in old if leg.released)
            rest = old[done:] if st.online else ()
            legs[rid] = (*st.committed, *(leg for leg in rest if self._partner_ok(leg)))
        return Plan(self.plan.created_s, legs, self.plan.unplanned)

    def _free_to_replan(self, st: _RobotState) -> bool:
        """A cart between trips (idle, empty) is planned afresh, not held to the rest of a trip that a
        CHARGE (which does not end a trip for the dispatcher) left open."""
        if st.base.kind is not RobotKind.CART or st.running is not None or st.queue:
            return False
        return not st.committed or st.committed[-1].load == ZERO

    def _partner_ok(self, leg: Leg) -> bool:
        return leg.partner is None or self.robots[leg.partner].online

    def _sort(self, now: float) -> None:
        """Give every newly planned parcel its window (``sort``, or ``roll`` after a return)."""
        for legs in self.plan.legs.values():
            for leg in legs:
                if leg.released or leg.kind is not LegKind.LOAD or leg.window is None:
                    continue
                for pid in leg.parcels:
                    if pid in self.records and self.where.get(pid) == STATION:
                        self._ensure_sorted(pid, leg.window, now)

    def _ensure_sorted(self, pid: str, window: str, now: float) -> None:
        record = self.records[pid]
        stop = self._stop_of(pid)
        office = self._office[pid]
        if record.state is domain.ParcelState.RETURNED:
            self._apply(pid, domain.ParcelEvent.ROLL, now, window=window, stop=stop, office=office)
        elif record.state is domain.ParcelState.RECEIVED or (
            record.state is domain.ParcelState.SORTED and record.window != window
        ):
            self._apply(pid, domain.ParcelEvent.SORT, now, window=window, stop=stop, office=office)

    def _stop_of(self, pid: str) -> str:
        destination = self.parcels[pid].destination
        if not self._office[pid]:
            return destination
        for handoff in self.setup.handoffs.values():
            table = self._indoor_table()
            if table is not None and table.reachable(handoff.robot_place, destination):
                return handoff.cart_place
        return destination

    def _indoor_table(self) -> TravelTable | None:
        profile = self._indoor_profile()
        return self._tables.get(profile) if profile is not None else None

    def _indoor_profile(self) -> str | None:
        return next(
            (st.base.profile for st in self.robots.values() if st.base.kind is RobotKind.INDOOR), None
        )

    # ---- parcels and requests ------------------------------------------------------------------

    def _arrived(self, event: ParcelsArrived, now: float) -> None:
        if not self._tables:
            self._tables = self.planner.tables(self.snapshot(now))
        cart_profile = next(
            (st.base.profile for st in self.robots.values() if st.base.kind is RobotKind.CART), None
        )
        cart_table = self._tables.get(cart_profile) if cart_profile else None
        for parcel in event.parcels:
            if parcel.id in self.parcels:
                raise OperationsError(f"parcel {parcel.id} arrived twice")
            office = not (cart_table is not None and cart_table.has(parcel.destination))
            building = None if not office else parcel.destination
            destination = (
                domain.Destination(building=building, place=parcel.destination)
                if office
                else domain.Destination(dorm=parcel.destination, place=parcel.destination)
            )
            stored = event.stored.get(parcel.id)
            if stored is None:
                record, ev = domain.receive_parcel(parcel.id, parcel.size.name, destination, now)
                self.history.append(ev)
            elif stored.state in AT_STATION:
                record = stored  # its receive (and any sort or return) is in the store already
            else:
                raise OperationsError(f"parcel {parcel.id} is {stored.state.value}, not at the station")
            self.parcels[parcel.id] = parcel
            self.records[parcel.id] = record
            self.where[parcel.id] = STATION
            self._office[parcel.id] = office

    def _request(self, request: Request, now: float, out: list[Command]) -> None:
        if request.id in self.requests:
            raise OperationsError(f"request {request.id} was created twice")
        snapshot = self.snapshot(now)
        decision = self.planner.insert(self._aligned(), snapshot, request, now)
        if isinstance(decision, Accepted):
            self.plan = decision.plan
            self.requests[request.id] = RequestRecord(
                request, RequestStatus.ACCEPTED, decision.robot, decision.eta_s
            )
        else:
            self.requests[request.id] = RequestRecord(request, RequestStatus.REFUSED, reason=decision.reason)
            self._alarm(out, "request_refused", f"request {request.id} refused: {decision.reason}")

    def _apply(self, pid: str, kind: domain.ParcelEvent, now: float, **data: str | bool) -> None:
        record, ev = domain.transition(self.records[pid], kind, now, **data)
        self.records[pid] = record
        self.history.append(ev)

    def _picked_up(self, event: ParcelPickedUp, now: float) -> None:
        if self.where.get(event.parcel) == "picked_up":
            return  # the cart's outbox delivers at least once: a repeat changes nothing
        if self.where.get(event.parcel) != event.robot:
            raise OperationsError(
                f"parcel {event.parcel} picked up from {event.robot}, "
                f"but it is at {self.where.get(event.parcel)}"
            )
        self._apply(event.parcel, domain.ParcelEvent.PICK_UP, now)
        self.where[event.parcel] = "picked_up"

    # ---- legs ----------------------------------------------------------------------------------

    def _state(self, robot: str) -> _RobotState:
        try:
            return self.robots[robot]
        except KeyError:
            raise OperationsError(f"unknown robot {robot!r}") from None

    def _leg(self, robot: str, token: int) -> Leg:
        leg = self.legs.get(token)
        if leg is None or leg.robot != robot:
            raise OperationsError(f"robot {robot} reports leg {token}, which it was never given")
        return leg

    def _release_all(self, now: float, out: list[Command]) -> None:
        for rid in self.robots:
            self._release(rid, now, out)

    def _release(self, rid: str, now: float, out: list[Command]) -> None:
        st = self.robots[rid]
        if not st.online or st.running is not None:
            return
        if st.queue:
            self._start(st, st.queue.pop(0), out)
            return
        legs = self.plan.legs.get(rid, ())
        index = len(st.committed)
        if index >= len(legs) or legs[index].released:
            return
        leg = legs[index]
        here = st.committed[-1].place if st.committed else st.base.position
        table = self._tables.get(st.base.profile)
        travel = table.time(here, leg.place) if table is not None else 0.0
        depart = leg.start_s - (travel if math.isfinite(travel) else 0.0) - self.setup.release_lead_s
        if depart > now:
            if st.wake_s != depart:
                st.wake_s = depart
                out.append(SetTimer(depart, f"release:{rid}"))
            return
        st.wake_s = None
        token = self._commit(rid, index)
        self._start(st, token, out)

    def _commit(self, rid: str, index: int) -> int:
        """Mark leg ``index`` of ``rid`` released (it must be the next one); its token.

        A HANDOFF or MEET commits its partner's legs up to the matching leg too (queued until the
        partner is free): the dispatcher keeps a released hand-off only with its released partner.
        """
        st = self.robots[rid]
        legs = self.plan.legs[rid]
        leg = replace(self._without_returned(legs[index]), released=True)
        token = self._next_token
        self._next_token += 1
        st.committed.append(leg)
        self.legs[token] = leg
        self.plan = Plan(
            self.plan.created_s,
            {**self.plan.legs, rid: (*legs[:index], leg, *legs[index + 1 :])},
            self.plan.unplanned,
        )
        if leg.kind in (LegKind.HANDOFF, LegKind.MEET) and leg.partner in self.robots:
            self._commit_partner(leg)
        return token

    def _commit_partner(self, leg: Leg) -> None:
        partner = self.robots[str(leg.partner)]
        want = LegKind.MEET if leg.kind is LegKind.HANDOFF else LegKind.HANDOFF
        legs = self.plan.legs.get(partner.base.id, ())
        start = len(partner.committed)
        for k in range(start, len(legs)):
            other = legs[k]
            if other.kind is want and other.partner == leg.robot and other.start_s == leg.start_s:
                for j in range(start, k + 1):
                    partner.queue.append(self._commit(partner.base.id, j))
                return

    def _start(self, st: _RobotState, token: int, out: list[Command]) -> None:
        st.running = token
        st.wake_s = None
        out.append(StartLeg(token, self.legs[token]))

    def _leg_arrived(self, event: LegArrived, now: float, out: list[Command]) -> None:
        leg = self._leg(event.robot, event.token)
        if leg.kind in (LegKind.DWELL, LegKind.DELIVER):
            aboard = tuple(p for p in leg.parcels if self.where.get(p) == event.robot)
            if leg.kind is LegKind.DWELL:
                for pid in aboard:
                    self._apply(pid, domain.ParcelEvent.ARRIVE, now)
            if aboard:
                window = leg.window or self.records[aboard[0]].window
                out.append(ReleaseCodes(event.robot, leg.place, aboard, leg.end_s, window))

    def _leg_finished(self, event: LegFinished, now: float, out: list[Command]) -> None:
        leg = self._leg(event.robot, event.token)
        if event.token in self._reported:
            return  # a repeated report (MQTT QoS 1 delivers at least once)
        self._reported.add(event.token)
        st = self._state(event.robot)
        kind, robot = leg.kind, event.robot
        for item in event.moved:
            if item in self.requests:
                self._request_moved(item, leg, now)
                continue
            if item not in self.records:
                raise OperationsError(f"{robot} moved unknown parcel {item} at {leg.kind} {leg.place}")
            if kind is LegKind.LOAD and st.base.kind is RobotKind.CART:
                self._ensure_sorted(item, leg.window or self.records[item].window or "unassigned", now)
                self._apply(
                    item, domain.ParcelEvent.LOAD, now, cart=robot, compartment=event.slots.get(item, "?")
                )
                self.where[item] = robot
            elif kind is LegKind.LOAD:
                self._apply(
                    item,
                    domain.ParcelEvent.LOAD_ROBOT,
                    now,
                    robot=robot,
                    compartment=event.slots.get(item, "?"),
                )
                self.where[item] = robot
            elif kind is LegKind.HANDOFF:
                self._apply(item, domain.ParcelEvent.HAND_OFF, now, place=leg.place)
                self.where[item] = f"mailroom:{self._building_at(leg.place)}"
            elif kind is LegKind.DELIVER:
                self._apply(item, domain.ParcelEvent.DELIVER, now)
                self.where[item] = "delivered"
            elif kind is LegKind.RETURN:
                self._came_back(
                    item, now, "unclaimed" if not self._office[item] else "hand-off or delivery failed", now
                )
            else:
                raise OperationsError(f"{robot} reports parcel {item} moved at a {kind} leg")
        self._finish(st, event.token, now)
        if self._replan_wanted and kind is LegKind.RETURN and now - self._last_try_s >= self.setup.retry_s:
            self._replan(now, out)

    def _request_moved(self, rid: str, leg: Leg, now: float) -> None:
        record = self.requests[rid]
        if leg.kind is LegKind.COLLECT:
            record.status, record.collected_s = RequestStatus.COLLECTED, now
            if record.request.kind.value == "pickup":
                record.served_s = now
        elif leg.kind is LegKind.DROP:
            record.status, record.done_s = RequestStatus.DONE, now
            if record.request.kind.value == "coffee":
                record.served_s = now

    def _leg_failed(self, event: LegFailed, now: float, out: list[Command]) -> None:
        leg = self._leg(event.robot, event.token)
        if event.token in self._reported:
            return
        self._reported.add(event.token)
        self._alarm(out, "leg_failed", f"{event.robot} gave up its {leg.kind} at {leg.place}: {event.reason}")
        self._finish(self._state(event.robot), event.token, now)

    def _finish(self, st: _RobotState, token: int, now: float) -> None:
        if st.running == token:
            st.running = None
            st.free_s = now

    def _building_at(self, cart_place: str) -> str:
        for building, handoff in self.setup.handoffs.items():
            if cart_place in (handoff.cart_place, handoff.robot_place):
                return building
        return cart_place

    def _came_back(self, pid: str, now: float, reason: str, back_s: float) -> None:
        """A parcel is (or will be, at ``back_s``) at the station again: out of every committed leg."""
        record = self.records[pid]
        if record.state in (domain.ParcelState.IN_ROBOT, domain.ParcelState.HANDED_OFF):
            self._apply(pid, domain.ParcelEvent.FAIL, now, reason=reason)
        self._apply(pid, domain.ParcelEvent.RETURN, now, reason=reason)
        self.where[pid] = STATION
        self._came_back_at[pid] = now
        parcel = self.parcels[pid]
        self.parcels[pid] = replace(
            parcel, received_s=max(parcel.received_s, back_s), rolled=parcel.rolled + 1
        )
        self._strip({pid})

    def _strip(self, ids: set[str]) -> None:
        changed: dict[int, Leg] = {}
        for st in self.robots.values():
            for k, leg in enumerate(st.committed):
                if (set(leg.parcels) | set(leg.requests)) & ids:
                    new = replace(
                        leg,
                        parcels=tuple(p for p in leg.parcels if p not in ids),
                        requests=tuple(q for q in leg.requests if q not in ids),
                    )
                    changed[id(leg)] = new
                    st.committed[k] = new
        for token, leg in self.legs.items():
            if id(leg) in changed:
                self.legs[token] = changed[id(leg)]
        self.plan = self._aligned()

    # ---- faults --------------------------------------------------------------------------------

    def _robot_failed(self, event: RobotFailed, now: float, out: list[Command]) -> None:
        st = self._state(event.robot)
        if not st.online:
            return
        self._alarm(out, "robot_failed", f"{event.robot} failed: {event.reason}")
        st.online = False
        st.running = None
        st.wake_s = None
        back = max(now, event.recovered_s)
        aboard = [p for p, w in self.where.items() if w == event.robot]
        for pid in aboard:
            self._came_back(pid, now, f"robot {event.robot} failed", back)
        lost = {
            rid
            for rid, r in self.requests.items()
            if r.robot == event.robot and r.status in (RequestStatus.ACCEPTED, RequestStatus.COLLECTED)
        }
        for rid in lost:
            self.requests[rid].status = RequestStatus.FAILED
            self.requests[rid].reason = f"robot {event.robot} failed"
        if lost:
            self._strip(lost)
        st.queue.clear()
        self._abandon_trip(st)
        # partners waiting for a hand-off with it give up; queued hand-offs with it are dropped
        for other in self.robots.values():
            for token in list(other.queue):
                if self.legs[token].partner == event.robot:
                    other.queue.remove(token)
                    other.committed.remove(self.legs[token])
            if other.running is None:
                continue
            running = self.legs[other.running]
            if running.partner == event.robot and running.kind in (LegKind.MEET, LegKind.HANDOFF):
                out.append(CancelLeg(other.base.id, other.running))
        last = st.committed[-1] if st.committed else None
        if last is None or last.kind is not LegKind.RETURN:
            home = st.base.home
            level = last.level_wh if last else st.base.battery.level_wh
            st.committed.append(
                Leg(
                    event.robot,
                    LegKind.RETURN,
                    home,
                    back,
                    back,
                    back,
                    load=ZERO,
                    level_wh=level,
                    released=True,
                )
            )
        st.free_s = back
        self.plan = self._aligned()

    def _abandon_trip(self, st: _RobotState) -> None:
        """The failed robot's trip will not go on: its committed legs since the last RETURN stop naming
        the parcels it did not take yet (still at the station or in a mailroom: a LOAD that never
        finished), so they are planned again; its finished hand-offs keep theirs (they are in a mailroom)."""
        start = max((k + 1 for k, leg in enumerate(st.committed) if leg.kind is LegKind.RETURN), default=0)
        for k in range(start, len(st.committed)):
            leg = st.committed[k]
            if leg.kind in (LegKind.HANDOFF, LegKind.MEET):
                continue
            waiting = [p for p in leg.parcels if self.where.get(p, "").startswith(("station", "mailroom:"))]
            if waiting:
                new = replace(leg, parcels=tuple(p for p in leg.parcels if p not in waiting))
                for token, old in self.legs.items():
                    if old is leg:
                        self.legs[token] = new
                st.committed[k] = new

    # ---- helpers -------------------------------------------------------------------------------

    def _alarm(self, out: list[Command], kind: str, text: str) -> None:
        alarm = Alarm(kind, text)
        self.alarms.append(alarm)
        out.append(alarm)

    def count_where(self) -> dict[str, int]:
        """How many parcels are where (station, each robot, each mailroom, picked_up, delivered)."""
        counts: dict[str, int] = {}
        for place in self.where.values():
            counts[place] = counts.get(place, 0) + 1
        return counts
