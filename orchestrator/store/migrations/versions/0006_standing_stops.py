"""Standing stops: the console's "stop all" and building stops survive a restart.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create ``standing_stops`` (``orchestrator.store.console_tables.StandingStopRow``)."""
    op.create_table(
        "standing_stops",
        sa.Column("scope", sa.String(length=200), nullable=False),
        sa.Column("operator", sa.String(length=64), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("since", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("scope", name=op.f("pk_standing_stops")),
    )


def downgrade() -> None:
    """Drop ``standing_stops``."""
    op.drop_table("standing_stops")
