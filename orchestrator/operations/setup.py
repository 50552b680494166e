"""The live core's ``Setup`` and parcels: from the campus map, the fleet file, the settings and the store.

``live_setup(site, fleet, windows, start_s=...)`` builds the operations core's ``Setup`` for one
service day:

- **places** (``campus_places(site)``): the station (the site's one ``station`` place), the hand-off
  points by building (a ``handoff`` place, its building from its ``building`` tag or its node's
  floor, and the ``stop`` whose ``serves`` tag names that building: ``Handoff(building, stop,
  handoff place)``; the same rule as the simulator's campus day) and the ``charger`` places;
- **robots** from the fleet file (``orchestrator.fleet.config``): id = the VDA 5050 serial number,
  ``kind``, ``profile`` and the optional dispatch fields ``home``, ``building``, ``compartments`` and
  ``battery_wh``, filled by kind where left out (the figures of ``../shared/SCENARIO.md``, the same as
  ``sim.campus_day``, which could import them from here):

  ==========  ===============  ==========================================  ====================
  kind        compartments     battery (capacity, reserve 15 %, go charge   home
                               below 30 %, consumption, charger power)
  ==========  ===============  ==========================================  ====================
  cart        30 S 15 M 5 L    2000 Wh, 0.02 Wh/m, 1 kW                    the station
  indoor      4 S 2 M 1 L      500 Wh, 0.01 Wh/m, 0.5 Wh a lift ride, 200 W its building's hand-off
                                                                           (``robot_place``)
  robot       4 S 2 M 1 L      as indoor                                   its building's hand-off
                                                                           if it has one, else
                                                                           ``home`` is required
  ==========  ===============  ==========================================  ====================

  A ``battery_wh`` given scales the reserve and the charging threshold (15 % / 30 % of it). An indoor
  robot needs ``building`` (a building of the site with a hand-off point): without it the error names
  the robot. Every robot is free at ``start_s`` at its home (or ``positions``), with a full battery
  unless ``battery_percent`` (VDA 5050 ``batteryCharge``, 0–100) says otherwise.
- **windows**: ``service_windows(settings.campus.windows, day)`` turns the settings' local ``HH:MM``
  windows into the core's seconds on that date (``ServiceDay.local``: right on clock-change days).

``dispatch_parcel(record, windows, day)`` turns a stored parcel (``store.domain_records.ParcelRecord``)
into the core's ``dispatch.campus.Parcel``: the tracking number as id, the size class, the map place
intake resolved its destination to (a dorm's or a building's stop, or an office/room place), the
windows opening after its receipt, the deadline (a dorm/stop parcel: the end of the day's last window;
an office parcel — one with a room — ``OFFICE_CLOSE_S`` (18:30) if its first window opens before then,
else the end of the last window: the simulator's rule), the receipt time in the core's seconds
(negative for a parcel received on an earlier day) and its ``rolled`` count (a window it was already
sorted into is not kept: the core's plan sorts it again). A parcel that cannot be
given to the core raises ``ParcelMappingError`` with the reason (no place, a place not on the map,
not at the station, no window left today).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass

from maps.model import Place, PlaceKind, Site
from orchestrator.dispatch.campus import (
    Battery,
    Compartments,
    Handoff,
    Parcel,
    Robot,
    RobotKind,
    Size,
    Timings,
    Window,
)
from orchestrator.fleet.config import FleetConfig, RobotConfig
from orchestrator.operations.core import AT_STATION, Setup
from orchestrator.operations.timebase import ServiceDay
from orchestrator.settings import WindowSettings
from orchestrator.store.domain_records import ParcelRecord

HOUR = 3600.0

CART_COMPARTMENTS = Compartments(s=30, m=15, l=5)
"""A cart's lockers (~50 parcels a trip)."""

INDOOR_COMPARTMENTS = Compartments(s=4, m=2, l=1)
"""An indoor robot's compartments."""

CART_BATTERY_WH = 2000.0
INDOOR_BATTERY_WH = 500.0
RESERVE_SHARE = 0.15
"""Share of the capacity never planned into."""

CHARGE_BELOW_SHARE = 0.30
"""A robot goes charging when its level after a window would fall below this share."""

OFFICE_CLOSE_S = 18.5 * HOUR
"""Offices close at 18:30 (wall clock): the deadline of office parcels that can go before then."""


class SetupError(ValueError):
    """The site and the fleet file do not make a campus the core can run (one line per problem)."""


class ParcelMappingError(ValueError):
    """A stored parcel that cannot be handed to the core; the message says which and why."""

    def __init__(self, tracking_number: str, reason: str) -> None:
        super().__init__(f"parcel {tracking_number}: {reason}")
        self.tracking_number = tracking_number
        self.reason = reason


