"""The physical side of a simulated day: where every parcel and request item is, and the lifts' sessions.

``World`` is the single truth of the simulator about places: every item (parcel or request) is in
exactly one container — ``station``, a robot's compartment (``robot``/``slot``), a mailroom, the
``recovery`` van (items of a broken-down robot on their way back), ``picked_up``, ``delivered``,
``customer`` (a request item handed over). ``move`` checks the item is where the caller says and the
target compartment is empty, so a broken rule raises ``InvariantError`` at the step that breaks it;
``check()`` verifies the whole picture (run after every event in tests, periodically in fast runs).

Lifts: ``book_lift`` refuses a session that overlaps another on the same lift (one session at a time).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from orchestrator.dispatch.campus import Compartments, Size


class InvariantError(AssertionError):
    """A rule of the physical world was broken (an item in two places, a compartment holding two items,
    a lift carrying two sessions)."""


def slot_names(compartments: Compartments) -> list[tuple[str, Size]]:
    """The compartments of a robot, smallest first: ``S01..``, ``M01..``, ``L01..``."""
    out = [(f"S{k + 1:02d}", Size.S) for k in range(compartments.s)]
    out += [(f"M{k + 1:02d}", Size.M) for k in range(compartments.m)]
    out += [(f"L{k + 1:02d}", Size.L) for k in range(compartments.l)]
    return out


@dataclass
class LiftLog:
    """A lift's sessions ``(start, end, robot)`` in booking order and whether it is in service."""

    sessions: list[tuple[float, float, str]] = field(default_factory=list)
    in_service: bool = True
    free_at: float = 0.0


class World:
    """Containers of every item and the lifts (see the module docstring)."""

    def __init__(self, robots: Mapping[str, Compartments], lifts: Iterable[str]) -> None:
        self.where: dict[str, str] = {}  # item -> container name
        self.slot_of: dict[str, str] = {}  # item in a robot -> its compartment
        self.sizes: dict[str, Size] = {}
        self.slots: dict[str, dict[str, str | None]] = {
            rid: {name: None for name, _ in slot_names(c)} for rid, c in robots.items()
        }
        self.slot_size: dict[str, dict[str, Size]] = {rid: dict(slot_names(c)) for rid, c in robots.items()}
        self.lifts: dict[str, LiftLog] = {lift: LiftLog() for lift in lifts}
        self.reshuffles = 0

    # ---- items ---------------------------------------------------------------------------------

    def add(self, item: str, size: Size, container: str) -> None:
        """A new item appears in ``container`` (a parcel unloaded from the van, a request's item)."""
        if item in self.where:
            raise InvariantError(f"{item} appears twice (already at {self.where[item]})")
        self.where[item] = container
        self.sizes[item] = size

    def move(self, item: str, source: str, target: str) -> str | None:
        """Move ``item`` from ``source`` to ``target``; a robot target gets the item a compartment,
        whose name is returned. ``InvariantError`` if the item is not at ``source``."""
        at = self.where.get(item)
        if at != source:
            raise InvariantError(f"{item} should leave {source} but is at {at}")
        if source in self.slots:
            slot = self.slot_of.pop(item)
            if self.slots[source][slot] != item:
                raise InvariantError(f"{source} compartment {slot} does not hold {item}")
            self.slots[source][slot] = None
        self.where[item] = target
        if target in self.slots:
            slot = self._free_slot(target, self.sizes[item])
            if self.slots[target][slot] is not None:
                raise InvariantError(f"{target} compartment {slot} already holds {self.slots[target][slot]}")
            self.slots[target][slot] = item
            self.slot_of[item] = slot
            return slot
        return None

    def at(self, container: str) -> list[str]:
        """Items in ``container`` (sorted)."""
        return sorted(item for item, where in self.where.items() if where == container)

    def aboard(self, robot: str) -> list[str]:
        """Items in ``robot``'s compartments (sorted)."""
        return sorted(item for item in self.slots[robot].values() if item is not None)

    def _free_slot(self, robot: str, size: Size) -> str:
        """The smallest free compartment that fits; if none, the robot's items are re-sorted
        (largest first into the smallest fitting compartment), counted in ``reshuffles``."""
        slot = self._smallest(robot, size)
        if slot is not None:
            return slot
        items = [i for i in self.slots[robot].values() if i is not None]
        for name in self.slots[robot]:
            self.slots[robot][name] = None
        for item in sorted(items, key=lambda i: -self.sizes[i]):
            free = self._smallest(robot, self.sizes[item])
            if free is None:
                raise InvariantError(f"{robot}: its items do not fit its compartments")
            self.slots[robot][free] = item
            self.slot_of[item] = free
        self.reshuffles += 1
        slot = self._smallest(robot, size)
        if slot is None:
            raise InvariantError(f"{robot}: no free compartment for a size {size.name} item")
        return slot

    def _smallest(self, robot: str, size: Size) -> str | None:
        sizes = self.slot_size[robot]
        for name, item in self.slots[robot].items():
            if item is None and sizes[name] >= size:
                return name
        return None

    # ---- lifts ---------------------------------------------------------------------------------

    def book_lift(self, lift: str, start: float, end: float, robot: str) -> None:
        """One session on ``lift``; ``InvariantError`` if it overlaps another or the lift is closed."""
        log = self.lifts[lift]
        if not log.in_service:
            raise InvariantError(f"lift {lift} is out of service, yet {robot} rides it")
        if log.sessions and start < log.sessions[-1][1] - 1e-9:
            last = log.sessions[-1]
            raise InvariantError(
                f"lift {lift} would carry two sessions: {robot} from {start:.0f} s while {last[2]} rides "
                f"until {last[1]:.0f} s"
            )
        log.sessions.append((start, end, robot))
        log.free_at = end

    # ---- the whole picture ---------------------------------------------------------------------

    def check(self) -> None:
        """Every item in exactly one place; every compartment with at most one item, matching."""
        seen: set[str] = set()
        for robot, slots in self.slots.items():
            for slot, item in slots.items():
                if item is None:
                    continue
                if item in seen:
                    raise InvariantError(f"{item} is in two compartments")
                seen.add(item)
                if self.where.get(item) != robot or self.slot_of.get(item) != slot:
                    raise InvariantError(
                        f"{item} is in {robot} {slot} but recorded at {self.where.get(item)}"
                    )
        for item, where in self.where.items():
            if where in self.slots and item not in seen:
                raise InvariantError(f"{item} is recorded on {where} but in none of its compartments")
        for lift, log in self.lifts.items():
            for a, b in zip(log.sessions, log.sessions[1:], strict=False):
                if b[0] < a[1] - 1e-9:
                    raise InvariantError(f"lift {lift} carries two sessions at {b[0]:.0f} s")

    def counts(self) -> dict[str, int]:
        """How many items per container kind (robots counted together as ``robots``)."""
        out: dict[str, int] = {}
        for where in self.where.values():
            key = "robots" if where in self.slots else where.split(":")[0]
            out[key] = out.get(key, 0) + 1
        return out
