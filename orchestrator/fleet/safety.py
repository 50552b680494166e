"""Fleet-wide and building safety policy of the orchestrator (issue 9): pure logic, no I/O.

``FleetSafety`` remembers what stays active across robots' reconnections — the console's "stop all"
and the buildings whose fire alarm is on — and says which instant actions to send:

* ``stop_all(party)`` / ``release_all(party)``: ``safetyStop`` / ``safetyRelease`` of kind ``fleet``
  for every robot. "Stop all" stays active until released; ``on_robot_online(serial, building)`` gives
  the actions a robot that (re)connects must get again (the fleet stop, and the alarm and building stop
  of the building it is in).
* ``fire(building, active, robots_in_building)``: a lift of ``building`` reports mode FIRE (or stops
  doing so). On: ``buildingAlarm(active=true)`` to every robot in the building, plus
  ``safetyStop(kind=building)`` when the building's policy is ``stop``. With policy ``safe_spot`` only the
  alarm is sent: the robot drives to its safe spot itself (the robot side decides; no order is sent
  from here). Off: ``buildingAlarm(active=false)`` — the building stop stays latched on the robots until
  an operator releases it (``release_building``: ``safetyRelease(kind=building)``); robots never resume
  by themselves.

Which robots are "in" a building: those whose last position's ``mapId`` is one of the building's floor
ids, or whose ``lastNodeId`` is an indoor node of the building (``robots_in(site, views, building)``).
Robots merely bound for the building are not included: they are stopped by the building stop when they
report being there, because ``on_robot_online`` / the next call of ``fire`` covers them (the caller
re-runs ``fire`` on each lift state while FIRE lasts).

``robot_available(view)``: whether the dispatcher may give a robot orders (online, operating mode
AUTOMATIC, no e-stop reported by the robot, and no stop of ours active on it).

**Restarts.** The standing stops (``standing()``: the fleet stop and the building stops, each with who
gave it) are written to the store before their actions are sent and deleted on release
(``orchestrator.fleet.persistence.save_standing_stops``); a restarted orchestrator ``restore``s them,
so robots that reconnect get them again and stay unavailable. Fire alarms are not stored: lift states
are retained on the broker, so the alarm comes back with the first lift state after the restart.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from interfaces.vda5050.actions import (
    ActionParams,
    BuildingAlarm,
    SafetyRelease,
    SafetyStop,
    StopKind,
)
from maps.model import Site
from orchestrator.fleet.picture import RobotView


class FirePolicy(StrEnum):
    """What robots in a building do when its fire alarm is on."""

    STOP = "stop"
    SAFE_SPOT = "safe_spot"


@dataclass(frozen=True, slots=True)
class Acting:
    """Who acts: the console user's name and role (``system`` for the orchestrator's own rules)."""

    operator: str
    role: str = "operator"


SYSTEM_ACTING = Acting("system", "system")
"""The orchestrator's own rules (the fire alarm): may stop, never release."""


FLEET_SCOPE = "fleet"
BUILDING_SCOPE = "building:"
"""Scopes of ``FleetSafety.standing()``: the fleet stop, and a building's stop (``building:<id>``)."""

Send = tuple[str, ActionParams]
"""One instant action to send: (robot serial, parameters)."""


