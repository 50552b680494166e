"""The robot's VDA 5050 ``factsheet`` (§6.15), built from its ``AgentConfig``.

Defaults per kind (the configuration's ``factsheet`` section overrides each): a ``cart`` is an outdoor
parcel cart with lockers, ``indoor`` a small mailroom robot, ``robot`` the indoor/outdoor "robot+".
Every robopost action type is declared (``interfaces.vda5050.agv_actions``) and ``nodePosition`` is
REQUIRED in orders (the agent drives to node positions).
"""

from __future__ import annotations

from dataclasses import dataclass

from interfaces.vda5050 import (
    AgvClass,
    AgvGeometry,
    AgvKinematic,
    Envelope2d,
    Factsheet,
    HeaderFactory,
    LoadSet,
    LoadSpecification,
    LocalizationType,
    MaxArrayLens,
    MaxStringLens,
    NavigationType,
    OptionalParameter,
    PhysicalParameters,
    PolygonPoint,
    ProtocolFeatures,
    ProtocolLimits,
    Support,
    Timing,
    TypeSpecification,
    agv_actions,
)
from robots.agent.config import AgentConfig, RobotKind


@dataclass(frozen=True, slots=True)
class _KindDefaults:
    series_name: str
    description: str
    max_load_mass: float
    speed_max: float
    width: float
    length: float
    height: float
    compartments: int


_DEFAULTS = {  # series, description, load kg, speed m/s, width, length, height m, compartments
    RobotKind.CART: _KindDefaults("robopost-cart", "Outdoor parcel cart", 80, 1.8, 0.8, 1.2, 1.3, 12),
    RobotKind.INDOOR: _KindDefaults("robopost-indoor", "Indoor mailroom robot", 20, 1.0, 0.5, 0.6, 1.2, 4),
    RobotKind.ROBOT: _KindDefaults("robopost-robot", "Indoor/outdoor robot", 40, 1.5, 0.7, 0.9, 1.2, 6),
}


def build_factsheet(config: AgentConfig, headers: HeaderFactory) -> Factsheet:
    """The factsheet of the configured robot, with the next ``factsheet`` header of ``headers``."""
    base, over = _DEFAULTS[config.kind], config.factsheet
    width = over.width or base.width
    length = over.length or base.length
    compartments = over.compartments if over.compartments is not None else base.compartments
    positions = [f"compartment-{i}" for i in range(compartments)] or None
    return headers.make(
        Factsheet,
        type_specification=TypeSpecification(
            series_name=over.series_name or base.series_name,
            series_description=over.series_description or base.description,
            agv_kinematic=AgvKinematic.DIFF,
            agv_class=AgvClass.CARRIER,
            max_load_mass=over.max_load_mass if over.max_load_mass is not None else base.max_load_mass,
            localization_types=[LocalizationType.NATURAL],
            navigation_types=[NavigationType.AUTONOMOUS],
        ),
        physical_parameters=PhysicalParameters(
            speed_min=0.0,
            speed_max=over.speed_max or base.speed_max,
            acceleration_max=0.8,
            deceleration_max=1.5,
            height_max=over.height or base.height,
            width=width,
            length=length,
        ),
        protocol_limits=ProtocolLimits(
            max_string_lens=MaxStringLens(msg_len=config.max_payload_bytes),
            max_array_lens=MaxArrayLens(),
            timing=Timing(
                min_order_interval=0.1,
                min_state_interval=0.0,
                default_state_interval=config.state_period,
                visualization_interval=config.visualization_period or None,
            ),
        ),
        protocol_features=ProtocolFeatures(
            optional_parameters=[
                OptionalParameter(parameter="order.nodes.nodePosition", support=Support.REQUIRED)
            ],
            agv_actions=agv_actions(),
        ),
        agv_geometry=AgvGeometry(envelopes2d=[_footprint(width, length)]),
        load_specification=LoadSpecification(
            load_positions=positions,
            load_sets=[LoadSet(set_name="parcel", load_type="parcel", load_positions=positions)],
        ),
    )


def _footprint(width: float, length: float) -> Envelope2d:
    """The robot's rectangle around its kinematic centre."""
    x, y = length / 2, width / 2
    corners = [(-x, -y), (x, -y), (x, y), (-x, y)]
    return Envelope2d(set="default", polygon_points=[PolygonPoint(x=px, y=py) for px, py in corners])
