"""SQLAlchemy models: the tables of the store.

The migrations in ``migrations/versions`` create these tables; a test checks that both agree, so a new
table is added here *and* as a new migration (``alembic -c orchestrator/store/alembic.ini revision
--autogenerate -m "..."`` writes a first draft). Constraint names follow ``NAMING_CONVENTION`` so
migrations can refer to them on every backend.

Repositories turn rows into the frozen records of ``orchestrator.store.records``; rows do not leave
the store.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import (
    CheckConstraint,
    DateTime,
    Dialect,
    Double,
    ForeignKey,
    Integer,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    true,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

ROBOT_KINDS = ("cart", "indoor", "robot")
"""Allowed values of ``robots.kind`` (``records.RobotKind``)."""


class Base(DeclarativeBase):
    """Base of every model; its ``metadata`` is what migrations are checked against."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class UtcDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC timestamp on every backend (SQLite stores it naive, in UTC)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        """Refuse naive datetimes; store UTC (naive on SQLite, which has no time zones)."""
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"timestamp {value.isoformat()} has no time zone")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        """Read back as an aware UTC datetime."""
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class SiteRow(Base):
    """A campus served by an orchestrator; ``name`` is its stable key (e.g. ``neijiang``)."""

    __tablename__ = "sites"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    label: Mapped[str] = mapped_column(String(200))
    origin_lat: Mapped[float] = mapped_column(Double())
    origin_lon: Mapped[float] = mapped_column(Double())
    origin_alt: Mapped[float] = mapped_column(Double())
    map_source: Mapped[str] = mapped_column(Text())
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())


class RobotRow(Base):
    """A registered robot: a cart, an indoor robot or another robot, at one site."""

    __tablename__ = "robots"
    __table_args__ = (
        UniqueConstraint("manufacturer", "serial_number"),
        CheckConstraint(f"kind IN ({', '.join(repr(k) for k in ROBOT_KINDS)})", name="kind"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    manufacturer: Mapped[str] = mapped_column(String(64))
    serial_number: Mapped[str] = mapped_column(String(128))
    kind: Mapped[str] = mapped_column(String(16))
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id", ondelete="RESTRICT"), index=True)
    profile: Mapped[str] = mapped_column(String(32))
    display_name: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    enabled: Mapped[bool] = mapped_column(server_default=true())


class RobotSnapshotRow(Base):
    """The last known state of a robot, as the fleet master saw it (one row per robot, upserted at a
    bounded rate by ``orchestrator.fleet.persistence``). ``errors`` is a JSON array of
    ``{type, level, description}``."""

    __tablename__ = "robot_snapshots"

    robot_id: Mapped[int] = mapped_column(ForeignKey("robots.id", ondelete="CASCADE"), primary_key=True)
    link: Mapped[str] = mapped_column(String(20))
    link_since: Mapped[datetime | None] = mapped_column(UtcDateTime())
    state_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    received_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    order_id: Mapped[str | None] = mapped_column(String(128))
    order_update_id: Mapped[int | None] = mapped_column(Integer())
    last_node_id: Mapped[str | None] = mapped_column(String(128))
    driving: Mapped[bool | None]
    paused: Mapped[bool | None]
    battery_charge: Mapped[float | None] = mapped_column(Double())
    charging: Mapped[bool | None]
    operating_mode: Mapped[str | None] = mapped_column(String(16))
    x: Mapped[float | None] = mapped_column(Double())
    y: Mapped[float | None] = mapped_column(Double())
    theta: Mapped[float | None] = mapped_column(Double())
    map_id: Mapped[str | None] = mapped_column(String(128))
    errors: Mapped[str] = mapped_column(Text())
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime())


# The other table modules register on the same metadata; importing them here keeps ``Base.metadata``
# complete wherever the store is used (and the migration check compares all of it).
from orchestrator.store import console_tables, domain_tables, notify_tables  # noqa: E402, F401
