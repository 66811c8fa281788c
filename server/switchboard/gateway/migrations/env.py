"""Alembic's entry point: run the migrations on the URL `switchboard.gateway.migrate` put in the config.

Connections come from psycopg with the libpq URL as it is (SQLAlchemy's own parser takes one host only)."""

from __future__ import annotations

import psycopg
from alembic import context
from sqlalchemy import create_engine, pool


def run_migrations_online() -> None:
    url: str = context.config.attributes["database_url"]
    engine = create_engine(
        "postgresql+psycopg://", creator=lambda: psycopg.connect(url), poolclass=pool.NullPool
    )
    with engine.connect() as connection:
        context.configure(connection=connection, transaction_per_migration=True)
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


run_migrations_online()
