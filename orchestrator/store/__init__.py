"""robopost orchestrator.store: SQLAlchemy models, repositories and Alembic migrations.

Typical use (the composition root does this once)::

    engine = make_engine(settings.database.url)    # sqlite:///var/robopost.db by default
    upgrade(engine)                                # create / migrate the tables
    factory = session_factory(engine)
    with factory.begin() as session:
        sites = SiteRepository(session, clock).list()
"""

from orchestrator.store.engine import make_engine, session_factory
from orchestrator.store.errors import ConflictError, NotFoundError, StoreError
from orchestrator.store.migrate import current_revision, downgrade, head_revision, upgrade
from orchestrator.store.records import RobotKind, RobotRecord, SiteRecord
from orchestrator.store.repositories import RobotRepository, SiteRepository

__all__ = [
    "ConflictError",
    "NotFoundError",
    "RobotKind",
    "RobotRecord",
    "RobotRepository",
    "SiteRecord",
    "SiteRepository",
    "StoreError",
    "current_revision",
    "downgrade",
    "head_revision",
    "make_engine",
    "session_factory",
    "upgrade",
]
