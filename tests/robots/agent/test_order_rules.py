"""The order rules of VDA 5050 (robots.agent.order), one test per rule, each with the error it reports."""

from __future__ import annotations

import pytest
from agent_samples import MAP, act, edge, line_order, master_headers, node

from interfaces.vda5050 import (
    ActionStatus,
    AgvError,
    BlockingType,
    CancelOrder,
    ErrorType,
    HeaderFactory,
    Order,
    make_action,
)
from robots.agent.driver import Pose
from robots.agent.order import (
    ActionRecord,
    Decision,
    OrderProgress,
    ProgressStatus,
    Verdict,
    header_problem,
    judge_order,
    no_order_to_cancel,
)

AT_N0 = Pose(0.0, 0.0, 0.0, MAP)


@pytest.fixture
def headers() -> HeaderFactory:
    return master_headers()


def _rejected(decision: Decision, error_type: ErrorType, *words: str) -> AgvError:
    """The decision is a REJECT with ``error_type`` whose description contains ``words``."""
    assert decision.verdict is Verdict.REJECT
    error = decision.error
    assert error is not None and error.error_type == error_type.value
    description = error.error_description or ""
    for word in words:
        assert word in description, description
    return error


def _refs(error: AgvError) -> dict[str, str]:
    return {r.reference_key: r.reference_value for r in error.error_references or []}


def _running(headers: HeaderFactory, **kw: object) -> OrderProgress:
    """A current order o-1 (update 0) with three released nodes, the robot at n0."""
    return OrderProgress(line_order(headers, **kw))  # type: ignore[arg-type]


def _finish(progress: OrderProgress) -> None:
    """Traverse every node and end every action FINISHED."""
    while progress.next_edge() is not None:
        progress.reach(progress.nodes[0])
    for record in progress.actions.values():
        record.move(ActionStatus.INITIALIZING)
        record.move(ActionStatus.RUNNING)
        record.move(ActionStatus.FINISHED)


# --- new orders ------------------------------------------------------------------------------------------


def test_new_order_accepted_when_idle_at_first_node(headers: HeaderFactory) -> None:
    """No current order and the robot within allowedDeviationXY of the first node: NEW, no error."""
    decision = judge_order(line_order(headers), None, Pose(0.2, 0.1, 0.0, MAP))
    assert decision == Decision(Verdict.NEW)


def test_new_order_rejected_while_current_runs(headers: HeaderFactory) -> None:
    """A new orderId while the current order still has nodes to go: orderError naming the running order."""
    current = _running(headers)
    error = _rejected(
        judge_order(line_order(headers, order_id="o-2"), current, AT_N0),
        ErrorType.ORDER_ERROR,
        "o-1",
        "still",
    )
    assert _refs(error) == {"headerId": "1", "topic": "order", "orderId": "o-2", "orderUpdateId": "0"}


def test_new_order_accepted_after_current_finished(headers: HeaderFactory) -> None:
    """Once the current order is finished (nodes traversed, actions over) a new orderId is accepted."""
    current = _running(headers, node_actions={1: [act("a1", "pick", BlockingType.HARD)]})
    _finish(current)
    assert current.finished
    here = Pose(4.0, 0.0, 0.0, MAP)
    assert (
        judge_order(line_order(headers, order_id="o-2", first=2, last=3), current, here).verdict
        is Verdict.NEW
    )


def test_new_order_accepted_after_cancel(headers: HeaderFactory) -> None:
    """A cancelled order leaves the robot idle: a new orderId is accepted."""
    current = _running(headers)
    current.end(ProgressStatus.CANCELLED, "cancelled")
    assert judge_order(line_order(headers, order_id="o-2"), current, AT_N0).verdict is Verdict.NEW


def test_new_order_rejected_far_from_first_node(headers: HeaderFactory) -> None:
    """The robot beyond the first node's allowedDeviationXY: orderError with the distance."""
    decision = judge_order(line_order(headers), None, Pose(1.0, 0.0, 0.0, MAP))
    _rejected(decision, ErrorType.ORDER_ERROR, "1.00 m from first node n0", "allowed 0.3 m")


