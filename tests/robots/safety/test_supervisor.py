"""The safety supervisor's rules, one example at a time: fields, near range, camera, heartbeats, latches,
remote stops, acknowledgement rights, the VDA 5050 eStop mapping and the speed monitor."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from interfaces.vda5050 import ErrorLevel, EStop
from robots.safety import (
    SYSTEM,
    AckPolicy,
    CameraConfig,
    ClassRule,
    Detection,
    EStopReading,
    FieldConfig,
    LatchKind,
    LidarReading,
    ObjectClass,
    ReasonKind,
    SafetyConfig,
    SafetyLevel,
    SafetySupervisor,
    Source,
    protective_distance,
    warning_distance,
)

from .kit import ADMIN, ALICE, ON_SITE, ON_SITE_VIEWER, VIEWER, feed, sectors

CFG = SafetyConfig()


def kinds(decision) -> set[ReasonKind]:
    return {r.kind for r in decision.reasons}


def clear_supervisor(config: SafetyConfig | None = None, t: float = 0.0) -> SafetySupervisor:
    sup = SafetySupervisor(config)
    feed(sup, t)
    return sup


# --- start-up and the all-clear ---------------------------------------------------------------------------


def test_before_any_reading_every_layer_is_silent_and_the_vehicle_stands() -> None:
    """A robot whose sensors have not spoken yet is in a protective stop (AUTOACK), not free to drive."""
    decision = SafetySupervisor().step(0.0)
    assert decision.level is SafetyLevel.PROTECTIVE_STOP
    assert decision.speed_limit == 0.0
    assert set(decision.silent) == {
        Source.LIDAR,
        Source.ULTRASONIC,
        Source.CAMERA,
        Source.E_STOP,
        Source.BUMPER,
    }
    assert decision.e_stop is EStop.AUTOACK
    assert any(e.error_type == "safetySensorsSilent" and e.level is ErrorLevel.FATAL for e in decision.errors)


def test_all_layers_clear_gives_normal_at_max_speed() -> None:
    """Fresh readings with nothing around: NORMAL, the configured top speed, nothing to report."""
    sup = clear_supervisor()
    decision = sup.step(0.1, commanded=1.0, measured=1.0)
    assert decision.level is SafetyLevel.NORMAL
    assert decision.speed_limit == CFG.max_speed
    assert decision.reasons == () and decision.errors == () and decision.latches == ()
    assert decision.e_stop is EStop.NONE and decision.field_violation is False
    assert sup.last_decision is decision


# --- lidar fields -----------------------------------------------------------------------------------------


def test_field_sizes_follow_the_documented_formula() -> None:
    """protective = v·t_r + v²/2a + m_p and warning = protective + v·t_w + m_w (defaults at 1.5 m/s)."""
    fields = FieldConfig()
    assert protective_distance(1.5, fields) == pytest.approx(1.5 * 0.3 + 1.5**2 / 2.0 + 0.3)
    assert warning_distance(1.5, fields) == pytest.approx(1.875 + 1.5 + 0.5)
    assert protective_distance(0.0, fields) == pytest.approx(0.3)
    assert protective_distance(-1.0, fields) == protective_distance(1.0, fields)


def test_the_same_obstacle_slows_a_slow_vehicle_and_stops_a_fast_one() -> None:
    """An obstacle 1 m ahead is in the warning field at 0.5 m/s but in the protective field at 1.5 m/s."""
    slow = clear_supervisor()
    feed(slow, 0.05, lidar=1.0)
    decision = slow.step(0.05, commanded=0.5, measured=0.5)
    assert decision.level is SafetyLevel.SLOW and decision.speed_limit == CFG.slow_speed
    assert kinds(decision) == {ReasonKind.WARNING_FIELD}
    assert decision.field_violation is False and decision.e_stop is EStop.NONE

    fast = clear_supervisor()
    feed(fast, 0.05, lidar=1.0)
    decision = fast.step(0.05, commanded=1.5, measured=1.5)
    assert decision.level is SafetyLevel.PROTECTIVE_STOP and decision.speed_limit == 0.0
    assert kinds(decision) == {ReasonKind.PROTECTIVE_FIELD}
    assert decision.field_violation is True and decision.e_stop is EStop.AUTOACK


def test_the_measured_speed_sizes_the_fields_when_it_exceeds_the_command() -> None:
    """A vehicle rolling at 1.5 m/s while commanded 0 is judged by its real speed."""
    sup = clear_supervisor()
    feed(sup, 0.05, lidar=1.5)
    assert sup.step(0.05, commanded=0.0, measured=1.5).level is SafetyLevel.PROTECTIVE_STOP


def test_only_sectors_facing_the_direction_of_travel_count_when_moving() -> None:
    """Driving forward an obstacle right behind is ignored; standing still it counts; reversing it stops."""
    behind = sectors(8, s4=0.2)  # sector 4 of 8 is straight behind
    sup = clear_supervisor()
    feed(sup, 0.05, lidar=behind)
    assert sup.step(0.05, commanded=1.0, measured=1.0).level is SafetyLevel.NORMAL

    standing = clear_supervisor()
    feed(standing, 0.05, lidar=behind)
    assert standing.step(0.05).level is SafetyLevel.PROTECTIVE_STOP

    reversing = clear_supervisor()
    feed(reversing, 0.05, lidar=behind)
    assert reversing.step(0.05, commanded=-0.3, measured=-0.3).level is SafetyLevel.PROTECTIVE_STOP


def _lidar_limit(distance: float, speed: float) -> float:
    sup = clear_supervisor()
    feed(sup, 0.05, lidar=distance)
    return sup.step(0.05, commanded=speed, measured=speed).speed_limit


@given(
    d=st.floats(0.0, 8.0),
    dd=st.floats(0.0, 3.0),
    v=st.floats(0.0, 1.5),
    dv=st.floats(0.0, 1.0),
)
@settings(max_examples=150, deadline=None)
def test_the_lidar_limit_is_monotone_in_distance_and_speed(d: float, dd: float, v: float, dv: float) -> None:
    """Closer obstacles or higher speeds never give a higher limit."""
    assert _lidar_limit(d, v + dv) <= _lidar_limit(d, v)
    assert _lidar_limit(d, v) <= _lidar_limit(d + dd, v)


def test_a_side_sector_inside_the_cone_counts() -> None:
    """Sector 1 of 8 (45° left) lies within the default ±60° cone (plus half a sector) ahead."""
    sup = clear_supervisor()
    feed(sup, 0.05, lidar=sectors(8, s1=0.5))
    assert sup.step(0.05, commanded=1.0, measured=1.0).level is SafetyLevel.PROTECTIVE_STOP
    side = clear_supervisor()
    feed(side, 0.05, lidar=sectors(8, s2=0.5))  # 90° left: outside
    assert side.step(0.05, commanded=1.0, measured=1.0).level is SafetyLevel.NORMAL


def test_commanded_and_measured_in_opposite_directions_watch_both_ways() -> None:
    """Commanded forward while rolling backwards: the rear sectors count too."""
    sup = clear_supervisor()
    feed(sup, 0.05, lidar=sectors(4, s2=0.4))
    assert sup.step(0.05, commanded=0.5, measured=-0.2).level is SafetyLevel.PROTECTIVE_STOP


def test_a_field_violation_holds_for_the_hold_off_then_releases_by_itself() -> None:
    """The stop outlives the obstacle by ``hold_off`` (marked held), then releases without anyone acting."""
    sup = clear_supervisor()
    feed(sup, 0.0, lidar=0.5)
    assert sup.step(0.0, commanded=1.0).level is SafetyLevel.PROTECTIVE_STOP
    feed(sup, 0.2)
    held = sup.step(0.2, commanded=1.0)
    assert held.level is SafetyLevel.PROTECTIVE_STOP
    assert [r.held for r in held.reasons] == [True]
    assert held.field_violation is True
    feed(sup, 0.49)
    assert sup.step(0.49, commanded=1.0).level is SafetyLevel.PROTECTIVE_STOP
    feed(sup, 0.5)
    released = sup.step(0.5, commanded=1.0)
    assert released.level is SafetyLevel.NORMAL and released.e_stop is EStop.NONE


def test_a_flickering_obstacle_does_not_flicker_the_decision() -> None:
    """An obstacle seen every other reading keeps the stop continuously."""
    sup = clear_supervisor()
    levels = []
    for k in range(20):
        t = k * 0.05
        feed(sup, t, lidar=0.5 if k % 2 == 0 else math.inf)
        levels.append(sup.step(t, commanded=1.0).level)
    assert set(levels) == {SafetyLevel.PROTECTIVE_STOP}


# --- ultrasonic and camera -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("distance", "level", "kind"),
    [
        (0.2, SafetyLevel.PROTECTIVE_STOP, ReasonKind.NEAR_RANGE_STOP),
        (0.25, SafetyLevel.PROTECTIVE_STOP, ReasonKind.NEAR_RANGE_STOP),
        (0.5, SafetyLevel.SLOW, ReasonKind.NEAR_RANGE_SLOW),
        (0.7, SafetyLevel.NORMAL, None),
    ],
)
def test_ultrasonic_near_range(distance: float, level: SafetyLevel, kind: ReasonKind | None) -> None:
    """Within 0.25 m stop (a field violation), within 0.6 m slow, beyond nothing."""
    sup = clear_supervisor()
    feed(sup, 0.05, ultrasonic=distance)
    decision = sup.step(0.05, commanded=0.3)
    assert decision.level is level
    assert kinds(decision) == ({kind} if kind else set())
    assert decision.field_violation is (kind is ReasonKind.NEAR_RANGE_STOP)


@pytest.mark.parametrize(
    ("detection", "level", "limit"),
    [
        (Detection(ObjectClass.PERSON, 1.0), SafetyLevel.PROTECTIVE_STOP, 0.0),
        (Detection(ObjectClass.PERSON, 3.0), SafetyLevel.SLOW, 0.6),
        (Detection(ObjectClass.PERSON, 5.0), SafetyLevel.NORMAL, 1.5),
        (Detection(ObjectClass.VEHICLE, 0.8), SafetyLevel.PROTECTIVE_STOP, 0.0),
        (Detection(ObjectClass.VEHICLE, 2.5), SafetyLevel.SLOW, 0.8),
        (Detection(ObjectClass.OTHER, 0.3), SafetyLevel.NORMAL, 1.5),
        (Detection(ObjectClass.PERSON, 1.0, confidence=0.3), SafetyLevel.NORMAL, 1.5),
    ],
)
def test_camera_targets_by_class(detection: Detection, level: SafetyLevel, limit: float) -> None:
    """People stop within X = 1.5 m and slow within Y = 4 m; vehicles 1 m / 3 m; 'other' and
    low-confidence detections are ignored by default."""
    sup = clear_supervisor()
    feed(sup, 0.05, detections=(detection,))
    decision = sup.step(0.05, commanded=0.5)
    assert decision.level is level
    assert decision.speed_limit == pytest.approx(limit)


def test_camera_stop_zone_is_a_field_violation_and_nearest_target_counts() -> None:
    """Of two people the nearer one decides; a camera stop sets fieldViolation and eStop AUTOACK."""
    sup = clear_supervisor()
    people = (Detection(ObjectClass.PERSON, 6.0), Detection(ObjectClass.PERSON, 1.2))
    feed(sup, 0.05, detections=people)
    decision = sup.step(0.05, commanded=0.5)
    assert decision.level is SafetyLevel.PROTECTIVE_STOP and decision.field_violation
    assert decision.e_stop is EStop.AUTOACK
    assert decision.reasons[0].subject == "person"


def test_a_configured_rule_for_other_targets_applies() -> None:
    """``CameraConfig(other=...)`` makes unclassified targets count."""
    config = SafetyConfig(camera=CameraConfig(other=ClassRule(0.5, 2.0, 0.4)))
    sup = clear_supervisor(config)
    feed(sup, 0.05, detections=(Detection(ObjectClass.OTHER, 1.0),))
    decision = sup.step(0.05)
    assert decision.level is SafetyLevel.SLOW and decision.speed_limit == pytest.approx(0.4)


def test_the_lowest_limit_of_several_reasons_wins() -> None:
    """A person in the slow zone (0.6) and an echo in the near range (0.5): the limit is 0.5."""
    sup = clear_supervisor()
    feed(sup, 0.05, ultrasonic=0.5, detections=(Detection(ObjectClass.PERSON, 3.0),))
    decision = sup.step(0.05, commanded=0.3)
    assert decision.speed_limit == pytest.approx(0.5)
    assert kinds(decision) == {ReasonKind.NEAR_RANGE_SLOW, ReasonKind.TARGET_SLOW}


# --- heartbeats ------------------------------------------------------------------------------------------


def test_one_silent_layer_slows_and_two_stop() -> None:
    """A camera that stops reporting: SLOW with a WARNING; the lidar silent too: PROTECTIVE_STOP."""
    sup = clear_supervisor()
    feed(sup, 0.4, skip=("camera",))
    decision = sup.step(0.55, commanded=1.0)
    assert decision.silent == (Source.CAMERA,)
    assert decision.level is SafetyLevel.SLOW and decision.speed_limit == CFG.slow_speed
    assert [(e.error_type, e.level) for e in decision.errors] == [("safetySensorSilent", ErrorLevel.WARNING)]
    assert decision.errors[0].references == (("layer", "camera"),)

    feed(sup, 0.6, skip=("camera", "lidar"))
    decision = sup.step(0.75, commanded=1.0)
    assert decision.silent == (Source.LIDAR, Source.CAMERA)
    assert decision.level is SafetyLevel.PROTECTIVE_STOP and decision.e_stop is EStop.AUTOACK
    assert ReasonKind.LAYERS_SILENT in kinds(decision)


def test_a_heartbeat_exactly_at_its_timeout_is_not_silent() -> None:
    """Silent means older than the timeout: at exactly 0.3 s the lidar still counts as alive."""
    sup = clear_supervisor()
    feed(sup, 0.3, skip=("lidar",))
    assert Source.LIDAR not in sup.step(0.3).silent
    feed(sup, 0.31, skip=("lidar",))
    assert Source.LIDAR in sup.step(0.31).silent


def test_a_layer_that_speaks_again_releases_after_the_hold_off() -> None:
    """Silence is self-releasing: fresh readings end it (after the hold-off)."""
    sup = clear_supervisor()
    feed(sup, 1.0, skip=("ultrasonic",))
    assert sup.step(1.0).level is SafetyLevel.SLOW
    feed(sup, 1.1)
    assert sup.step(1.1).level is SafetyLevel.SLOW  # held
    feed(sup, 1.5)
    assert sup.step(1.5).level is SafetyLevel.NORMAL


def test_out_of_order_and_future_readings_are_refused_and_counted() -> None:
    """A reading older than the layer's newest, or stamped ahead of now, is refused and counted."""
    sup = clear_supervisor(t=1.0)
    assert not sup.observe(LidarReading(0.9, (0.1,)), 1.0)
    assert not sup.observe(LidarReading(2.0, (0.1,)), 1.0)
    assert sup.observe(LidarReading(1.0, (math.inf,)), 1.0)  # same stamp again: accepted
    decision = sup.step(1.0, commanded=1.0)
    assert decision.level is SafetyLevel.NORMAL
    assert ("refused_readings", "2") in decision.layer(Source.LIDAR).values


