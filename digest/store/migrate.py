"""Create or migrate the database schema with Alembic (`digest init`)."""

from __future__ import annotations

from functools import cache
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine
from sqlalchemy.exc import DBAPIError

from digest.errors import ConfigError

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


def alembic_config(url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


@cache
def _scripts() -> ScriptDirectory:
    """The migrations shipped with this code; they do not change while it runs."""
    return ScriptDirectory.from_config(alembic_config("sqlite://"))


def head_revision() -> str | None:
    """The newest migration this code knows: what `digest init` brings a database to."""
    return _scripts().get_current_head()


def known_revision(revision: str) -> bool:
    """Whether ``revision`` is one of this code's migrations (not one of a newer release)."""
    return revision in {script.revision for script in _scripts().walk_revisions()}


def database_revision(conn: Connection) -> str | None:
    """The revision the database is at; None for a database `digest init` never ran on."""
    return MigrationContext.configure(conn).get_current_revision()


def upgrade(engine: Engine) -> tuple[str | None, str | None]:
    """Bring the schema to the newest migration; harmless to run again.

    Returns the revision before and after (``None`` before means a new database).

    A database that cannot be reached stops with a ConfigError naming DIGEST_DATABASE_URL
    (password hidden) and the server's own reason, instead of a driver traceback.
    """
    try:
        with engine.connect():
            pass
    except DBAPIError as exc:
        shown = engine.url.render_as_string(hide_password=True)
        reason = str(exc.orig or exc).strip().splitlines()[0]
        raise ConfigError(
            f"DIGEST_DATABASE_URL: cannot open the database {shown}: {reason}"
        ) from exc
    cfg = alembic_config(engine.url.render_as_string(hide_password=False))
    with engine.begin() as conn:
        before = MigrationContext.configure(conn).get_current_revision()
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")
        after = MigrationContext.configure(conn).get_current_revision()
    return before, after
