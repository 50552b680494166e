"""Lift, door and gate messages: JSON round trips, validation, topics."""

from __future__ import annotations

import json

import pytest
from pydantic import ValidationError

from interfaces.door import DoorMode, DoorRequest, DoorStateMsg, door_requests, door_topic
from interfaces.gate import GateDecision, GateRequest, GateStateMsg, gate_requests, gate_topic
from interfaces.lift import (
    DoorState,
    EndReason,
    LiftMode,
    LiftRequest,
    LiftRequestType,
    LiftState,
    Passage,
    SessionEnd,
    SessionOutcome,
    lift_requests,
    lift_states,
    lift_topic,
    parse_lift_topic,
)


def request(**over: object) -> LiftRequest:
    data: dict[str, object] = {
        "building": "ADM",
        "lift_name": "ADM-L1",
        "session_id": "s1",
        "robot_id": "indoor-01",
        "request_type": "AGV_MODE",
        "destination_floor": "ADM-1F",
        "request_time": 1767000000.5,
    }
    data.update(over)
    return LiftRequest.model_validate(data)


def test_lift_request_round_trip_with_names_not_numbers() -> None:
    """A request is JSON with enum names; parsing the dump gives the same request; defaults are the
    first step of a session (doors open, robot outside, no ETA)."""
    req = request(eta=1767000040.0)
    data = json.loads(req.model_dump_json())
    assert (
        data["request_type"] == "AGV_MODE" and data["door_state"] == "OPEN" and data["passage"] == "OUTSIDE"
    )
    assert LiftRequest.model_validate_json(req.model_dump_json()) == req
    assert request().eta is None and request().passage is Passage.OUTSIDE


def test_lift_request_validation() -> None:
    """AGV_MODE needs a destination; END_SESSION does not; unknown types and negative times are refused;
    unknown keys are ignored."""
    with pytest.raises(ValidationError, match="needs a destination_floor"):
        request(destination_floor="")
    assert (
        request(request_type="END_SESSION", destination_floor="").request_type is LiftRequestType.END_SESSION
    )
    for bad in ({"request_type": "FLY"}, {"request_time": -1}, {"session_id": ""}, {"passage": "ON_ROOF"}):
        with pytest.raises(ValidationError):
            request(**bad)
    assert request(vendor_extra=1).session_id == "s1"


def test_passage_doorway() -> None:
    """ENTERING and EXITING are the doorway; OUTSIDE and INSIDE are not."""
    assert [p.in_doorway for p in Passage] == [False, True, False, True]


def test_session_end_needs_a_reason_unless_finished() -> None:
    """RELEASED and ABORTED carry a reason; FINISHED may not need one."""
    SessionEnd(session_id="s", outcome=SessionOutcome.FINISHED, time=1.0)
    SessionEnd(session_id="s", outcome=SessionOutcome.ABORTED, reason=EndReason.FIRE, time=1.0)
    with pytest.raises(ValidationError, match="needs a reason"):
        SessionEnd(session_id="s", outcome=SessionOutcome.RELEASED, time=1.0)


def test_lift_state_round_trip_and_end_lookup() -> None:
    """A state survives JSON; ``end_of`` finds a session's end record."""
    end = SessionEnd(session_id="s1", outcome=SessionOutcome.ABORTED, reason=EndReason.OFFLINE, time=2.0)
    state = LiftState(
        lift_time=3.0,
        building="ADM",
        lift_name="ADM-L1",
        available_floors=["ADM-1F", "ADM-2F"],
        current_floor="ADM-1F",
        door_state=DoorState.OPEN,
        available_modes=[LiftMode.HUMAN, LiftMode.AGV],
        current_mode=LiftMode.AGV,
        session_id="s2",
        queue=["s3"],
        ended=[end],
    )
    again = LiftState.model_validate_json(state.model_dump_json())
    assert again == state and again.end_of("s1") == end and again.end_of("s2") is None


def test_lift_topics() -> None:
    """Topics follow robopost/lift/{building}/{lift}/{request|state}; parsing gives the parts back."""
    assert lift_topic("ADM", "ADM-L1", "state") == "robopost/lift/ADM/ADM-L1/state"
    assert lift_requests("TEA") == "robopost/lift/TEA/+/request"
    assert lift_states("TEA") == "robopost/lift/TEA/+/state"
    assert parse_lift_topic("robopost/lift/ADM/ADM-L1/request") == ("ADM", "ADM-L1", "request")
    for other in ("robopost/door/ADM/D/request", "robopost/lift/ADM/request", "robopost/lift//L/state"):
        assert parse_lift_topic(other) is None


def test_door_messages_and_topics() -> None:
    """Door requests and states round-trip as JSON; topics are robopost/door/{building}/{door}/..."""
    req = DoorRequest(
        building="ADM", door_name="D1", requester_id="r", requested_mode=DoorMode.OPEN, request_time=1
    )
    assert DoorRequest.model_validate_json(req.model_dump_json()) == req
    state = DoorStateMsg(
        door_time=1.0, building="ADM", door_name="D1", current_mode=DoorMode.OPEN, holders=["r"]
    )
    assert DoorStateMsg.model_validate_json(state.model_dump_json()) == state
    assert door_topic("ADM", "D1", "state") == "robopost/door/ADM/D1/state"
    assert door_requests("ADM") == "robopost/door/ADM/+/request"


def test_gate_messages_carry_the_credential_and_decisions() -> None:
    """A gate request carries the credential and a request id; the state finds a decision by id."""
    req = GateRequest(
        building="TEA",
        gate_name="TEA-gate",
        requester_id="r",
        request_id="q1",
        requested_mode=DoorMode.OPEN,
        credential="secret",
        request_time=1.0,
    )
    assert json.loads(req.model_dump_json())["credential"] == "secret"
    decision = GateDecision(
        request_id="q1", requester_id="r", accepted=False, reason="credential refused", time=1
    )
    state = GateStateMsg(gate_time=1.0, building="TEA", gate_name="TEA-gate", decisions=[decision])
    assert GateStateMsg.model_validate_json(state.model_dump_json()).decision_for("q1") == decision
    assert state.decision_for("q2") is None
    assert gate_topic("TEA", "TEA-gate", "request") == "robopost/gate/TEA/TEA-gate/request"
    assert gate_requests("TEA") == "robopost/gate/TEA/+/request"
