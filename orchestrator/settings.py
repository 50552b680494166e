"""The orchestrator's settings: one typed object, loaded from a YAML file plus environment overrides.

    database:  {url: sqlite:///var/robopost.db}           # or postgresql+psycopg://user@host/db
    campus:    {map: <maps package>/campuses/neijiang.yaml, timezone: Asia/Shanghai,
                windows: [{id: w1, start: "07:30", end: "08:30"}, ...]}   # daily delivery windows
    http:      {host: 127.0.0.1, port: 8080}
    mqtt:      {host: 127.0.0.1, port: 1884, embedded: true}
    fleet:     {enabled: false, config: fleet.yaml}       # VDA 5050 master over settings.mqtt
    security:  {keys_file: var/keys.yaml, partners: {mp: <secret>}, carts: {cart_1: <token>}, ...}
    notify:    {provider: log}                            # or webhook with webhook_url
    safety:    {fire_policy: stop, fire_policies: {b1: safe_spot}, action_timeout_s: 3.0}
    operations: {enabled: false}                          # the live dispatch loop (needs fleet)
    clock:     {time_factor: 1.0, epoch: null, origin: null}   # simulations and demos only
    log_level: INFO

Environment variables override the file: ``ROBOPOST_`` + the path in capitals with ``__`` between the
parts, e.g. ``ROBOPOST_HTTP__PORT=9000`` or ``ROBOPOST_LOG_LEVEL=debug``. Every ``ROBOPOST_`` variable
must name a setting (a typo is an error, not silently ignored). A relative ``campus.map`` in a YAML file
is taken relative to that file's folder; from the environment, relative to the working directory.

Nothing is read on import: ``Settings.load(...)`` reads the file and the environment when called, and
``Settings()`` is just the defaults. Bad values raise ``SettingsError`` with one line per problem naming
the setting and where its value came from.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from importlib.resources import files
from itertools import pairwise
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

ENV_PREFIX = "ROBOPOST_"
ENV_DELIMITER = "__"

LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"]


class SettingsError(Exception):
    """The settings file or an environment variable holds something unusable."""


def default_campus_map() -> Path:
    """The sample campus shipped in the ``maps`` package (``maps/campuses/neijiang.yaml``)."""
    return Path(str(files("maps") / "campuses" / "neijiang.yaml"))


class _Section(BaseModel):
    """A settings section: immutable, unknown keys refused."""

    model_config = ConfigDict(frozen=True, extra="forbid")


class DatabaseSettings(_Section):
    """Where the store lives (SQLAlchemy URL)."""

    url: str = Field(default="sqlite:///var/robopost.db", min_length=1)


_HHMM = re.compile(r"([01]\d|2[0-3]):([0-5]\d)")


def minutes_of(hhmm: str) -> int:
    """Minutes after midnight of a ``HH:MM`` time of day (``24:00`` is the end of the day)."""
    if hhmm == "24:00":
        return 24 * 60
    match = _HHMM.fullmatch(hhmm)
    if match is None:
        raise ValueError(f"{hhmm!r} is not a time of day HH:MM (00:00..24:00)")
    return int(match[1]) * 60 + int(match[2])


class WindowSettings(_Section):
    """One daily delivery window (投递时段) in the campus's local time: ``start`` and ``end`` as HH:MM."""

    id: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.\-]+$")
    start: str
    end: str

    @model_validator(mode="after")
    def _times(self) -> WindowSettings:
        if minutes_of(self.end) <= minutes_of(self.start):
            raise ValueError(f"window {self.id}: end {self.end} must be after start {self.start}")
        return self

    @property
    def start_s(self) -> float:
        """Seconds after local midnight the window opens."""
        return minutes_of(self.start) * 60.0

    @property
    def end_s(self) -> float:
        """Seconds after local midnight the window closes."""
        return minutes_of(self.end) * 60.0


