"""The fleet file and the orchestrator's fleet settings."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from fake_robot import SAMPLE_FLEET

from orchestrator.fleet import FleetConfigError, load_fleet, parse_fleet
from orchestrator.settings import Settings, SettingsError
from orchestrator.store import RobotKind


def test_defaults() -> None:
    """Username defaults to the serial number, profile to the kind's, version to 2.1.0, topics v2."""
    fleet = parse_fleet(SAMPLE_FLEET)
    r1, r2 = fleet.robots
    assert (r1.username, r1.profile, r1.kind, r1.version, r1.major_version) == (
        "r1",
        "cart",
        RobotKind.CART,
        "2.1.0",
        "v2",
    )
    assert (r2.profile, r2.name) == ("indoor", "")
    assert fleet.interface == "robopost" and fleet.robot("r2") is r2
    assert (r1.home, r1.building, r1.compartments, r1.battery_wh) == (None, None, None, None)


def test_dispatch_fields() -> None:
    """A robot may say where its trips start, which building it serves, its compartments and battery."""
    indoor = {
        "manufacturer": "a",
        "serial": "i1",
        "kind": "indoor",
        "password": "x",
        "home": "adm_mailroom",
        "building": "ADM",
        "compartments": {"s": 4, "m": 2, "l": 1},
        "battery_wh": 500,
    }
    robot = parse_fleet({**SAMPLE_FLEET, "robots": [indoor]}).robots[0]
    assert (robot.home, robot.building, robot.battery_wh) == ("adm_mailroom", "ADM", 500.0)
    assert robot.compartments is not None
    assert (robot.compartments.s, robot.compartments.m, robot.compartments.l) == (4, 2, 1)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            {"robots": [*SAMPLE_FLEET["robots"], SAMPLE_FLEET["robots"][0]]},
            "serial numbers used more than once: r1",
        ),
        ({"orchestrator": {"username": "r1", "password": "x"}}, "MQTT usernames used more than once: r1"),
        (
            {"robots": [{"manufacturer": "a", "serial": "r 1", "kind": "cart", "password": "x"}]},
            "outside A-Za-z0-9",
        ),
        (
            {"robots": [{"manufacturer": "a", "serial": "r1", "kind": "boat", "password": "x"}]},
            r"robots\[0\] \(r1\)\.kind",
        ),
        (
            {"robots": [{"manufacturer": "a", "serial": "r1", "kind": "cart", "password": "a\nb"}]},
            "single line",
        ),
        (
            {
                "robots": [
                    {"manufacturer": "a", "serial": "r1", "kind": "cart", "password": "x", "version": "3.0"}
                ]
            },
            "not 2.x",
        ),
        (
            {"robots": [{"manufacturer": "a", "serial": "r1", "kind": "cart", "password": "x", "colour": 1}]},
            "colour",
        ),
        ({"orchestrator": {"username": "my orchestrator", "password": "x"}}, "may only hold"),
        (
            {
                "robots": [
                    {
                        "manufacturer": "a",
                        "serial": "r1",
                        "kind": "cart",
                        "password": "x",
                        "compartments": {"s": -1},
                    }
                ]
            },
            r"robots\[0\] \(r1\)\.compartments\.s",
        ),
        (
            {
                "robots": [
                    {"manufacturer": "a", "serial": "r1", "kind": "cart", "password": "x", "battery_wh": 0}
                ]
            },
            "battery_wh",
        ),
    ],
)
def test_bad_fleet_files_are_refused(change: dict, message: str) -> None:  # type: ignore[type-arg]
    """Duplicate serials or usernames, bad serials, kinds, passwords, versions and unknown keys are
    refused with a line naming the robot and field."""
    with pytest.raises(FleetConfigError, match=message):
        parse_fleet({**SAMPLE_FLEET, **change}, "fleet.yaml")


def test_unreadable_files(tmp_path: Path) -> None:
    """A missing file, broken YAML and a list instead of a mapping each give one line."""
    with pytest.raises(FleetConfigError, match="cannot read fleet file"):
        load_fleet(tmp_path / "missing.yaml")
    (tmp_path / "broken.yaml").write_text("robots: [", encoding="utf-8")
    with pytest.raises(FleetConfigError, match="not valid YAML"):
        load_fleet(tmp_path / "broken.yaml")
    (tmp_path / "list.yaml").write_text("- 1\n", encoding="utf-8")
    with pytest.raises(FleetConfigError, match="must hold a mapping, not list"):
        load_fleet(tmp_path / "list.yaml")


def test_fleet_settings(tmp_path: Path) -> None:
    """fleet.config in a settings file is relative to that file; enabling the fleet needs a config."""
    settings_file = tmp_path / "robopost.yaml"
    settings_file.write_text(
        yaml.safe_dump({"fleet": {"enabled": True, "config": "fleet.yaml"}}), encoding="utf-8"
    )
    settings = Settings.load(settings_file, env={})
    assert settings.fleet.enabled and settings.fleet.config == tmp_path / "fleet.yaml"
    assert Settings.load(None, env={"ROBOPOST_FLEET__STALE_AFTER_S": "12"}).fleet.stale_after_s == 12
    with pytest.raises(SettingsError, match=r"fleet\.enabled needs fleet\.config"):
        Settings.load(None, env={"ROBOPOST_FLEET__ENABLED": "true"})
