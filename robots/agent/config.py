"""One robot's agent configuration: a YAML file read into a typed, frozen ``AgentConfig``.

    manufacturer: robopost
    serial_number: cart-01          # A-Z a-z 0-9 _ . : -  (VDA 5050 §6.3)
    kind: cart                      # cart | indoor | robot
    map_id: campus                  # the map the robot starts on
    mqtt: {host: 127.0.0.1, port: 1883, username: cart-01, password: secret, keepalive: 10}
    state_period: 30                # seconds between states when nothing changes (at most 30)
    visualization_period: 1.0       # seconds between visualization messages (0: none)
    execution: {default_deviation_xy: 0.5, drive_retries: 2, action_retries: 1, retry_delay: 1.0}
    driver:                         # sim: in-process kinematics; ros: the robot's ROS 2 stack
      type: sim
      speed: 1.5
      start: {x: 0.0, y: 0.0, theta: 0.0}
    factsheet: {series_name: robopost-cart, speed_max: 1.8, compartments: 12}

Everything but ``serial_number`` has a default. Unknown keys are refused. ``load_config(path)`` raises
``AgentConfigError`` with one line per problem naming the file and the setting. Nothing is read on import.
"""

from __future__ import annotations

import re
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag, ValidationError, field_validator

from interfaces.vda5050 import DEFAULT_INTERFACE, DEFAULT_MAX_BYTES, DEFAULT_VERSION

_SERIAL = re.compile(r"[A-Za-z0-9_.:\-]+")
_LEVEL = re.compile(r"[^/+#\x00]+")

MAX_STATE_PERIOD = 30.0
"""VDA 5050 §6.10: a state at least every 30 seconds."""


class AgentConfigError(Exception):
    """The robot's configuration file cannot be used."""


class RobotKind(StrEnum):
    """What the robot is (the routing profiles of ``maps``)."""

    CART = "cart"
    INDOOR = "indoor"
    ROBOT = "robot"


