"""The console's live views and robot commands (issue 11): delivery windows, one robot in detail,
pause/resume/cancel/charge, and the lifts, doors and gates.

=======  ===============================================  =========  ==================================
method   path                                             role       what
=======  ===============================================  =========  ==================================
GET      /v1/console/windows                              viewer     today's windows, each cart's stops
GET      /v1/console/robots/{serial}                      viewer     the robot, its leg, route, lockers
POST     /v1/console/robots/{serial}:pause                operator   ``startPause`` (VDA 5050 §6.8)
POST     /v1/console/robots/{serial}:resume               operator   ``stopPause``
POST     /v1/console/robots/{serial}:cancel               operator   cancel its leg of the live loop
POST     /v1/console/robots/{serial}:charge               operator   go to the nearest charger
GET      /v1/console/facilities                           viewer     lifts, doors, gates (retained MQTT)
=======  ===============================================  =========  ==================================

Errors are problem+json: 404 for a robot not in the fleet, 409 when the robot cannot do it now (not
online, on a leg, no leg to cancel, refused), 503 without the fleet master, 504 when the robot does
not answer in time. Without the live dispatch loop (``app.state.operations``) nothing answers 503 (a
deployment may run the fleet master alone, and the console must still work): ``/windows`` gives the
settings' windows with no carts and ``"live": false``, a robot has no leg, ``:cancel`` is 409.

The POST routes take an optional ``{"reason": "..."}``, are written to the audit log
(``robot.pause``/``robot.resume``/``robot.cancel``/``robot.charge``, who, role, the robot, the reason)
before anything is sent, and answer ``{"robot", "action", "status"}``.

**Reading the core.** The live core may be re-planning in a worker thread while a request reads it.
The views copy what they read (``dict(...)``, ``list(...)``, slices: single C-level operations under
the GIL, so a copy never fails half-way) and work on the copies; a view may show the core between
two steps of one event, never a crash. Times are the core's seconds turned into ISO 8601 UTC through
the service day (``ServiceDay.epoch``).

**Windows.** A cart's stops in a window are its DWELL legs of that window: its committed legs (sent to
it) then the plan's later ones. A stop is ``planned`` (not sent yet, or queued), ``under_way`` (the
running leg, not arrived), ``at_stop`` (the running leg, arrived) or ``done``. The counts come from the
core's parcel history, because a RETURN takes the unclaimed parcels out of the legs that carried them:
each ``arrive`` event belongs to the window, cart and stop its parcel was sorted and loaded for, and
the arrivals of one moment are one visit; the visits of a (window, cart, stop) are matched in order
with the DWELL legs that started. ``parcels`` = offered at the visit (or planned there),
``picked_up`` = taken with a code, ``unclaimed`` = not taken by the end of a ``done`` stop.

**A robot.** ``leg`` is the core's running leg, ``next`` up to five legs after it (queued, then
planned). ``route`` is the running leg's path on the robot's map (``OrderBuilder.map_xy``, local
metres): the executor's current drive when it has one (the next drive during a lift ride), else the
fastest route from the robot's last node to the leg's place (``LegPlanner.router``), else ``[]``.
``compartments`` numbers the robot's compartments as ``live_operations.compartment_sizes`` does (S
first), each with the parcel the core has in it (and, for an indoor robot, what it took in at a MEET).

**Commands.** ``:pause``/``:resume`` wait for the robot to report the instant action FINISHED (at most
``safety.action_timeout_s`` × the clock's time factor, on the app's clock). ``:cancel`` cancels the
running leg through the live loop (``LiveDispatch.cancel_running``): the leg ends ``LegFailed``, the
core frees the robot and releases its next leg (a RETURN brings what is on board back); the answer
waits for the leg's end as long (status ``CANCELLED``, or ``CANCELLING`` if it is still ending).
``:charge`` is for a robot the loop does not use right now: the nearest charger place
(``operations.setup.campus_places``) reachable on the robot's map without a lift ride (fastest
route), one VDA 5050 order with ``startCharging`` at its end (``LegPlanner.plan`` with a CHARGE leg,
``fleet_leg``); 409 while it runs a leg of the loop ("cancel it first") or still has an order. The
core is not told: a leg it releases to the robot while the charge order runs fails (its order is
refused), which its alarm shows — the operator's call.

**Facilities.** This router's lifespan follows the retained states of every lift, door and gate
(``robopost/{lift|door|gate}/+/+/state``) with the fleet master's MQTT client, keeps the latest per
id, and publishes each change to the console stream as ``{"type": "lift"|"door"|"gate", ...}`` with
the same fields as ``GET /facilities``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import uuid
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, FastAPI, Path, Request
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from interfaces.clock import Clock, within
from interfaces.door import DOOR_TOPIC_ROOT, DoorStateMsg
from interfaces.gate import GATE_TOPIC_ROOT, GateStateMsg
from interfaces.lift import LIFT_TOPIC_ROOT, LiftState
from interfaces.mqtt import MqttClient
from interfaces.vda5050.actions import ActionParams, StartPause, StopPause
from maps.errors import RoutingError
from maps.model import Site
from orchestrator.api.live_operations import LiveDispatch, compartment_sizes, operations_of
from orchestrator.api.operators import (
    PROBLEMS_AUTH,
    PROBLEMS_BODY,
    TEXT_PATTERN,
    FleetRobot,
    Operator,
    OperatorRole,
    Viewer,
    console_state,
)
from orchestrator.api.problems import Problem, problem_responses
from orchestrator.api.services import Services, services_of
from orchestrator.dispatch.campus import Compartments, Leg, LegKind, RobotKind, Window
from orchestrator.domain import DomainEvent
from orchestrator.fleet.errors import (
    ActionNotConfirmedError,
    FleetError,
    UnknownRobotError,
)
from orchestrator.fleet.legs import Drive, LegPlan, LegPlanner
from orchestrator.fleet.master import FleetMaster
from orchestrator.fleet.picture import RobotView
from orchestrator.operations.core import Operations
from orchestrator.operations.setup import SetupError, campus_places, service_windows
from orchestrator.operations.timebase import ServiceDay
from orchestrator.settings import Settings
from orchestrator.store.domain_repositories import AuditRepository

_log = logging.getLogger("robopost.console.live")

NEXT_LEGS = 5
"""Legs listed after the running one."""

_DRIVE_STAGE = re.compile(r"^drive (\d+)/\d+")


# --- models ---------------------------------------------------------------------------------------------


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


StopState = Literal["planned", "under_way", "at_stop", "done"]


class StopView(_Model):
    """A cart's DWELL at a stop in a window, with its parcel counts."""

    stop: str
    label: str
    arrive: str
    start: str
    end: str
    state: StopState
    parcels: int
    picked_up: int
    unclaimed: int


