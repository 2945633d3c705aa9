"""Migration 0002 on a SQLite database with readers: rows kept, ids never reused afterwards."""

from __future__ import annotations

from alembic import command
from sqlalchemy import create_engine, text

from digest.store import migrate as schema


def test_upgrade_keeps_readers_and_stops_id_reuse(tmp_path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'old.db'}")
    cfg = schema.alembic_config(str(engine.url))
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0001")
        for n in (1, 2):
            conn.execute(text(
                "INSERT INTO subscribers (email, email_hash, status, cadence, paused, created_at)"
                f" VALUES ('r{n}@example.org', 'h{n}', 'active', 'weekly', 0, '2026-01-01')"))
    assert schema.upgrade(engine) == ("0001", schema.head_revision())  # 0002 onwards applied
    with engine.begin() as conn:
        rows = conn.execute(text("SELECT id, email, link_key FROM subscribers ORDER BY id")).all()
        assert rows == [(1, "r1@example.org", None), (2, "r2@example.org", None)]
        conn.execute(text("DELETE FROM subscribers WHERE id = 2"))
        conn.execute(text(
            "INSERT INTO subscribers (email, email_hash, status, cadence, paused, created_at)"
            " VALUES ('r3@example.org', 'h3', 'active', 'weekly', 0, '2026-01-01')"))
        assert conn.execute(text(
            "SELECT id FROM subscribers WHERE email = 'r3@example.org'")).scalar() == 3
    engine.dispose()
