"""Alembic's entry point: run the migrations on the URL `switchboard.gateway.migrate` put in the config.

Connections come from psycopg with the libpq URL as it is (SQLAlchemy's own parser takes one host only).

Two `migrate`s at once (a deploy started from two hosts) take turns: each first takes a session-level
advisory lock, and alembic reads the schema's revision only once it holds it, so the second finds the work
done instead of failing on a duplicate key or a table that already exists.

Once it holds that lock, every statement waits at most `lock_timeout` for a table lock (`migrate.py` sets it,
5 s by default): an ALTER waiting behind a long transaction would otherwise queue every ledger statement on
that table behind itself. A migration that times out is rolled back, and `migrate` tries again."""

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
        # Only now: the advisory lock itself waits as long as another migrate runs.
        lock_timeout_ms = int(context.config.attributes.get("lock_timeout_ms", 0))
        connection.exec_driver_sql(f"SET lock_timeout = {lock_timeout_ms}")
        connection.commit()
        context.configure(connection=connection, transaction_per_migration=True)
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


run_migrations_online()
