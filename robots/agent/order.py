"""The order rules of VDA 5050 2.1 as a robot applies them, and the progress of one order. Pure: no I/O.

``judge_order(order, current, here)`` decides what to do with a received ``order`` (VDA 5050 §6.6,
"order handling" flow chart):

======================================================  ============  ==================================
situation                                               verdict       error type
======================================================  ============  ==================================
bad content: no nodes, sequenceIds not increasing,      REJECT        ``validationError``
edges not joining their nodes, released after a
horizon part, duplicate action ids, bad action
parameters, released node without position
new ``orderId`` while the current order still runs      REJECT        ``orderError``
new ``orderId`` and the robot not at its first node     REJECT        ``orderError``
(beyond ``allowedDeviationXY``, other map, unknown)
new ``orderId``, robot idle and at the first node       NEW
same ids (an identical resend)                          RESEND        — (nothing runs again)
same ``orderId``, lower ``orderUpdateId``               REJECT        ``orderUpdateError``
update of a cancelled or failed order                   REJECT        ``orderUpdateError``
update whose base does not start at the decision point  REJECT        ``orderUpdateError``
(the last released node of the current order)
update reusing an action id of the current order        REJECT        ``validationError``
update stitched at the decision point                   UPDATE
======================================================  ============  ==================================

Every rejection comes as an ``AgvError`` whose description names the reason and whose references name
``headerId``, ``topic``, ``orderId`` and ``orderUpdateId``. ``no_order_to_cancel`` gives the
``noOrderToCancel`` error of a ``cancelOrder`` without an order (§6.8.2).

``OrderProgress`` is the running order as ``state`` reports it: nodes and edges not yet traversed
(``nodeStates``/``edgeStates``), the last node reached, and one ``ActionRecord`` per released action
(``actionStates``). Only released (base) actions are recorded: horizon parts may still change, and an
update brings them again. Action statuses move WAITING → INITIALIZING → RUNNING → FINISHED | FAILED
(FAILED also straight from WAITING when an order ends early); any other move is a ``ValueError``.
``PAUSED`` is never used: the 2.1 ``state`` schema lacks it.
"""

from __future__ import annotations

import itertools
import math
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum

from interfaces.vda5050 import (
    Action,
    ActionError,
    ActionState,
    ActionStatus,
    ActionType,
    AgvError,
    BlockingType,
    Edge,
    EdgeState,
    ErrorLevel,
    ErrorReference,
    ErrorType,
    InstantActions,
    Node,
    NodeState,
    Order,
    TopicKind,
    read_action,
)
from robots.agent.driver import Pose

DEFAULT_DEVIATION_XY = 0.5
"""Metres the robot may be from an order's first node when the node gives no ``allowedDeviationXY``."""

TERMINAL = frozenset({ActionStatus.FINISHED, ActionStatus.FAILED})
"""Action statuses that never change again."""

_MOVES: dict[ActionStatus, frozenset[ActionStatus]] = {
    ActionStatus.WAITING: frozenset({ActionStatus.INITIALIZING, ActionStatus.FAILED}),
    ActionStatus.INITIALIZING: frozenset({ActionStatus.RUNNING, ActionStatus.FAILED}),
    ActionStatus.RUNNING: frozenset({ActionStatus.FINISHED, ActionStatus.FAILED}),
}


class Verdict(StrEnum):
    """What to do with a received order."""

    NEW = "new"  # start it
    UPDATE = "update"  # stitch it onto the current order
    RESEND = "resend"  # already have it: publish state, change nothing
    REJECT = "reject"  # report ``Decision.error``


@dataclass(frozen=True, slots=True)
class Decision:
    """The verdict on one order and, for REJECT, the error to report."""

    verdict: Verdict
    error: AgvError | None = None


class ProgressStatus(StrEnum):
    """How the order ended, if it did not finish normally."""

    ACTIVE = "active"
    CANCELLED = "cancelled"
    FAILED = "failed"


