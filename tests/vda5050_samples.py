"""VDA 5050 test helpers: the official 2.1 schema validator and realistic sample messages.

Importable from any test (``tests/`` is on the path): ``from vda5050_samples import OfficialSchemas,
sample_order, ...``. Fleet and agent tests can check what they send with
``OfficialSchemas(shared_data).check(TopicKind.ORDER, to_json(order))``.
"""

from __future__ import annotations

import json
import math
import re
from datetime import datetime
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator, FormatChecker
from jsonschema.exceptions import best_match
from jsonschema.validators import validator_for

from interfaces.clock import VirtualClock
from interfaces.vda5050 import (
    ActionState,
    ActionStatus,
    AgvClass,
    AgvError,
    AgvGeometry,
    AgvKinematic,
    AgvMap,
    AgvPosition,
    BatteryState,
    BlockingType,
    Connection,
    ConnectionState,
    ControlPoint,
    Corridor,
    CorridorRefPoint,
    Edge,
    EdgeState,
    Envelope2d,
    ErrorLevel,
    ErrorReference,
    ErrorType,
    EStop,
    Factsheet,
    HeaderFactory,
    InfoLevel,
    Information,
    InitPosition,
    InstantActions,
    Load,
    LoadDimensions,
    LoadSet,
    LoadSpecification,
    LocalizationType,
    MapStatus,
    MaxArrayLens,
    MaxStringLens,
    NavigationType,
    Node,
    NodePosition,
    NodeState,
    OpenCompartment,
    OperatingMode,
    OptionalParameter,
    Order,
    OrientationType,
    PhysicalParameters,
    Pick,
    PolygonPoint,
    ProtocolFeatures,
    ProtocolLimits,
    SafetyState,
    State,
    StateRequest,
    Support,
    Timing,
    TopicKind,
    Trajectory,
    TypeSpecification,
    VehicleConfig,
    Velocity,
    Visualization,
    WaitForPickup,
    WheelDefinition,
    WheelPosition,
    WheelType,
    agv_actions,
    make_action,
)

_RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$")
START = 1_714_564_800.0  # 2024-05-01T12:00:00Z


def _is_date_time(value: object) -> bool:
    """RFC 3339 date-time (jsonschema checks this format only with an optional package installed)."""
    if not isinstance(value, str) or not _RFC3339.match(value):
        return False
    datetime.fromisoformat(value)
    return True


class OfficialSchemas:
    """The six 2.1.0 schemas, each as a validator of the draft its ``$schema`` names, formats checked."""

    def __init__(self, shared_data: Path, version: str = "v2.1.0") -> None:
        folder = shared_data / "vda5050" / version
        checker = FormatChecker()
        checker.checks("date-time", raises=ValueError)(_is_date_time)
        self._validators = {}
        for kind in TopicKind:
            path = folder / f"{kind.value}.schema"
            if path.exists():
                schema = json.loads(path.read_text())
                cls = validator_for(schema, default=Draft202012Validator)
                cls.check_schema(schema)
                self._validators[kind] = cls(schema, format_checker=checker)

    def errors(self, kind: TopicKind, document: Any) -> list[str]:
        """Every violation of ``document`` against the schema of ``kind``, as readable lines."""
        validator = self._validators[kind]
        return [
            f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(document)
        ]

    def check(self, kind: TopicKind, document: Any) -> None:
        """Raise ``AssertionError`` naming the best-matching violation if ``document`` is invalid."""
        error = best_match(self._validators[kind].iter_errors(document))
        if error is not None:
            path = "/".join(map(str, error.absolute_path))
            raise AssertionError(f"{kind} does not validate at {path or '<root>'}: {error.message}")


def headers(serial: str = "cart-01", version: str = "2.1.0") -> HeaderFactory:
    """A header factory for robot ``acme``/``serial`` on a virtual clock at 2024-05-01 12:00 UTC."""
    return HeaderFactory("acme", serial, version, clock=VirtualClock(start=START))


