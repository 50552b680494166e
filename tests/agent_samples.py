"""Orders and helpers for the robot agent's tests (``from agent_samples import line_order, ...``).

Orders run along the x axis of map ``m``: node ``n{i}`` at ``(i * spacing, 0)``, sequenceIds 0, 2, 4...
for nodes and 1, 3, 5... for edges, as master control numbers them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from interfaces.clock import VirtualClock
from interfaces.vda5050 import (
    Action,
    BlockingType,
    Edge,
    HeaderFactory,
    InstantActions,
    Node,
    NodePosition,
    Order,
)

MAP = "m"
MANUFACTURER = "acme"
SERIAL = "r1"


def master_headers(clock: VirtualClock | None = None, serial: str = SERIAL) -> HeaderFactory:
    """The headers master control uses for robot ``acme``/``serial``."""
    return HeaderFactory(MANUFACTURER, serial, "2.1.0", clock=clock or VirtualClock(1_700_000_000.0))


def node(i: int, *, released: bool = True, actions: Sequence[Action] = (), spacing: float = 2.0) -> Node:
    """Node ``n{i}`` at ``(i * spacing, 0)`` with sequenceId ``2 i``."""
    return Node(
        node_id=f"n{i}",
        sequence_id=2 * i,
        released=released,
        node_position=NodePosition(x=i * spacing, y=0.0, map_id=MAP, allowed_deviation_xy=0.3),
        actions=list(actions),
    )


def edge(i: int, *, released: bool = True, actions: Sequence[Action] = ()) -> Edge:
    """Edge ``e{i}`` from ``n{i}`` to ``n{i+1}`` with sequenceId ``2 i + 1``."""
    return Edge(
        edge_id=f"e{i}",
        sequence_id=2 * i + 1,
        released=released,
        start_node_id=f"n{i}",
        end_node_id=f"n{i + 1}",
        actions=list(actions),
    )


def line_order(
    headers: HeaderFactory,
    *,
    order_id: str = "o-1",
    update: int = 0,
    first: int = 0,
    last: int = 2,
    base_end: int | None = None,
    node_actions: Mapping[int, Sequence[Action]] | None = None,
    edge_actions: Mapping[int, Sequence[Action]] | None = None,
    spacing: float = 2.0,
) -> Order:
    """Nodes ``first..last``; released up to ``base_end`` (default: all)."""
    end = last if base_end is None else base_end
    nodes = [
        node(i, released=i <= end, actions=(node_actions or {}).get(i, ()), spacing=spacing)
        for i in range(first, last + 1)
    ]
    edges = [
        edge(i, released=i + 1 <= end, actions=(edge_actions or {}).get(i, ())) for i in range(first, last)
    ]
    return headers.make(Order, order_id=order_id, order_update_id=update, nodes=nodes, edges=edges)


def act(action_id: str, action_type: str, blocking: BlockingType, **params: object) -> Action:
    """An action with parameters given as keywords."""
    return Action.model_validate(
        {
            "actionId": action_id,
            "actionType": action_type,
            "blockingType": blocking.value,
            "actionParameters": [{"key": k, "value": v} for k, v in params.items()] or None,
        }
    )


def instant(headers: HeaderFactory, *actions: Action) -> InstantActions:
    """An ``instantActions`` message."""
    return headers.make(InstantActions, actions=list(actions))


async def run_until(clock: VirtualClock, predicate: Callable[[], bool], limit: float = 120.0) -> float:
    """Step virtual time by 0.05 s until ``predicate()`` holds; the virtual seconds it took.

    Fails the test when ``limit`` virtual seconds pass first.
    """
    start = clock.monotonic()
    await clock.settle()
    while not predicate():
        if clock.monotonic() - start > limit:
            raise AssertionError(f"condition not met within {limit} virtual seconds")
        await clock.run_for(0.05)
    return clock.monotonic() - start
