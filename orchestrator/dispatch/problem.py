"""The frozen routing problem: a depot, customers with time windows, optional pickup-delivery pairs.

Classical convention of the Solomon and Li & Lim benchmarks: real Euclidean distances (not rounded),
travel time equals distance, objective = (number of vehicles, total distance) compared
lexicographically. Node ``i`` has id ``i``; node 0 is the depot.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class Node:
    """A depot or customer: position, demand, time window ``[ready, due]`` (service start), service time.

    ``pickup``/``delivery`` pair a delivery with its pickup (Li & Lim): a pickup names its delivery in
    ``delivery``, a delivery names its pickup in ``pickup``; 0 means "not paired".
    """

    id: int
    x: float
    y: float
    demand: int
    ready: float
    due: float
    service: float
    pickup: int = 0
    delivery: int = 0


@dataclass(frozen=True)
class Problem:
    """A VRPTW or PDPTW instance: ``nodes[0]`` is the depot, ``vehicles`` identical ones of ``capacity``.

    Raises ``ValueError`` with one sentence when the data is inconsistent (ids not 0..n in order, a
    window that closes before it opens, a pair whose halves do not name each other).
    """

    name: str
    nodes: tuple[Node, ...]
    vehicles: int
    capacity: int
    dist: tuple[tuple[float, ...], ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        _validate(self)
        rows = tuple(tuple(math.hypot(a.x - b.x, a.y - b.y) for b in self.nodes) for a in self.nodes)
        object.__setattr__(self, "dist", rows)

    @property
    def depot(self) -> Node:
        """The depot (node 0)."""
        return self.nodes[0]

    @property
    def customers(self) -> tuple[Node, ...]:
        """Every node but the depot."""
        return self.nodes[1:]

    @property
    def pairs(self) -> tuple[tuple[int, int], ...]:
        """``(pickup, delivery)`` id pairs, in pickup order; empty for a VRPTW."""
        return tuple((n.id, n.delivery) for n in self.customers if n.delivery)

    @property
    def is_pdptw(self) -> bool:
        """Whether any customer belongs to a pickup-delivery pair."""
        return any(n.pickup or n.delivery for n in self.customers)


def _validate(problem: Problem) -> None:
    nodes = problem.nodes
    if len(nodes) < 1:
        raise ValueError(f"{problem.name}: a problem needs at least a depot")
    if problem.vehicles < 1 or problem.capacity < 0:
        raise ValueError(f"{problem.name}: vehicles must be >= 1 and capacity >= 0")
    for index, node in enumerate(nodes):
        if node.id != index:
            raise ValueError(f"{problem.name}: node {index} has id {node.id}; ids must be 0..n in order")
        if node.due < node.ready:
            raise ValueError(f"{problem.name}: node {node.id} has due {node.due} before ready {node.ready}")
        if node.service < 0:
            raise ValueError(f"{problem.name}: node {node.id} has a negative service time")
    for node in nodes[1:]:
        _validate_pair(problem.name, nodes, node)


def _validate_pair(name: str, nodes: tuple[Node, ...], node: Node) -> None:
    if node.pickup and node.delivery:
        raise ValueError(f"{name}: node {node.id} is both a pickup and a delivery")
    partner_id = node.pickup or node.delivery
    if not partner_id:
        return
    if not 0 < partner_id < len(nodes):
        raise ValueError(f"{name}: node {node.id} names partner {partner_id}, which does not exist")
    partner = nodes[partner_id]
    if node.delivery and partner.pickup != node.id:
        raise ValueError(f"{name}: pickup {node.id} names delivery {partner_id}, which does not name it back")
    if node.pickup and partner.delivery != node.id:
        raise ValueError(f"{name}: delivery {node.id} names pickup {partner_id}, which does not name it back")
