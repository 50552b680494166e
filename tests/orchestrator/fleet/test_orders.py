"""Plan legs → VDA 5050 order nodes/edges: positions, maps, sequence ids, base/horizon, stitching."""

from __future__ import annotations

import math

import pytest
from vda5050_samples import OfficialSchemas, headers

from interfaces.vda5050 import (
    Drop,
    EnterLift,
    ExitLift,
    Order,
    Pick,
    TopicKind,
    make_action,
    to_json,
)
from maps.model import FloorFrame, Site
from maps.routing import Router
from orchestrator.fleet import Leg, LegError, OrderBuilder
from orchestrator.fleet.orders import OrderParts


def _order(parts: OrderParts, update: int = 0) -> Order:
    return headers().make(
        Order, order_id="o-1", order_update_id=update, nodes=list(parts.nodes), edges=list(parts.edges)
    )


def test_order_from_a_campus_route_validates(campus: Site, schemas: OfficialSchemas) -> None:
    """A cart route between two places on the sample campus becomes an order that validates against
    the official schema: nodes even and edges odd, positions on the outdoor map, edges of the map."""
    route = Router(campus, "cart").route("post_station", next(p for p in campus.places if "stop" in p))
    drop = make_action(Drop(load_id="parcel-1"), action_id="a-drop")
    leg = Leg("cart-01", route.path, actions={route.path[-1]: [drop]}, released=3, end_theta=math.pi / 2)
    parts = OrderBuilder(campus).build(leg)
    schemas.check(TopicKind.ORDER, to_json(_order(parts)))
    assert [n.node_id for n in parts.nodes] == route.path
    assert [n.sequence_id for n in parts.nodes] == list(range(0, 2 * len(route.path), 2))
    assert [e.sequence_id for e in parts.edges] == list(range(1, 2 * len(route.path) - 1, 2))
    assert [e.edge_id for e in parts.edges] == [s.ref for s in route.steps]
    for node in parts.nodes:
        position = node.node_position
        assert position is not None and position.map_id == "outdoor"
        assert (position.x, position.y) == (campus.nodes[node.node_id].x, campus.nodes[node.node_id].y)
    assert parts.nodes[-1].actions == [drop] and parts.nodes[-1].node_position.theta == math.pi / 2  # type: ignore[union-attr]
    assert [e.length for e in parts.edges] == pytest.approx([s.length_m for s in route.steps])


def test_base_and_horizon(small_site: Site) -> None:
    """The first ``released`` nodes are the base; an edge is released when the node it ends at is."""
    parts = OrderBuilder(small_site).build(Leg("r1", ("S", "A", "B", "C"), released=2))
    assert [n.released for n in parts.nodes] == [True, True, False, False]
    assert [e.released for e in parts.edges] == [True, False, False]
    assert parts.last_base_node.node_id == "A"
    full = OrderBuilder(small_site).build(Leg("r1", ("S", "A")))
    assert all(n.released for n in full.nodes) and all(e.released for e in full.edges)


def test_indoor_route_through_a_lift_changes_map(small_site: Site, schemas: OfficialSchemas) -> None:
    """Indoor nodes sit on their floor's map in the floor's frame; a lift ride is an edge between the
    landings and the node after it is on the arrival floor."""
    small_site.floors["H3"] = small_site.floors["H3"].__class__(
        "H3", "H", "3F", 7.2, FloorFrame(x=200.0, y=20.0, yaw=math.pi / 2)
    )
    route = Router(small_site, "indoor").route("mailroom", "office")
    assert route.lifts == ["LA"]
    enter = make_action(EnterLift(building="H", lift="LA", floor="H1", session_id="s-1"), action_id="e")
    leave = make_action(ExitLift(building="H", lift="LA", floor="H3"), action_id="x")
    leg = Leg("r2", route.path, actions={"h1": [enter], "h3a": [leave]})
    parts = OrderBuilder(small_site).build(leg)
    schemas.check(TopicKind.ORDER, to_json(_order(parts)))
    maps = {n.node_id: n.node_position.map_id for n in parts.nodes}  # type: ignore[union-attr]
    assert maps == {"h1": "H1", "h3a": "H3", "h3b": "H3", "off": "H3"}
    lift_edge = parts.edges[0]
    assert lift_edge.edge_id == "lift:LA:h1:h3a" and lift_edge.trajectory is None
    h3b = next(n for n in parts.nodes if n.node_id == "h3b").node_position
    assert h3b is not None and (h3b.x, h3b.y) == pytest.approx((0.0, -20.0))  # (220, 20) in the turned frame


