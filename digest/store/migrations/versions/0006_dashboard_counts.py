"""dashboard counts: indexes that let the console's figures skip the bulk of the rows

Revision ID: 0006
Revises: 0005

The console dashboard counts readers and outcomes from scratch once a minute per web process.
Each of these indexes lets one of its counts read only the rows it reports on:

- ``ix_deliveries_outcome`` (edition_id, status) WHERE status >= 5: the rare outcomes
  (bounced, dropped, complained, refused, failed, ...) of the last editions, without reading
  the million delivered copies beside them. Most rows are written at status 1 (handed over)
  and move to 4 (delivered), so the index stays small.
- ``ix_subscribers_created``, ``ix_subscribers_confirmed`` and ``ix_subscribers_left``
  (unsubscribed_at, status): the weekly history reads each timestamp's last twelve weeks as
  a range, index only.

The indexes are built in the migration's transaction (not CONCURRENTLY), so writes to these
tables wait while they build: under 40 s for 1M readers and 6.7M delivery rows on the
benchmark machine (BENCHMARKS.md, "Console pages"). Run it between sends.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_deliveries_outcome", "deliveries", ["edition_id", "status"],
                    postgresql_where=sa.text("status >= 5"), sqlite_where=sa.text("status >= 5"))
    op.create_index("ix_subscribers_created", "subscribers", ["created_at"])
    op.create_index("ix_subscribers_confirmed", "subscribers", ["confirmed_at"])
    op.create_index("ix_subscribers_left", "subscribers", ["unsubscribed_at", "status"])


def downgrade() -> None:
    op.drop_index("ix_subscribers_left", table_name="subscribers")
    op.drop_index("ix_subscribers_confirmed", table_name="subscribers")
    op.drop_index("ix_subscribers_created", table_name="subscribers")
    op.drop_index("ix_deliveries_outcome", table_name="deliveries")
