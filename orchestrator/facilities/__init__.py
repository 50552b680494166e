"""Client of the elevator bridge: lift sessions, doors and gates over MQTT (see ``client``).

Speaks only the protocols of ``interfaces.lift``, ``interfaces.door`` and ``interfaces.gate``; never
imports ``elevator_bridge``. Errors: see ``errors`` (``FacilityError`` and below).
"""

from orchestrator.facilities.client import DoorPass, Facilities, LiftSession
from orchestrator.facilities.errors import (
    DoorTimeout,
    FacilityError,
    FacilityTimeout,
    GateRefused,
    LiftAborted,
    LiftTimeout,
)

__all__ = [
    "DoorPass",
    "DoorTimeout",
    "Facilities",
    "FacilityError",
    "FacilityTimeout",
    "GateRefused",
    "LiftAborted",
    "LiftSession",
    "LiftTimeout",
]
