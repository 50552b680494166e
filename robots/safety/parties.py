"""Who acts on a robot's safety and control: the party kinds, their roles, and one ``Party`` value.

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

from dataclasses import dataclass
from enum import StrEnum


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
