"""The bridge's configuration: one YAML file per building.

::

    building: ADM
    mqtt: {host: 127.0.0.1, port: 1884, client_id: bridge-ADM}   # password_env: NAME reads a variable
    tick_s: 0.5                 # how often timeouts are checked
    state_period_s: 5.0         # states are published on change and at least this often
    resume_grace_s: 3.0         # after a start, robots already in a lift get it back before others
    session:                    # defaults for every lift (each lift may override any of them)
      heartbeat_timeout_s: 10   # a robot silent this long loses its session (RELEASED)
      door_hold_max_s: 60       # longest the doors are held for one stop
      status_timeout_s: 5       # a controller silent this long makes its lift OFFLINE
      door_close_timeout_s: 12  # doors still open this long after "close": blocked
      door_blocked: wait        # wait (up to door_blocked_max_s) | abort
      door_blocked_max_s: 60
      session_max_s: 900
    lifts:
      ADM-L1:
        floors: [ADM-1F, ADM-2F, ...]          # lowest first
        fire_floor: ADM-1F
        floor_travel_s: 2.0                    # for the dispatcher's estimates
        door_time_s: 3.0
        driver: {kind: iot_mqtt, box_id: ADM-L1, labels: ["1", "2", ...]}
        # or: {kind: modbus_relay, port: /dev/ttyUSB0, device_id: 1, baudrate: 19200}
    door_defaults: {open_s: 3, close_s: 3, hold_s: 5, hold_max_s: 60, auto_close_s: 5}
    doors:
      ADM-1F-door-01: {iot: adm/1f/door-01}
    gates:
      TEA-gate:
        iot: tea/gate
        credentials: {robot-01: "sha256:<hex of the secret>"}   # or the secret itself
    iot_prefix: robopost/iot    # door/gate relays: {iot_prefix}/{iot}/command

``load_config(path)`` raises ``BridgeConfigError`` with one line per problem naming the file and the
setting. Nothing is read on import.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from elevator_bridge.doors import DoorSettings
from elevator_bridge.sessions import DoorBlockedPolicy, LiftSettings


class BridgeConfigError(Exception):
    """The bridge's configuration file cannot be used (the message names the file and the setting)."""


