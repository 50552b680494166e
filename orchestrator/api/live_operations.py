"""The live dispatch loop in the app: the operations core fed by the fleet, the store and the APIs.

With ``settings.operations.enabled`` (and the fleet master on) the app's lifespan starts one
``LiveDispatch`` (``app.state.operations``). It owns the service day's operations core
(``orchestrator.operations``) inside ``LiveOperations`` and plugs in the real ports:

==============  ==================================================================================
port            adapter
==============  ==================================================================================
``legs``        this class over ``fleet.executor.LegExecutor`` (VDA 5050 orders, lift sessions,
                doors; one ``Facilities`` client per robot)
``codes``       ``live_ports.DeliveryCodes`` (the cart's codes and SMS, the office-door SMS)
``history``     ``live_ports.StoreHistory`` (the parcel history through the delivery flows)
``alarms``      ``live_ports.AlarmLog``, shown on the console's alarm list (kind ``operations``)
==============  ==================================================================================

**What feeds the core.**

- At the start of a service day, every stored parcel at the station (received, sorted, returned)
  goes in as ``ParcelsArrived`` with its stored record, so the core's events continue its history.
  Parcels the core cannot take (no place, no window left today) raise one alarm listing them.
- Parcel intake calls ``parcels_imported(tracking_numbers)`` after its transaction: the new parcels
  arrive the same way (a re-plan, about a second).
- The cart API calls ``picked_up(tracking_number, cart)`` after a code opened a compartment (online
  check or the cart's offline event): ``ParcelPickedUp``.
- The fleet master's link events: a robot whose link stays down (offline, connection broken, stale)
  for ``operations.robot_failed_after_s`` is ``RobotFailed`` (its parcels come back to the station and
  are planned again; it is expected back ``recovery_guess_s`` later) and its running leg is cancelled
  on the robot; ONLINE again is ``RobotRecovered``. A shorter outage — a broker restart, a robot
  rebooting — changes nothing: the legs under way go on.
- The lift states the elevator bridges publish (retained): FIRE, OFFLINE or EMERGENCY is
  ``LiftClosed`` (routes avoid it), back to HUMAN/AGV is ``LiftReopened``.
- The executor's reports (``LegArrived``/``LegFinished``/``LegFailed``).

**Compartments.** A robot's compartments are numbered from 1, smallest size first: a cart with 30 S,
15 M and 5 L compartments has S in 1–30, M in 31–45, L in 46–50 (``compartment_sizes``); the
simulated carts' locker boards use the same numbering. The orchestrator directs loading: when a
LOAD leg starts, each parcel to load gets the smallest free compartment it fits, largest parcels
first (``assign_compartments``); the staff put it there (the station screen, or the demo's simulated
staff reading the cart's code sheet), and the LOAD's ``LegFinished`` reports those parcels moved into
those compartments. An indoor robot's LOAD at the hand-off point takes the parcels it received at the
MEET into the compartments the hand-off used (parcels beyond its free compartments were left on the
hand-off point's shelf, ``MAILROOM_SHELF``, and get free compartments then; parcels it took in that
the plan gives to a later trip go on the shelf at the LOAD, so that the trip's own fit). DWELL,
HANDOFF and DELIVER legs use the stored compartment of each parcel; a RETURN reports every parcel the
core still has on the robot.
Everything a leg needs is worked out when it starts (the core may be re-planning in a worker thread
while the robot drives, so reports never read the core).

**Tokens.** The core numbers its legs from 1 each day; the executor remembers ended tokens, so the
legs it is given are numbered ``day ordinal × 1,000,000 + token`` and reports are translated back. A
report for a leg of another day, or of a robot failed meanwhile, is dropped (logged).

**The service day** runs from ``operations.day_starts`` (local time, 03:00 by default) to the same
time the next day: at that moment the runtime drains and stops, and the next day's core starts from
the store. A robot still on a leg then is left to finish it; its report is dropped (the new core
planned from the store).

**The console** (``api.console_live``) reads the loop through ``running_leg``, ``executing``,
``received`` and ``runs_loop_leg`` (read only) and cancels a robot's running leg with
``cancel_running`` (the executor's ``cancel``: the leg ends ``LegFailed("cancelled")`` as any failed leg).

Not here yet: mini-program requests (``RequestCreated`` from the partner API), and parcels that were
on a robot when the orchestrator restarted (they stay in the store as they are; the core plans only
what is at the station, an operator returns the rest).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy.orm import Session

from interfaces.clock import Clock
from interfaces.lift import LiftMode
from maps.model import Site
from orchestrator.api.delivery import Delivery
from orchestrator.api.live_ports import AlarmLog, DeliveryCodes, StoreHistory
from orchestrator.api.services import Services
from orchestrator.dispatch.campus import Compartments, Leg, LegKind, Size
from orchestrator.dispatch.dispatcher import Dispatcher
from orchestrator.domain import DomainEvent
from orchestrator.facilities import Facilities
from orchestrator.facilities.states import lift_states
from orchestrator.fleet.config import FleetConfig
from orchestrator.fleet.events import LinkChanged
from orchestrator.fleet.executor import ExecutorOptions, LegExecutor
from orchestrator.fleet.legs import LegPlan, LegPlanner
from orchestrator.fleet.master import FleetMaster
from orchestrator.fleet.orders import OrderBuilder
from orchestrator.fleet.picture import Link
from orchestrator.operations import LiveOperations, Operations
from orchestrator.operations.core import AT_STATION, STATION
from orchestrator.operations.messages import (
    Event,
    LegArrived,
    LegFailed,
    LegFinished,
    LiftClosed,
    LiftReopened,
    ParcelPickedUp,
    ParcelsArrived,
    RobotFailed,
    RobotRecovered,
)
from orchestrator.operations.ports import Ports
from orchestrator.operations.setup import dispatch_parcels, live_setup, service_windows
from orchestrator.operations.timebase import ServiceDay
from orchestrator.settings import Settings
from orchestrator.store.domain_records import ParcelRecord
from orchestrator.store.domain_repositories import ParcelRepository

log = logging.getLogger("robopost.operations")

TOKENS_PER_DAY = 1_000_000
"""Executor token = day ordinal × this + the core's token."""