class CartStops(_Model):
    """One cart's stops in one window, in time order."""

    cart: str
    stops: list[StopView]


class WindowView(_Model):
    """A delivery window today."""

    id: str
    start: str
    end: str
    state: Literal["upcoming", "open", "closed"]
    carts: list[CartStops]


class WindowsView(_Model):
    """Today's windows (the live core's service day, or the settings' without the loop)."""

    day: str
    now: str
    live: bool
    """Whether the live dispatch loop runs (without it: the settings' windows, no carts)."""
    windows: list[WindowView]


class LegView(_Model):
    """One leg of a robot (times ISO 8601 UTC)."""

    kind: str
    place: str
    label: str
    arrive: str
    start: str
    end: str
    window: str | None
    parcels: list[str]
    requests: list[str]


class CompartmentView(_Model):
    """One compartment and the parcel in it."""

    number: int
    size: Literal["S", "M", "L"]
    parcel: str | None


class SafetyBrief(_Model):
    """The robot's e-stop (while not NONE) and protective field."""

    e_stop: str | None
    field_violation: bool | None


class RobotDetail(_Model):
    """One robot for the details drawer."""

    robot: FleetRobot
    leg: LegView | None
    next: list[LegView]
    route: list[tuple[float, float]]
    compartments: list[CompartmentView]
    mode: str | None
    safety: SafetyBrief