def sample_order(factory: HeaderFactory | None = None) -> Order:
    """Three nodes (two released, one horizon), two edges with a NURBS and a corridor, four actions."""
    factory = factory or headers()
    floor = "campus-ground"
    nodes = [
        Node(
            node_id="station",
            sequence_id=0,
            released=True,
            node_position=NodePosition(x=0.0, y=0.0, theta=0.0, map_id=floor, allowed_deviation_xy=0.5),
            actions=[make_action(Pick(load_id="parcel-17", load_type="parcel"), action_id="a-pick")],
        ),
        Node(
            node_id="stop-library",
            sequence_id=2,
            released=True,
            node_description="Library front door",
            node_position=NodePosition(
                x=120.5, y=-34.25, theta=math.pi, map_id=floor, allowed_deviation_theta=0.3
            ),
            actions=[
                make_action(OpenCompartment(compartment=3), action_id="a-open"),
                make_action(WaitForPickup(compartment=3, timeout_s=600), action_id="a-wait"),
            ],
        ),
        Node(
            node_id="stop-canteen",
            sequence_id=4,
            released=False,
            node_position=NodePosition(x=200.0, y=10.0, map_id=floor),
            actions=[],
        ),
    ]
    edges = [
        Edge(
            edge_id="station-library",
            sequence_id=1,
            released=True,
            start_node_id="station",
            end_node_id="stop-library",
            max_speed=1.5,
            orientation=0.0,
            orientation_type=OrientationType.TANGENTIAL,
            rotation_allowed=True,
            length=125.3,
            trajectory=Trajectory(
                degree=1,
                knot_vector=[0.0, 0.0, 1.0, 1.0],
                control_points=[ControlPoint(x=0.0, y=0.0), ControlPoint(x=120.5, y=-34.25, weight=1.0)],
            ),
            corridor=Corridor(left_width=0.5, right_width=0.8, corridor_ref_point=CorridorRefPoint.CONTOUR),
            actions=[make_action(StateRequest(), action_id="a-edge-state", blocking_type=BlockingType.NONE)],
        ),
        Edge(
            edge_id="library-canteen",
            sequence_id=3,
            released=False,
            start_node_id="stop-library",
            end_node_id="stop-canteen",
            actions=[],
        ),
    ]
    return factory.make(
        Order, order_id="order-0001", order_update_id=0, zone_set_id="campus", nodes=nodes, edges=edges
    )


def sample_instant_actions(factory: HeaderFactory | None = None) -> InstantActions:
    """An ``initPosition`` and a ``stateRequest``."""
    factory = factory or headers()
    init = InitPosition(x=1.0, y=2.0, theta=-1.57, map_id="campus-ground", last_node_id="station")
    return factory.make(
        InstantActions,
        actions=[make_action(init, action_id="ia-1"), make_action(StateRequest(), action_id="ia-2")],
    )


def sample_state(factory: HeaderFactory | None = None) -> State:
    """A robot driving its order's first edge with one action running, one error and one info."""
    factory = factory or headers()
    return factory.make(
        State,
        order_id="order-0001",
        order_update_id=0,
        zone_set_id="campus",
        last_node_id="station",
        last_node_sequence_id=0,
        maps=[AgvMap(map_id="campus-ground", map_version="3", map_status=MapStatus.ENABLED)],
        node_states=[
            NodeState(
                node_id="stop-library",
                sequence_id=2,
                released=True,
                node_position=NodePosition(x=120.5, y=-34.25, theta=3.14, map_id="campus-ground"),
            )
        ],
        edge_states=[
            EdgeState(
                edge_id="station-library",
                sequence_id=1,
                released=True,
                trajectory=Trajectory(
                    degree=1,
                    knot_vector=[0, 0, 1, 1],
                    control_points=[ControlPoint(x=0, y=0), ControlPoint(x=120.5, y=-34.25)],
                ),
            )
        ],
        driving=True,
        paused=False,
        new_base_request=False,
        distance_since_last_node=12.5,
        agv_position=AgvPosition(
            x=10.2,
            y=-2.9,
            theta=-0.27,
            map_id="campus-ground",
            position_initialized=True,
            localization_score=0.93,
            deviation_range=0.1,
        ),
        velocity=Velocity(vx=1.2, vy=0.0, omega=0.01),
        loads=[
            Load(
                load_id="parcel-17",
                load_type="parcel",
                load_position="compartment-3",
                load_dimensions=LoadDimensions(length=0.4, width=0.3, height=0.2),
                weight=1.5,
            )
        ],
        action_states=[
            ActionState(action_id="a-pick", action_type="pick", action_status=ActionStatus.FINISHED),
            ActionState(
                action_id="a-open", action_type="openCompartment", action_status=ActionStatus.WAITING
            ),
            ActionState(
                action_id="a-edge-state", action_status=ActionStatus.RUNNING, result_description="ok"
            ),
        ],
        battery_state=BatteryState(
            battery_charge=76.5, battery_voltage=48.2, battery_health=97, charging=False, reach=9000
        ),
        operating_mode=OperatingMode.AUTOMATIC,
        errors=[
            AgvError(
                error_type=ErrorType.ORDER_UPDATE_ERROR,
                error_level=ErrorLevel.WARNING,
                error_references=[ErrorReference(reference_key="orderId", reference_value="order-0000")],
                error_description="orderUpdateId 1 is older than 2",
            )
        ],
        information=[
            Information(info_type="localization", info_level=InfoLevel.DEBUG, info_description="gnss rtk")
        ],
        safety_state=SafetyState(e_stop=EStop.NONE, field_violation=False),
    )


