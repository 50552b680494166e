"""robopost orchestrator.domain: pure entities and their state machines (no I/O, no wall clock).

- ``parcel``: ``Parcel`` (window delivery to a stop, or office delivery through a hand-off point).
- ``order``: ``Order`` (mini-program pickup or coffee).
- ``task``: ``Task`` (one leg of a robot's plan, linked to parcels and orders).
- ``events``: ``DomainEvent``, the one event every state change yields.
- ``errors``: ``DomainError`` ← ``IllegalTransition``, ``InvalidData``.

Every change is ``transition(entity, event, at, **data) -> (new_entity, DomainEvent)``; entities are
frozen, time ``at`` is epoch seconds from the caller's ``Clock``. The store writes the event (and the
new state) in one transaction *before* anyone acts on it.
"""

from __future__ import annotations

from typing import overload

from orchestrator.domain import order as _order
from orchestrator.domain import parcel as _parcel
from orchestrator.domain import task as _task
from orchestrator.domain.errors import DomainError, IllegalTransition, InvalidData
from orchestrator.domain.events import DomainEvent, EntityKind, JsonScalar
from orchestrator.domain.order import (
    CANCELLABLE_ORDER_STATES,
    FINAL_ORDER_STATES,
    Order,
    OrderEvent,
    OrderKind,
    OrderState,
    create_order,
)
from orchestrator.domain.parcel import (
    FINAL_PARCEL_STATES,
    Destination,
    Parcel,
    ParcelEvent,
    ParcelState,
    SizeClass,
    check_tracking_number,
    receive_parcel,
)
from orchestrator.domain.task import FINAL_TASK_STATES, Task, TaskEvent, TaskState, plan_task, task_id


@overload
def transition(
    entity: Parcel, event: ParcelEvent | str, at: float, **data: JsonScalar
) -> tuple[Parcel, DomainEvent]: ...
@overload
def transition(
    entity: Order, event: OrderEvent | str, at: float, **data: JsonScalar
) -> tuple[Order, DomainEvent]: ...
@overload
def transition(
    entity: Task, event: TaskEvent | str, at: float, **data: JsonScalar
) -> tuple[Task, DomainEvent]: ...
def transition(
    entity: Parcel | Order | Task, event: str, at: float, **data: JsonScalar
) -> tuple[Parcel | Order | Task, DomainEvent]:
    """Apply ``event`` to a parcel, order or task at ``at`` (epoch seconds): the new entity and its event.

    Raises ``IllegalTransition`` if the event is not allowed in the entity's state and
    ``InvalidData`` if its data are malformed.
    """
    if isinstance(entity, Parcel):
        return _parcel.transition(entity, event, at, **data)
    if isinstance(entity, Order):
        return _order.transition(entity, event, at, **data)
    return _task.transition(entity, event, at, **data)


__all__ = [
    "CANCELLABLE_ORDER_STATES",
    "FINAL_ORDER_STATES",
    "FINAL_PARCEL_STATES",
    "FINAL_TASK_STATES",
    "Destination",
    "DomainError",
    "DomainEvent",
    "EntityKind",
    "IllegalTransition",
    "InvalidData",
    "JsonScalar",
    "Order",
    "OrderEvent",
    "OrderKind",
    "OrderState",
    "Parcel",
    "ParcelEvent",
    "ParcelState",
    "SizeClass",
    "Task",
    "TaskEvent",
    "TaskState",
    "check_tracking_number",
    "create_order",
    "plan_task",
    "receive_parcel",
    "task_id",
    "transition",
]