@dataclass
class FleetSafety:
    """The fleet's standing stops and alarms, and the actions they call for (module docstring)."""

    policies: Mapping[str, FirePolicy] = field(default_factory=dict)
    default_policy: FirePolicy = FirePolicy.STOP
    stop_all_by: Acting | None = None
    alarms: set[str] = field(default_factory=set)
    building_stops: set[str] = field(default_factory=set)
    fire_lifts: dict[str, set[str]] = field(default_factory=dict)

    @property
    def stop_all_active(self) -> bool:
        """Whether the console's "stop all" is in force."""
        return self.stop_all_by is not None

    def standing(self) -> dict[str, Acting]:
        """The stops in force until an operator releases them, by scope (``FLEET_SCOPE`` or
        ``building:<id>``), with who gave them: what must survive a restart."""
        stops = {f"{BUILDING_SCOPE}{b}": SYSTEM_ACTING for b in sorted(self.building_stops)}
        if self.stop_all_by is not None:
            stops[FLEET_SCOPE] = self.stop_all_by
        return stops

    def restore(self, standing: Mapping[str, Acting]) -> None:
        """Take back the standing stops of ``standing()`` (read from the store at start-up)."""
        self.stop_all_by = standing.get(FLEET_SCOPE)
        self.building_stops = {
            scope.removeprefix(BUILDING_SCOPE) for scope in standing if scope.startswith(BUILDING_SCOPE)
        }

    def policy(self, building: str) -> FirePolicy:
        """The fire policy of ``building``."""
        return self.policies.get(building, self.default_policy)

    def stop_all(self, robots: Iterable[str], by: Acting) -> list[Send]:
        """Stop every robot (kind ``fleet``); remembered until ``release_all``."""
        self.stop_all_by = by
        return [(r, SafetyStop(kind=StopKind.FLEET, operator=by.operator, role=by.role)) for r in robots]

    def release_all(self, robots: Iterable[str], by: Acting) -> list[Send]:
        """Release the fleet stop of every robot."""
        self.stop_all_by = None
        return [(r, SafetyRelease(kind=StopKind.FLEET, operator=by.operator, role=by.role)) for r in robots]

    def fire(self, building: str, active: bool, robots_in_building: Iterable[str]) -> list[Send]:
        """The actions for a fire alarm of ``building`` going on (``active``) or off."""
        sends: list[Send] = []
        if active:
            self.alarms.add(building)
            stop = self.policy(building) is FirePolicy.STOP
            if stop:
                self.building_stops.add(building)
            for robot in robots_in_building:
                sends.append((robot, BuildingAlarm(building=building, active=True)))
                if stop:
                    sends.append((robot, _building_stop(building, SYSTEM_ACTING)))
        else:
            was_on = building in self.alarms
            self.alarms.discard(building)
            if was_on:
                sends = [(r, BuildingAlarm(building=building, active=False)) for r in robots_in_building]
        return sends

    def on_lift_state(
        self, building: str, lift: str, fire: bool, robots_in_building: Iterable[str]
    ) -> list[Send]:
        """A lift state of ``building`` (mode FIRE or not): the building's alarm is on while any of its
        lifts reports FIRE. Sends the actions of ``fire`` when the building's alarm starts or ends; while
        it lasts, robots newly found in the building get the alarm (and stop) too."""
        lifts = self.fire_lifts.setdefault(building, set())
        was_on = bool(lifts)
        if fire:
            lifts.add(lift)
        else:
            lifts.discard(lift)
        if bool(lifts) == was_on:
            return []
        return self.fire(building, bool(lifts), robots_in_building)

    def release_building(self, building: str, robots: Iterable[str], by: Acting) -> list[Send]:
        """An operator releases the building stop (refused while the alarm is still on)."""
        if building in self.alarms:
            raise ValueError(f"the fire alarm of building {building!r} is still on")
        self.building_stops.discard(building)
        return [
            (r, SafetyRelease(kind=StopKind.BUILDING, building=building, operator=by.operator, role=by.role))
            for r in robots
        ]

    def on_robot_online(self, robot: str, building: str | None) -> list[Send]:
        """What a robot that (re)connects gets again: the fleet stop, its building's alarm and stop."""
        sends: list[Send] = []
        if self.stop_all_by is not None:
            by = self.stop_all_by
            sends.append((robot, SafetyStop(kind=StopKind.FLEET, operator=by.operator, role=by.role)))
        if building is not None and building in self.alarms:
            sends.append((robot, BuildingAlarm(building=building, active=True)))
        if building is not None and building in self.building_stops:
            sends.append((robot, _building_stop(building, SYSTEM_ACTING)))
        return sends


def _building_stop(building: str, by: Acting) -> SafetyStop:
    return SafetyStop(kind=StopKind.BUILDING, building=building, operator=by.operator, role=by.role)


def building_of_view(site: Site, view: RobotView) -> str | None:
    """The building a robot is in: its position's map id (a floor id) or its last node's building."""
    if view.position is not None:
        floor = site.floors.get(view.position.map_id)
        if floor is not None:
            return floor.building
    if view.last_node_id is not None and view.last_node_id in site.nodes:
        return site.building_of(view.last_node_id)
    return None


def robots_in(site: Site, views: Iterable[RobotView], building: str) -> list[str]:
    """The serials of the robots in ``building`` (see ``building_of_view``)."""
    return [v.serial for v in views if building_of_view(site, v) == building]


def robot_available(view: RobotView, safety: FleetSafety | None = None, site: Site | None = None) -> bool:
    """Whether the dispatcher may give ``view``'s robot orders: online, AUTOMATIC, not reporting an
    e-stop (``safetyState.eStop`` other than NONE: the button, the bumper, a remote stop), no active
    stop of the fleet or of its building."""
    if not view.online or view.operating_mode not in (None, "AUTOMATIC") or view.e_stop:
        return False
    if safety is None:
        return True
    if safety.stop_all_active:
        return False
    building = building_of_view(site, view) if site is not None else None
    return building is None or building not in safety.building_stops
