"""Versioned schema migrations (alembic), shipped inside the package: `switchboard gateway migrate`.

Alembic runs on SQLAlchemy, whose URL parser takes one host; the database URL is a libpq URL, which may name
several (`postgresql://u:p@db1,db2/gw?target_session_attrs=read-write`, as the replicas accept). So the
engine gets its connections from psycopg itself, with the URL as it is (`migrations/env.py`)."""

from __future__ import annotations

from collections.abc import Callable

from alembic import command
from alembic.config import Config
from alembic.util.exc import CommandError

from .schema import SCRIPT_LOCATION


class MigrationError(Exception):
    """A migration that could not run, in one line (never the URL: it may hold a password)."""


def alembic_config(database_url: str) -> Config:
    if not database_url.startswith(("postgresql://", "postgres://")):
        raise MigrationError("the database URL must start with postgresql://")
    config = Config()
    config.set_main_option("script_location", SCRIPT_LOCATION)
    # Stored as an attribute, not a main option: ConfigParser would interpolate a `%` in a password.
    config.attributes["database_url"] = database_url
    return config


def upgrade(database_url: str, revision: str = "head") -> None:
    _run(command.upgrade, database_url, revision)


def downgrade(database_url: str, revision: str) -> None:
    """Down to `revision` (docs/gateway.md says what each step gives up)."""
    _run(command.downgrade, database_url, revision)


def _run(step: Callable[[Config, str], None], database_url: str, revision: str) -> None:
    import psycopg
    from sqlalchemy.exc import DBAPIError

    config = alembic_config(database_url)
    try:
        step(config, revision)
    except CommandError as error:  # an unknown revision (a database newer than this release, a typo)
        raise MigrationError(f"alembic refused: {error}") from None
    except (DBAPIError, psycopg.Error) as error:
        cause = error.orig if isinstance(error, DBAPIError) else error
        raise MigrationError(database_error_text(cause or error)) from None


def database_error_text(error: BaseException) -> str:
    """One line on what the database said, for the operator: PostgreSQL's own message where it sent one
    (never the URL: a malformed one is only called malformed, since libpq's parse errors quote it)."""
    import psycopg

    if isinstance(error, psycopg.errors.UndefinedTable):
        return "the database has no Switchboard tables yet: run `switchboard gateway migrate` first."
    if not isinstance(error, psycopg.Error):
        return f"the database failed ({type(error).__name__})."
    if error.sqlstate is None and isinstance(error, psycopg.ProgrammingError):
        return "the database URL is malformed (its form: postgresql://user:password@host:port/database)."
    said = (error.diag.message_primary if error.sqlstate else None) or str(error).strip().splitlines()[0]
    if error.sqlstate is None or error.sqlstate.startswith("08"):  # no server answered, or the link broke
        return f"cannot reach PostgreSQL at the configured database URL: {said}"
    return f"PostgreSQL refused ({error.sqlstate}): {said}"
