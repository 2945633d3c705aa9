"""provider events by reader: an index on webhook_events (email_hash, received_at)

Revision ID: 0005
Revises: 0004

A reader's page in the console lists the provider's events about them, newest first, found
by the keyed address hash. Without this index that query reads every stored event.
"""

from __future__ import annotations

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_webhook_events_reader", "webhook_events", ["email_hash", "received_at"])


def downgrade() -> None:
    op.drop_index("ix_webhook_events_reader", table_name="webhook_events")
