"""The robot file's ``safety:`` section (robots.agent.config) and the settings the agent makes of it
(robots.agent.agent.safety_settings): every key lands, defaults equal the code's, bad values refused
one line each."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest

from interfaces.clock import VirtualClock
from robots.agent.agent import make_driver, safety_settings
from robots.agent.config import AgentConfigError, load_config, parse_config
from robots.agent.safety import SafetySettings, SpeedZone
from robots.safety import LAYERS, ClassRule, Mode, Role, Source

FULL = """\
serial_number: cart-07
driver: {type: sim, speed: 1.2}
safety:
  period: 0.04
  diagnostics_period: 2.0
  readout: [e_stop]
  external: [lidar, bumper]
  lidar_sectors: 16
  max_speed: 1.4
  slow_speed: 0.4
  hold_off: 0.8
  silent_stop_count: 3
  overspeed_tolerance: 0.2
  fields: {reaction_time: 0.25, braking_deceleration: 1.2, protective_margin: 0.4,
           warning_time: 0.8, warning_margin: 0.6, half_angle_deg: 90}
  near_range: {stop_range: 0.3, slow_range: 0.7}
  camera:
    min_confidence: 0.6
    person: {stop_distance: 2.0, slow_distance: 5.0, slow_speed: 0.3}
    vehicle: null
    other: {stop_distance: 0.5, slow_distance: 1.0, slow_speed: 0.4}
  heartbeats: {lidar: 0.2, ultrasonic: 0.4, camera: 0.6, e_stop: 0.1, bumper: 0.15}
  acks: {e_stop_remote_ack: true, bumper_remote_ack: false, remote_ack_roles: [admin],
         release_roles: [operator, admin], building_release_roles: [admin]}
  on_site_role: admin
  modes: {initial: MANUAL, confirm_timeout: 10, standstill_speed: 0.02}
  teleop: {deadman_timeout: 0.25, max_age: 0.2, clock_allowance: 0.05, max_rate: 30, burst: 5,
           manual_max_speed: 0.8, remote_max_speed: 1.0, unknown_zone_cap: 0.3, max_omega: 0.7,
           zones: [{name: lobby, x_min: 0, y_min: 0, x_max: 10, y_max: 5, cap: 0.4}]}
