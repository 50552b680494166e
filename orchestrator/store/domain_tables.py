"""Tables of the orchestrator's domain: parcels, orders, tasks, their events, audit, users (issue 6).

Each parcel, order and task row holds the entity's current state and a ``version``; its events table
is the append-only history, one row per transition, numbered 1, 2, 3, … per entity (``sequence`` =
the entity's version after the change, unique per entity). Repositories write the new state and the
event in one transaction (``orchestrator.store.domain_repositories``).

Personal data (recipient or contact name and phone) is stored only encrypted (``*_enc``) beside a
masked copy for display and a keyed hash of the normalised phone (``phone_hmac``) for lookups. The
retention purge blanks all three and sets ``personal_data_purged_at``.

Window ids are stored as ``window_id`` (``WINDOW`` is reserved in PostgreSQL).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import (
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    true,
)
from sqlalchemy.orm import Mapped, mapped_column

from orchestrator.domain import OrderKind, OrderState, ParcelState, SizeClass, TaskState
from orchestrator.store.tables import Base, UtcDateTime

NAME = 128
"""Width of place, window, stop, cart, compartment and robot names (``domain.parcel.MAX_NAME``)."""

USER_ROLES = ("viewer", "operator", "admin")
"""Allowed values of ``users.role`` (``domain_records.UserRole``)."""


def _one_of(column: str, values: Iterable[object]) -> str:
    """A CHECK expression: ``column`` is one of the string values of an enum or tuple."""
    return f"{column} IN ({', '.join(repr(str(v)) for v in values)})"


def _optimistic(version: Any) -> dict[str, Any]:
    """Mapper options for optimistic concurrency: an UPDATE matches only the ``version`` it read, and
    the repository sets the new one (the entity's version, which numbers its events)."""
    return {"version_id_col": version, "version_id_generator": False}


class ParcelRow(Base):
    """A parcel: destination, size, current state (``domain.Parcel``) and its recipient's data."""

    __tablename__ = "parcels"
    __table_args__ = (
        CheckConstraint(_one_of("size", SizeClass), name="size"),
        CheckConstraint(_one_of("state", ParcelState), name="state"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    tracking_number: Mapped[str] = mapped_column(String(64), unique=True)
    size: Mapped[str] = mapped_column(String(1))
    building: Mapped[str | None] = mapped_column(String(NAME))
    room: Mapped[str | None] = mapped_column(String(NAME))
    dorm: Mapped[str | None] = mapped_column(String(NAME))
    place: Mapped[str | None] = mapped_column(String(NAME))
    office: Mapped[bool]
    state: Mapped[str] = mapped_column(String(16), index=True)
    window_id: Mapped[str | None] = mapped_column(String(NAME), index=True)
    stop: Mapped[str | None] = mapped_column(String(NAME), index=True)
    cart: Mapped[str | None] = mapped_column(String(NAME))
    compartment: Mapped[str | None] = mapped_column(String(NAME))
    robot: Mapped[str | None] = mapped_column(String(NAME))
    rolled: Mapped[int] = mapped_column(Integer())
    reason: Mapped[str | None] = mapped_column(Text())
    recipient_name_enc: Mapped[bytes | None] = mapped_column(LargeBinary())
    recipient_phone_enc: Mapped[bytes | None] = mapped_column(LargeBinary())
    name_masked: Mapped[str] = mapped_column(String(NAME))
    phone_masked: Mapped[str] = mapped_column(String(32))
    phone_hmac: Mapped[str | None] = mapped_column(String(128), index=True)
    version: Mapped[int] = mapped_column(Integer())
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime())
    delivered_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), index=True)
    personal_data_purged_at: Mapped[datetime | None] = mapped_column(UtcDateTime())

    __mapper_args__ = _optimistic(version)


