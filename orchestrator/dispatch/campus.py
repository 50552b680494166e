"""The campus dispatch model: robots, parcels, mini-program requests, windows, and the Plan of legs.

Everything is a frozen value; times are seconds on the dispatcher's clock (the same clock as ``now``),
places are names of ``maps`` places. A ``Snapshot`` is what the dispatcher is given; a ``Plan`` is
what it answers: per robot a sequence of ``Leg`` s (go to a place, do one thing there).

Compartments are the capacity: a parcel fits a compartment of its size or larger, one parcel per
compartment. With nested sizes S ⊂ M ⊂ L a set of parcels fits iff, for every size k, the parcels of
size ≥ k are no more than the compartments of size ≥ k (Hall's condition on a nested family), so
capacity is the three counters of ``Compartments.dims`` and a load is ``load_dims(sizes)``.

The rules a Plan keeps (``validate`` checks every one of them, independently of how plans are made):

- Legs of a robot are in time order; its released legs come first and equal ``Robot.committed``.
  The first unreleased leg travels from ``Robot.position`` no earlier than ``Robot.available_s``
  (from the last released leg's place and end if there are released legs).
- Travel: ``arrive_s >= previous end_s + time(previous place, place)``; ``metres`` and ``lift_rides`` of
  a leg are those of that fastest route (``TravelTable``) for the robot's profile.
- Service: ``max(arrive_s, earliest_s) <= start_s <= latest_s`` and ``end_s >= start_s + duration``:
  LOAD ``load_per_parcel_s`` × parcels (+ ``reload_s`` for a cart trip that is not the first of its
  window); DWELL ``stop_dwell_s + dwell_per_parcel_s`` × parcels; HANDOFF and MEET ``transfer_s +
  transfer_per_parcel_s`` × parcels; DELIVER ``deliver_s``; COLLECT and DROP ``collect_s``; RETURN and
  CHARGE 0.
- Load (compartment counters after each leg): LOAD adds its parcels, DWELL/HANDOFF/DELIVER remove
  theirs, COLLECT adds its requests' sizes, DROP removes them, others keep it. Never negative, always
  within ``Compartments.dims``; zero at every RETURN (a trip ends empty) — unclaimed parcels coming
  back are the "parcel unclaimed" event, not part of a plan.
- Battery: ``level_wh`` after a leg = before − ``Battery.cost(metres, lift_rides)`` (+ ``charge_w`` ×
  (end − start) / 3600 at a CHARGE leg, capped at capacity); never below ``reserve_wh``.
- Dorm parcel (destination is a stop): one cart LOAD at the station, then the DWELL at that stop in the
  same trip (before the next RETURN); the LOAD's window is one of the parcel's windows, the DWELL lies
  within that window (start ≥ window start, end ≤ window end), and ends by the parcel's deadline.
- Office parcel (destination in a building with a ``Handoff``): one cart LOAD, then a HANDOFF at the
  building's ``cart_place`` in the same trip, where an indoor robot of that building has a MEET at
  ``robot_place`` with the same start and end (``partner`` names the other robot); the cart waits at
  most ``max_wait_s`` (HANDOFF start − arrive). Then one LOAD of that indoor robot at ``robot_place``
  starting no earlier than the HANDOFF's end and a DELIVER at the destination in the same trip, by the
  deadline. The hand-off point (mailroom) holds parcels between the two.
- Request: one COLLECT and one later DROP by the same robot (kind INDOOR or ROBOT), nothing else in
  between that ends the trip. PICKUP: COLLECT at the door with start in [earliest, latest], DROP at the
  robot's home. COFFEE: COLLECT at ``origin`` no earlier than ``created_s``, DROP at the door with start
  in [earliest, latest].
- Every parcel and request of the snapshot is either planned exactly once or in ``Plan.unplanned``
  with a reason. Offline robots get no new legs.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import IntEnum, StrEnum
from types import MappingProxyType

INF = math.inf
Dims = tuple[int, int, int]
ZERO: Dims = (0, 0, 0)


class Size(IntEnum):
    """Parcel and compartment size (a parcel fits a compartment of its size or larger)."""

    S = 1
    M = 2
    L = 3


def load_dims(sizes: Iterable[Size]) -> Dims:
    """The three counters of a set of parcels: how many are ≥ S, ≥ M, ≥ L."""
    counts = [0, 0, 0]
    for size in sizes:
        for k in range(int(size)):
            counts[k] += 1
    return (counts[0], counts[1], counts[2])


def add_dims(a: Dims, b: Dims, sign: int = 1) -> Dims:
    """``a + sign * b`` counter by counter."""
    return (a[0] + sign * b[0], a[1] + sign * b[1], a[2] + sign * b[2])


def fits(load: Dims, capacity: Dims) -> bool:
    """Whether a load (``load_dims``) fits compartments (``Compartments.dims``)."""
    return load[0] <= capacity[0] and load[1] <= capacity[1] and load[2] <= capacity[2]


@dataclass(frozen=True, slots=True)
class Compartments:
    """How many compartments of each size a robot has (格口)."""

    s: int = 0
    m: int = 0
    l: int = 0  # noqa: E741 — the size letter

    def __post_init__(self) -> None:
        if min(self.s, self.m, self.l) < 0:
            raise ValueError(f"compartment counts must be >= 0, got {self}")

    @property
    def total(self) -> int:
        """All compartments."""
        return self.s + self.m + self.l

    @property
    def dims(self) -> Dims:
        """Compartments of size ≥ S, ≥ M, ≥ L: the capacity counters."""
        return (self.s + self.m + self.l, self.m + self.l, self.l)

    def holds(self, sizes: Iterable[Size]) -> bool:
        """Whether these parcels fit, one per compartment of their size or larger."""
        return fits(load_dims(sizes), self.dims)


class RobotKind(StrEnum):
    """Outdoor cart (无人车), indoor robot (室内机器人), or an indoor-outdoor robot."""

    CART = "cart"
    INDOOR = "indoor"
    ROBOT = "robot"


@dataclass(frozen=True, slots=True)
class Battery:
    """Energy in Wh: level now, the reserve never to be planned into, and what moving costs."""

    capacity_wh: float
    level_wh: float
    reserve_wh: float
    per_m_wh: float
    per_lift_wh: float = 0.0
    charge_w: float = 0.0  # charging power at a charger
    charge_below_wh: float = 0.0  # go and charge when the level after a window falls below this

    def __post_init__(self) -> None:
        if not 0 <= self.reserve_wh <= self.capacity_wh:
            raise ValueError(f"battery reserve {self.reserve_wh} Wh must be within 0..{self.capacity_wh}")
        if not 0 <= self.level_wh <= self.capacity_wh:
            raise ValueError(f"battery level {self.level_wh} Wh must be within 0..{self.capacity_wh}")
        if self.per_m_wh < 0 or self.per_lift_wh < 0 or self.charge_w < 0:
            raise ValueError("battery consumption and charging power must be >= 0")

    def cost(self, metres: float, lift_rides: int) -> float:
        """Energy in Wh to drive ``metres`` with ``lift_rides`` lift rides."""
        return metres * self.per_m_wh + lift_rides * self.per_lift_wh

    @property
    def usable_wh(self) -> float:
        """What may be spent before the reserve."""
        return self.level_wh - self.reserve_wh


class LegKind(StrEnum):
    """What a robot does at the place of a leg."""

    LOAD = "load"  # at the station (cart) or hand-off point (indoor robot): parcels go in
    DWELL = "dwell"  # cart waits at a stop for the window's students to pick up (停靠点)
    HANDOFF = "handoff"  # cart hands parcels to an indoor robot at a hand-off point (交接点)
    MEET = "meet"  # indoor robot receives parcels from a cart at its hand-off point
    DELIVER = "deliver"  # indoor robot delivers parcels at an office door
    COLLECT = "collect"  # a request's parcel/coffee goes in (at a door or a shop)
    DROP = "drop"  # a request's parcel/coffee comes out (at the door, or at home for a pickup)
    RETURN = "return"  # back at the home place: end of a trip; what is left is unloaded
    CHARGE = "charge"  # at a charger


@dataclass(frozen=True, slots=True)
class Leg:
    """Go to ``place`` (arriving at ``arrive_s``), do ``kind`` from ``start_s`` to ``end_s``.

    ``earliest_s``/``latest_s`` bound ``start_s`` (a window, a promise, a hand-off); ``load`` is the
    compartment counters after the leg, ``level_wh`` the battery after it, ``metres``/``lift_rides``
    the travel from the previous leg. ``released`` legs have been sent to the robot and must not change.
    """

    robot: str
    kind: LegKind
    place: str
    arrive_s: float
    start_s: float
    end_s: float
    earliest_s: float = 0.0
    latest_s: float = INF
    parcels: tuple[str, ...] = ()
    requests: tuple[str, ...] = ()
    window: str | None = None
    load: Dims = ZERO
    level_wh: float = 0.0
    metres: float = 0.0
    lift_rides: int = 0
    released: bool = False
    partner: str | None = None  # MEET ↔ HANDOFF: the other robot


@dataclass(frozen=True, slots=True)
class Robot:
    """A robot as the dispatcher sees it.

    ``position`` is where the robot is, or where its ``committed`` (released) legs end, and
    ``available_s`` when it is free there. ``home`` is where its trips start and end (the station for a
    cart, the hand-off point of its ``building`` for an indoor robot).
    """

    id: str
    kind: RobotKind
    profile: str
    compartments: Compartments
    home: str
    position: str
    battery: Battery
    available_s: float = 0.0
    building: str | None = None
    online: bool = True
    committed: tuple[Leg, ...] = ()


@dataclass(frozen=True, slots=True)
class Window:
    """A delivery window (投递时段): carts serve their stops between ``start_s`` and ``end_s``."""

    id: str
    start_s: float
    end_s: float

    def __post_init__(self) -> None:
        if self.end_s <= self.start_s:
            raise ValueError(f"window {self.id}: end {self.end_s} is not after start {self.start_s}")


@dataclass(frozen=True, slots=True)
class Parcel:
    """A parcel at the station: its size, where it goes (a stop, or an office or room), when.

    ``windows`` lists the windows it may go in (empty: any); ``deadline_s`` the latest delivery.
    ``rolled`` counts the windows it already went out in and came back unclaimed.
    """

    id: str
    size: Size
    destination: str
    windows: tuple[str, ...] = ()
    deadline_s: float = INF
    received_s: float = 0.0
    rolled: int = 0


class RequestKind(StrEnum):
    """Mini-program orders (小程序下单)."""

    PICKUP = "pickup"  # a robot comes to the door to collect a parcel and brings it home
    COFFEE = "coffee"  # a robot collects at ``origin`` and brings it to the door by the deadline


@dataclass(frozen=True, slots=True)
class Request:
    """A mini-program order: be at ``place`` between ``earliest_s`` and ``latest_s`` (the promise)."""

    id: str
    kind: RequestKind
    place: str
    earliest_s: float
    latest_s: float
    size: Size = Size.S
    origin: str | None = None  # COFFEE: where to collect
    created_s: float = 0.0

    def __post_init__(self) -> None:
        if self.latest_s < self.earliest_s:
            raise ValueError(
                f"request {self.id}: latest {self.latest_s} is before earliest {self.earliest_s}"
            )
        if self.kind is RequestKind.COFFEE and not self.origin:
            raise ValueError(f"request {self.id}: a coffee order needs an origin (the shop)")


@dataclass(frozen=True, slots=True)
class Timings:
    """How long things take, in seconds (defaults from the pilots: ~50 parcels per cart trip)."""

    stop_dwell_s: float = 600.0  # a cart waits this long at a stop for students
    dwell_per_parcel_s: float = 6.0  # ... plus this per parcel offered there
    load_per_parcel_s: float = 6.0  # loading at the station (200 parcels in ~20 min)
    reload_s: float = 300.0  # a cart back at the station before its next trip of a window
    transfer_s: float = 60.0  # hand-off: fixed part
    transfer_per_parcel_s: float = 10.0  # ... plus this per parcel
    max_wait_s: float = 180.0  # a cart waits at most this long for the indoor robot
    deliver_s: float = 60.0  # indoor robot at an office door
    collect_s: float = 60.0  # a request's collect or drop at a door or a shop
    planning_budget_s: float = 20.0  # the solver's time budget for a whole re-plan


@dataclass(frozen=True, slots=True)
class Handoff:
    """Where a building's parcels change hands: the cart at ``cart_place`` (the building's stop, outside)
    docks with an indoor robot at ``robot_place`` (the mailroom / hand-off point just inside)."""

    building: str
    cart_place: str
    robot_place: str


@dataclass(frozen=True)
class Snapshot:
    """Everything the dispatcher needs to decide, frozen at one moment."""

    robots: tuple[Robot, ...]
    windows: tuple[Window, ...]
    parcels: tuple[Parcel, ...]
    requests: tuple[Request, ...] = ()
    station: str = "post_station"
    handoffs: Mapping[str, Handoff] = field(default_factory=dict)  # by building
    chargers: tuple[str, ...] = ()  # charger places (each robot uses those its profile reaches)
    closed_lifts: frozenset[str] = frozenset()
    timings: Timings = Timings()

    def __post_init__(self) -> None:
        ids = [r.id for r in self.robots]
        if len(set(ids)) != len(ids):
            raise ValueError("robot ids must be unique")
        object.__setattr__(self, "handoffs", MappingProxyType(dict(self.handoffs)))

    def robot(self, robot_id: str) -> Robot:
        """The robot with this id (``KeyError`` if none)."""
        for robot in self.robots:
            if robot.id == robot_id:
                return robot
        raise KeyError(robot_id)


@dataclass(frozen=True)
class Plan:
    """Per robot its legs in order; parcels and requests that could not be planned, with a reason."""

    created_s: float
    legs: Mapping[str, tuple[Leg, ...]]
    unplanned: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "legs", MappingProxyType({k: tuple(v) for k, v in self.legs.items()}))
        object.__setattr__(self, "unplanned", MappingProxyType(dict(self.unplanned)))

    def all_legs(self) -> Iterable[Leg]:
        """Every leg of every robot."""
        for legs in self.legs.values():
            yield from legs

    def window_of(self, parcel_id: str) -> str | None:
        """The window a parcel goes out in (its cart leg's window), or None."""
        for leg in self.all_legs():
            if leg.kind is LegKind.LOAD and parcel_id in leg.parcels and leg.window is not None:
                return leg.window
        return None


EMPTY_PLAN = Plan(created_s=0.0, legs={})
