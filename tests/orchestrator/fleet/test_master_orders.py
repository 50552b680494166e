"""Orders through a real Mosquitto to a fake robot: confirmation, resends, updates, cancel, progress."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest
from fake_robot import FakeRobot, StateWaiter, next_event

from interfaces.clock import VirtualClock
from interfaces.vda5050 import ActionStatus, Drop, ErrorType, Order, Pick, make_action
from orchestrator.fleet import (
    FleetMaster,
    Leg,
    LegError,
    NodePassed,
    OrderConfirmed,
    OrderEnded,
    OrderNotConfirmed,
    OrderNotConfirmedError,
    OrderRejectedError,
    OrderStateError,
    OrderStatus,
    UnknownRobotError,
)

MakeRobot = Callable[..., Awaitable[FakeRobot]]


def _body(order: Order) -> dict:  # type: ignore[type-arg]
    """The order without its header: what must stay identical across resends."""
    return order.model_dump(exclude={"header_id", "timestamp"})


async def _running(master: FleetMaster, robot: FakeRobot, leg: Leg):  # type: ignore[no-untyped-def]
    """Send ``leg``, let the robot accept it and confirm it with a state; the handle and the order."""
    handle = await master.send_order(leg)
    order = await robot.next_order()
    robot.accept(order)
    await robot.publish_state()
    await asyncio.wait_for(handle.confirmed, 5)
    return handle, order


async def test_only_a_state_with_the_new_ids_confirms(
    master: FleetMaster, make_robot: MakeRobot, seen: StateWaiter
) -> None:
    """An order stays unconfirmed while states report the old order; the state carrying the new
    orderId/orderUpdateId confirms it (OrderConfirmed, one attempt)."""
    robot = await make_robot("r1")
    with master.subscribe() as events:
        handle = await master.send_order(Leg("r1", ("S", "A", "C")))
        order = await robot.next_order()
        assert (order.order_id, order.order_update_id) == (handle.order_id, 0)
        assert order.manufacturer == "acme" and order.serial_number == "r1"
        await robot.publish_state()  # still the old (empty) order
        await seen.wait("r1", 1)
        assert not handle.confirmed.done()
        robot.accept(order)
        await robot.publish_state()
        confirmed = await asyncio.wait_for(handle.confirmed, 5)
        assert confirmed == await next_event(events, OrderConfirmed)
        assert (confirmed.order_id, confirmed.order_update_id, confirmed.attempts) == (order.order_id, 0, 1)


async def test_unconfirmed_order_is_resent_identically_then_given_up(
    master: FleetMaster, make_robot: MakeRobot, clock: VirtualClock
) -> None:
    """Without a confirming state the identical order (same ids, new header) is resent after each
    timeout; after max_resends the handle fails with OrderNotConfirmedError and the run ends UNCONFIRMED."""
    robot = await make_robot("r1")
    with master.subscribe() as events:
        handle = await master.send_order(Leg("r1", ("S", "A"), actions={"A": [make_action(Drop())]}))
        first = await robot.next_order()
        copies = []
        for _ in range(master.options.max_resends):
            await clock.run_for(master.options.confirm_timeout_s)
            copies.append(await robot.next_order())
        for copy in copies:
            assert _body(copy) == _body(first)
        assert [c.header_id for c in copies] == [first.header_id + 1, first.header_id + 2]
        assert copies[0].timestamp > first.timestamp
        await clock.run_for(master.options.confirm_timeout_s)
        with pytest.raises(OrderNotConfirmedError, match="after 3 sendings"):
            await asyncio.wait_for(handle.confirmed, 5)
        gave_up = await next_event(events, OrderNotConfirmed)
        assert gave_up.attempts == 3
        ended = await asyncio.wait_for(handle.finished, 5)
        assert ended.status is OrderStatus.UNCONFIRMED
    assert robot.orders_in.empty()


async def test_a_resend_confirmed_late_stops_the_resends(
    master: FleetMaster, make_robot: MakeRobot, clock: VirtualClock
) -> None:
    """The robot misses the first copy, takes the resend, confirms: no further copies come."""
    robot = await make_robot("r1")
    handle = await master.send_order(Leg("r1", ("S", "A")))
    await robot.next_order()  # lost, say
    await clock.run_for(master.options.confirm_timeout_s)
    robot.accept(await robot.next_order())
    await robot.publish_state()
    assert (await asyncio.wait_for(handle.confirmed, 5)).attempts == 2
    await clock.run_for(10 * master.options.confirm_timeout_s)
    assert robot.orders_in.empty()


async def test_refused_order_fails_with_the_robots_reason(master: FleetMaster, make_robot: MakeRobot) -> None:
    """An orderError naming the order refuses it: OrderRejectedError carries the robot's description."""
    robot = await make_robot("r1")
    handle = await master.send_order(Leg("r1", ("S", "A")))
    order = await robot.next_order()
    robot.refuse(order, ErrorType.ORDER_ERROR, "not near the first node")
    await robot.publish_state()
    with pytest.raises(OrderRejectedError, match="orderError: not near the first node"):
        await asyncio.wait_for(handle.confirmed, 5)
    assert (await asyncio.wait_for(handle.finished, 5)).status is OrderStatus.REJECTED