class ParcelEventRow(Base):
    """One transition of a parcel (append-only); ``data`` is the event's data as a JSON object."""

    __tablename__ = "parcel_events"
    __table_args__ = (UniqueConstraint("parcel_id", "sequence"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    parcel_id: Mapped[int] = mapped_column(ForeignKey("parcels.id", ondelete="RESTRICT"))
    sequence: Mapped[int] = mapped_column(Integer())
    kind: Mapped[str] = mapped_column(String(32))
    from_state: Mapped[str | None] = mapped_column(String(16))
    to_state: Mapped[str] = mapped_column(String(16))
    at: Mapped[datetime] = mapped_column(UtcDateTime())
    data: Mapped[str] = mapped_column(Text())


class OrderRow(Base):
    """A mini-program order (``domain.Order``) and its contact's data.

    ``(partner, partner_ref)`` is unique, and so is ``(partner, idempotency_key)`` when a key was given.
    """

    __tablename__ = "orders"
    __table_args__ = (
        UniqueConstraint("partner", "partner_ref"),
        UniqueConstraint("partner", "idempotency_key"),
        CheckConstraint(_one_of("kind", OrderKind), name="kind"),
        CheckConstraint(_one_of("size", SizeClass), name="size"),
        CheckConstraint(_one_of("state", OrderState), name="state"),
    )

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    partner: Mapped[str] = mapped_column(String(64))
    partner_ref: Mapped[str] = mapped_column(String(NAME))
    idempotency_key: Mapped[str | None] = mapped_column(String(NAME))
    kind: Mapped[str] = mapped_column(String(16))
    place: Mapped[str] = mapped_column(String(NAME))
    origin: Mapped[str | None] = mapped_column(String(NAME))
    earliest_at: Mapped[datetime] = mapped_column(UtcDateTime())
    latest_at: Mapped[datetime] = mapped_column(UtcDateTime())
    size: Mapped[str] = mapped_column(String(1))
    state: Mapped[str] = mapped_column(String(16), index=True)
    eta: Mapped[datetime | None] = mapped_column(UtcDateTime())
    robot: Mapped[str | None] = mapped_column(String(NAME))
    reason: Mapped[str | None] = mapped_column(Text())
    contact_name_enc: Mapped[bytes | None] = mapped_column(LargeBinary())
    contact_phone_enc: Mapped[bytes | None] = mapped_column(LargeBinary())
    name_masked: Mapped[str] = mapped_column(String(NAME))
    phone_masked: Mapped[str] = mapped_column(String(32))
    phone_hmac: Mapped[str | None] = mapped_column(String(128), index=True)
    version: Mapped[int] = mapped_column(Integer())
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime())
    finished_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), index=True)
    personal_data_purged_at: Mapped[datetime | None] = mapped_column(UtcDateTime())

    __mapper_args__ = _optimistic(version)


