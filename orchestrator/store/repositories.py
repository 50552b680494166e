"""Repositories for sites and robots.

A repository works inside the caller's session, so one transaction can span several repositories::

    with factory.begin() as session:            # commits at the end, rolls back on error
        site = SiteRepository(session, clock).add("neijiang", GeoOrigin(29.58, 105.06, 350.0))
        RobotRepository(session, clock).add("acme", "cart-01", RobotKind.CART, site.id)

Each write is flushed inside a savepoint, so a ``ConflictError`` or ``NotFoundError`` leaves the
session usable. Timestamps come from the ``Clock`` given, never from the wall.
"""

from __future__ import annotations

import builtins
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.orm import Session

from interfaces.clock import Clock
from maps.model import GeoOrigin
from orchestrator.store.errors import ConflictError, NotFoundError, StoreError, integrity_kind
from orchestrator.store.records import DEFAULT_PROFILE, RobotKind, RobotRecord, SiteRecord
from orchestrator.store.tables import RobotRow, SiteRow


class SiteRepository:
    """Add, read, list and change sites."""

    def __init__(self, session: Session, clock: Clock) -> None:
        self._session = session
        self._clock = clock

    def add(self, name: str, origin: GeoOrigin, *, label: str = "", map_source: str = "") -> SiteRecord:
        """Store a new site; ``ConflictError`` if the name is taken."""
        _require_text("site name", name)
        row = SiteRow(
            name=name,
            label=label,
            origin_lat=origin.lat,
            origin_lon=origin.lon,
            origin_alt=origin.alt,
            map_source=map_source,
            created_at=_utc(self._clock),
        )
        with _write(self._session, conflict=f"site name {name!r} is already taken"):
            self._session.add(row)
        return _site_record(row)

    def register(self, name: str, origin: GeoOrigin, *, label: str = "", map_source: str = "") -> SiteRecord:
        """The site called ``name`` with this origin, label and map: added if new, else brought up to date.

        The orchestrator calls it at start-up for the campus it serves, so the store always knows it.
        """
        try:
            current = self.get_by_name(name)
        except NotFoundError:
            return self.add(name, origin, label=label, map_source=map_source)
        return self.update(current.id, label=label, origin=origin, map_source=map_source)

    def get(self, site_id: int) -> SiteRecord:
        """The site with this id; ``NotFoundError`` if there is none."""
        return _site_record(self._row(site_id))

    def get_by_name(self, name: str) -> SiteRecord:
        """The site with this name; ``NotFoundError`` if there is none."""
        with _reading():
            row = self._session.scalars(select(SiteRow).where(SiteRow.name == name)).one_or_none()
        if row is None:
            raise NotFoundError(f"site {name!r} does not exist")
        return _site_record(row)

    def update(
        self,
        site_id: int,
        *,
        name: str | None = None,
        label: str | None = None,
        origin: GeoOrigin | None = None,
        map_source: str | None = None,
    ) -> SiteRecord:
        """Change the fields given (``None`` keeps a field); ``ConflictError`` if the new name is taken."""
        row = self._row(site_id)
        if name is not None:
            _require_text("site name", name)
        with _write(self._session, conflict=f"site name {name!r} is already taken"):
            _set_if_given(row, name=name, label=label, map_source=map_source)
            if origin is not None:
                row.origin_lat, row.origin_lon, row.origin_alt = origin.lat, origin.lon, origin.alt
        return _site_record(row)

    def list(self) -> builtins.list[SiteRecord]:
        """Every site, oldest first."""
        with _reading():
            rows = self._session.scalars(select(SiteRow).order_by(SiteRow.id)).all()
        return [_site_record(r) for r in rows]

    def _row(self, site_id: int) -> SiteRow:
        with _reading():
            row = self._session.get(SiteRow, site_id)
        if row is None:
            raise NotFoundError(f"site {site_id} does not exist")
        return row


