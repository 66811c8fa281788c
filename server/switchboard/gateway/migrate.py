"""Versioned schema migrations (alembic), shipped inside the package: `switchboard gateway migrate`.

Alembic runs on SQLAlchemy, whose URL parser takes one host; the database URL is a libpq URL, which may name
several (`postgresql://u:p@db1,db2/gw?target_session_attrs=read-write`, as the replicas accept). So the
engine gets its connections from psycopg itself, with the URL as it is (`migrations/env.py`)."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

from alembic import command
from alembic.config import Config
from alembic.util.exc import CommandError

from .schema import SCRIPT_LOCATION

# How long a migration's statement waits for a table lock before the migration is rolled back and tried again
# (`migrate --lock-timeout`), how many times it is tried, and the pause between tries.
LOCK_TIMEOUT_SECONDS = 5.0
LOCK_ATTEMPTS = 4
LOCK_RETRY_PAUSE_SECONDS = 1.0


class MigrationError(Exception):
    """A migration that could not run, in one line (never the URL: it may hold a password)."""


def alembic_config(database_url: str, lock_timeout: float = LOCK_TIMEOUT_SECONDS) -> Config:
    if not database_url.startswith(("postgresql://", "postgres://")):
        raise MigrationError("the database URL must start with postgresql://")
    config = Config()
    config.set_main_option("script_location", SCRIPT_LOCATION)
    # Stored as an attribute, not a main option: ConfigParser would interpolate a `%` in a password.
    config.attributes["database_url"] = database_url
    config.attributes["lock_timeout_ms"] = max(1, round(lock_timeout * 1000))
    return config


@dataclass(frozen=True)
class Upgraded:
    """What `upgrade` found and left: the revision when it began (None: no schema) and at its end. `ahead`:
    a later release migrated the database (a revision this one does not know), so nothing was done."""

    before: str | None
    after: str | None
    ahead: bool = False


def upgrade(
    database_url: str, revision: str = "head", lock_timeout: float = LOCK_TIMEOUT_SECONDS
) -> Upgraded:
    """Up to `revision`. A database a later release migrated is left as it is: its migrations keep this
    release working (a rollback deploy runs `migrate` too), and alembic cannot read a revision it lacks."""
    from . import schema

    before = current_revision(database_url)
    if schema.ahead(before):
        return Upgraded(before, before, ahead=True)
    _run(command.upgrade, database_url, revision, lock_timeout)
    return Upgraded(before, current_revision(database_url))


def current_revision(database_url: str) -> str | None:
    """The database's alembic revision; None when it has no schema yet."""
    import psycopg

    from . import schema

    with psycopg.connect(database_url, autocommit=True) as conn:
        try:
            row = conn.execute(schema.VERSION_QUERY).fetchone()
        except psycopg.errors.UndefinedTable:
            return None
    return row[0] if row else None


def downgrade(
    database_url: str,
    revision: str,
    lock_timeout: float = LOCK_TIMEOUT_SECONDS,
    *,
    drop_everything: bool = False,
) -> None:
    """Down to `revision` (docs/gateway.md says what each step gives up): one this release ships, or `base`
    (every table dropped) only with `drop_everything`. Raises `DowngradeRefused` otherwise."""
    from . import schema

    if problem := down_target_problem(revision, drop_everything):
        raise DowngradeRefused(problem)
    if schema.ahead(version := current_revision(database_url)):
        raise MigrationError(
            f"refusing to go down: the database is at revision {version}, which a later release made (this"
            f" one ships up to {schema.shipped().head} and does not have that release's downgrades); run"
            " `migrate --down-to` with the release that made it"
        )
    _run(command.downgrade, database_url, revision, lock_timeout)


class DowngradeRefused(Exception):
    """`migrate --down-to` was given a target it does not go to (a usage error: nothing was changed)."""


def down_target_problem(revision: str, drop_everything: bool) -> str | None:
    """Why `--down-to revision` is refused, or None. Only a revision id this release ships is taken: `base`
    (or a relative target such as `-1`, which can reach below the first revision) would drop every table,
    accounts and the ledger included."""
    from .schema import shipped

    if revision == "base":
        if drop_everything:
            return None
        return (
            "refusing to go down to base: it drops every table (accounts, the ledger, sign-ins);"
            " add --drop-everything if that is what you mean"
        )
    known = sorted(shipped().known)
    if revision not in known:
        return (
            f"--down-to takes a revision id this release ships ({known[0]} to {known[-1]}), not {revision!r}"
            " (relative targets are refused: they can reach below the first revision)"
        )
    return None


def _run(step: Callable[[Config, str], None], database_url: str, revision: str, lock_timeout: float) -> None:
    """`step`, tried again (up to `LOCK_ATTEMPTS` in all) when a migration gave up waiting for a lock: it
    was rolled back, and those before it stay applied."""
    for attempt in range(1, LOCK_ATTEMPTS + 1):
        try:
            _run_once(step, database_url, revision, lock_timeout)
            return
        except _LockTimeout:
            waited = f"a migration waited {lock_timeout:g} s for a table lock another session holds"
            if attempt == LOCK_ATTEMPTS:
                raise MigrationError(
                    f"{waited}, {LOCK_ATTEMPTS} times; it was rolled back (those before it stay applied)."
                    " Find the long transaction in pg_stat_activity, or run migrate again when it is quieter"
                ) from None
            print(
                f"switchboard gateway: {waited}; rolled back, trying again"
                f" ({attempt + 1} of {LOCK_ATTEMPTS})",
                file=sys.stderr,
            )
            time.sleep(LOCK_RETRY_PAUSE_SECONDS)


class _LockTimeout(Exception):
    pass


def _run_once(
    step: Callable[[Config, str], None], database_url: str, revision: str, lock_timeout: float
) -> None:
    import psycopg
    from sqlalchemy.exc import DBAPIError

    config = alembic_config(database_url, lock_timeout)
    try:
        step(config, revision)
    except CommandError as error:  # an unknown revision (a database newer than this release, a typo)
        raise MigrationError(f"alembic refused: {error}") from None
    except (DBAPIError, psycopg.Error) as error:
        cause = error.orig if isinstance(error, DBAPIError) else error
        if isinstance(cause, psycopg.errors.LockNotAvailable):
            raise _LockTimeout() from None
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
