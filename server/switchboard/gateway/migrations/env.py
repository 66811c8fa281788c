"""Alembic's entry point: run the migrations on the URL `switchboard.gateway.migrate` put in the config.

Connections come from psycopg with the libpq URL as it is (SQLAlchemy's own parser takes one host only).

Two `migrate`s at once (a deploy started from two hosts) take turns: each first takes a session-level
advisory lock, and alembic reads the schema's revision only once it holds it, so the second finds the work
done instead of failing on a duplicate key or a table that already exists."""

from __future__ import annotations

import psycopg
from alembic import context
from sqlalchemy import create_engine, pool

# pg_advisory_lock's key for "a migration runs": any constant of our own (b"SWBGMIGR" as a signed bigint).
MIGRATION_LOCK = int.from_bytes(b"SWBGMIGR", "big", signed=True)


def run_migrations_online() -> None:
    url: str = context.config.attributes["database_url"]
    engine = create_engine(
        "postgresql+psycopg://", creator=lambda: psycopg.connect(url), poolclass=pool.NullPool
    )
    with engine.connect() as connection:
        # Held by the session, so past the commit that ends SQLAlchemy's implicit transaction, and released
        # when the connection closes (also if this process dies).
        connection.exec_driver_sql(f"SELECT pg_advisory_lock({MIGRATION_LOCK})")
        connection.commit()
        context.configure(connection=connection, transaction_per_migration=True)
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


run_migrations_online()
