"""The task state machine: one leg of a robot's plan, linked to the parcels and orders it serves.

::

    plan ─► planned ──release──► released ──start──► active ──finish──► done
               │                    │                  │
               └──cancel────────────┴──cancel──────────┴──► cancelled
                                    └──fail────────────┴──► failed

``done``, ``failed`` and ``cancelled`` are final. A task refers to a leg of the dispatcher's plan
(``orchestrator.dispatch.campus.Leg``) by robot and ``sequence`` (the leg's position in that robot's
stream of legs, which the caller numbers); ``kind`` is the leg kind's value (``load``, ``dwell``, …),
``parcels`` the tracking numbers and ``orders`` the order ids of the leg. From a leg::

    task, event = plan_task(task_id(leg.robot, seq), leg.robot, seq, leg.kind.value, leg.place, now,
                            window=leg.window, parcels=leg.parcels, orders=leg.requests,
                            start_at=leg.start_s, end_at=leg.end_s)
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from enum import StrEnum

from orchestrator.domain.errors import InvalidData
from orchestrator.domain.events import DomainEvent, EntityKind, JsonScalar
from orchestrator.domain.machine import Rule, check, check_time, check_value, make_event, parse_event
from orchestrator.domain.parcel import MAX_NAME


class TaskState(StrEnum):
    """Where a task is in its life."""

    PLANNED = "planned"  # in the plan, may still change
    RELEASED = "released"  # sent to the robot; must not change
    ACTIVE = "active"  # the robot is doing it
    DONE = "done"  # final
    FAILED = "failed"  # final (reason)
    CANCELLED = "cancelled"  # final (reason)


FINAL_TASK_STATES = frozenset({TaskState.DONE, TaskState.FAILED, TaskState.CANCELLED})
"""States a task never leaves."""


class TaskEvent(StrEnum):
    """What can happen to a task (``PLAN`` only makes one: ``plan_task``)."""

    PLAN = "plan"
    RELEASE = "release"
    START = "start"
    FINISH = "finish"
    FAIL = "fail"  # data: reason
    CANCEL = "cancel"  # data: reason?


_S = TaskState
_E = TaskEvent
RULES: Mapping[TaskEvent, Rule[TaskState]] = {
    _E.RELEASE: Rule(frozenset({_S.PLANNED}), _S.RELEASED),
    _E.START: Rule(frozenset({_S.RELEASED}), _S.ACTIVE),
    _E.FINISH: Rule(frozenset({_S.ACTIVE}), _S.DONE),
    _E.FAIL: Rule(frozenset({_S.RELEASED, _S.ACTIVE}), _S.FAILED, {"reason": str}),
    _E.CANCEL: Rule(frozenset({_S.PLANNED, _S.RELEASED, _S.ACTIVE}), _S.CANCELLED, {}, {"reason": str}),
}
"""The task machine: per event, the states it is allowed in, where it leads and the data it takes."""


@dataclass(frozen=True, slots=True)
class Task:
    """One leg of a robot's plan as the store tracks it (times in epoch seconds).

    ``start_at``/``end_at`` are the planned service times of the leg, ``finished_at`` when it reached
    a final state, ``reason`` why it failed or was cancelled.
    """

    id: str
    robot: str
    sequence: int
    kind: str
    place: str
    created_at: float
    window: str | None = None
    parcels: tuple[str, ...] = ()
    orders: tuple[str, ...] = ()
    start_at: float | None = None
    end_at: float | None = None
    state: TaskState = TaskState.PLANNED
    reason: str | None = None
    finished_at: float | None = None
    version: int = 1

    @property
    def final(self) -> bool:
        """Whether the task reached a state it never leaves."""
        return self.state in FINAL_TASK_STATES


def task_id(robot: str, sequence: int) -> str:
    """The conventional id of a robot's ``sequence``-th task: ``"{robot}/{sequence}"``."""
    return f"{robot}/{sequence}"


def plan_task(
    task_id: str,
    robot: str,
    sequence: int,
    kind: str,
    place: str,
    at: float,
    *,
    window: str | None = None,
    parcels: Iterable[str] = (),
    orders: Iterable[str] = (),
    start_at: float | None = None,
    end_at: float | None = None,
) -> tuple[Task, DomainEvent]:
    """A planned task and its ``plan`` event; ``InvalidData`` if a field is malformed."""
    for what, value in (("task id", task_id), ("robot", robot), ("leg kind", kind), ("place", place)):
        check_value(what, value, str)
        if len(value) > MAX_NAME:
            raise InvalidData(f"{what} is longer than {MAX_NAME} characters")
    check_value("task sequence", sequence, int)
    if sequence < 0:
        raise InvalidData(f"task sequence {sequence} must be >= 0")
    if window is not None:
        check_value("task window", window, str)
    start = check_time("task start", start_at) if start_at is not None else None
    end = check_time("task end", end_at) if end_at is not None else None
    if start is not None and end is not None and end < start:
        raise InvalidData("the task ends before it starts")
    parcels, orders = tuple(parcels), tuple(orders)
    for item in (*parcels, *orders):
        check_value("a task's parcel or order id", item, str)
        if "," in item:
            raise InvalidData(f"a task's parcel or order id must not hold a comma: {item!r}")
    at = check_time("task creation time", at)
    task = Task(
        id=task_id,
        robot=robot,
        sequence=sequence,
        kind=kind,
        place=place,
        created_at=at,
        window=window,
        parcels=parcels,
        orders=orders,
        start_at=start,
        end_at=end,
    )
    data: dict[str, JsonScalar] = {
        "robot": robot,
        "sequence": sequence,
        "kind": kind,
        "place": place,
        "window": window,
        "parcels": ",".join(parcels),  # comma-separated: event data are JSON scalars
        "orders": ",".join(orders),
        "start_at": start,
        "end_at": end,
    }
    return task, make_event(EntityKind.TASK, task_id, TaskEvent.PLAN, None, task.state, at, 1, data)


def transition(task: Task, event: TaskEvent | str, at: float, **data: JsonScalar) -> tuple[Task, DomainEvent]:
    """Apply ``event`` to ``task`` at ``at`` (epoch seconds): the new task and its event.

    Raises ``IllegalTransition`` if the event is not allowed now and ``InvalidData`` for bad data.
    """
    kind = parse_event(EntityKind.TASK, TaskEvent, event)
    at = check_time("task event time", at)
    rule = check(EntityKind.TASK, task.id, task.state, kind, RULES, data)
    new = replace(task, state=rule.target, version=task.version + 1)
    new = _with_reason(new, data)
    if new.state in FINAL_TASK_STATES:
        new = replace(new, finished_at=at)
    return new, make_event(EntityKind.TASK, task.id, kind, task.state, new.state, at, new.version, data)


def _with_reason(task: Task, data: Mapping[str, JsonScalar]) -> Task:
    reason = data.get("reason")
    return replace(task, reason=str(reason)) if reason is not None else task
