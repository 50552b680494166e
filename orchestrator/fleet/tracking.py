"""Following orders and instant actions through the robot's ``state`` messages. No I/O, no clock.

One ``RobotOrders`` per robot holds:

- the **run**: the order (one ``orderId``) the robot is working on, with every node and action of its
  confirmed messages, the nodes passed so far and the ``finished`` future;
- the **pending** message: the order or update sent but not yet confirmed. Only a ``state`` carrying
  its ``orderId`` and (at least) its ``orderUpdateId`` confirms it (VDA 5050 §6.6); an
  ``orderError``/``orderUpdateError``/``validationError`` naming it refuses it;
- the **instant actions** sent and not yet reported FINISHED or FAILED in ``actionStates``.

``on_state(digest, now)`` applies one state and returns the events it caused. Resending, timeouts and
publishing are the fleet master's job; it calls ``give_up`` when the resends are exhausted.

Decisions:

- A run ends FINISHED/FAILED when the confirmed latest update shows no nodes and no edges left and every
  action of the order is FINISHED or FAILED; CANCELLED once ``cancelOrder`` ran; ABANDONED when the
  robot reports another ``orderId`` before ours ended (e.g. it restarted and lost the order).
- Nodes passed are read from ``lastNodeSequenceId``: every node of the order up to it is reported once,
  in order, even if a state was skipped in between.
"""

from __future__ import annotations

import asyncio
from typing import Any

from interfaces.vda5050 import Action, ActionStatus, Edge, ErrorType, InstantActions, Node, Order
from orchestrator.fleet.digest import StateDigest
from orchestrator.fleet.errors import (
    ActionNotConfirmedError,
    OrderNotConfirmedError,
    OrderRejectedError,
    OrderStateError,
)
from orchestrator.fleet.events import (
    ActionEnded,
    FleetEvent,
    NodePassed,
    OrderConfirmed,
    OrderEnded,
    OrderNotConfirmed,
    OrderStatus,
)
from orchestrator.fleet.orders import OrderParts

_DONE = (ActionStatus.FINISHED, ActionStatus.FAILED)
_REFUSALS = (ErrorType.ORDER_ERROR, ErrorType.ORDER_UPDATE_ERROR, ErrorType.VALIDATION_ERROR)


def _future() -> asyncio.Future[Any]:
    """A future whose exception is marked retrieved, so an unawaited failure is not logged as lost."""
    fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
    fut.add_done_callback(lambda f: f.cancelled() or f.exception())
    return fut


class OrderRun:
    """One ``orderId`` on one robot: its confirmed nodes and actions, progress, and how it ended."""

    def __init__(self, robot: str, order_id: str) -> None:
        self.robot = robot
        self.order_id = order_id
        self.update_id = -1  # the newest confirmed orderUpdateId
        self.parts: OrderParts | None = None  # the newest confirmed message's nodes/edges
        self.nodes: dict[int, Node] = {}  # every confirmed node by sequence id
        self.action_ids: set[str] = set()  # actions of released nodes/edges
        self.passed: list[str] = []
        self.last_passed_seq = -1
        self.cancelled = False  # cancelOrder was sent: no update may follow
        self.cancel_ran = False  # ... and the robot reported it ended
        self.finished: asyncio.Future[OrderEnded] = _future()
        self._reached: dict[str, asyncio.Future[NodePassed]] = {}
        self._passed_events: dict[str, NodePassed] = {}

    @property
    def confirmed(self) -> bool:
        """Whether the robot confirmed at least the first message of this order."""
        return self.update_id >= 0

    def apply(self, handle: OrderHandle) -> None:
        """Take in a confirmed message: its nodes replace the horizon after the stitching node, and
        the actions of its released nodes and edges join the order's (horizon actions count only once
        an update releases them, as the robot reports only released ones)."""
        parts = handle.parts
        stitch = parts.nodes[0].sequence_id if handle.order_update_id > 0 else -1
        self.nodes = {seq: node for seq, node in self.nodes.items() if seq <= stitch}
        self.nodes.update((node.sequence_id, node) for node in parts.nodes)
        self.update_id = handle.order_update_id
        self.parts = parts
        everything: list[Node | Edge] = [*parts.nodes, *parts.edges]
        released = [p for p in everything if p.released]
        self.action_ids.update(a.action_id for p in released for a in p.actions)

    def pass_nodes(self, last_sequence_id: int, now: float) -> list[NodePassed]:
        """Report every node up to ``last_sequence_id`` not reported yet."""
        if last_sequence_id <= self.last_passed_seq:
            return []
        seqs = sorted(s for s in self.nodes if self.last_passed_seq < s <= last_sequence_id)
        self.last_passed_seq = last_sequence_id
        events = []
        for seq in seqs:
            node_id = self.nodes[seq].node_id
            event = NodePassed(self.robot, now, self.order_id, node_id, seq)
            self.passed.append(node_id)
            self._passed_events.setdefault(node_id, event)
            waiter = self._reached.pop(node_id, None)
            if waiter is not None and not waiter.done():
                waiter.set_result(event)
            events.append(event)
        return events

    def reached(self, node_id: str) -> asyncio.Future[NodePassed]:
        """A future resolved when ``node_id`` is passed (at once if it already was); failed with
        ``OrderStateError`` if the order ended without passing it (also when asked after the end)."""
        fut = self._reached.get(node_id)
        if fut is None:
            fut = _future()
            if node_id in self._passed_events:
                fut.set_result(self._passed_events[node_id])
            elif self.finished.done():
                ended = self.finished.result()
                fut.set_exception(OrderStateError(f"order {self.order_id} ended {ended.status}"))
            else:
                self._reached[node_id] = fut
        return fut

    def futures(self) -> list[asyncio.Future[Any]]:
        """``finished`` and the waiters on nodes not passed yet."""
        return [self.finished, *self._reached.values()]

    def end(self, event: OrderEnded) -> OrderEnded | None:
        """Resolve ``finished`` (once); the event, or ``None`` if the run had already ended."""
        if self.finished.done():
            return None
        self.finished.set_result(event)
        for fut in self._reached.values():
            if not fut.done():
                fut.set_exception(OrderStateError(f"order {self.order_id} ended {event.status}"))
        return event


