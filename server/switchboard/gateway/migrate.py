"""Versioned schema migrations (alembic), shipped inside the package: `switchboard gateway migrate`."""

from __future__ import annotations

from alembic import command
from alembic.config import Config

SCRIPT_LOCATION = "switchboard.gateway:migrations"


def alembic_url(database_url: str) -> str:
    """The SQLAlchemy form of a libpq URL, on the psycopg 3 driver."""
    for prefix in ("postgresql://", "postgres://"):
        if database_url.startswith(prefix):
            return "postgresql+psycopg://" + database_url[len(prefix) :]
    raise ValueError("the database URL must start with postgresql://")


def alembic_config(database_url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", SCRIPT_LOCATION)
    # Stored as an attribute, not a main option: ConfigParser would interpolate a `%` in a password.
    config.attributes["database_url"] = alembic_url(database_url)
    return config


def upgrade(database_url: str, revision: str = "head") -> None:
    command.upgrade(alembic_config(database_url), revision)