# --- the e-stop button -----------------------------------------------------------------------------------


def test_e_stop_latches_and_needs_release_then_on_site_acknowledgement() -> None:
    """Pressed: EMERGENCY_STOP, MANUAL; released: still latched; ack while pressed refused; ack after
    release on site clears it."""
    sup = clear_supervisor()
    feed(sup, 0.1, pressed=True)
    decision = sup.step(0.1)
    assert decision.level is SafetyLevel.EMERGENCY_STOP and decision.speed_limit == 0.0
    assert decision.e_stop is EStop.MANUAL
    assert [(e.error_type, e.level) for e in decision.errors] == [("emergencyStop", ErrorLevel.FATAL)]

    answer = sup.acknowledge(ON_SITE, 0.15)
    assert not answer.ok and "still pressed" in answer.refused[0][1]

    feed(sup, 0.2)
    decision = sup.step(0.2)
    assert decision.level is SafetyLevel.EMERGENCY_STOP
    assert "awaiting acknowledgement" in decision.reasons[0].detail

    answer = sup.acknowledge(ON_SITE, 0.25)
    assert answer.ok and [latch.kind for latch in answer.cleared] == [LatchKind.E_STOP]
    decision = sup.step(0.25)
    assert decision.level is SafetyLevel.NORMAL and decision.e_stop is EStop.NONE


