"""Notification outbox: messages to send, retried with backoff, dead letters kept for operators.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create ``outbox`` (``orchestrator.store.notify_tables.OutboxRow``)."""
    op.create_table(
        "outbox",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("to_enc", sa.LargeBinary(), nullable=False),
        sa.Column("to_masked", sa.String(length=32), nullable=False),
        sa.Column("text_enc", sa.LargeBinary(), nullable=False),
        sa.Column("text_masked", sa.Text(), nullable=False),
        sa.Column("dedupe_key", sa.String(length=200), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("kind IN ('sms', 'call')", name=op.f("ck_outbox_kind")),
        sa.CheckConstraint(
            "status IN ('held', 'pending', 'sending', 'retry', 'sent', 'dead', 'cancelled')",
            name=op.f("ck_outbox_status"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outbox")),
        sa.UniqueConstraint("dedupe_key", name=op.f("uq_outbox_dedupe_key")),
    )
    op.create_index("ix_outbox_due", "outbox", ["status", "next_attempt_at"], unique=False)


def downgrade() -> None:
    """Drop ``outbox``."""
    op.drop_index("ix_outbox_due", table_name="outbox")
    op.drop_table("outbox")