def default_windows() -> list[WindowSettings]:
    """Four windows around the students' day (SCENARIO.md: 4 a day; the same as ``sim.campus_day``)."""
    times = (
        ("w1", "07:30", "08:30"),
        ("w2", "12:00", "13:30"),
        ("w3", "17:00", "18:30"),
        ("w4", "21:00", "22:00"),
    )
    return [WindowSettings(id=i, start=a, end=b) for i, a, b in times]


class CampusSettings(_Section):
    """Which campus map the orchestrator serves, its time zone, and its daily delivery windows
    (sorted, not overlapping; ``robopost windows recommend`` proposes them from pickup times)."""

    map: Path = Field(default_factory=default_campus_map)
    timezone: str = "Asia/Shanghai"
    windows: list[WindowSettings] = Field(default_factory=default_windows, min_length=1)

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"{value!r} is not an IANA time zone such as Asia/Shanghai") from None
        return value

    @field_validator("windows")
    @classmethod
    def _no_overlap(cls, windows: list[WindowSettings]) -> list[WindowSettings]:
        ids = [w.id for w in windows]
        if len(set(ids)) != len(ids):
            raise ValueError(f"window ids must be unique, got {ids}")
        ordered = sorted(windows, key=lambda w: w.start_s)
        for a, b in pairwise(ordered):
            if b.start_s < a.end_s:
                raise ValueError(f"windows {a.id} ({a.start}-{a.end}) and {b.id} ({b.start}-{b.end}) overlap")
        return ordered


class HttpSettings(_Section):
    """Where the HTTP API and console listen; ``access_log`` writes a line per request."""

    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=1, le=65535)
    access_log: bool = True


class MqttSettings(_Section):
    """The MQTT broker: an external one at host:port, or an embedded one started on that port.

    The default port is 1884, not 1883, so the embedded broker does not collide with a system
    Mosquitto.
    """

    host: str = "127.0.0.1"
    port: int = Field(default=1884, ge=1, le=65535)
    embedded: bool = True


class FleetSettings(_Section):
    """The VDA 5050 fleet master: off unless ``enabled``; ``config`` is the fleet file (robots, MQTT
    accounts; see ``orchestrator.fleet.config``), relative to the settings file when given there."""

    enabled: bool = False
    config: Path | None = None
    stale_after_s: float = Field(default=45.0, gt=0)
    confirm_timeout_s: float = Field(default=5.0, gt=0)
    max_resends: int = Field(default=3, ge=0)
    persist_interval_s: float = Field(default=5.0, gt=0)

    @model_validator(mode="after")
    def _config_when_enabled(self) -> FleetSettings:
        if self.enabled and self.config is None:
            raise ValueError("fleet.enabled needs fleet.config (the fleet file)")
        return self


class SecuritySettings(_Section):
    """Keys and limits for personal data, pickup codes, partner and cart authentication.

        Keys are url-safe base64 strings of 32 random bytes. ``data_keys`` maps a key id to a key;
        ``active_data_key`` names the one that encrypts (older ids still decrypt: key rotation). Any key
        left empty is read from ``keys_file`` or, for a zero-setup demo, generated there (mode 0600) on
        first start; production passes them in, e.g. ``ROBOPOST_SECURITY__CODE_KEY``. ``partners`` maps a
        mini-program partner id to its request-signing secret (``station`` is the station's sorting
    system, which imports parcels with it as a bearer token), ``partner_callbacks`` a partner id to the
    URL its orders' status changes are POSTed to, ``carts`` a cart id to its API token.
    """

    data_keys: dict[str, str] = Field(default_factory=dict)
    active_data_key: str = ""
    code_key: str = ""
    keys_file: Path = Path("var/keys.yaml")
    partners: dict[str, str] = Field(default_factory=dict)
    partner_callbacks: dict[str, str] = Field(default_factory=dict)  # partner id -> status webhook URL
    carts: dict[str, str] = Field(default_factory=dict)
    signature_max_skew_s: float = Field(default=300.0, gt=0)
    code_attempts: int = Field(default=5, ge=1)
    code_lockout_window_s: float = Field(default=600.0, gt=0)
    code_daily_limit: int = Field(default=20, ge=1)  # wrong codes per cart a day, then entry closes
    code_plain_misses: int = Field(default=1, ge=0)  # then the code plus the phone's last 4 digits
    retention_days: int = Field(default=30, ge=1)
    session_ttl_s: float = Field(default=8 * 3600.0, gt=0)


