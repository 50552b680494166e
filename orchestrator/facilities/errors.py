"""Errors of the facilities client (lifts, doors, gates)::

FacilityError
├── LiftAborted        the bridge ended or refused the lift session (``reason``: FIRE, OFFLINE, ...)
├── GateRefused        a gate refused the credential
└── FacilityTimeout    something did not happen in time
    ├── LiftTimeout    no lift state, no answer, the cabin did not come or arrive
    └── DoorTimeout    a door or gate did not open
"""

from __future__ import annotations

from interfaces.lift import EndReason, SessionOutcome


class FacilityError(Exception):
    """Base of the facilities client's errors."""


class LiftAborted(FacilityError):
    """The lift session is over against the robot's will: refused, aborted or released by the bridge."""

    def __init__(self, session_id: str, outcome: SessionOutcome, reason: EndReason | None) -> None:
        self.session_id = session_id
        self.outcome = outcome
        self.reason = reason
        super().__init__(f"lift session {session_id} {outcome.lower()}: {reason or 'no reason given'}")


class GateRefused(FacilityError):
    """A gate did not accept the robot's credential."""

    def __init__(self, gate: str, reason: str) -> None:
        self.gate = gate
        self.reason = reason
        super().__init__(f"gate {gate} refused: {reason}")


class FacilityTimeout(FacilityError):
    """Something did not happen in time."""


class LiftTimeout(FacilityTimeout):
    """No lift state, no answer from the bridge, or the cabin did not come or arrive in time."""


class DoorTimeout(FacilityTimeout):
    """A door or gate did not open in time."""