def make_error(
    error_type: ErrorType | str,
    description: str,
    references: Iterable[tuple[str, str | int]] = (),
    level: ErrorLevel = ErrorLevel.WARNING,
) -> AgvError:
    """An ``AgvError`` with ``(key, value)`` references (values written as text)."""
    refs = [ErrorReference(reference_key=k, reference_value=str(v)) for k, v in references]
    return AgvError(
        error_type=str(error_type),
        error_level=level,
        error_references=refs or None,
        error_description=description,
    )


def order_references(order: Order) -> list[tuple[str, str | int]]:
    """The references of an error about ``order`` (§6.10.x: headerId, topic, orderId, orderUpdateId)."""
    return [
        ("headerId", order.header_id),
        ("topic", TopicKind.ORDER.value),
        ("orderId", order.order_id),
        ("orderUpdateId", order.order_update_id),
    ]


def _reject(error_type: ErrorType, order: Order, reason: str) -> Decision:
    """A REJECT decision naming ``reason``."""
    description = f"order {order.order_id!r} update {order.order_update_id} rejected: {reason}"
    return Decision(Verdict.REJECT, make_error(error_type, description, order_references(order)))


# --- content -----------------------------------------------------------------------------------------


def order_problems(order: Order) -> list[str]:
    """Everything wrong with the order's content on its own (empty when it is valid)."""
    if not order.nodes:
        return ["the order has no nodes"]
    return [
        *_sequence_problems(order.nodes, order.edges),
        *_release_problems(order.nodes, order.edges),
        *_position_problems(order.nodes),
        *action_problems(order.actions()),
    ]


def _sequence_problems(nodes: Sequence[Node], edges: Sequence[Edge]) -> list[str]:
    """Node/edge count, strictly increasing interleaved sequenceIds, edges joining their nodes."""
    if len(edges) != len(nodes) - 1:
        return [f"{len(nodes)} nodes need {len(nodes) - 1} edges, got {len(edges)}"]
    problems: list[str] = []
    previous: tuple[str, int] | None = None
    for i, node in enumerate(nodes):
        parts: list[tuple[str, int]] = [(f"node {node.node_id}", node.sequence_id)]
        if i < len(edges):
            parts.append((f"edge {edges[i].edge_id}", edges[i].sequence_id))
        for name, seq in parts:
            if previous is not None and seq <= previous[1]:
                problems.append(f"sequenceId {seq} of {name} does not increase after {previous[1]}")
            previous = (name, seq)
    for i, edge in enumerate(edges):
        start, end = nodes[i].node_id, nodes[i + 1].node_id
        if (edge.start_node_id, edge.end_node_id) != (start, end):
            problems.append(
                f"edge {edge.edge_id} goes {edge.start_node_id} → {edge.end_node_id}, "
                f"but joins {start} → {end} in the order"
            )
    return problems


def _release_problems(nodes: Sequence[Node], edges: Sequence[Edge]) -> list[str]:
    """The base (released) must come first and end with a node; edges released with their end node."""
    problems: list[str] = []
    if not nodes[0].released:
        problems.append(f"first node {nodes[0].node_id} is not released")
    for before, after in itertools.pairwise(nodes):
        if after.released and not before.released:
            problems.append(f"node {after.node_id} is released after horizon node {before.node_id}")
    for i, edge in enumerate(edges):
        if edge.released != nodes[i + 1].released:
            problems.append(
                f"edge {edge.edge_id} released={edge.released} but its end node "
                f"{nodes[i + 1].node_id} released={nodes[i + 1].released}"
            )
    return problems


def _position_problems(nodes: Sequence[Node]) -> list[str]:
    """Released nodes past the first must say where they are (our factsheet: nodePosition REQUIRED)."""
    return [
        f"released node {node.node_id} has no nodePosition"
        for node in nodes[1:]
        if node.released and node.node_position is None
    ]