def test_e_stop_cannot_be_acknowledged_remotely_by_default() -> None:
    """The control centre may not acknowledge the physical button (someone must look on site)."""
    sup = clear_supervisor()
    feed(sup, 0.1, pressed=True)
    feed(sup, 0.2)
    for party in (ALICE, ADMIN):
        answer = sup.acknowledge(party, 0.2)
        assert not answer.ok and "on site" in answer.refused[0][1]
    assert sup.step(0.2).level is SafetyLevel.EMERGENCY_STOP


def test_e_stop_remote_acknowledgement_when_allowed_makes_it_remote() -> None:
    """With ``e_stop_remote_ack`` the latch reads REMOTE and a control-centre operator may clear it."""
    sup = clear_supervisor(SafetyConfig(acks=AckPolicy(e_stop_remote_ack=True)))
    feed(sup, 0.1, pressed=True)
    assert sup.step(0.1).e_stop is EStop.REMOTE
    feed(sup, 0.2)
    assert sup.acknowledge(ALICE, 0.2).ok
    assert sup.step(0.2).level is SafetyLevel.NORMAL


@pytest.mark.parametrize("party", [ON_SITE_VIEWER, VIEWER, SYSTEM])
def test_viewers_and_the_system_never_acknowledge(party) -> None:
    """Only people with an acting role clear a latch."""
    sup = clear_supervisor()
    feed(sup, 0.1, pressed=True)
    feed(sup, 0.2)
    assert "may not acknowledge" in sup.acknowledge(party, 0.2).refused[0][1]


