"""readers' delivery slots and topics

Revision ID: 0008
Revises: 0007

- ``subscribers``: the reader's time zone, delivery hour and weekday (NULL: the operator's),
  the three as one ``slot`` key, the key before the last change and when it changed
  (``digest.slots``), and the topics they follow (NULL: everything).
  ``ix_subscribers_slot`` (status, cadence, slot, id) lets a slot's batch read only its own
  readers; ``ix_subscribers_slot_changed`` finds the few who changed since an edition.
- ``batches``: the slot a batch holds, when it is due and when it was released (every batch
  from before counts as released when it was claimed, or planned).
- ``posts.topic_ids`` and the ``topics`` table: the feeds' categories as topics.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from digest.store.columns import BigId, UTCDateTime

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("subscribers") as table:
        table.add_column(sa.Column("timezone", sa.String(64), nullable=True))
        table.add_column(sa.Column("delivery_hour", sa.SmallInteger(), nullable=True))
        table.add_column(sa.Column("delivery_weekday", sa.SmallInteger(), nullable=True))
        table.add_column(sa.Column("slot", sa.String(80), nullable=False, server_default=""))
        table.add_column(sa.Column("slot_history", sa.JSON(), nullable=True))
        table.add_column(sa.Column("slot_changed_at", UTCDateTime(), nullable=True))
        table.add_column(sa.Column("topic_ids", sa.JSON(), nullable=True))
    op.create_index("ix_subscribers_slot", "subscribers", ["status", "cadence", "slot", "id"])
    op.create_index("ix_subscribers_slot_changed", "subscribers", ["slot_changed_at"])
    with op.batch_alter_table("batches") as table:
        table.add_column(sa.Column("slot", sa.String(80), nullable=True))
        table.add_column(sa.Column("release_at", UTCDateTime(), nullable=True))
        table.add_column(sa.Column("released_at", UTCDateTime(), nullable=True))
    # Every batch from before was handed over when it was planned: never released again.
    op.execute("UPDATE batches SET released_at = COALESCE(claimed_at, sent_at, "
               "(SELECT created_at FROM editions WHERE editions.id = batches.edition_id)) "
               "WHERE released_at IS NULL")
    op.create_index("ix_batches_release", "batches", ["released_at", "release_at"])
    with op.batch_alter_table("posts") as table:
        table.add_column(sa.Column("topic_ids", sa.JSON(), nullable=False,
                                   server_default="[]"))
    op.create_table(
        "topics",
        sa.Column("id", BigId, primary_key=True),
        sa.Column("key", sa.String(200), nullable=False, unique=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("hidden", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("merged_into_id", BigId,
                  sa.ForeignKey("topics.id", ondelete="SET NULL"), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("topics")
    with op.batch_alter_table("posts") as table:
        table.drop_column("topic_ids")
    op.drop_index("ix_batches_release", table_name="batches")
    with op.batch_alter_table("batches") as table:
        for name in ("released_at", "release_at", "slot"):
            table.drop_column(name)
    op.drop_index("ix_subscribers_slot_changed", table_name="subscribers")
    op.drop_index("ix_subscribers_slot", table_name="subscribers")
    with op.batch_alter_table("subscribers") as table:
        for name in ("topic_ids", "slot_changed_at", "slot_history", "slot",
                     "delivery_weekday", "delivery_hour", "timezone"):
            table.drop_column(name)