class RobotRepository:
    """Register, read, list and change robots."""

    def __init__(self, session: Session, clock: Clock) -> None:
        self._session = session
        self._clock = clock

    def add(
        self,
        manufacturer: str,
        serial_number: str,
        kind: RobotKind | str,
        site_id: int,
        *,
        profile: str | None = None,
        display_name: str = "",
        enabled: bool = True,
    ) -> RobotRecord:
        """Register a robot at a site; ``ConflictError`` if this manufacturer already has the serial,
        ``NotFoundError`` if the site does not exist. ``profile`` defaults by kind (``DEFAULT_PROFILE``).
        """
        _require_text("manufacturer", manufacturer)
        _require_text("serial number", serial_number)
        kind = RobotKind(kind)
        row = RobotRow(
            manufacturer=manufacturer,
            serial_number=serial_number,
            kind=kind.value,
            site_id=site_id,
            profile=profile if profile is not None else DEFAULT_PROFILE[kind],
            display_name=display_name,
            enabled=enabled,
            created_at=_utc(self._clock),
        )
        with _write(
            self._session,
            conflict=f"robot {manufacturer}/{serial_number} is already registered",
            missing=f"site {site_id} does not exist",
        ):
            self._session.add(row)
        return _robot_record(row)

    def get(self, robot_id: int) -> RobotRecord:
        """The robot with this id; ``NotFoundError`` if there is none."""
        return _robot_record(self._row(robot_id))

    def get_by_serial(self, manufacturer: str, serial_number: str) -> RobotRecord:
        """The robot a VDA 5050 topic names; ``NotFoundError`` if it is not registered."""
        query = select(RobotRow).where(
            RobotRow.manufacturer == manufacturer, RobotRow.serial_number == serial_number
        )
        with _reading():
            row = self._session.scalars(query).one_or_none()
        if row is None:
            raise NotFoundError(f"robot {manufacturer}/{serial_number} is not registered")
        return _robot_record(row)

    def update(
        self,
        robot_id: int,
        *,
        kind: RobotKind | str | None = None,
        site_id: int | None = None,
        profile: str | None = None,
        display_name: str | None = None,
        enabled: bool | None = None,
    ) -> RobotRecord:
        """Change the fields given (``None`` keeps a field); ``NotFoundError`` for a missing site."""
        row = self._row(robot_id)
        new_kind = RobotKind(kind).value if kind is not None else None
        with _write(
            self._session, conflict="robot update conflicts", missing=f"site {site_id} does not exist"
        ):
            _set_if_given(
                row,
                kind=new_kind,
                site_id=site_id,
                profile=profile,
                display_name=display_name,
                enabled=enabled,
            )
        return _robot_record(row)

    def list(self, *, site_id: int | None = None, enabled: bool | None = None) -> builtins.list[RobotRecord]:
        """Registered robots, oldest first; only one site's or only (dis)enabled ones when asked."""
        query = select(RobotRow).order_by(RobotRow.id)
        if site_id is not None:
            query = query.where(RobotRow.site_id == site_id)
        if enabled is not None:
            query = query.where(RobotRow.enabled == enabled)
        with _reading():
            rows = self._session.scalars(query).all()
        return [_robot_record(r) for r in rows]

    def _row(self, robot_id: int) -> RobotRow:
        with _reading():
            row = self._session.get(RobotRow, robot_id)
        if row is None:
            raise NotFoundError(f"robot {robot_id} does not exist")
        return row


@contextmanager
def _write(
    session: Session, *, conflict: str, missing: str = "a referenced row does not exist"
) -> Iterator[None]:
    """Run the changes in the block in a savepoint and flush them, turning database errors into ours."""
    try:
        with session.begin_nested():
            yield
            session.flush()
    except IntegrityError as exc:
        kind = integrity_kind(exc)
        if kind == "unique":
            raise ConflictError(conflict) from exc
        if kind == "foreign_key":
            raise NotFoundError(missing) from exc
        raise StoreError(f"write refused by the database: {exc.orig}") from exc
    except SQLAlchemyError as exc:
        raise StoreError(f"database error: {exc}") from exc


@contextmanager
def _reading() -> Iterator[None]:
    """Turn database errors raised while reading into ``StoreError``."""
    try:
        yield
    except SQLAlchemyError as exc:
        raise StoreError(f"database error: {exc}") from exc


def _set_if_given(row: object, **values: object) -> None:
    """Set each attribute whose new value is not ``None``."""
    for attr, value in values.items():
        if value is not None:
            setattr(row, attr, value)


def _require_text(what: str, value: str) -> None:
    """Refuse empty or blank keys."""
    if not value or not value.strip():
        raise ValueError(f"{what} must not be empty")


def _utc(clock: Clock) -> datetime:
    """The clock's now as an aware UTC datetime."""
    return datetime.fromtimestamp(clock.now(), tz=UTC)


def _site_record(row: SiteRow) -> SiteRecord:
    return SiteRecord(
        id=row.id,
        name=row.name,
        label=row.label,
        origin=GeoOrigin(row.origin_lat, row.origin_lon, row.origin_alt),
        map_source=row.map_source,
        created_at=row.created_at,
    )


def _robot_record(row: RobotRow) -> RobotRecord:
    return RobotRecord(
        id=row.id,
        manufacturer=row.manufacturer,
        serial_number=row.serial_number,
        kind=RobotKind(row.kind),
        site_id=row.site_id,
        profile=row.profile,
        display_name=row.display_name,
        enabled=row.enabled,
        created_at=row.created_at,
    )