def test_new_order_uses_default_deviation_when_node_gives_none(headers: HeaderFactory) -> None:
    """Without allowedDeviationXY the configured default applies."""
    order = line_order(headers)
    position = order.nodes[0].node_position
    assert position is not None
    order.nodes[0].node_position = position.model_copy(update={"allowed_deviation_xy": None})
    here = Pose(0.8, 0.0, 0.0, MAP)
    assert judge_order(order, None, here, default_deviation_xy=1.0).verdict is Verdict.NEW
    _rejected(
        judge_order(order, None, here, default_deviation_xy=0.5), ErrorType.ORDER_ERROR, "allowed 0.5 m"
    )


def test_new_order_rejected_on_another_map(headers: HeaderFactory) -> None:
    """First node on another map than the robot: orderError naming both maps."""
    decision = judge_order(line_order(headers), None, Pose(0.0, 0.0, 0.0, "floor-2"))
    _rejected(decision, ErrorType.ORDER_ERROR, "map 'm'", "'floor-2'")


def test_new_order_rejected_when_position_unknown(headers: HeaderFactory) -> None:
    """No pose from the driver: orderError saying the position is unknown."""
    _rejected(judge_order(line_order(headers), None, None), ErrorType.ORDER_ERROR, "position is unknown")


def test_first_node_without_position_must_be_last_node(headers: HeaderFactory) -> None:
    """A first node without position is accepted only when it is the robot's last node."""
    order = line_order(headers)
    order.nodes[0].node_position = None
    assert judge_order(order, None, None, last_node_id="n0").verdict is Verdict.NEW
    _rejected(judge_order(order, None, None, last_node_id="x"), ErrorType.ORDER_ERROR, "not the last node")


# --- content (validationError) ---------------------------------------------------------------------------


def test_empty_order_is_a_validation_error(headers: HeaderFactory) -> None:
    """An order without nodes: validationError."""
    order = headers.make(Order, order_id="o-1", order_update_id=0, nodes=[], edges=[])
    error = _rejected(judge_order(order, None, AT_N0), ErrorType.VALIDATION_ERROR, "no nodes")
    assert _refs(error)["topic"] == "order"


def test_duplicate_action_ids_are_a_validation_error(headers: HeaderFactory) -> None:
    """The same actionId twice in one order: validationError naming the id."""
    order = line_order(
        headers,
        node_actions={0: [act("dup", "pick", BlockingType.HARD)], 1: [act("dup", "drop", BlockingType.HARD)]},
    )
    _rejected(judge_order(order, None, AT_N0), ErrorType.VALIDATION_ERROR, "'dup' is used 2 times")


def test_non_increasing_sequence_ids_are_a_validation_error(headers: HeaderFactory) -> None:
    """sequenceIds must increase along the order: validationError naming the part."""
    order = line_order(headers)
    order.nodes[2].sequence_id = 2
    _rejected(judge_order(order, None, AT_N0), ErrorType.VALIDATION_ERROR, "sequenceId 2 of node n2")


def test_edges_not_joining_nodes_are_a_validation_error(headers: HeaderFactory) -> None:
    """An edge whose ends are not its neighbouring nodes: validationError."""
    order = line_order(headers)
    order.edges[1].start_node_id = "n0"
    _rejected(judge_order(order, None, AT_N0), ErrorType.VALIDATION_ERROR, "edge e1 goes n0 → n2")


def test_wrong_edge_count_is_a_validation_error(headers: HeaderFactory) -> None:
    """N nodes need N-1 edges."""
    order = line_order(headers)
    order.edges.pop()
    _rejected(judge_order(order, None, AT_N0), ErrorType.VALIDATION_ERROR, "3 nodes need 2 edges, got 1")


