"""What the three state machines share: transition rules, data checks, and making the event.

A machine is a table ``{event: Rule}``; a rule says from which states the event is allowed, which
state it leads to and which data it takes (name → type). ``check`` refuses what the table does not
allow, with ``IllegalTransition`` or ``InvalidData``; the entity modules then build the new entity.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType
from typing import Generic, TypeVar

from orchestrator.domain.errors import IllegalTransition, InvalidData
from orchestrator.domain.events import DomainEvent, EntityKind, JsonScalar

S = TypeVar("S", bound=StrEnum)
E = TypeVar("E", bound=StrEnum)

DataType = type[str] | type[float] | type[bool] | type[int]
"""The types an event's data field may have: ``str`` (non-blank), ``float`` (finite; ints accepted),
``int``, ``bool``."""


@dataclass(frozen=True)
class Rule(Generic[S]):
    """An event is allowed from ``sources`` and leads to ``target``, taking ``required`` and
    ``optional`` data fields of the given types."""

    sources: frozenset[S]
    target: S
    required: Mapping[str, DataType] = field(default_factory=dict)
    optional: Mapping[str, DataType] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "required", MappingProxyType(dict(self.required)))
        object.__setattr__(self, "optional", MappingProxyType(dict(self.optional)))


def parse_event(entity: EntityKind, events: type[E], event: E | str) -> E:
    """``event`` as a member of ``events``; ``InvalidData`` naming the known ones if it is none of them."""
    try:
        return events(event)
    except ValueError:
        known = ", ".join(e.value for e in events)
        raise InvalidData(f"{event!r} is not a {entity} event (known: {known})") from None


def check(
    entity: EntityKind,
    entity_id: str,
    state: S,
    event: E,
    rules: Mapping[E, Rule[S]],
    data: Mapping[str, object],
) -> Rule[S]:
    """The rule for ``event`` in ``state``, after checking the data it carries.

    Raises ``IllegalTransition`` when the event is not allowed in ``state`` and ``InvalidData`` when a
    required field is missing, a field is unexpected, or a value has the wrong type.
    """
    rule = rules.get(event)
    if rule is None:  # the creation event: it makes an entity, it never moves one
        why = f"{event.value!r} happens only when the {entity} is created"
        raise IllegalTransition(entity, entity_id, state.value, event.value, why=why)
    if state not in rule.sources:
        allowed = [s.value for s in rule.sources]
        raise IllegalTransition(entity, entity_id, state.value, event.value, allowed=allowed)
    missing = [name for name in rule.required if name not in data]
    if missing:
        raise InvalidData(f"{entity} event {event.value!r} needs {', '.join(missing)}")
    unexpected = sorted(set(data) - set(rule.required) - set(rule.optional))
    if unexpected:
        raise InvalidData(f"{entity} event {event.value!r} does not take {', '.join(unexpected)}")
    for name, value in data.items():
        expected = rule.required.get(name) or rule.optional[name]
        check_value(
            f"{entity} event {event.value!r}: {name}", value, expected, optional=name in rule.optional
        )
    return rule


def check_value(what: str, value: object, expected: DataType, *, optional: bool = False) -> None:
    """Refuse a value of the wrong type, a blank string or a non-finite number (``None`` only if optional)."""
    if value is None and optional:
        return
    if expected is float:
        ok = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
        if not ok:
            raise InvalidData(f"{what} must be a finite number, got {value!r}")
        return
    if expected is int:
        if not isinstance(value, int) or isinstance(value, bool):
            raise InvalidData(f"{what} must be an integer, got {value!r}")
        return
    if expected is bool:
        if not isinstance(value, bool):
            raise InvalidData(f"{what} must be true or false, got {value!r}")
        return
    if not isinstance(value, str) or not value.strip():
        raise InvalidData(f"{what} must be a non-empty text, got {value!r}")


def check_time(what: str, at: float) -> float:
    """``at`` as a float, refusing anything but a finite number of epoch seconds."""
    check_value(what, at, float)
    return float(at)


def make_event(
    entity: EntityKind,
    entity_id: str,
    kind: StrEnum,
    from_state: StrEnum | None,
    to_state: StrEnum,
    at: float,
    sequence: int,
    data: Mapping[str, object],
) -> DomainEvent:
    """The ``DomainEvent`` of a checked transition (data values are JSON scalars by then)."""
    scalars: dict[str, JsonScalar] = {}
    for name, value in data.items():
        if not (value is None or isinstance(value, str | int | float | bool)):
            raise InvalidData(f"{entity} event {kind.value!r}: {name} is not a JSON scalar: {value!r}")
        scalars[name] = value
    return DomainEvent(
        entity=entity,
        entity_id=entity_id,
        kind=kind.value,
        from_state=from_state.value if from_state is not None else None,
        to_state=to_state.value,
        at=at,
        sequence=sequence,
        data=scalars,
    )
