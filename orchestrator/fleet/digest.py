"""Cheap reading of the robots' frequent messages: what the fleet master needs of ``state`` and
``visualization``, and nothing more.

Hundreds of robots at 2 Hz make a thousand states a second. ``interfaces.vda5050.State`` keeps every
field and every unknown extension (about 55 µs per 1.8 kB state here); ``StateDigest`` declares only
the fields the fleet picture and order tracking read, typed as the 2.1 schema types them, and lets
pydantic-core skip the rest while it tokenises the JSON (about 27 µs). A payload whose read fields
are missing or ill-typed is refused like any other garbage (``PayloadError``); fields it does not
read are not checked (they are the robot's business and nobody here uses them).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError, field_validator
from pydantic.alias_generators import to_camel

from interfaces.vda5050 import ActionStatus, ErrorLevel, EStop, OperatingMode, PayloadError
from interfaces.vda5050.base import check_version
from interfaces.vda5050.codec import describe

STATE_MAX_BYTES = 256 * 1024
"""Largest ``state``/``visualization`` payload read (a state with 200 nodes is about 40 kB)."""


class _Digest(BaseModel):
    model_config = ConfigDict(
        alias_generator=to_camel,
        validate_by_name=True,
        validate_by_alias=True,
        extra="ignore",
        frozen=True,
        allow_inf_nan=False,
    )


class PositionDigest(_Digest):
    """``agvPosition``: where the robot is on which map."""

    x: float
    y: float
    theta: float
    map_id: str
    position_initialized: bool


class NodeDigest(_Digest):
    """One of ``nodeStates``."""

    node_id: str
    sequence_id: int
    released: bool


class EdgeDigest(_Digest):
    """One of ``edgeStates``."""

    edge_id: str
    sequence_id: int
    released: bool


class ActionDigest(_Digest):
    """One of ``actionStates``."""

    action_id: str
    action_status: ActionStatus
    action_type: str | None = None
    result_description: str | None = None


class ReferenceDigest(_Digest):
    """One ``errorReferences`` entry."""

    reference_key: str
    reference_value: str


class ErrorDigest(_Digest):
    """One of ``errors``."""

    error_type: str
    error_level: ErrorLevel
    error_description: str | None = None
    error_references: tuple[ReferenceDigest, ...] | None = None

    def reference(self, key: str) -> str | None:
        """The value of the reference ``key`` (e.g. ``orderId``), if the error names one."""
        for ref in self.error_references or ():
            if ref.reference_key == key:
                return ref.reference_value
        return None


class BatteryDigest(_Digest):
    """``batteryState``: charge in percent and whether it is charging."""

    battery_charge: float
    charging: bool


class SafetyDigest(_Digest):
    """``safetyState``: the robot's e-stop (NONE, or how it is acknowledged) and field violation."""

    e_stop: EStop
    field_violation: bool


class StateDigest(_Digest):
    """The parts of a VDA 5050 ``state`` the fleet master reads (§6.10)."""

    header_id: int
    timestamp: datetime
    version: str
    order_id: str
    order_update_id: int
    last_node_id: str
    last_node_sequence_id: int
    node_states: tuple[NodeDigest, ...]
    edge_states: tuple[EdgeDigest, ...]
    driving: bool
    action_states: tuple[ActionDigest, ...]
    battery_state: BatteryDigest
    operating_mode: OperatingMode
    errors: tuple[ErrorDigest, ...]
    paused: bool | None = None
    new_base_request: bool | None = None
    agv_position: PositionDigest | None = None
    safety_state: SafetyDigest | None = None  # required by the protocol; optional here (old robots)

    @field_validator("version")
    @classmethod
    def _version(cls, value: str) -> str:
        return check_version(value)

    @property
    def sent_at(self) -> float:
        """The header timestamp as epoch seconds (a zone-less timestamp is read as UTC)."""
        return _epoch(self.timestamp)


class VisualizationDigest(_Digest):
    """The parts of ``visualization`` the fleet master reads: the position (§6.12)."""

    timestamp: datetime | None = None
    agv_position: PositionDigest | None = None


D = TypeVar("D", bound=_Digest)


def _epoch(value: datetime) -> float:
    return (value if value.tzinfo is not None else value.replace(tzinfo=UTC)).timestamp()


def read_state(payload: bytes, *, max_bytes: int = STATE_MAX_BYTES) -> StateDigest:
    """The digest of a ``state`` payload; ``PayloadError`` with a one-line reason for garbage."""
    return _read(StateDigest, payload, max_bytes)


def read_visualization(payload: bytes, *, max_bytes: int = STATE_MAX_BYTES) -> VisualizationDigest:
    """The digest of a ``visualization`` payload; ``PayloadError`` for garbage."""
    return _read(VisualizationDigest, payload, max_bytes)


def _read(model: type[D], payload: bytes, max_bytes: int) -> D:
    if len(payload) > max_bytes:
        raise PayloadError(f"{model.__name__}: {len(payload)} bytes exceed the limit of {max_bytes}")
    try:
        return model.model_validate_json(payload)
    except ValidationError as exc:
        raise PayloadError(describe(model.__name__, exc)) from None
