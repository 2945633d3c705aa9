"""edition pauses, operator alerts, reader search by address prefix

Revision ID: 0004
Revises: 0003

Adds ``editions.paused_at`` and ``editions.pause_reason`` (no new batch is claimed while
set: the operator's pause or the complaint breaker), ``operator_alerts`` (one row per alert
episode, so each is mailed once) and, on PostgreSQL, an index that serves
``email LIKE 'prefix%'`` whatever the database's collation.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("editions") as batch:
        batch.add_column(sa.Column("paused_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("pause_reason", sa.String(length=300), nullable=True))
    op.create_table(
        "operator_alerts",
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("opened_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("notified_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("key"),
    )
    if op.get_bind().dialect.name == "postgresql":
        op.execute("CREATE INDEX ix_subscribers_email_pattern "
                   "ON subscribers (email text_pattern_ops)")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP INDEX ix_subscribers_email_pattern")
    op.drop_table("operator_alerts")
    with op.batch_alter_table("editions") as batch:
        batch.drop_column("pause_reason")
        batch.drop_column("paused_at")
