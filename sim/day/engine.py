"""The fast-mode discrete-event simulator: a campus day on a virtual clock, in one process.

``simulate_day(scenario, progress=None, check_every=...) -> DayResult`` builds the day (``sim.campus_day``
from the scenario's campus, seeded), the real ``Dispatcher`` (stopped by iteration count, so the same
seed gives the same plans) and the real operations core (``orchestrator.operations.Operations``), then
runs an event heap ``(time, sequence, action)`` from 06:00 until every robot is done or 23:30. Nothing
waits on the wall clock: time jumps from one event to the next.

What is simulated (the core only sees the events a real fleet would report):

- **robots** follow ``maps`` routes step by step (``Router.route`` with the lifts closed at that
  moment): each run of passages is driven at the route's time × a per-leg speed factor (±5 %), doors
  and gates add 0–4 s each to their pass time; a cart in a GNSS outage drives ``slowdown`` times
  slower outdoors; metres
  and lift rides cost battery (the robot's ``Battery`` figures), a CHARGE leg charges. A robot waits
  at the leg's place until the planned start (a window, a promise, a hand-off), then serves it.
- **lifts**: a robot at a landing waits for passenger traffic (exponential, mean the lift's
  ``wait_s``; three times that around class changes 07:40–08:20, 11:50–12:30, 16:50–17:40) and for
  the lift's previous session, then
  rides (one session at a time, checked by ``World.book_lift``); an out-of-service lift keeps the
  robots that reach it waiting until it is back (new routes avoid it).
- **hand-offs**: the cart's HANDOFF and the indoor robot's MEET are a rendezvous; the transfer starts
  when both are there; a robot whose partner does not come within 15 min gives the leg up.
- **students** (dorm parcels): each recipient has a preferred pickup time from a timetable model
  (peaks after classes: 07:45, 12:15, 17:10 — the busiest, SCENARIO.md — and 21:20); when the code
  comes (the cart is at the stop) the student walks over (exponential, mean ``react_mean_s``) but
  not before the preferred time (unless ``flexible``: they make the trip when told); the cart's
  screen serves one student at a time (20 s; a forgotten
  code +40 s, a step-up call to staff +90 s); students who come after the cart left miss it (the
  parcel rolls to the next window); some never come. Office recipients take the parcel at the door.
- **mini-program customers** hand over or take the item at the door; one in ten is late (mean 2 min).
- **vans**: the two inbound batches arrive at their receipt times (06:30, 15:30).
- **faults** of the scenario: robot breakdown (towed home, repaired later), lift out of service,
  GNSS outage, broker outage (commands to robots and robots' reports wait until it is back).

Invariants: every move goes through ``World`` (an item in one place, one item per compartment, one
session per lift), and ``World.check`` plus the agreement between the core's and the world's view of
every parcel run after every event (``check_every`` = 1, the default: it costs little, a full day is
still ~5 s) and at the end; a broken rule raises ``InvariantError``. The agreement check waits while
reports are held by a broker outage (the core is behind on purpose then).
"""

from __future__ import annotations

import functools
import heapq
import itertools
import math
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from maps.errors import RoutingError
from maps.io import load_map
from maps.model import Site
from maps.routing import Router
from orchestrator.dispatch.campus import Leg, LegKind, Parcel, Request, Robot, RobotKind, Window
from orchestrator.dispatch.dispatcher import Dispatcher
from orchestrator.operations import (
    STATION,
    Alarm,
    CancelLeg,
    Command,
    Event,
    LegArrived,
    LegFailed,
    LegFinished,
    LiftClosed,
    LiftReopened,
    Operations,
    ParcelPickedUp,
    ParcelsArrived,
    ReleaseCodes,
    RequestCreated,
    RobotFailed,
    RobotRecovered,
    SetTimer,
    Setup,
    StartLeg,
    TimerFired,
)
from sim.campus_day import CampusDay, campus_day
from sim.day.scenario import BrokerOutage, GnssOutage, LiftOutOfService, RobotBreakdown, Scenario
from sim.day.world import InvariantError, World