class OrderEventRow(Base):
    """One transition of an order (append-only)."""

    __tablename__ = "order_events"
    __table_args__ = (UniqueConstraint("order_id", "sequence"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    order_id: Mapped[str] = mapped_column(ForeignKey("orders.id", ondelete="RESTRICT"))
    sequence: Mapped[int] = mapped_column(Integer())
    kind: Mapped[str] = mapped_column(String(32))
    from_state: Mapped[str | None] = mapped_column(String(16))
    to_state: Mapped[str] = mapped_column(String(16))
    at: Mapped[datetime] = mapped_column(UtcDateTime())
    data: Mapped[str] = mapped_column(Text())


class TaskRow(Base):
    """A robot's leg (``domain.Task``); ``parcels`` and ``orders`` are JSON arrays of ids."""

    __tablename__ = "tasks"
    __table_args__ = (
        UniqueConstraint("robot", "sequence"),
        CheckConstraint(_one_of("state", TaskState), name="state"),
    )

    id: Mapped[str] = mapped_column(String(160), primary_key=True)
    robot: Mapped[str] = mapped_column(String(NAME))
    sequence: Mapped[int] = mapped_column(Integer())
    kind: Mapped[str] = mapped_column(String(NAME))
    place: Mapped[str] = mapped_column(String(NAME))
    window_id: Mapped[str | None] = mapped_column(String(NAME))
    parcels: Mapped[str] = mapped_column(Text())
    orders: Mapped[str] = mapped_column(Text())
    start_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    end_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    state: Mapped[str] = mapped_column(String(16), index=True)
    reason: Mapped[str | None] = mapped_column(Text())
    version: Mapped[int] = mapped_column(Integer())
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime())
    finished_at: Mapped[datetime | None] = mapped_column(UtcDateTime())

    __mapper_args__ = _optimistic(version)


class TaskEventRow(Base):
    """One transition of a task (append-only)."""

    __tablename__ = "task_events"
    __table_args__ = (UniqueConstraint("task_id", "sequence"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    task_id: Mapped[str] = mapped_column(ForeignKey("tasks.id", ondelete="RESTRICT"))
    sequence: Mapped[int] = mapped_column(Integer())
    kind: Mapped[str] = mapped_column(String(32))
    from_state: Mapped[str | None] = mapped_column(String(16))
    to_state: Mapped[str] = mapped_column(String(16))
    at: Mapped[datetime] = mapped_column(UtcDateTime())
    data: Mapped[str] = mapped_column(Text())


class IdempotencyKeyRow(Base):
    """The stored answer to a client's request made with an ``Idempotency-Key``.

    ``request_hash`` fingerprints the request (method, path, body): the same key with another request
    is a conflict. ``client`` is the partner or cart id the key belongs to.
    """

    __tablename__ = "idempotency_keys"
    __table_args__ = (UniqueConstraint("client", "idempotency_key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    client: Mapped[str] = mapped_column(String(64))
    idempotency_key: Mapped[str] = mapped_column(String(NAME))
    request_hash: Mapped[str] = mapped_column(String(128))
    status: Mapped[int] = mapped_column(Integer())
    media_type: Mapped[str] = mapped_column(String(100))
    body: Mapped[str] = mapped_column(Text())
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), index=True)


class AuditRow(Base):
    """Who did what to which entity, when and why (append-only): unmaskings, logins, admin actions."""

    __tablename__ = "audit_log"
    __table_args__ = (Index("ix_audit_log_entity", "entity", "entity_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    actor: Mapped[str] = mapped_column(String(64), index=True)
    role: Mapped[str] = mapped_column(String(16))
    action: Mapped[str] = mapped_column(String(64))
    entity: Mapped[str] = mapped_column(String(32))
    entity_id: Mapped[str] = mapped_column(String(160))
    reason: Mapped[str] = mapped_column(Text())
    at: Mapped[datetime] = mapped_column(UtcDateTime(), index=True)


class UserRow(Base):
    """A console user: argon2 password hash (PHC string) and a role."""

    __tablename__ = "users"
    __table_args__ = (CheckConstraint(_one_of("role", USER_ROLES), name="role"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    password_hash: Mapped[str] = mapped_column(Text())
    role: Mapped[str] = mapped_column(String(16))
    enabled: Mapped[bool] = mapped_column(server_default=true())
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime())


class PickupCodeRow(Base):
    """A parcel's pickup code on one cart in one window, stored only as its keyed hash.

    ``(cart, window_id, code_hmac)`` is unique, so two parcels on a cart in a window never share a
    code. ``tail_hmac`` is the step-up hash (code and the recipient's phone tail, see
    ``orchestrator.security.codes``). ``used_at`` is set once, when the code opens the compartment;
    ``revoked_at`` when a new code replaces it (resend).
    """

    __tablename__ = "pickup_codes"
    __table_args__ = (UniqueConstraint("cart", "window_id", "code_hmac"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    parcel_id: Mapped[int] = mapped_column(ForeignKey("parcels.id", ondelete="RESTRICT"), index=True)
    cart: Mapped[str] = mapped_column(String(NAME))
    window_id: Mapped[str] = mapped_column(String(NAME))
    code_hmac: Mapped[str] = mapped_column(String(128))
    tail_hmac: Mapped[str | None] = mapped_column(String(128))
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime())
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    used_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
