"""Bridge configuration: the sample campus files, overrides, one-line errors, drivers, the CLI command."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from elevator_bridge.app import build_driver, mqtt_config
from elevator_bridge.config import BridgeConfigError, load_config, parse_config
from elevator_bridge.drivers.iot_mqtt import IotBoxDriver
from elevator_bridge.drivers.modbus_relay import ModbusRelayDriver
from elevator_bridge.sessions import DoorBlockedPolicy
from interfaces.clock import VirtualClock
from interfaces.mqtt import MqttClient, MqttConfig
from launch.cli import app
from maps.io import load_map
from maps.model import Site

REPO = Path(__file__).resolve().parents[2]
BRIDGES = REPO / "launch" / "bridge"


@pytest.fixture(scope="module")
def campus() -> Site:
    return load_map(REPO / "maps" / "campuses" / "neijiang.yaml")


@pytest.mark.parametrize(("file", "building"), [("adm.yaml", "ADM"), ("tea.yaml", "TEA")])
def test_sample_campus_configs_match_the_map(campus: Site, file: str, building: str) -> None:
    """ADM and TEA: two lifts each with the map's floors (fire floor the ground floor), every IoT door
    of the building, and TEA's gate with robot credentials."""
    config = load_config(BRIDGES / file)
    assert config.building == building
    lifts = {lift.id: lift for lift in campus.lifts.values() if lift.building == building}
    assert set(config.lifts) == set(lifts) and len(lifts) == 2
    for name, lift in config.lifts.items():
        assert lift.floors == lifts[name].floors and lift.fire_floor == lifts[name].floors[0]
        assert lift.floor_travel_s == lifts[name].floor_travel_s
    doors = {d.id: d.iot for d in campus.doors.values() if d.building == building and d.iot}
    assert {name: door.iot for name, door in config.doors.items()} == doors
    gates = {g.id for g in campus.gates.values() if g.building == building}
    assert set(config.gates) == gates
    for gate in config.gates.values():
        assert gate.credentials and all(c.startswith("sha256:") for c in gate.credentials.values())
    settings = config.lift_settings()
    assert [s.heartbeat_timeout_s for s in settings] == [10.0, 10.0]


def test_floor_names_match_the_map_exactly(campus: Site) -> None:
    """ADM serves ADM-1F..ADM-10F and TEA TEA-1F..TEA-6F."""
    adm, tea = load_config(BRIDGES / "adm.yaml"), load_config(BRIDGES / "tea.yaml")
    assert adm.lifts["ADM-L1"].floors == [f"ADM-{n}F" for n in range(1, 11)]
    assert tea.lifts["TEA-L2"].floors == [f"TEA-{n}F" for n in range(1, 7)]


def minimal(**over: Any) -> dict[str, Any]:
    lift = {"floors": ["A", "B", "C"], "fire_floor": "A", "driver": {"kind": "iot_mqtt", "box_id": "L1"}}
    data: dict[str, Any] = {"building": "X", "lifts": {"L1": lift}}
    data.update(over)
    return data


