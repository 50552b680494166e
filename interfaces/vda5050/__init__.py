"""VDA 5050 2.1 (with 2.0 accepted): message models, JSON codec, headers, topics and our actions.

Layout::

    base.py       Vda5050Model (naming, extra-field policy), Timestamp, ProtocolVersion
    order.py      Order, Node, Edge, NodePosition, Trajectory, Corridor, Action, InstantActions
    state.py      State (+ NodeState, EdgeState, AgvPosition, ActionState, ...), Visualization, Connection
    factsheet.py  Factsheet and its parts
    codec.py      to_json, to_bytes, parse, parse_as, MESSAGE_TYPES, DEFAULT_MAX_BYTES
    header.py     HeaderFactory (per robot: headerId per topic, timestamps from a Clock)
    topics.py     Topic, TopicKind, subscription, major_version_of
    actions.py    ActionType, typed parameters (OpenCompartment, Handoff, ...), make_action, read_action
    errors.py     Vda5050Error (ValueError) ── PayloadError, TopicError, ActionError

Models follow the official 2.1.0 JSON schemas (``../shared/data/vda5050/v2.1.0/``) field for field:
Python attributes are snake_case, JSON keys the schema's camelCase (both accepted on input); enums are
``StrEnum``; required/optional as the schema says; optional fields default to ``None`` and are left out
of the JSON, so ``to_json``/``to_bytes`` output validates against the official schema (tested).

Decisions:

- Unknown fields are accepted and kept (``extra="allow"``): VDA 5050 receivers must tolerate vendor
  extensions and newer minor versions; the values stay in ``model_extra`` and are written back out.
  (The official schemas allow additional properties, so output stays valid.) The flip side: a typo in
  an *optional* keyword when building a model becomes an extra field rather than an error.
- 2.0 messages parse: 2.1 only added optional fields (``corridor``, ``maps``, ``vehicleConfig``...),
  and the header ``version`` accepts any ``2.x[.y]``. Other majors (1.x, 3.x) are refused. The action
  status ``PAUSED`` (2.0, and the 2.1 text but not its schema) is accepted on input.
- Timestamps are UTC ``datetime``; written ``YYYY-MM-DDTHH:MM:SS.mmmZ``; zone-less input read as UTC.
- Incoming values are validated in pydantic's lax mode for messages (``1.0`` for an int is fine,
  ``"abc"`` is not) and strictly for action parameters.
- The 2.1 factsheet schema's ``blockingTypes`` cannot validate any value (see ``factsheet.py``):
  leave ``AgvAction.blocking_types`` unset when sending.

Typical use::

    from interfaces.vda5050 import HeaderFactory, Order, Node, Topic, TopicKind, parse, to_bytes

    headers = HeaderFactory("acme", "cart-01", "2.1.0", clock=clock)
    order = headers.make(Order, order_id="o-1", order_update_id=0, nodes=[...], edges=[...])
    topic = Topic(manufacturer="acme", serial_number="cart-01", kind=TopicKind.ORDER)
    await mqtt.publish(str(topic), to_bytes(order), qos=0)
    state = parse(TopicKind.STATE, message.payload)   # PayloadError on garbage
"""