class CommandRequest(_Model):
    """Why (for the audit log)."""

    reason: str = Field(default="", max_length=500)


class CommandOutcome(_Model):
    """What became of a command."""

    robot: str
    action: str
    status: str


class LiftView(_Model):
    """A lift as its bridge last reported it."""

    building: str
    lift: str
    floor: str | None
    door: str
    mode: str
    session: str | None
    motion: str
    phase: str


class DoorView(_Model):
    """A door as its bridge last reported it."""

    building: str
    door: str
    state: str


class GateView(_Model):
    """A gate as its bridge last reported it."""

    building: str
    gate: str
    state: str


class FacilitiesView(_Model):
    """Every lift, door and gate heard of, by building and id."""

    lifts: list[LiftView]
    doors: list[DoorView]
    gates: list[GateView]


# --- state -----------------------------------------------------------------------------------------------


@dataclass
class _Visit:
    """The parcels offered at one arrival of a cart at a stop, and what became of them."""

    at: float
    parcels: set[str] = field(default_factory=set)
    picked: set[str] = field(default_factory=set)


@dataclass
class _Tally:
    """Visits per (window, cart, stop), read from one core's history as it grows."""

    ops: Operations
    seen: int = 0
    sorted_for: dict[str, tuple[str, str]] = field(default_factory=dict)  # parcel -> (window, stop)
    cart_of: dict[str, str] = field(default_factory=dict)
    visits: dict[tuple[str, str, str], list[_Visit]] = field(default_factory=dict)
    visit_of: dict[str, _Visit] = field(default_factory=dict)

    def update(self) -> None:
        fresh = self.ops.history[self.seen :]
        self.seen += len(fresh)
        for event in fresh:
            self._take(event)

    def _take(self, event: DomainEvent) -> None:
        pid, kind, data = event.entity_id, event.kind, event.data
        if kind in ("sort", "roll"):
            self.sorted_for[pid] = (str(data.get("window")), str(data.get("stop")))
        elif kind == "load":
            self.cart_of[pid] = str(data.get("cart"))
        elif kind == "arrive":
            record = self.ops.records.get(pid)
            window, stop = self.sorted_for.get(pid) or (
                str(record.window if record else None),
                str(record.stop if record else None),
            )
            cart = self.cart_of.get(pid) or str(record.cart if record else None)
            visits = self.visits.setdefault((window, cart, stop), [])
            if not visits or visits[-1].at != event.at:
                visits.append(_Visit(event.at))
            visits[-1].parcels.add(pid)
            self.visit_of[pid] = visits[-1]
        elif kind == "pick_up" and pid in self.visit_of:
            self.visit_of[pid].picked.add(pid)


@dataclass
class ConsoleLiveState:
    """What this router keeps on ``app.state.console_live``."""

    planner: LegPlanner
    lifts: dict[tuple[str, str], LiftView] = field(default_factory=dict)
    doors: dict[tuple[str, str], DoorView] = field(default_factory=dict)
    gates: dict[tuple[str, str], GateView] = field(default_factory=dict)
    tally: _Tally | None = None
    tasks: list[asyncio.Task[None]] = field(default_factory=list)

    def tally_of(self, ops: Operations) -> _Tally:
        """The history tally of ``ops`` (a new one when the service day changed)."""
        if self.tally is None or self.tally.ops is not ops:
            self.tally = _Tally(ops)
        self.tally.update()
        return self.tally


def live_state(app: FastAPI) -> ConsoleLiveState:
    """This router's state (its lifespan must be running)."""
    state: ConsoleLiveState = app.state.console_live
    return state


# --- helpers ---------------------------------------------------------------------------------------------


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _master(app: FastAPI) -> FleetMaster:
    master: FleetMaster | None = getattr(app.state, "fleet", None)
    if master is None:
        raise Problem(503, "the fleet master is not running (fleet.enabled is false)")
    return master


def _view(master: FleetMaster, serial: str) -> RobotView:
    try:
        return master.view(serial)
    except UnknownRobotError:
        raise Problem(404, f"robot {serial!r} is not in the fleet") from None


def _label(site: Site, place: str) -> str:
    known = site.places.get(place)
    return (known.label or place) if known is not None else place


