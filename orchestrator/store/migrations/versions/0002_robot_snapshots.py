"""Robot snapshots: the fleet master's last known state of each robot.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create ``robot_snapshots``."""
    op.create_table(
        "robot_snapshots",
        sa.Column("robot_id", sa.Integer(), nullable=False),
        sa.Column("link", sa.String(length=20), nullable=False),
        sa.Column("link_since", sa.DateTime(timezone=True), nullable=True),
        sa.Column("state_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("order_id", sa.String(length=128), nullable=True),
        sa.Column("order_update_id", sa.Integer(), nullable=True),
        sa.Column("last_node_id", sa.String(length=128), nullable=True),
        sa.Column("driving", sa.Boolean(), nullable=True),
        sa.Column("paused", sa.Boolean(), nullable=True),
        sa.Column("battery_charge", sa.Double(), nullable=True),
        sa.Column("charging", sa.Boolean(), nullable=True),
        sa.Column("operating_mode", sa.String(length=16), nullable=True),
        sa.Column("x", sa.Double(), nullable=True),
        sa.Column("y", sa.Double(), nullable=True),
        sa.Column("theta", sa.Double(), nullable=True),
        sa.Column("map_id", sa.String(length=128), nullable=True),
        sa.Column("errors", sa.Text(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["robot_id"], ["robots.id"], name=op.f("fk_robot_snapshots_robot_id_robots"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("robot_id", name=op.f("pk_robot_snapshots")),
    )


def downgrade() -> None:
    """Drop ``robot_snapshots``."""
    op.drop_table("robot_snapshots")
