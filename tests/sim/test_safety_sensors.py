"""The simulated safety sensors: geometry, rates, reproducibility, every fault, and the closed loop
with the real supervisor in virtual time (approach, stuck and silent sensors, ghosts, bumper, e-stop)."""

from __future__ import annotations

import math

import pytest

from interfaces.clock import VirtualClock
from robots.safety import (
    BumperReading,
    CameraReading,
    EStopReading,
    LatchKind,
    LidarReading,
    ObjectClass,
    ReasonKind,
    SafetyLevel,
    SafetySupervisor,
    Source,
    UltrasonicReading,
    control_centre,
    on_site,
)
from sim.safety_sensors import (
    Actor,
    BumperHit,
    Dropout,
    EStopPress,
    FalseDetection,
    Fault,
    RobotSpec,
    SafetyRun,
    Scheduled,
    SensorSpec,
    SimSafetySensors,
    Stuck,
    approaching,
    run,
)

ORIGIN = (0.0, 0.0, 0.0)
QUIET = SensorSpec(lidar_noise=0.0, ultrasonic_noise=0.0, camera_noise=0.0, camera_miss=0.0)


def by_layer(readings):
    return {r.layer: r for r in readings}


def drive(sensors: SimSafetySensors, duration: float, events=(), **robot) -> SafetyRun:
    return run(
        SafetySupervisor(),
        sensors,
        VirtualClock(),
        duration=duration,
        robot=RobotSpec(**robot),
        events=events,
    )


# --- the sensors alone -----------------------------------------------------------------------------------


def test_geometry_of_every_layer() -> None:
    """A person 3 m ahead (outline to outline 2.35 m) and a bin 1.05 m to the left: lidar sectors 0 and
    4 of 16, ultrasonic only the near one, the camera only the person (the bin is outside its view)."""
    actors = [Actor(ObjectClass.PERSON, 3.0), Actor(ObjectClass.OTHER, 0.0, 1.7)]
    readings = by_layer(SimSafetySensors(actors, spec=QUIET).poll(0.0, ORIGIN))
    lidar = readings[Source.LIDAR]
    assert isinstance(lidar, LidarReading) and len(lidar.ranges) == 16
    assert lidar.ranges[0] == pytest.approx(2.35) and lidar.ranges[4] == pytest.approx(1.05)
    assert sum(math.isfinite(r) for r in lidar.ranges) == 2
    ultra = readings[Source.ULTRASONIC]
    assert isinstance(ultra, UltrasonicReading)
    assert ultra.ranges[2] == pytest.approx(1.05) and math.isinf(ultra.ranges[0])
    camera = readings[Source.CAMERA]
    assert isinstance(camera, CameraReading)
    assert [(d.kind, round(d.distance, 2)) for d in camera.detections] == [(ObjectClass.PERSON, 2.35)]
    assert readings[Source.E_STOP] == EStopReading(0.0, False)
    assert readings[Source.BUMPER] == BumperReading(0.0, False)


def test_each_layer_reports_at_its_rate() -> None:
    """Polling every 10 ms for one second: lidar 15, ultrasonic, e-stop and bumper 20, camera 10."""
    sensors = SimSafetySensors()
    counts = dict.fromkeys(Source, 0)
    for k in range(100):
        for reading in sensors.poll(k * 0.01, ORIGIN):
            counts[reading.layer] += 1
    assert counts[Source.LIDAR] == 15 and counts[Source.CAMERA] == 10
    assert counts[Source.ULTRASONIC] == counts[Source.E_STOP] == counts[Source.BUMPER] == 20


def _trace(seed: int) -> list:
    sensors = SimSafetySensors([approaching(ObjectClass.PERSON, 8.0, 1.0)], seed=seed)
    return [r for k in range(50) for r in sensors.poll(k * 0.02, ORIGIN)]


def test_same_seed_same_readings_other_seed_other_noise() -> None:
    """The simulator is deterministic per seed."""
    assert _trace(3) == _trace(3)
    assert _trace(3) != _trace(4)


def test_stuck_sensor_repeats_its_last_reading_with_the_old_stamp() -> None:
    """During a Stuck window the lidar resends its last reading unchanged (value and stamp)."""
    sensors = SimSafetySensors([Actor(ObjectClass.PERSON, 5.0, vx=-1.0)], [Stuck(Source.LIDAR, 0.5, 1.0)])
    lidar = [r for k in range(75) for r in sensors.poll(k * 0.02, ORIGIN) if isinstance(r, LidarReading)]
    before = [r for r in lidar if r.stamp < 0.5][-1]
    during = [r for r in lidar if r is before]
    assert len(during) >= 7  # the original plus ~7 repeats in 0.5 s at 15 Hz
    after = [r for r in lidar if r.stamp >= 1.0]
    assert after and after[0].ranges[0] < before.ranges[0]  # fresh again: the person came closer