def cart_battery(capacity_wh: float = CART_BATTERY_WH, level_share: float = 1.0) -> Battery:
    """A cart's pack of ``capacity_wh`` at ``level_share`` of it: 0.02 Wh/m (20 Wh/km), 1 kW charger."""
    return Battery(
        capacity_wh,
        capacity_wh * level_share,
        capacity_wh * RESERVE_SHARE,
        per_m_wh=0.02,
        charge_w=1000.0,
        charge_below_wh=capacity_wh * CHARGE_BELOW_SHARE,
    )


def indoor_battery(capacity_wh: float = INDOOR_BATTERY_WH, level_share: float = 1.0) -> Battery:
    """An indoor robot's pack: 0.01 Wh/m, 0.5 Wh a lift ride (~a minute at ~30 W), 200 W charger."""
    return Battery(
        capacity_wh,
        capacity_wh * level_share,
        capacity_wh * RESERVE_SHARE,
        per_m_wh=0.01,
        per_lift_wh=0.5,
        charge_w=200.0,
        charge_below_wh=capacity_wh * CHARGE_BELOW_SHARE,
    )


@dataclass(frozen=True)
class CampusPlaces:
    """The places of a site the core needs: the station, hand-off points by building, chargers."""

    station: str
    handoffs: Mapping[str, Handoff]
    chargers: tuple[str, ...]


def campus_places(site: Site, station: str | None = None) -> CampusPlaces:
    """The station (``station`` or the site's only station place), hand-offs and chargers of ``site``."""
    by_kind: dict[PlaceKind, list[Place]] = {}
    for place in sorted(site.places.values(), key=lambda p: p.name):
        by_kind.setdefault(place.kind, []).append(place)
    stations = [p.name for p in by_kind.get(PlaceKind.STATION, [])]
    if station is not None:
        if station not in stations:
            raise SetupError(f"site {site.name}: {station!r} is not a station place (stations: {stations})")
    elif len(stations) != 1:
        what = "no station place" if not stations else f"several station places {stations}: name one"
        raise SetupError(f"site {site.name} has {what}")
    else:
        station = stations[0]
    stops = by_kind.get(PlaceKind.STOP, [])
    handoffs: dict[str, Handoff] = {}
    for place in by_kind.get(PlaceKind.HANDOFF, []):
        building = place.tags.get("building") or site.building_of(place.node)
        stop = next((s.name for s in stops if s.tags.get("serves") == building), None)
        if building is not None and stop is not None and building not in handoffs:
            handoffs[building] = Handoff(building, stop, place.name)
    chargers = tuple(p.name for p in by_kind.get(PlaceKind.CHARGER, []))
    return CampusPlaces(station, handoffs, chargers)


def service_windows(windows: Iterable[WindowSettings], day: ServiceDay) -> tuple[Window, ...]:
    """The settings' daily windows (local ``HH:MM``) as the core's windows on ``day``, in time order."""
    out = [Window(w.id, day.local(w.start_s), day.local(w.end_s)) for w in windows]
    return tuple(sorted(out, key=lambda w: w.start_s))


def live_setup(
    site: Site,
    fleet: FleetConfig,
    windows: Sequence[Window],
    *,
    start_s: float,
    station: str | None = None,
    timings: Timings | None = None,
    positions: Mapping[str, str] | None = None,
    battery_percent: Mapping[str, float] | None = None,
    offline: Collection[str] = (),
) -> Setup:
    """The core's ``Setup`` for the fleet on ``site`` from ``start_s`` (core seconds; see the module
    docstring). ``positions``/``battery_percent``/``offline`` are by serial number; ``SetupError``
    lists every problem, one line each, naming the robot and the field."""
    if not windows:
        raise SetupError("live setup needs at least one delivery window")
    places = campus_places(site, station)
    problems: list[str] = []
    for name, given in (("positions", positions or {}), ("battery_percent", battery_percent or {})):
        unknown = sorted(set(given) - {r.serial for r in fleet.robots})
        if unknown:
            problems.append(f"{name}: unknown robot(s) {', '.join(unknown)}")
    unknown_offline = sorted(set(offline) - {r.serial for r in fleet.robots})
    if unknown_offline:
        problems.append(f"offline: unknown robot(s) {', '.join(unknown_offline)}")
    robots: list[Robot] = []
    for config in fleet.robots:
        try:
            robots.append(
                _robot(
                    site,
                    places,
                    config,
                    start_s,
                    (positions or {}).get(config.serial),
                    (battery_percent or {}).get(config.serial),
                    config.serial not in offline,
                )
            )
        except SetupError as exc:
            problems.append(str(exc))
    if problems:
        raise SetupError("\n".join(problems))
    return Setup(
        robots=tuple(robots),
        windows=tuple(windows),
        station=places.station,
        handoffs=places.handoffs,
        chargers=places.chargers,
        timings=timings or Timings(),
    )


