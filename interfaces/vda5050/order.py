"""``order`` and ``instantActions`` (master control → AGV), VDA 5050 2.1 §6.6/§6.8, field for field.

Schemas: ``order.schema`` and ``instantActions.schema`` of the 2.1.0 release. Everything the schema
marks optional is ``None`` by default and left out of the JSON (``to_json`` drops ``None``).
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any

from pydantic import Field

from interfaces.vda5050.base import ProtocolVersion, Timestamp, Vda5050Model

_PI_THETA = 3.14159265359  # the schema's bound for theta/orientation (a little above math.pi)
_PI_DEVIATION = 3.141592654  # the schema's bound for allowedDeviationTheta

ParameterValue = bool | int | float | str | list[Any] | dict[str, Any]
"""What an ``actionParameter`` value may be (the schema: array, boolean, number, string, object)."""


class BlockingType(StrEnum):
    """Whether an action may run while driving or beside other actions (VDA 5050 §6.8)."""

    NONE = "NONE"  # parallel to everything, driving included
    SOFT = "SOFT"  # parallel to other actions, but the AGV stands still
    HARD = "HARD"  # nothing else runs meanwhile, no driving


class OrientationType(StrEnum):
    """How an edge's ``orientation`` is meant; ``TANGENTIAL`` when absent."""

    GLOBAL = "GLOBAL"
    TANGENTIAL = "TANGENTIAL"


class CorridorRefPoint(StrEnum):
    """Which part of the vehicle a corridor bounds."""

    KINEMATICCENTER = "KINEMATICCENTER"
    CONTOUR = "CONTOUR"


class ActionParameter(Vda5050Model):
    """One ``{key, value}`` parameter of an action."""

    key: str
    value: ParameterValue


class Action(Vda5050Model):
    """An action on a node, an edge, or sent instantly (``definitions/action`` of the schema)."""

    action_type: str
    action_id: str
    blocking_type: BlockingType
    action_description: str | None = None
    action_parameters: list[ActionParameter] | None = None


class NodePosition(Vda5050Model):
    """Where a node is on a map (world coordinates; each floor its own ``mapId``)."""

    x: float
    y: float
    map_id: str
    theta: float | None = Field(default=None, ge=-_PI_THETA, le=_PI_THETA)
    allowed_deviation_xy: float | None = Field(
        default=None, ge=0, validation_alias="allowedDeviationXY", serialization_alias="allowedDeviationXY"
    )
    allowed_deviation_theta: float | None = Field(default=None, ge=-_PI_DEVIATION, le=_PI_DEVIATION)
    map_description: str | None = None


class ControlPoint(Vda5050Model):
    """One NURBS control point; ``weight`` 1.0 when absent."""

    x: float
    y: float
    weight: float | None = Field(default=None, ge=0)


class Trajectory(Vda5050Model):
    """The NURBS an edge follows: ``len(knot_vector) == len(control_points) + degree + 1``."""

    degree: int = Field(ge=1)
    knot_vector: list[Annotated[float, Field(ge=0.0, le=1.0)]]
    control_points: list[ControlPoint]


class Corridor(Vda5050Model):
    """How far (m) the vehicle may leave its trajectory left and right (new in 2.1)."""

    left_width: float = Field(ge=0)
    right_width: float = Field(ge=0)
    corridor_ref_point: CorridorRefPoint | None = None


class Node(Vda5050Model):
    """A node of an order: base (``released``) or horizon."""

    node_id: str
    sequence_id: int = Field(ge=0)
    released: bool
    actions: list[Action]
    node_description: str | None = None
    node_position: NodePosition | None = None


class Edge(Vda5050Model):
    """A directed edge of an order between two nodes."""

    edge_id: str
    sequence_id: int = Field(ge=0)
    released: bool
    start_node_id: str
    end_node_id: str
    actions: list[Action]
    edge_description: str | None = None
    max_speed: float | None = None
    max_height: float | None = None
    min_height: float | None = None
    orientation: float | None = Field(default=None, ge=-_PI_THETA, le=_PI_THETA)
    orientation_type: OrientationType | None = None
    direction: str | None = None
    rotation_allowed: bool | None = None
    max_rotation_speed: float | None = None
    length: float | None = None
    trajectory: Trajectory | None = None
    corridor: Corridor | None = None


class Order(Vda5050Model):
    """The ``order`` message: nodes and edges to traverse, with their actions (VDA 5050 §6.6)."""

    header_id: int
    timestamp: Timestamp
    version: ProtocolVersion
    manufacturer: str
    serial_number: str
    order_id: str
    order_update_id: int = Field(ge=0)
    nodes: list[Node]
    edges: list[Edge]
    zone_set_id: str | None = None

    def actions(self) -> list[Action]:
        """Every action of the order, nodes' and edges' alike, in sequence order."""
        parts: list[Node | Edge] = sorted([*self.nodes, *self.edges], key=lambda p: p.sequence_id)
        return [action for part in parts for action in part.actions]


class InstantActions(Vda5050Model):
    """The ``instantActions`` message: actions to run at once, outside any order (VDA 5050 §6.8)."""

    header_id: int
    timestamp: Timestamp
    version: ProtocolVersion
    manufacturer: str
    serial_number: str
    actions: list[Action]
