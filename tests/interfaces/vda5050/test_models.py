"""The six VDA 5050 2.1 message models against the official JSON schemas."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from vda5050_samples import OfficialSchemas, headers, sample_factsheet, sample_order, sample_state, samples

from interfaces.vda5050 import (
    MESSAGE_TYPES,
    ActionScope,
    ActionStatus,
    AgvAction,
    BlockingType,
    Connection,
    ConnectionState,
    Factsheet,
    Node,
    Order,
    PayloadError,
    State,
    TopicKind,
    Velocity,
    Visualization,
    parse,
    to_bytes,
    to_json,
)

KINDS = list(MESSAGE_TYPES)


@pytest.mark.parametrize("kind", KINDS, ids=str)
def test_every_message_we_build_validates_against_the_official_schema(
    kind: TopicKind, schemas: OfficialSchemas
) -> None:
    """A realistic message of each kind, serialised with to_json, has no violation of its 2.1 schema."""
    message = samples()[kind]
    assert schemas.errors(kind, to_json(message)) == []


@pytest.mark.parametrize("kind", KINDS, ids=str)
def test_bytes_payload_validates_and_round_trips(kind: TopicKind, schemas: OfficialSchemas) -> None:
    """to_bytes gives JSON that validates; parse of it gives back an equal model."""
    message = samples()[kind]
    payload = to_bytes(message)
    schemas.check(kind, json.loads(payload))
    assert parse(kind, payload) == message


def test_schema_validator_is_not_vacuous(schemas: OfficialSchemas) -> None:
    """The validator used above does refuse a state without orderId and a bad enum value."""
    document = to_json(sample_state())
    del document["orderId"]
    document["operatingMode"] = "ROBOT"
    errors = schemas.errors(TopicKind.STATE, document)
    assert any("orderId" in e for e in errors)
    assert any("ROBOT" in e for e in errors)


def test_json_keys_are_the_schemas_camel_case_names() -> None:
    """Python attributes are snake_case; the JSON uses the schema's names, including irregular ones."""
    order = to_json(sample_order())
    assert {"headerId", "orderId", "orderUpdateId", "zoneSetId", "serialNumber"} <= order.keys()
    assert order["nodes"][0]["nodePosition"]["allowedDeviationXY"] == 0.5
    limits = to_json(sample_factsheet())["protocolLimits"]["maxArrayLens"]
    assert limits == {"order.nodes": 200, "order.edges": 199, "state.actionStates": 100}
    assert to_json(sample_state())["safetyState"] == {"eStop": "NONE", "fieldViolation": False}


def test_optional_fields_left_unset_are_not_written() -> None:
    """None fields vanish from the JSON, while empty lists (e.g. actions=[]) are kept as the schema needs."""
    horizon = to_json(sample_order())["nodes"][2]
    assert horizon == {
        "nodeId": "stop-canteen",
        "sequenceId": 4,
        "released": False,
        "nodePosition": {"x": 200.0, "y": 10.0, "mapId": "campus-ground"},
        "actions": [],
    }


def test_timestamps_are_iso_8601_utc_with_z() -> None:
    """Timestamps are written YYYY-MM-DDTHH:MM:SS.mmmZ in UTC, whatever zone the datetime had."""
    cest = timezone(timedelta(hours=2))
    connection = Connection(
        header_id=1,
        timestamp=datetime(2024, 5, 1, 14, 0, 0, 123456, tzinfo=cest),
        version="2.1.0",
        manufacturer="acme",
        serial_number="cart-01",
        connection_state=ConnectionState.ONLINE,
    )
    assert to_json(connection)["timestamp"] == "2024-05-01T12:00:00.123Z"
    assert connection.timestamp == datetime(2024, 5, 1, 12, 0, 0, 123000, tzinfo=UTC)


def test_timestamp_without_zone_is_read_as_utc() -> None:
    """Some robots send timestamps without a zone; they are taken as UTC."""
    document = to_json(samples()[TopicKind.CONNECTION]) | {"timestamp": "2024-05-01T12:00:00.5"}
    message = parse(TopicKind.CONNECTION, json.dumps(document).encode())
    assert message.timestamp == datetime(2024, 5, 1, 12, 0, 0, 500000, tzinfo=UTC)


def _with_extras(document: dict[str, Any]) -> dict[str, Any]:
    """The document with unknown fields at the top and in a nested object."""
    extended = copy.deepcopy(document)
    extended["vendorDiagnostics"] = {"motorTemp": 41.5}
    extended["nodeStates"][0]["vendorHint"] = "slow zone"
    return extended


def test_unknown_extra_fields_are_accepted_and_kept(schemas: OfficialSchemas) -> None:
    """A state with vendor fields (top level and nested) parses; the fields survive re-serialisation."""
    document = _with_extras(to_json(sample_state()))
    state = parse(TopicKind.STATE, json.dumps(document).encode())
    assert isinstance(state, State)
    assert state.model_extra == {"vendorDiagnostics": {"motorTemp": 41.5}}
    assert state.node_states[0].model_extra == {"vendorHint": "slow zone"}
    again = to_json(state)
    assert again == document
    schemas.check(TopicKind.STATE, again)


