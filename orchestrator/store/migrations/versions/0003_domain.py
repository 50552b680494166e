"""Domain tables: parcels, orders, tasks and their events; idempotency keys, audit log, users, pickup codes.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create the domain tables (``orchestrator.store.domain_tables``)."""
    op.create_table(
        "audit_log",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("actor", sa.String(length=64), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("action", sa.String(length=64), nullable=False),
        sa.Column("entity", sa.String(length=32), nullable=False),
        sa.Column("entity_id", sa.String(length=160), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_log")),
    )
    op.create_index(op.f("ix_audit_log_actor"), "audit_log", ["actor"], unique=False)
    op.create_index(op.f("ix_audit_log_at"), "audit_log", ["at"], unique=False)
    op.create_index("ix_audit_log_entity", "audit_log", ["entity", "entity_id"], unique=False)
    op.create_table(
        "idempotency_keys",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("client", sa.String(length=64), nullable=False),
        sa.Column("idempotency_key", sa.String(length=128), nullable=False),
        sa.Column("request_hash", sa.String(length=128), nullable=False),
        sa.Column("status", sa.Integer(), nullable=False),
        sa.Column("media_type", sa.String(length=100), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_idempotency_keys")),
        sa.UniqueConstraint(
            "client", "idempotency_key", name=op.f("uq_idempotency_keys_client_idempotency_key")
        ),
    )
    op.create_index(op.f("ix_idempotency_keys_created_at"), "idempotency_keys", ["created_at"], unique=False)
    op.create_table(
        "orders",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("partner", sa.String(length=64), nullable=False),
        sa.Column("partner_ref", sa.String(length=128), nullable=False),
        sa.Column("idempotency_key", sa.String(length=128), nullable=True),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("place", sa.String(length=128), nullable=False),
        sa.Column("origin", sa.String(length=128), nullable=True),
        sa.Column("earliest_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("latest_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("size", sa.String(length=1), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("eta", sa.DateTime(timezone=True), nullable=True),
        sa.Column("robot", sa.String(length=128), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("contact_name_enc", sa.LargeBinary(), nullable=True),
        sa.Column("contact_phone_enc", sa.LargeBinary(), nullable=True),
        sa.Column("name_masked", sa.String(length=128), nullable=False),
        sa.Column("phone_masked", sa.String(length=32), nullable=False),
        sa.Column("phone_hmac", sa.String(length=128), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("personal_data_purged_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("kind IN ('pickup', 'coffee')", name=op.f("ck_orders_kind")),
        sa.CheckConstraint("size IN ('S', 'M', 'L')", name=op.f("ck_orders_size")),
        sa.CheckConstraint(
            "state IN ('created', 'accepted', 'refused', 'robot_assigned', 'robot_at_door', 'loaded', 'done', 'cancelled', 'failed')",
            name=op.f("ck_orders_state"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_orders")),
        sa.UniqueConstraint("partner", "idempotency_key", name=op.f("uq_orders_partner_idempotency_key")),
        sa.UniqueConstraint("partner", "partner_ref", name=op.f("uq_orders_partner_partner_ref")),
    )
    op.create_index(op.f("ix_orders_finished_at"), "orders", ["finished_at"], unique=False)
    op.create_index(op.f("ix_orders_phone_hmac"), "orders", ["phone_hmac"], unique=False)
    op.create_index(op.f("ix_orders_state"), "orders", ["state"], unique=False)
    op.create_table(
        "parcels",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("tracking_number", sa.String(length=64), nullable=False),
        sa.Column("size", sa.String(length=1), nullable=False),
        sa.Column("building", sa.String(length=128), nullable=True),
        sa.Column("room", sa.String(length=128), nullable=True),
        sa.Column("dorm", sa.String(length=128), nullable=True),
        sa.Column("place", sa.String(length=128), nullable=True),
        sa.Column("office", sa.Boolean(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("window_id", sa.String(length=128), nullable=True),
        sa.Column("stop", sa.String(length=128), nullable=True),
        sa.Column("cart", sa.String(length=128), nullable=True),
        sa.Column("compartment", sa.String(length=128), nullable=True),
        sa.Column("robot", sa.String(length=128), nullable=True),
        sa.Column("rolled", sa.Integer(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("recipient_name_enc", sa.LargeBinary(), nullable=True),
        sa.Column("recipient_phone_enc", sa.LargeBinary(), nullable=True),
        sa.Column("name_masked", sa.String(length=128), nullable=False),
        sa.Column("phone_masked", sa.String(length=32), nullable=False),
        sa.Column("phone_hmac", sa.String(length=128), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("delivered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("personal_data_purged_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("size IN ('S', 'M', 'L')", name=op.f("ck_parcels_size")),
        sa.CheckConstraint(
            "state IN ('received', 'sorted', 'loaded', 'at_stop', 'picked_up', 'returned', 'handed_off', 'in_robot', 'delivered', 'failed')",
            name=op.f("ck_parcels_state"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_parcels")),
        sa.UniqueConstraint("tracking_number", name=op.f("uq_parcels_tracking_number")),
    )
    op.create_index(op.f("ix_parcels_delivered_at"), "parcels", ["delivered_at"], unique=False)
    op.create_index(op.f("ix_parcels_phone_hmac"), "parcels", ["phone_hmac"], unique=False)
    op.create_index(op.f("ix_parcels_state"), "parcels", ["state"], unique=False)
    op.create_index(op.f("ix_parcels_stop"), "parcels", ["stop"], unique=False)
    op.create_index(op.f("ix_parcels_window_id"), "parcels", ["window_id"], unique=False)
    op.create_table(
        "tasks",
        sa.Column("id", sa.String(length=160), nullable=False),
        sa.Column("robot", sa.String(length=128), nullable=False),
        sa.Column("sequence", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=128), nullable=False),
        sa.Column("place", sa.String(length=128), nullable=False),
        sa.Column("window_id", sa.String(length=128), nullable=True),
        sa.Column("parcels", sa.Text(), nullable=False),
        sa.Column("orders", sa.Text(), nullable=False),
        sa.Column("start_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("end_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "state IN ('planned', 'released', 'active', 'done', 'failed', 'cancelled')",
            name=op.f("ck_tasks_state"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tasks")),
        sa.UniqueConstraint("robot", "sequence", name=op.f("uq_tasks_robot_sequence")),
    )
    op.create_index(op.f("ix_tasks_state"), "tasks", ["state"], unique=False)
    op.create_table(
        "users",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("username", sa.String(length=64), nullable=False),
        sa.Column("password_hash", sa.Text(), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("enabled", sa.Boolean(), server_default=sa.true(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("role IN ('viewer', 'operator', 'admin')", name=op.f("ck_users_role")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_users")),
        sa.UniqueConstraint("username", name=op.f("uq_users_username")),
    )
    op.create_table(
        "order_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("order_id", sa.String(length=64), nullable=False),
        sa.Column("sequence", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("from_state", sa.String(length=16), nullable=True),
        sa.Column("to_state", sa.String(length=16), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("data", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["order_id"], ["orders.id"], name=op.f("fk_order_events_order_id_orders"), ondelete="RESTRICT"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_order_events")),
        sa.UniqueConstraint("order_id", "sequence", name=op.f("uq_order_events_order_id_sequence")),
    )
    op.create_table(
        "parcel_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("parcel_id", sa.Integer(), nullable=False),
        sa.Column("sequence", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("from_state", sa.String(length=16), nullable=True),
        sa.Column("to_state", sa.String(length=16), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("data", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["parcel_id"],
            ["parcels.id"],
            name=op.f("fk_parcel_events_parcel_id_parcels"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_parcel_events")),
        sa.UniqueConstraint("parcel_id", "sequence", name=op.f("uq_parcel_events_parcel_id_sequence")),
    )
    op.create_table(
        "pickup_codes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("parcel_id", sa.Integer(), nullable=False),
        sa.Column("cart", sa.String(length=128), nullable=False),
        sa.Column("window_id", sa.String(length=128), nullable=False),
        sa.Column("code_hmac", sa.String(length=128), nullable=False),
        sa.Column("tail_hmac", sa.String(length=128), nullable=True),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["parcel_id"], ["parcels.id"], name=op.f("fk_pickup_codes_parcel_id_parcels"), ondelete="RESTRICT"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_pickup_codes")),
        sa.UniqueConstraint(
            "cart", "window_id", "code_hmac", name=op.f("uq_pickup_codes_cart_window_id_code_hmac")
        ),
    )
    op.create_index(op.f("ix_pickup_codes_parcel_id"), "pickup_codes", ["parcel_id"], unique=False)
    op.create_table(
        "task_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("task_id", sa.String(length=160), nullable=False),
        sa.Column("sequence", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("from_state", sa.String(length=16), nullable=True),
        sa.Column("to_state", sa.String(length=16), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("data", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["task_id"], ["tasks.id"], name=op.f("fk_task_events_task_id_tasks"), ondelete="RESTRICT"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_task_events")),
        sa.UniqueConstraint("task_id", "sequence", name=op.f("uq_task_events_task_id_sequence")),
    )


def downgrade() -> None:
    """Drop the domain tables."""
    op.drop_table("task_events")
    op.drop_index(op.f("ix_pickup_codes_parcel_id"), table_name="pickup_codes")
    op.drop_table("pickup_codes")
    op.drop_table("parcel_events")
    op.drop_table("order_events")
    op.drop_table("users")
    op.drop_index(op.f("ix_tasks_state"), table_name="tasks")
    op.drop_table("tasks")
    op.drop_index(op.f("ix_parcels_window_id"), table_name="parcels")
    op.drop_index(op.f("ix_parcels_stop"), table_name="parcels")
    op.drop_index(op.f("ix_parcels_state"), table_name="parcels")
    op.drop_index(op.f("ix_parcels_phone_hmac"), table_name="parcels")
    op.drop_index(op.f("ix_parcels_delivered_at"), table_name="parcels")
    op.drop_table("parcels")
    op.drop_index(op.f("ix_orders_state"), table_name="orders")
    op.drop_index(op.f("ix_orders_phone_hmac"), table_name="orders")
    op.drop_index(op.f("ix_orders_finished_at"), table_name="orders")
    op.drop_table("orders")
    op.drop_index(op.f("ix_idempotency_keys_created_at"), table_name="idempotency_keys")
    op.drop_table("idempotency_keys")
    op.drop_index("ix_audit_log_entity", table_name="audit_log")
    op.drop_index(op.f("ix_audit_log_at"), table_name="audit_log")
    op.drop_index(op.f("ix_audit_log_actor"), table_name="audit_log")
    op.drop_table("audit_log")