def test_released_after_horizon_is_a_validation_error(headers: HeaderFactory) -> None:
    """The base must come before the horizon."""
    order = headers.make(
        Order,
        order_id="o-1",
        order_update_id=0,
        nodes=[node(0), node(1, released=False), node(2)],
        edges=[edge(0, released=False), edge(1)],
    )
    _rejected(judge_order(order, None, AT_N0), ErrorType.VALIDATION_ERROR, "n2 is released after horizon")


def test_bad_action_parameters_are_a_validation_error(headers: HeaderFactory) -> None:
    """A known action type with a bad parameter: validationError naming the parameter."""
    order = line_order(
        headers, node_actions={1: [act("o1", "openCompartment", BlockingType.SOFT, compartment="3")]}
    )
    _rejected(judge_order(order, None, AT_N0), ErrorType.VALIDATION_ERROR, "compartment")


def test_released_node_without_position_is_a_validation_error(headers: HeaderFactory) -> None:
    """The agent drives to positions: a released node past the first needs one."""
    order = line_order(headers)
    order.nodes[1].node_position = None
    _rejected(judge_order(order, None, AT_N0), ErrorType.VALIDATION_ERROR, "n1 has no nodePosition")


# --- updates ---------------------------------------------------------------------------------------------


def test_identical_resend_is_ignored(headers: HeaderFactory) -> None:
    """Same orderId and orderUpdateId: RESEND, no error (nothing restarts)."""
    current = _running(headers)
    assert judge_order(line_order(headers), current, Pose(3.0, 0.0, 0.0, MAP)) == Decision(Verdict.RESEND)


def test_outdated_update_is_rejected(headers: HeaderFactory) -> None:
    """A lower orderUpdateId than the current one: orderUpdateError saying it is older."""
    current = _running(headers, update=3, base_end=1)
    old = line_order(headers, update=2, first=1, last=2, base_end=2)
    error = _rejected(
        judge_order(old, current, AT_N0), ErrorType.ORDER_UPDATE_ERROR, "2 is older than the current 3"
    )
    assert _refs(error)["orderUpdateId"] == "2"


def test_update_must_stitch_at_decision_point(headers: HeaderFactory) -> None:
    """An update whose base starts elsewhere than the last released node: orderUpdateError naming both."""
    current = _running(headers, last=3, base_end=1)
    wrong = line_order(headers, update=1, first=2, last=3)
    _rejected(
        judge_order(wrong, current, AT_N0),
        ErrorType.ORDER_UPDATE_ERROR,
        "starts at n2/4",
        "decision point n1/2",
    )


def test_update_stitched_at_decision_point_is_accepted(headers: HeaderFactory) -> None:
    """An update starting at the decision point: UPDATE; the horizon is replaced, the base extended."""
    current = _running(headers, last=3, base_end=1)
    assert [n.node_id for n in current.nodes] == ["n1", "n2", "n3"]
    update = line_order(
        headers, update=1, first=1, last=3, node_actions={3: [act("d3", "drop", BlockingType.HARD)]}
    )
    assert judge_order(update, current, AT_N0) == Decision(Verdict.UPDATE)
    current.apply_update(update)
    assert current.order_update_id == 1
    assert [(n.node_id, n.released) for n in current.nodes] == [("n1", True), ("n2", True), ("n3", True)]
    assert [e.edge_id for e in current.edges] == ["e0", "e1", "e2"]
    assert current.decision_point.node_id == "n3" and "d3" in current.actions


def test_update_after_cancel_is_rejected(headers: HeaderFactory) -> None:
    """A cancelled order takes no updates (master control must send a new orderId)."""
    current = _running(headers, last=3, base_end=1)
    current.end(ProgressStatus.CANCELLED, "cancelled")
    update = line_order(headers, update=1, first=1, last=3)
    _rejected(
        judge_order(update, current, AT_N0), ErrorType.ORDER_UPDATE_ERROR, "was cancelled", "new orderId"
    )