def test_acknowledgement_needs_a_live_e_stop_layer() -> None:
    """If the button's heartbeat is stale its state is unknown: the acknowledgement is refused."""
    sup = clear_supervisor()
    feed(sup, 0.1, pressed=True)
    sup.observe(EStopReading(0.2, pressed=False), 0.2)
    answer = sup.acknowledge(ON_SITE, 1.0)
    assert not answer.ok and "silent" in answer.refused[0][1]


def test_a_second_press_latches_again() -> None:
    """After a cleared latch, pressing again latches again."""
    sup = clear_supervisor()
    feed(sup, 0.1, pressed=True)
    feed(sup, 0.2)
    assert sup.acknowledge(ON_SITE, 0.2).ok
    feed(sup, 0.3, pressed=True)
    assert sup.step(0.3).level is SafetyLevel.EMERGENCY_STOP


def test_an_acknowledgement_does_not_drive_the_vehicle() -> None:
    """Clearing the latch lifts the limit; it commands nothing (ISO 13850: reset does not restart)."""
    sup = clear_supervisor()
    feed(sup, 0.1, pressed=True)
    feed(sup, 0.2)
    sup.acknowledge(ON_SITE, 0.2)
    decision = sup.step(0.2, commanded=0.0, measured=0.0)
    assert decision.level is SafetyLevel.NORMAL and decision.time == 0.2


