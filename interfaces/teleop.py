"""Who acts on a robot (``Party``) and the wire format of remote driving (``.../teleop``).

Shared by the orchestrator (it stamps who drives and sends the commands) and the robot
(``robots.safety`` checks them). Wire format of ``{interface}/{major}/{manufacturer}/{serial}/teleop``
(a JSON object, QoS 0, never retained)::

    {"seq": 41, "vx": 0.8, "omega": -0.2, "sentAt": 1714564800.125,
     "session": "c0f3…", "operator": "alice", "source": "controlCentre"}

``seq`` int >= 0, ``vx`` m/s forward, ``omega`` rad/s counter-clockwise, ``sentAt`` epoch seconds;
``session``, ``operator`` and ``source`` (``controlCentre`` | ``onSite``) are optional.

A **party** is whoever sends a stop, an acknowledgement, a release, a mode request or a teleop command:

* ``ON_SITE``         a person at the vehicle: the reset key and the enabling handheld on the robot.
                      Being there is the authority (the key is physical); the role says what the key
                      holder may do (a viewer key does nothing).
* ``CONTROL_CENTRE``  a console user of the orchestrator, authenticated there; the role is the
                      console's role (``viewer`` / ``operator`` / ``admin``, as ``robopost user`` grants).
* ``SYSTEM``          automation without a person: the orchestrator's own rules, the elevator bridge's
                      fire alarm. It may stop a robot but never release, acknowledge or take control.

The safety modules check the kind and role of a party; proving who a party is (passwords, the key) is
the job of the edge that builds it (the orchestrator's API, the robot's panel driver).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any


class PartyKind(StrEnum):
    """Where a party acts from."""

    ON_SITE = "onSite"
    CONTROL_CENTRE = "controlCentre"
    SYSTEM = "system"


class Role(StrEnum):
    """What a party is trusted with: the console roles (``orchestrator.api.operators``) and ``none``."""

    NONE = "none"
    VIEWER = "viewer"
    OPERATOR = "operator"
    ADMIN = "admin"

    @property
    def may_act(self) -> bool:
        """Operators and admins act (acknowledge, release, switch modes, drive); viewers only look."""
        return self in (Role.OPERATOR, Role.ADMIN)


@dataclass(frozen=True, slots=True)
class Party:
    """One acting party: its kind, a name for the audit trail (user name, key id) and its role."""

    kind: PartyKind
    who: str = ""
    role: Role = Role.OPERATOR

    @property
    def may_act(self) -> bool:
        """Whether this party may acknowledge, release or switch at all (people with an acting role)."""
        return self.kind is not PartyKind.SYSTEM and self.role.may_act

    def __str__(self) -> str:
        name = f" {self.who}" if self.who else ""
        return f"{self.kind.value}{name} ({self.role.value})"


def on_site(who: str = "key", role: Role = Role.OPERATOR) -> Party:
    """A person at the vehicle (reset key / handheld)."""
    return Party(PartyKind.ON_SITE, who, role)


def control_centre(who: str, role: Role = Role.OPERATOR) -> Party:
    """A console user of the orchestrator."""
    return Party(PartyKind.CONTROL_CENTRE, who, role)


SYSTEM = Party(PartyKind.SYSTEM, "system", Role.NONE)
"""Automation (orchestrator rules, the elevator bridge's fire alarm): may stop, never release."""


@dataclass(frozen=True, slots=True)
class TeleopCommand:
    """One remote-driving command (module docstring: wire format)."""

    seq: int
    vx: float
    omega: float
    sent_at: float
    session: str = ""
    operator: str = ""
    source: PartyKind = PartyKind.CONTROL_CENTRE


def teleop_from_json(payload: Mapping[str, Any]) -> TeleopCommand:
    """A ``TeleopCommand`` from the parsed JSON of a ``.../teleop`` message; ``ValueError`` if malformed."""
    if not isinstance(payload, Mapping):
        raise ValueError("teleop: the payload must be a JSON object")
    try:
        seq, vx, omega, sent_at = payload["seq"], payload["vx"], payload["omega"], payload["sentAt"]
    except KeyError as exc:
        raise ValueError(f"teleop: missing field {exc.args[0]!r}") from None
    if not isinstance(seq, int) or isinstance(seq, bool) or seq < 0:
        raise ValueError(f"teleop: seq must be an int >= 0, got {seq!r}")
    numbers = {"vx": vx, "omega": omega, "sentAt": sent_at}
    for name, value in numbers.items():
        if not isinstance(value, int | float) or isinstance(value, bool) or not math.isfinite(value):
            raise ValueError(f"teleop: {name} must be a finite number, got {value!r}")
    texts = {name: payload.get(name, "") for name in ("session", "operator")}
    for name, value in texts.items():
        if not isinstance(value, str):
            raise ValueError(f"teleop: {name} must be a string, got {value!r}")
    try:
        source = PartyKind(payload.get("source", PartyKind.CONTROL_CENTRE.value))
    except ValueError:
        raise ValueError(
            f"teleop: source must be controlCentre or onSite, got {payload['source']!r}"
        ) from None
    if source is PartyKind.SYSTEM:
        raise ValueError("teleop: source must be controlCentre or onSite, got 'system'")
    return TeleopCommand(
        seq, float(vx), float(omega), float(sent_at), texts["session"], texts["operator"], source
    )


def teleop_to_json(command: TeleopCommand) -> dict[str, Any]:
    """The JSON object of ``command`` (the wire format of the module docstring)."""
    return {
        "seq": command.seq,
        "vx": command.vx,
        "omega": command.omega,
        "sentAt": command.sent_at,
        "session": command.session,
        "operator": command.operator,
        "source": command.source.value,
    }
