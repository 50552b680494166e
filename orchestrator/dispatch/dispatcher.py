"""The dispatcher: ``plan(snapshot, now, previous) -> Outcome`` and ``insert(plan, snapshot, request, now)``.

It owns the travel tables of the site (rebuilt when lifts close or reopen), runs the planner within a
budget, checks every new plan with the independent ``validate`` and never raises out of ``plan``: if
planning fails, breaks a rule or runs over its budget, the previous plan comes back with the reason.

Stability on re-planning: legs released to a robot (``Robot.committed``) never change, and a trip a
robot is in the middle of (released legs that do not end with a RETURN) is kept to its end from the
previous plan, together with the indoor robot's meeting of any hand-off on it; the rest is planned
again. Events map onto snapshots: a new request → ``insert`` (fast) or a re-plan; a robot offline →
``Robot.online=False``; a lift out of service → ``Snapshot.closed_lifts``; a parcel unclaimed → back
in ``Snapshot.parcels`` with ``rolled`` + 1.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace

from pyvrp.stop import MaxIterations, MaxRuntime, MultipleCriteria, StoppingCriterion

from maps.model import Site
from orchestrator.dispatch.campus import Leg, LegKind, Plan, Request, Snapshot
from orchestrator.dispatch.insertion import Decision, insert_request
from orchestrator.dispatch.planner import plan_campus
from orchestrator.dispatch.travel import TravelBook, TravelTable
from orchestrator.dispatch.validate import validate


@dataclass(frozen=True)
class Outcome:
    """A plan and how it came about: ``ok`` False means ``plan`` is the previous one, for ``reason``."""

    plan: Plan
    ok: bool
    reason: str | None = None
    seconds: float = 0.0


class Dispatcher:
    """Plans a campus day and inserts requests, over one site.

    ``iterations`` bounds each PyVRP solve (deterministic for a ``seed``); ``budget_s`` with a ``clock``
    (e.g. ``time.perf_counter``) also bounds the whole re-plan in seconds.
    """

    def __init__(
        self,
        site: Site,
        *,
        iterations: int = 1000,
        budget_s: float | None = None,
        clock: Callable[[], float] | None = None,
        seed: int = 0,
    ) -> None:
        if budget_s is not None and clock is None:
            raise ValueError("a time budget needs a clock to measure it")
        self.book = TravelBook(site)
        self.iterations = iterations
        self.budget_s = budget_s
        self.clock = clock
        self.seed = seed

    def tables(self, snapshot: Snapshot) -> dict[str, TravelTable]:
        """The travel table of every robot profile of the snapshot, with its closed lifts."""
        profiles = sorted({robot.profile for robot in snapshot.robots})
        return {p: self.book.table(p, snapshot.closed_lifts) for p in profiles}

    def plan(self, snapshot: Snapshot, now: float, previous: Plan | None = None) -> Outcome:
        """A new plan for the rest of the day, or the previous one with the reason it was kept."""
        started = self.clock() if self.clock else 0.0
        try:
            tables = self.tables(snapshot)
            pinned = _pinned(snapshot, previous)
            plan = plan_campus(
                _with_pinned(snapshot, pinned), now, tables, stop=self._stop_factory(), seed=self.seed
            )
            plan = _unpin(plan, snapshot)
            problems = validate(plan, snapshot, tables)
        except Exception as exc:  # the dispatcher must answer whatever the planner did
            return self._fallback(
                snapshot, now, previous, f"planning failed: {type(exc).__name__}: {exc}", started
            )
        if problems:
            return self._fallback(
                snapshot,
                now,
                previous,
                f"the new plan broke {len(problems)} rule(s), first: {problems[0]}",
                started,
            )
        elapsed = self._elapsed(started)
        if self.budget_s is not None and elapsed > 2 * self.budget_s and previous is not None:
            return self._fallback(
                snapshot, now, previous, f"planning took {elapsed:.1f} s, over the budget", started
            )
        return Outcome(plan, True, None, elapsed)

    def insert(self, plan: Plan, snapshot: Snapshot, request: Request, now: float) -> Decision:
        """Accept a new request into ``plan`` with an ETA, or refuse it with a reason."""
        return insert_request(plan, snapshot, request, self.tables(snapshot), now)

    def _stop_factory(self) -> Callable[[], StoppingCriterion]:
        iterations, budget = self.iterations, self.budget_s
        if budget is None:
            return lambda: MaxIterations(iterations)
        # about ten solves per re-plan (two per window and building side): a tenth of the budget each
        return lambda: MultipleCriteria([MaxIterations(iterations), MaxRuntime(budget / 10)])

    def _elapsed(self, started: float) -> float:
        return (self.clock() - started) if self.clock else 0.0

    def _fallback(
        self, snapshot: Snapshot, now: float, previous: Plan | None, reason: str, started: float
    ) -> Outcome:
        if previous is None:
            previous = Plan(
                created_s=now,
                legs={r.id: r.committed for r in snapshot.robots},
                unplanned={
                    **{p.id: reason for p in snapshot.parcels},
                    **{q.id: reason for q in snapshot.requests},
                },
            )
        return Outcome(previous, False, reason, self._elapsed(started))


def _pinned(snapshot: Snapshot, previous: Plan | None) -> dict[str, tuple[Leg, ...]]:
    """Per robot, the previous plan's legs that finish a trip its released legs started."""
    if previous is None:
        return {}
    pinned: dict[str, tuple[Leg, ...]] = {}
    for robot in snapshot.robots:
        done = len(robot.committed)
        if not done or robot.committed[-1].kind is LegKind.RETURN:
            continue
        old = previous.legs.get(robot.id, ())
        rest: list[Leg] = []
        for leg in old[done:]:
            rest.append(leg)
            if leg.kind is LegKind.RETURN:
                break
        pinned[robot.id] = tuple(rest)
    partners: dict[str, list[Leg]] = {}
    for robot_id, legs in pinned.items():
        for leg in legs:
            if leg.kind is LegKind.HANDOFF and leg.partner:
                for meet in previous.legs.get(leg.partner, ()):
                    if meet.kind is LegKind.MEET and meet.partner == robot_id and meet.start_s == leg.start_s:
                        partners.setdefault(leg.partner, []).append(meet)
    for robot_id, meets in partners.items():
        have = pinned.get(robot_id, ())
        pinned[robot_id] = tuple(sorted({*have, *meets}, key=lambda leg: leg.start_s))
    return pinned


def _with_pinned(snapshot: Snapshot, pinned: Mapping[str, tuple[Leg, ...]]) -> Snapshot:
    """The snapshot the planner sees: pinned legs count as released (it plans after them)."""
    if not pinned:
        return snapshot
    robots = []
    for robot in snapshot.robots:
        extra = pinned.get(robot.id, ())
        if not extra:
            robots.append(robot)
            continue
        legs = (*robot.committed, *(replace(leg, released=True) for leg in extra))
        robots.append(replace(robot, committed=legs, position=legs[-1].place, available_s=legs[-1].end_s))
    return replace(snapshot, robots=tuple(robots))


def _unpin(plan: Plan, snapshot: Snapshot) -> Plan:
    """Pinned legs go back to unreleased (only ``Robot.committed`` legs are released)."""
    legs = {}
    for robot in snapshot.robots:
        own = plan.legs.get(robot.id, ())
        done = len(robot.committed)
        legs[robot.id] = (
            *own[:done],
            *(replace(leg, released=False) if leg.released else leg for leg in own[done:]),
        )
    return Plan(plan.created_s, legs, plan.unplanned)