def test_lift_overrides_the_building_defaults() -> None:
    """A lift's own session settings win over the building's; unset ones take the defaults."""
    data = minimal(session={"heartbeat_timeout_s": 7, "door_blocked": "abort"})
    data["lifts"]["L1"]["door_hold_max_s"] = 33
    (lift,) = parse_config(data).lift_settings()
    assert lift.heartbeat_timeout_s == 7 and lift.door_hold_max_s == 33
    assert lift.door_blocked_policy is DoorBlockedPolicy.ABORT and lift.status_timeout_s == 5.0


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"lifts": {}}, "lifts: "),
        ({"building": "A/B"}, "building: "),
        (
            {
                "lifts": {
                    "L1": {
                        "floors": ["A", "B"],
                        "fire_floor": "Z",
                        "driver": {"kind": "iot_mqtt", "box_id": "x"},
                    }
                }
            },
            "fire_floor Z is not one of the floors",
        ),
        ({"lifts": {"L1": {"floors": ["A", "B"], "driver": {"kind": "lasers"}}}}, "lifts.L1.driver: "),
        (
            {
                "lifts": {
                    "L1": {
                        "floors": ["A", "B"],
                        "driver": {"kind": "iot_mqtt", "box_id": "x", "labels": ["1"]},
                    }
                }
            },
            "driver.labels has 1 labels for 2 floors",
        ),
        (
            {"lifts": {"L1": {"floors": ["A", "A"], "driver": {"kind": "modbus_relay", "port": "/dev/x"}}}},
            "floors repeat",
        ),
        ({"session": {"heartbeat_timeout_s": -1}}, "session.heartbeat_timeout_s: "),
        ({"doors": {"D": {"hold_s": 0}}}, "doors.D.hold_s: "),
        ({"gates": {"G+": {}}}, "gate name 'G+' cannot be a topic level"),
        ({"colour": "red"}, "colour: Extra inputs are not permitted"),
    ],
)
def test_bad_configs_give_one_clear_line(change: dict[str, Any], message: str) -> None:
    """Each mistake is reported as ``source: setting: what`` on one line."""
    with pytest.raises(BridgeConfigError) as caught:
        parse_config(minimal(**change), "bridge.yaml")
    assert message in str(caught.value)
    assert all(line.startswith("bridge.yaml: ") for line in str(caught.value).splitlines())


@pytest.mark.parametrize(
    ("text", "message"),
    [("building: [", "not valid YAML"), ("- 1\n- 2\n", "must hold a mapping, not list")],
)
def test_unreadable_files(tmp_path: Path, text: str, message: str) -> None:
    """Broken YAML, a non-mapping and a missing file each give one line naming the file."""
    path = tmp_path / "b.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(BridgeConfigError, match=message):
        load_config(path)
    with pytest.raises(BridgeConfigError, match="cannot read"):
        load_config(tmp_path / "missing.yaml")


def test_mqtt_password_from_the_environment() -> None:
    """``mqtt.password_env`` names the variable with the password; a missing variable is an error."""
    config = parse_config(minimal(mqtt={"username": "bridge", "password_env": "BRIDGE_PW"}))
    assert config.mqtt_password({"BRIDGE_PW": "pw"}) == "pw"
    with pytest.raises(BridgeConfigError, match="BRIDGE_PW is not set"):
        config.mqtt_password({})


async def test_drivers_are_built_from_the_config() -> None:
    """Each driver kind builds its driver with our floors (IoT: mapped to the panel labels)."""
    data = minimal()
    data["lifts"]["L1"]["driver"]["labels"] = ["G", "1", "2"]
    data["lifts"]["L2"] = {"floors": ["A", "B"], "driver": {"kind": "modbus_relay", "port": "/dev/null-x"}}
    config = parse_config(data)
    mqtt = MqttClient(MqttConfig())
    clock = VirtualClock()
    iot = build_driver(config.lifts["L1"], mqtt, clock)
    relay = build_driver(config.lifts["L2"], mqtt, clock)
    assert isinstance(iot, IotBoxDriver) and iot.config.floors == {"A": "G", "B": "1", "C": "2"}
    assert isinstance(relay, ModbusRelayDriver) and relay.floors == ["A", "B"]
    assert mqtt_config(config).client_id == "robopost-bridge-X"


def test_cli_checks_a_config() -> None:
    """``robopost elevator-bridge --config FILE --check`` prints the building's summary."""
    result = CliRunner().invoke(app, ["elevator-bridge", "--config", str(BRIDGES / "tea.yaml"), "--check"])
    assert result.exit_code == 0, result.output
    assert "TEA: lifts TEA-L1 (iot_mqtt, 6 floors), TEA-L2 (modbus_relay, 6 floors)" in result.stdout
    assert "1 gates" in result.stdout


def test_cli_refuses_a_broken_config(tmp_path: Path) -> None:
    """A broken file exits with code 2 and one line naming the file and the setting."""
    path = tmp_path / "bad.yaml"
    path.write_text("building: X\nlifts: {}\n", encoding="utf-8")
    result = CliRunner().invoke(app, ["elevator-bridge", "--config", str(path)])
    assert result.exit_code == 2
    assert result.stderr.strip().startswith(f"robopost: {path}: lifts: ")
