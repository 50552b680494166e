"""The fleet file: which robots exist, how they log in to the broker, and the orchestrator's own login.

::

    interface: robopost            # first topic level (default robopost)
    orchestrator:                  # the fleet master's MQTT account
      username: orchestrator
      password: change-me
    robots:
      - manufacturer: robopost     # VDA 5050 manufacturer (topic level)
        serial: cart-01            # VDA 5050 serialNumber: unique in the fleet
        kind: cart                 # cart | indoor | robot
        profile: cart              # routing profile (default: by kind)
        username: cart-01          # MQTT user (default: the serial number)
        password: change-me-too
        name: Cart 1               # optional display name
        version: 2.1.0             # optional VDA 5050 header version the robot speaks
        home: post_station         # optional: the place its trips start and end (dispatch)
        building: ADM              # indoor robots: the building it serves
        compartments: {s: 30, m: 15, l: 5}   # optional: compartments by size (dispatch capacity)
        battery_wh: 2000           # optional: battery capacity (dispatch energy model)

The dispatch fields are optional: live operations fill what is left out from the kind's defaults
(a cart's home is the station, an indoor robot's the hand-off point of its building).

``load_fleet(path)`` reads and checks it; problems raise ``FleetConfigError`` with one line per
problem naming the robot and the field. The file holds broker passwords: keep it readable by the
orchestrator's user only (``robopost fleet broker-config`` reads it to write Mosquitto's files).
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from interfaces.vda5050 import DEFAULT_INTERFACE, DEFAULT_VERSION, Topic, TopicKind, Vda5050Error
from interfaces.vda5050.base import check_version
from interfaces.vda5050.topics import major_version_of
from orchestrator.fleet.errors import FleetConfigError
from orchestrator.store.records import DEFAULT_PROFILE, RobotKind

_USERNAME = re.compile(r"[A-Za-z0-9_.:@\-]+")


class _Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


def _check_password(value: str) -> str:
    """Passwords go into Mosquitto's password file: one line, not empty."""
    if not value or "\n" in value or "\r" in value:
        raise ValueError("must be a non-empty single line")
    return value


class Account(_Strict):
    """An MQTT login."""

    username: str = Field(min_length=1, max_length=128)
    password: str

    @field_validator("username")
    @classmethod
    def _username(cls, value: str) -> str:
        if not _USERNAME.fullmatch(value):
            raise ValueError(f"{value!r} may only hold A-Z a-z 0-9 _ . : @ -")
        return value

    @field_validator("password")
    @classmethod
    def _password(cls, value: str) -> str:
        return _check_password(value)


class CompartmentCounts(_Strict):
    """Compartments by size (S ⊂ M ⊂ L: a parcel fits its size or larger)."""

    s: int = Field(default=0, ge=0)
    m: int = Field(default=0, ge=0)
    l: int = Field(default=0, ge=0)  # noqa: E741 - the size's name


class RobotConfig(_Strict):
    """One robot of the fleet."""

    manufacturer: str = Field(min_length=1, max_length=64)
    serial: str = Field(min_length=1, max_length=128)
    kind: RobotKind
    password: str
    username: str = ""
    profile: str = ""
    name: str = ""
    version: str = DEFAULT_VERSION
    home: str | None = Field(default=None, min_length=1)
    building: str | None = Field(default=None, min_length=1)
    compartments: CompartmentCounts | None = None
    battery_wh: float | None = Field(default=None, gt=0)

    @model_validator(mode="before")
    @classmethod
    def _defaults(cls, data: Any) -> Any:
        """Username defaults to the serial number, profile to the kind's default."""
        if isinstance(data, dict):
            data = dict(data)
            if not data.get("username") and isinstance(data.get("serial"), str):
                data["username"] = data["serial"]
            kind = data.get("kind")
            if not data.get("profile") and kind in {k.value for k in RobotKind}:
                data["profile"] = DEFAULT_PROFILE[RobotKind(kind)]
        return data

    @model_validator(mode="after")
    def _check(self) -> RobotConfig:
        try:
            Topic(manufacturer=self.manufacturer, serial_number=self.serial, kind=TopicKind.STATE)
            check_version(self.version)
        except (Vda5050Error, ValueError) as exc:
            raise ValueError(str(exc)) from None
        Account(username=self.username, password=self.password)
        return self

    @field_validator("password")
    @classmethod
    def _password(cls, value: str) -> str:
        return _check_password(value)

    @property
    def account(self) -> Account:
        """The robot's MQTT login."""
        return Account(username=self.username, password=self.password)

    @property
    def major_version(self) -> str:
        """The topic's version level, e.g. ``v2``."""
        return major_version_of(self.version)


class FleetConfig(_Strict):
    """The whole fleet: robots by serial number, the orchestrator's login, the topic interface name."""

    orchestrator: Account
    robots: tuple[RobotConfig, ...] = ()
    interface: str = DEFAULT_INTERFACE

    @model_validator(mode="after")
    def _unique(self) -> FleetConfig:
        serials = Counter(r.serial for r in self.robots)
        users = Counter([self.orchestrator.username, *(r.username for r in self.robots)])
        twice = sorted(s for s, n in serials.items() if n > 1)
        if twice:
            raise ValueError(f"serial numbers used more than once: {', '.join(twice)}")
        taken = sorted(u for u, n in users.items() if n > 1)
        if taken:
            raise ValueError(f"MQTT usernames used more than once: {', '.join(taken)}")
        return self

    def robot(self, serial: str) -> RobotConfig:
        """The robot with this serial number (``KeyError`` if there is none)."""
        for robot in self.robots:
            if robot.serial == serial:
                return robot
        raise KeyError(serial)


def parse_fleet(data: Any, source: str = "fleet") -> FleetConfig:
    """A ``FleetConfig`` from already-parsed YAML/JSON data; ``FleetConfigError`` naming each problem."""
    if not isinstance(data, dict):
        raise FleetConfigError(f"{source}: must hold a mapping, not {type(data).__name__}")
    try:
        return FleetConfig.model_validate(data)
    except ValidationError as exc:
        lines = []
        for error in exc.errors(include_url=False):
            where = _where(data, error["loc"])
            lines.append(f"{source}: {where}: {error['msg'].removeprefix('Value error, ')}")
        raise FleetConfigError("\n".join(lines)) from None


def load_fleet(path: Path) -> FleetConfig:
    """Read and check the fleet file at ``path``."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise FleetConfigError(f"{path}: cannot read fleet file: {exc.strerror}") from exc
    except yaml.YAMLError as exc:
        raise FleetConfigError(f"{path}: not valid YAML: {' '.join(str(exc).split())}") from exc
    return parse_fleet(data, str(path))


def _where(data: dict[str, Any], loc: tuple[int | str, ...]) -> str:
    """``robots[2] (cart-03).password`` rather than ``robots.2.password``."""
    parts: list[str] = []
    for i, part in enumerate(loc):
        if isinstance(part, int) and i > 0 and loc[i - 1] == "robots":
            robots = data.get("robots")
            serial = ""
            if isinstance(robots, list) and part < len(robots) and isinstance(robots[part], dict):
                serial = f" ({robots[part].get('serial', '?')})"
            parts[-1] = f"{parts[-1]}[{part}]{serial}"
        else:
            parts.append(str(part))
    return ".".join(parts) or "fleet"