def test_bent_edges_carry_their_shape(small_site: Site, schemas: OfficialSchemas) -> None:
    """An edge with intermediate points gets a degree-1 NURBS through them, reversed when driven
    backwards, with clamped chord-length knots."""
    parts = OrderBuilder(small_site).build(Leg("r1", ("B", "S")))
    trajectory = parts.edges[0].trajectory
    assert trajectory is not None and trajectory.degree == 1
    assert [(p.x, p.y) for p in trajectory.control_points] == [(100.0, -50.0), (0.0, -50.0), (0.0, 0.0)]
    assert trajectory.knot_vector == pytest.approx([0.0, 0.0, 100 / 150, 1.0, 1.0])
    schemas.check(TopicKind.ORDER, to_json(_order(parts)))


def test_stitching_at_the_decision_point(small_site: Site, schemas: OfficialSchemas) -> None:
    """An update repeats the decision point exactly (id, sequence id, actions) and continues its
    sequence ids; the new horizon follows."""
    builder = OrderBuilder(small_site)
    pick = make_action(Pick(), action_id="a-pick")
    first = builder.build(Leg("r1", ("S", "A", "C", "Y"), actions={"A": [pick]}, released=2))
    drop = make_action(Drop(), action_id="a-drop")
    update = builder.stitch(first, Leg("r1", ("A", "C", "Y", "S"), actions={"Y": [drop]}, released=3))
    assert update.nodes[0] == first.nodes[1]
    assert [n.sequence_id for n in update.nodes] == [2, 4, 6, 8]
    assert [e.sequence_id for e in update.edges] == [3, 5, 7]
    assert [n.released for n in update.nodes] == [True, True, True, False]
    schemas.check(TopicKind.ORDER, to_json(_order(update, 1)))


@pytest.mark.parametrize(
    ("path", "actions", "message"),
    [
        (("C", "Y"), {}, "must start at the decision point 'A'"),
        (("A", "C"), {0: [make_action(Drop(), action_id="z")]}, "keeps its actions"),
        (("A", "C"), {"C": [make_action(Drop(), action_id="a-pick")]}, "already used in this order: a-pick"),
    ],
)
def test_stitching_refuses(small_site: Site, path: tuple[str, ...], actions: dict, message: str) -> None:  # type: ignore[type-arg]
    """An update that does not start at the decision point, adds actions to it, or reuses an action id
    of the order is refused with a one-line LegError."""
    builder = OrderBuilder(small_site)
    first = builder.build(
        Leg("r1", ("S", "A", "C"), actions={"S": [make_action(Pick(), action_id="a-pick")]}, released=2)
    )
    with pytest.raises(LegError, match=message):
        builder.stitch(first, Leg("r1", path, actions=actions))


@pytest.mark.parametrize(
    ("leg", "message"),
    [
        (Leg("r1", ()), "at least one node"),
        (Leg("r1", ("S", "nowhere")), "unknown map nodes 'nowhere'"),
        (Leg("r1", ("S", "C")), "no map edge or lift leads from 'S' to 'C'"),
        (Leg("r1", ("C", "B")), "no map edge or lift leads from 'C' to 'B'"),  # one-way B → C
        (Leg("r1", ("S", "A"), released=0), "released must be 1..2"),
        (Leg("r1", ("S", "A", "S"), actions={"S": [make_action(Pick())]}), "2 times in the path"),
        (Leg("r1", ("S", "A"), actions={5: [make_action(Pick())]}), "index 5 is outside"),
        (
            Leg(
                "r1",
                ("S", "A"),
                actions={0: [make_action(Pick(), action_id="x")], 1: [make_action(Pick(), action_id="x")]},
            ),
            "more than once",
        ),
        (Leg("r1", ("S", "A"), end_theta=4.0), "outside"),
    ],
)
def test_bad_legs_are_refused(small_site: Site, leg: Leg, message: str) -> None:
    """Legs that cannot be driven on the map are refused with a one-line LegError naming the robot."""
    with pytest.raises(LegError, match=message):
        OrderBuilder(small_site).build(leg)