class _Section(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class MqttSection(_Section):
    """The building's MQTT broker."""

    host: str = "127.0.0.1"
    port: int = Field(default=1884, ge=1, le=65535)
    username: str | None = None
    password_env: str | None = None  # the name of the environment variable holding the password
    client_id: str = ""
    keepalive: int = Field(default=10, ge=1)


class SessionSection(_Section):
    """Session rules; the building's defaults, and each lift's overrides (None: the default)."""

    heartbeat_timeout_s: float | None = Field(default=None, gt=0)
    door_hold_max_s: float | None = Field(default=None, gt=0)
    status_timeout_s: float | None = Field(default=None, gt=0)
    door_close_timeout_s: float | None = Field(default=None, gt=0)
    door_blocked: DoorBlockedPolicy | None = None
    door_blocked_max_s: float | None = Field(default=None, gt=0)
    session_max_s: float | None = Field(default=None, gt=0)


class IotDriverSection(_Section):
    """A LiftLink IoT gateway over MQTT (``elevator_bridge.drivers.iot_mqtt``)."""

    kind: Literal["iot_mqtt"]
    box_id: str = Field(min_length=1)
    labels: list[str] | None = None  # the car panel's labels of our floors, lowest first
    topic_prefix: str = "liftlink"
    ack_timeout_s: float = Field(default=2.0, gt=0)
    silent_after_s: float = Field(default=5.0, gt=0)


class ModbusDriverSection(_Section):
    """A Modbus RTU relay board on a serial port (``elevator_bridge.drivers.modbus_relay``)."""

    kind: Literal["modbus_relay"]
    port: str = Field(min_length=1)
    device_id: int = Field(default=1, ge=1, le=247)
    baudrate: int = Field(default=19200, gt=0)
    parity: Literal["N", "E", "O"] = "N"
    poll_s: float = Field(default=0.1, gt=0)
    timeout_s: float = Field(default=0.2, gt=0)
    offline_after_s: float = Field(default=1.0, gt=0)


DriverSection = Annotated[IotDriverSection | ModbusDriverSection, Field(discriminator="kind")]


class LiftSection(SessionSection):
    """One lift: floors, fire floor, timing for estimates, driver, and session overrides."""

    floors: list[str] = Field(min_length=2)
    fire_floor: str | None = None
    floor_travel_s: float = Field(default=2.0, gt=0)
    door_time_s: float = Field(default=3.0, gt=0)
    driver: DriverSection

    @model_validator(mode="after")
    def _check(self) -> LiftSection:
        if len(set(self.floors)) != len(self.floors):
            raise ValueError("floors repeat")
        if self.fire_floor is not None and self.fire_floor not in self.floors:
            raise ValueError(f"fire_floor {self.fire_floor} is not one of the floors")
        labels = self.driver.labels if isinstance(self.driver, IotDriverSection) else None
        if labels is not None and len(labels) != len(self.floors):
            raise ValueError(f"driver.labels has {len(labels)} labels for {len(self.floors)} floors")
        return self


class DoorSection(_Section):
    """A door or gate; unset times take ``door_defaults``."""

    iot: str | None = None
    open_s: float | None = Field(default=None, ge=0)
    close_s: float | None = Field(default=None, ge=0)
    hold_s: float | None = Field(default=None, gt=0)
    hold_max_s: float | None = Field(default=None, gt=0)
    auto_close_s: float | None = Field(default=None, ge=0)


class GateSection(DoorSection):
    """A gate: a door that opens only for these robots' credentials (secret or ``sha256:<hex>``)."""

    credentials: dict[str, str] = Field(default_factory=dict)


class DoorDefaults(_Section):
    open_s: float = Field(default=3.0, ge=0)
    close_s: float = Field(default=3.0, ge=0)
    hold_s: float = Field(default=5.0, gt=0)
    hold_max_s: float = Field(default=60.0, gt=0)
    auto_close_s: float = Field(default=5.0, ge=0)


class BridgeConfig(_Section):
    """Everything one building's bridge needs."""

    building: str = Field(min_length=1, pattern=r"^[^/+#]+$")
    mqtt: MqttSection = Field(default_factory=MqttSection)
    tick_s: float = Field(default=0.5, gt=0)
    state_period_s: float = Field(default=5.0, gt=0)
    resume_grace_s: float = Field(default=3.0, ge=0)
    session: SessionSection = Field(default_factory=SessionSection)
    lifts: dict[str, LiftSection] = Field(min_length=1)
    door_defaults: DoorDefaults = Field(default_factory=DoorDefaults)
    doors: dict[str, DoorSection] = Field(default_factory=dict)
    gates: dict[str, GateSection] = Field(default_factory=dict)
    iot_prefix: str = "robopost/iot"

    @model_validator(mode="after")
    def _names(self) -> BridgeConfig:
        for kind, names in (("lift", self.lifts), ("door", self.doors), ("gate", self.gates)):
            for name in names:
                if not name or any(c in name for c in "/+#"):
                    raise ValueError(f"{kind} name {name!r} cannot be a topic level")
        return self

    def lift_settings(self) -> list[LiftSettings]:
        """The session logic's view of each lift (lift overrides over the building's defaults)."""
        return [self._lift_settings(name, lift) for name, lift in self.lifts.items()]

    def _lift_settings(self, name: str, lift: LiftSection) -> LiftSettings:
        rules: dict[str, Any] = {}
        for key in SessionSection.model_fields:
            value = getattr(lift, key)
            value = getattr(self.session, key) if value is None else value
            if value is not None:
                rules["door_blocked_policy" if key == "door_blocked" else key] = value
        return LiftSettings(
            name=name,
            floors=tuple(lift.floors),
            fire_floor=lift.fire_floor,
            floor_travel_s=lift.floor_travel_s,
            door_time_s=lift.door_time_s,
            **rules,
        )

    def door_settings(self) -> list[DoorSettings]:
        """Every door's settings."""
        return [self._door(name, door) for name, door in self.doors.items()]

    def gate_settings(self) -> list[DoorSettings]:
        """Every gate's settings, with its credentials."""
        return [self._door(name, gate, gate.credentials) for name, gate in self.gates.items()]

    def _door(
        self, name: str, door: DoorSection, credentials: Mapping[str, str] | None = None
    ) -> DoorSettings:
        defaults = self.door_defaults.model_dump()
        times = {k: v for k, v in door.model_dump(exclude={"iot", "credentials"}).items() if v is not None}
        return DoorSettings(
            name=name, iot=door.iot, credentials=dict(credentials or {}), **{**defaults, **times}
        )

    def mqtt_password(self, env: Mapping[str, str] | None = None) -> str | None:
        """The MQTT password from the environment variable named by ``mqtt.password_env``."""
        name = self.mqtt.password_env
        if name is None:
            return None
        value = (os.environ if env is None else env).get(name)
        if value is None:
            raise BridgeConfigError(f"mqtt.password_env: the environment variable {name} is not set")
        return value


def load_config(path: Path) -> BridgeConfig:
    """Read and check a bridge configuration file."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise BridgeConfigError(f"{path}: cannot read: {exc.strerror}") from exc
    except yaml.YAMLError as exc:
        raise BridgeConfigError(f"{path}: not valid YAML: {' '.join(str(exc).split())}") from exc
    if not isinstance(data, dict):
        raise BridgeConfigError(f"{path}: the file must hold a mapping, not {type(data).__name__}")
    return parse_config(data, str(path))


def parse_config(data: Mapping[str, Any], source: str = "config") -> BridgeConfig:
    """Check a configuration already read (``source`` names it in errors)."""
    try:
        config = BridgeConfig.model_validate(data)
        config.lift_settings()
        config.door_settings()
        config.gate_settings()
    except ValidationError as exc:
        lines = [f"{source}: {_where(err['loc'])}: {err['msg']}" for err in exc.errors()]
        raise BridgeConfigError("\n".join(lines)) from exc
    except ValueError as exc:
        raise BridgeConfigError(f"{source}: {exc}") from exc
    return config


def _where(loc: tuple[int | str, ...]) -> str:
    """A pydantic error location as a dotted setting name (union tags left out)."""
    parts = [str(p) for p in loc if p not in ("iot_mqtt", "modbus_relay")]
    return ".".join(parts) or "(top)"