def _robot(
    site: Site,
    places: CampusPlaces,
    config: RobotConfig,
    start_s: float,
    position: str | None,
    percent: float | None,
    online: bool,
) -> Robot:
    rid = config.serial
    kind = RobotKind(config.kind.value)
    building = config.building
    if kind is RobotKind.CART and building is not None:
        raise SetupError(f"robot {rid}: building is for indoor robots, a cart serves the whole campus")
    if building is not None:
        if building not in site.buildings:
            raise SetupError(f"robot {rid}: building {building!r} is not on the map of {site.name}")
        if building not in places.handoffs:
            raise SetupError(
                f"robot {rid}: building {building!r} has no hand-off point "
                "(a handoff place in it and a stop whose 'serves' tag names it)"
            )
    if kind is RobotKind.INDOOR and building is None:
        raise SetupError(f"robot {rid}: an indoor robot needs 'building' (the building it serves)")
    home = config.home
    if home is None:
        if kind is RobotKind.CART:
            home = places.station
        elif building is not None:
            home = places.handoffs[building].robot_place
        else:
            raise SetupError(f"robot {rid}: kind {kind} without a building needs 'home' (a map place)")
    for field, place in (("home", home), ("position", position)):
        if place is not None and place not in site.places:
            raise SetupError(f"robot {rid}: {field} {place!r} is not a place of {site.name}")
    share = 1.0
    if percent is not None:
        if not 0.0 <= percent <= 100.0:
            raise SetupError(f"robot {rid}: battery_percent must be within 0..100, got {percent}")
        share = percent / 100.0
    if kind is RobotKind.CART:
        battery = cart_battery(config.battery_wh or CART_BATTERY_WH, share)
        compartments = CART_COMPARTMENTS
    else:
        battery = indoor_battery(config.battery_wh or INDOOR_BATTERY_WH, share)
        compartments = INDOOR_COMPARTMENTS
    if config.compartments is not None:
        counts = config.compartments
        compartments = Compartments(s=counts.s, m=counts.m, l=counts.l)
        if compartments.total == 0:
            raise SetupError(f"robot {rid}: compartments are all 0: it could carry nothing")
    return Robot(
        rid,
        kind,
        config.profile,
        compartments,
        home,
        position or home,
        battery,
        available_s=float(start_s),
        building=building,
        online=online,
    )


def dispatch_parcel(
    record: ParcelRecord,
    windows: Sequence[Window],
    day: ServiceDay,
    *,
    places: Collection[str] | None = None,
    office_close_s: float = OFFICE_CLOSE_S,
) -> Parcel:
    """The core's ``Parcel`` of a stored parcel at the station (see the module docstring).

    ``windows`` are the day's windows in the core's seconds (``service_windows``); ``places``, when
    given (e.g. ``site.places``), must hold the parcel's place; ``office_close_s`` is a wall-clock
    time of day. Raises ``ParcelMappingError`` with the reason.
    """
    parcel = record.parcel
    tn = parcel.tracking_number
    if parcel.state not in AT_STATION:
        raise ParcelMappingError(tn, f"is {parcel.state.value}, not at the station")
    place = parcel.destination.place
    if place is None:
        raise ParcelMappingError(tn, "its destination has no campus-map place (not resolved at intake)")
    if places is not None and place not in places:
        raise ParcelMappingError(tn, f"its destination place {place!r} is not on the campus map")
    if not windows:
        raise ParcelMappingError(tn, "there is no delivery window today")
    received_s = day.seconds(parcel.received_at)
    ordered = sorted(windows, key=lambda w: w.start_s)
    eligible = [w for w in ordered if w.start_s > received_s]
    if not eligible:
        raise ParcelMappingError(
            tn, f"received after the last window of {day.date.isoformat()} opened: it waits for tomorrow"
        )
    last_end = ordered[-1].end_s
    deadline = last_end
    if parcel.destination.room is not None:  # an office or room: through the building's hand-off
        close = day.local(office_close_s)
        deadline = close if eligible[0].start_s < close else last_end
    return Parcel(
        tn,
        Size[parcel.size.value],
        place,
        tuple(w.id for w in eligible),
        deadline_s=deadline,
        received_s=received_s,
        rolled=parcel.rolled,
    )


def dispatch_parcels(
    records: Iterable[ParcelRecord],
    windows: Sequence[Window],
    day: ServiceDay,
    *,
    places: Collection[str] | None = None,
    office_close_s: float = OFFICE_CLOSE_S,
) -> tuple[tuple[Parcel, ...], tuple[ParcelMappingError, ...]]:
    """``dispatch_parcel`` over a batch: the parcels for ``ParcelsArrived`` and those refused (with
    their reasons, for the operator), in the order given."""
    parcels: list[Parcel] = []
    refused: list[ParcelMappingError] = []
    for record in records:
        try:
            parcels.append(
                dispatch_parcel(record, windows, day, places=places, office_close_s=office_close_s)
            )
        except ParcelMappingError as exc:
            refused.append(exc)
    return tuple(parcels), tuple(refused)
