"""The task state machine: a robot's leg from planned to done, failed or cancelled."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from orchestrator.domain import (
    FINAL_TASK_STATES,
    IllegalTransition,
    InvalidData,
    Task,
    TaskEvent,
    TaskState,
    plan_task,
    task_id,
    transition,
)
from orchestrator.domain.task import RULES

T0 = 1_800_000_000.0

VALID_DATA: dict[TaskEvent, dict[str, Any]] = {
    TaskEvent.RELEASE: {},
    TaskEvent.START: {},
    TaskEvent.FINISH: {},
    TaskEvent.FAIL: {"reason": "blocked corridor"},
    TaskEvent.CANCEL: {"reason": "re-planned"},
}


def _task() -> Task:
    return plan_task(
        task_id("cart-01", 3), "cart-01", 3, "dwell", "stop-a", T0,
        window="w1", parcels=("SF1", "SF2"), start_at=T0 + 600, end_at=T0 + 1200,
    )[0]  # fmt: skip


def test_plan_makes_a_planned_task_linked_to_its_leg() -> None:
    """plan_task keeps robot, sequence, leg kind, place, window, parcels, orders and planned times."""
    task, event = plan_task(
        "cart-01/3", "cart-01", 3, "dwell", "stop-a", T0,
        window="w1", parcels=["SF1", "SF2"], orders=["ord_1"], start_at=T0 + 600, end_at=T0 + 1200,
    )  # fmt: skip
    assert task.state is TaskState.PLANNED and task.version == 1
    assert (task.robot, task.sequence, task.parcels, task.orders) == (
        "cart-01",
        3,
        ("SF1", "SF2"),
        ("ord_1",),
    )
    assert (event.kind, event.from_state, event.to_state, event.sequence) == ("plan", None, "planned", 1)
    assert event.data["parcels"] == "SF1,SF2" and event.data["start_at"] == T0 + 600


def test_happy_path() -> None:
    """release → start → finish: done, finished_at set, one event per step."""
    task = _task()
    kinds = []
    for i, event in enumerate((TaskEvent.RELEASE, TaskEvent.START, TaskEvent.FINISH), start=1):
        task, ev = transition(task, event, T0 + i)
        kinds.append((ev.from_state, ev.to_state, ev.sequence))
    assert kinds == [("planned", "released", 2), ("released", "active", 3), ("active", "done", 4)]
    assert task.final and task.finished_at == T0 + 3


def test_failure_keeps_the_reason() -> None:
    """An active task fails with a reason; it is final."""
    task = replace(_task(), state=TaskState.ACTIVE)
    task, _ = transition(task, "fail", T0 + 9, reason="e-stop pressed")
    assert (task.state, task.reason, task.finished_at) == (TaskState.FAILED, "e-stop pressed", T0 + 9)


@pytest.mark.parametrize(
    ("event", "source"), [(e, s) for e, rule in RULES.items() for s in sorted(rule.sources)], ids=str
)
def test_every_legal_transition(event: TaskEvent, source: TaskState) -> None:
    """Each (event, state) pair of the table leads to the rule's target with exactly one event."""
    new, ev = transition(replace(_task(), state=source), event, T0 + 1, **VALID_DATA[event])
    assert new.state is RULES[event].target
    assert (ev.from_state, ev.to_state, ev.sequence) == (source.value, new.state.value, 2)


@pytest.mark.parametrize(
    ("event", "state"),
    [(e, s) for e, rule in RULES.items() for s in TaskState if s not in rule.sources],
    ids=str,
)
def test_every_illegal_transition_raises(event: TaskEvent, state: TaskState) -> None:
    """An event outside its allowed states raises IllegalTransition."""
    with pytest.raises(IllegalTransition, match=f"task 'cart-01/3' cannot '{event.value}'"):
        transition(replace(_task(), state=state), event, T0 + 1, **VALID_DATA[event])


def test_final_states_are_exactly_those_without_a_way_out() -> None:
    """A state is final iff no rule allows any event from it."""
    sources = {s for rule in RULES.values() for s in rule.sources}
    assert set(TaskState) - sources == FINAL_TASK_STATES


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"sequence": -1}, "sequence -1 must be >= 0"),
        ({"sequence": 1.5}, "sequence must be an integer"),
        ({"robot": ""}, "robot must be a non-empty text"),
        ({"start_at": T0 + 10, "end_at": T0}, "ends before it starts"),
        ({"parcels": ("SF1,SF2",)}, "must not hold a comma"),
    ],
)
def test_plan_refuses_malformed_tasks(kwargs: dict[str, Any], message: str) -> None:
    """plan_task checks its fields."""
    args: dict[str, Any] = {
        "task_id": "t", "robot": "cart-01", "sequence": 0, "kind": "load", "place": "station", "at": T0,
    }  # fmt: skip
    args.update(kwargs)
    with pytest.raises(InvalidData, match=message):
        plan_task(**args)


def test_fail_needs_a_reason() -> None:
    """fail without a reason is InvalidData."""
    with pytest.raises(InvalidData, match="needs reason"):
        transition(replace(_task(), state=TaskState.ACTIVE), "fail", T0)