# --- the bumper ------------------------------------------------------------------------------------------


def test_bumper_latches_reads_remote_and_an_operator_may_acknowledge_after_contact_ends() -> None:
    """Bumper contact: EMERGENCY_STOP, REMOTE; refused while in contact; cleared remotely afterwards."""
    sup = clear_supervisor()
    feed(sup, 0.1, contact=True)
    decision = sup.step(0.1)
    assert decision.level is SafetyLevel.EMERGENCY_STOP and decision.e_stop is EStop.REMOTE
    assert decision.errors[0].error_type == "bumperContact"
    assert "still in contact" in sup.acknowledge(ALICE, 0.1).refused[0][1]
    feed(sup, 0.2)
    answer = sup.acknowledge(ALICE, 0.2)
    assert answer.ok
    assert sup.step(0.2).level is SafetyLevel.NORMAL


def test_bumper_on_site_only_when_configured() -> None:
    """With ``bumper_remote_ack=False`` the bumper reads MANUAL and remote acknowledgement is refused."""
    sup = clear_supervisor(SafetyConfig(acks=AckPolicy(bumper_remote_ack=False)))
    feed(sup, 0.1, contact=True)
    assert sup.step(0.1).e_stop is EStop.MANUAL
    feed(sup, 0.2)
    assert not sup.acknowledge(ALICE, 0.2).ok
    assert sup.acknowledge(ON_SITE, 0.2).ok


def test_one_acknowledgement_clears_what_it_may_and_reports_the_rest() -> None:
    """E-stop and bumper latched: a remote operator clears the bumper, the e-stop is refused (on site)."""
    sup = clear_supervisor()
    feed(sup, 0.1, pressed=True, contact=True)
    feed(sup, 0.2)
    answer = sup.acknowledge(ALICE, 0.2)
    assert [latch.kind for latch in answer.cleared] == [LatchKind.BUMPER]
    assert [latch.kind for latch, _ in answer.refused] == [LatchKind.E_STOP]
    assert not answer.ok and "cleared bumper" in answer.message and "refused eStop" in answer.message