def sample_visualization(factory: HeaderFactory | None = None) -> Visualization:
    """Position and velocity only."""
    factory = factory or headers()
    position = AgvPosition(x=10.4, y=-2.95, theta=-0.27, map_id="campus-ground", position_initialized=True)
    return factory.make(Visualization, agv_position=position, velocity=Velocity(vx=1.2, vy=0.0, omega=0.0))


def sample_connection(
    factory: HeaderFactory | None = None, state: ConnectionState = ConnectionState.ONLINE
) -> Connection:
    """The retained connection message."""
    return (factory or headers()).make(Connection, connection_state=state)


def sample_factsheet(factory: HeaderFactory | None = None) -> Factsheet:
    """A delivery cart's factsheet declaring all robopost actions."""
    factory = factory or headers()
    return factory.make(
        Factsheet,
        type_specification=TypeSpecification(
            series_name="robopost-cart",
            series_description="Outdoor parcel cart with 12 lockers",
            agv_kinematic=AgvKinematic.DIFF,
            agv_class=AgvClass.CARRIER,
            max_load_mass=80,
            localization_types=[LocalizationType.NATURAL],
            navigation_types=[NavigationType.AUTONOMOUS],
        ),
        physical_parameters=PhysicalParameters(
            speed_min=0.0,
            speed_max=1.8,
            acceleration_max=0.8,
            deceleration_max=1.5,
            height_min=1.1,
            height_max=1.3,
            width=0.8,
            length=1.2,
        ),
        protocol_limits=ProtocolLimits(
            max_string_lens=MaxStringLens(msg_len=1_048_576, id_len=64, id_numerical_only=False),
            max_array_lens=MaxArrayLens(order_nodes=200, order_edges=199, state_action_states=100),
            timing=Timing(min_order_interval=0.5, min_state_interval=0.5, default_state_interval=30.0),
        ),
        protocol_features=ProtocolFeatures(
            optional_parameters=[
                OptionalParameter(parameter="order.nodes.nodePosition", support=Support.REQUIRED)
            ],
            agv_actions=agv_actions(),
        ),
        agv_geometry=AgvGeometry(
            wheel_definitions=[
                WheelDefinition(
                    type=WheelType.DRIVE,
                    is_active_driven=True,
                    is_active_steered=False,
                    position=WheelPosition(x=0.0, y=0.3),
                    diameter=0.3,
                    width=0.08,
                )
            ],
            envelopes2d=[
                Envelope2d(
                    set="default",
                    polygon_points=[
                        PolygonPoint(x=-0.6, y=-0.4),
                        PolygonPoint(x=0.6, y=-0.4),
                        PolygonPoint(x=0.6, y=0.4),
                        PolygonPoint(x=-0.6, y=0.4),
                    ],
                )
            ],
        ),
        load_specification=LoadSpecification(
            load_positions=[f"compartment-{i}" for i in range(1, 13)],
            load_sets=[
                LoadSet(set_name="parcel", load_type="parcel", max_weight=10, pick_time=20, drop_time=20)
            ],
        ),
        vehicle_config=VehicleConfig(versions=[]),
    )


def samples(factory: HeaderFactory | None = None) -> dict[TopicKind, Any]:
    """One realistic message of each of the six kinds."""
    factory = factory or headers()
    return {
        TopicKind.ORDER: sample_order(factory),
        TopicKind.INSTANT_ACTIONS: sample_instant_actions(factory),
        TopicKind.STATE: sample_state(factory),
        TopicKind.VISUALIZATION: sample_visualization(factory),
        TopicKind.CONNECTION: sample_connection(factory),
        TopicKind.FACTSHEET: sample_factsheet(factory),
    }
