"""Lift (elevator) messages between robots/orchestrator and the elevator bridge, over MQTT.

Semantics follow Open-RMF's ``rmf_lift_msgs`` LiftRequest / LiftState (request types END_SESSION,
AGV_MODE, HUMAN_MODE; door CLOSED / MOVING / OPEN; motion STOPPED / UP / DOWN / UNKNOWN; modes UNKNOWN,
HUMAN, AGV, FIRE, OFFLINE, EMERGENCY), written as JSON with names instead of numbers.

Topics: ``robopost/lift/{building}/{lift}/request`` (QoS 1) and ``robopost/lift/{building}/{lift}/state``
(retained).
"""

from __future__ import annotations

from enum import StrEnum


class LiftRequestType(StrEnum):
    END_SESSION = "END_SESSION"
    AGV_MODE = "AGV_MODE"
    HUMAN_MODE = "HUMAN_MODE"


class DoorState(StrEnum):
    CLOSED = "CLOSED"
    MOVING = "MOVING"
    OPEN = "OPEN"


class MotionState(StrEnum):
    STOPPED = "STOPPED"
    UP = "UP"
    DOWN = "DOWN"
    UNKNOWN = "UNKNOWN"


class LiftMode(StrEnum):
    UNKNOWN = "UNKNOWN"
    HUMAN = "HUMAN"
    AGV = "AGV"
    FIRE = "FIRE"
    OFFLINE = "OFFLINE"
    EMERGENCY = "EMERGENCY"


def lift_topic(building: str, lift: str, kind: str) -> str:
    """``robopost/lift/{building}/{lift}/{kind}`` with ``kind`` request or state."""
    return f"robopost/lift/{building}/{lift}/{kind}"