CLOSED_LIFT_MODES = frozenset({LiftMode.FIRE, LiftMode.OFFLINE, LiftMode.EMERGENCY})
"""Lift modes in which no robot may ride (``LiftClosed``)."""

REPLAN_BUDGET_S = 10.0
"""Wall seconds a re-plan may take (the dispatcher's budget)."""

PAGE = 500

MAILROOM_SHELF = 1000
"""A MEET's parcels beyond the indoor robot's free compartments go on the hand-off point's shelf
(the mailroom): the hand-off lists them as compartments ``MAILROOM_SHELF + 1, + 2, ...``, and the
robot's next LOAD there puts them in compartments of its own."""

START_NODE_RADIUS_M = 2.0
"""A robot with no last node this close to a node of its map is taken to stand on it."""


# --- compartments ------------------------------------------------------------------------------------


def compartment_sizes(compartments: Compartments) -> dict[int, Size]:
    """Compartment number → size: S from 1, then M, then L (the module docstring)."""
    sizes: dict[int, Size] = {}
    for size, count in ((Size.S, compartments.s), (Size.M, compartments.m), (Size.L, compartments.l)):
        for _ in range(count):
            sizes[len(sizes) + 1] = size
    return sizes


def assign_compartments(
    parcels: Sequence[tuple[str, Size]], compartments: Compartments, taken: Collection[int] = ()
) -> dict[str, int]:
    """Each parcel the smallest free compartment it fits, largest parcels first; a parcel with no
    compartment left is not in the answer (it stays where it is)."""
    free = sorted(
        ((size, n) for n, size in compartment_sizes(compartments).items() if n not in taken),
    )
    out: dict[str, int] = {}
    for pid, size in sorted(parcels, key=lambda p: -p[1]):
        slot = next((i for i, (fits, _) in enumerate(free) if fits >= size), None)
        if slot is not None:
            out[pid] = free.pop(slot)[1]
    return out


