"""Configuration and readings validate themselves with clear ValueErrors; the scan-to-sector helper,
the braking curve and the parties behave as documented."""

from __future__ import annotations

import math

import pytest

from robots.safety import (
    SYSTEM,
    AckPolicy,
    CameraConfig,
    ClassRule,
    Detection,
    EStopReading,
    FieldConfig,
    Heartbeats,
    LidarReading,
    NearRangeConfig,
    ObjectClass,
    Role,
    SafetyConfig,
    Source,
    UltrasonicReading,
    braking_curve,
    control_centre,
    on_site,
    sector_ranges,
)


@pytest.mark.parametrize(
    ("build", "match"),
    [
        (lambda: FieldConfig(reaction_time=-0.1), "reaction_time"),
        (lambda: FieldConfig(braking_deceleration=0.0), "braking_deceleration"),
        (lambda: FieldConfig(protective_margin=math.nan), "protective_margin"),
        (lambda: FieldConfig(half_angle=0.0), "half_angle"),
        (lambda: FieldConfig(half_angle=4.0), "half_angle"),
        (lambda: NearRangeConfig(stop_range=0.7, slow_range=0.5), "slow_range >= stop_range"),
        (lambda: NearRangeConfig(stop_range=-1.0), "stop_range"),
        (lambda: ClassRule(2.0, 1.0, 0.5), "slow_distance >= stop_distance"),
        (lambda: ClassRule(1.0, 2.0, 0.0), "slow_speed"),
        (lambda: CameraConfig(min_confidence=1.5), "min_confidence"),
        (lambda: Heartbeats(camera=0.0), "camera"),
        (lambda: AckPolicy(remote_ack_roles=frozenset({Role.VIEWER})), "viewer"),
        (lambda: AckPolicy(release_roles={Role.OPERATOR}), "frozenset"),  # type: ignore[arg-type]
        (lambda: SafetyConfig(max_speed=0.0), "max_speed"),
        (lambda: SafetyConfig(max_speed=1.0, slow_speed=1.2), "must not exceed max_speed"),
        (lambda: SafetyConfig(standstill_speed=0.6), "standstill_speed"),
        (lambda: SafetyConfig(hold_off=-1.0), "hold_off"),
        (lambda: SafetyConfig(silent_stop_count=0), "silent_stop_count"),
        (lambda: SafetyConfig(silent_stop_count=True), "silent_stop_count"),  # type: ignore[arg-type]
        (
            lambda: SafetyConfig(max_speed=1.0, camera=CameraConfig(person=ClassRule(1, 2, 1.2))),
            "camera rule for person",
        ),
    ],
)
def test_bad_configuration_raises_a_clear_value_error(build, match: str) -> None:
    """Every invalid setting is refused at construction with a sentence naming it."""
    with pytest.raises(ValueError, match=match):
        build()


def test_configuration_is_frozen() -> None:
    """Settings cannot change under a running supervisor."""
    cfg = SafetyConfig()
    with pytest.raises(AttributeError):
        cfg.max_speed = 3.0  # type: ignore[misc]


def test_camera_rules_and_heartbeat_lookup() -> None:
    """Classes without a rule are ignored; heartbeats exist only for the five layers."""
    camera = CameraConfig()
    assert camera.rule(ObjectClass.OTHER) is None
    assert [kind for kind, _ in camera.rules()] == [ObjectClass.PERSON, ObjectClass.VEHICLE]
    assert Heartbeats().timeout(Source.CAMERA) == 0.5
    with pytest.raises(ValueError, match="not a sensing layer"):
        Heartbeats().timeout(Source.REMOTE)


@pytest.mark.parametrize(
    ("build", "match"),
    [
        (lambda: LidarReading(0.0, ()), "at least one sector"),
        (lambda: LidarReading(0.0, (math.nan,)), "ranges"),
        (lambda: UltrasonicReading(0.0, (-0.1,)), "ranges"),
        (lambda: EStopReading(math.inf, False), "stamp"),
        (lambda: Detection(ObjectClass.PERSON, -1.0), "distance"),
        (lambda: Detection(ObjectClass.PERSON, 1.0, confidence=1.2), "confidence"),
    ],
)
def test_bad_readings_raise_value_error(build, match: str) -> None:
    """Readings refuse NaN ranges, negative distances, empty sectors and non-finite stamps."""
    with pytest.raises(ValueError, match=match):
        build()


def test_sector_ranges_from_a_laser_scan() -> None:
    """Beams are binned by bearing (sector 0 centred ahead, counter-clockwise); invalid returns ignored."""
    # 8 beams all around, starting straight ahead, 45° apart; 4 sectors of 90° (a beam on a boundary
    # goes to the next sector counter-clockwise).
    scan = [1.0, 2.0, math.nan, 3.0, 0.01, math.inf, 4.0, 5.0]
    assert sector_ranges(scan, 0.0, math.pi / 4, 4, range_min=0.05) == (1.0, 2.0, 3.0, 4.0)
    assert sector_ranges(scan[:4], 0.0, math.pi / 4, 4, range_max=1.5) == (1.0, math.inf, math.inf, math.inf)
    assert sector_ranges(scan, 0.0, math.pi / 4, 1, range_min=0.05, range_max=3.5) == (1.0,)
    # A beam at -10° belongs to the front sector, one at 170° to the rear.
    assert sector_ranges([0.5, 0.7], math.radians(-10), math.radians(180), 4) == (
        0.5,
        math.inf,
        0.7,
        math.inf,
    )
    with pytest.raises(ValueError, match="sectors"):
        sector_ranges(scan, 0.0, 0.1, 0)


def test_braking_curve() -> None:
    """Full speed during the reaction time, then down at the guaranteed deceleration, never negative."""
    fields = FieldConfig()
    assert braking_curve(1.5, 0.2, fields) == 1.5
    assert braking_curve(1.5, 0.8, fields) == pytest.approx(1.0)
    assert braking_curve(1.5, 5.0, fields) == 0.0


def test_parties() -> None:
    """Operators and admins act; viewers and the system never do; names read well in logs."""
    assert on_site().may_act and control_centre("a", Role.ADMIN).may_act
    assert not control_centre("v", Role.VIEWER).may_act and not SYSTEM.may_act
    assert str(control_centre("alice")) == "controlCentre alice (operator)"