def action_problems(actions: Sequence[Action]) -> list[str]:
    """Duplicate action ids and bad parameters of known action types (unknown types go to the driver)."""
    counts = Counter(action.action_id for action in actions)
    problems = [f"action id {aid!r} is used {n} times" for aid, n in sorted(counts.items()) if n > 1]
    known = {t.value for t in ActionType}
    for action in actions:
        if action.action_type in known:
            try:
                read_action(action)
            except ActionError as exc:
                problems.append(str(exc))
    return problems


def instant_actions_problems(message: InstantActions) -> list[str]:
    """Everything wrong with an ``instantActions`` message on its own."""
    return action_problems(message.actions)


def header_problem(
    manufacturer: str, serial_number: str, *, expected_manufacturer: str, expected_serial: str
) -> str | None:
    """Why a message header addressed to someone else is not ours, or None when it is."""
    if serial_number != expected_serial:
        return f"header serialNumber {serial_number!r} is not this robot's ({expected_serial!r})"
    if manufacturer != expected_manufacturer:
        return f"header manufacturer {manufacturer!r} is not this robot's ({expected_manufacturer!r})"
    return None


# --- the rules ---------------------------------------------------------------------------------------


def judge_order(
    order: Order,
    current: OrderProgress | None,
    here: Pose | None,
    *,
    last_node_id: str = "",
    default_deviation_xy: float = DEFAULT_DEVIATION_XY,
) -> Decision:
    """What to do with ``order`` given the ``current`` order and where the robot is (module docstring)."""
    problems = order_problems(order)
    if problems:
        return _reject(ErrorType.VALIDATION_ERROR, order, "; ".join(problems))
    if current is None or order.order_id != current.order_id:
        return _judge_new(order, current, here, last_node_id, default_deviation_xy)
    return _judge_update(order, current)


def _judge_new(
    order: Order, current: OrderProgress | None, here: Pose | None, last_node_id: str, default_xy: float
) -> Decision:
    """A new orderId: only when idle and at its first node."""
    if current is not None and not current.idle:
        return _reject(
            ErrorType.ORDER_ERROR,
            order,
            f"order {current.order_id!r} is still running (cancel it or wait until it is finished)",
        )
    away = distance_problem(order.nodes[0], here, last_node_id, default_xy)
    if away is not None:
        return _reject(ErrorType.ORDER_ERROR, order, away)
    return Decision(Verdict.NEW)


def distance_problem(node: Node, here: Pose | None, last_node_id: str, default_xy: float) -> str | None:
    """Why the robot is not at ``node`` (within its ``allowedDeviationXY``), or None when it is."""
    position = node.node_position
    if position is None:
        if node.node_id == last_node_id:
            return None
        return f"first node {node.node_id} has no position and is not the last node ({last_node_id!r})"
    if here is None:
        return f"the robot's position is unknown, so it cannot start at first node {node.node_id}"
    if here.map_id and position.map_id != here.map_id:
        return f"first node {node.node_id} is on map {position.map_id!r}, the robot on {here.map_id!r}"
    allowed = position.allowed_deviation_xy if position.allowed_deviation_xy is not None else default_xy
    distance = math.hypot(position.x - here.x, position.y - here.y)
    if distance > allowed:
        return f"the robot is {distance:.2f} m from first node {node.node_id} (allowed {allowed:g} m)"
    return None


def _judge_update(order: Order, current: OrderProgress) -> Decision:
    """Same orderId: resend, outdated, or an update that must stitch at the decision point."""
    if order.order_update_id == current.order_update_id:
        return Decision(Verdict.RESEND)
    if order.order_update_id < current.order_update_id:
        return _reject(
            ErrorType.ORDER_UPDATE_ERROR,
            order,
            f"orderUpdateId {order.order_update_id} is older than the current {current.order_update_id}",
        )
    if current.status is not ProgressStatus.ACTIVE:
        return _reject(
            ErrorType.ORDER_UPDATE_ERROR,
            order,
            f"order {current.order_id!r} was {current.status.value}; send a new orderId",
        )
    first, decision = order.nodes[0], current.decision_point
    if (first.node_id, first.sequence_id) != (decision.node_id, decision.sequence_id):
        return _reject(
            ErrorType.ORDER_UPDATE_ERROR,
            order,
            f"the new base starts at {first.node_id}/{first.sequence_id}, not at the decision point "
            f"{decision.node_id}/{decision.sequence_id}",
        )
    reused = current.reused_action_ids(order)
    if reused:
        return _reject(
            ErrorType.VALIDATION_ERROR, order, f"action ids already used in this order: {', '.join(reused)}"
        )
    return Decision(Verdict.UPDATE)