class NotifySettings(_Section):
    """How recipients are told (SMS, phone call): ``log`` only writes them down, ``webhook`` POSTs
    each message to an SMS/voice gateway at ``webhook_url`` (signed with ``webhook_secret``)."""

    provider: Literal["log", "webhook"] = "log"
    webhook_url: str | None = None
    webhook_secret: str = ""
    max_attempts: int = Field(default=6, ge=1)
    backoff_s: float = Field(default=5.0, gt=0)
    reminder_before_end_s: float = Field(default=900.0, ge=0)

    @model_validator(mode="after")
    def _url_for_webhook(self) -> NotifySettings:
        if self.provider == "webhook" and not self.webhook_url:
            raise ValueError("notify.provider webhook needs notify.webhook_url")
        return self


class SafetySettings(_Section):
    """Safety (issue 9): what robots in a building do on its fire alarm (``stop`` or ``safe_spot``), per
    building id and by default; how long a console control route waits for the robot's answer."""

    fire_policy: Literal["stop", "safe_spot"] = "stop"
    fire_policies: dict[str, Literal["stop", "safe_spot"]] = Field(default_factory=dict)
    action_timeout_s: float = Field(default=3.0, gt=0)
    teleop_max_hz: float = Field(default=20.0, gt=0)


class OperationsSettings(_Section):
    """The live dispatch loop (``orchestrator.api.live_operations``): off unless ``enabled`` (it needs
    ``fleet.enabled``). A robot whose link is down for ``robot_failed_after_s`` is failed for the plan
    (its parcels come back) and is expected back ``recovery_guess_s`` later; a shorter outage (a broker
    restart) changes nothing. The next service day's plan starts at ``day_starts`` (local ``HH:MM``)."""

    enabled: bool = False
    robot_failed_after_s: float = Field(default=180.0, gt=0)
    recovery_guess_s: float = Field(default=1800.0, gt=0)
    day_starts: str = Field(default="03:00", pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$")


class ClockSettings(_Section):
    """The orchestrator's clock. ``time_factor`` 1 without ``epoch`` is real time (production). For a
    simulation or demo (``robopost demo``) every part of the orchestrator runs on
    ``ScaledClock(time_factor, epoch, origin)``, sessions and lockouts included (an 8 h console session
    lasts 48 real minutes at 10x), so it shares one time with the simulated robots."""

    time_factor: float = Field(default=1.0, gt=0, le=1000)
    epoch: float | None = None
    origin: float | None = None

    @property
    def real(self) -> bool:
        """Whether this is plain real time."""
        return self.time_factor == 1.0 and self.epoch is None


class Settings(BaseSettings):
    """All orchestrator settings. Build with ``Settings.load``; ``Settings()`` gives the defaults."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, env_nested_delimiter=ENV_DELIMITER, extra="forbid", frozen=True
    )

    database: DatabaseSettings = Field(default_factory=DatabaseSettings)
    campus: CampusSettings = Field(default_factory=CampusSettings)
    http: HttpSettings = Field(default_factory=HttpSettings)
    mqtt: MqttSettings = Field(default_factory=MqttSettings)
    fleet: FleetSettings = Field(default_factory=FleetSettings)
    security: SecuritySettings = Field(default_factory=SecuritySettings)
    notify: NotifySettings = Field(default_factory=NotifySettings)
    safety: SafetySettings = Field(default_factory=SafetySettings)
    operations: OperationsSettings = Field(default_factory=OperationsSettings)
    clock: ClockSettings = Field(default_factory=ClockSettings)
    log_level: LogLevel = "INFO"

    @model_validator(mode="after")
    def _operations_need_the_fleet(self) -> Settings:
        if self.operations.enabled and not self.fleet.enabled:
            raise ValueError("operations.enabled needs fleet.enabled (legs go to robots over VDA 5050)")
        return self

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper_log_level(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Only the values passed in: ``load`` reads the file and the environment it is given."""
        return (init_settings,)

    @classmethod
    def load(cls, yaml_path: Path | None = None, env: Mapping[str, str] | None = None) -> Settings:
        """Settings from ``yaml_path`` (optional) overridden by ``env`` (``os.environ`` when ``None``)."""
        from_file = _read_yaml(yaml_path) if yaml_path is not None else {}
        from_env, env_names = _env_values(os.environ if env is None else env)
        merged = _deep_merge(from_file, from_env)
        try:
            return cls(**merged)
        except ValidationError as exc:
            raise SettingsError(_explain(exc, yaml_path, env_names)) from exc


def _read_yaml(path: Path) -> dict[str, Any]:
    """The mapping in a YAML settings file, with a relative ``campus.map`` made relative to the file."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise SettingsError(f"{path}: cannot read settings file: {exc.strerror}") from exc
    except yaml.YAMLError as exc:
        raise SettingsError(f"{path}: not valid YAML: {' '.join(str(exc).split())}") from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise SettingsError(f"{path}: settings file must hold a mapping, not {type(data).__name__}")
    campus = data.get("campus")
    if isinstance(campus, dict) and isinstance(campus.get("map"), str):
        campus["map"] = str(path.parent / Path(campus["map"]).expanduser())
    fleet = data.get("fleet")
    if isinstance(fleet, dict) and isinstance(fleet.get("config"), str):
        fleet["config"] = str(path.parent / Path(fleet["config"]).expanduser())
    return data


def _env_values(env: Mapping[str, str]) -> tuple[dict[str, Any], dict[tuple[str, ...], str]]:
    """The ``ROBOPOST_`` variables as a nested dict, and which variable gave each settings path."""
    values: dict[str, Any] = {}
    names: dict[tuple[str, ...], str] = {}
    for name, value in env.items():
        if not name.upper().startswith(ENV_PREFIX):
            continue
        path = tuple(part.lower() for part in name[len(ENV_PREFIX) :].split(ENV_DELIMITER))
        if not all(path):
            raise SettingsError(f"environment {name}: empty part in the setting's name")
        _set_nested(values, path, value, name)
        names[path] = name
    return values, names


def _set_nested(target: dict[str, Any], path: tuple[str, ...], value: str, name: str) -> None:
    """Put ``value`` at ``path`` in nested dicts; refuse a variable that collides with another."""
    node = target
    for part in path[:-1]:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise SettingsError(f"environment {name}: {'.'.join(path)} conflicts with another variable")
        node = child
    if isinstance(node.get(path[-1]), dict):
        raise SettingsError(f"environment {name}: {'.'.join(path)} conflicts with another variable")
    node[path[-1]] = value


def _deep_merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    """``base`` with ``over`` laid on top, section by section."""
    merged = dict(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _explain(exc: ValidationError, yaml_path: Path | None, env_names: Mapping[tuple[str, ...], str]) -> str:
    """One line per validation problem: the setting, where its value came from, and what is wrong."""
    lines = []
    for error in exc.errors():
        loc = tuple(str(part) for part in error["loc"])
        source = _source(loc, yaml_path, env_names)
        got = f" (got {error['input']!r})" if error["type"] != "extra_forbidden" else ""
        what = "unknown setting" if error["type"] == "extra_forbidden" else error["msg"]
        lines.append(f"settings: {'.'.join(loc)}{source}: {what}{got}")
    return "\n".join(lines)


def _source(loc: tuple[str, ...], yaml_path: Path | None, env_names: Mapping[tuple[str, ...], str]) -> str:
    """`` (from env X)`` or `` (from FILE)`` for the value at ``loc``, or ``""`` for a default."""
    for depth in range(len(loc), 0, -1):
        if loc[:depth] in env_names:
            return f" (from env {env_names[loc[:depth]]})"
    return f" (from {yaml_path})" if yaml_path is not None else ""