class OrderHandle:
    """One order message (a new order or an update): resend it with ``message``; await ``confirmed``.

    ``confirmed`` raises ``OrderRejectedError`` or ``OrderNotConfirmedError`` (or ``OrderStateError``
    if the order was cancelled before a state confirmed it). ``finished`` is the run's: the
    ``OrderEnded`` event of the whole order, updates included.
    """

    def __init__(self, run: OrderRun, message: Order, parts: OrderParts) -> None:
        self.run = run
        self.message = message
        self.parts = parts
        self.attempts = 1
        self.confirmed: asyncio.Future[OrderConfirmed] = _future()

    @property
    def robot(self) -> str:
        return self.run.robot

    @property
    def order_id(self) -> str:
        return self.message.order_id

    @property
    def order_update_id(self) -> int:
        return self.message.order_update_id

    @property
    def finished(self) -> asyncio.Future[OrderEnded]:
        """The run's end (shared by every update of the order)."""
        return self.run.finished

    @property
    def passed(self) -> list[str]:
        """Node ids passed so far in this order, in order."""
        return self.run.passed

    def reached(self, node_id: str) -> asyncio.Future[NodePassed]:
        """A future resolved when the robot passes ``node_id``."""
        return self.run.reached(node_id)


class InstantActionHandle:
    """One instant action sent to a robot. ``reported``: the robot listed it in ``actionStates``;
    ``done``: its ``ActionEnded`` (FINISHED or FAILED), or ``ActionNotConfirmedError``."""

    def __init__(self, robot: str, message: InstantActions) -> None:
        self.robot = robot
        self.message = message
        self.attempts = 1
        self.reported: asyncio.Future[None] = _future()
        self.done: asyncio.Future[ActionEnded] = _future()

    @property
    def action(self) -> Action:
        return self.message.actions[0]

    @property
    def action_id(self) -> str:
        return self.action.action_id