from interfaces.vda5050.actions import (
    ACTION_SCOPES,
    DEFAULT_BLOCKING,
    PARAMS_OF,
    ActionParams,
    ActionType,
    CancelOrder,
    Drop,
    EnterLift,
    ExitLift,
    FactsheetRequest,
    Handoff,
    HandoffRole,
    InitPosition,
    OpenCompartment,
    Pick,
    SetOperatingMode,
    StartPause,
    StateRequest,
    StopPause,
    WaitForPickup,
    action_parameters,
    agv_actions,
    duplicate_action_ids,
    make_action,
    new_action_id,
    read_action,
)
from interfaces.vda5050.base import (
    DEFAULT_VERSION,
    SUPPORTED_MAJOR,
    ProtocolVersion,
    Timestamp,
    Vda5050Model,
    format_timestamp,
    timestamp_from_epoch,
)
from interfaces.vda5050.codec import (
    DEFAULT_MAX_BYTES,
    MESSAGE_TYPES,
    Message,
    parse,
    parse_as,
    to_bytes,
    to_json,
)
from interfaces.vda5050.errors import ActionError, PayloadError, TopicError, Vda5050Error
from interfaces.vda5050.factsheet import (
    ActionScope,
    AgvAction,
    AgvActionParameter,
    AgvClass,
    AgvGeometry,
    AgvKinematic,
    Envelope2d,
    Envelope3d,
    Factsheet,
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
    ValueDataType,
    VehicleConfig,
    WheelDefinition,
    WheelPosition,
    WheelType,
)
from interfaces.vda5050.header import HeaderFactory, kind_of
from interfaces.vda5050.order import (
    Action,
    ActionParameter,
    BlockingType,
    ControlPoint,
    Corridor,
    CorridorRefPoint,
    Edge,
    InstantActions,
    Node,
    NodePosition,
    Order,
    OrientationType,
    ParameterValue,
    Trajectory,
)
from interfaces.vda5050.state import (
    ActionState,
    ActionStatus,
    AgvError,
    AgvMap,
    AgvPosition,
    BatteryState,
    BoundingBoxReference,
    Connection,
    ConnectionState,
    EdgeState,
    ErrorLevel,
    ErrorReference,
    ErrorType,
    EStop,
    InfoLevel,
    InfoReference,
    Information,
    Load,
    LoadDimensions,
    MapStatus,
    NodeState,
    OperatingMode,
    SafetyState,
    State,
    Velocity,
    Visualization,
)
from interfaces.vda5050.topics import (
    DEFAULT_INTERFACE,
    DEFAULT_MAJOR_VERSION,
    Topic,
    TopicKind,
    major_version_of,
    subscription,
)

__all__ = [
    "ACTION_SCOPES",
    "DEFAULT_BLOCKING",
    "DEFAULT_INTERFACE",
    "DEFAULT_MAJOR_VERSION",
    "DEFAULT_MAX_BYTES",
    "DEFAULT_VERSION",
    "MESSAGE_TYPES",
    "PARAMS_OF",
    "SUPPORTED_MAJOR",
    "Action",
    "ActionError",
    "ActionParameter",
    "ActionParams",
    "ActionScope",
    "ActionState",
    "ActionStatus",
    "ActionType",
    "AgvAction",
    "AgvActionParameter",
    "AgvClass",
    "AgvError",
    "AgvGeometry",
    "AgvKinematic",
    "AgvMap",
    "AgvPosition",
    "BatteryState",
    "BlockingType",
    "BoundingBoxReference",
    "CancelOrder",
    "Connection",
    "ConnectionState",
    "ControlPoint",
    "Corridor",
    "CorridorRefPoint",
    "Drop",
    "EStop",
    "Edge",
    "EdgeState",
    "EnterLift",
    "Envelope2d",
    "Envelope3d",
    "ErrorLevel",
    "ErrorReference",
    "ErrorType",
    "ExitLift",
    "Factsheet",
    "FactsheetRequest",
    "Handoff",
    "HandoffRole",
    "HeaderFactory",
    "InfoLevel",
    "InfoReference",
    "Information",
    "InitPosition",
    "InstantActions",
    "Load",
    "LoadDimensions",
    "LoadSet",
    "LoadSpecification",
    "LocalizationType",
    "MapStatus",
    "MaxArrayLens",
    "MaxStringLens",
    "Message",
    "NavigationType",
    "Node",
    "NodePosition",
    "NodeState",
    "OpenCompartment",
    "OperatingMode",
    "OptionalParameter",
    "Order",
    "OrientationType",
    "ParameterValue",
    "PayloadError",
    "PhysicalParameters",
    "Pick",
    "PolygonPoint",
    "ProtocolFeatures",
    "ProtocolLimits",
    "ProtocolVersion",
    "SafetyState",
    "SetOperatingMode",
    "StartPause",
    "State",
    "StateRequest",
    "StopPause",
    "Support",
    "Timestamp",
    "Timing",
    "Topic",
    "TopicError",
    "TopicKind",
    "Trajectory",
    "TypeSpecification",
    "ValueDataType",
    "Vda5050Error",
    "Vda5050Model",
    "VehicleConfig",
    "Velocity",
    "Visualization",
    "WaitForPickup",
    "WheelDefinition",
    "WheelPosition",
    "WheelType",
    "action_parameters",
    "agv_actions",
    "duplicate_action_ids",
    "format_timestamp",
    "kind_of",
    "major_version_of",
    "make_action",
    "new_action_id",
    "parse",
    "parse_as",
    "read_action",
    "subscription",
    "timestamp_from_epoch",
    "to_bytes",
    "to_json",
]