def _number(compartment: str | None) -> int | None:
    if compartment is None or not compartment.isdigit():
        return None
    return int(compartment)


# --- the loop ----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Run:
    """A leg given to the executor: whose, which core token, and what its report carries."""

    robot: str
    token: int
    kind: LegKind
    day: int
    moved: tuple[str, ...] = ()  # LOAD: the parcels put in; RETURN: what is still on board
    slots: Mapping[str, str] | None = None  # LOAD: their compartments
    needs: frozenset[str] = frozenset()  # indoor LOAD: parcels the cart's HANDOFF has not reported yet
    partner: str | None = None  # indoor LOAD: the cart of the MEET before it


class LiveDispatch:
    """The live dispatch loop of the app (see the module docstring); ``start()``/``stop()``."""

    def __init__(
        self,
        settings: Settings,
        site: Site,
        fleet: FleetConfig,
        master: FleetMaster,
        services: Services,
        clock: Clock,
        *,
        planner: Any | None = None,
        executor_options: ExecutorOptions | None = None,
        offload: bool = True,
        published: Callable[[Sequence[DomainEvent]], None] = lambda _events: None,
    ) -> None:
        self.settings = settings
        self.site = site
        self.fleet = fleet
        self.master = master
        self.services = services
        self.clock = clock
        self.planner = planner or Dispatcher(site, budget_s=REPLAN_BUDGET_S, clock=time.perf_counter)
        self.offload = offload
        self.published = published
        self.alarms = AlarmLog(clock)
        self.live: LiveOperations | None = None
        self.day: ServiceDay | None = None
        self.executor = LegExecutor(
            master,
            lambda robot: Facilities(master.mqtt, clock, robot),
            LegPlanner(site),
            site,
            clock,
            self._reported,
            options=executor_options,
        )
        self._delivery = Delivery.from_services(services)
        self._indoor = frozenset(r.serial for r in fleet.robots if r.kind.value != "cart")
        self._runs: dict[int, _Run] = {}  # executor token -> run
        self._received: dict[str, dict[str, int]] = {}  # robot -> parcel -> compartment (MEETs)
        self._meet_partner: dict[str, str] = {}  # indoor robot -> the cart of its last MEET
        self._handed: set[str] = set()  # parcels whose HANDOFF went to the core
        self._held: list[tuple[_Run, LegFinished]] = []  # indoor LOADs waiting for the HANDOFF's report
        self._down: dict[str, asyncio.Task[None]] = {}  # robots whose link is down: their failing timer
        self._failed: set[str] = set()
        self._closed_lifts: dict[str, bool] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._stopping = False
        self._nodes_by_map: dict[str, list[tuple[str, float, float]]] | None = None

    # ---- life cycle ----------------------------------------------------------------------------

    async def start(self) -> None:
        """Open today's service day and start following the fleet and the lifts."""
        await self._open_day()
        loop = asyncio.get_running_loop()
        self._tasks = [
            loop.create_task(self._follow_links(), name="operations-links"),
            loop.create_task(self._follow_lifts(), name="operations-lifts"),
            loop.create_task(self._roll_days(), name="operations-days"),
        ]

    async def stop(self) -> None:
        """Stop following, stop the runtime (queued events handled), then the executor's legs."""
        self._stopping = True
        for task in [*self._tasks, *self._down.values()]:
            task.cancel()
        for task in [*self._tasks, *self._down.values()]:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._down.clear()
        if self.live is not None:
            await self.live.stop(drain=True)
        await self.executor.stop()

    @property
    def ops(self) -> Operations | None:
        """The running day's core (read it on the loop, not while it re-plans: ``live.idle()``)."""
        return self.live.ops if self.live is not None else None

    # ---- what the console reads (``api.console_live``) ------------------------------------------

    def running_leg(self, robot: str) -> tuple[int, Leg] | None:
        """The core token and leg ``robot`` runs now in the live core, or ``None``."""
        ops = self.ops
        state = ops.robots.get(robot) if ops is not None else None
        token = state.running if state is not None else None
        leg = ops.legs.get(token) if ops is not None and token is not None else None
        return (token, leg) if token is not None and leg is not None else None

    def executing(self, robot: str) -> tuple[LegPlan, str] | None:
        """The executor's plan of ``robot``'s leg in progress and its stage (``drive 2/3 to N``,
        ``lift L ...``), or ``None`` (no leg, or not planned yet)."""
        run = self.executor._runs.get(robot)  # read only: the executor's record of the leg
        if run is None or run.plan is None:
            return None
        return run.plan, run.stage

    def received(self, robot: str) -> dict[str, int]:
        """Parcels an indoor robot took in at a MEET that the core counts in only at its next LOAD:
        parcel → compartment (those on the mailroom shelf left out)."""
        return {p: n for p, n in self._received.get(robot, {}).items() if n < MAILROOM_SHELF}

    def runs_loop_leg(self, robot: str) -> bool:
        """Whether ``robot`` runs a leg of the live loop (the core's or the executor's view)."""
        return self.running_leg(robot) is not None or any(run.robot == robot for run in self._runs.values())

    async def cancel_running(self, robot: str) -> int | None:
        """Cancel ``robot``'s running leg of the live loop on the robot (``LegExecutor.cancel``): it
        ends ``LegFailed("cancelled")``, which the core takes like any failed leg (alarm ``leg_failed``,
        the robot is free, its next leg is released). The core token cancelled, or ``None`` when the
        robot runs no leg of the loop."""
        running = self.executor.running().get(robot)
        if running is None or running[0] not in self._runs:
            return None
        xtoken = running[0]
        await self.executor.cancel(robot, xtoken)
        return self._runs[xtoken].token if xtoken in self._runs else xtoken % TOKENS_PER_DAY

    # ---- what the APIs tell us -----------------------------------------------------------------

    async def parcels_imported(self, tracking_numbers: Iterable[str]) -> None:
        """Parcels just stored by intake: give them to the core (``ParcelsArrived``)."""
        wanted = list(tracking_numbers)
        if not wanted or self.live is None or not self.live.running:
            return

        def read() -> list[ParcelRecord]:
            with self.services.sessions() as session:
                repo = self._repo(session)
                return [repo.get(tn) for tn in wanted]

        await self._arrive(await self.services.threads(read))

    def picked_up(self, tracking_number: str, cart: str) -> None:
        """A code opened a compartment of ``cart`` and the parcel was taken (``ParcelPickedUp``)."""
        ops = self.ops
        if self.live is None or not self.live.running or ops is None or tracking_number not in ops.records:
            return  # a parcel of another day's core, or loaded by hand: the store has it already
        self.live.submit(ParcelPickedUp(tracking_number, cart))

    # ---- the LegPort ---------------------------------------------------------------------------

    async def start_leg(self, token: int, leg: Leg) -> None:
        """``LegPort.start``: work out what the leg needs now, then hand it to the executor."""
        ops, day = self.ops, self.day
        assert ops is not None and day is not None
        serial = day.date.toordinal()
        xtoken = serial * TOKENS_PER_DAY + token
        robot = leg.robot
        compartments = self._compartments(ops, robot)
        slots: dict[str, int] = {}
        receive_into: list[int] = []
        run = _Run(robot, token, leg.kind, serial)
        if leg.kind in (LegKind.DWELL, LegKind.HANDOFF, LegKind.DELIVER):
            for pid in leg.parcels:
                record = ops.records.get(pid)
                number = _number(record.compartment if record is not None else None)
                if number is not None:
                    slots[pid] = number
        elif leg.kind is LegKind.MEET:
            if leg.partner:
                self._meet_partner[robot] = leg.partner
            taken = self._occupied(ops, robot)
            receive_into = [n for n in compartment_sizes(compartments) if n not in taken]
            overflow = len(leg.parcels) - len(receive_into)
            receive_into += [MAILROOM_SHELF + k for k in range(1, overflow + 1)]
        elif leg.kind is LegKind.LOAD:
            run = self._load(ops, leg, run, compartments)
        elif leg.kind is LegKind.RETURN:
            aboard = tuple(p for p, where in ops.where.items() if where == robot)
            run = replace(run, moved=aboard)
        self._runs[xtoken] = run
        await self.executor.start(
            xtoken,
            leg,
            start_node=self._start_node(robot),
            slots=slots,
            receive_into=receive_into,
            closed_lifts=tuple(ops.closed_lifts),
        )

    def _start_node(self, robot: str) -> str | None:
        """Where the robot stands, for a robot that reports no ``lastNodeId`` yet (fresh from a boot):
        the node of its map nearest to its reported position, if within ``START_NODE_RADIUS_M`` (the
        first order's first node is that node, so the robot confirms it). ``None``: the executor uses
        the fleet picture's last node (or fails the leg, saying the position is unknown)."""
        view = self.master.view(robot)
        position = view.position
        if view.last_node_id or position is None:
            return None
        if self._nodes_by_map is None:
            builder = OrderBuilder(self.site)
            by_map: dict[str, list[tuple[str, float, float]]] = {}
            for node in sorted(self.site.nodes):
                x, y = builder.map_xy(node)
                by_map.setdefault(builder.map_of(node), []).append((node, x, y))
            self._nodes_by_map = by_map
        near = [
            (math.hypot(x - position.x, y - position.y), node)
            for node, x, y in self._nodes_by_map.get(position.map_id, [])
        ]
        distance, node = min(near, default=(math.inf, ""))
        return node if distance <= START_NODE_RADIUS_M else None

    async def cancel_leg(self, robot: str, token: int) -> None:
        """``LegPort.cancel``."""
        assert self.day is not None
        await self.executor.cancel(robot, self.day.date.toordinal() * TOKENS_PER_DAY + token)

    def _load(self, ops: Operations, leg: Leg, run: _Run, compartments: Compartments) -> _Run:
        robot = leg.robot
        received = self._received.setdefault(robot, {})
        if leg.place == ops.setup.station:
            waiting = [p for p in leg.parcels if ops.where.get(p) == STATION]
            needs: set[str] = set()
        else:  # a mailroom: what is there, and what the MEET took in while the cart's report is due
            for p, n in list(received.items()):  # taken in at the MEET but not for this trip: on the shelf
                if p not in leg.parcels and n < MAILROOM_SHELF:
                    received[p] = MAILROOM_SHELF + n
            shelved = {p for p in leg.parcels if (ops.where.get(p) or "").startswith("mailroom:")}
            needs = {p for p in leg.parcels if p in received and p not in shelved}
            waiting = [p for p in leg.parcels if p in shelved or p in needs]
        kept = {p: received.pop(p) for p in waiting if p in received}
        slots = {p: n for p, n in kept.items() if n < MAILROOM_SHELF}  # the rest wait on the shelf
        taken = self._occupied(ops, robot) | set(slots.values())
        rest = [(p, Size[ops.records[p].size.value]) for p in waiting if p not in slots and p in ops.records]
        slots.update(assign_compartments(rest, compartments, taken))
        moved = tuple(p for p in waiting if p in slots)
        return replace(
            run,
            moved=moved,
            slots={p: str(slots[p]) for p in moved},
            needs=frozenset(needs & set(moved)),
            partner=self._meet_partner.get(robot),
        )

    def _compartments(self, ops: Operations, robot: str) -> Compartments:
        return ops.robots[robot].base.compartments

    def _occupied(self, ops: Operations, robot: str) -> set[int]:
        numbers = (_number(ops.records[p].compartment) for p, w in ops.where.items() if w == robot)
        received = {n for n in self._received.get(robot, {}).values() if n < MAILROOM_SHELF}
        return {n for n in numbers if n is not None} | received

    def _reported(self, event: Event) -> None:
        """The executor's report → the core's event, in the core's tokens (module docstring)."""
        if not isinstance(event, LegArrived | LegFinished | LegFailed):
            log.warning("operations: unexpected report %r dropped", event)
            return
        final = not isinstance(event, LegArrived)
        run = self._runs.pop(event.token, None) if final else self._runs.get(event.token)
        live, day = self.live, self.day
        if run is None or live is None or day is None or run.day != day.date.toordinal():
            log.info("operations: report %r of a leg the core no longer waits for: dropped", event)
            return
        if not live.running:
            return
        match event:
            case LegFinished() if run.kind is LegKind.LOAD:
                event = replace(event, moved=run.moved, slots=dict(run.slots or {}))
                if run.needs - self._handed:
                    self._held.append((run, event))  # the parcels are not handed off for the core yet
                    return
            case LegFinished() if run.kind is LegKind.RETURN:
                event = replace(event, moved=run.moved)
            case LegFinished() if run.kind is LegKind.MEET:
                kept = self._received.setdefault(run.robot, {})
                kept.update({p: int(n) for p, n in event.slots.items() if n.isdigit()})
        live.submit(replace(event, token=run.token))
        if isinstance(event, LegFinished | LegFailed) and run.kind is LegKind.HANDOFF:
            if isinstance(event, LegFinished):
                self._handed.update(event.moved)
            self._release_held(run.robot)

    def _release_held(self, cart: str) -> None:
        """Indoor LOADs held for ``cart``'s HANDOFF report go to the core now, each with the parcels
        that were handed off (a failed hand-off brought the others nowhere: they stay with the cart)."""
        assert self.live is not None
        still: list[tuple[_Run, LegFinished]] = []
        for run, event in self._held:
            if run.partner != cart and run.needs - self._handed:
                still.append((run, event))
                continue
            moved = tuple(p for p in event.moved if p not in run.needs or p in self._handed)
            slots = {p: n for p, n in event.slots.items() if p in moved}
            self.live.submit(replace(event, token=run.token, moved=moved, slots=slots))
        self._held = still

    # ---- service days --------------------------------------------------------------------------

    def _service_day(self, epoch: float) -> ServiceDay:
        """The service day ``epoch`` belongs to (it starts at ``day_starts`` local time)."""
        tz = self.settings.campus.timezone
        day = ServiceDay.of(epoch, tz)
        if day.seconds(epoch) < day.local(self._day_starts_s()):
            day = ServiceDay.of(day.epoch(0.0) - 1.0, tz)
        return day

    def _day_starts_s(self) -> float:
        hours, minutes = self.settings.operations.day_starts.split(":")
        return int(hours) * 3600.0 + int(minutes) * 60.0

    async def _open_day(self) -> None:
        now = self.clock.now()
        day = self._service_day(now)
        windows = service_windows(self.settings.campus.windows, day)
        positions: dict[str, str] = {}
        battery: dict[str, float] = {}
        at_node = {place.node: name for name, place in sorted(self.site.places.items())}
        known = {r.serial for r in self.fleet.robots}
        for view in self.master.views():
            if view.serial not in known:
                continue
            if view.last_node_id in at_node:
                positions[view.serial] = at_node[view.last_node_id]
            if view.battery_charge is not None:
                battery[view.serial] = max(0.0, min(100.0, view.battery_charge))
        setup = live_setup(
            self.site,
            self.fleet,
            windows,
            start_s=day.seconds(now),
            positions=positions,
            battery_percent=battery,
            offline=sorted(self._failed & known),
        )
        services = self.services
        history = StoreHistory(
            services.sessions,
            self.clock,
            services.personal,
            self._delivery,
            {w.id: day.epoch(w.end_s) for w in windows}.__getitem__,
            blocking=services.threads,
        )
        ports = Ports(
            legs=_Legs(self),
            codes=DeliveryCodes(self._delivery, self._indoor),
            alarms=self.alarms,
            history=_Published(history, self.published),
        )
        self.day = day
        self._runs.clear()
        self._received.clear()
        self._meet_partner.clear()
        self._handed.clear()
        self._held.clear()
        self.live = LiveOperations(
            Operations(self.planner, setup), day, self.clock, ports, offload=self.offload
        )
        self.live.start()
        log.info("operations: service day %s opened with %d robots", day.date.isoformat(), len(setup.robots))
        for view in self.master.views():
            if view.serial in known and view.link is not Link.ONLINE and view.serial not in self._failed:
                self._link_down(view.serial, view.link)
        await self._arrive(await services.threads(self._stored_at_station))

    def _stored_at_station(self) -> list[ParcelRecord]:
        out: list[ParcelRecord] = []
        after: int | None = None
        with self.services.sessions() as session:
            repo = self._repo(session)
            while True:
                page = repo.search(state=sorted(AT_STATION), after_id=after, limit=PAGE)
                out.extend(page)
                if len(page) < PAGE:
                    return out
                after = page[-1].id

    async def _arrive(self, records: Sequence[ParcelRecord]) -> None:
        live, day = self.live, self.day
        if not records or live is None or day is None or not live.running:
            return
        at_station = [r for r in records if r.parcel.state in AT_STATION]
        windows = service_windows(self.settings.campus.windows, day)
        parcels, refused = dispatch_parcels(at_station, windows, day, places=self.site.places)
        if refused:
            listed = "; ".join(str(exc) for exc in refused[:5])
            more = f" and {len(refused) - 5} more" if len(refused) > 5 else ""
            await self.alarms.raise_alarm(
                "parcels_not_planned", f"{len(refused)} parcel(s) cannot be planned today: {listed}{more}"
            )
        if parcels:
            stored = {r.parcel.tracking_number: r.parcel for r in at_station}
            live.submit(ParcelsArrived(parcels, stored={p.id: stored[p.id] for p in parcels}))

    async def _roll_days(self) -> None:
        while True:
            assert self.day is not None
            following = self.day.next()
            at = following.epoch(following.local(self._day_starts_s()))
            await self.clock.sleep(max(0.0, at - self.clock.now()))
            old = self.live
            if old is not None:
                await old.stop(drain=True)
            await self._open_day()

    # ---- the fleet and the lifts ---------------------------------------------------------------

    async def _follow_links(self) -> None:
        with self.master.subscribe() as events:
            async for event in events:
                if not isinstance(event, LinkChanged):
                    continue
                if event.link is Link.ONLINE:
                    self._link_up(event.robot)
                elif event.previous is Link.ONLINE or event.robot not in self._down:
                    self._link_down(event.robot, event.link)

    def _link_down(self, robot: str, link: Link) -> None:
        if robot in self._down or robot in self._failed or self._stopping:
            return
        self._down[robot] = asyncio.get_running_loop().create_task(
            self._fail_later(robot, link), name=f"operations-down-{robot}"
        )

    def _link_up(self, robot: str) -> None:
        timer = self._down.pop(robot, None)
        if timer is not None:
            timer.cancel()
        if robot in self._failed:
            self._failed.discard(robot)
            if self.live is not None and self.live.running:
                self.live.submit(RobotRecovered(robot))

    async def _fail_later(self, robot: str, link: Link) -> None:
        options = self.settings.operations
        await self.clock.sleep(options.robot_failed_after_s)
        self._down.pop(robot, None)
        self._failed.add(robot)
        for xtoken, run in list(self._runs.items()):
            if run.robot == robot:
                del self._runs[xtoken]  # the core writes the leg off with the robot
                await self.executor.cancel(robot, xtoken)
        live, day = self.live, self.day
        if live is not None and day is not None and live.running:
            back = day.seconds(self.clock.now()) + options.recovery_guess_s
            reason = f"link {link.value.lower()} for {options.robot_failed_after_s:.0f} s"
            live.submit(RobotFailed(robot, reason, back))

    async def _follow_lifts(self) -> None:
        async for _building, lift, state in lift_states(self.master.mqtt, logger=log):
            self.lift_state(lift, state.current_mode)

    def lift_state(self, lift: str, mode: LiftMode) -> None:
        """A lift's mode: closed (``LiftClosed``) in FIRE/OFFLINE/EMERGENCY, else open; only changes
        go to the core (a lift the map does not know is ignored)."""
        if lift not in self.site.lifts:
            return
        closed = mode in CLOSED_LIFT_MODES
        if self._closed_lifts.get(lift, False) == closed:
            self._closed_lifts[lift] = closed
            return
        self._closed_lifts[lift] = closed
        if self.live is not None and self.live.running:
            self.live.submit(LiftClosed(lift) if closed else LiftReopened(lift))

    def _repo(self, session: Session) -> ParcelRepository:
        return ParcelRepository(session, self.clock, self.services.personal)


