"""Door messages between robots/orchestrator and the elevator bridge (which also drives doors), over MQTT.

Semantics follow Open-RMF's ``rmf_door_msgs`` DoorRequest / DoorState (modes CLOSED, MOVING, OPEN,
OFFLINE, UNKNOWN), as JSON with names instead of numbers. Topics:
``robopost/door/{building}/{door}/request`` (QoS 1) and ``robopost/door/{building}/{door}/state``
(retained).

Holding a door: a requester sends ``OPEN`` and repeats it (every second or two) while it passes; the
door stays open while any requester holds it, at most the door's maximum hold time per requester. The
requester sends ``CLOSED`` once through (or simply stops repeating); the door closes by itself a few
seconds after the last hold ends.
"""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field

DOOR_TOPIC_ROOT = "robopost/door"


class DoorMode(StrEnum):
    CLOSED = "CLOSED"
    MOVING = "MOVING"
    OPEN = "OPEN"
    OFFLINE = "OFFLINE"
    UNKNOWN = "UNKNOWN"


class _Message(BaseModel):
    """Door messages: immutable, unknown keys ignored (newer senders may add fields)."""

    model_config = ConfigDict(frozen=True, extra="ignore")


class DoorRequest(_Message):
    """Open (and hold) or release a door. Only OPEN and CLOSED may be requested."""

    building: str = Field(min_length=1)
    door_name: str = Field(min_length=1)
    requester_id: str = Field(min_length=1, max_length=128)
    requested_mode: DoorMode
    request_time: float = Field(ge=0)


class DoorStateMsg(_Message):
    """A door's state, published retained; ``holders`` are the requesters keeping it open."""

    door_time: float
    building: str
    door_name: str
    current_mode: DoorMode = DoorMode.UNKNOWN
    holders: list[str] = Field(default_factory=list)


def door_topic(building: str, door: str, kind: str) -> str:
    """``robopost/door/{building}/{door}/{kind}`` with ``kind`` request or state."""
    return f"{DOOR_TOPIC_ROOT}/{building}/{door}/{kind}"


def door_requests(building: str) -> str:
    """The subscription pattern for every door request of a building."""
    return door_topic(building, "+", "request")
