"""The robot YAML (robots.agent.config), the factsheet and driver made from it, the CLI's checks."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner
from vda5050_samples import OfficialSchemas

from interfaces.clock import VirtualClock
from interfaces.vda5050 import ActionType, HeaderFactory, TopicKind, to_json
from launch.cli import app
from robots.agent.agent import make_driver
from robots.agent.config import AgentConfigError, RobotKind, load_config, parse_config
from robots.agent.driver import Pose
from robots.agent.factsheet import build_factsheet
from robots.agent.sim_driver import SimDriver

FULL = """\
manufacturer: robopost
serial_number: cart-07
kind: indoor
map_id: campus
mqtt: {host: 127.0.0.1, port: 18830, username: cart-07, password: s3cret, keepalive: 5}
state_period: 10
visualization_period: 0.5
execution: {default_deviation_xy: 0.8, drive_retries: 4, action_retries: 0, retry_delay: 2.0}
driver: {type: sim, speed: 2.0, start: {x: 3.0, y: 4.0, theta: 1.0}}
factsheet: {series_name: mailbot, compartments: 2}
"""


def test_full_file_is_read(tmp_path: Path) -> None:
    """Every documented key lands in the typed config; the client id defaults to manufacturer-serial."""
    path = tmp_path / "robot.yaml"
    path.write_text(FULL, encoding="utf-8")
    config = load_config(path)
    assert (config.serial_number, config.kind, config.map_id) == ("cart-07", RobotKind.INDOOR, "campus")
    assert (config.mqtt.port, config.mqtt.username, config.mqtt.keepalive) == (18830, "cart-07", 5)
    assert (config.state_period, config.visualization_period) == (10, 0.5)
    assert config.execution.drive_retries == 4 and config.client_id == "robopost-cart-07"
    assert config.driver.type == "sim" and config.factsheet.series_name == "mailbot"


def test_only_the_serial_number_is_required() -> None:
    """Defaults: robopost manufacturer, a cart, the sim driver, state every 30 s."""
    config = parse_config({"serial_number": "r1"})
    assert (config.manufacturer, config.kind, config.driver.type, config.state_period) == (
        "robopost",
        RobotKind.CART,
        "sim",
        30.0,
    )


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"serial_number": "r/1"}, "serial_number: Value error, must be made of A-Z"),
        (
            {"serial_number": "r1", "state_period": 31},
            "state_period: Input should be less than",
        ),
        ({"serial_number": "r1", "colour": "red"}, "colour: unknown setting"),
        (
            {"serial_number": "r1", "driver": {"type": "warp"}},
            "driver: Input tag 'warp' found",
        ),
        ({"serial_number": "r1", "version": "3.0.0"}, "version: Value error, must be a VDA 5050 2.x"),
        ({}, "serial_number: Field required"),
    ],
)
def test_bad_settings_are_named(data: dict[str, object], message: str) -> None:
    """Each problem is one line naming the source and the setting."""
    with pytest.raises(AgentConfigError) as raised:
        parse_config(data, source="robot.yaml")
    assert f"robot.yaml: {message}" in str(raised.value)


def test_unreadable_files_give_one_line(tmp_path: Path) -> None:
    """A missing file, broken YAML and a non-mapping each give one line naming the file."""
    with pytest.raises(AgentConfigError, match="cannot read"):
        load_config(tmp_path / "missing.yaml")
    broken = tmp_path / "broken.yaml"
    broken.write_text("serial_number: [", encoding="utf-8")
    with pytest.raises(AgentConfigError, match=r"broken\.yaml: not valid YAML"):
        load_config(broken)
    listed = tmp_path / "list.yaml"
    listed.write_text("- 1\n", encoding="utf-8")
    with pytest.raises(AgentConfigError, match="must be a mapping, not list"):
        load_config(listed)


@pytest.mark.parametrize("kind", list(RobotKind))
def test_factsheet_validates_and_declares_every_action(kind: RobotKind, shared_data: Path) -> None:
    """The factsheet of each kind validates against the official schema and declares our actions."""
    config = parse_config({"serial_number": "r1", "kind": kind.value, "factsheet": {"speed_max": 2.5}})
    factsheet = build_factsheet(config, HeaderFactory("robopost", "r1", clock=VirtualClock()))
    OfficialSchemas(shared_data).check(TopicKind.FACTSHEET, to_json(factsheet))
    declared = {a.action_type for a in factsheet.protocol_features.agv_actions}
    assert declared == {t.value for t in ActionType}
    assert factsheet.physical_parameters.speed_max == 2.5
    assert factsheet.protocol_limits.timing.default_state_interval == 30.0


def test_sim_driver_starts_where_configured() -> None:
    """driver.type sim gives a SimDriver at the configured start pose on the robot's map."""
    config = parse_config({"serial_number": "r1", "map_id": "campus", "driver": {"start": {"x": 2, "y": 3}}})
    driver = make_driver(config, VirtualClock())
    assert isinstance(driver, SimDriver) and driver.pose == Pose(2.0, 3.0, 0.0, "campus")


def test_cli_refuses_a_bad_config_in_one_line(tmp_path: Path) -> None:
    """robopost agent with a broken config exits 2 with one line naming the file and the setting."""
    path = tmp_path / "robot.yaml"
    path.write_text("serial_number: r1\nstate_period: 99\n", encoding="utf-8")
    result = CliRunner().invoke(app, ["agent", "--config", str(path)])
    assert result.exit_code == 2
    assert result.stderr.strip().count("\n") == 0 and "robot.yaml: state_period" in result.stderr