def test_update_reusing_action_ids_is_rejected(headers: HeaderFactory) -> None:
    """New parts of an update may not reuse an action id of the order (it would run twice)."""
    current = _running(headers, last=3, base_end=1, node_actions={1: [act("p1", "pick", BlockingType.HARD)]})
    update = line_order(
        headers, update=1, first=1, last=3, node_actions={2: [act("p1", "pick", BlockingType.HARD)]}
    )
    _rejected(judge_order(update, current, AT_N0), ErrorType.VALIDATION_ERROR, "already used", "p1")


def test_update_repeating_stitch_node_actions_adds_nothing(headers: HeaderFactory) -> None:
    """The stitching node's actions repeated in the update keep their record (and status)."""
    pick = act("p1", "pick", BlockingType.HARD)
    current = _running(headers, last=3, base_end=1, node_actions={1: [pick]})
    record = current.actions["p1"]
    update = line_order(headers, update=1, first=1, last=3, node_actions={1: [pick]})
    assert judge_order(update, current, AT_N0).verdict is Verdict.UPDATE
    current.apply_update(update)
    assert current.actions["p1"] is record and len(current.actions) == 1


# --- cancel, headers, action life cycle ------------------------------------------------------------------


def test_cancel_without_order_reports_no_order_to_cancel() -> None:
    """cancelOrder without an order: noOrderToCancel referencing the action."""
    action = make_action(CancelOrder(), action_id="c1")
    error = no_order_to_cancel(action, 7, None)
    assert error.error_type == ErrorType.NO_ORDER_TO_CANCEL.value
    assert "there is no order" in (error.error_description or "")
    assert _refs(error) == {"headerId": "7", "topic": "instantActions", "actionId": "c1"}


def test_header_of_another_robot_is_refused() -> None:
    """A header naming another serial number or manufacturer is not ours."""
    ours = {"expected_manufacturer": "acme", "expected_serial": "r1"}
    assert header_problem("acme", "r1", **ours) is None
    assert "serialNumber 'r2'" in (header_problem("acme", "r2", **ours) or "")
    assert "manufacturer 'other'" in (header_problem("other", "r1", **ours) or "")


def test_action_life_cycle_refuses_illegal_moves() -> None:
    """WAITING → INITIALIZING → RUNNING → FINISHED; skipping or leaving a terminal status is refused."""
    record = ActionRecord(act("a", "pick", BlockingType.HARD), 0)
    with pytest.raises(ValueError, match="WAITING → RUNNING"):
        record.move(ActionStatus.RUNNING)
    record.move(ActionStatus.INITIALIZING)
    record.move(ActionStatus.RUNNING)
    record.move(ActionStatus.FINISHED)
    with pytest.raises(ValueError, match="FINISHED → FAILED"):
        record.move(ActionStatus.FAILED)
    with pytest.raises(ValueError):
        ActionRecord(act("b", "pick", BlockingType.HARD)).move(ActionStatus.PAUSED)


def test_progress_records_only_released_actions_and_shrinks(headers: HeaderFactory) -> None:
    """Horizon actions are not recorded; reaching nodes shrinks the states; end() fails open actions."""
    progress = _running(
        headers,
        last=3,
        base_end=2,
        node_actions={1: [act("a1", "pick", BlockingType.HARD)], 3: [act("a3", "drop", BlockingType.HARD)]},
    )
    assert list(progress.actions) == ["a1"]
    assert [s.node_id for s in progress.node_states()] == ["n1", "n2", "n3"]
    progress.reach(progress.nodes[0])
    assert progress.last_node.node_id == "n1"
    assert [s.edge_id for s in progress.edge_states()] == ["e1", "e2"]
    with pytest.raises(ValueError, match="not the next node"):
        progress.reach(node(3))
    ended = progress.end(ProgressStatus.FAILED, "boom")
    assert [r.action_id for r in ended] == ["a1"]
    assert progress.actions["a1"].status is ActionStatus.FAILED and progress.actions["a1"].result == "boom"
    assert progress.node_states() == [] and progress.idle
