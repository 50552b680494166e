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
    safety:                         # the safety supervisor (robots.agent.safety); every key optional
      period: 0.05                  # control period, s
      diagnostics_period: 1.0       # diagnostics at least this often, s
      readout: [e_stop, lidar]      # layers read from the driver's readout (only these two can be)
      external: []                  # layers fed by a sensor adapter; every other layer is absent
      simulated: false              # sim driver only: simulated sensors on all five layers
      lidar_sectors: 8              # sectors of a readout lidar
      max_speed: null               # NORMAL limit, m/s; null: 1.5, or 1.1 × the top speed if higher
      slow_speed: 0.5               # SLOW limit, m/s
      hold_off: 0.5                 # a self-releasing stop lasts this long after its cause, s
      silent_stop_count: 2          # this many silent layers stop the vehicle
      overspeed_tolerance: 0.15     # m/s above the braking curve before an overspeed stop
      fields: {reaction_time: 0.3, braking_deceleration: 1.0, protective_margin: 0.3,
               warning_time: 1.0, warning_margin: 0.5, half_angle_deg: 60}
      near_range: {stop_range: 0.25, slow_range: 0.6}
      camera:                       # per class: stop within, slow within (to slow_speed); null: ignore
        min_confidence: 0.5
        person: {stop_distance: 1.5, slow_distance: 4.0, slow_speed: 0.6}
        vehicle: {stop_distance: 1.0, slow_distance: 3.0, slow_speed: 0.8}
        other: null
      heartbeats: {lidar: 0.3, ultrasonic: 0.3, camera: 0.5, e_stop: 0.25, bumper: 0.25}
      acks: {e_stop_remote_ack: false, bumper_remote_ack: true, remote_ack_roles: [operator, admin],
             release_roles: [operator, admin], building_release_roles: [operator, admin]}
      on_site_role: operator        # the role of whoever turns the reset key at the vehicle
      modes: {initial: AUTOMATIC, confirm_timeout: 30, standstill_speed: 0.05}
      teleop: {deadman_timeout: 0.3, max_age: 0.3, clock_allowance: 0.1, max_rate: 50, burst: 10,
               manual_max_speed: 1.0, remote_max_speed: 1.2, unknown_zone_cap: 0.5, max_omega: 1.0,
               zones: [{name: plaza, x_min: 0, y_min: 0, x_max: 40, y_max: 25, cap: 0.8}]}

Everything but ``serial_number`` has a default. Unknown keys are refused. ``load_config(path)`` raises
``AgentConfigError`` with one line per problem naming the file and the setting. Nothing is read on import.

The ``safety`` section is checked whole when read: its values are built into the supervisor's frozen
configs (``robots.safety``), whose cross-checks (no slow speed above ``max_speed``...) become one line
each. A configured ``max_speed`` below the driver's speed (``driver.speed`` / ``nominal_speed``) is
refused: a drive by goals cannot be capped below it, so every drive would end in an overspeed stop.
``simulated`` makes all five layers external and needs something to feed them: ``sim.safety_feed``
(``attach_sim_sensors``); without a feed the robot stands, its layers silent — never the reverse.
It is refused with a ROS driver, whose real e-stop and scanner it would hide.
"""

from __future__ import annotations

import math
import re
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    ValidationError,
    field_validator,
    model_validator,
)

from interfaces.vda5050 import DEFAULT_INTERFACE, DEFAULT_MAX_BYTES, DEFAULT_VERSION
from robots.safety import (
    AckPolicy,
    CameraConfig,
    ClassRule,
    FieldConfig,
    Heartbeats,
    Mode,
    ModeConfig,
    NearRangeConfig,
    Role,
    SafetyConfig,
    Source,
    TeleopConfig,
)

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
    acknowledge_service: str = Field(default="safety/acknowledge", min_length=1)


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


DEFAULT_MAX_SPEED = SafetyConfig().max_speed
"""The supervisor's NORMAL limit when ``safety.max_speed`` is not set (m/s)."""

SensingLayer = Literal["lidar", "ultrasonic", "camera", "e_stop", "bumper"]
ActingRole = Literal["operator", "admin"]
AnyRole = Literal["none", "viewer", "operator", "admin"]


class FieldsSection(_Section):
    """The lidar's speed-scaled fields (``robots.safety.fields.FieldConfig``; s, m, m/s², degrees)."""

    reaction_time: float = Field(default=0.3, ge=0)
    braking_deceleration: float = Field(default=1.0, gt=0)
    protective_margin: float = Field(default=0.3, ge=0)
    warning_time: float = Field(default=1.0, ge=0)
    warning_margin: float = Field(default=0.5, ge=0)
    half_angle_deg: float = Field(default=60.0, gt=0, le=180)

    def build(self) -> FieldConfig:
        """The pure config."""
        return FieldConfig(
            reaction_time=self.reaction_time,
            braking_deceleration=self.braking_deceleration,
            protective_margin=self.protective_margin,
            warning_time=self.warning_time,
            warning_margin=self.warning_margin,
            half_angle=math.radians(self.half_angle_deg),
        )