async def test_nodes_passed_and_order_finished(master: FleetMaster, make_robot: MakeRobot) -> None:
    """Every node is reported once and in order, even when a state skips one; the order ends FINISHED
    when no nodes are left and its actions finished, FAILED when one failed."""
    robot = await make_robot("r1")
    drop = make_action(Drop(), action_id="a-drop")
    with master.subscribe() as events:
        handle, _ = await _running(master, robot, Leg("r1", ("S", "A", "C", "Y"), actions={"Y": [drop]}))
        assert (await next_event(events, NodePassed)).node_id == "S"
        robot.pass_node()
        robot.pass_node()  # A and C between two states
        await robot.publish_state()
        passed = [await next_event(events, NodePassed) for _ in range(2)]
        assert [(p.node_id, p.sequence_id) for p in passed] == [("A", 2), ("C", 4)]
        robot.pass_node()
        robot.set_action("a-drop", ActionStatus.RUNNING)
        await robot.publish_state()
        assert (await asyncio.wait_for(handle.reached("Y"), 5)).sequence_id == 6
        assert not handle.finished.done()
        robot.set_action("a-drop", ActionStatus.FINISHED)
        await robot.publish_state()
        ended = await asyncio.wait_for(handle.finished, 5)
        assert ended == await next_event(events, OrderEnded)
        assert ended.status is OrderStatus.FINISHED and handle.passed == ["S", "A", "C", "Y"]
        handle2, _ = await _running(
            master, robot, Leg("r1", ("Y", "S"), actions={"S": [make_action(Pick(), action_id="p")]})
        )
        robot.pass_node()
        robot.set_action("p", ActionStatus.FAILED)
        await robot.publish_state()
        ended2 = await asyncio.wait_for(handle2.finished, 5)
        assert ended2.status is OrderStatus.FAILED and ended2.failed_actions == ("p",)


async def test_update_only_at_the_decision_point(master: FleetMaster, make_robot: MakeRobot) -> None:
    """An update must start at the last base node; it keeps the orderId, raises orderUpdateId by one,
    repeats the decision point identically, and is confirmed only by a state with the new update id.
    A second update before that confirmation is refused."""
    robot = await make_robot("r1")
    handle, order = await _running(master, robot, Leg("r1", ("S", "A", "C", "Y"), released=2))
    with pytest.raises(LegError, match="decision point 'A'"):
        await master.update_order(Leg("r1", ("C", "Y")))
    update = await master.update_order(Leg("r1", ("A", "C", "Y", "S"), released=3))
    sent = await robot.next_order()
    assert (sent.order_id, sent.order_update_id) == (order.order_id, 1)
    assert sent.nodes[0] == order.nodes[1]
    assert [n.sequence_id for n in sent.nodes] == [2, 4, 6, 8]
    with pytest.raises(OrderStateError, match="not confirmed yet"):
        await master.update_order(Leg("r1", ("C", "Y")))
    await robot.publish_state()  # still update 0
    robot.accept_update(sent)
    await robot.publish_state()
    assert (await asyncio.wait_for(update.confirmed, 5)).order_update_id == 1
    assert update.finished is handle.finished
    for _ in range(4):
        robot.pass_node()
    await robot.publish_state()
    assert (await asyncio.wait_for(handle.finished, 5)).status is OrderStatus.FINISHED
    assert handle.passed == ["S", "A", "C", "Y", "S"]


