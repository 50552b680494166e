"""``state``, ``visualization`` and ``connection`` (AGV → master control), VDA 5050 2.1 §6.10–§6.14.

Schemas: ``state.schema``, ``visualization.schema``, ``connection.schema`` of the 2.1.0 release, field
for field. Optional fields are ``None`` by default and left out of the JSON.
"""

from __future__ import annotations

from enum import StrEnum

from pydantic import Field

from interfaces.vda5050.base import ProtocolVersion, Timestamp, Vda5050Model
from interfaces.vda5050.order import NodePosition, Trajectory


class OperatingMode(StrEnum):
    """Who is in control of the AGV (VDA 5050 §6.10.6)."""

    AUTOMATIC = "AUTOMATIC"
    SEMIAUTOMATIC = "SEMIAUTOMATIC"
    MANUAL = "MANUAL"
    SERVICE = "SERVICE"
    TEACHIN = "TEACHIN"


class ActionStatus(StrEnum):
    """Life cycle of an action: WAITING → INITIALIZING → RUNNING → FINISHED | FAILED.

    ``PAUSED`` is in the specification text and in 2.0 but missing from the 2.1 ``state.schema``:
    it is accepted on input, but a 2.1 sender must not emit it (its ``state`` would not validate).
    """

    WAITING = "WAITING"
    INITIALIZING = "INITIALIZING"
    RUNNING = "RUNNING"
    PAUSED = "PAUSED"
    FINISHED = "FINISHED"
    FAILED = "FAILED"


class ErrorLevel(StrEnum):
    """WARNING: the AGV can go on; FATAL: a person must intervene."""

    WARNING = "WARNING"
    FATAL = "FATAL"


class ErrorType(StrEnum):
    """The ``errorType`` names of the standard that our order handling reports (VDA 5050 §6.6)."""

    VALIDATION_ERROR = "validationError"
    ORDER_ERROR = "orderError"
    ORDER_UPDATE_ERROR = "orderUpdateError"
    NO_ORDER_TO_CANCEL = "noOrderToCancel"


class InfoLevel(StrEnum):
    """INFO for visualisation, DEBUG for debugging."""

    INFO = "INFO"
    DEBUG = "DEBUG"


class EStop(StrEnum):
    """Which kind of emergency stop is active, if any."""

    AUTOACK = "AUTOACK"
    MANUAL = "MANUAL"
    REMOTE = "REMOTE"
    NONE = "NONE"


class MapStatus(StrEnum):
    """Whether a stored map version is the active one (new in 2.1)."""

    ENABLED = "ENABLED"
    DISABLED = "DISABLED"


class ConnectionState(StrEnum):
    """The ``connection`` topic's value; CONNECTIONBROKEN is the last will (VDA 5050 §6.14)."""

    ONLINE = "ONLINE"
    OFFLINE = "OFFLINE"
    CONNECTIONBROKEN = "CONNECTIONBROKEN"


class AgvMap(Vda5050Model):
    """A map stored on the vehicle."""

    map_id: str
    map_version: str
    map_status: MapStatus
    map_description: str | None = None


class NodeState(Vda5050Model):
    """A node of the current order still to be traversed."""

    node_id: str
    sequence_id: int
    released: bool
    node_description: str | None = None
    node_position: NodePosition | None = None


class EdgeState(Vda5050Model):
    """An edge of the current order still to be traversed."""

    edge_id: str
    sequence_id: int
    released: bool
    edge_description: str | None = None
    trajectory: Trajectory | None = None


class AgvPosition(Vda5050Model):
    """The AGV's pose on a map (in ``state`` and ``visualization``)."""

    x: float
    y: float
    theta: float
    map_id: str
    position_initialized: bool
    map_description: str | None = None
    localization_score: float | None = Field(default=None, ge=0.0, le=1.0)
    deviation_range: float | None = None


class Velocity(Vda5050Model):
    """The AGV's velocity in vehicle coordinates (m/s, rad/s)."""

    vx: float | None = None
    vy: float | None = None
    omega: float | None = None


class BoundingBoxReference(Vda5050Model):
    """Centre of a load's bounding box bottom, in vehicle coordinates."""

    x: float
    y: float
    z: float
    theta: float | None = None


class LoadDimensions(Vda5050Model):
    """Size of a load's bounding box in metres."""

    length: float
    width: float
    height: float | None = None


class Load(Vda5050Model):
    """A load the AGV carries (every field optional in the schema)."""

    load_id: str | None = None
    load_type: str | None = None
    load_position: str | None = None
    bounding_box_reference: BoundingBoxReference | None = None
    load_dimensions: LoadDimensions | None = None
    weight: float | None = Field(default=None, ge=0.0)


class ActionState(Vda5050Model):
    """Where one action of the order or of instantActions stands."""

    action_id: str
    action_status: ActionStatus
    action_type: str | None = None
    action_description: str | None = None
    result_description: str | None = None


class BatteryState(Vda5050Model):
    """Charge (%), health (%), voltage, reach (m) and whether it is charging."""

    battery_charge: float
    charging: bool
    battery_voltage: float | None = None
    battery_health: float | None = Field(default=None, ge=0, le=100)
    reach: float | None = Field(default=None, ge=0)


class ErrorReference(Vda5050Model):
    """A key/value pointer at what an error concerns (``orderId``, ``nodeId``, ``actionId``...)."""

    reference_key: str
    reference_value: str


class AgvError(Vda5050Model):
    """One active error of the AGV (the schema's ``Error`` object)."""

    error_type: str
    error_level: ErrorLevel
    error_references: list[ErrorReference] | None = None
    error_description: str | None = None
    error_hint: str | None = None


class InfoReference(Vda5050Model):
    """A key/value pointer at what an information entry concerns."""

    reference_key: str
    reference_value: str


class Information(Vda5050Model):
    """One information entry (visualisation/debugging only, never for master control's logic)."""

    info_type: str
    info_level: InfoLevel
    info_references: list[InfoReference] | None = None
    info_description: str | None = None


class SafetyState(Vda5050Model):
    """Emergency stop and protective field state."""

    e_stop: EStop
    field_violation: bool


class State(Vda5050Model):
    """The ``state`` message: everything about the AGV and its order (VDA 5050 §6.10)."""

    header_id: int
    timestamp: Timestamp
    version: ProtocolVersion
    manufacturer: str
    serial_number: str
    order_id: str
    order_update_id: int
    last_node_id: str
    last_node_sequence_id: int
    node_states: list[NodeState]
    edge_states: list[EdgeState]
    driving: bool
    action_states: list[ActionState]
    battery_state: BatteryState
    operating_mode: OperatingMode
    errors: list[AgvError]
    safety_state: SafetyState
    maps: list[AgvMap] | None = None
    zone_set_id: str | None = None
    paused: bool | None = None
    new_base_request: bool | None = None
    distance_since_last_node: float | None = None
    agv_position: AgvPosition | None = None
    velocity: Velocity | None = None
    loads: list[Load] | None = None
    information: list[Information] | None = None


class Visualization(Vda5050Model):
    """The ``visualization`` message: position/velocity at a higher rate; every field optional."""

    header_id: int | None = None
    timestamp: Timestamp | None = None
    version: ProtocolVersion | None = None
    manufacturer: str | None = None
    serial_number: str | None = None
    agv_position: AgvPosition | None = None
    velocity: Velocity | None = None


class Connection(Vda5050Model):
    """The ``connection`` message (retained; the last will says CONNECTIONBROKEN)."""

    header_id: int
    timestamp: Timestamp
    version: ProtocolVersion
    manufacturer: str
    serial_number: str
    connection_state: ConnectionState