def test_dropout_sends_nothing() -> None:
    """A Dropout window silences one layer and only that one."""
    sensors = SimSafetySensors(faults=[Dropout(Source.CAMERA, 0.0, 0.5)])
    layers = [r.layer for k in range(25) for r in sensors.poll(k * 0.02, ORIGIN)]
    assert Source.CAMERA not in layers and Source.LIDAR in layers


def test_false_detections_for_each_sensing_layer() -> None:
    """Ghosts appear in the lidar, the ultrasonic ring and the camera only during their window."""
    faults = [
        FalseDetection(Source.LIDAR, 0.0, 0.1, 0.6),
        FalseDetection(Source.ULTRASONIC, 0.0, 0.1, 0.2, bearing=math.pi),
        FalseDetection(Source.CAMERA, 0.0, 0.1, 1.0, kind=ObjectClass.VEHICLE),
    ]
    sensors = SimSafetySensors(faults=faults, spec=QUIET)
    now = by_layer(sensors.poll(0.0, ORIGIN))
    assert now[Source.LIDAR].ranges[0] == pytest.approx(0.6)  # type: ignore[union-attr]
    assert now[Source.ULTRASONIC].ranges[4] == pytest.approx(0.2)  # type: ignore[union-attr]
    assert now[Source.CAMERA].detections[0].kind is ObjectClass.VEHICLE  # type: ignore[union-attr]
    later = by_layer(sensors.poll(0.2, ORIGIN))
    assert all(math.isinf(r) for r in later[Source.LIDAR].ranges)  # type: ignore[union-attr]
    assert later[Source.CAMERA].detections == ()  # type: ignore[union-attr]


def test_bumper_reports_hits_and_real_contact() -> None:
    """Contact during a BumperHit window, and whenever an actor touches the robot."""
    sensors = SimSafetySensors([Actor(ObjectClass.PERSON, 0.6, appear=1.0)], [BumperHit(0.0, 0.1)])
    assert by_layer(sensors.poll(0.0, ORIGIN))[Source.BUMPER] == BumperReading(0.0, True)
    assert by_layer(sensors.poll(0.5, ORIGIN))[Source.BUMPER] == BumperReading(0.5, False)
    assert by_layer(sensors.poll(1.0, ORIGIN))[Source.BUMPER] == BumperReading(1.0, True)


def test_sensor_spec_validation() -> None:
    """Rates must be positive, sectors at least one, the miss rate below one."""
    with pytest.raises(ValueError, match="lidar_rate"):
        SensorSpec(lidar_rate=0.0)
    with pytest.raises(ValueError, match="sectors"):
        SensorSpec(ultrasonic_sectors=0)
    with pytest.raises(ValueError, match="camera_miss"):
        SensorSpec(camera_miss=1.0)
    with pytest.raises(ValueError, match="cruise"):
        RobotSpec(cruise=0.0)


# --- the closed loop -------------------------------------------------------------------------------------


def test_a_person_ahead_slows_then_stops_the_robot_without_contact() -> None:
    """Cruising at 1.2 m/s towards a standing person: SLOW first, then a protective stop short of them,
    and no contact; the robot stops within the person stop distance plus a margin."""
    result = drive(SimSafetySensors([Actor(ObjectClass.PERSON, 12.0)], seed=1), 16.0)
    slow, stop = result.first(SafetyLevel.SLOW), result.first(SafetyLevel.PROTECTIVE_STOP)
    assert slow is not None and stop is not None and slow < stop
    assert result.contacts == []
    end = result.ticks[-1]
    assert end.speed == 0.0 and end.decision.field_violation
    gap = 12.0 - end.x - 0.65
    assert 0.8 < gap < 1.6


def test_the_robot_resumes_when_the_person_steps_aside() -> None:
    """The stop is self-releasing: once the person vanishes the robot drives on after the hold-off."""
    result = drive(SimSafetySensors([Actor(ObjectClass.PERSON, 8.0, vanish=9.0)], seed=2), 14.0)
    assert result.first(SafetyLevel.PROTECTIVE_STOP) is not None
    assert result.at(9.2).decision.level is SafetyLevel.PROTECTIVE_STOP  # held
    assert result.at(10.0).decision.level is SafetyLevel.NORMAL
    assert result.ticks[-1].speed == pytest.approx(1.2)