def no_order_to_cancel(action: Action, header_id: int, current: OrderProgress | None) -> AgvError:
    """The ``noOrderToCancel`` error of a ``cancelOrder`` received without an active order."""
    what = "there is no order" if current is None else f"order {current.order_id!r} is already over"
    return make_error(
        ErrorType.NO_ORDER_TO_CANCEL,
        f"cancelOrder {action.action_id!r}: {what}",
        [("headerId", header_id), ("topic", TopicKind.INSTANT_ACTIONS.value), ("actionId", action.action_id)],
    )


# --- progress of one order ---------------------------------------------------------------------------


class ActionRecord:
    """One action and where it stands; ``sequence_id`` is its node's/edge's (None: an instant action)."""

    __slots__ = ("action", "on_edge", "result", "sequence_id", "status")

    def __init__(self, action: Action, sequence_id: int | None = None, *, on_edge: bool = False) -> None:
        self.action = action
        self.sequence_id = sequence_id
        self.on_edge = on_edge
        self.status = ActionStatus.WAITING
        self.result: str | None = None

    @property
    def action_id(self) -> str:
        return self.action.action_id

    @property
    def action_type(self) -> str:
        return self.action.action_type

    @property
    def blocking(self) -> BlockingType:
        return self.action.blocking_type

    @property
    def terminal(self) -> bool:
        return self.status in TERMINAL

    def move(self, status: ActionStatus, result: str | None = None) -> None:
        """Go to ``status`` (``ValueError`` for a move the life cycle does not allow)."""
        if status not in _MOVES.get(self.status, frozenset()):
            raise ValueError(f"action {self.action_id}: {self.status.value} → {status.value} is not allowed")
        self.status = status
        if result is not None:
            self.result = result

    def state(self) -> ActionState:
        """The ``actionStates`` entry."""
        return ActionState(
            action_id=self.action_id,
            action_type=self.action_type,
            action_status=self.status,
            action_description=self.action.action_description,
            result_description=self.result,
        )


