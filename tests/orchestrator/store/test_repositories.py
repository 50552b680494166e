"""Site and robot repositories on SQLite and on a real PostgreSQL server."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from interfaces.clock import VirtualClock
from maps.model import GeoOrigin
from orchestrator.store import (
    ConflictError,
    NotFoundError,
    RobotKind,
    RobotRepository,
    SiteRepository,
    session_factory,
)

ORIGIN = GeoOrigin(29.5800, 105.0600, 352.5)


def _site(session: Session, clock: VirtualClock, name: str = "neijiang") -> int:
    return SiteRepository(session, clock).add(name, ORIGIN, label="Neijiang campus").id


def test_site_round_trip(session: Session, clock: VirtualClock) -> None:
    """A site added is read back with every field, its timestamp taken from the clock in UTC."""
    clock.advance(0.25)
    sites = SiteRepository(session, clock)
    added = sites.add("neijiang", ORIGIN, label="Neijiang campus", map_source="maps/campuses/neijiang.yaml")
    got = sites.get(added.id)
    assert got == added
    assert got.origin == ORIGIN
    assert got.map_source == "maps/campuses/neijiang.yaml"
    assert got.created_at == datetime.fromtimestamp(clock.now(), tz=UTC)
    assert sites.get_by_name("neijiang") == added


def test_timestamps_survive_a_new_session(migrated: Engine, clock: VirtualClock) -> None:
    """Stored timestamps come back timezone-aware and equal to the clock's time, in a new session too."""
    factory = session_factory(migrated)
    with factory.begin() as session:
        site_id = _site(session, clock)
    with factory.begin() as session:
        created = SiteRepository(session, clock).get(site_id).created_at
    assert created.tzinfo is not None
    assert created.timestamp() == clock.now()


def test_sites_are_listed_oldest_first(session: Session, clock: VirtualClock) -> None:
    """list() returns every site in the order they were added."""
    sites = SiteRepository(session, clock)
    for name in ("b", "a", "c"):
        sites.add(name, ORIGIN)
        clock.advance(1)
    assert [s.name for s in sites.list()] == ["b", "a", "c"]


def test_duplicate_site_name_is_a_conflict_and_the_session_survives(
    migrated: Engine, clock: VirtualClock
) -> None:
    """Adding a taken site name raises ConflictError; the transaction goes on and commits the rest."""
    with session_factory(migrated).begin() as session:
        sites = SiteRepository(session, clock)
        sites.add("neijiang", ORIGIN)
        with pytest.raises(ConflictError, match="'neijiang' is already taken"):
            sites.add("neijiang", ORIGIN)
        sites.add("chengdu", ORIGIN)
    with session_factory(migrated).begin() as session:
        assert [s.name for s in SiteRepository(session, clock).list()] == ["neijiang", "chengdu"]


def test_site_update_changes_only_given_fields(session: Session, clock: VirtualClock) -> None:
    """update() changes the fields given and keeps the others."""
    sites = SiteRepository(session, clock)
    site = sites.add("neijiang", ORIGIN, label="old", map_source="a.yaml")
    moved = GeoOrigin(29.6, 105.1, 300.0)
    updated = sites.update(site.id, label="new", origin=moved)
    assert (updated.name, updated.label, updated.origin, updated.map_source) == (
        "neijiang",
        "new",
        moved,
        "a.yaml",
    )
    assert sites.get(site.id) == updated


def test_renaming_a_site_to_a_taken_name_is_a_conflict(session: Session, clock: VirtualClock) -> None:
    """Renaming onto another site's name raises ConflictError and leaves the site as it was."""
    sites = SiteRepository(session, clock)
    sites.add("a", ORIGIN)
    b = sites.add("b", ORIGIN)
    with pytest.raises(ConflictError):
        sites.update(b.id, name="a")
    assert sites.get(b.id).name == "b"


def test_register_adds_a_new_site_then_updates_it_in_place(session: Session, clock: VirtualClock) -> None:
    """register() adds an unknown site, and on a later start keeps its id while updating its fields."""
    sites = SiteRepository(session, clock)
    first = sites.register("neijiang", ORIGIN, label="old", map_source="a.yaml")
    moved = GeoOrigin(29.6, 105.1, 360.0)
    again = sites.register("neijiang", moved, label="new", map_source="b.yaml")
    assert again.id == first.id and again.created_at == first.created_at
    assert (again.origin, again.label, again.map_source) == (moved, "new", "b.yaml")
    assert len(sites.list()) == 1


def test_missing_sites_raise_not_found(session: Session, clock: VirtualClock) -> None:
    """get, get_by_name and update of a site that does not exist raise NotFoundError."""
    sites = SiteRepository(session, clock)
    with pytest.raises(NotFoundError, match="site 42 does not exist"):
        sites.get(42)
    with pytest.raises(NotFoundError, match="'nowhere'"):
        sites.get_by_name("nowhere")
    with pytest.raises(NotFoundError):
        sites.update(42, label="x")


