"""The fleet picture: per robot, its link to the broker and the last thing its ``state`` said.

Updated in place from every message (no allocation beyond the parsed digest); read through frozen
``RobotView`` snapshots (``FleetPicture.views(now)``), which is what the API and the CLI show.

Link states (``Link``)::

    UNKNOWN ──connection ONLINE / a state──▶ ONLINE ──no state for stale_after_s──▶ STALE
                                              ▲  │                                   │
                           connection ONLINE  │  └─connection OFFLINE / CONNECTIONBROKEN (last will)
                                              │                                      │ a state
                                    OFFLINE, CONNECTIONBROKEN ◀──────────────────────┘ revives STALE

``online`` is true only for ``ONLINE``. A state does not revive a robot whose own ``connection`` said
OFFLINE or CONNECTIONBROKEN: a robot that comes back announces ONLINE first (VDA 5050 §6.14).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from interfaces.vda5050 import ConnectionState, EStop, Factsheet
from orchestrator.fleet.config import RobotConfig
from orchestrator.fleet.digest import PositionDigest, StateDigest


class Link(StrEnum):
    """How the fleet master sees a robot's connection."""

    UNKNOWN = "UNKNOWN"  # nothing heard since the master started
    ONLINE = "ONLINE"
    OFFLINE = "OFFLINE"  # the robot said goodbye
    CONNECTIONBROKEN = "CONNECTIONBROKEN"  # its last will: the link died
    STALE = "STALE"  # no state for longer than the stale timeout


_FROM_CONNECTION = {
    ConnectionState.ONLINE: Link.ONLINE,
    ConnectionState.OFFLINE: Link.OFFLINE,
    ConnectionState.CONNECTIONBROKEN: Link.CONNECTIONBROKEN,
}


@dataclass(frozen=True, slots=True)
class Position:
    """Where a robot is: map coordinates (metres, radians) on ``map_id`` (a floor id or the outdoor map)."""

    x: float
    y: float
    theta: float
    map_id: str
    initialized: bool


@dataclass(frozen=True, slots=True)
class RobotErrorView:
    """One error the robot reports."""

    type: str
    level: str
    description: str


@dataclass(frozen=True, slots=True)
class RobotView:
    """A frozen snapshot of one robot in the fleet picture (``age_s``: seconds since its last state)."""

    serial: str
    manufacturer: str
    kind: str
    profile: str
    name: str
    link: Link
    online: bool
    link_since: float | None
    state_at: float | None
    received_at: float | None
    age_s: float | None
    order_id: str | None
    order_update_id: int | None
    last_node_id: str | None
    last_node_sequence_id: int | None
    driving: bool | None
    paused: bool | None
    battery_charge: float | None
    charging: bool | None
    operating_mode: str | None
    errors: tuple[RobotErrorView, ...]
    position: Position | None
    factsheet: str | None  # the factsheet's seriesName, once one was received
    states_received: int
    e_stop: str | None = None  # safetyState.eStop when it is not NONE (AUTOACK, MANUAL, REMOTE)
    field_violation: bool | None = None

    def to_json(self) -> dict[str, Any]:
        """A JSON object (times as ISO 8601 UTC, ``age_s`` rounded to milliseconds)."""
        data: dict[str, Any] = {
            "serial": self.serial,
            "manufacturer": self.manufacturer,
            "kind": self.kind,
            "profile": self.profile,
            "name": self.name,
            "link": self.link.value,
            "online": self.online,
            "link_since": _iso(self.link_since),
            "state_at": _iso(self.state_at),
            "received_at": _iso(self.received_at),
            "age_s": None if self.age_s is None else round(self.age_s, 3),
            "order_id": self.order_id,
            "order_update_id": self.order_update_id,
            "last_node_id": self.last_node_id,
            "last_node_sequence_id": self.last_node_sequence_id,
            "driving": self.driving,
            "paused": self.paused,
            "battery_charge": self.battery_charge,
            "charging": self.charging,
            "operating_mode": self.operating_mode,
            "errors": [{"type": e.type, "level": e.level, "description": e.description} for e in self.errors],
            "position": None,
            "factsheet": self.factsheet,
            "states_received": self.states_received,
            "e_stop": self.e_stop,
            "field_violation": self.field_violation,
        }
        if self.position is not None:
            p = self.position
            data["position"] = {"x": p.x, "y": p.y, "theta": p.theta, "map_id": p.map_id}
        return data


