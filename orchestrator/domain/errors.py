"""Errors of the domain state machines.

::

    DomainError
     ├── IllegalTransition   the event is not allowed in the entity's current state
     └── InvalidData         (also a ValueError) an entity or an event's data is malformed:
                             a missing or unexpected field, a wrong type, a blank name, a bad time

The HTTP layer maps ``IllegalTransition`` to 409 Conflict and ``InvalidData`` to 422.
"""

from __future__ import annotations

from collections.abc import Iterable


class DomainError(Exception):
    """Base of every error raised by ``orchestrator.domain``."""


class IllegalTransition(DomainError):
    """``event`` is not allowed for entity ``entity_id`` while it is in ``from_state``.

    ``allowed`` lists the states where the event is allowed (empty when none is); ``why`` adds the
    reason when the state alone does not explain it (e.g. an office parcel never waits at a stop).
    """

    def __init__(
        self,
        entity: str,
        entity_id: str,
        from_state: str,
        event: str,
        *,
        allowed: Iterable[str] = (),
        why: str = "",
    ) -> None:
        self.entity = entity
        self.entity_id = entity_id
        self.from_state = from_state
        self.event = event
        self.allowed = tuple(sorted(allowed))
        self.why = why
        super().__init__(self._sentence())

    def _sentence(self) -> str:
        head = f"{self.entity} {self.entity_id!r} cannot {self.event!r} while {self.from_state!r}"
        if self.why:
            return f"{head}: {self.why}"
        if not self.allowed:
            return f"{head}: {self.from_state!r} is a final state"
        return f"{head}: {self.event!r} is allowed only while {' or '.join(map(repr, self.allowed))}"


class InvalidData(DomainError, ValueError):
    """An entity's fields or an event's data are malformed (one sentence says which and why)."""
