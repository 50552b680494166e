"""The robot as VDA 5050 sees it: runs orders and instant actions through a ``RobotDriver``; no MQTT.

``Vehicle`` takes parsed messages (``await receive_order(order)``, ``await receive_instant_actions(msg)``)
and gives the body of the next ``state`` (``state_body()``); every change calls the listeners given to
``add_listener`` synchronously, so the link can publish and tests can record each step. Time comes
from the ``Clock`` (retry delays); with a ``SimDriver`` on a ``VirtualClock`` an order runs in no wall
time.

Traversal (VDA 5050 §6.6 and §6.8): the robot stands at the order's first node when it is accepted; at
each node it runs the node's actions, then drives the next **released** edge to its end node, and stops
at the end of the base until an update releases more (or the order ends). Blocking types:

* ``HARD``: waits until no other action runs, runs alone; the robot stands still;
* ``SOFT``: may run beside other actions; the robot stands still while it runs;
* ``NONE``: runs beside everything, driving included (node actions may outlast the node; edge actions
  end when the edge is left: FINISHED with "edge left").

A running SOFT/HARD action (from the order or instant) and ``startPause`` *hold* the robot: the drive
in progress is cancelled (which stops the robot) and resumes once nothing holds. While paused no new
order action starts; running ones go on (the 2.1 schema has no ``PAUSED`` status to report).

Driver results: a drive answering ``RETRY`` is tried again after ``retry_delay`` up to
``drive_retries`` times, then the order fails (``navigationFailed``, WARNING); ``IMPOSSIBLE`` fails it at
once (``navigationImpossible``, FATAL). A failed or cancelled order empties ``nodeStates``/``edgeStates``
and ends every open action FAILED. Agent-level actions (``startPause``, ``stopPause``, ``cancelOrder``,
``stateRequest``, ``factsheetRequest``, ``setOperatingMode``; ``initPosition`` also sets the last node)
are handled here; every other type goes to ``driver.run_action``. An action id is never run twice.
A driver's ``ActionOutcome`` gives the action's ``resultDescription`` (else a failure reads "driver
answered ...") and may spare an expected failure its ``actionFailed`` error.

**Safety.** With a safety layer attached (``vehicle.safety``, set by ``robots.agent.safety.AgentSafety``)
the safety instant actions (``safetyStop``, ``safetyRelease``, ``safetyAcknowledge``, ``buildingAlarm``,
``setOperatingMode``, ``confirmOperatingMode``, ``cancelOperatingMode``) go to it; orders are rejected
(``orderError``) while it says the robot is not available for orders; ``safetyState``,
``operatingMode`` and its errors come from it. It stops drives through a named ``hold`` and cancels the
running order through ``cancel_running_order``.

``state.errors`` holds the errors reported (cleared by a new order or update) and, for as long as the
driver's readout shows them, one FATAL ``hardwareFault`` per ``Readout.faults`` entry and one error per
``Readout.conditions`` entry (its own type, level and references).
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any, Protocol

from interfaces.clock import Clock
from interfaces.vda5050 import (
    ActionError,
    ActionStatus,
    ActionType,
    AgvError,
    AgvPosition,
    BatteryState,
    BlockingType,
    Edge,
    ErrorLevel,
    ErrorType,
    EStop,
    InstantActions,
    Node,
    OperatingMode,
    Order,
    SafetyState,
    TopicKind,
    Velocity,
    action_parameters,
)
from robots.agent.driver import ActionOutcome, DriverResult, Pose, Readout, RobotDriver
from robots.agent.order import (
    DEFAULT_DEVIATION_XY,
    ActionRecord,
    Decision,
    OrderProgress,
    ProgressStatus,
    Verdict,
    instant_actions_problems,
    judge_order,
    make_error,
    no_order_to_cancel,
)

ChangeListener = Callable[[], None]


class SafetyHooks(Protocol):
    """What the vehicle asks of the agent's safety layer (``robots.agent.safety.AgentSafety``)."""

    def state_fields(self) -> tuple[SafetyState, OperatingMode, list[AgvError]]: ...

    def order_refusal(self) -> str | None: ...

    def handles(self, action_type: str) -> bool: ...

    async def run_instant(self, record: ActionRecord) -> None: ...