def _legs_of(ops: Operations, robot: str) -> tuple[list[Leg], list[Leg]]:
    """A robot's committed legs (sent) and the plan's later ones, copied."""
    state = ops.robots[robot]
    committed = list(state.committed)
    planned = ops.plan.legs.get(robot, ())
    return committed, list(planned[len(committed) :])


def _leg_view(site: Site, day: ServiceDay, leg: Leg) -> LegView:
    return LegView(
        kind=leg.kind.value,
        place=leg.place,
        label=_label(site, leg.place),
        arrive=_iso(day.epoch(leg.arrive_s)),
        start=_iso(day.epoch(leg.start_s)),
        end=_iso(day.epoch(leg.end_s)),
        window=leg.window,
        parcels=list(leg.parcels),
        requests=list(leg.requests),
    )


def _audit(services: Services, who: Operator, action: str, serial: str, reason: str) -> None:
    with services.sessions.begin() as session:
        AuditRepository(session, services.clock).append(
            actor=who.username, role=who.role.value, action=action, entity="robot", entity_id=serial,
            reason=reason,
        )  # fmt: skip


def _timeout(app: FastAPI) -> float:
    """Seconds of the app's clock to wait for a robot's answer (stretched by the time factor)."""
    settings: Settings = app.state.settings
    return settings.safety.action_timeout_s * settings.clock.time_factor


# --- windows ---------------------------------------------------------------------------------------------


def windows_view(site: Site, ops: Operations, day: ServiceDay, now: float, tally: _Tally) -> WindowsView:
    """The windows of the core's day with each cart's stops (see the module docstring)."""
    carts = [rid for rid, st in ops.robots.items() if st.base.kind is RobotKind.CART]
    stops = {cart: _cart_stops(site, ops, day, cart, tally) for cart in carts}
    out = [
        _window_view(
            day,
            now,
            window,
            [CartStops(cart=c, stops=[v for w, v in stops[c] if w == window.id]) for c in carts],
        )
        for window in ops.setup.windows
    ]
    return WindowsView(day=day.date.isoformat(), now=_iso(now), live=True, windows=out)


def settings_windows(settings: Settings, now: float) -> WindowsView:
    """Without the live loop: the settings' windows of the service day ``now`` is in, no carts."""
    tz = settings.campus.timezone
    hours, minutes = settings.operations.day_starts.split(":")
    day = ServiceDay.of(now, tz)
    if day.seconds(now) < day.local(int(hours) * 3600.0 + int(minutes) * 60.0):
        day = ServiceDay.of(day.epoch(0.0) - 1.0, tz)
    windows = service_windows(settings.campus.windows, day)
    out = [_window_view(day, now, window, []) for window in windows]
    return WindowsView(day=day.date.isoformat(), now=_iso(now), live=False, windows=out)


def _window_view(day: ServiceDay, now: float, window: Window, carts: list[CartStops]) -> WindowView:
    now_s = day.seconds(now)
    state: Literal["upcoming", "open", "closed"] = (
        "upcoming" if now_s < window.start_s else "open" if now_s < window.end_s else "closed"
    )
    return WindowView(
        id=window.id,
        start=_iso(day.epoch(window.start_s)),
        end=_iso(day.epoch(window.end_s)),
        state=state,
        carts=carts,
    )


