"""Our actions: typed parameters in and out of VDA 5050 actions, defaults, ids, factsheet declaration."""

from __future__ import annotations

import pytest
from vda5050_samples import OfficialSchemas, headers, sample_factsheet, sample_order

from interfaces.vda5050 import (
    DEFAULT_BLOCKING,
    PARAMS_OF,
    Action,
    ActionError,
    ActionParameter,
    ActionParams,
    ActionType,
    BlockingType,
    CancelOrder,
    Drop,
    EnterLift,
    ExitLift,
    FactsheetRequest,
    Handoff,
    HandoffRole,
    InitPosition,
    InstantActions,
    OpenCompartment,
    OperatingMode,
    Pick,
    SetOperatingMode,
    StartPause,
    StateRequest,
    StopPause,
    TopicKind,
    ValueDataType,
    WaitForPickup,
    action_parameters,
    agv_actions,
    duplicate_action_ids,
    make_action,
    read_action,
    to_json,
)
from interfaces.vda5050.actions import (
    BuildingAlarm,
    CancelOperatingMode,
    ConfirmOperatingMode,
    SafetyAcknowledge,
    SafetyRelease,
    SafetyStop,
    StartCharging,
    StopCharging,
    StopKind,
)

EXAMPLES: list[ActionParams] = [
    Pick(station_name="station-1", load_type="parcel", load_id="p-17"),
    Drop(load_id="p-17", height=0.4),
    StartPause(),
    StopPause(),
    CancelOrder(),
    InitPosition(x=1.5, y=-2.0, theta=0.5, map_id="H2", last_node_id="h2a"),
    StateRequest(),
    FactsheetRequest(),
    OpenCompartment(compartment=4),
    WaitForPickup(compartment=4, timeout_s=300.0),
    Handoff(role=HandoffRole.GIVER, peer_serial_number="indoor-07", compartments=[1, 2, 5]),
    EnterLift(building="H", lift="LA", floor="H1", session_id="lift-session-9"),
    ExitLift(building="H", lift="LA", floor="H3"),
    SetOperatingMode(mode=OperatingMode.SERVICE),
    ConfirmOperatingMode(operator="wang", role="operator"),
    CancelOperatingMode(operator="wang"),
    SafetyStop(kind=StopKind.BUILDING, building="ADM", operator="orchestrator", role="system"),
    SafetyRelease(kind=StopKind.FLEET, operator="li", role="admin"),
    SafetyAcknowledge(operator="li"),
    BuildingAlarm(building="ADM", active=True),
    StartCharging(),
    StopCharging(),
]


def test_every_action_type_has_an_example_parameters_and_a_default() -> None:
    """All twenty-two action types have a parameter model, a default blocking type and an example here."""
    assert (
        {type(p).action_type for p in EXAMPLES} == set(ActionType) == set(PARAMS_OF) == set(DEFAULT_BLOCKING)
    )


@pytest.mark.parametrize("params", EXAMPLES, ids=lambda p: type(p).action_type.value)
def test_parameters_round_trip_through_an_action(params: ActionParams) -> None:
    """make_action then read_action gives the same typed parameters back."""
    action = make_action(params)
    assert action.action_type == params.action_type.value
    assert read_action(Action.model_validate(to_json(action))) == params


def test_actions_sent_instantly_validate_against_the_schema(schemas: OfficialSchemas) -> None:
    """An instantActions message carrying every action type validates against the 2.1 schema."""
    message = headers().make(InstantActions, actions=[make_action(p) for p in EXAMPLES])
    schemas.check(TopicKind.INSTANT_ACTIONS, to_json(message))


def test_parameters_use_camel_case_keys() -> None:
    """Parameter keys are camelCase as in the table: timeoutS, sessionId, peerSerialNumber, mapId."""
    assert action_parameters(make_action(WaitForPickup(compartment=2, timeout_s=60))) == {
        "compartment": 2,
        "timeoutS": 60.0,
    }
    assert action_parameters(make_action(EXAMPLES[10])) == {
        "role": "giver",
        "peerSerialNumber": "indoor-07",
        "compartments": [1, 2, 5],
    }
    assert set(action_parameters(make_action(EXAMPLES[11]))) == {"building", "lift", "floor", "sessionId"}


def test_actions_without_parameters_leave_the_list_out() -> None:
    """cancelOrder has no parameters, so actionParameters is omitted."""
    assert "actionParameters" not in to_json(make_action(CancelOrder()))


