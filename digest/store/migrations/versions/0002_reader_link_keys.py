"""reader link keys; reader ids never reused on SQLite

Revision ID: 0002
Revises: 0001

Adds ``subscribers.link_key`` (signed into each reader's links, replaced on erasure; NULL for
readers from before, whose old links keep working until they are erased) and, on SQLite,
rebuilds ``subscribers`` with AUTOINCREMENT so a deleted reader's id is never handed out again.
PostgreSQL sequences never reuse ids, so there only the column is added.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    sqlite = op.get_bind().dialect.name == "sqlite"
    with op.batch_alter_table(
        "subscribers",
        recreate="always" if sqlite else "auto",
        table_kwargs={"sqlite_autoincrement": True} if sqlite else {},
    ) as batch:
        batch.add_column(sa.Column("link_key", sa.String(length=32), nullable=True))


def downgrade() -> None:
    sqlite = op.get_bind().dialect.name == "sqlite"
    with op.batch_alter_table("subscribers", recreate="always" if sqlite else "auto") as batch:
        batch.drop_column("link_key")