# --- remote stops ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", [LatchKind.OPERATOR_STOP, LatchKind.FLEET_STOP])
def test_remote_stops_latch_until_a_control_centre_operator_releases(kind: LatchKind) -> None:
    """An operator e-stop or stop-all: EMERGENCY_STOP, REMOTE; acknowledge and on-site releases do not
    clear it; viewers may not; an operator does."""
    sup = clear_supervisor()
    sup.remote_stop(kind, ALICE, 0.1)
    decision = sup.step(0.1, commanded=1.0)
    assert decision.level is SafetyLevel.EMERGENCY_STOP and decision.e_stop is EStop.REMOTE
    assert decision.errors[0].error_type == kind.value
    assert ("by", str(ALICE)) in decision.errors[0].references
    assert sup.acknowledge(ON_SITE, 0.2).cleared == ()
    assert not sup.release(kind, ON_SITE, 0.2).ok
    assert not sup.release(kind, VIEWER, 0.2).ok
    assert not sup.release(kind, SYSTEM, 0.2).ok
    assert sup.step(0.2).level is SafetyLevel.EMERGENCY_STOP
    assert sup.release(kind, ADMIN, 0.3).ok
    feed(sup, 0.3)
    assert sup.step(0.3).level is SafetyLevel.NORMAL


def test_anyone_may_stop_and_a_repeated_stop_keeps_the_first() -> None:
    """Stops are never refused (even from the system); a second stop of the same kind changes nothing."""
    sup = clear_supervisor()
    first = sup.remote_stop(LatchKind.OPERATOR_STOP, SYSTEM, 0.1)
    again = sup.remote_stop(LatchKind.OPERATOR_STOP, ALICE, 0.2)
    assert again is first and len(sup.latches) == 1


def test_building_stop_releases_only_after_the_alarm_is_off() -> None:
    """Fire alarm: latched; release refused while the alarm is on; after it goes off an operator releases."""
    sup = clear_supervisor()
    sup.building_alarm("library", True, 0.1)
    decision = sup.step(0.1)
    assert decision.level is SafetyLevel.EMERGENCY_STOP and decision.e_stop is EStop.REMOTE
    assert ("building", "library") in decision.errors[0].references
    answer = sup.release(LatchKind.BUILDING_STOP, ALICE, 0.2)
    assert "still on" in answer.refused[0][1]
    sup.building_alarm("library", False, 0.3)
    feed(sup, 0.3)
    assert sup.step(0.3).level is SafetyLevel.EMERGENCY_STOP  # the alarm ending releases nothing
    assert sup.release(LatchKind.BUILDING_STOP, ALICE, 0.4, scope="library").ok
    feed(sup, 0.4)
    assert sup.step(0.4).level is SafetyLevel.NORMAL


def test_building_release_roles_and_scopes() -> None:
    """Restricting building releases to admins refuses operators; a release names its building."""
    sup = clear_supervisor(SafetyConfig(acks=AckPolicy(building_release_roles=frozenset({ADMIN.role}))))
    sup.building_alarm("library", True, 0.1)
    sup.building_alarm("gym", True, 0.1)
    sup.building_alarm("library", False, 0.2)
    sup.building_alarm("gym", False, 0.2)
    assert not sup.release(LatchKind.BUILDING_STOP, ALICE, 0.3).ok
    answer = sup.release(LatchKind.BUILDING_STOP, ADMIN, 0.3, scope="gym")
    assert [latch.scope for latch in answer.cleared] == ["gym"]
    assert [latch.scope for latch in sup.latches] == ["library"]
    assert sup.release(LatchKind.BUILDING_STOP, ADMIN, 0.3, scope="nowhere").message == "nothing to clear"


def test_remote_and_local_kinds_are_not_mixed_up() -> None:
    """``remote_stop`` takes only remote kinds and ``release`` only remote kinds."""
    sup = clear_supervisor()
    with pytest.raises(ValueError, match="own sensors"):
        sup.remote_stop(LatchKind.E_STOP, ALICE, 0.1)
    with pytest.raises(ValueError, match="acknowledged"):
        sup.release(LatchKind.BUMPER, ALICE, 0.1)