def _cart_stops(
    site: Site, ops: Operations, day: ServiceDay, cart: str, tally: _Tally
) -> list[tuple[str, StopView]]:
    """(window, stop view) of each DWELL of ``cart``, in leg order."""
    state = ops.robots[cart]
    committed, planned = _legs_of(ops, cart)
    tokens = {id(leg): token for token, leg in dict(ops.legs).items()}
    running, queued = state.running, set(state.queue)
    started: dict[tuple[str, str, str], int] = {}
    out: list[tuple[str, StopView]] = []
    for leg in [*committed, *planned]:
        if leg.kind is not LegKind.DWELL or leg.window is None:
            continue
        token = tokens.get(id(leg)) if leg.released else None
        phase: StopState = "planned"
        visit = None
        if token is not None and token not in queued:
            key = (leg.window, cart, leg.place)
            index = started.get(key, 0)
            started[key] = index + 1
            visits = tally.visits.get(key, [])
            visit = visits[index] if index < len(visits) else None
            arrived: StopState = "at_stop" if visit is not None else "under_way"
            phase = arrived if token == running else "done"
        parcels = set(leg.parcels) | (visit.parcels if visit is not None else set())
        picked = len(visit.picked) if visit is not None else 0
        unclaimed = len(parcels) - picked if phase == "done" and visit is not None else 0
        view = StopView(
            stop=leg.place,
            label=_label(site, leg.place),
            arrive=_iso(day.epoch(leg.arrive_s)),
            start=_iso(day.epoch(leg.start_s)),
            end=_iso(day.epoch(leg.end_s)),
            state=phase,
            parcels=len(parcels),
            picked_up=picked,
            unclaimed=unclaimed,
        )
        out.append((leg.window, view))
    return out


# --- one robot -------------------------------------------------------------------------------------------


def robot_detail(
    app: FastAPI, master: FleetMaster, dispatch: LiveDispatch | None, serial: str
) -> RobotDetail:
    """The details of one robot (see the module docstring)."""
    view = _view(master, serial)
    site: Site = app.state.site
    state = live_state(app)
    ops = dispatch.ops if dispatch is not None else None
    day = dispatch.day if dispatch is not None else None
    leg: Leg | None = None
    following: list[Leg] = []
    compartments: list[CompartmentView] = []
    if dispatch is not None and ops is not None and day is not None and serial in ops.robots:
        running = dispatch.running_leg(serial)
        leg = running[1] if running is not None else None
        st = ops.robots[serial]
        queued = [ops.legs[t] for t in list(st.queue) if t in ops.legs]
        _, planned = _legs_of(ops, serial)
        following = [*queued, *planned][:NEXT_LEGS]
        compartments = _compartments(ops, dispatch, serial, st.base.compartments)
    route = _route(state, master, dispatch, view, leg) if leg is not None else []
    return RobotDetail(
        robot=FleetRobot.model_validate(view.to_json()),
        leg=_leg_view(site, day, leg) if leg is not None and day is not None else None,
        next=[_leg_view(site, day, x) for x in following] if day is not None else [],
        route=route,
        compartments=compartments,
        mode=view.operating_mode,
        safety=SafetyBrief(e_stop=view.e_stop, field_violation=view.field_violation),
    )


def _compartments(
    ops: Operations, dispatch: LiveDispatch, robot: str, sizes: Compartments
) -> list[CompartmentView]:
    where, records = dict(ops.where), dict(ops.records)
    held: dict[int, str] = {}
    for pid, place in where.items():
        record = records.get(pid)
        number = record.compartment if place == robot and record is not None else None
        if number is not None and number.isdigit():
            held[int(number)] = pid
    for pid, slot in dispatch.received(robot).items():
        held.setdefault(slot, pid)
    return [
        CompartmentView(number=n, size=size.name, parcel=held.get(n))  # type: ignore[arg-type]
        for n, size in compartment_sizes(sizes).items()
    ]


def _route(
    state: ConsoleLiveState, master: FleetMaster, dispatch: LiveDispatch | None, view: RobotView, leg: Leg
) -> list[tuple[float, float]]:
    """The running leg's path on the robot's map, local metres (see the module docstring)."""
    map_id = view.position.map_id if view.position is not None else None
    executing = dispatch.executing(view.serial) if dispatch is not None else None
    nodes: Sequence[str] = ()
    if executing is not None:
        plan, stage = executing
        nodes = _current_drive(plan, stage).path
    else:
        place = master.builder.site.places.get(leg.place)
        if place is not None and view.last_node_id:
            with contextlib.suppress(RoutingError, KeyError, ValueError):
                nodes = state.planner.router(view.profile).route(view.last_node_id, place.node).path
    builder = master.builder  # the robots' map ids (its outdoor map id)
    on_map = [n for n in nodes if map_id is None or builder.map_of(n) == map_id]
    return [builder.map_xy(n) for n in on_map]