def test_an_approaching_cyclist_that_keeps_coming_hits_the_bumper_and_latches() -> None:
    """A vehicle riding into the stopped robot: the bumper latches; the robot stays stopped after the
    contact ends until an operator acknowledges remotely."""
    cyclist = Actor(ObjectClass.VEHICLE, 10.0, vx=-2.0, vanish=5.5)
    ack = Scheduled(7.0, "ack", lambda sup, now: sup.acknowledge(control_centre("alice"), now))
    result = drive(SimSafetySensors([cyclist], seed=5), 9.0, events=[ack])
    assert result.contacts, "the cyclist should reach the robot"
    latched = result.at(6.0).decision
    assert latched.level is SafetyLevel.EMERGENCY_STOP and [x.kind for x in latched.latches] == [
        LatchKind.BUMPER
    ]
    assert result.answers["ack"].ok  # type: ignore[attr-defined]
    assert result.at(8.9).speed > 0.0


def test_a_stuck_lidar_slows_the_robot_and_two_silent_layers_stop_it() -> None:
    """Stuck lidar: SLOW (silent, WARNING) until it recovers; plus a camera dropout: protective stop."""
    faults: list[Fault] = [Stuck(Source.LIDAR, 2.0, 4.0), Dropout(Source.CAMERA, 3.0, 3.5)]
    result = drive(SimSafetySensors(faults=faults, seed=6), 6.0)
    assert result.at(1.9).decision.level is SafetyLevel.NORMAL
    slow = result.at(2.5).decision
    assert slow.level is SafetyLevel.SLOW and slow.silent == (Source.LIDAR,)
    assert result.at(2.9).speed <= 0.5 + 1e-9  # braked down to the slow speed
    both = result.at(3.45).decision
    assert both.level is SafetyLevel.PROTECTIVE_STOP and set(both.silent) == {Source.LIDAR, Source.CAMERA}
    assert result.at(5.0).decision.level is SafetyLevel.NORMAL


def test_a_ghost_person_stops_the_robot_briefly() -> None:
    """A 0.2 s false person at 1 m: a protective stop that releases by itself after the hold-off."""
    ghost = FalseDetection(Source.CAMERA, 2.0, 2.2, 1.0)
    result = drive(SimSafetySensors(faults=[ghost], seed=7), 5.0)
    stop = result.first(SafetyLevel.PROTECTIVE_STOP)
    assert stop is not None and 2.0 <= stop <= 2.15
    assert any(r.kind is ReasonKind.TARGET_STOP for r in result.at(stop).decision.reasons)
    assert result.at(3.0).decision.level is SafetyLevel.NORMAL
    assert result.ticks[-1].speed > 1.0


def test_e_stop_press_release_and_on_site_acknowledgement() -> None:
    """The button held 1 s: EMERGENCY_STOP; a remote acknowledgement is refused, an early on-site one
    too (still pressed); after release the on-site acknowledgement lets the robot go again."""
    events = [
        Scheduled(2.5, "early", lambda sup, now: sup.acknowledge(on_site(), now)),
        Scheduled(3.5, "remote", lambda sup, now: sup.acknowledge(control_centre("alice"), now)),
        Scheduled(4.0, "on_site", lambda sup, now: sup.acknowledge(on_site(), now)),
    ]
    result = drive(SimSafetySensors(faults=[EStopPress(2.0, 3.0)], seed=8), 6.0, events=events)
    assert result.at(2.1).decision.level is SafetyLevel.EMERGENCY_STOP
    assert result.at(3.8).decision.level is SafetyLevel.EMERGENCY_STOP  # released but latched
    answers = result.answers
    assert not answers["early"].ok and not answers["remote"].ok  # type: ignore[attr-defined]
    assert answers["on_site"].ok  # type: ignore[attr-defined]
    assert result.at(4.1).decision.level is SafetyLevel.NORMAL
    assert result.ticks[-1].speed > 0.5


def test_remote_stop_all_in_the_loop() -> None:
    """A stop-all at 1 s holds the robot until the release at 3 s."""
    alice = control_centre("alice")
    events = [
        Scheduled(1.0, "stop", lambda sup, now: sup.remote_stop(LatchKind.FLEET_STOP, alice, now)),
        Scheduled(3.0, "release", lambda sup, now: sup.release(LatchKind.FLEET_STOP, alice, now)),
    ]
    result = drive(SimSafetySensors(seed=9), 5.0, events=events)
    assert result.at(2.9).speed == 0.0 and result.at(2.9).decision.level is SafetyLevel.EMERGENCY_STOP
    assert result.at(4.9).speed > 0.0


def test_the_run_follows_the_virtual_clock() -> None:
    """The loop advances the given clock by the control period and stamps readings on its time line."""
    clock = VirtualClock(start=100.0)
    clock.advance(5.0)
    result = run(SafetySupervisor(), SimSafetySensors(), clock, duration=1.0)
    assert len(result.ticks) == 50 and clock.monotonic() == pytest.approx(6.0)
    assert result.ticks[-1].decision.time == pytest.approx(5.98)
    assert result.ticks[-1].decision.level is SafetyLevel.NORMAL
    with pytest.raises(ValueError, match="no tick"):
        result.at(-1.0)