def test_manual_outranks_remote_in_the_vda_mapping_and_every_latch_is_reported() -> None:
    """E-stop pressed plus an operator stop: eStop MANUAL (someone must go there), two FATAL errors."""
    sup = clear_supervisor()
    sup.remote_stop(LatchKind.OPERATOR_STOP, ALICE, 0.05)
    feed(sup, 0.1, pressed=True)
    decision = sup.step(0.1)
    assert decision.e_stop is EStop.MANUAL
    assert {e.error_type for e in decision.errors} == {"emergencyStop", "operatorStop"}
    assert all(e.level is ErrorLevel.FATAL for e in decision.errors)


# --- the speed monitor -----------------------------------------------------------------------------------


def test_a_vehicle_braking_as_assumed_is_not_overspeeding() -> None:
    """After a stop the measured speed following the braking curve raises nothing new."""
    sup = clear_supervisor()
    sup.step(0.0, commanded=1.5, measured=1.5)
    sup.remote_stop(LatchKind.OPERATOR_STOP, ALICE, 0.02)
    for k in range(1, 120):
        t = 0.02 * k
        feed(sup, t)
        measured = max(0.0, 1.5 - 1.0 * max(0.0, t - 0.02 - 0.3))
        decision = sup.step(t, commanded=1.5, measured=measured)
        assert ReasonKind.OVERSPEED not in kinds(decision)


def test_a_vehicle_that_does_not_brake_is_flagged() -> None:
    """Still at 1.5 m/s well after the stop: OVERSPEED, a FATAL safetyOverspeed, protective stop."""
    sup = clear_supervisor()
    sup.step(0.0, commanded=1.5, measured=1.5)
    sup.remote_stop(LatchKind.OPERATOR_STOP, ALICE, 0.02)
    sup.step(0.02, commanded=1.5, measured=1.5)
    feed(sup, 0.4)
    assert ReasonKind.OVERSPEED not in kinds(sup.step(0.4, commanded=1.5, measured=1.5))  # within t_r + tol
    feed(sup, 0.6)
    decision = sup.step(0.6, commanded=1.5, measured=1.5)
    assert ReasonKind.OVERSPEED in kinds(decision)
    assert any(e.error_type == "safetyOverspeed" and e.level is ErrorLevel.FATAL for e in decision.errors)


def test_overspeed_against_a_slow_limit() -> None:
    """Limited to 0.5 m/s by a warning field but measured at 1.2 m/s for long: OVERSPEED."""
    sup = clear_supervisor()
    sup.step(0.0, commanded=1.0, measured=1.0)
    for k in range(1, 60):
        t = 0.02 * k
        feed(sup, t, lidar=2.5)
        decision = sup.step(t, commanded=1.0, measured=1.2)
    assert ReasonKind.OVERSPEED in kinds(decision)


# --- input checks ----------------------------------------------------------------------------------------


def test_step_refuses_time_going_backwards_and_non_finite_speeds() -> None:
    """``now`` may not decrease; NaN or infinite inputs are refused with a ValueError."""
    sup = clear_supervisor()
    sup.step(1.0)
    with pytest.raises(ValueError, match="backwards"):
        sup.step(0.5)
    with pytest.raises(ValueError, match="measured"):
        sup.step(1.1, measured=math.nan)
    with pytest.raises(ValueError, match="commanded"):
        sup.step(1.1, commanded=math.inf)


def test_layer_statuses_describe_each_layer() -> None:
    """Each layer has its age, whether silent, its strongest effect, a message and key/values."""
    sup = clear_supervisor()
    feed(sup, 0.1, lidar=2.0, pressed=True, skip=("camera",))
    decision = sup.step(0.7, commanded=1.0)
    lidar = decision.layer(Source.LIDAR)
    assert lidar.age == pytest.approx(0.6) and lidar.silent
    assert ("nearest_m", "2.00") in lidar.values
    e_stop = decision.layer(Source.E_STOP)
    assert e_stop.level is SafetyLevel.EMERGENCY_STOP
    assert ("state", "pressed") in e_stop.values and ("latched", "true") in e_stop.values
    assert decision.layer(Source.CAMERA).message == "silent for 0.70 s"
    assert lidar.message.startswith("silent for 0.60 s; obstacle at 2.00 m inside the warning field")
    assert decision.layer(Source.ULTRASONIC).message == "silent for 0.60 s"
    with pytest.raises(KeyError):
        decision.layer(Source.REMOTE)
