"""Small campus dispatch snapshots on the sample campus (Neijiang), for planner and dispatcher tests."""

from __future__ import annotations

from dataclasses import replace
from functools import cache

from maps.io import load_map
from maps.model import Site
from orchestrator.dispatch.campus import (
    Battery,
    Compartments,
    Handoff,
    Parcel,
    Request,
    Robot,
    RobotKind,
    Size,
    Snapshot,
    Timings,
    Window,
)
from orchestrator.dispatch.travel import TravelBook, TravelTable
from orchestrator.settings import default_campus_map

HOUR = 3600.0
HANDOFFS = {
    "ADM": Handoff("ADM", "stop_adm", "adm_mailroom"),
    "TEA": Handoff("TEA", "stop_tea", "tea_handoff"),
}
CHARGERS = ("cart_charger_1", "cart_charger_2", "adm_charger", "tea_charger")
DORM_STOPS = tuple(f"stop_dorm_{i}" for i in range(1, 7))


@cache
def site() -> Site:
    """The sample campus (loaded once per test process)."""
    return load_map(default_campus_map())


@cache
def book() -> TravelBook:
    """Travel tables of the sample campus, cached per process."""
    return TravelBook(site())


def tables(closed_lifts: frozenset[str] = frozenset()) -> dict[str, TravelTable]:
    """The cart and indoor tables (with ``closed_lifts`` out of service)."""
    return {p: book().table(p, closed_lifts) for p in ("cart", "indoor", "robot")}


CART_COMPARTMENTS = Compartments(30, 15, 5)
INDOOR_COMPARTMENTS = Compartments(4, 2, 1)
DEFAULT_TIMINGS = Timings()


def cart(
    name: str = "cart1", *, compartments: Compartments = CART_COMPARTMENTS, level_wh: float = 2000.0
) -> Robot:
    """A cart at the station: 2 kWh, reserve 300 Wh, 0.05 Wh/m, charges at 500 W below 1 kWh."""
    battery = Battery(2000.0, level_wh, 300.0, 0.05, charge_w=500.0, charge_below_wh=1000.0)
    return Robot(name, RobotKind.CART, "cart", compartments, "post_station", "post_station", battery)


def indoor(name: str = "adm1", building: str = "ADM", *, level_wh: float = 500.0) -> Robot:
    """An indoor robot at its building's mailroom: 0.5 kWh, reserve 75 Wh, 1 Wh per lift ride."""
    home = HANDOFFS[building].robot_place
    battery = Battery(500.0, level_wh, 75.0, 0.02, per_lift_wh=1.0, charge_w=200.0, charge_below_wh=250.0)
    kind = RobotKind.INDOOR
    return Robot(name, kind, "indoor", INDOOR_COMPARTMENTS, home, home, battery, building=building)


def windows(*spans: tuple[float, float]) -> tuple[Window, ...]:
    """Windows ``w1``, ``w2``, ... from (start hour, end hour) pairs."""
    return tuple(Window(f"w{i}", a * HOUR, b * HOUR) for i, (a, b) in enumerate(spans, 1))


def parcels(destination: str, count: int, *, size: Size = Size.S, prefix: str | None = None) -> list[Parcel]:
    """``count`` parcels of ``size`` for ``destination``."""
    tag = prefix or destination
    return [Parcel(f"{tag}-{i}", size, destination) for i in range(count)]


def snapshot(
    robots: list[Robot],
    parcel_list: list[Parcel],
    *,
    spans: tuple[tuple[float, float], ...] = ((8, 9), (12, 13)),
    requests: tuple[Request, ...] = (),
    closed_lifts: frozenset[str] = frozenset(),
    timings: Timings = DEFAULT_TIMINGS,
) -> Snapshot:
    """A snapshot of the sample campus with these robots and parcels."""
    return Snapshot(
        robots=tuple(robots),
        windows=windows(*spans),
        parcels=tuple(parcel_list),
        requests=requests,
        station="post_station",
        handoffs=HANDOFFS,
        chargers=CHARGERS,
        closed_lifts=closed_lifts,
        timings=timings,
    )


def with_robot(snap: Snapshot, robot: Robot) -> Snapshot:
    """``snap`` with ``robot`` replacing the robot of the same id."""
    return replace(snap, robots=tuple(robot if r.id == robot.id else r for r in snap.robots))
