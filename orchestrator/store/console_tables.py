"""Tables of the operators' console: login sessions, alarm acknowledgements (issue 6), standing stops (9).

A console session is stored only as the SHA-256 of its bearer token (``token_hash``,
``orchestrator.security.tokens.token_hash``): a copy of the table does not let anyone log in. A session
ends at ``expires_at`` (login time + ``security.session_ttl_s``) or when revoked (logout, the user
disabled or given a new password). Alarms are derived from the live state (robots, outbox, parcels);
only their acknowledgements are stored, keyed by the alarm's id.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from orchestrator.store.tables import Base, UtcDateTime

ALARM_ID = 200
"""Width of an alarm id (``kind:subject:...``)."""


class ConsoleSessionRow(Base):
    """A logged-in console user: the hash of the session token, when it ends, whether it was revoked."""

    __tablename__ = "console_sessions"

    id: Mapped[int] = mapped_column(primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime(), index=True)
    revoked_at: Mapped[datetime | None] = mapped_column(UtcDateTime())


class AlarmAckRow(Base):
    """An operator acknowledged an alarm (``alarm_id`` as the console lists it), with an optional note."""

    __tablename__ = "alarm_acks"

    alarm_id: Mapped[str] = mapped_column(String(ALARM_ID), primary_key=True)
    actor: Mapped[str] = mapped_column(String(64))
    note: Mapped[str] = mapped_column(Text())
    acked_at: Mapped[datetime] = mapped_column(UtcDateTime())


class StandingStopRow(Base):
    """A stop the orchestrator keeps in force until an operator releases it (issue 9): the console's
    "stop all" (``scope`` ``fleet``) or a building stop after a fire alarm (``building:<id>``).
    Written before the stop is sent and deleted when it is released, so a restarted orchestrator keeps
    it (``orchestrator.fleet.safety.FleetSafety.restore``)."""

    __tablename__ = "standing_stops"

    scope: Mapped[str] = mapped_column(String(ALARM_ID), primary_key=True)
    operator: Mapped[str] = mapped_column(String(64))
    role: Mapped[str] = mapped_column(String(16))
    since: Mapped[datetime] = mapped_column(UtcDateTime())
