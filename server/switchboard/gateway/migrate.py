"""Versioned schema migrations (alembic), shipped inside the package: `switchboard gateway migrate`.

Alembic runs on SQLAlchemy, whose URL parser takes one host; the database URL is a libpq URL, which may name
several (`postgresql://u:p@db1,db2/gw?target_session_attrs=read-write`, as the replicas accept). So the
engine gets its connections from psycopg itself, with the URL as it is (`migrations/env.py`)."""

from __future__ import annotations

from collections.abc import Callable

from alembic import command
from alembic.config import Config
from alembic.util.exc import CommandError

SCRIPT_LOCATION = "switchboard.gateway:migrations"


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
    except (DBAPIError, psycopg.OperationalError) as error:
        cause = error.orig if isinstance(error, DBAPIError) else error
        if isinstance(cause, psycopg.OperationalError):
            raise MigrationError(
                "cannot reach PostgreSQL at the configured database URL; is it running and reachable?"
            ) from None
        raise MigrationError(f"PostgreSQL refused the migration ({type(cause).__name__}): {cause}") from None
