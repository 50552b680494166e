"""Errors of the notification outbox.

    NotifyError                   the outbox cannot do what an operator or a caller asked
    ├── OutboxEntryNotFoundError  no outbox entry has that id (also a store ``NotFoundError``: HTTP 404)
    └── OutboxStateError          the entry is in a state that forbids the change (also a store
                                  ``ConflictError``: HTTP 409), e.g. retrying a message already sent

Failed *deliveries* are not exceptions: a provider answers with a ``ProviderResult`` and the worker
records it on the entry (retry later, or dead letter). Bad message fields raise ``ValueError``.
"""

from __future__ import annotations

from orchestrator.store.errors import ConflictError, NotFoundError


class NotifyError(Exception):
    """The outbox cannot do what was asked."""


class OutboxEntryNotFoundError(NotifyError, NotFoundError):
    """No outbox entry has the id asked for."""


class OutboxStateError(NotifyError, ConflictError):
    """The outbox entry's status does not allow the change asked for."""
