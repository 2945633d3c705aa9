"""case-blind reader search: one index on the lower-cased address

Revision ID: 0007
Revises: 0006

Addresses keep their local part as the reader typed it (``Grace.Mensah@example.org``), so
the console's search by prefix compares lower-cased addresses. On PostgreSQL,
``ix_subscribers_email_lower`` (``lower(email) text_pattern_ops``) serves
``lower(email) LIKE 'grace.m%'`` as one range whatever the database's collation; it replaces
``ix_subscribers_email_pattern`` (0004), which served only case-exact prefixes. SQLite's LIKE
ignores ASCII case already; nothing changes there.
"""

from __future__ import annotations

from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("CREATE INDEX ix_subscribers_email_lower "
                   "ON subscribers (lower(email) text_pattern_ops)")
        op.execute("DROP INDEX IF EXISTS ix_subscribers_email_pattern")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("CREATE INDEX ix_subscribers_email_pattern "
                   "ON subscribers (email text_pattern_ops)")
        op.execute("DROP INDEX IF EXISTS ix_subscribers_email_lower")