class _Published:
    """``HistoryPort``: the store's, then the stored events go to ``publish`` (the console stream)."""

    def __init__(self, store: StoreHistory, publish: Callable[[Sequence[DomainEvent]], None]) -> None:
        self._store = store
        self._publish = publish

    async def append(self, events: Sequence[DomainEvent]) -> None:
        await self._store.append(events)
        try:
            self._publish(events)
        except Exception:  # the console is a viewer: its trouble must not hold the robots back
            log.exception("operations: publishing %d parcel event(s) to the console failed", len(events))


class _Legs:
    """``LegPort`` of ``LiveDispatch`` (its ``start_leg``/``cancel_leg``)."""

    def __init__(self, dispatch: LiveDispatch) -> None:
        self._dispatch = dispatch

    async def start(self, token: int, leg: Leg) -> None:
        await self._dispatch.start_leg(token, leg)

    async def cancel(self, robot: str, token: int) -> None:
        await self._dispatch.cancel_leg(robot, token)


def operations_of(app: Any) -> LiveDispatch | None:
    """The app's live dispatch loop (``None`` when ``operations.enabled`` is off)."""
    return getattr(app.state, "operations", None)


async def open_live_dispatch(
    settings: Settings,
    site: Site,
    master: FleetMaster,
    services: Services,
    clock: Clock,
    published: Callable[[Sequence[DomainEvent]], None] = lambda _events: None,
) -> LiveDispatch:
    """Build and start the loop over the running fleet master (the app's lifespan); ``published`` gets
    the parcel events once stored (the console stream)."""
    dispatch = LiveDispatch(
        settings,
        site,
        master.fleet,
        master,
        services,
        clock,
        executor_options=executor_options(settings),
        published=published,
    )
    await dispatch.start()
    return dispatch


def executor_options(settings: Settings) -> ExecutorOptions:
    """The executor's time-outs on the app's clock, stretched by the time factor: they wait for the
    elevator bridges and doors, which run in real time (a simulated lift car moves on the scaled clock,
    but the bridge's door holds and polls do not), and for answers over the network."""
    base, factor = ExecutorOptions(), settings.clock.time_factor
    return replace(
        base,
        lift_request_timeout_s=base.lift_request_timeout_s * factor,
        lift_arrival_timeout_s=base.lift_arrival_timeout_s * factor,
        lift_ride_timeout_s=base.lift_ride_timeout_s * factor,
        door_timeout_s=base.door_timeout_s * factor,
        cancel_timeout_s=base.cancel_timeout_s * factor,
        release_timeout_s=base.release_timeout_s * factor,
    )  # stop_timeout_s is not stretched: a stopping orchestrator cleans up briefly, then goes