class _Section(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class MqttSection(_Section):
    """The broker and the robot's credentials; ``client_id`` defaults to ``{manufacturer}-{serial}``."""

    host: str = "127.0.0.1"
    port: int = Field(default=1883, ge=1, le=65535)
    username: str | None = None
    password: str | None = None
    client_id: str | None = None
    keepalive: int = Field(default=10, ge=1, le=3600)


class ExecutionSection(_Section):
    """How orders are executed (see ``robots.agent.vehicle.VehicleSettings``)."""

    default_deviation_xy: float = Field(default=0.5, ge=0)
    drive_retries: int = Field(default=2, ge=0)
    action_retries: int = Field(default=1, ge=0)
    retry_delay: float = Field(default=1.0, ge=0)


class StartPose(_Section):
    """Where a simulated robot starts (on the config's ``map_id``)."""

    x: float = 0.0
    y: float = 0.0
    theta: float = 0.0


class SimDriverSection(_Section):
    """The in-process simulated robot (``robots.agent.sim_driver.SimDriver``)."""

    type: Literal["sim"] = "sim"
    speed: float = Field(default=1.5, gt=0)
    turn_rate: float = Field(default=1.5, gt=0)
    step: float = Field(default=0.1, gt=0)
    battery: float = Field(default=100.0, ge=0, le=100)
    start: StartPose = Field(default_factory=StartPose)
    action_durations: dict[str, float] | None = None


class RosDriverSection(_Section):
    """The robot's ROS 2 stack (``robots.agent.ros_driver.RosDriver``)."""

    type: Literal["ros"]
    namespace: str = ""
    node_name: str = "robopost_agent"
    domain_id: int | None = Field(default=None, ge=0, le=232)
    position_tolerance: float = Field(default=0.1, gt=0)
    nominal_speed: float = Field(default=0.5, gt=0)
    stall_timeout: float = Field(default=5.0, gt=0)


def _driver_type(value: Any) -> str | None:
    """The ``type`` of a driver section; ``sim`` when left out."""
    if isinstance(value, dict):
        return str(value.get("type", "sim"))
    return getattr(value, "type", None)


DriverSection = Annotated[
    Annotated[SimDriverSection, Tag("sim")] | Annotated[RosDriverSection, Tag("ros")],
    Discriminator(_driver_type),
]


class FactsheetSection(_Section):
    """What the factsheet says beyond the protocol; ``None`` takes the kind's default."""

    series_name: str | None = None
    series_description: str | None = None
    max_load_mass: float | None = Field(default=None, ge=0)
    speed_max: float | None = Field(default=None, gt=0)
    width: float | None = Field(default=None, gt=0)
    length: float | None = Field(default=None, gt=0)
    height: float | None = Field(default=None, gt=0)
    compartments: int | None = Field(default=None, ge=0)


class AgentConfig(BaseModel):
    """Everything one robot agent needs (see the module docstring)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    manufacturer: str = "robopost"
    serial_number: str
    kind: RobotKind = RobotKind.CART
    interface: str = DEFAULT_INTERFACE
    version: str = DEFAULT_VERSION
    map_id: str = "map"
    mqtt: MqttSection = Field(default_factory=MqttSection)
    state_period: float = Field(default=MAX_STATE_PERIOD, gt=0, le=MAX_STATE_PERIOD)
    visualization_period: float = Field(default=1.0, ge=0)
    max_payload_bytes: int = Field(default=DEFAULT_MAX_BYTES, ge=1024)
    execution: ExecutionSection = Field(default_factory=ExecutionSection)
    driver: DriverSection = Field(default_factory=SimDriverSection)
    factsheet: FactsheetSection = Field(default_factory=FactsheetSection)

    @field_validator("serial_number")
    @classmethod
    def _serial(cls, value: str) -> str:
        if not _SERIAL.fullmatch(value):
            raise ValueError("must be made of A-Z a-z 0-9 _ . : - (VDA 5050 §6.3)")
        return value

    @field_validator("manufacturer", "interface")
    @classmethod
    def _level(cls, value: str) -> str:
        if not _LEVEL.fullmatch(value):
            raise ValueError("must be non-empty without / + # (it is an MQTT topic level)")
        return value

    @field_validator("version")
    @classmethod
    def _version(cls, value: str) -> str:
        if value.split(".", 1)[0] != "2" or "." not in value:
            raise ValueError("must be a VDA 5050 2.x version such as 2.1.0")
        return value

    @property
    def client_id(self) -> str:
        """The MQTT client id: configured, else ``{manufacturer}-{serial_number}``."""
        return self.mqtt.client_id or f"{self.manufacturer}-{self.serial_number}"


def load_config(path: Path) -> AgentConfig:
    """The ``AgentConfig`` in the YAML file ``path``; ``AgentConfigError`` (one line per problem) if not."""
    return parse_config(_read_yaml(path), source=str(path))


def parse_config(data: Any, *, source: str = "config") -> AgentConfig:
    """An ``AgentConfig`` from already-read data (e.g. a dict built in a test)."""
    if not isinstance(data, dict):
        raise AgentConfigError(f"{source}: the configuration must be a mapping, not {type(data).__name__}")
    try:
        return AgentConfig(**data)
    except ValidationError as exc:
        raise AgentConfigError(_explain(exc, source)) from None


def _read_yaml(path: Path) -> Any:
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise AgentConfigError(f"{path}: cannot read: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise AgentConfigError(f"{path}: not valid YAML: {' '.join(str(exc).split())}") from None


def _explain(exc: ValidationError, source: str) -> str:
    """One line per problem: file, setting, what is wrong."""
    lines = []
    for error in exc.errors(include_url=False):
        where = ".".join(str(part) for part in error["loc"]) or "config"
        what = "unknown setting" if error["type"] == "extra_forbidden" else error["msg"]
        lines.append(f"{source}: {where}: {what}")
    return "\n".join(lines)