class RobotOrders:
    """The order and instant actions of one robot, advanced by its states."""

    def __init__(self, robot: str) -> None:
        self.robot = robot
        self.run: OrderRun | None = None
        self.pending: OrderHandle | None = None
        self.instant: dict[str, InstantActionHandle] = {}

    @property
    def busy(self) -> bool:
        """Whether the robot has an order that has not ended (or one on its way)."""
        return self.pending is not None or (self.run is not None and not self.run.finished.done())

    @property
    def watching(self) -> bool:
        """Whether states need looking at beyond the picture (something is being tracked)."""
        return self.busy or bool(self.instant)

    # ---- sending ---------------------------------------------------------------------------------

    def check_idle(self) -> None:
        """``OrderStateError`` while the robot still has an order (or one on its way)."""
        if self.pending is not None:
            current = self.pending.order_id
        elif self.run is not None and not self.run.finished.done():
            current = self.run.order_id
        else:
            return
        raise OrderStateError(f"robot {self.robot} still has order {current}: update or cancel it first")

    def new_order(self, message: Order, parts: OrderParts) -> OrderHandle:
        """Track a new order; ``OrderStateError`` while the robot still has one."""
        self.check_idle()
        self.run = OrderRun(self.robot, message.order_id)
        self.pending = OrderHandle(self.run, message, parts)
        return self.pending

    def update(self, message: Order, parts: OrderParts) -> OrderHandle:
        """Track an update of the current run (checked by ``check_updatable`` first)."""
        run = self.check_updatable()
        self.pending = OrderHandle(run, message, parts)
        return self.pending

    def check_updatable(self) -> OrderRun:
        """The run an update would continue; ``OrderStateError`` if none may be sent now."""
        run = self.run
        if run is None or run.finished.done():
            raise OrderStateError(f"robot {self.robot} has no active order to update: send a new order")
        if run.cancelled:
            raise OrderStateError(
                f"order {run.order_id} of robot {self.robot} was cancelled: send a new order (new orderId)"
            )
        if self.pending is not None:
            raise OrderStateError(
                f"order {run.order_id} update {self.pending.order_update_id} of robot {self.robot} "
                "is not confirmed yet"
            )
        return run

    def instant_action(self, message: InstantActions) -> InstantActionHandle:
        """Track an instant action (the message carries exactly one)."""
        handle = InstantActionHandle(self.robot, message)
        self.instant[handle.action_id] = handle
        return handle

    def cancel_requested(self, now: float) -> list[FleetEvent]:
        """``cancelOrder`` is on its way: no update of this run may follow; stop confirming."""
        events: list[FleetEvent] = []
        if self.run is not None:
            self.run.cancelled = True
        pending, self.pending = self.pending, None
        if pending is not None and not pending.confirmed.done():
            reason = "cancelled before a state confirmed it"
            pending.confirmed.set_exception(OrderStateError(f"order {pending.order_id}: {reason}"))
            events.append(self._not_confirmed(pending, now, reason))
        return events

    def close(self) -> None:
        """The master stops: cancel every future still open, so nobody waits on it for ever."""
        futures: list[asyncio.Future[Any]] = []
        if self.pending is not None:
            futures.append(self.pending.confirmed)
        if self.run is not None:
            futures += self.run.futures()
        for handle in self.instant.values():
            futures += [handle.reported, handle.done]
        for fut in futures:
            fut.cancel()

    # ---- receiving -------------------------------------------------------------------------------

    def on_state(self, d: StateDigest, now: float) -> list[FleetEvent]:
        """Apply one state; the events it caused."""
        events: list[FleetEvent] = []
        if self.pending is not None:
            self._confirm(self.pending, d, now, events)
        statuses = {a.action_id: a for a in d.action_states} if d.action_states else {}
        if self.instant:
            self._instant(statuses, d, now, events)
        run = self.run
        if run is not None and not run.finished.done() and (run.confirmed or run.cancelled):
            self._progress(run, d, statuses, now, events)
        return events

    def give_up(self, handle: OrderHandle, now: float) -> list[FleetEvent]:
        """The resends of ``handle`` are exhausted: fail it (and the run, if it never started)."""
        if self.pending is not handle or handle.confirmed.done():
            return []
        self.pending = None
        reason = f"no state confirmed it after {handle.attempts} sendings"
        handle.confirmed.set_exception(
            OrderNotConfirmedError(
                f"robot {self.robot}: order {handle.order_id}/{handle.order_update_id}: {reason}"
            )
        )
        events: list[FleetEvent] = [self._not_confirmed(handle, now, reason)]
        if not handle.run.confirmed:
            self._end(handle.run, OrderStatus.UNCONFIRMED, now, events, reason=reason)
        return events

    def give_up_action(self, handle: InstantActionHandle, now: float) -> list[FleetEvent]:
        """The resends of an instant action are exhausted: fail it."""
        if self.instant.get(handle.action_id) is not handle:
            return []
        del self.instant[handle.action_id]
        reason = f"never reported after {handle.attempts} sendings"
        handle.done.set_exception(
            ActionNotConfirmedError(
                f"robot {self.robot}: {handle.action.action_type} {handle.action_id}: {reason}"
            )
        )
        return [
            ActionEnded(self.robot, now, handle.action_id, handle.action.action_type, "UNCONFIRMED", reason)
        ]

    # ---- internals -------------------------------------------------------------------------------

    def _confirm(self, p: OrderHandle, d: StateDigest, now: float, events: list[FleetEvent]) -> None:
        if d.order_id == p.order_id and d.order_update_id >= p.order_update_id:
            self.pending = None
            p.run.apply(p)
            event = OrderConfirmed(self.robot, now, p.order_id, p.order_update_id, p.attempts)
            p.confirmed.set_result(event)
            events.append(event)
            return
        reason = _refusal(d, p)
        if reason is None:
            return
        self.pending = None
        p.confirmed.set_exception(
            OrderRejectedError(f"robot {self.robot} refused order {p.order_id}: {reason}")
        )
        events.append(self._not_confirmed(p, now, reason))
        if not p.run.confirmed:
            self._end(p.run, OrderStatus.REJECTED, now, events, reason=reason)

    def _progress(
        self, run: OrderRun, d: StateDigest, statuses: dict[str, Any], now: float, events: list[FleetEvent]
    ) -> None:
        if d.order_id != run.order_id:
            if run.confirmed:
                reason = f"the robot reports order {d.order_id!r} instead"
                self._end(run, OrderStatus.ABANDONED, now, events, reason=reason)
            return
        events.extend(run.pass_nodes(d.last_node_sequence_id, now))
        if self.pending is not None or d.node_states or d.edge_states:
            return
        states = [statuses.get(aid) for aid in run.action_ids]
        if any(s is None or s.action_status not in _DONE for s in states):
            if run.cancel_ran:
                self._end(run, OrderStatus.CANCELLED, now, events)
            return
        failed = tuple(
            sorted(s.action_id for s in states if s is not None and s.action_status is ActionStatus.FAILED)
        )
        status = (
            OrderStatus.CANCELLED if run.cancelled else OrderStatus.FAILED if failed else OrderStatus.FINISHED
        )
        self._end(run, status, now, events, failed=failed)

    def _instant(
        self, statuses: dict[str, Any], d: StateDigest, now: float, events: list[FleetEvent]
    ) -> None:
        for action_id in [a for a in self.instant if a in statuses]:
            handle, state = self.instant[action_id], statuses[action_id]
            if not handle.reported.done():
                handle.reported.set_result(None)
            if state.action_status not in _DONE:
                continue
            del self.instant[action_id]
            event = ActionEnded(
                self.robot,
                now,
                action_id,
                handle.action.action_type,
                state.action_status.value,
                state.result_description or "",
            )
            handle.done.set_result(event)
            events.append(event)
            if handle.action.action_type == "cancelOrder":
                self._cancel_ran(state.action_status, d, now, events)

    def _cancel_ran(self, status: ActionStatus, d: StateDigest, now: float, events: list[FleetEvent]) -> None:
        """``cancelOrder`` ended: the run is over once the robot holds no nodes of it any more."""
        run = self.run
        if run is None or run.finished.done() or not run.cancelled:
            return
        run.cancel_ran = True
        if status is ActionStatus.FAILED or not (d.node_states or d.edge_states):
            reason = "" if status is ActionStatus.FINISHED else "cancelOrder failed: the robot had no order"
            self._end(run, OrderStatus.CANCELLED, now, events, reason=reason)

    def _end(
        self,
        run: OrderRun,
        status: OrderStatus,
        now: float,
        events: list[FleetEvent],
        *,
        failed: tuple[str, ...] = (),
        reason: str = "",
    ) -> None:
        event = run.end(
            OrderEnded(self.robot, now, run.order_id, max(run.update_id, 0), status, failed, reason)
        )
        if event is not None:
            events.append(event)

    def _not_confirmed(self, handle: OrderHandle, now: float, reason: str) -> OrderNotConfirmed:
        return OrderNotConfirmed(
            self.robot, now, handle.order_id, handle.order_update_id, handle.attempts, reason
        )


def _refusal(d: StateDigest, handle: OrderHandle) -> str | None:
    """The description of an error in ``d`` that refuses ``handle``'s order/update, if there is one."""
    for error in d.errors:
        if error.error_type not in _REFUSALS or error.reference("orderId") != handle.order_id:
            continue
        update = error.reference("orderUpdateId")
        if update is None or update == str(handle.order_update_id):
            return f"{error.error_type}: {error.error_description or 'no description'}"
    return None
