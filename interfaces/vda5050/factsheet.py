"""``factsheet`` (AGV → master control), VDA 5050 2.1 §6.15, field for field after ``factsheet.schema``.

Schema defect worth knowing: in the 2.1.0 schema ``agvActions[].blockingTypes`` is declared as
``{"type": "array", "enum": ["NONE", "SOFT", "HARD"]}``, so *no* array value validates. We model it
(``list[BlockingType]``) so that incoming factsheets carrying it parse, but a factsheet we send must
leave ``blocking_types`` unset to stay valid against the official schema.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from pydantic import Field

from interfaces.vda5050.base import ProtocolVersion, Timestamp, Vda5050Model
from interfaces.vda5050.order import BlockingType


def _key(json_key: str) -> Any:
    """An optional field whose JSON key is not plain camelCase (``"order.nodes"``).

    Separate validation/serialisation aliases (not ``alias=``) keep the snake_case name as the
    constructor keyword for type checkers.
    """
    return Field(default=None, validation_alias=json_key, serialization_alias=json_key)


class AgvKinematic(StrEnum):
    """Simplified kinematics type of the vehicle."""

    DIFF = "DIFF"
    OMNI = "OMNI"
    THREEWHEEL = "THREEWHEEL"


class AgvClass(StrEnum):
    """Simplified vehicle class."""

    FORKLIFT = "FORKLIFT"
    CONVEYOR = "CONVEYOR"
    TUGGER = "TUGGER"
    CARRIER = "CARRIER"


class LocalizationType(StrEnum):
    """How the vehicle localises."""

    NATURAL = "NATURAL"
    REFLECTOR = "REFLECTOR"
    RFID = "RFID"
    DMC = "DMC"
    SPOT = "SPOT"
    GRID = "GRID"


class NavigationType(StrEnum):
    """How the vehicle's paths are given."""

    PHYSICAL_LINE_GUIDED = "PHYSICAL_LINE_GUIDED"
    VIRTUAL_LINE_GUIDED = "VIRTUAL_LINE_GUIDED"
    AUTONOMOUS = "AUTONOMOUS"


class Support(StrEnum):
    """Whether an optional protocol parameter is supported or required."""

    SUPPORTED = "SUPPORTED"
    REQUIRED = "REQUIRED"


class ActionScope(StrEnum):
    """Where an action may be used: as an instant action, on a node, on an edge."""

    INSTANT = "INSTANT"
    NODE = "NODE"
    EDGE = "EDGE"


class ValueDataType(StrEnum):
    """Data type of an action parameter's value, as the factsheet declares it."""

    BOOL = "BOOL"
    NUMBER = "NUMBER"
    INTEGER = "INTEGER"
    FLOAT = "FLOAT"
    STRING = "STRING"
    OBJECT = "OBJECT"
    ARRAY = "ARRAY"


class WheelType(StrEnum):
    """Kind of wheel."""

    DRIVE = "DRIVE"
    CASTER = "CASTER"
    FIXED = "FIXED"
    MECANUM = "MECANUM"


class TypeSpecification(Vda5050Model):
    """Class and capabilities of the vehicle type."""

    series_name: str
    agv_kinematic: AgvKinematic
    agv_class: AgvClass
    max_load_mass: float = Field(ge=0)
    localization_types: list[LocalizationType]
    navigation_types: list[NavigationType]
    series_description: str | None = None


class PhysicalParameters(Vda5050Model):
    """Speeds (m/s), accelerations (m/s²) and size (m)."""

    speed_min: float
    speed_max: float
    acceleration_max: float
    deceleration_max: float
    height_max: float
    width: float
    length: float
    height_min: float | None = None


class MaxStringLens(Vda5050Model):
    """Longest strings the vehicle accepts."""

    msg_len: int | None = None
    topic_serial_len: int | None = None
    topic_elem_len: int | None = None
    id_len: int | None = None
    id_numerical_only: bool | None = None
    enum_len: int | None = None
    load_id_len: int | None = None


class MaxArrayLens(Vda5050Model):
    """Longest arrays the vehicle accepts; the JSON keys are dotted (``"order.nodes"``)."""

    order_nodes: int | None = _key("order.nodes")
    order_edges: int | None = _key("order.edges")
    node_actions: int | None = _key("node.actions")
    edge_actions: int | None = _key("edge.actions")
    actions_actions_parameters: int | None = _key("actions.actionsParameters")
    instant_actions: int | None = _key("instantActions")
    trajectory_knot_vector: int | None = _key("trajectory.knotVector")
    trajectory_control_points: int | None = _key("trajectory.controlPoints")
    state_node_states: int | None = _key("state.nodeStates")
    state_edge_states: int | None = _key("state.edgeStates")
    state_loads: int | None = _key("state.loads")
    state_action_states: int | None = _key("state.actionStates")
    state_errors: int | None = _key("state.errors")
    state_information: int | None = _key("state.information")
    error_error_references: int | None = _key("error.errorReferences")
    information_info_references: int | None = _key("information.infoReferences")


