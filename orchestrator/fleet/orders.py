"""Plan legs → VDA 5050 order nodes and edges on the campus graph. Pure: no I/O, no clock.

A ``Leg`` is what the dispatcher hands over: a robot, the map node ids it drives through (a route's
``path`` from ``maps.routing``), the actions to run at nodes, and how many leading nodes are released
(the *base*; the rest is the *horizon*, planned but not yet to be driven, VDA 5050 §5.2).

``OrderBuilder(site)`` turns a leg into ``Node``/``Edge`` lists:

- node positions in the node's map: outdoor nodes on the outdoor map (site ENU metres), indoor nodes on
  their floor's map (``mapId`` = the floor id, coordinates in the floor's frame);
- consecutive nodes joined by the map edge between them (its id, length, speed limit, and its shape as
  a degree-1 NURBS when it bends), or by a lift ride (edge id ``lift:<lift>:<from>:<to>``, the node
  after it on the arrival floor's map);
- sequence ids: nodes even, edges odd, counting on from ``first_sequence_id`` (VDA 5050 §6.6.1);
- an edge is released when the node it ends at is.

For an order update (§6.6.2) the builder *stitches*: the update starts with the previous order's last
base node, repeated exactly as it was sent (same nodeId, sequenceId, actions and action ids, so the
robot can tell it apart from new work), and the new nodes continue its sequence ids.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from itertools import accumulate, pairwise

from interfaces.vda5050 import Action, ControlPoint, Edge, Node, NodePosition, Trajectory
from interfaces.vda5050 import duplicate_action_ids as _duplicates
from maps.model import OUTDOOR, Lift, Site, edge_length, edge_points
from maps.model import Edge as MapEdge
from orchestrator.fleet.errors import LegError

ActionsAt = Mapping[int | str, Sequence[Action]]
"""Actions by node: an ``int`` key is an index into the leg's path, a ``str`` key a node id (which
must then occur once in the path)."""


@dataclass(frozen=True, slots=True)
class Leg:
    """A robot's stretch of a plan: ``path`` (map node ids), actions at nodes, ``released`` base nodes.

    ``released=None`` releases every node. ``end_theta`` (radians) is the heading wanted at the last
    node, if any.
    """

    robot: str
    path: tuple[str, ...]
    actions: ActionsAt = field(default_factory=dict)
    released: int | None = None
    end_theta: float | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "path", tuple(self.path))
        object.__setattr__(self, "actions", {k: tuple(v) for k, v in dict(self.actions).items()})

    @property
    def base_size(self) -> int:
        """How many leading nodes are released."""
        return len(self.path) if self.released is None else self.released


@dataclass(frozen=True, slots=True)
class OrderParts:
    """The nodes and edges of an order (or of an update, starting with the stitching node)."""

    nodes: tuple[Node, ...]
    edges: tuple[Edge, ...]

    @property
    def last_base_node(self) -> Node:
        """The decision point: the last released node."""
        return [n for n in self.nodes if n.released][-1]

    def actions(self) -> list[Action]:
        """Every action of the nodes and edges, in sequence order."""
        parts: list[Node | Edge] = sorted([*self.nodes, *self.edges], key=lambda p: p.sequence_id)
        return [a for p in parts for a in p.actions]


class OrderBuilder:
    """Builds order nodes/edges from legs on one site (build once; the site must not change)."""

    def __init__(
        self,
        site: Site,
        *,
        outdoor_map_id: str = OUTDOOR,
        allowed_deviation_xy: float | None = None,
    ) -> None:
        self.site = site
        self.outdoor_map_id = outdoor_map_id
        self.allowed_deviation_xy = allowed_deviation_xy
        self._edges: dict[tuple[str, str], MapEdge] = {}
        self._lifts: dict[tuple[str, str], Lift] = {}
        self._index()

    def _index(self) -> None:
        """Which map edge (the shortest, when several) or lift joins each ordered pair of nodes."""
        for e in self.site.edges.values():
            pairs = [(e.a, e.b)] if e.oneway else [(e.a, e.b), (e.b, e.a)]
            for pair in pairs:
                old = self._edges.get(pair)
                if old is None or edge_length(self.site, e) < edge_length(self.site, old):
                    self._edges[pair] = e
        for lift in self.site.lifts.values():
            for a in lift.landings.values():
                for b in lift.landings.values():
                    if a != b:
                        self._lifts.setdefault((a, b), lift)

    # ---- public ----------------------------------------------------------------------------------

    def build(self, leg: Leg, *, first_sequence_id: int = 0) -> OrderParts:
        """The nodes and edges of a new order for ``leg``."""
        self._check(leg)
        nodes = [self._node(leg, i, first_sequence_id + 2 * i) for i in range(len(leg.path))]
        edges = [self._edge(leg, i, first_sequence_id + 2 * i + 1) for i in range(len(leg.path) - 1)]
        return _checked(OrderParts(tuple(nodes), tuple(edges)))

    def stitch(self, previous: OrderParts, leg: Leg) -> OrderParts:
        """The nodes and edges of an update continuing ``previous`` at its decision point with ``leg``.

        ``leg.path[0]`` must be the decision point's node id and carry no actions of its own.
        """
        point = previous.last_base_node
        if not leg.path or leg.path[0] != point.node_id:
            first = leg.path[0] if leg.path else "nothing"
            raise LegError(
                f"robot {leg.robot}: an update must start at the decision point {point.node_id!r} "
                f"(sequence {point.sequence_id}), not at {first!r}"
            )
        self._check(leg)
        if self._actions_at(leg, 0):
            raise LegError(f"robot {leg.robot}: the decision point {point.node_id!r} keeps its actions")
        seq0 = point.sequence_id
        nodes = [point] + [self._node(leg, i, seq0 + 2 * i) for i in range(1, len(leg.path))]
        edges = [self._edge(leg, i, seq0 + 2 * i + 1) for i in range(len(leg.path) - 1)]
        ids = {a.action_id for a in previous.actions()} - {a.action_id for a in point.actions}
        reused = sorted(ids & {a.action_id for n in nodes[1:] for a in n.actions})
        if reused:
            raise LegError(f"robot {leg.robot}: action ids already used in this order: {', '.join(reused)}")
        return _checked(OrderParts(tuple(nodes), tuple(edges)))

    def map_of(self, node_id: str) -> str:
        """The ``mapId`` of a node: its floor id, or the outdoor map id."""
        floor = self.site.nodes[node_id].floor
        return self.outdoor_map_id if floor is None else floor

    def map_xy(self, node_id: str) -> tuple[float, float]:
        """The node's coordinates on its own map (floor frame indoors, site ENU outdoors)."""
        node = self.site.nodes[node_id]
        if node.floor is None:
            return node.x, node.y
        return self.site.floors[node.floor].frame.to_floor(node.x, node.y)

    # ---- parts -----------------------------------------------------------------------------------

    def _check(self, leg: Leg) -> None:
        if not leg.path:
            raise LegError(f"robot {leg.robot}: a leg needs at least one node")
        unknown = [n for n in leg.path if n not in self.site.nodes]
        if unknown:
            raise LegError(f"robot {leg.robot}: unknown map nodes {', '.join(map(repr, unknown))}")
        if not 1 <= leg.base_size <= len(leg.path):
            raise LegError(f"robot {leg.robot}: released must be 1..{len(leg.path)}, not {leg.released}")
        for key in leg.actions:
            self._index_of(leg, key)
        if leg.end_theta is not None and not -math.pi <= leg.end_theta <= math.pi:
            raise LegError(f"robot {leg.robot}: end_theta {leg.end_theta} is outside [-pi, pi]")

    def _index_of(self, leg: Leg, key: int | str) -> int:
        if isinstance(key, int):
            if not 0 <= key < len(leg.path):
                raise LegError(f"robot {leg.robot}: action index {key} is outside the path")
            return key
        hits = [i for i, n in enumerate(leg.path) if n == key]
        if len(hits) != 1:
            raise LegError(
                f"robot {leg.robot}: actions for node {key!r}, which is {len(hits)} times in the path "
                "(use its index)"
            )
        return hits[0]

    def _actions_at(self, leg: Leg, index: int) -> list[Action]:
        return [a for key, acts in leg.actions.items() if self._index_of(leg, key) == index for a in acts]

    def _node(self, leg: Leg, index: int, sequence_id: int) -> Node:
        node_id = leg.path[index]
        x, y = self.map_xy(node_id)
        last = index == len(leg.path) - 1
        position = NodePosition(
            x=x,
            y=y,
            map_id=self.map_of(node_id),
            theta=leg.end_theta if last else None,
            allowed_deviation_xy=self.allowed_deviation_xy,
        )
        return Node(
            node_id=node_id,
            sequence_id=sequence_id,
            released=index < leg.base_size,
            node_position=position,
            actions=self._actions_at(leg, index),
        )

    def _edge(self, leg: Leg, index: int, sequence_id: int) -> Edge:
        a, b = leg.path[index], leg.path[index + 1]
        released = index + 1 < leg.base_size
        lift = self._lifts.get((a, b))
        if lift is not None and self.site.nodes[a].floor != self.site.nodes[b].floor:
            return Edge(
                edge_id=f"lift:{lift.id}:{a}:{b}",
                sequence_id=sequence_id,
                released=released,
                start_node_id=a,
                end_node_id=b,
                edge_description=f"lift {lift.id}: {self.map_of(a)} → {self.map_of(b)}",
                actions=[],
            )
        edge = self._edges.get((a, b))
        if edge is None:
            raise LegError(f"robot {leg.robot}: no map edge or lift leads from {a!r} to {b!r}")
        return Edge(
            edge_id=edge.id,
            sequence_id=sequence_id,
            released=released,
            start_node_id=a,
            end_node_id=b,
            max_speed=edge.speed_limit,
            length=edge_length(self.site, edge),
            trajectory=self._trajectory(edge, a, b),
            actions=[],
        )

    def _trajectory(self, edge: MapEdge, a: str, b: str) -> Trajectory | None:
        """The edge's bent shape as a degree-1 NURBS on the map both ends lie on (None: straight)."""
        if not edge.geometry or self.map_of(edge.a) != self.map_of(edge.b):
            return None
        points = edge_points(self.site, edge)
        if edge.a != a:
            points.reverse()
        floor = self.site.nodes[a].floor
        if floor is not None:
            points = [self.site.floors[floor].frame.to_floor(x, y) for x, y in points]
        return Trajectory(
            degree=1,
            knot_vector=_knots(points),
            control_points=[ControlPoint(x=x, y=y) for x, y in points],
        )


def _knots(points: list[tuple[float, float]]) -> list[float]:
    """Clamped degree-1 knots with the interior knots at the chord-length fraction of each point."""
    lengths = [math.dist(p, q) for p, q in pairwise(points)]
    total = sum(lengths) or 1.0
    interior = [min(1.0, s / total) for s in accumulate(lengths[:-1])]
    return [0.0, 0.0, *interior, 1.0, 1.0]


def _checked(parts: OrderParts) -> OrderParts:
    """Refuse orders that reuse an action id (VDA 5050 wants them unique)."""
    twice = _duplicates(parts.actions())
    if twice:
        raise LegError(f"action ids used more than once in the order: {', '.join(twice)}")
    return parts