NAVIGATION_FAILED = "navigationFailed"
NAVIGATION_IMPOSSIBLE = "navigationImpossible"
ACTION_FAILED = "actionFailed"
HARDWARE_FAULT = "hardwareFault"
INTERNAL_ERROR = "internalError"

_AGENT_ONLY = frozenset({ActionType.START_PAUSE, ActionType.STOP_PAUSE, ActionType.CANCEL_ORDER})
"""Actions that only make sense as instant actions."""


@dataclass(frozen=True, slots=True)
class VehicleSettings:
    """How the vehicle executes (metres, seconds)."""

    map_id: str = "map"
    default_deviation_xy: float = DEFAULT_DEVIATION_XY
    drive_retries: int = 2
    action_retries: int = 1
    retry_delay: float = 1.0
    max_errors: int = 20
    max_instant_actions: int = 50
    operating_mode: OperatingMode = OperatingMode.AUTOMATIC

    def __post_init__(self) -> None:
        for name in ("drive_retries", "action_retries", "retry_delay", "default_deviation_xy"):
            if getattr(self, name) < 0:
                raise ValueError(f"VehicleSettings: {name} must be >= 0, got {getattr(self, name)}")
        for name in ("max_errors", "max_instant_actions"):
            if getattr(self, name) < 1:
                raise ValueError(f"VehicleSettings: {name} must be >= 1, got {getattr(self, name)}")


class _OrderFailed(Exception):
    """The order cannot go on; ``error`` says why."""

    def __init__(self, error: AgvError) -> None:
        super().__init__(error.error_description)
        self.error = error


class _Broadcast:
    """Wakes every task waiting for a condition on the vehicle (an event replaced on each notify)."""

    def __init__(self) -> None:
        self._event = asyncio.Event()

    def notify(self) -> None:
        self._event.set()
        self._event = asyncio.Event()

    async def wait_for(self, predicate: Callable[[], bool]) -> None:
        """Return once ``predicate()`` holds (checked after every notify)."""
        while not predicate():
            await self._event.wait()


