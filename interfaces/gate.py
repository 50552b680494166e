"""Gate (access barrier, 闸机) messages: like doors, but a request carries the robot's credential.

Topics: ``robopost/gate/{building}/{gate}/request`` (QoS 1) and ``robopost/gate/{building}/{gate}/state``
(retained). A gate opens only for a credential it knows; every decision is reported in the gate's
state (``decisions``, newest first) with the request's ``request_id``, so the requester learns whether
it was refused and why. Holding works as for doors (repeat OPEN while passing, CLOSED when through);
each repeated OPEN carries the credential again.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from interfaces.door import DoorMode

GATE_TOPIC_ROOT = "robopost/gate"


class _Message(BaseModel):
    """Gate messages: immutable, unknown keys ignored (newer senders may add fields)."""

    model_config = ConfigDict(frozen=True, extra="ignore")


class GateRequest(_Message):
    """Open (and hold) or release a gate, showing a credential."""

    building: str = Field(min_length=1)
    gate_name: str = Field(min_length=1)
    requester_id: str = Field(min_length=1, max_length=128)
    request_id: str = Field(min_length=1, max_length=128)
    requested_mode: DoorMode
    credential: str = Field(default="", max_length=1024)
    request_time: float = Field(ge=0)


class GateDecision(_Message):
    """The bridge's answer to one gate request."""

    request_id: str
    requester_id: str
    accepted: bool
    reason: str = ""
    time: float


class GateStateMsg(_Message):
    """A gate's state, published retained."""

    gate_time: float
    building: str
    gate_name: str
    current_mode: DoorMode = DoorMode.UNKNOWN
    holders: list[str] = Field(default_factory=list)
    decisions: list[GateDecision] = Field(default_factory=list)

    def decision_for(self, request_id: str) -> GateDecision | None:
        """The decision on ``request_id``, if this state carries it."""
        return next((d for d in self.decisions if d.request_id == request_id), None)


def gate_topic(building: str, gate: str, kind: str) -> str:
    """``robopost/gate/{building}/{gate}/{kind}`` with ``kind`` request or state."""
    return f"{GATE_TOPIC_ROOT}/{building}/{gate}/{kind}"


def gate_requests(building: str) -> str:
    """The subscription pattern for every gate request of a building."""
    return gate_topic(building, "+", "request")
