"""The notification outbox table (issue 6).

One row per message to send (``orchestrator.notify.outbox``). The phone number and the text are stored
encrypted (``to_enc``, ``text_enc``: the text of a pickup SMS carries the pickup code, which must not
sit in the database in clear); ``to_masked`` and ``text_masked`` are what operators see.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, Index, Integer, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from orchestrator.store.tables import Base, UtcDateTime

OUTBOX_KINDS = ("sms", "call")
"""Allowed values of ``outbox.kind`` (``notify.messages.MessageKind``)."""

OUTBOX_STATUSES = ("held", "pending", "sending", "retry", "sent", "dead", "cancelled")
"""Allowed values of ``outbox.status`` (``notify.outbox.OutboxStatus``)."""


def _one_of(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


class OutboxRow(Base):
    """A message held back, waiting to go out, gone out, given up on (dead letter) or cancelled.

    ``dedupe_key`` is unique: enqueueing the same message twice keeps one row. ``next_attempt_at`` is
    when the worker may (next) try it; ``attempts`` counts the tries started.
    """

    __tablename__ = "outbox"
    __table_args__ = (
        CheckConstraint(_one_of("kind", OUTBOX_KINDS), name="kind"),
        CheckConstraint(_one_of("status", OUTBOX_STATUSES), name="status"),
        Index("ix_outbox_due", "status", "next_attempt_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(8))
    to_enc: Mapped[bytes] = mapped_column(LargeBinary())
    to_masked: Mapped[str] = mapped_column(String(32))
    text_enc: Mapped[bytes] = mapped_column(LargeBinary())
    text_masked: Mapped[str] = mapped_column(Text())
    dedupe_key: Mapped[str] = mapped_column(String(200), unique=True)
    status: Mapped[str] = mapped_column(String(16))
    attempts: Mapped[int] = mapped_column(Integer())
    next_attempt_at: Mapped[datetime] = mapped_column(UtcDateTime())
    last_error: Mapped[str | None] = mapped_column(Text())
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    sent_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