def test_blank_site_name_is_refused(session: Session, clock: VirtualClock) -> None:
    """An empty or blank site name raises ValueError before touching the database."""
    with pytest.raises(ValueError, match="site name must not be empty"):
        SiteRepository(session, clock).add("  ", ORIGIN)


def test_robot_round_trip(session: Session, clock: VirtualClock) -> None:
    """A registered robot reads back by id and by (manufacturer, serial), with its profile by kind."""
    site_id = _site(session, clock)
    robots = RobotRepository(session, clock)
    cart = robots.add("acme", "cart-01", RobotKind.CART, site_id, display_name="Cart 1")
    assert (cart.kind, cart.profile, cart.enabled, cart.site_id) == (RobotKind.CART, "cart", True, site_id)
    assert robots.get(cart.id) == cart
    assert robots.get_by_serial("acme", "cart-01") == cart
    indoor = robots.add("acme", "in-01", "indoor", site_id, profile="indoor-fast")
    assert (indoor.kind, indoor.profile) == (RobotKind.INDOOR, "indoor-fast")


def test_same_serial_is_a_conflict_only_for_the_same_manufacturer(
    session: Session, clock: VirtualClock
) -> None:
    """(manufacturer, serial) is unique: another maker may reuse a serial, the same maker may not."""
    site_id = _site(session, clock)
    robots = RobotRepository(session, clock)
    robots.add("acme", "001", RobotKind.CART, site_id)
    robots.add("other", "001", RobotKind.CART, site_id)
    with pytest.raises(ConflictError, match="acme/001 is already registered"):
        robots.add("acme", "001", RobotKind.INDOOR, site_id)
    assert len(robots.list()) == 2


def test_robot_at_a_missing_site_is_not_found(session: Session, clock: VirtualClock) -> None:
    """Registering a robot at a site that does not exist raises NotFoundError (foreign key)."""
    with pytest.raises(NotFoundError, match="site 99 does not exist"):
        RobotRepository(session, clock).add("acme", "001", RobotKind.CART, 99)


def test_robot_list_filters(session: Session, clock: VirtualClock) -> None:
    """list() filters by site and by enabled, oldest first."""
    a, b = _site(session, clock, "a"), _site(session, clock, "b")
    robots = RobotRepository(session, clock)
    robots.add("acme", "1", RobotKind.CART, a)
    robots.add("acme", "2", RobotKind.INDOOR, b)
    robots.add("acme", "3", RobotKind.ROBOT, a, enabled=False)
    assert [r.serial_number for r in robots.list()] == ["1", "2", "3"]
    assert [r.serial_number for r in robots.list(site_id=a)] == ["1", "3"]
    assert [r.serial_number for r in robots.list(enabled=True)] == ["1", "2"]
    assert [r.serial_number for r in robots.list(site_id=a, enabled=False)] == ["3"]


def test_robot_update(session: Session, clock: VirtualClock) -> None:
    """update() moves a robot, renames it and disables it; a missing site raises NotFoundError."""
    a, b = _site(session, clock, "a"), _site(session, clock, "b")
    robots = RobotRepository(session, clock)
    robot = robots.add("acme", "1", RobotKind.CART, a)
    updated = robots.update(robot.id, site_id=b, display_name="Blue cart", enabled=False, kind="robot")
    assert (updated.site_id, updated.display_name, updated.enabled, updated.kind) == (
        b, "Blue cart", False, RobotKind.ROBOT,
    )  # fmt: skip
    with pytest.raises(NotFoundError, match="site 99 does not exist"):
        robots.update(robot.id, site_id=99)
    assert robots.get(robot.id).site_id == b
    with pytest.raises(NotFoundError, match="robot 99 does not exist"):
        robots.update(99, enabled=True)


def test_unknown_robot_kind_is_refused(session: Session, clock: VirtualClock) -> None:
    """A kind that is not cart, indoor or robot raises ValueError; the database refuses it too."""
    site_id = _site(session, clock)
    with pytest.raises(ValueError, match="tank"):
        RobotRepository(session, clock).add("acme", "1", "tank", site_id)
    with pytest.raises(IntegrityError), session.begin_nested():
        session.execute(
            text(
                "INSERT INTO robots (manufacturer, serial_number, kind, site_id, profile, display_name,"
                " created_at) VALUES ('acme', '2', 'tank', :site, 'cart', '', :now)"
            ),
            {"site": site_id, "now": datetime.now(UTC)},
        )


def test_missing_robot_lookups_raise_not_found(session: Session, clock: VirtualClock) -> None:
    """get and get_by_serial of an unregistered robot raise NotFoundError."""
    robots = RobotRepository(session, clock)
    with pytest.raises(NotFoundError):
        robots.get(1)
    with pytest.raises(NotFoundError, match="acme/404 is not registered"):
        robots.get_by_serial("acme", "404")