async def test_no_update_after_cancel(
    master: FleetMaster, make_robot: MakeRobot, clock: VirtualClock
) -> None:
    """After cancelOrder no update of that order is sent (OrderStateError: a new order is needed), an
    unconfirmed update is never resent, and the order ends CANCELLED once the robot reports the
    cancel; the next order gets a new orderId."""
    robot = await make_robot("r1")
    handle, order = await _running(master, robot, Leg("r1", ("S", "A", "C"), released=2))
    update = await master.update_order(Leg("r1", ("A", "C")))
    await robot.next_order()  # the robot never confirms it
    cancel = await master.cancel("r1")
    with pytest.raises(OrderStateError, match="cancelled before a state confirmed it"):
        await asyncio.wait_for(update.confirmed, 5)
    with pytest.raises(OrderStateError, match="was cancelled: send a new order"):
        await master.update_order(Leg("r1", ("A", "C")))
    with pytest.raises(OrderStateError, match=f"still has order {order.order_id}"):
        await master.send_order(Leg("r1", ("A", "S")))
    instant = await robot.next_instant()
    assert instant.actions[0].action_type == "cancelOrder"
    robot.set_action(cancel.action_id, ActionStatus.RUNNING, "cancelOrder")
    await robot.publish_state()
    await asyncio.wait_for(cancel.reported, 5)
    await clock.run_for(5 * master.options.confirm_timeout_s)
    assert robot.orders_in.empty() and robot.instant_in.empty()  # nothing was resent
    robot.node_states.clear()
    robot.edge_states.clear()
    robot.set_action(cancel.action_id, ActionStatus.FINISHED, "cancelOrder")
    await robot.publish_state()
    assert (await asyncio.wait_for(handle.finished, 5)).status is OrderStatus.CANCELLED
    assert (await asyncio.wait_for(cancel.done, 5)).status == "FINISHED"
    fresh = await master.send_order(Leg("r1", ("A", "S")))
    assert fresh.order_id != order.order_id and fresh.order_update_id == 0


async def test_new_order_while_busy_and_unknown_robot(master: FleetMaster, make_robot: MakeRobot) -> None:
    """A second new order while the first runs is refused; an unknown robot is refused by name."""
    robot = await make_robot("r1")
    await _running(master, robot, Leg("r1", ("S", "A")))
    with pytest.raises(OrderStateError, match="update or cancel it first"):
        await master.send_order(Leg("r1", ("A", "S")))
    with pytest.raises(UnknownRobotError, match="'r9'"):
        await master.send_order(Leg("r9", ("A", "S")))


async def test_robot_dropping_the_order_abandons_it(master: FleetMaster, make_robot: MakeRobot) -> None:
    """A robot that reports another orderId before ours ended (a restart lost it) ends it ABANDONED."""
    robot = await make_robot("r1")
    handle, _ = await _running(master, robot, Leg("r1", ("S", "A")))
    robot.order_id, robot.node_states, robot.edge_states = "", [], []
    await robot.publish_state()
    ended = await asyncio.wait_for(handle.finished, 5)
    assert ended.status is OrderStatus.ABANDONED and "''" in ended.reason
    with pytest.raises(OrderStateError, match="ended ABANDONED"):  # asked after the end: fails at once
        await asyncio.wait_for(handle.reached("A"), 5)
    assert (await handle.reached("S")).node_id == "S"  # a node it did pass still answers


async def test_horizon_replaced_by_an_update(master: FleetMaster, make_robot: MakeRobot) -> None:
    """Actions on horizon nodes count only once released: an update that replaces the horizon (and
    its action) lets the order finish with the new nodes only."""
    robot = await make_robot("r1")
    drop = make_action(Drop(), action_id="a-horizon-drop")
    handle, _ = await _running(
        master, robot, Leg("r1", ("S", "A", "C", "Y"), actions={"Y": [drop]}, released=2)
    )
    assert "a-horizon-drop" not in robot.action_states
    update = await master.update_order(Leg("r1", ("A", "B")))
    sent = await robot.next_order()
    robot.accept_update(sent)
    robot.pass_node()
    await robot.publish_state()
    await asyncio.wait_for(update.confirmed, 5)
    robot.pass_node()
    await robot.publish_state()
    ended = await asyncio.wait_for(handle.finished, 5)
    assert ended.status is OrderStatus.FINISHED and handle.passed == ["S", "A", "B"]


async def test_stopping_cancels_what_is_still_awaited(master: FleetMaster, make_robot: MakeRobot) -> None:
    """When the master stops, handles still open are cancelled rather than left waiting for ever."""
    await make_robot("r1")
    handle = await master.send_order(Leg("r1", ("S", "A")))
    pause = await master.pause("r1")
    await master.stop()
    for fut in (handle.confirmed, handle.finished, pause.done):
        with pytest.raises(asyncio.CancelledError):
            await fut