DAY_BEGIN_S = 6 * 3600.0
DAY_END_S = 23.5 * 3600.0
RENDEZVOUS_TIMEOUT_S = 900.0
SCREEN_S, RETRY_S, STEP_UP_S = 20.0, 40.0, 90.0
LIFT_PEAK_FACTOR = 3.0
LIFT_PEAKS = ((7.67, 8.33), (11.83, 12.5), (16.83, 17.67))  # hours: class changes
TIMETABLE_PEAKS = ((7.75, 15, 0.15), (12.25, 20, 0.25), (17.17, 25, 0.40), (21.33, 20, 0.20))
"""(hour, sigma in minutes, weight) of the students' preferred pickup times."""


@dataclass(frozen=True, slots=True)
class Student:
    """A dorm parcel's recipient: when they would like to come, and how they behave."""

    preferred_s: float
    no_show: bool
    forgets: bool
    step_up: bool
    react_s: float
    flexible: bool  # comes when the code comes, even before the preferred time


@dataclass
class SimRobot:
    """A simulated robot: where it is, what it runs, its battery and what it did."""

    base: Robot
    place: str
    battery_wh: float
    online: bool = True
    epoch: int = 0  # bumped on cancel and breakdown: scheduled steps of the old leg are dropped
    token: int | None = None
    leg: Leg | None = None
    metres: float = 0.0
    lift_rides: int = 0
    busy: list[tuple[float, float, str]] = field(default_factory=list)  # (start, end, what)
    at_stop: int | None = None  # token of the DWELL it serves now
    closing: bool = False  # past the planned end of the dwell: serving the queue only
    screen_free_s: float = 0.0
    min_battery_wh: float = math.inf
    down: list[tuple[float, float]] = field(default_factory=list)  # broken down (start, repaired)


@dataclass
class Segment:
    """A run of passages (``lift`` None) or one lift ride."""

    time_s: float
    length_m: float
    outdoor: bool
    doors: int = 0
    lift: str | None = None


@dataclass
class DayResult:
    """Everything a day produced (what ``kpis`` and ``report`` read)."""

    scenario: Scenario
    seed: int
    site: Site
    day: CampusDay
    ops: Operations
    world: World
    robots: dict[str, SimRobot]
    students: dict[str, Student]
    dorm: set[str]
    pickups: dict[str, tuple[float, str, str]] = field(default_factory=dict)  # pid -> (t, window, stop)
    offered: dict[str, list[str]] = field(default_factory=dict)  # pid -> windows it was at a stop in
    delivered: dict[str, float] = field(default_factory=dict)  # office pid -> t
    student_waits: list[float] = field(default_factory=list)
    missed: int = 0
    lift_waits: list[float] = field(default_factory=list)
    handoff_waits: list[float] = field(default_factory=list)
    dwells: list[tuple[str, float, float, str, str]] = field(default_factory=list)  # robot,a,b,stop,window
    events: int = 0
    end_s: float = 0.0