# A 2.0.0 state as a 2.0 robot sends it: no `maps` (2.1), action status PAUSED (2.0), zone-less fields.
STATE_2_0 = {
    "headerId": 5120,
    "timestamp": "2023-11-02T08:15:30.25Z",
    "version": "2.0.0",
    "manufacturer": "OtherVendor",
    "serialNumber": "AMR-0042",
    "orderId": "",
    "orderUpdateId": 0,
    "lastNodeId": "",
    "lastNodeSequenceId": 0,
    "nodeStates": [],
    "edgeStates": [],
    "driving": False,
    "paused": True,
    "operatingMode": "AUTOMATIC",
    "actionStates": [{"actionId": "x1", "actionType": "lift", "actionStatus": "PAUSED"}],
    "batteryState": {"batteryCharge": 55, "charging": True},
    "errors": [],
    "information": [],
    "safetyState": {"eStop": "NONE", "fieldViolation": False},
    "agvPosition": {"x": 1, "y": 2, "theta": 0, "mapId": "hall", "positionInitialized": True},
}


def test_a_2_0_state_parses() -> None:
    """A 2.0.0 message without the 2.1 additions and with the 2.0 action status PAUSED is accepted."""
    state = parse(TopicKind.STATE, json.dumps(STATE_2_0).encode())
    assert isinstance(state, State)
    assert state.version == "2.0.0"
    assert state.action_states[0].action_status is ActionStatus.PAUSED
    assert state.maps is None
    assert state.battery_state.battery_charge == 55.0


def test_a_2_0_order_parses() -> None:
    """A 2.0.0 order (no corridor) from another master control is accepted."""
    document = to_json(sample_order()) | {"version": "2.0.1"}
    for edge in document["edges"]:
        edge.pop("corridor", None)
    order = parse(TopicKind.ORDER, json.dumps(document).encode())
    assert isinstance(order, Order)
    assert order.version == "2.0.1"


@pytest.mark.parametrize("version", ["1.1.0", "3.0.0", "v2", "2"])
def test_other_protocol_versions_are_refused(version: str) -> None:
    """Only 2.x messages parse: 1.x and 3.x differ in fields, and a version must be Major.Minor[.Patch]."""
    document = dict(STATE_2_0, version=version)
    with pytest.raises(PayloadError, match=r"State: version: .*not 2\.x"):
        parse(TopicKind.STATE, json.dumps(document).encode())


def test_visualization_needs_no_field_at_all() -> None:
    """Every visualization field is optional in the schema, so ``{}`` is a valid visualization."""
    assert parse(TopicKind.VISUALIZATION, b"{}") == Visualization()


def test_required_fields_are_required() -> None:
    """A node without ``actions`` is refused (the schema requires the list, even if empty)."""
    with pytest.raises(ValueError, match="actions"):
        Node.model_validate({"nodeId": "n", "sequenceId": 0, "released": True})


def test_schema_bounds_are_enforced() -> None:
    """Bounds of the schema hold on input: theta beyond ±π and negative orderUpdateId are refused."""
    document = to_json(sample_order())
    document["nodes"][0]["nodePosition"]["theta"] = 4.0
    with pytest.raises(PayloadError, match=r"nodes\.0\.nodePosition\.theta"):
        parse(TopicKind.ORDER, json.dumps(document).encode())
    document = to_json(sample_order()) | {"orderUpdateId": -1}
    with pytest.raises(PayloadError, match="orderUpdateId"):
        parse(TopicKind.ORDER, json.dumps(document).encode())


def test_nan_is_refused_when_building() -> None:
    """NaN cannot be put in a model (JSON has no NaN; it would be written as null and fail the schema)."""
    with pytest.raises(ValueError, match="finite"):
        Velocity(vx=float("nan"))


def test_factsheet_blocking_types_cannot_validate_in_2_1(schemas: OfficialSchemas) -> None:
    """The 2.1 schema's blockingTypes accepts no array: we parse it but must leave it unset when sending."""
    sheet = sample_factsheet()
    action = AgvAction(
        action_type="pick", action_scopes=[ActionScope.NODE], blocking_types=[BlockingType.HARD]
    )
    broken = sheet.model_copy(
        update={"protocol_features": sheet.protocol_features.model_copy(update={"agv_actions": [action]})}
    )
    document = to_json(broken)
    assert any("blockingTypes" in e for e in schemas.errors(TopicKind.FACTSHEET, document))
    parsed = parse(TopicKind.FACTSHEET, json.dumps(document).encode())
    assert isinstance(parsed, Factsheet)
    assert parsed.protocol_features.agv_actions[0].blocking_types == [BlockingType.HARD]


def test_state_of_a_robot_with_a_different_version_keeps_it() -> None:
    """A robot configured for 2.0.0 stamps that version; the message still validates the 2.1 schema."""
    state = sample_state(headers(version="2.0.0"))
    assert to_json(state)["version"] == "2.0.0"