def test_default_and_explicit_blocking_types() -> None:
    """pick is HARD, openCompartment SOFT, cancelOrder NONE by default; an explicit one wins."""
    assert make_action(Pick()).blocking_type is BlockingType.HARD
    assert make_action(OpenCompartment(compartment=1)).blocking_type is BlockingType.SOFT
    assert make_action(CancelOrder()).blocking_type is BlockingType.NONE
    assert make_action(Pick(), blocking_type=BlockingType.SOFT).blocking_type is BlockingType.SOFT


def test_action_ids_are_unique_unless_given() -> None:
    """Generated ids differ across 1000 actions; a given id is used as is."""
    assert len({make_action(StateRequest()).action_id for _ in range(1000)}) == 1000
    assert make_action(StateRequest(), action_id="mine").action_id == "mine"


def test_duplicate_action_ids_are_found() -> None:
    """duplicate_action_ids lists the ids used twice across an order's nodes and edges."""
    order = sample_order()
    assert duplicate_action_ids(order.actions()) == []
    twice = [*order.actions(), make_action(Pick(), action_id="a-open")]
    assert duplicate_action_ids(twice) == ["a-open"]


def _action(kind: str, /, **values: object) -> Action:
    """A received action of type ``kind`` with raw parameter values."""
    parameters = [ActionParameter.model_validate({"key": k, "value": v}) for k, v in values.items()]
    return Action(
        action_type=kind, action_id="r-1", blocking_type=BlockingType.HARD, action_parameters=parameters
    )


@pytest.mark.parametrize(
    ("action", "reason"),
    [
        (_action("openCompartment"), r"parameter compartment: Field required"),
        (
            _action("openCompartment", compartment="3"),
            r"parameter compartment: Input should be a valid integer",
        ),
        (
            _action("openCompartment", compartment=True),
            r"parameter compartment: Input should be a valid integer",
        ),
        (_action("openCompartment", compartment=-1), r"parameter compartment: Input should be greater"),
        (_action("waitForPickup", compartment=1, timeoutS=0), r"parameter timeoutS: Input should be greater"),
        (_action("waitForPickup", compartment=1, timeoutS=9, stop="s1"), r"give stop and window together"),
        (_action("safetyStop", kind="building"), r"give building exactly when kind is 'building'"),
        (_action("safetyStop", kind="fleet", role="god"), r"parameter role"),
        (_action("buildingAlarm", building="ADM", active="yes"), r"parameter active"),
        (_action("handoff", role="thief", peerSerialNumber="x", compartments=[1]), r"parameter role: Input"),
        (_action("handoff", role="taker", peerSerialNumber="x", compartments=[]), r"parameter compartments"),
        (_action("setOperatingMode", mode="TURBO"), r"parameter mode: Input should be 'AUTOMATIC'"),
        (_action("enterLift", building="H", lift="LA", floor=2, sessionId="s"), r"parameter floor"),
        (_action("teleport", x=1), r"unknown actionType 'teleport'"),
    ],
)
def test_bad_received_parameters_are_refused(action: Action, reason: str) -> None:
    """Missing, mistyped, out-of-range parameters and unknown types raise ActionError with one line."""
    with pytest.raises(ActionError, match=reason) as exc:
        read_action(action)
    assert "\n" not in str(exc.value)
    assert str(exc.value).startswith("action r-1")


def test_duplicate_parameter_keys_are_refused() -> None:
    """A parameter key given twice is ambiguous and refused."""
    action = _action("openCompartment", compartment=1)
    doubled = action.model_copy(
        update={
            "action_parameters": [
                *(action.action_parameters or []),
                ActionParameter(key="compartment", value=2),
            ]
        }
    )
    with pytest.raises(ActionError, match="'compartment' given twice"):
        action_parameters(doubled)


def test_extra_parameter_keys_are_ignored() -> None:
    """A vendor's extra parameter does not stop us reading the ones we know."""
    assert read_action(_action("openCompartment", compartment=2, ledColour="green")) == OpenCompartment(
        compartment=2
    )