def _current_drive(plan: LegPlan, stage: str) -> Drive:
    """The drive the executor is on (``drive k/n``), the next one during a ride, else the first."""
    drives = plan.drives
    match = _DRIVE_STAGE.match(stage)
    if match is not None:
        return drives[min(int(match.group(1)), len(drives)) - 1]
    if stage.startswith("lift"):
        done = 0
        for part in plan.stages:
            if isinstance(part, Drive):
                done += 1
            elif stage.startswith(f"lift {part.lift} "):
                break
        return drives[min(done, len(drives) - 1)]
    return drives[0]


# --- commands --------------------------------------------------------------------------------------------


async def _instant(
    request: Request, who: Operator, serial: str, params: ActionParams, what: str, why: str
) -> CommandOutcome:
    """Audit, send one instant action, wait for its end: 200, 404, 409, 504."""
    app = request.app
    master = _master(app)
    view = _view(master, serial)
    if not view.online:
        raise Problem(409, f"robot {serial} is {view.link.value}: nothing was sent (it cannot answer)")
    await asyncio.to_thread(_audit, services_of(request), who, what, serial, why)
    handle = await master.instant_action(serial, params)
    action = params.action_type.value
    try:
        answered = await within(app.state.clock, _timeout(app), asyncio.shield(handle.done))
    except ActionNotConfirmedError:
        answered = False
    if not answered:
        raise Problem(504, f"robot {serial} did not answer {action} in time")
    ended = handle.done.result()
    if ended.status == "FAILED":
        raise Problem(409, f"robot {serial} refused {action}: {ended.result or 'no reason given'}")
    return CommandOutcome(robot=serial, action=action, status=ended.status)


async def _cancel(request: Request, who: Operator, serial: str, why: str) -> CommandOutcome:
    app = request.app
    master = _master(app)
    _view(master, serial)
    dispatch = operations_of(app)
    if dispatch is None or dispatch.ops is None:
        raise Problem(
            409, "the live dispatch loop is not running (operations.enabled is false): no leg to cancel"
        )
    if dispatch.executor.running().get(serial) is None:
        raise Problem(409, f"robot {serial} runs no leg of the live loop: nothing to cancel")
    await asyncio.to_thread(_audit, services_of(request), who, "robot.cancel", serial, why)
    token = await dispatch.cancel_running(serial)
    if token is None:
        raise Problem(409, f"robot {serial} runs no leg of the live loop: nothing to cancel")
    ended = await within(app.state.clock, _timeout(app), dispatch.executor.wait_ended(serial))
    return CommandOutcome(robot=serial, action="cancel", status="CANCELLED" if ended else "CANCELLING")


def _charge_plan(site: Site, planner: LegPlanner, view: RobotView, closed: Iterable[str]) -> LegPlan | None:
    """The fastest one-drive plan to a charger from where the robot stands, or ``None``."""
    try:
        chargers = campus_places(site).chargers
    except SetupError:
        chargers = tuple(sorted(n for n, p in site.places.items() if p.kind.value == "charger"))
    best: LegPlan | None = None
    start = view.last_node_id or ""
    token = f"charge-{uuid.uuid4().hex[:12]}"
    for name in chargers:
        leg = Leg(view.serial, LegKind.CHARGE, name, 0.0, 0.0, 0.0)
        try:
            plan = planner.plan(
                leg, token=token, profile=view.profile, start_node=start, slots={}, closed_lifts=closed
            )
        except FleetError:
            continue
        if plan.rides or len(plan.drives) != 1 or plan.last_drive.entered_by is not None:
            continue
        if best is None or plan.route.time_s < best.route.time_s:
            best = plan
    return best


