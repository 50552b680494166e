"""The fleet safety policy (``orchestrator.fleet.safety``) as pure logic: stop all and its re-sending,
the fire alarm per building policy, release only by an operator after the alarm, which robots are in a
building, and whether the dispatcher may use a robot."""

from __future__ import annotations

import dataclasses

from campus_fixtures import build_small_site

from interfaces.vda5050.actions import ActionParams, BuildingAlarm, SafetyRelease, SafetyStop, StopKind
from orchestrator.fleet.picture import Link, Position, RobotView
from orchestrator.fleet.safety import (
    Acting,
    FirePolicy,
    FleetSafety,
    building_of_view,
    robot_available,
    robots_in,
)

ALICE = Acting("alice", "operator")
ACTING_BOB = Acting("bob", "admin")


def _view(serial: str, map_id: str | None = None, *, online: bool = True, mode: str = "AUTOMATIC",
          last_node: str | None = None) -> RobotView:  # fmt: skip
    position = Position(0.0, 0.0, 0.0, map_id, True) if map_id is not None else None
    return RobotView(
        serial=serial, manufacturer="acme", kind="indoor", profile="indoor", name=serial,
        link=Link.ONLINE if online else Link.OFFLINE, online=online, link_since=None, state_at=None,
        received_at=None, age_s=None, order_id=None, order_update_id=None, last_node_id=last_node,
        last_node_sequence_id=None, driving=False, paused=False, battery_charge=80.0, charging=False,
        operating_mode=mode, errors=(), position=position, factsheet=None, states_received=1,
    )  # fmt: skip


def _kinds(sends: list[tuple[str, ActionParams]]) -> list[tuple[str, str, str | None]]:
    out = []
    for robot, params in sends:
        detail = getattr(params, "kind", None)
        out.append((robot, params.action_type.value, getattr(detail, "value", None)))
    return out


def test_stop_all_is_remembered_and_sent_again_on_reconnection() -> None:
    """Stop all stops every robot with the operator's name and stays active: a robot coming online gets
    it again until release all."""
    safety = FleetSafety()
    sends = safety.stop_all(["r1", "r2"], ALICE)
    assert sends == [
        ("r1", SafetyStop(kind=StopKind.FLEET, operator="alice", role="operator")),
        ("r2", SafetyStop(kind=StopKind.FLEET, operator="alice", role="operator")),
    ]
    assert safety.stop_all_active
    assert _kinds(safety.on_robot_online("r3", None)) == [("r3", "safetyStop", "fleet")]
    released = safety.release_all(["r1"], ACTING_BOB)
    assert released == [("r1", SafetyRelease(kind=StopKind.FLEET, operator="bob", role="admin"))]
    assert not safety.stop_all_active and safety.on_robot_online("r3", None) == []


def test_fire_with_policy_stop_sends_alarm_and_building_stop_by_system() -> None:
    """Policy stop: each robot in the building gets buildingAlarm on and a building safetyStop stamped as
    the system; the end of FIRE sends the alarm off but keeps the building stop until released."""
    safety = FleetSafety()
    sends = safety.fire("H", True, ["r1"])
    assert sends == [
        ("r1", BuildingAlarm(building="H", active=True)),
        ("r1", SafetyStop(kind=StopKind.BUILDING, building="H", operator="system", role="system")),
    ]
    assert safety.fire("H", False, ["r1"]) == [("r1", BuildingAlarm(building="H", active=False))]
    assert safety.building_stops == {"H"} and safety.alarms == set()
    assert _kinds(safety.on_robot_online("r1", "H")) == [("r1", "safetyStop", "building")]


def test_fire_with_policy_safe_spot_sends_only_the_alarm() -> None:
    """Policy safe_spot: only buildingAlarm (the robot goes to its safe spot itself); no building stop."""
    safety = FleetSafety(policies={"H": FirePolicy.SAFE_SPOT})
    assert safety.fire("H", True, ["r1", "r2"]) == [
        ("r1", BuildingAlarm(building="H", active=True)),
        ("r2", BuildingAlarm(building="H", active=True)),
    ]
    assert safety.building_stops == set()
    assert safety.policy("X") is FirePolicy.STOP