def test_factsheet_declares_our_actions(schemas: OfficialSchemas) -> None:
    """agv_actions() declares all types with scopes and typed parameters; the factsheet validates."""
    declared = {a.action_type: a for a in agv_actions()}
    assert set(declared) == {t.value for t in ActionType}
    handoff = declared["handoff"]
    assert [(p.key, p.value_data_type, p.is_optional) for p in handoff.action_parameters or []] == [
        ("role", ValueDataType.STRING, False),
        ("peerSerialNumber", ValueDataType.STRING, False),
        ("compartments", ValueDataType.ARRAY, False),
    ]
    wait = {p.key: p.value_data_type for p in declared["waitForPickup"].action_parameters or []}
    assert wait == {
        "compartment": ValueDataType.INTEGER,
        "timeoutS": ValueDataType.NUMBER,
        "stop": ValueDataType.STRING,
        "window": ValueDataType.STRING,
    }
    assert declared["cancelOrder"].action_parameters is None
    assert [s.value for s in declared["openCompartment"].action_scopes] == ["INSTANT", "NODE"]
    schemas.check(TopicKind.FACTSHEET, to_json(sample_factsheet()))


LIFT_POSES: list[ActionParams] = [
    EnterLift(
        building="H", lift="LA", floor="H1", session_id="s-9", x=200.0, y=20.0, theta=1.57, map_id="H1"
    ),
    ExitLift(building="H", lift="LA", floor="H3", x=200.0, y=18.5, theta=-1.57, map_id="H3"),
    ExitLift(building="H", lift="LA", floor="H3", x=0.0, y=0.0, theta=0.0),
]


@pytest.mark.parametrize("params", LIFT_POSES, ids=lambda p: f"{type(p).action_type.value}-{p.map_id}")
def test_lift_poses_round_trip_and_validate_against_the_schema(
    params: ActionParams, schemas: OfficialSchemas
) -> None:
    """enterLift/exitLift with the optional pose (x, y, theta, mapId) go out as plain key/values that the
    2.1 schema accepts, and read back the same (a zero pose is a pose, not "none")."""
    action = make_action(params)
    values = action_parameters(action)
    assert {"x", "y", "theta"} <= set(values)
    assert read_action(Action.model_validate(to_json(action))) == params
    schemas.check(TopicKind.INSTANT_ACTIONS, to_json(headers().make(InstantActions, actions=[action])))


def test_lift_actions_without_a_pose_stay_as_before() -> None:
    """Without a pose nothing new is sent (older robots see the parameters they know) and has_pose is
    False; received integers read as numbers."""
    enter = EnterLift(building="H", lift="LA", floor="H1", session_id="s")
    assert set(action_parameters(make_action(enter))) == {"building", "lift", "floor", "sessionId"}
    assert not enter.has_pose
    read = read_action(_action("exitLift", building="H", lift="LA", floor="H3", x=3, y=-1, theta=0))
    assert isinstance(read, ExitLift) and read.has_pose and (read.x, read.y, read.theta) == (3.0, -1.0, 0.0)
    assert read.map_id is None


@pytest.mark.parametrize(
    ("action", "reason"),
    [
        (_action("enterLift", building="H", lift="LA", floor="H1", sessionId="s", x=1.0, y=2.0), r"together"),
        (_action("exitLift", building="H", lift="LA", floor="H3", theta=0.5), r"together"),
        (_action("exitLift", building="H", lift="LA", floor="H3", mapId="H3"), r"mapId needs a pose"),
        (_action("exitLift", building="H", lift="LA", floor="H3", x="1", y=0, theta=0), r"parameter x"),
        (_action("exitLift", building="H", lift="LA", floor="H3", x=1, y=0, theta=0, mapId=""), r"mapId"),
    ],
)
def test_partial_or_bad_lift_poses_are_refused(action: Action, reason: str) -> None:
    """A pose is all of x, y, theta or nothing; mapId only with one; values are typed strictly."""
    with pytest.raises(ActionError, match=reason):
        read_action(action)


def test_factsheet_declares_the_lift_pose_as_optional() -> None:
    """The factsheet declares x, y, theta (NUMBER) and mapId (STRING) of both lift actions optional,
    the lift's names required."""
    declared = {a.action_type: a for a in agv_actions([ActionType.ENTER_LIFT, ActionType.EXIT_LIFT])}
    for kind in ("enterLift", "exitLift"):
        parameters = {
            p.key: (p.value_data_type, p.is_optional) for p in declared[kind].action_parameters or []
        }
        assert parameters["x"] == parameters["y"] == parameters["theta"] == (ValueDataType.NUMBER, True)
        assert parameters["mapId"] == (ValueDataType.STRING, True)
        assert parameters["building"] == parameters["floor"] == (ValueDataType.STRING, False)
    assert declared["enterLift"].action_parameters is not None
    assert ("sessionId", ValueDataType.STRING, False) in [
        (p.key, p.value_data_type, p.is_optional) for p in declared["enterLift"].action_parameters
    ]