async def _charge(request: Request, who: Operator, serial: str, why: str) -> CommandOutcome:
    app = request.app
    master = _master(app)
    view = _view(master, serial)
    dispatch = operations_of(app)
    if dispatch is not None and dispatch.runs_loop_leg(serial):
        raise Problem(409, f"robot {serial} is on a leg of the live loop: cancel it first")
    if not view.online:
        raise Problem(409, f"robot {serial} is {view.link.value}: nothing was sent")
    if not view.last_node_id:
        raise Problem(409, f"robot {serial}: where it stands is unknown (no last node yet)")
    ops = dispatch.ops if dispatch is not None else None
    closed = set(ops.closed_lifts) if ops is not None else set()
    plan = _charge_plan(app.state.site, live_state(app).planner, view, closed)
    if plan is None:
        raise Problem(409, f"robot {serial}: no charger is reachable on its map without a lift ride")
    await asyncio.to_thread(_audit, services_of(request), who, "robot.charge", serial, why)
    try:
        handle = await master.send_order(plan.final_fleet_leg())
    except FleetError as exc:
        raise Problem(409, f"robot {serial}: the charge order was not sent: {exc}") from None
    try:
        confirmed = await within(app.state.clock, _timeout(app), asyncio.shield(handle.confirmed))
    except FleetError as exc:
        raise Problem(409, f"robot {serial} refused the charge order: {exc}") from None
    if not confirmed:
        raise Problem(504, f"robot {serial} did not confirm the charge order in time")
    return CommandOutcome(robot=serial, action=f"charge:{plan.leg.place}", status="CONFIRMED")


# --- facilities ------------------------------------------------------------------------------------------


def _where(topic: str, root: str) -> tuple[str, str] | None:
    """(building, id) of a ``{root}/{building}/{id}/state`` topic."""
    parts = topic.split("/")
    if len(parts) != 5 or "/".join(parts[:2]) != root or parts[4] != "state" or not all(parts[2:4]):
        return None
    return parts[2], parts[3]


def lift_view(state: LiftState) -> LiftView:
    """The console's view of a lift state."""
    return LiftView(
        building=state.building,
        lift=state.lift_name,
        floor=state.current_floor,
        door=state.door_state.value,
        mode=state.current_mode.value,
        session=state.robot_id or None,
        motion=state.motion_state.value,
        phase=state.phase.value,
    )


def _facility(topic: str, payload: bytes) -> tuple[str, tuple[str, str], BaseModel] | None:
    """(kind, key, view) of a retained facility state, or ``None`` if unreadable."""
    try:
        if (where := _where(topic, LIFT_TOPIC_ROOT)) is not None:
            return "lift", where, lift_view(LiftState.model_validate_json(payload))
        if (where := _where(topic, DOOR_TOPIC_ROOT)) is not None:
            door = DoorStateMsg.model_validate_json(payload)
            return "door", where, DoorView(building=where[0], door=where[1], state=door.current_mode.value)
        if (where := _where(topic, GATE_TOPIC_ROOT)) is not None:
            gate = GateStateMsg.model_validate_json(payload)
            return "gate", where, GateView(building=where[0], gate=where[1], state=gate.current_mode.value)
    except (ValidationError, ValueError):
        _log.warning("console: unreadable facility state on %s", topic)
    return None


async def _follow_facilities(app: FastAPI, mqtt: MqttClient, state: ConsoleLiveState, root: str) -> None:
    sub = mqtt.subscribe(f"{root}/+/+/state", qos=1)
    kept: Mapping[str, dict[tuple[str, str], Any]] = {
        "lift": state.lifts,
        "door": state.doors,
        "gate": state.gates,
    }
    try:
        async for message in sub:
            got = _facility(message.topic, message.payload)
            if got is None:
                continue
            kind, key, view = got
            if kept[kind].get(key) == view:
                continue
            kept[kind][key] = view
            _publish(app, {"type": kind, **view.model_dump(mode="json")})
    finally:
        mqtt.unsubscribe(sub)


def _publish(app: FastAPI, event: dict[str, Any]) -> None:
    try:
        console_state(app).hub.publish(event)
    except RuntimeError:  # the console stream is not running: nothing to tell
        return


def _lifespan() -> Callable[[FastAPI], contextlib.AbstractAsyncContextManager[None]]:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        site: Site = app.state.site
        state = ConsoleLiveState(LegPlanner(site))
        app.state.console_live = state
        master: FleetMaster | None = getattr(app.state, "fleet", None)
        if master is not None:
            for root in (LIFT_TOPIC_ROOT, DOOR_TOPIC_ROOT, GATE_TOPIC_ROOT):
                state.tasks.append(
                    asyncio.create_task(
                        _follow_facilities(app, master.mqtt, state, root), name=f"console-{root}"
                    )
                )
        try:
            yield
        finally:
            for task in state.tasks:
                task.cancel()
            await asyncio.gather(*state.tasks, return_exceptions=True)

    return lifespan


