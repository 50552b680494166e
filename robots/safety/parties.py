"""Who acts on a robot's safety and control: defined in ``interfaces.teleop`` (the orchestrator stamps
them too) and re-exported here."""

from interfaces.teleop import SYSTEM, Party, PartyKind, Role, control_centre, on_site

__all__ = ["SYSTEM", "Party", "PartyKind", "Role", "control_centre", "on_site"]