"""


def test_full_section_lands_in_the_settings(tmp_path: Path) -> None:
    """Every key of the documented section reaches ``SafetySettings`` and the pure configs."""
    path = tmp_path / "robot.yaml"
    path.write_text(FULL, encoding="utf-8")
    config = load_config(path)
    settings = safety_settings(config, make_driver(config, VirtualClock()))
    assert (settings.period, settings.diagnostics_period, settings.lidar_sectors) == (0.04, 2.0, 16)
    assert settings.readout_layers == {Source.E_STOP}
    assert settings.external_layers == {Source.LIDAR, Source.BUMPER}
    assert settings.absent_layers == {Source.ULTRASONIC, Source.CAMERA}
    sup = settings.supervisor
    assert (sup.max_speed, sup.slow_speed, sup.hold_off, sup.silent_stop_count) == (1.4, 0.4, 0.8, 3)
    assert sup.overspeed_tolerance == 0.2
    assert sup.fields.half_angle == pytest.approx(math.pi / 2) and sup.fields.braking_deceleration == 1.2
    assert (sup.near_range.stop_range, sup.near_range.slow_range) == (0.3, 0.7)
    assert sup.camera.person == ClassRule(2.0, 5.0, 0.3) and sup.camera.vehicle is None
    assert sup.camera.other == ClassRule(0.5, 1.0, 0.4) and sup.camera.min_confidence == 0.6
    assert (sup.heartbeats.e_stop, sup.heartbeats.camera) == (0.1, 0.6)
    assert sup.acks.e_stop_remote_ack and not sup.acks.bumper_remote_ack
    assert sup.acks.remote_ack_roles == {Role.ADMIN} and sup.acks.building_release_roles == {Role.ADMIN}
    assert settings.on_site_role is Role.ADMIN
    assert (settings.modes.initial, settings.modes.confirm_timeout) == (Mode.MANUAL, 10.0)
    t = settings.teleop
    assert (t.deadman_timeout, t.max_rate, t.burst, t.remote_max_speed, t.max_omega) == (
        0.25,
        30,
        5,
        1.0,
        0.7,
    )
    assert settings.zones == (SpeedZone(0.0, 0.0, 10.0, 5.0, 0.4, "lobby"),)


def test_defaults_are_the_codes_and_the_top_speed_rule_holds() -> None:
    """No section: exactly ``SafetySettings()`` (e-stop and lidar from the readout, the 300 ms dead
    man). A faster robot without ``max_speed``: the limit is 1.1 × its top speed; with one, that one."""
    config = parse_config({"serial_number": "r1"})
    settings = safety_settings(config, make_driver(config, VirtualClock()))
    assert settings == SafetySettings()
    assert settings.teleop.deadman_timeout == 0.3
    fast = parse_config({"serial_number": "r1", "driver": {"speed": 3.0}})
    assert safety_settings(fast, make_driver(fast, VirtualClock())).supervisor.max_speed == pytest.approx(3.3)
    capped = parse_config({"serial_number": "r1", "driver": {"speed": 3.0}, "safety": {"max_speed": 4.0}})
    assert safety_settings(capped, make_driver(capped, VirtualClock())).supervisor.max_speed == 4.0


def test_simulated_makes_every_layer_external() -> None:
    """``simulated: true`` (sim driver): all five layers external, none from the readout."""
    config = parse_config({"serial_number": "r1", "safety": {"simulated": True}})
    settings = safety_settings(config, make_driver(config, VirtualClock()))
    assert settings.external_layers == set(LAYERS) and settings.readout_layers == set()
    assert settings.absent_layers == set()


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"safety": {"bogus": 1}}, "safety.bogus: unknown setting"),
        ({"safety": {"fields": {"reaction": 0.3}}}, "safety.fields.reaction: unknown setting"),
        ({"safety": {"period": 0}}, "safety.period: Input should be greater than 0"),
        ({"safety": {"readout": ["camera"]}}, "safety.readout.0: Input should be 'e_stop' or 'lidar'"),
        ({"safety": {"external": ["radar"]}}, "safety.external.0: Input should be 'lidar'"),
        (
            {"safety": {"readout": ["lidar"], "external": ["lidar"]}},
            "safety: Value error, layers both readout and external: lidar",
        ),
        (
            {"safety": {"simulated": True, "external": ["camera"]}},
            "safety: Value error, simulated makes all five layers external",
        ),
        (
            {"driver": {"type": "ros"}, "safety": {"simulated": True}},
            "safety.simulated needs the sim driver",
        ),
        (
            {"safety": {"max_speed": 1.0}},
            "safety.max_speed 1.0 is below the driver's speed 1.5",
        ),
        (
            {"safety": {"slow_speed": 2.0}},
            "safety: SafetyConfig.slow_speed (2.0) must not exceed max_speed (1.5)",
        ),
        (
            {"safety": {"near_range": {"stop_range": 1.0, "slow_range": 0.5}}},
            "safety: NearRangeConfig needs slow_range >= stop_range",
        ),
        (
            {"safety": {"camera": {"person": {"stop_distance": 3, "slow_distance": 1, "slow_speed": 0.5}}}},
            "safety: ClassRule needs slow_distance >= stop_distance",
        ),
        ({"safety": {"acks": {"release_roles": ["viewer"]}}}, "safety.acks.release_roles.0: Input should be"),
        ({"safety": {"on_site_role": "janitor"}}, "safety.on_site_role: Input should be"),
        ({"safety": {"modes": {"initial": "SERVICE"}}}, "safety.modes.initial: Input should be"),
        ({"safety": {"teleop": {"burst": 0}}}, "safety.teleop.burst: Input should be greater than or equal"),
        (
            {"safety": {"teleop": {"zones": [{"x_min": 1, "y_min": 0, "x_max": 0, "y_max": 1, "cap": 1}]}}},
            "safety.teleop.zones.0: Value error, a zone needs x_min < x_max",
        ),
        (
            {"safety": {"teleop": {"zones": [{"x_min": 0, "y_min": 0, "x_max": 1, "y_max": 1}]}}},
            "safety.teleop.zones.0.cap: Field required",
        ),
        ({"safety": {"heartbeats": {"camera": -1}}}, "safety.heartbeats.camera: Input should be greater"),
    ],
)
def test_bad_safety_settings_are_refused_one_line_each(data: dict[str, Any], message: str) -> None:
    """Each problem names the file and the setting, on one line."""
    with pytest.raises(AgentConfigError) as raised:
        parse_config({"serial_number": "r1", **data}, source="robot.yaml")
    text = str(raised.value)
    assert f"robot.yaml: {message}" in text
    assert text.count("\n") == 0


def test_several_problems_give_one_line_each() -> None:
    """Two bad keys in the section: two lines."""
    with pytest.raises(AgentConfigError) as raised:
        parse_config({"serial_number": "r1", "safety": {"period": -1, "typo": 1}}, source="robot.yaml")
    lines = str(raised.value).splitlines()
    assert len(lines) == 2 and all(line.startswith("robot.yaml: safety.") for line in lines)


def test_ros_acknowledge_service_name_reaches_the_driver() -> None:
    """``driver.acknowledge_service`` is the ROS driver's reset-key service name (default
    ``safety/acknowledge``)."""
    config = parse_config({"serial_number": "r1", "driver": {"type": "ros", "acknowledge_service": "key"}})
    assert config.driver.type == "ros" and config.driver.acknowledge_service == "key"
    default = parse_config({"serial_number": "r1", "driver": {"type": "ros"}})
    assert default.driver.type == "ros" and default.driver.acknowledge_service == "safety/acknowledge"