class Simulation:
    """One day (see the module docstring); ``run()`` returns the ``DayResult``."""

    def __init__(
        self,
        scenario: Scenario,
        *,
        progress: Callable[[float], None] | None = None,
        check_every: int = 1,
    ) -> None:
        self.scenario = scenario
        self.seed = scenario.seed
        self.progress = progress
        self.check_every = max(1, check_every)
        self.site = load_map(scenario.campus)
        windows = (
            None
            if scenario.windows is None
            else tuple(Window(w.id, w.start, w.end) for w in scenario.windows)
        )
        self.day = campus_day(
            self.site,
            seed=scenario.seed,
            parcels=scenario.parcels,
            carts=scenario.carts,
            indoor=scenario.indoor,
            requests=scenario.requests,
            window_times=windows,
        )
        snap = self.day.snapshot
        self.windows = snap.windows
        self.dispatcher = Dispatcher(self.site, iterations=scenario.iterations, seed=scenario.seed)
        self.ops = Operations(
            self.dispatcher,
            Setup(snap.robots, snap.windows, snap.station, snap.handoffs, snap.chargers, snap.timings),
        )
        self.rng = random.Random(f"sim-day-{scenario.seed}")
        self.robots = {r.id: SimRobot(r, r.position, r.battery.level_wh) for r in snap.robots}
        self.world = World({r.id: r.compartments for r in snap.robots}, self.site.lifts)
        self.requests = {q.id: q for q in self.day.requests}
        self.station = snap.station
        self.handoff_building = {h.cart_place: b for b, h in snap.handoffs.items()}
        self._check_faults()
        cart_table = self.dispatcher.book.table("cart")
        dorm = {p.id for p in snap.parcels if cart_table.has(p.destination)}
        self.result = DayResult(
            scenario, scenario.seed, self.site, self.day, self.ops, self.world, self.robots,
            self._students(snap.parcels, dorm), dorm,
        )  # fmt: skip
        self.now = DAY_BEGIN_S
        self._heap: list[tuple[float, int, Callable[..., None], tuple[Any, ...]]] = []
        self._seq = itertools.count()
        self._routers: dict[tuple[str, frozenset[str]], Router] = {}
        self._routes: dict[tuple[str, frozenset[str], str, str], list[Segment]] = {}
        self._rendezvous: dict[tuple[str, str, float], tuple[str, int, float]] = {}
        self._lift_waiting: dict[str, list[tuple[str, int, list[Segment], int, str, float]]] = {}
        self._gnss: list[GnssOutage] = [f for f in scenario.faults if isinstance(f, GnssOutage)]
        self._broker: list[tuple[float, float]] = [
            (f.at, f.at + 60 * f.minutes) for f in scenario.faults if isinstance(f, BrokerOutage)
        ]
        self._held: list[Callable[[], None]] = []
        self._recovering: dict[str, list[str]] = {}

    # ---- setup ---------------------------------------------------------------------------------

    def _check_faults(self) -> None:
        for fault in self.scenario.faults:
            robot = fault.robot if isinstance(fault, RobotBreakdown | GnssOutage) else None
            if robot is not None and robot not in self.robots:
                known = ", ".join(sorted(self.robots))
                raise ValueError(f"fault {fault.kind}: unknown robot {robot!r} (robots: {known})")
            if isinstance(fault, LiftOutOfService) and fault.lift not in self.site.lifts:
                known = ", ".join(sorted(self.site.lifts))
                raise ValueError(f"fault {fault.kind}: unknown lift {fault.lift!r} (lifts: {known})")

    def _students(self, parcels: tuple[Parcel, ...], dorm: set[str]) -> dict[str, Student]:
        rng = random.Random(f"students-{self.seed}")
        conf = self.scenario.students
        out = {}
        for parcel in parcels:
            if parcel.id not in dorm:
                continue
            peaks = [(h, s, w) for h, s, w in TIMETABLE_PEAKS if h * 3600 >= parcel.received_s + 1800]
            peaks = peaks or [TIMETABLE_PEAKS[-1]]
            hour, sigma, _ = rng.choices(peaks, weights=[w for _, _, w in peaks])[0]
            preferred = min(23.5 * 3600, max(parcel.received_s, rng.gauss(hour * 3600, sigma * 60)))
            forgets = rng.random() < conf.forget_code
            out[parcel.id] = Student(
                round(preferred, 1),
                rng.random() < conf.no_show,
                forgets,
                forgets and rng.random() < conf.step_up,
                rng.expovariate(1 / conf.react_mean_s),
                rng.random() < conf.flexible,
            )
        return out

    # ---- the heap ------------------------------------------------------------------------------

    def at(self, t: float, action: Callable[..., None], *args: Any) -> None:
        """Schedule ``action(*args)`` at ``t`` (not before now)."""
        heapq.heappush(self._heap, (max(t, self.now), next(self._seq), action, args))

    def run(self) -> DayResult:
        """Simulate the day; the result (raises ``InvariantError`` if a rule of the world breaks)."""
        by_time: dict[float, list[Parcel]] = {}
        for parcel in self.day.snapshot.parcels:
            by_time.setdefault(parcel.received_s, []).append(parcel)
        for t, batch in sorted(by_time.items()):
            self.at(t, self._van, tuple(batch))
        for request in self.day.requests:
            self.at(request.created_s, self._request, request)
        for fault in self.scenario.faults:
            self.at(fault.at, self._fault, fault)
        count = 0
        while self._heap:
            t, _, action, args = heapq.heappop(self._heap)
            if t > DAY_END_S:
                break
            self.now = t
            action(*args)
            count += 1
            if count % self.check_every == 0:
                self.check()
            if self.progress is not None and count % 50 == 0:
                self.progress(t)
        self.result.events = count
        self.result.end_s = self.now
        self.check()
        return self.result

    def check(self) -> None:
        """The world's invariants and the agreement of the core's view of every parcel with it."""
        self.world.check()
        if self._held:  # reports still on their way over the broker: the core is behind on purpose
            return
        for pid, believed in self.ops.where.items():
            actual = self.world.where.get(pid)
            ok = actual == believed or (believed == STATION and actual in (STATION, "recovery"))
            if not ok:
                raise InvariantError(f"parcel {pid}: the core has it at {believed}, the world at {actual}")

    # ---- the core ------------------------------------------------------------------------------

    def _tell(self, event: Event) -> None:
        self._do(self.ops.on_event(event, self.now))

    def _report(self, event: Event) -> None:
        """A robot's report: over the broker, so it waits while the broker is down."""
        if self._broker_down():
            self._held.append(functools.partial(self._tell, event))
        else:
            self._tell(event)

    def _broker_down(self) -> bool:
        return any(a <= self.now < b for a, b in self._broker)

    def _do(self, commands: list[Command]) -> None:
        for command in commands:
            match command:
                case StartLeg():
                    self._to_robot(functools.partial(self._start_leg, command.token, command.leg))
                case CancelLeg():
                    self._to_robot(functools.partial(self._cancel, command.robot, command.token))
                case ReleaseCodes():
                    self._codes(command)
                case SetTimer():
                    self.at(command.at, self._tell, TimerFired(command.key))
                case Alarm():
                    pass  # kept in ops.alarms
                case _:
                    raise TypeError(f"unknown command {command!r}")

    def _to_robot(self, action: Callable[[], None]) -> None:
        if self._broker_down():
            self._held.append(action)
        else:
            action()

    def _broker_back(self) -> None:
        held, self._held = self._held, []
        for action in held:
            action()

    # ---- world events --------------------------------------------------------------------------

    def _van(self, batch: tuple[Parcel, ...]) -> None:
        for parcel in batch:
            self.world.add(parcel.id, parcel.size, STATION)
        self._tell(ParcelsArrived(batch))

    def _request(self, request: Request) -> None:
        self.world.add(request.id, request.size, "customer")
        self._tell(RequestCreated(request))

    def _fault(self, fault: Any) -> None:
        if isinstance(fault, RobotBreakdown):
            self._breakdown(fault)
        elif isinstance(fault, LiftOutOfService):
            self.world.lifts[fault.lift].in_service = False
            self._tell(LiftClosed(fault.lift))
            self.at(self.now + 60 * fault.minutes, self._lift_back, fault.lift)
        elif isinstance(fault, BrokerOutage):
            self.at(self.now + 60 * fault.minutes, self._broker_back)

    def _lift_back(self, lift: str) -> None:
        self.world.lifts[lift].in_service = True
        self._tell(LiftReopened(lift))
        waiting, self._lift_waiting[lift] = self._lift_waiting.get(lift, []), []
        for rid, epoch, segments, index, place, since in waiting:
            self._ride(self.robots[rid], epoch, segments, index, place, since)

    def _breakdown(self, fault: RobotBreakdown) -> None:
        robot = self.robots[fault.robot]
        if not robot.online:
            return
        robot.online = False
        robot.epoch += 1
        robot.token = robot.leg = robot.at_stop = None
        self._drop_rendezvous(fault.robot)
        items = self.world.aboard(fault.robot)
        for item in items:
            self.world.move(item, fault.robot, "recovery")
        self._recovering[fault.robot] = items
        back = self.now + 60 * fault.tow_min
        repaired = self.now + 60 * max(fault.repair_min, fault.tow_min)
        robot.down.append((self.now, repaired))
        self.at(back, self._towed, fault.robot)
        self.at(repaired, self._repaired, fault.robot)
        self._tell(RobotFailed(fault.robot, "breakdown", back))

    def _towed(self, rid: str) -> None:
        robot = self.robots[rid]
        robot.place = robot.base.home
        for item in self._recovering.pop(rid, []):
            self.world.move(item, "recovery", STATION if item not in self.requests else "failed_request")

    def _repaired(self, rid: str) -> None:
        self.robots[rid].online = True
        self._tell(RobotRecovered(rid))

    # ---- legs ----------------------------------------------------------------------------------

    def _start_leg(self, token: int, leg: Leg) -> None:
        robot = self.robots[leg.robot]
        if not robot.online:
            return
        robot.token, robot.leg = token, leg
        self._travel(robot, robot.epoch, leg.place)

    def _cancel(self, rid: str, token: int) -> None:
        robot = self.robots[rid]
        if robot.token != token:
            return
        robot.epoch += 1
        robot.token = robot.leg = None
        self._drop_rendezvous(rid)
        self._report(LegFailed(rid, token, "cancelled by the orchestrator"))

    def _live(self, robot: SimRobot, epoch: int) -> bool:
        return robot.online and robot.epoch == epoch and robot.leg is not None

    def _travel(self, robot: SimRobot, epoch: int, place: str) -> None:
        if robot.place == place:
            self._arrived(robot, epoch)
            return
        segments = self._route(robot.base.profile, robot.place, place)
        factor = math.exp(self.rng.gauss(0.0, 0.05))
        self._segment(robot, epoch, segments, 0, place, factor)

    def _segment(
        self, robot: SimRobot, epoch: int, segments: list[Segment], index: int, place: str, factor: float
    ) -> None:
        if not self._live(robot, epoch):
            return
        if index == len(segments):
            robot.place = place
            self._arrived(robot, epoch)
            return
        seg = segments[index]
        if seg.lift is not None:
            if not self.world.lifts[seg.lift].in_service:
                waiting = self._lift_waiting.setdefault(seg.lift, [])
                waiting.append((robot.base.id, epoch, segments, index, place, self.now))
                return
            self._ride(robot, epoch, segments, index, place, self.now, factor)
            return
        dt = seg.time_s * factor + sum(self.rng.uniform(0.0, 4.0) for _ in range(seg.doors))
        if seg.outdoor and robot.base.kind is RobotKind.CART:
            dt *= self._gnss_slowdown(robot.base.id)
        self._spend(robot, seg.length_m, 0)
        robot.busy.append((self.now, self.now + dt, "travel"))
        self.at(self.now + dt, self._segment, robot, epoch, segments, index + 1, place, factor)

    def _ride(
        self,
        robot: SimRobot,
        epoch: int,
        segments: list[Segment],
        index: int,
        place: str,
        since: float,
        factor: float = 1.0,
    ) -> None:
        if not self._live(robot, epoch):
            return
        seg = segments[index]
        assert seg.lift is not None
        log = self.world.lifts[seg.lift]
        hour = self.now / 3600
        expected = self.site.lifts[seg.lift].wait_s
        mean = expected * (LIFT_PEAK_FACTOR if any(a <= hour < b for a, b in LIFT_PEAKS) else 1.0)
        start = max(self.now + self.rng.expovariate(1 / mean), log.free_at)
        end = start + max(0.0, seg.time_s - expected)  # the route's time holds the expected wait
        self.world.book_lift(seg.lift, start, end, robot.base.id)
        self.result.lift_waits.append(start - since)
        robot.lift_rides += 1
        self._spend(robot, 0.0, 1)
        robot.busy.append((self.now, end, "lift"))
        self.at(end, self._segment, robot, epoch, segments, index + 1, place, factor)

    def _gnss_slowdown(self, rid: str) -> float:
        factor = 1.0
        for f in self._gnss:
            if (f.robot is None or f.robot == rid) and f.at <= self.now < f.at + 60 * f.minutes:
                factor = max(factor, f.slowdown)
        return factor

    def _spend(self, robot: SimRobot, metres: float, rides: int) -> None:
        robot.metres += metres
        robot.battery_wh -= robot.base.battery.cost(metres, rides)
        robot.min_battery_wh = min(robot.min_battery_wh, robot.battery_wh)

    def _route(self, profile: str, a: str, b: str) -> list[Segment]:
        closed = frozenset(lift for lift, log in self.world.lifts.items() if not log.in_service)
        key = (profile, closed, a, b)
        if key not in self._routes:
            try:
                route = self._router(profile, closed).route(a, b)
            except RoutingError:  # every way is through a closed lift: take it and wait there
                route = self._router(profile, frozenset()).route(a, b)
            segments: list[Segment] = []
            for step in route.steps:
                if step.kind == "lift":
                    segments.append(Segment(step.time_s, 0.0, False, lift=step.ref))
                    continue
                outdoor = self.site.nodes[step.a].outdoor and self.site.nodes[step.b].outdoor
                doors = int(step.door is not None) + int(step.gate is not None)
                last = segments[-1] if segments else None
                if last is not None and last.lift is None and last.outdoor == outdoor:
                    last.time_s += step.time_s
                    last.length_m += step.length_m
                    last.doors += doors
                else:
                    segments.append(Segment(step.time_s, step.length_m, outdoor, doors))
            self._routes[key] = segments
        return self._routes[key]

    def _router(self, profile: str, closed: frozenset[str]) -> Router:
        key = (profile, closed)
        if key not in self._routers:
            self._routers[key] = Router(self.site, profile, closed_lifts=closed)
        return self._routers[key]

    # ---- at the place --------------------------------------------------------------------------

    def _arrived(self, robot: SimRobot, epoch: int) -> None:
        leg, token = robot.leg, robot.token
        assert leg is not None and token is not None
        self._report(LegArrived(robot.base.id, token))
        self.at(max(self.now, leg.start_s), self._serve, robot, epoch)

    def _serve(self, robot: SimRobot, epoch: int) -> None:
        if not self._live(robot, epoch):
            return
        leg = robot.leg
        assert leg is not None and robot.token is not None
        duration = max(0.0, leg.end_s - leg.start_s)
        rid = robot.base.id
        match leg.kind:
            case LegKind.DWELL:
                robot.at_stop, robot.closing = robot.token, False
                robot.screen_free_s = self.now
                window = self._window_at(self.now)
                for pid in leg.parcels:
                    if self.world.where.get(pid) == rid:
                        self.result.offered.setdefault(pid, []).append(window)
                self.result.dwells.append((rid, self.now, self.now + duration, leg.place, window))
                robot.busy.append((self.now, self.now + duration, "dwell"))
                self.at(self.now + duration, self._depart, robot, epoch)
            case LegKind.HANDOFF | LegKind.MEET:
                self._meet(robot, epoch, leg, duration)
            case LegKind.COLLECT:
                late = self.rng.expovariate(1 / 120.0) if self.rng.random() < 0.1 else 0.0
                robot.busy.append((self.now, self.now + late + duration, "collect"))
                self.at(self.now + late + duration, self._finish, robot, epoch, self._collect(leg))
            case LegKind.CHARGE:
                robot.battery_wh = min(
                    robot.base.battery.capacity_wh,
                    robot.battery_wh + robot.base.battery.charge_w * duration / 3600,
                )
                self.at(self.now + duration, self._finish, robot, epoch, ())
            case _:
                robot.busy.append((self.now, self.now + duration, leg.kind.value))
                self.at(self.now + duration, self._finish, robot, epoch, None)

    def _collect(self, leg: Leg) -> tuple[str, ...]:
        return tuple(q for q in leg.requests if self.world.where.get(q) == "customer")

    def _finish(self, robot: SimRobot, epoch: int, moved: tuple[str, ...] | None) -> None:
        """The end of a leg's service: move what the leg moves, report it."""
        if not self._live(robot, epoch):
            return
        leg, token = robot.leg, robot.token
        assert leg is not None and token is not None
        rid = robot.base.id
        slots: dict[str, str] = {}
        if moved is None:
            moved = self._moves(robot, leg)
        for item in moved:
            slot = self._move_for(robot, leg, item)
            if slot is not None:
                slots[item] = slot
        robot.token = robot.leg = None
        self._report(LegFinished(rid, token, moved, slots))

    def _moves(self, robot: SimRobot, leg: Leg) -> tuple[str, ...]:
        rid = robot.base.id
        where = self.world.where
        if leg.kind is LegKind.LOAD:
            source = STATION if robot.base.kind is RobotKind.CART else self._mailroom(leg.place)
            return tuple(p for p in leg.parcels if where.get(p) == source)
        if leg.kind in (LegKind.DELIVER, LegKind.HANDOFF, LegKind.DROP):
            items = leg.requests if leg.kind is LegKind.DROP else leg.parcels
            return tuple(p for p in items if where.get(p) == rid)
        if leg.kind is LegKind.RETURN:
            return tuple(p for p in self.world.aboard(rid) if p not in self.requests)
        return ()

    def _move_for(self, robot: SimRobot, leg: Leg, item: str) -> str | None:
        rid = robot.base.id
        match leg.kind:
            case LegKind.LOAD:
                return self.world.move(item, self.world.where[item], rid)
            case LegKind.COLLECT:
                return self.world.move(item, "customer", rid)
            case LegKind.DROP:
                self.world.move(item, rid, "request_done")
            case LegKind.DELIVER:
                self.world.move(item, rid, "delivered")
                self.result.delivered[item] = self.now
            case LegKind.HANDOFF:
                self.world.move(item, rid, self._mailroom(leg.place))
            case LegKind.RETURN:
                self.world.move(item, rid, STATION)
            case _:
                raise InvariantError(f"{rid}: {item} cannot move at a {leg.kind} leg")
        return None

    def _mailroom(self, place: str) -> str:
        for building, handoff in self.day.snapshot.handoffs.items():
            if place in (handoff.cart_place, handoff.robot_place):
                return f"mailroom:{building}"
        raise InvariantError(f"{place} is no hand-off point")

    def _window_at(self, t: float) -> str:
        best = self.windows[0].id
        for w in self.windows:
            if w.start_s - 1800 <= t:
                best = w.id
        return best

    # ---- hand-offs -----------------------------------------------------------------------------

    def _meet(self, robot: SimRobot, epoch: int, leg: Leg, duration: float) -> None:
        rid = robot.base.id
        partner = leg.partner or ""
        key = (rid, partner, leg.start_s) if leg.kind is LegKind.HANDOFF else (partner, rid, leg.start_s)
        other = self._rendezvous.pop(key, None)
        if other is None:
            self._rendezvous[key] = (rid, epoch, self.now)
            self.at(self.now + RENDEZVOUS_TIMEOUT_S, self._gave_up, robot, epoch, key)
            return
        orid, oepoch, since = other
        partner_robot = self.robots[orid]
        if not self._live(partner_robot, oepoch):
            self._rendezvous[key] = (rid, epoch, self.now)
            self.at(self.now + RENDEZVOUS_TIMEOUT_S, self._gave_up, robot, epoch, key)
            return
        self.result.handoff_waits.append(self.now - since)
        end = self.now + duration
        for r, e in ((robot, epoch), (partner_robot, oepoch)):
            r.busy.append((self.now, end, "handoff"))
            self.at(end, self._finish, r, e, None)

    def _gave_up(self, robot: SimRobot, epoch: int, key: tuple[str, str, float]) -> None:
        entry = self._rendezvous.get(key)
        if entry is None or entry[0] != robot.base.id or entry[1] != epoch or not self._live(robot, epoch):
            return
        del self._rendezvous[key]
        token = robot.token
        assert token is not None
        robot.token = robot.leg = None
        self._report(LegFailed(robot.base.id, token, "the hand-off partner did not come"))

    def _drop_rendezvous(self, rid: str) -> None:
        for key in [k for k, v in self._rendezvous.items() if v[0] == rid]:
            del self._rendezvous[key]

    # ---- students ------------------------------------------------------------------------------

    def _codes(self, command: ReleaseCodes) -> None:
        robot = self.robots[command.robot]
        if robot.base.kind is not RobotKind.CART:
            return  # office recipients are at their door: the DELIVER takes its planned time
        token = robot.token
        for pid in command.parcels:
            student = self.result.students.get(pid)
            if student is None or student.no_show:
                continue
            arrive = self.now + student.react_s
            if not student.flexible:
                arrive = max(arrive, student.preferred_s)
            self.at(arrive, self._student, pid, command.robot, token)

    def _student(self, pid: str, rid: str, token: int | None) -> None:
        robot = self.robots[rid]
        here = robot.online and robot.at_stop == token and token is not None and not robot.closing
        if not here or self.world.where.get(pid) != rid:
            self.result.missed += 1
            return
        student = self.result.students[pid]
        service = SCREEN_S + (RETRY_S if student.forgets else 0.0) + (STEP_UP_S if student.step_up else 0.0)
        start = max(self.now, robot.screen_free_s)
        robot.screen_free_s = start + service
        self.result.student_waits.append(robot.screen_free_s - self.now)
        self.at(robot.screen_free_s, self._picked_up, pid, rid, robot.epoch)

    def _picked_up(self, pid: str, rid: str, epoch: int) -> None:
        robot = self.robots[rid]
        if robot.epoch != epoch or self.world.where.get(pid) != rid:
            return
        self.world.move(pid, rid, "picked_up")
        leg = robot.leg
        window = self._window_at(self.now)
        self.result.pickups[pid] = (self.now, window, leg.place if leg else "")
        self._report(ParcelPickedUp(pid, rid))

    def _depart(self, robot: SimRobot, epoch: int) -> None:
        if not self._live(robot, epoch):
            return
        robot.closing = True
        if robot.screen_free_s > self.now:  # serve the queue that is there, then leave
            robot.busy.append((self.now, robot.screen_free_s, "dwell"))
            self.at(robot.screen_free_s, self._depart, robot, epoch)
            return
        robot.at_stop = None
        self._finish(robot, epoch, ())


def simulate_day(
    scenario: Scenario, *, progress: Callable[[float], None] | None = None, check_every: int = 1
) -> DayResult:
    """Simulate one day of ``scenario`` (see the module docstring)."""
    return Simulation(scenario, progress=progress, check_every=check_every).run()