def test_release_only_after_the_alarm_and_by_the_operator() -> None:
    """A building release while the alarm is on is refused; afterwards it is sent with the operator's
    name and role, and reconnecting robots no longer get the building stop."""
    safety = FleetSafety()
    safety.fire("H", True, ["r1"])
    try:
        safety.release_building("H", ["r1"], ALICE)
    except ValueError as exc:
        assert "still on" in str(exc)
    else:
        raise AssertionError("released during the fire alarm")
    safety.fire("H", False, ["r1"])
    assert safety.release_building("H", ["r1"], ALICE) == [
        ("r1", SafetyRelease(kind=StopKind.BUILDING, building="H", operator="alice", role="operator"))
    ]
    assert safety.on_robot_online("r1", "H") == []


def test_lift_states_switch_the_building_alarm_on_the_first_and_off_the_last_fire_lift() -> None:
    """The building's alarm starts with the first lift in FIRE and ends when no lift is; repeated states
    send nothing; an alarm off for a building never on sends nothing."""
    safety = FleetSafety()
    assert safety.on_lift_state("H", "LB", False, ["r1"]) == []
    assert len(safety.on_lift_state("H", "LA", True, ["r1"])) == 2
    assert safety.on_lift_state("H", "LA", True, ["r1"]) == []
    assert safety.on_lift_state("H", "LB", True, ["r1"]) == []
    assert safety.on_lift_state("H", "LA", False, ["r1"]) == []
    assert safety.on_lift_state("H", "LB", False, ["r1"]) == [
        ("r1", BuildingAlarm(building="H", active=False))
    ]
    assert safety.fire("Z", False, ["r1"]) == []


def test_robots_in_a_building_by_floor_map_or_last_node() -> None:
    """A robot is in a building when its position's map is one of its floors, or (without a position)
    its last node is indoors there; outdoors it is in none."""
    site = build_small_site()
    floor = next(f for f in site.floors.values() if f.building == "H")
    indoor_node = next(n.id for n in site.nodes.values() if n.floor == floor.id)
    views = [
        _view("a", floor.id),
        _view("b", "outdoor"),
        _view("c", None, last_node=indoor_node),
        _view("d", None),
    ]
    assert robots_in(site, views, "H") == ["a", "c"]
    assert building_of_view(site, views[1]) is None


def test_available_needs_online_automatic_and_no_standing_stop() -> None:
    """The dispatcher may use a robot that is online, in AUTOMATIC and under no fleet or building stop
    of its building."""
    site = build_small_site()
    floor = next(f.id for f in site.floors.values() if f.building == "H")
    inside = _view("a", floor)
    assert robot_available(inside)
    assert not robot_available(dataclasses.replace(inside, operating_mode="MANUAL"))
    assert not robot_available(_view("b", floor, online=False))
    safety = FleetSafety()
    safety.fire("H", True, ["a"])
    assert not robot_available(inside, safety, site)
    assert robot_available(_view("o", "outdoor"), safety, site)
    safety.stop_all(["o"], ALICE)
    assert not robot_available(_view("o", "outdoor"), safety, site)


def test_a_robot_reporting_an_e_stop_is_not_available() -> None:
    """``safetyState.eStop`` other than NONE (the button, the bumper, a remote stop) keeps orders away."""
    view = _view("a", "outdoor")
    assert robot_available(view)
    assert not robot_available(dataclasses.replace(view, e_stop="MANUAL"))
    assert not robot_available(dataclasses.replace(view, e_stop="REMOTE"))


def test_standing_stops_survive_a_restore_but_alarms_do_not() -> None:
    """``standing()`` holds the fleet stop (with who gave it) and the building stops; a new
    ``FleetSafety`` restored from it re-sends them to reconnecting robots. Fire alarms are left out:
    they come back with the retained lift states."""
    safety = FleetSafety()
    safety.stop_all(["r1"], ALICE)
    safety.fire("H", True, ["r1"])
    standing = safety.standing()
    assert standing == {"fleet": ALICE, "building:H": Acting("system", "system")}
    restored = FleetSafety()
    restored.restore(standing)
    assert restored.stop_all_by == ALICE and restored.building_stops == {"H"}
    assert restored.alarms == set()
    assert _kinds(restored.on_robot_online("r1", "H")) == [
        ("r1", "safetyStop", "fleet"),
        ("r1", "safetyStop", "building"),
    ]
    restored.release_all(["r1"], ACTING_BOB)
    restored.release_building("H", ["r1"], ACTING_BOB)
    assert restored.standing() == {}
