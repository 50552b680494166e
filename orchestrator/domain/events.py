"""The event every state change appends: ``DomainEvent``."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType

from orchestrator.domain.errors import InvalidData

JsonScalar = str | int | float | bool | None
"""What an event's data values may be (so every event serialises to JSON as it is)."""


class EntityKind(StrEnum):
    """The kinds of entity that have a state machine."""

    PARCEL = "parcel"
    ORDER = "order"
    TASK = "task"


@dataclass(frozen=True, slots=True)
class DomainEvent:
    """One state change of one entity: ``kind`` took it from ``from_state`` to ``to_state`` at ``at``.

    ``from_state`` is ``None`` for the event that creates the entity. ``sequence`` numbers an
    entity's events 1, 2, 3, … (it equals the entity's ``version`` after the change), so the store
    keeps each entity's history in order and a lost or doubled event shows. ``data`` is what the
    event carried (window, stop, cart, reason, ETA, …), JSON scalars only. ``at`` is epoch seconds.
    """

    entity: EntityKind
    entity_id: str
    kind: str
    from_state: str | None
    to_state: str
    at: float
    sequence: int
    data: Mapping[str, JsonScalar] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not math.isfinite(self.at):
            raise InvalidData(f"event time {self.at!r} is not a finite number of epoch seconds")
        if self.sequence < 1:
            raise InvalidData(f"event sequence {self.sequence} must be >= 1")
        object.__setattr__(self, "data", MappingProxyType(dict(self.data)))
