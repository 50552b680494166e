"""What the store's repositories hand out: frozen records, detached from any session."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from maps.model import GeoOrigin


class RobotKind(StrEnum):
    """What sort of robot is registered."""

    CART = "cart"  # outdoor delivery cart with lockers
    INDOOR = "indoor"  # indoor delivery robot (rides lifts, passes doors)
    ROBOT = "robot"  # any other robot (e.g. a coffee robot)


DEFAULT_PROFILE = {RobotKind.CART: "cart", RobotKind.INDOOR: "indoor", RobotKind.ROBOT: "indoor"}
"""The routing profile a robot gets when none is given."""


@dataclass(frozen=True, slots=True)
class SiteRecord:
    """A stored site (campus): its key, label, geodetic origin and where its map comes from."""

    id: int
    name: str
    label: str
    origin: GeoOrigin
    map_source: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class RobotRecord:
    """A registered robot; ``(manufacturer, serial_number)`` is unique, as in VDA 5050 topics."""

    id: int
    manufacturer: str
    serial_number: str
    kind: RobotKind
    site_id: int
    profile: str
    display_name: str
    enabled: bool
    created_at: datetime