class OrderProgress:
    """The running order: what is left to traverse, the last node reached, the released actions.

    Made when a NEW order is accepted: the robot stands at the first node, which counts as reached.
    """

    def __init__(self, order: Order) -> None:
        self.order_id = order.order_id
        self.order_update_id = order.order_update_id
        self.zone_set_id = order.zone_set_id
        self.status = ProgressStatus.ACTIVE
        first = order.nodes[0]
        self.last_node = first
        self.nodes: list[Node] = list(order.nodes[1:])
        self.edges: list[Edge] = list(order.edges)
        self.decision_point = _last_released(order.nodes)
        self.actions: dict[str, ActionRecord] = {}
        self._record(order.nodes, order.edges)

    def _record(self, nodes: Iterable[Node], edges: Iterable[Edge]) -> None:
        """Record the actions of released nodes and edges (skipping ids already recorded)."""
        parts: list[Node | Edge] = [*nodes, *edges]
        for part in sorted(parts, key=lambda p: p.sequence_id):
            if not part.released:
                continue
            for action in part.actions:
                if action.action_id not in self.actions:
                    self.actions[action.action_id] = ActionRecord(
                        action, part.sequence_id, on_edge=isinstance(part, Edge)
                    )

    # --- questions ---

    @property
    def finished(self) -> bool:
        """Every node traversed and every action over (a normal end)."""
        return self.status is ProgressStatus.ACTIVE and not self.nodes and self.all_actions_over

    @property
    def all_actions_over(self) -> bool:
        return all(record.terminal for record in self.actions.values())

    @property
    def idle(self) -> bool:
        """Whether a new order may replace this one: finished, cancelled or failed."""
        return self.status is not ProgressStatus.ACTIVE or self.finished

    def next_edge(self) -> Edge | None:
        """The next edge to drive if it is released (None at the end of the base)."""
        return self.edges[0] if self.edges and self.edges[0].released else None

    @property
    def waiting_for_update(self) -> bool:
        """At the end of the base with horizon nodes left: wait for an order update."""
        return self.status is ProgressStatus.ACTIVE and bool(self.nodes) and self.next_edge() is None

    def waiting_actions(self, sequence_id: int) -> list[ActionRecord]:
        """The WAITING actions of the node or edge with ``sequence_id``, in order."""
        return [
            r
            for r in self.actions.values()
            if r.sequence_id == sequence_id and r.status is ActionStatus.WAITING
        ]

    def reused_action_ids(self, order: Order) -> list[str]:
        """Action ids of an update's new parts (all but the stitching node) already used in this order."""
        stitch_ids = {a.action_id for a in order.nodes[0].actions}
        new_ids = {a.action_id for a in order.actions()} - stitch_ids
        return sorted(aid for aid in new_ids if aid in self.actions)

    # --- changes ---

    def reach(self, node: Node) -> None:
        """The robot arrived at the next node: its edge and the node leave the states."""
        if not self.edges or not self.nodes or self.nodes[0].node_id != node.node_id:
            raise ValueError(f"order {self.order_id}: {node.node_id} is not the next node")
        self.edges.pop(0)
        self.last_node = self.nodes.pop(0)

    def apply_update(self, order: Order) -> None:
        """Stitch an accepted update on: drop the horizon, append the new base and horizon.

        The stitching node (the decision point) stays as it is; actions with new ids on it are added.
        """
        self.nodes = [n for n in self.nodes if n.released]
        self.edges = [e for e in self.edges if e.released]
        self.nodes.extend(order.nodes[1:])
        self.edges.extend(order.edges)
        stitch = order.nodes[0].model_copy(update={"sequence_id": self.decision_point.sequence_id})
        self._record([stitch, *order.nodes[1:]], order.edges)
        self.decision_point = _last_released([self.last_node, *self.nodes])
        self.order_update_id = order.order_update_id
        if order.zone_set_id is not None:
            self.zone_set_id = order.zone_set_id

    def end(self, status: ProgressStatus, reason: str) -> list[ActionRecord]:
        """Cancel or fail the order: states emptied, open actions FAILED; returns the actions ended."""
        if status is ProgressStatus.ACTIVE:
            raise ValueError("end() needs CANCELLED or FAILED")
        self.status = status
        self.nodes, self.edges = [], []
        ended = [r for r in self.actions.values() if not r.terminal]
        for record in ended:
            record.move(ActionStatus.FAILED, reason)
        return ended

    # --- reporting ---

    def node_states(self) -> list[NodeState]:
        """``nodeStates``: the nodes not yet traversed."""
        return [
            NodeState(
                node_id=n.node_id,
                sequence_id=n.sequence_id,
                released=n.released,
                node_description=n.node_description,
                node_position=n.node_position,
            )
            for n in self.nodes
        ]

    def edge_states(self) -> list[EdgeState]:
        """``edgeStates``: the edges not yet traversed."""
        return [
            EdgeState(
                edge_id=e.edge_id,
                sequence_id=e.sequence_id,
                released=e.released,
                edge_description=e.edge_description,
                trajectory=e.trajectory,
            )
            for e in self.edges
        ]

    def action_states(self) -> list[ActionState]:
        """``actionStates`` of the order's released actions."""
        return [record.state() for record in self.actions.values()]


def _last_released(nodes: Sequence[Node]) -> Node:
    """The last released node: where an update must stitch."""
    return [n for n in nodes if n.released][-1]