# --- the routes ------------------------------------------------------------------------------------------

Serial = Annotated[str, Path(max_length=128, pattern=TEXT_PATTERN)]
Reason = Annotated[CommandRequest | None, Body()]
_READ = problem_responses(*PROBLEMS_AUTH, 404, 503)
_ACT = problem_responses(*PROBLEMS_BODY, 404, 409, 503, 504)


def _why(body: CommandRequest | None) -> str:
    return body.reason if body is not None else ""


def console_live_router() -> APIRouter:
    """The console's live views and robot commands (see the module docstring)."""
    router = APIRouter(prefix="/v1/console", tags=["console"], lifespan=_lifespan())
    _view_routes(router)
    _command_routes(router)
    return router


def _view_routes(router: APIRouter) -> None:
    @router.get("/windows", response_model=WindowsView, responses=_READ)
    async def windows(_who: Viewer, request: Request) -> WindowsView:
        """Today's delivery windows, each cart's stops with their parcel counts."""
        app = request.app
        clock: Clock = app.state.clock
        dispatch = operations_of(app)
        ops = dispatch.ops if dispatch is not None else None
        day = dispatch.day if dispatch is not None else None
        if ops is None or day is None:
            return settings_windows(app.state.settings, clock.now())
        tally = live_state(app).tally_of(ops)
        return windows_view(app.state.site, ops, day, clock.now(), tally)

    @router.get("/robots/{serial}", response_model=RobotDetail, responses=_READ)
    async def robot(serial: Serial, _who: Viewer, request: Request) -> RobotDetail:
        """One robot: its state, leg, next legs, route, compartments, mode and safety."""
        app = request.app
        return robot_detail(app, _master(app), operations_of(app), serial)

    @router.get("/facilities", response_model=FacilitiesView, responses=_READ)
    async def facilities(_who: Viewer, request: Request) -> FacilitiesView:
        """Every lift, door and gate as last reported (retained MQTT states)."""
        _master(request.app)
        state = live_state(request.app)
        return FacilitiesView(
            lifts=[state.lifts[k] for k in sorted(state.lifts)],
            doors=[state.doors[k] for k in sorted(state.doors)],
            gates=[state.gates[k] for k in sorted(state.gates)],
        )


def _command_routes(router: APIRouter) -> None:
    @router.post("/robots/{serial}:pause", response_model=CommandOutcome, responses=_ACT)
    async def pause(
        serial: Serial, who: OperatorRole, request: Request, body: Reason = None
    ) -> CommandOutcome:
        """Pause the robot (``startPause``): it stops driving and holds its actions."""
        return await _instant(request, who, serial, StartPause(), "robot.pause", _why(body))

    @router.post("/robots/{serial}:resume", response_model=CommandOutcome, responses=_ACT)
    async def resume(
        serial: Serial, who: OperatorRole, request: Request, body: Reason = None
    ) -> CommandOutcome:
        """Resume a paused robot (``stopPause``)."""
        return await _instant(request, who, serial, StopPause(), "robot.resume", _why(body))

    @router.post("/robots/{serial}:cancel", response_model=CommandOutcome, responses=_ACT)
    async def cancel(
        serial: Serial, who: OperatorRole, request: Request, body: Reason = None
    ) -> CommandOutcome:
        """Cancel the robot's running leg of the live loop; the core frees it and goes on."""
        return await _cancel(request, who, serial, _why(body))

    @router.post("/robots/{serial}:charge", response_model=CommandOutcome, responses=_ACT)
    async def charge(
        serial: Serial, who: OperatorRole, request: Request, body: Reason = None
    ) -> CommandOutcome:
        """Send the robot to the nearest charger (only while it runs no leg of the live loop)."""
        return await _charge(request, who, serial, _why(body))
