"""Alembic migrations; `digest init` applies them (see digest.store.migrate)."""