class Timing(Vda5050Model):
    """Timing limits in seconds."""

    min_order_interval: float
    min_state_interval: float
    default_state_interval: float | None = None
    visualization_interval: float | None = None


class ProtocolLimits(Vda5050Model):
    """Limits of strings, arrays and timing."""

    max_string_lens: MaxStringLens
    max_array_lens: MaxArrayLens
    timing: Timing


class OptionalParameter(Vda5050Model):
    """An optional protocol field and whether the vehicle supports or requires it."""

    parameter: str
    support: Support
    description: str | None = None


class AgvActionParameter(Vda5050Model):
    """Declared parameter of an action the vehicle supports."""

    key: str
    value_data_type: ValueDataType
    description: str | None = None
    is_optional: bool | None = None


class AgvAction(Vda5050Model):
    """An action type the vehicle supports, where, and with which parameters."""

    action_type: str
    action_scopes: list[ActionScope]
    action_description: str | None = None
    action_parameters: list[AgvActionParameter] | None = None
    result_description: str | None = None
    blocking_types: list[BlockingType] | None = None  # leave unset when sending: see module docstring


class ProtocolFeatures(Vda5050Model):
    """Supported optional fields and actions."""

    optional_parameters: list[OptionalParameter]
    agv_actions: list[AgvAction]


class WheelPosition(Vda5050Model):
    """A wheel's position (m) and orientation (rad) in vehicle coordinates."""

    x: float
    y: float
    theta: float | None = None


class WheelDefinition(Vda5050Model):
    """One wheel of the vehicle."""

    type: WheelType
    is_active_driven: bool
    is_active_steered: bool
    position: WheelPosition
    diameter: float
    width: float
    center_displacement: float | None = None
    constraints: str | None = None


class PolygonPoint(Vda5050Model):
    """A corner of a 2D envelope (m)."""

    x: float
    y: float


class Envelope2d(Vda5050Model):
    """A 2D outline of the vehicle (one ``set``, e.g. loaded/unloaded)."""

    set: str
    polygon_points: list[PolygonPoint]
    description: str | None = None


class Envelope3d(Vda5050Model):
    """A 3D outline of the vehicle, inline (``data``) or by ``url``."""

    set: str
    format: str
    data: dict[str, Any] | None = None
    url: str | None = None
    description: str | None = None


class AgvGeometry(Vda5050Model):
    """Wheels and envelopes (all optional)."""

    wheel_definitions: list[WheelDefinition] | None = None
    envelopes2d: list[Envelope2d] | None = None
    envelopes3d: list[Envelope3d] | None = None


class LoadSetBoundingBoxReference(Vda5050Model):
    """Centre of a load set's bounding box bottom, in vehicle coordinates."""

    x: float
    y: float
    z: float
    theta: float | None = None


class LoadSetDimensions(Vda5050Model):
    """Size of a load set's bounding box (m)."""

    length: float
    width: float
    height: float | None = None


class LoadSet(Vda5050Model):
    """A kind of load the vehicle can carry, and its handling limits."""

    set_name: str
    load_type: str
    load_positions: list[str] | None = None
    bounding_box_reference: LoadSetBoundingBoxReference | None = None
    load_dimensions: LoadSetDimensions | None = None
    max_weight: float | None = None
    min_loadhandling_height: float | None = None
    max_loadhandling_height: float | None = None
    min_loadhandling_depth: float | None = None
    max_loadhandling_depth: float | None = None
    min_loadhandling_tilt: float | None = None
    max_loadhandling_tilt: float | None = None
    agv_speed_limit: float | None = None
    agv_acceleration_limit: float | None = None
    agv_deceleration_limit: float | None = None
    pick_time: float | None = None
    drop_time: float | None = None
    description: str | None = None


class LoadSpecification(Vda5050Model):
    """Load positions and load sets (all optional)."""

    load_positions: list[str] | None = None
    load_sets: list[LoadSet] | None = None


class VersionEntry(Vda5050Model):
    """A software/hardware version of the vehicle as key/value."""

    key: str
    value: str


class Network(Vda5050Model):
    """The vehicle's network configuration."""

    dns_servers: list[str] | None = None
    local_ip_address: str | None = None
    ntp_servers: list[str] | None = None
    netmask: str | None = None
    default_gateway: str | None = None


class VehicleConfig(Vda5050Model):
    """Versions and network settings (new in 2.1)."""

    versions: list[VersionEntry] | None = None
    network: Network | None = None


class Factsheet(Vda5050Model):
    """The ``factsheet`` message: what the vehicle is and what it can do (VDA 5050 §6.15).

    ``header_id`` and ``timestamp`` are optional in the schema (a factsheet may be static); we always
    send them.
    """

    version: ProtocolVersion
    manufacturer: str
    serial_number: str
    type_specification: TypeSpecification
    physical_parameters: PhysicalParameters
    protocol_limits: ProtocolLimits
    protocol_features: ProtocolFeatures
    agv_geometry: AgvGeometry
    load_specification: LoadSpecification
    header_id: int | None = Field(default=None, ge=0)
    timestamp: Timestamp | None = None
    vehicle_config: VehicleConfig | None = None