class Vehicle:
    """Executes orders and instant actions on ``driver``; see the module docstring."""

    def __init__(
        self,
        driver: RobotDriver,
        clock: Clock,
        settings: VehicleSettings | None = None,
        *,
        on_factsheet_request: Callable[[], None] | None = None,
        logger: logging.Logger | None = None,
    ) -> None:
        self.driver = driver
        self.clock = clock
        self.settings = settings or VehicleSettings()
        self.log = logger or logging.getLogger("robopost.agent")
        self.order: OrderProgress | None = None
        self.instant: dict[str, ActionRecord] = {}
        self.errors: list[AgvError] = []
        self.paused = False
        self.operating_mode = self.settings.operating_mode
        self.last_node_id = ""
        self.last_node_sequence_id = 0
        self.distance_since_last_node = 0.0
        self.readout: Readout = driver.readout()
        self.on_factsheet_request = on_factsheet_request
        self._listeners: list[ChangeListener] = []
        self._signal = _Broadcast()
        self._runner: asyncio.Task[None] | None = None
        self._tasks: dict[str, tuple[asyncio.Task[None], ActionRecord]] = {}
        self._stop_as: dict[str, tuple[ActionStatus, str]] = {}
        self._holds: set[str] = set()
        self._exclusive: str | None = None
        self._navigating = False
        self._watcher: asyncio.Task[None] | None = None
        self._launches: set[asyncio.Task[None]] = set()
        self.safety: SafetyHooks | None = None

    # --- life cycle -----------------------------------------------------------------------------------

    def add_listener(self, listener: ChangeListener) -> None:
        """Call ``listener()`` after every change of the vehicle's state."""
        self._listeners.append(listener)

    async def start(self) -> None:
        """Start the driver and follow its readouts."""
        await self.driver.start()
        self.readout = self.driver.readout()
        self._watcher = asyncio.create_task(self._watch_readouts(), name="vehicle-readouts")

    async def stop(self) -> None:
        """Stop driving and every action, then the driver."""
        tasks = [t for t in (self._runner, self._watcher) if t is not None]
        tasks += [task for task, _ in self._tasks.values()] + list(self._launches)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await self.driver.stop()

    @property
    def busy(self) -> bool:
        """Whether an order runs or an action is open (used by tests and the simulator to wait)."""
        return (self.order is not None and not self.order.idle) or bool(self._tasks)

    # --- receiving ------------------------------------------------------------------------------------

    async def receive_order(self, order: Order) -> Decision:
        """Apply the order rules (``robots.agent.order``) and act on the verdict.

        With a safety layer, an order is rejected while the robot is not available for orders.
        """
        refusal = self.safety.order_refusal() if self.safety is not None else None
        if refusal is not None:
            error = make_error(
                ErrorType.ORDER_ERROR,
                f"order {order.order_id} rejected: {refusal}",
                [("orderId", order.order_id), ("orderUpdateId", order.order_update_id)],
            )
            self.log.warning("order rejected: %s", refusal)
            self.report(error)
            return Decision(Verdict.REJECT, error)
        decision = judge_order(
            order,
            self.order,
            self.driver.readout().pose,
            last_node_id=self.last_node_id,
            default_deviation_xy=self.settings.default_deviation_xy,
        )
        if decision.verdict is Verdict.REJECT and decision.error is not None:
            self.log.warning("order rejected: %s", decision.error.error_description)
            self.report(decision.error)
        elif decision.verdict is Verdict.NEW:
            await self._start_order(order)
        elif decision.verdict is Verdict.UPDATE:
            self._update_order(order)
        else:
            self.log.info("order %s/%d received again: ignored", order.order_id, order.order_update_id)
            self._changed()
        return decision

    async def receive_instant_actions(self, message: InstantActions) -> None:
        """Run each new instant action (an id seen before is never run again)."""
        problems = instant_actions_problems(message)
        if problems:
            self.report(
                make_error(
                    ErrorType.VALIDATION_ERROR,
                    f"instantActions rejected: {'; '.join(problems)}",
                    [("headerId", message.header_id), ("topic", TopicKind.INSTANT_ACTIONS.value)],
                )
            )
            return
        for action in message.actions:
            if self._known(action.action_id):
                self.log.info("instant action %s received again: ignored", action.action_id)
                continue
            record = ActionRecord(action)
            self._add_instant(record)
            await self._dispatch_instant(record, message.header_id)
        self._changed()

    def report(self, error: AgvError) -> None:
        """Add an error to ``state.errors`` (the oldest go when there are more than ``max_errors``)."""
        self.errors.append(error)
        del self.errors[: -self.settings.max_errors]
        self._changed()

    # --- state ----------------------------------------------------------------------------------------

    def state_body(self) -> dict[str, Any]:
        """The fields of the next ``state`` message (everything but the header)."""
        progress, r = self.order, self.driver.readout()
        body: dict[str, Any] = {
            "order_id": progress.order_id if progress else "",
            "order_update_id": progress.order_update_id if progress else 0,
            "zone_set_id": progress.zone_set_id if progress else None,
            "last_node_id": self.last_node_id,
            "last_node_sequence_id": self.last_node_sequence_id,
            "node_states": progress.node_states() if progress else [],
            "edge_states": progress.edge_states() if progress else [],
            "driving": r.driving,
            "paused": self.paused,
            "new_base_request": False,
            "distance_since_last_node": round(self.distance_since_last_node, 3) if progress else None,
            "action_states": [
                *(progress.action_states() if progress else []),
                *(rec.state() for rec in self.instant.values()),
            ],
            "battery_state": BatteryState(
                battery_charge=min(100.0, max(0.0, r.battery_charge)),
                battery_voltage=r.battery_voltage,
                charging=r.charging,
            ),
            "operating_mode": self.operating_mode,
            "errors": [*self.errors, *self._fault_errors(), *self._condition_errors()],
            "safety_state": SafetyState(
                e_stop=EStop.MANUAL if r.e_stop else EStop.NONE, field_violation=r.field_violation
            ),
        }
        if self.safety is not None:
            safety, mode, errors = self.safety.state_fields()
            body["safety_state"], body["operating_mode"] = safety, mode
            body["errors"] = [*body["errors"], *errors]
        return body | self.motion_body()

    def motion_body(self) -> dict[str, Any]:
        """``agvPosition`` and ``velocity`` (the whole body of ``visualization``)."""
        r = self.driver.readout()
        position = None
        if r.pose is not None:
            position = AgvPosition(
                x=r.pose.x,
                y=r.pose.y,
                theta=math.atan2(math.sin(r.pose.theta), math.cos(r.pose.theta)),
                map_id=r.pose.map_id or self.settings.map_id,
                position_initialized=r.localized,
                localization_score=min(1.0, max(0.0, r.localization_score)),
            )
        return {"agv_position": position, "velocity": Velocity(vx=r.vx, vy=r.vy, omega=r.omega)}

    def _fault_errors(self) -> list[AgvError]:
        """One FATAL ``hardwareFault`` per fault the driver reports now."""
        return [make_error(HARDWARE_FAULT, fault, level=ErrorLevel.FATAL) for fault in self.readout.faults]

    def _condition_errors(self) -> list[AgvError]:
        """One error per condition the driver reports now, under the condition's own type and level."""
        return [
            make_error(c.error_type, c.description, c.references, c.level) for c in self.readout.conditions
        ]

    # --- internals: changes and readouts ----------------------------------------------------------------

    def notify(self) -> None:
        """Tell the listeners (the link publishes a state) that something outside the vehicle changed."""
        self._changed()

    def hold(self, name: str, on: bool) -> None:
        """Set or clear a named hold: while any hold is set no drive runs (the one in progress stops)."""
        if on == (name in self._holds):
            return
        if on:
            self._holds.add(name)
        else:
            self._holds.discard(name)
        self._changed()

    async def cancel_running_order(self, reason: str) -> bool:
        """Cancel the running order (its actions FAILED, states emptied); False if none runs."""
        progress = self.order
        if progress is None or progress.idle:
            return False
        if self._runner is not None and not self._runner.done():
            self._runner.cancel()
            await asyncio.gather(self._runner, return_exceptions=True)
        await self._end_order(progress, ProgressStatus.CANCELLED, reason)
        return True

    def _changed(self) -> None:
        self._signal.notify()
        for listener in list(self._listeners):
            listener()

    async def _watch_readouts(self) -> None:
        async for readout in self.driver.readouts():
            self._take(readout)

    def _take(self, readout: Readout) -> None:
        """Adopt a new readout; count the distance driven; report significant changes."""
        before = self.readout
        if before.pose is not None and readout.pose is not None and before.pose.map_id == readout.pose.map_id:
            self.distance_since_last_node += math.hypot(
                readout.pose.x - before.pose.x, readout.pose.y - before.pose.y
            )
        self.readout = readout
        if _significant(before) != _significant(readout):
            self._changed()

    def _known(self, action_id: str) -> bool:
        return action_id in self.instant or (self.order is not None and action_id in self.order.actions)

    def _add_instant(self, record: ActionRecord) -> None:
        """Remember an instant action; forget the oldest finished ones beyond ``max_instant_actions``."""
        self.instant[record.action_id] = record
        over = len(self.instant) - self.settings.max_instant_actions
        for old in [r for r in self.instant.values() if r.terminal][: max(0, over)]:
            del self.instant[old.action_id]

    # --- orders ---------------------------------------------------------------------------------------

    async def _start_order(self, order: Order) -> None:
        """Accept a new order: the robot is at its first node."""
        if self._runner is not None and not self._runner.done():
            self._runner.cancel()
            await asyncio.gather(self._runner, return_exceptions=True)
        self.order = OrderProgress(order)
        self.instant = {k: r for k, r in self.instant.items() if not r.terminal}
        self.errors.clear()
        self._set_last_node(order.nodes[0])
        self.log.info("order %s/%d accepted", order.order_id, order.order_update_id)
        self._changed()
        self._runner = asyncio.create_task(self._traverse(self.order), name=f"order-{order.order_id}")

    def _update_order(self, order: Order) -> None:
        """Stitch an accepted update on and make sure the order runs."""
        if self.order is None:
            return
        self.order.apply_update(order)
        self.errors.clear()
        self.log.info("order %s updated to %d", order.order_id, order.order_update_id)
        if self._runner is None or self._runner.done():
            self._runner = asyncio.create_task(self._traverse(self.order), name=f"order-{order.order_id}")
        self._changed()

    def _set_last_node(self, node: Node) -> None:
        self.last_node_id, self.last_node_sequence_id = node.node_id, node.sequence_id
        self.distance_since_last_node = 0.0

    async def _traverse(self, progress: OrderProgress) -> None:
        """Node actions, next edge, next node... At the end of the base: wait for an update or the end."""
        try:
            while progress.status is ProgressStatus.ACTIVE:
                await self._run_actions(progress, progress.last_node.sequence_id)
                edge = progress.next_edge()
                if edge is not None:
                    await self._traverse_edge(progress, edge)
                    continue
                await self._signal.wait_for(lambda: self._can_go_on(progress) or progress.finished)
                if progress.finished:
                    self.log.info("order %s/%d finished", progress.order_id, progress.order_update_id)
                    self._changed()
                    return
        except _OrderFailed as failure:
            await self._end_order(progress, ProgressStatus.FAILED, str(failure))
            self.report(failure.error)
        except Exception as exc:  # a bug must fail the order visibly, not kill the agent silently
            self.log.exception("order %s: traversal crashed", progress.order_id)
            await self._end_order(progress, ProgressStatus.FAILED, f"internal error: {exc}")
            self.report(
                make_error(INTERNAL_ERROR, f"order {progress.order_id}: {exc}", level=ErrorLevel.FATAL)
            )

    def _can_go_on(self, progress: OrderProgress) -> bool:
        """Something to do at the end of the base: a released edge, a new node action, or the end."""
        return (
            progress.status is not ProgressStatus.ACTIVE
            or progress.next_edge() is not None
            or bool(progress.waiting_actions(progress.last_node.sequence_id))
        )

    async def _run_actions(self, progress: OrderProgress, sequence_id: int) -> None:
        """Launch the waiting actions of one node or edge in order (HARD ones run to their end)."""
        for record in progress.waiting_actions(sequence_id):
            await self._signal.wait_for(lambda: not self.paused)
            if record.status is ActionStatus.WAITING and progress.status is ProgressStatus.ACTIVE:
                await self._launch(record)

    async def _traverse_edge(self, progress: OrderProgress, edge: Edge) -> None:
        """Edge actions, the drive to the edge's end node, and arrival there."""
        node = progress.nodes[0]
        await self._run_actions(progress, edge.sequence_id)
        await self._drive(node, edge)
        progress.reach(node)
        self._set_last_node(node)
        on_edge = [r.action_id for r in progress.actions.values() if r.sequence_id == edge.sequence_id]
        await self._stop_actions(on_edge, ActionStatus.FINISHED, "edge left")
        self.log.info("order %s: reached node %s", progress.order_id, node.node_id)
        self._changed()

    async def _drive(self, node: Node, edge: Edge) -> None:
        """Drive to ``node``, resuming after holds and retrying RETRY answers (``_OrderFailed`` if not)."""
        goal = self._goal(node)
        failures = 0
        while True:
            await self._signal.wait_for(self._may_drive)
            result = await self._navigate(goal, edge.max_speed)
            if result is None or result is DriverResult.SUCCESS:
                if result is DriverResult.SUCCESS:
                    return
                continue  # held (pause, blocking action): drive again once released
            refs = [("nodeId", node.node_id), ("edgeId", edge.edge_id)]
            if self.order is not None:
                refs.insert(0, ("orderId", self.order.order_id))
            if result is DriverResult.IMPOSSIBLE:
                raise _OrderFailed(
                    make_error(
                        NAVIGATION_IMPOSSIBLE,
                        f"the driver cannot reach node {node.node_id} over edge {edge.edge_id}",
                        refs,
                        ErrorLevel.FATAL,
                    )
                )
            failures += 1
            if failures > self.settings.drive_retries:
                raise _OrderFailed(
                    make_error(
                        NAVIGATION_FAILED,
                        f"node {node.node_id} not reached after {failures} attempts (driver: retry)",
                        refs,
                    )
                )
            self.log.warning("drive to %s: retry %d", node.node_id, failures)
            await self.clock.sleep(self.settings.retry_delay)

    def _goal(self, node: Node) -> Pose:
        """Where the driver must go for ``node`` (heading of travel when the node gives none)."""
        position = node.node_position
        if position is None:
            raise _OrderFailed(make_error(NAVIGATION_IMPOSSIBLE, f"node {node.node_id} has no position"))
        theta = position.theta
        if theta is None:
            here = self.driver.readout().pose
            theta = math.atan2(position.y - here.y, position.x - here.x) if here else 0.0
        return Pose(position.x, position.y, theta, position.map_id)

    def _may_drive(self) -> bool:
        return not self.paused and not self._holds

    async def _navigate(self, goal: Pose, max_speed: float | None) -> DriverResult | None:
        """One drive; None if a hold (pause, blocking action) stopped it first."""
        self._navigating = True
        nav = asyncio.create_task(self._call_navigate(goal, max_speed))
        held = asyncio.create_task(self._signal.wait_for(lambda: not self._may_drive()))
        try:
            await asyncio.wait({nav, held}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (nav, held):
                task.cancel()
            await asyncio.gather(nav, held, return_exceptions=True)
            self._navigating = False
            self._changed()
        if nav.cancelled():
            return None
        return nav.result()

    async def _call_navigate(self, goal: Pose, max_speed: float | None) -> DriverResult:
        try:
            return await self.driver.navigate(goal, max_speed=max_speed)
        except asyncio.CancelledError:
            raise
        except Exception:
            self.log.exception("driver.navigate raised: taken as IMPOSSIBLE")
            return DriverResult.IMPOSSIBLE

    async def _end_order(self, progress: OrderProgress, status: ProgressStatus, reason: str) -> None:
        """Stop the order's running actions and end it (open actions FAILED, states emptied)."""
        order_ids = [aid for aid, (_, rec) in self._tasks.items() if rec.sequence_id is not None]
        await self._stop_actions(order_ids, ActionStatus.FAILED, reason)
        progress.end(status, reason)
        self.log.info("order %s %s: %s", progress.order_id, status.value, reason)
        self._changed()

    # --- actions --------------------------------------------------------------------------------------

    async def _launch(self, record: ActionRecord) -> None:
        """Start an action under its blocking rule; a HARD one is awaited to its end."""
        hard = record.blocking is BlockingType.HARD
        if hard:
            await self._signal.wait_for(lambda: not self._tasks and self._exclusive is None)
            self._exclusive = record.action_id
        else:
            await self._signal.wait_for(lambda: self._exclusive is None)
        if record.blocking is not BlockingType.NONE:
            self._holds.add(record.action_id)
        record.move(ActionStatus.INITIALIZING)
        task = asyncio.create_task(self._perform(record), name=f"action-{record.action_id}")
        self._tasks[record.action_id] = (task, record)
        self._changed()
        if hard:
            await asyncio.gather(task, return_exceptions=True)

    async def _perform(self, record: ActionRecord) -> None:
        """RUNNING, then FINISHED or FAILED by what the action does."""
        try:
            record.move(ActionStatus.RUNNING)
            self._changed()
            try:
                outcome = await self._do(record)
            except (ValueError, KeyError, TypeError) as exc:  # parameters the driver or we choke on
                self.log.exception("action %s failed", record.action_id)
                outcome = _failed(f"internal error: {exc}")
            ok = outcome.result is DriverResult.SUCCESS
            record.move(ActionStatus.FINISHED if ok else ActionStatus.FAILED, outcome.description)
            if not ok and outcome.report_error:
                self._report_action_failure(record)
        except asyncio.CancelledError:
            status, reason = self._stop_as.pop(record.action_id, (ActionStatus.FAILED, "cancelled"))
            _force(record, status, reason)
            raise
        finally:
            self._forget_task(record.action_id)
            self._changed()

    def _forget_task(self, action_id: str) -> None:
        self._tasks.pop(action_id, None)
        self._holds.discard(action_id)
        self._stop_as.pop(action_id, None)
        if self._exclusive == action_id:
            self._exclusive = None

    async def _stop_actions(self, action_ids: Iterable[str], status: ActionStatus, reason: str) -> None:
        """Cancel running actions, ending them ``status`` (FINISHED only if they were RUNNING)."""
        stopping = []
        for action_id in action_ids:
            entry = self._tasks.get(action_id)
            if entry is None:
                continue
            self._stop_as[action_id] = (status, reason)
            entry[0].cancel()
            stopping.append(entry)
        await asyncio.gather(*(task for task, _ in stopping), return_exceptions=True)
        for _, record in stopping:  # a task cancelled before its first step never ran _perform
            _force(record, status, reason)
            self._forget_task(record.action_id)

    def _report_action_failure(self, record: ActionRecord) -> None:
        refs: list[tuple[str, str | int]] = [("actionId", record.action_id)]
        if record.sequence_id is not None and self.order is not None:
            refs.insert(0, ("orderId", self.order.order_id))
        self.report(
            make_error(ACTION_FAILED, f"{record.action_type} {record.action_id}: {record.result}", refs)
        )

    async def _do(self, record: ActionRecord) -> ActionOutcome:
        """Carry out one action: agent-level ones here, the rest through the driver."""
        kind = record.action_type
        if kind in _AGENT_ONLY:
            return _failed(f"{kind} is an instant action, not an order action")
        if kind == ActionType.STATE_REQUEST:
            return _DONE
        if kind == ActionType.FACTSHEET_REQUEST:
            if self.on_factsheet_request is not None:
                self.on_factsheet_request()
            return _DONE
        try:
            params = action_parameters(record.action)
        except ActionError as exc:
            return _failed(str(exc))
        if kind == ActionType.SET_OPERATING_MODE:
            self.operating_mode = OperatingMode(str(params["mode"]))
            return _DONE
        outcome = await self._driver_action(kind, params)
        if outcome.result is DriverResult.SUCCESS and kind == ActionType.INIT_POSITION:
            self.last_node_id = str(params.get("lastNodeId", self.last_node_id))
            self.last_node_sequence_id = 0
        return outcome

    async def _driver_action(self, kind: str, params: Mapping[str, Any]) -> ActionOutcome:
        """``driver.run_action`` with RETRY answers tried again up to ``action_retries`` times."""
        outcome = ActionOutcome(DriverResult.IMPOSSIBLE)
        for attempt in range(self.settings.action_retries + 1):
            if attempt:
                await self.clock.sleep(self.settings.retry_delay)
            try:
                answer = await self.driver.run_action(kind, params)
            except asyncio.CancelledError:
                raise
            except Exception:
                self.log.exception("driver.run_action(%s) raised: taken as IMPOSSIBLE", kind)
                answer = DriverResult.IMPOSSIBLE
            outcome = answer if isinstance(answer, ActionOutcome) else ActionOutcome(answer)
            if outcome.result is not DriverResult.RETRY:
                break
        if outcome.result is not DriverResult.SUCCESS and outcome.description is None:
            return replace(outcome, description=f"driver answered {outcome.result.value}")
        return outcome

    # --- instant actions ------------------------------------------------------------------------------

    async def _dispatch_instant(self, record: ActionRecord, header_id: int) -> None:
        """Agent-level instant actions at once; hardware ones as tasks under their blocking rule."""
        kind = record.action_type
        if self.safety is not None and self.safety.handles(kind):
            await self.safety.run_instant(record)
        elif kind == ActionType.CANCEL_ORDER:
            await self._cancel_order(record, header_id)
        elif kind == ActionType.START_PAUSE:
            await self._pause(record, paused=True)
        elif kind == ActionType.STOP_PAUSE:
            await self._pause(record, paused=False)
        else:
            launch = asyncio.create_task(self._launch(record), name=f"instant-{record.action_id}")
            self._launches.add(launch)
            launch.add_done_callback(self._launches.discard)

    async def _cancel_order(self, record: ActionRecord, header_id: int) -> None:
        """VDA 5050 cancelOrder: stop, fail the open actions, empty the states, then FINISHED."""
        progress = self.order
        if progress is None or progress.idle:
            record.move(ActionStatus.FAILED, "no order to cancel")
            self.report(no_order_to_cancel(record.action, header_id, progress))
            return
        record.move(ActionStatus.INITIALIZING)
        record.move(ActionStatus.RUNNING)
        self._changed()
        if self._runner is not None and not self._runner.done():
            self._runner.cancel()
            await asyncio.gather(self._runner, return_exceptions=True)
        await self._end_order(progress, ProgressStatus.CANCELLED, f"order cancelled by {record.action_id}")
        record.move(ActionStatus.FINISHED)
        self._changed()

    async def _pause(self, record: ActionRecord, *, paused: bool) -> None:
        """startPause (FINISHED once the robot stopped driving) / stopPause."""
        record.move(ActionStatus.INITIALIZING)
        record.move(ActionStatus.RUNNING)
        self.paused = paused
        self._changed()
        if paused:
            await self._signal.wait_for(lambda: not self._navigating)
        record.move(ActionStatus.FINISHED)
        self._changed()


_DONE = ActionOutcome(DriverResult.SUCCESS)


def _failed(reason: str) -> ActionOutcome:
    """An action that cannot be done, for ``reason``."""
    return ActionOutcome(DriverResult.IMPOSSIBLE, reason)


def _force(record: ActionRecord, status: ActionStatus, reason: str) -> None:
    """End an open action ``status`` (a FINISHED that never started running becomes FAILED)."""
    if record.terminal:
        return
    if status is ActionStatus.FINISHED and record.status is not ActionStatus.RUNNING:
        status = ActionStatus.FAILED
    record.move(status, reason)


def _significant(r: Readout) -> tuple[object, ...]:
    """The readout fields whose change is worth a ``state`` at once (the pose goes by visualization)."""
    return (
        r.driving,
        r.e_stop,
        r.field_violation,
        r.faults,
        r.conditions,
        r.charging,
        r.localized,
        round(r.battery_charge),
    )
