"""The live leg executor: one dispatcher leg carried out over VDA 5050 and the elevator bridge.

The operations core emits ``StartLeg(token, leg)``; in live mode ``LegExecutor.start`` plans the leg
(``fleet.legs.LegPlanner``: drives on one map each, lift rides between them, the end actions) and runs
it in one task per robot, reporting back through the ``report`` callable it was built with:

- ``LegArrived(robot, token)`` when the last drive's order passed the place's node (before the end
  actions are through);
- ``LegFinished(robot, token, moved, slots)`` when the last order ended: ``moved`` from the end
  actions' states (``legs.moved_from_results``), ``slots`` the compartments of what came in (MEET:
  ``plan.received``; COLLECT: the requests collected), as strings;
- ``LegFailed(robot, token, reason)`` (one line) when the leg could not be done: no route, an order
  the robot refused, FAILED before the place, CANCELLED or never confirmed; a lift session refused,
  aborted or timed out; an instant action that failed; ``cancel``.

Typical use (the ``legs`` port of ``orchestrator.operations.live``; see "Wiring" below)::

    executor = LegExecutor(master, lambda robot: Facilities(mqtt, clock, robot), planner, site, clock,
                           live.submit)
    await executor.start(token, leg, slots={"p1": 3})      # profile, start node: the fleet picture's
    await executor.cancel("indoor-01", token)              # → LegFailed("cancelled")
    await executor.stop()

**Stages.** A ``Drive`` is one VDA 5050 order (``legs.fleet_leg``; the last one carries the end
actions; a one-node drive is sent too, so the robot confirms it stands where the plan starts); the
next stage starts once it ended FINISHED. Doors and gates on a drive are opened
(``Facilities.open_door`` / ``open_gate``) before its order is sent, and each is released once the
robot passed the node after it (or the order ended): simple and safe, at the price of holding a door
from the start of the drive (the bridge caps one requester's hold at its ``hold_max_s``, so a door far
down a long drive may close again before the robot comes; releasing the base up to the node before a
door and opening it on approach would fix that, with an order update). A ``Ride`` follows the lift
protocol, with existing VDA 5050 actions as instant actions:

1. the previous drive ended at ``entry_node`` (the lift's landing on the boarding floor);
2. ``request_lift(building, from_floor, lift=...)`` → ``wait_arrival()`` → ``enter()``;
3. ``enterLift(building, lift, floor=from_floor, sessionId, x, y, theta, mapId)``: the robot drives
   into the cabin; FINISHED → ``entered()``;
4. ``ride_to(to_floor)``: doors close, ride, doors open;
5. ``initPosition`` on the arrival floor's map with ``lastNodeId`` = ``exit_node``, at the robot's
   last reported pose carried by the ride (``legs.carried_pose``: the same site point and heading, in
   the arrival floor's frame), or at the cabin pose of step 3 carried so when the report is not on the
   boarding floor's map;
6. ``exit()`` → ``exitLift(building, lift, floor=to_floor, x, y, theta, mapId)``: the robot drives
   out; FINISHED → ``release()``;
7. the next drive starts at ``exit_node``.

**Lift poses.** ``enterLift`` and ``exitLift`` carry where to drive (``legs.lift_poses``), so a robot
that knows no lifts of its own (``robots.agent.ros_driver``: plain navigation goals) can ride: the
cabin's centre on the boarding floor's map heading into the cabin, and the exit landing on the
arrival floor's map heading out (the route's nodes before and after the ride, and the robot's
heading, settle the headings where the map puts a landing at the cabin's centre). Robots with their
own lift integration ignore them, and so do the simulated ones (``SimDriver`` stands still for its
action duration). Step 5 puts the robot where it reported itself, not at the exit landing: a ROS robot
told it already stands at the landing would never drive out of the cabin, and a robot that did not
move (a simulated one) must not be told it did. Where the landing is the cabin's centre (the sample
campus) all these are the same point.

Decisions:

- **FAILED at the place is finished.** The last order ends FAILED when an end action did (a
  ``waitForPickup`` nobody came to ends "timeout"); when the robot had reached the place and only end
  actions failed, the leg is reported ``LegFinished`` with what did move, not ``LegFailed`` (which
  says nothing moved). FAILED before the place (navigation) is ``LegFailed``.
- **A cancel never leaves a robot in a cabin.** From the cabin's arrival for the robot until
  ``exitLift`` FINISHED a ``cancel`` waits: the ride is completed to the exit landing and the leg then
  ends ``LegFailed("cancelled")``. Elsewhere it acts at once: the running order gets ``cancelOrder``
  (its end is awaited up to ``cancel_timeout_s``), an open lift session is released, doors are let
  go. A *failure* during the ride (fire recall, a time-out, a failed ``enterLift``) cannot finish it:
  the session is released and the error log says the robot may be in the cabin (an operator's case).
- **Gates** need the robot's credential: ``gate_credentials`` maps robot → secret (a leg through a
  gate without one fails, naming the gate).
- **Resends are harmless** (``LegPort`` asks it): ``start`` with the token the robot is running, or
  with one that already ended (the last ``remember_tokens``), does nothing. ``start`` with a new token
  for a robot still running a leg raises ``OrderStateError`` (cancel first).
- **``stop()`` reports nothing**: it cancels every leg, in a cabin too (orders cancelled, lift
  sessions and doors released, best effort, each bounded), waits up to ``stop_timeout_s`` for that,
  then cuts the tasks off; no ``LegFailed``: the runtime is going down and resumes from the store.
- **Lift sessions are per robot**: the bridge ends a robot's older session when the same ``robot_id``
  opens a new one, so ``facilities`` should be a factory ``robot → Facilities`` (the executor makes one
  client per robot on first use and closes them at ``stop``). One ``Facilities`` instance is accepted
  too (right for a one-robot fleet or a test); ``None`` makes every leg with a ride, door or gate fail.
- The end actions' states come from the fleet master's state listener (every ``state`` the master
  takes in), so they are known when the order's ``finished`` resolves.

Not done here: a drive that changes map without a lift (``Drive.entered_by``: today's robot drivers
refuse it, see ``fleet.legs``) fails the leg; a robot that goes silent mid-drive leaves its leg waiting
(the fleet picture's link state and ``RobotFailed`` are the place to act); LOAD/RETURN report
``moved=()`` (``legs``: loads come from the locker board / station scan).

Wiring (``orchestrator.app``): the runtime's ``LegPort.start(token, leg)`` has no slots; an adapter
passes ``slots`` (parcel/request → compartment, from the operations records) and ``receive_into`` (an
indoor robot's free compartments, for MEET) to ``start``; profile and start node default to the fleet
picture (``RobotView.profile`` / ``last_node_id``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from interfaces.clock import Clock, within
from interfaces.mqtt import MqttError
from interfaces.vda5050 import ActionParams, ActionState, ActionStatus, EnterLift, ExitLift, InitPosition
from maps.model import Site
from orchestrator.dispatch.campus import Leg, LegKind
from orchestrator.facilities import DoorPass, Facilities, FacilityError, LiftSession
from orchestrator.fleet.digest import StateDigest
from orchestrator.fleet.errors import FleetError, OrderStateError
from orchestrator.fleet.events import OrderEnded, OrderStatus
from orchestrator.fleet.legs import (
    Drive,
    LegPlan,
    LegPlanner,
    MapPose,
    Passage,
    Ride,
    carried_pose,
    fleet_leg,
    lift_poses,
    moved_from_results,
)
from orchestrator.fleet.master import FleetMaster
from orchestrator.fleet.tracking import InstantActionHandle, OrderHandle
from orchestrator.operations.messages import Event, LegArrived, LegFailed, LegFinished

_T = TypeVar("_T")

FacilitiesSource = Facilities | Callable[[str], Facilities] | None
"""One client for every robot, a factory ``robot → client`` (one per robot), or none."""


@dataclass(frozen=True, slots=True)
class ExecutorOptions:
    """Time-outs (seconds of the executor's clock) and the memory of ended tokens."""

    lift_request_timeout_s: float = 10.0  # the bridge queues or binds the session
    lift_arrival_timeout_s: float = 180.0  # a cabin stands at the boarding floor, doors open
    lift_ride_timeout_s: float = 180.0  # the cabin stands at the arrival floor, doors open
    door_timeout_s: float = 30.0  # a door or gate opens
    cancel_timeout_s: float = 10.0  # the robot reports a cancelled order ended
    release_timeout_s: float = 10.0  # the bridge confirms a released session
    stop_timeout_s: float = 30.0  # stop() waits this long for the legs to clean up, then cuts them off
    remember_tokens: int = 1000  # ended tokens kept, so that a resend is ignored

    def __post_init__(self) -> None:
        for name in (
            "lift_request_timeout_s",
            "lift_arrival_timeout_s",
            "lift_ride_timeout_s",
            "door_timeout_s",
            "cancel_timeout_s",
            "release_timeout_s",
            "stop_timeout_s",
        ):
            if not getattr(self, name) > 0:
                raise ValueError(f"ExecutorOptions.{name} must be > 0, got {getattr(self, name)}")
        if self.remember_tokens < 1:
            raise ValueError(f"ExecutorOptions.remember_tokens must be >= 1, got {self.remember_tokens}")


class _Cancelled(Exception):
    """The leg was cancelled (``LegExecutor.cancel``)."""


class _Failed(Exception):
    """The leg cannot go on; ``str(exc)`` is the one-line reason reported in ``LegFailed``."""


@dataclass(eq=False)
class _Run:
    """One leg in progress on one robot."""

    token: int
    leg: Leg
    slots: Mapping[str, int] = field(default_factory=dict)
    plan: LegPlan | None = None
    task: asyncio.Task[None] | None = None
    stage: str = "planning"
    cancel_requested: asyncio.Event = field(default_factory=asyncio.Event)
    stop_requested: asyncio.Event = field(default_factory=asyncio.Event)  # stop(): even in a cabin
    in_cabin: bool = False
    order: OrderHandle | None = None
    session: LiftSession | None = None
    passes: list[DoorPass] = field(default_factory=list)
    watchers: list[asyncio.Task[None]] = field(default_factory=list)
    watched: frozenset[str] = frozenset()
    states: dict[str, ActionState] = field(default_factory=dict)

    @property
    def robot(self) -> str:
        return self.leg.robot

    async def until(self, awaitable: Awaitable[_T]) -> _T:
        """Await ``awaitable``; ``_Cancelled`` as soon as a cancel is asked for (in a cabin: only when
        the executor stops).

        A future given (an order handle's) is never cancelled here: it belongs to the fleet master.
        """
        owned = asyncio.iscoroutine(awaitable)
        work = asyncio.ensure_future(awaitable)
        event = self.stop_requested if self.in_cabin else self.cancel_requested
        interrupt = asyncio.ensure_future(event.wait())
        try:
            await asyncio.wait({work, interrupt}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            interrupt.cancel()
            if owned and not work.done():
                work.cancel()
                await asyncio.gather(work, return_exceptions=True)
        if work.done() and not work.cancelled():
            return work.result()
        raise _Cancelled()


class LegExecutor:
    """Carries dispatcher legs out on robots (see the module docstring)."""

    def __init__(
        self,
        master: FleetMaster,
        facilities: FacilitiesSource,
        planner: LegPlanner,
        site: Site,
        clock: Clock,
        report: Callable[[Event], None],
        *,
        logger: logging.Logger | None = None,
        options: ExecutorOptions | None = None,
        gate_credentials: Mapping[str, str] | None = None,
    ) -> None:
        if planner.site is not site:
            raise ValueError("LegExecutor: the planner must plan on the executor's site")
        self.master = master
        self.planner = planner
        self.site = site
        self.clock = clock
        self.options = options or ExecutorOptions()
        self._report = report
        self._log = logger or logging.getLogger("robopost.fleet.executor")
        self._facilities = facilities
        self._clients: dict[str, Facilities] = {}  # made by the factory, closed at stop
        self._credentials = dict(gate_credentials or {})
        self._runs: dict[str, _Run] = {}
        self._ended: deque[tuple[str, int]] = deque(maxlen=self.options.remember_tokens)
        self._stopped = False
        self._unlisten = master.add_state_listener(self._on_state)

    # ---- the port ----------------------------------------------------------------------------------

    async def start(
        self,
        token: int,
        leg: Leg,
        *,
        profile: str | None = None,
        start_node: str | None = None,
        slots: Mapping[str, int] | None = None,
        receive_into: Sequence[int] = (),
        closed_lifts: Iterable[str] = (),
    ) -> None:
        """Start ``leg`` on ``leg.robot`` under ``token``; returns at once (the leg runs in a task).

        ``profile``/``start_node`` default to the fleet picture (``RobotView.profile``,
        ``last_node_id``); ``slots``: compartment of each parcel/request (``LegPlanner.plan``). A leg
        that cannot be planned is reported ``LegFailed`` (not raised). ``OrderStateError`` when the
        robot runs another leg; a resend of a running or ended token is ignored.
        """
        if self._stopped:
            raise RuntimeError("LegExecutor is stopped: cannot start a leg")
        robot = leg.robot
        running = self._runs.get(robot)
        if (running is not None and running.token == token) or (robot, token) in self._ended:
            self._log.info("executor: %s: leg %s sent again: ignored", robot, token)
            return
        if running is not None:
            raise OrderStateError(
                f"robot {robot} still runs leg {running.token} ({running.stage}): "
                f"cancel it before starting leg {token}"
            )
        run = _Run(token, leg, dict(slots or {}))
        try:
            run.plan = self._plan(leg, token, profile, start_node, run.slots, receive_into, closed_lifts)
        except FleetError as exc:
            self._log.warning("executor: %s: leg %s cannot be planned: %s", robot, token, exc)
            self._ended.append((robot, token))
            self._report(LegFailed(robot, token, str(exc)))
            return
        run.watched = frozenset(a.action_id for a in run.plan.end_actions)
        self._runs[robot] = run
        run.task = asyncio.get_running_loop().create_task(self._execute(run), name=f"leg-{robot}-{token}")

    async def cancel(self, robot: str, token: int) -> None:
        """Cancel leg ``token`` of ``robot``: it ends ``LegFailed("cancelled")`` (after the ride, when the
        robot is in a lift). A leg that is not running (ended, unknown) is ignored."""
        run = self._runs.get(robot)
        if run is None or run.token != token:
            self._log.info("executor: %s: cancel of leg %s, which is not running: ignored", robot, token)
            return
        self._log.info("executor: %s: cancelling leg %s (%s)", robot, token, run.stage)
        run.cancel_requested.set()

    async def stop(self) -> None:
        """Cancel every leg (no reports), release what they hold, close the clients made here.
        A second call does nothing."""
        if self._stopped:
            return
        self._stopped = True
        runs = list(self._runs.values())
        for run in runs:
            run.stop_requested.set()
            run.cancel_requested.set()
        tasks = [r.task for r in runs if r.task is not None]
        if tasks and not await within(
            self.clock, self.options.stop_timeout_s, asyncio.gather(*tasks, return_exceptions=True)
        ):
            self._log.warning(
                "executor: legs still cleaning up after %s s: cut off", self.options.stop_timeout_s
            )
        await asyncio.gather(*tasks, return_exceptions=True)  # ``within`` cancelled those left
        self._unlisten()
        clients, self._clients = list(self._clients.values()), {}
        for client in clients:
            await client.close()

    # ---- reading ----------------------------------------------------------------------------------

    def running(self) -> dict[str, tuple[int, str]]:
        """Robot → (token, stage) of every leg in progress (stage: e.g. ``drive 2/3``, ``lift LA``)."""
        return {robot: (run.token, run.stage) for robot, run in self._runs.items()}

    async def wait_ended(self, robot: str) -> None:
        """Wait until ``robot`` runs no leg (its report has been made)."""
        run = self._runs.get(robot)
        if run is not None and run.task is not None:
            await asyncio.gather(asyncio.shield(run.task), return_exceptions=True)

    # ---- planning ---------------------------------------------------------------------------------

    def _plan(
        self,
        leg: Leg,
        token: int,
        profile: str | None,
        start_node: str | None,
        slots: Mapping[str, int],
        receive_into: Sequence[int],
        closed_lifts: Iterable[str],
    ) -> LegPlan:
        if profile is None or start_node is None:
            view = self.master.view(leg.robot)
            profile = profile or view.profile
            start_node = start_node or view.last_node_id
            if not start_node:
                raise OrderStateError(f"robot {leg.robot}: where it stands is unknown (no last node yet)")
        return self.planner.plan(
            leg,
            token=token,
            profile=profile,
            start_node=start_node,
            slots=slots,
            closed_lifts=closed_lifts,
            receive_into=receive_into,
        )

    # ---- the leg's task ---------------------------------------------------------------------------

    async def _execute(self, run: _Run) -> None:
        """Run the stages; whatever happens, clean up, forget the run, then report."""
        outcome: Event
        try:
            outcome = await self._stages(run)
        except asyncio.CancelledError:  # stop(): clean up quietly
            await self._clean_up_safely(run)
            self._forget(run)
            raise
        except _Cancelled:
            if run.stop_requested.is_set():  # stop(): clean up quietly
                await self._clean_up_safely(run)
                self._forget(run)
                return
            outcome = LegFailed(run.robot, run.token, "cancelled")
        except (_Failed, FleetError, FacilityError, MqttError) as exc:
            outcome = LegFailed(run.robot, run.token, f"{run.stage}: {exc}")
        except Exception as exc:  # a bug must still end the leg visibly
            self._log.exception("executor: %s: leg %s failed unexpectedly", run.robot, run.token)
            outcome = LegFailed(run.robot, run.token, f"{run.stage}: internal error: {exc}")
        if isinstance(outcome, LegFailed):
            self._log.info("executor: %s: leg %s failed: %s", run.robot, run.token, outcome.reason)
            await self._clean_up_safely(run)
        self._forget(run)
        self._report(outcome)

    def _forget(self, run: _Run) -> None:
        if self._runs.get(run.robot) is run:
            del self._runs[run.robot]
        self._ended.append((run.robot, run.token))

    async def _stages(self, run: _Run) -> LegFinished:
        plan = run.plan
        assert plan is not None  # set before the task starts
        drives = len(plan.drives)
        done = 0
        for i, stage in enumerate(plan.stages):
            if run.cancel_requested.is_set():
                raise _Cancelled()
            if isinstance(stage, Ride):
                run.stage = f"lift {stage.lift} {stage.from_floor}→{stage.to_floor}"
                await self._ride(run, stage, *_neighbours(plan, i))
                continue
            done += 1
            run.stage = f"drive {done}/{drives} to {stage.end}"
            last = done == drives
            ended = await self._drive(run, stage, last)
            if not last:
                continue
            states = [run.states[a] for a in sorted(run.watched) if a in run.states]
            moved = moved_from_results(plan, states)
            self._log.info(
                "executor: %s: leg %s %s at %s ended %s; moved %s",
                run.robot,
                run.token,
                plan.leg.kind.value,
                plan.leg.place,
                ended.status,
                list(moved),
            )
            return LegFinished(run.robot, run.token, moved, _slots_of(plan, run.slots, moved))
        raise AssertionError("a leg plan always ends with a drive")  # LegPlan's invariant

    # ---- drives -----------------------------------------------------------------------------------

    async def _drive(self, run: _Run, drive: Drive, last: bool) -> OrderEnded:
        """One order along ``drive`` (the end actions on the last); its ``OrderEnded`` when it counts as
        done (FINISHED; FAILED at the place for the last one, see the module docstring)."""
        plan = run.plan
        assert plan is not None
        if drive.entered_by is not None:
            raise _Failed(
                f"the route enters map {drive.map_id} by edge {drive.entered_by.edge} without a lift, "
                "which the robots cannot drive yet"
            )
        actions = plan.end_actions if last else ()
        try:
            await self._open_passages(run, drive)
            handle = await self.master.send_order(fleet_leg(drive, run.robot, actions))
            run.order = handle  # never interrupted in between: a cancel must find the order
            await run.until(handle.confirmed)
            for passage, held in zip([*drive.doors, *drive.gates], list(run.passes), strict=True):
                run.watchers.append(asyncio.ensure_future(self._release_after(run, handle, passage, held)))
            arrived = False
            if last:
                arrived = await self._reach(run, handle, drive.end)
                if arrived:
                    self._report(LegArrived(run.robot, run.token))
            ended = await run.until(handle.finished)
        finally:
            await self._let_go(run)
        if ended.status is OrderStatus.FINISHED:
            run.order = None
            return ended
        at_place = arrived and bool(ended.failed_actions) and set(ended.failed_actions) <= run.watched
        if ended.status is OrderStatus.FAILED and at_place:
            run.order = None
            return ended
        detail = f": {ended.reason}" if ended.reason else ""
        failed = f" (failed actions {', '.join(ended.failed_actions)})" if ended.failed_actions else ""
        raise _Failed(f"order {ended.order_id} ended {ended.status}{detail}{failed}")

    async def _reach(self, run: _Run, handle: OrderHandle, node: str) -> bool:
        """Whether the order passes ``node`` (False when it ends before).

        Waits on ``finished`` too: ``reached`` asked after the run ended would never resolve.
        """
        reached = handle.reached(node)
        either: set[asyncio.Future[Any]] = {reached, handle.finished}
        await run.until(asyncio.wait(either, return_when=asyncio.FIRST_COMPLETED))
        return reached.done() and not reached.cancelled() and reached.exception() is None

    async def _open_passages(self, run: _Run, drive: Drive) -> None:
        """Open (and hold) every door and gate of ``drive``, in order."""
        for passage in drive.doors:
            door = self.site.doors.get(passage.id)
            building = door.building if door is not None else None
            if building is None:
                raise _Failed(f"door {passage.id} belongs to no building of the map")
            client = self._client(run.robot, f"door {passage.id}")
            timeout = self.options.door_timeout_s
            run.passes.append(await run.until(client.open_door(building, passage.id, timeout=timeout)))
        for passage in drive.gates:
            gate = self.site.gates.get(passage.id)
            building = gate.building if gate is not None else None
            if building is None:
                raise _Failed(f"gate {passage.id} belongs to no building of the map")
            credential = self._credentials.get(run.robot)
            if credential is None:
                raise _Failed(f"gate {passage.id}: no credential is configured for robot {run.robot}")
            client = self._client(run.robot, f"gate {passage.id}")
            opening = client.open_gate(building, passage.id, credential, timeout=self.options.door_timeout_s)
            run.passes.append(await run.until(opening))

    async def _release_after(self, run: _Run, handle: OrderHandle, passage: Passage, held: DoorPass) -> None:
        """Let the door go once the robot passed the node after it (or the order ended)."""
        with contextlib.suppress(OrderStateError):
            await asyncio.shield(handle.reached(passage.after))  # the future is the master's
        await held.release()
        run.passes.remove(held)  # only once it is released: a cancelled release is done again by _let_go

    async def _let_go(self, run: _Run) -> None:
        """Stop the door watchers and release every door/gate still held."""
        watchers, run.watchers = run.watchers, []
        for watcher in watchers:
            watcher.cancel()
        for result in await asyncio.gather(*watchers, return_exceptions=True):
            if isinstance(result, Exception):
                self._log.warning("executor: %s: releasing a door: %s", run.robot, result)
        passes, run.passes = run.passes, []
        for held in passes:
            try:
                await held.release()
            except MqttError as exc:  # the bridge's hold time-out closes it anyway
                self._log.warning("executor: %s: could not release %s: %s", run.robot, held.name, exc)

    # ---- lift rides -------------------------------------------------------------------------------

    async def _ride(self, run: _Run, ride: Ride, approach: str | None, leave: str | None) -> None:
        """The lift protocol of the module docstring, steps 2 to 6 (``approach``/``leave``: the route's
        nodes before and after the ride, for the lift poses)."""
        opt = self.options
        inside, landing = lift_poses(
            self.site, ride, approach=approach, leave=leave, heading=self._theta(run.robot)
        )
        client = self._client(run.robot, f"lift {ride.lift}")
        # not interruptible (it is bounded): a cancel must find the session to release it
        session = await client.request_lift(
            ride.building,
            ride.from_floor,
            lift=ride.lift,
            eta=self.clock.now(),
            timeout=opt.lift_request_timeout_s,
        )
        run.session = session
        await run.until(session.wait_arrival(opt.lift_arrival_timeout_s))
        await session.enter()
        run.in_cabin = True  # from here on a cancel waits until the robot is out at the exit landing
        building, lift = ride.building, ride.lift
        enter = EnterLift(
            building=building,
            lift=lift,
            floor=ride.from_floor,
            session_id=session.session_id,
            **_pose(inside),
        )
        await self._act(run, enter)
        await run.until(session.entered())
        await run.until(session.ride_to(ride.to_floor, opt.lift_ride_timeout_s))
        arrived = carried_pose(self.site, ride, self._in_cabin(run.robot, inside))
        await self._act(run, InitPosition(**_pose(arrived), last_node_id=ride.exit_node))
        await run.until(session.exit())
        await self._act(run, ExitLift(building=building, lift=lift, floor=ride.to_floor, **_pose(landing)))
        run.session = None
        run.in_cabin = False
        try:
            await session.release(opt.release_timeout_s)
        except (
            FacilityError,
            MqttError,
        ) as exc:  # the robot is out: the bridge's heartbeat time-out frees it
            self._log.warning(
                "executor: %s: releasing lift session %s: %s", run.robot, session.session_id, exc
            )
        if run.cancel_requested.is_set():
            raise _Cancelled()

    async def _act(self, run: _Run, params: ActionParams) -> None:
        """One instant action, awaited to FINISHED (else ``_Failed``)."""
        await self._check(run, await self.master.instant_action(run.robot, params))

    async def _check(self, run: _Run, handle: InstantActionHandle) -> None:
        """Wait for an instant action's end; ``_Failed`` unless it FINISHED."""
        ended = await run.until(handle.done)
        if ended.status != ActionStatus.FINISHED.value:
            result = f": {ended.result}" if ended.result else ""
            raise _Failed(f"{ended.action_type} ended {ended.status}{result}")

    def _theta(self, robot: str) -> float:
        """The robot's last reported heading (0 when unknown)."""
        position = self.master.view(robot).position
        return position.theta if position is not None else 0.0

    def _in_cabin(self, robot: str, inside: MapPose) -> MapPose:
        """Where the robot stands in the cabin: its last reported pose when that is on the boarding
        floor's map, else ``inside`` (where ``enterLift`` sent it)."""
        position = self.master.view(robot).position
        if position is None or position.map_id != inside.map_id:
            return inside
        return MapPose(position.x, position.y, position.theta, position.map_id)

    def _client(self, robot: str, what: str) -> Facilities:
        """The facilities client for ``robot`` (``_Failed`` if there is none)."""
        source = self._facilities
        if source is None:
            raise _Failed(f"{what}: no facilities client (elevator bridge) is configured")
        if isinstance(source, Facilities):
            return source
        client = self._clients.get(robot)
        if client is None:
            client = self._clients[robot] = source(robot)
        return client

    # ---- cleaning up ------------------------------------------------------------------------------

    async def _clean_up_safely(self, run: _Run) -> None:
        """``_clean_up``; a failure in it is logged (the leg must still be reported)."""
        try:
            await self._clean_up(run)
        except Exception:
            self._log.exception("executor: %s: cleaning up after leg %s failed", run.robot, run.token)

    async def _clean_up(self, run: _Run) -> None:
        """Cancel the running order, let doors go, release the lift session: each best effort, bounded."""
        order, run.order = run.order, None
        if order is not None and not order.finished.done():
            try:
                await self.master.cancel(run.robot)
                if not await within(
                    self.clock, self.options.cancel_timeout_s, asyncio.shield(order.finished)
                ):
                    self._log.warning(
                        "executor: %s: the cancelled order %s did not end", run.robot, order.order_id
                    )
            except FleetError as exc:
                self._log.warning("executor: %s: cancelling order %s: %s", run.robot, order.order_id, exc)
        await self._let_go(run)
        session, run.session = run.session, None
        if session is not None:
            try:
                await session.release(self.options.release_timeout_s)
            except (FacilityError, MqttError) as exc:
                self._log.warning(
                    "executor: %s: releasing lift session %s: %s", run.robot, session.session_id, exc
                )
        if run.in_cabin:
            self._log.error(
                "executor: %s: leg %s ended during a lift ride: the robot may be in the cabin",
                run.robot,
                run.token,
            )

    # ---- action states ----------------------------------------------------------------------------

    def _on_state(self, serial: str, digest: StateDigest, _at: float) -> None:
        """Keep the latest state of every end action of the robot's running leg."""
        run = self._runs.get(serial)
        if run is None or not run.watched:
            return
        for a in digest.action_states:
            if a.action_id in run.watched:
                run.states[a.action_id] = ActionState(
                    action_id=a.action_id,
                    action_status=a.action_status,
                    action_type=a.action_type,
                    result_description=a.result_description,
                )


def _neighbours(plan: LegPlan, index: int) -> tuple[str | None, str | None]:
    """The route's nodes just before and just after the ride at ``plan.stages[index]`` (None when the
    drive next to it is a single node)."""
    before, after = plan.stages[index - 1], plan.stages[index + 1]  # a ride stands between two drives
    approach = before.path[-2] if isinstance(before, Drive) and len(before.path) > 1 else None
    leave = after.path[1] if isinstance(after, Drive) and len(after.path) > 1 else None
    return approach, leave


def _pose(pose: MapPose) -> dict[str, Any]:
    """A ``MapPose`` as action parameters (``x``, ``y``, ``theta``, ``map_id``)."""
    return {"x": pose.x, "y": pose.y, "theta": pose.theta, "map_id": pose.map_id}


def _slots_of(plan: LegPlan, slots: Mapping[str, int], moved: Sequence[str]) -> dict[str, str]:
    """The compartments of what came in during the leg (``LegFinished.slots``)."""
    if plan.leg.kind is LegKind.MEET:
        return {item: str(slot) for item, slot in plan.received.items()}
    if plan.leg.kind is LegKind.COLLECT:
        return {item: str(slots[item]) for item in moved if item in slots}
    return {}


__all__ = ["ExecutorOptions", "FacilitiesSource", "LegExecutor"]