class NearRangeSection(_Section):
    """The ultrasonic ring: stop within ``stop_range``, slow within ``slow_range`` (m)."""

    stop_range: float = Field(default=0.25, ge=0)
    slow_range: float = Field(default=0.6, ge=0)


class ClassRuleSection(_Section):
    """A camera class: stop within ``stop_distance``, slow to ``slow_speed`` within ``slow_distance``."""

    stop_distance: float = Field(ge=0)
    slow_distance: float = Field(ge=0)
    slow_speed: float = Field(gt=0)

    def build(self) -> ClassRule:
        """The pure rule."""
        return ClassRule(self.stop_distance, self.slow_distance, self.slow_speed)


class CameraSection(_Section):
    """Camera rules per class (null: the class is ignored) and the confidence below which it is ignored."""

    person: ClassRuleSection | None = ClassRuleSection(stop_distance=1.5, slow_distance=4.0, slow_speed=0.6)
    vehicle: ClassRuleSection | None = ClassRuleSection(stop_distance=1.0, slow_distance=3.0, slow_speed=0.8)
    other: ClassRuleSection | None = None
    min_confidence: float = Field(default=0.5, ge=0, le=1)

    def build(self) -> CameraConfig:
        """The pure config."""
        return CameraConfig(
            person=self.person.build() if self.person else None,
            vehicle=self.vehicle.build() if self.vehicle else None,
            other=self.other.build() if self.other else None,
            min_confidence=self.min_confidence,
        )


class HeartbeatsSection(_Section):
    """Per layer: seconds without a reading after which the layer is silent."""

    lidar: float = Field(default=0.3, gt=0)
    ultrasonic: float = Field(default=0.3, gt=0)
    camera: float = Field(default=0.5, gt=0)
    e_stop: float = Field(default=0.25, gt=0)
    bumper: float = Field(default=0.25, gt=0)


class AcksSection(_Section):
    """Who may clear what (``robots.safety.config.AckPolicy``); roles are console roles."""

    e_stop_remote_ack: bool = False
    bumper_remote_ack: bool = True
    remote_ack_roles: tuple[ActingRole, ...] = ("operator", "admin")
    release_roles: tuple[ActingRole, ...] = ("operator", "admin")
    building_release_roles: tuple[ActingRole, ...] = ("operator", "admin")

    def build(self) -> AckPolicy:
        """The pure policy."""
        return AckPolicy(
            e_stop_remote_ack=self.e_stop_remote_ack,
            bumper_remote_ack=self.bumper_remote_ack,
            remote_ack_roles=frozenset(Role(r) for r in self.remote_ack_roles),
            release_roles=frozenset(Role(r) for r in self.release_roles),
            building_release_roles=frozenset(Role(r) for r in self.building_release_roles),
        )


class ModesSection(_Section):
    """Mode handover: the mode at start, how long a request waits for confirmation (s), standstill (m/s)."""

    initial: Literal["AUTOMATIC", "SEMIAUTOMATIC", "MANUAL"] = "AUTOMATIC"
    confirm_timeout: float = Field(default=30.0, gt=0)
    standstill_speed: float = Field(default=0.05, ge=0)

    def build(self) -> ModeConfig:
        """The pure config."""
        return ModeConfig(Mode(self.initial), self.confirm_timeout, self.standstill_speed)


class ZoneSection(_Section):
    """A rectangle on the robot's map where teleop may drive at most ``cap`` m/s."""

    name: str = ""
    x_min: float
    y_min: float
    x_max: float
    y_max: float
    cap: float = Field(ge=0)

    @model_validator(mode="after")
    def _extent(self) -> ZoneSection:
        if self.x_max <= self.x_min or self.y_max <= self.y_min:
            raise ValueError("a zone needs x_min < x_max and y_min < y_max")
        return self


class TeleopSection(_Section):
    """Remote driving (``robots.safety.teleop.TeleopConfig``): dead man, age, rate, caps, zones."""

    deadman_timeout: float = Field(default=0.3, gt=0)
    max_age: float = Field(default=0.3, gt=0)
    clock_allowance: float = Field(default=0.1, ge=0)
    max_rate: float = Field(default=50.0, gt=0)
    burst: int = Field(default=10, ge=1)
    manual_max_speed: float = Field(default=1.0, gt=0)
    remote_max_speed: float = Field(default=1.2, gt=0)
    unknown_zone_cap: float = Field(default=0.5, ge=0)
    max_omega: float = Field(default=1.0, ge=0)
    zones: tuple[ZoneSection, ...] = ()

    def build(self) -> TeleopConfig:
        """The pure config (zones are the agent's: ``robots.agent.safety.SpeedZone``)."""
        return TeleopConfig(
            deadman_timeout=self.deadman_timeout,
            max_age=self.max_age,
            clock_allowance=self.clock_allowance,
            max_rate=self.max_rate,
            burst=self.burst,
            manual_max_speed=self.manual_max_speed,
            remote_max_speed=self.remote_max_speed,
            unknown_zone_cap=self.unknown_zone_cap,
            max_omega=self.max_omega,
        )