def _iso(epoch: float | None) -> str | None:
    if epoch is None:
        return None
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass(slots=True, eq=False)
class RobotStatus:
    """The live, mutable entry of one robot. Only the fleet master writes it."""

    config: RobotConfig
    link: Link = Link.UNKNOWN
    link_since: float | None = None
    link_mono: float | None = None  # clock.monotonic when the link last changed
    state: StateDigest | None = None
    received_at: float | None = None  # epoch (clock.now) of the last state
    received_mono: float | None = None  # clock.monotonic of the last state, for the stale timeout
    position: PositionDigest | None = None
    factsheet: Factsheet | None = None
    states_received: int = 0
    dirty: bool = False  # changed since the last snapshot was persisted
    persisted_mono: float | None = None

    def set_link(self, link: Link, now: float, mono: float) -> Link | None:
        """Change the link state; the previous one if it changed, else ``None``."""
        previous = self.link
        if link is previous:
            return None
        self.link, self.link_since, self.link_mono, self.dirty = link, now, mono, True
        return previous

    def on_connection(self, state: ConnectionState, now: float, mono: float) -> Link | None:
        """Apply a ``connection`` message; the previous link if it changed."""
        return self.set_link(_FROM_CONNECTION[state], now, mono)

    def on_state(self, digest: StateDigest, now: float, mono: float) -> Link | None:
        """Apply a ``state``; the previous link if it changed (a state revives UNKNOWN and STALE)."""
        self.state = digest
        if digest.agv_position is not None:
            self.position = digest.agv_position
        self.received_at, self.received_mono = now, mono
        self.states_received += 1
        self.dirty = True
        if self.link in (Link.UNKNOWN, Link.STALE):
            return self.set_link(Link.ONLINE, now, mono)
        return None

    def is_stale(self, mono: float, stale_after_s: float) -> bool:
        """An ONLINE robot whose last state (or, without one since, its coming online) is too old."""
        if self.link is not Link.ONLINE:
            return False
        marks = [m for m in (self.received_mono, self.link_mono) if m is not None]
        return bool(marks) and mono - max(marks) > stale_after_s

    def view(self, now: float) -> RobotView:
        """A frozen snapshot (``now``: the clock's epoch time, for ``age_s``)."""
        cfg, s, p = self.config, self.state, self.position
        return RobotView(
            serial=cfg.serial,
            manufacturer=cfg.manufacturer,
            kind=cfg.kind.value,
            profile=cfg.profile,
            name=cfg.name,
            link=self.link,
            online=self.link is Link.ONLINE,
            link_since=self.link_since,
            state_at=s.sent_at if s is not None else None,
            received_at=self.received_at,
            age_s=None if self.received_at is None else max(0.0, now - self.received_at),
            order_id=s.order_id if s is not None else None,
            order_update_id=s.order_update_id if s is not None else None,
            last_node_id=s.last_node_id if s is not None else None,
            last_node_sequence_id=s.last_node_sequence_id if s is not None else None,
            driving=s.driving if s is not None else None,
            paused=s.paused if s is not None else None,
            battery_charge=s.battery_state.battery_charge if s is not None else None,
            charging=s.battery_state.charging if s is not None else None,
            operating_mode=s.operating_mode.value if s is not None else None,
            errors=tuple(
                RobotErrorView(e.error_type, e.error_level.value, e.error_description or "")
                for e in (s.errors if s is not None else ())
            ),
            position=None if p is None else Position(p.x, p.y, p.theta, p.map_id, p.position_initialized),
            factsheet=self.factsheet.type_specification.series_name if self.factsheet is not None else None,
            states_received=self.states_received,
            e_stop=_e_stop(s),
            field_violation=s.safety_state.field_violation if s is not None and s.safety_state else None,
        )


def _e_stop(state: StateDigest | None) -> str | None:
    if state is None or state.safety_state is None or state.safety_state.e_stop is EStop.NONE:
        return None
    return state.safety_state.e_stop.value


@dataclass(slots=True)
class FleetPicture:
    """Every robot of the fleet by serial number."""

    robots: dict[str, RobotStatus] = field(default_factory=dict)

    @classmethod
    def of(cls, robots: Iterator[RobotConfig] | tuple[RobotConfig, ...]) -> FleetPicture:
        """A picture with every configured robot in ``UNKNOWN``."""
        return cls({r.serial: RobotStatus(r) for r in robots})

    def views(self, now: float) -> list[RobotView]:
        """Snapshots of every robot, by serial number."""
        return [self.robots[s].view(now) for s in sorted(self.robots)]