class SafetySection(_Section):
    """The safety supervisor of this robot (module docstring; ``robots.agent.agent.safety_settings``)."""

    period: float = Field(default=0.05, gt=0, le=1.0)
    diagnostics_period: float = Field(default=1.0, gt=0)
    readout: tuple[Literal["e_stop", "lidar"], ...] = ("e_stop", "lidar")
    external: tuple[SensingLayer, ...] = ()
    simulated: bool = False
    lidar_sectors: int = Field(default=8, ge=1)
    max_speed: float | None = Field(default=None, gt=0)
    slow_speed: float = Field(default=0.5, gt=0)
    hold_off: float = Field(default=0.5, ge=0)
    silent_stop_count: int = Field(default=2, ge=1, le=5)
    overspeed_tolerance: float = Field(default=0.15, ge=0)
    fields: FieldsSection = Field(default_factory=FieldsSection)
    near_range: NearRangeSection = Field(default_factory=NearRangeSection)
    camera: CameraSection = Field(default_factory=CameraSection)
    heartbeats: HeartbeatsSection = Field(default_factory=HeartbeatsSection)
    acks: AcksSection = Field(default_factory=AcksSection)
    on_site_role: AnyRole = "operator"
    modes: ModesSection = Field(default_factory=ModesSection)
    teleop: TeleopSection = Field(default_factory=TeleopSection)

    @model_validator(mode="after")
    def _consistent(self) -> SafetySection:
        both = set(self.readout) & set(self.external)
        if both:
            raise ValueError(f"layers both readout and external: {', '.join(sorted(both))}")
        if self.simulated and {"readout", "external"} & self.model_fields_set:
            raise ValueError("simulated makes all five layers external: leave readout and external out")
        return self

    def effective_max_speed(self, top_speed: float) -> float:
        """The NORMAL limit for a robot whose top speed is ``top_speed`` (m/s): ``max_speed`` if set,
        else the default raised to 1.1 × the top speed when that is higher."""
        if self.max_speed is not None:
            return self.max_speed
        return top_speed * 1.1 if top_speed > DEFAULT_MAX_SPEED else DEFAULT_MAX_SPEED

    @property
    def readout_layers(self) -> frozenset[Source]:
        """The layers read from the driver's readout (none when simulated)."""
        return frozenset() if self.simulated else frozenset(Source(x) for x in self.readout)

    @property
    def external_layers(self) -> frozenset[Source]:
        """The layers fed by a sensor adapter (all five when simulated)."""
        if self.simulated:
            return frozenset(Source(x) for x in ("lidar", "ultrasonic", "camera", "e_stop", "bumper"))
        return frozenset(Source(x) for x in self.external)

    def supervisor_config(self, max_speed: float) -> SafetyConfig:
        """The supervisor's config with NORMAL limit ``max_speed`` (``ValueError`` if inconsistent)."""
        h = self.heartbeats
        return SafetyConfig(
            max_speed=max_speed,
            slow_speed=self.slow_speed,
            hold_off=self.hold_off,
            silent_stop_count=self.silent_stop_count,
            overspeed_tolerance=self.overspeed_tolerance,
            fields=self.fields.build(),
            near_range=NearRangeConfig(self.near_range.stop_range, self.near_range.slow_range),
            camera=self.camera.build(),
            heartbeats=Heartbeats(h.lidar, h.ultrasonic, h.camera, h.e_stop, h.bumper),
            acks=self.acks.build(),
        )


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
    safety: SafetySection = Field(default_factory=SafetySection)

    @model_validator(mode="after")
    def _safety_fits_driver(self) -> AgentConfig:
        safety, driver = self.safety, self.driver
        if safety.simulated and not isinstance(driver, SimDriverSection):
            raise ValueError("safety.simulated needs the sim driver (it would hide a real robot's sensors)")
        top = driver.speed if isinstance(driver, SimDriverSection) else driver.nominal_speed
        if safety.max_speed is not None and safety.max_speed < top:
            raise ValueError(
                f"safety.max_speed {safety.max_speed} is below the driver's speed {top}: every drive "
                "would end in an overspeed stop"
            )
        try:  # the pure configs' own checks, with the limit this robot will have
            safety.supervisor_config(safety.effective_max_speed(top))
        except ValueError as exc:
            raise ValueError(f"safety: {exc}") from None
        return self

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
        if not error["loc"] and error["type"] == "value_error":  # a whole-file check names its settings
            lines.append(f"{source}: {error['ctx']['error']}")
            continue
        where = ".".join(str(part) for part in error["loc"]) or "config"
        what = "unknown setting" if error["type"] == "extra_forbidden" else error["msg"]
        lines.append(f"{source}: {where}: {what}")
    return "\n".join(lines)
