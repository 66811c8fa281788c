"""The schema a replica runs against: the database's alembic revision against the newest this release ships.

- **Behind** (a known revision older than this release's head, or no schema at all): the replica's ledger
  functions may be missing or older than the calls it makes (a turn served upstream and then impossible to
  charge). `serve` refuses to start; `/readyz` answers 503 while it lasts (PostgreSQL was unreachable at
  start-up, or the schema was taken down since).
- **Ahead** (a revision this release does not know: a later release migrated): served, with a warning at
  start-up. Migrations keep the previous release's replicas working (docs/gateway.md, PostgreSQL), which
  is what lets a deploy migrate before its new replicas replace the old ones.

The head is read from the alembic scripts packaged with this release, never written down twice."""

from __future__ import annotations

import functools
from dataclasses import dataclass

SCRIPT_LOCATION = "switchboard.gateway:migrations"
VERSION_QUERY = "SELECT version_num FROM alembic_version"
# PostgreSQL's SQLSTATEs for a function, table or column that does not exist: against a working ledger, a
# schema older (or newer, by more than one release) than the replica's code, i.e. a deploy error, not an
# outage.
SCHEMA_SQLSTATES = frozenset({"42883", "42P01", "42703"})


@dataclass(frozen=True)
class Revisions:
    head: str
    known: frozenset[str]


@functools.cache
def shipped() -> Revisions:
    """This release's head revision and every revision it knows, from its packaged alembic scripts."""
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    config = Config()
    config.set_main_option("script_location", SCRIPT_LOCATION)
    scripts = ScriptDirectory.from_config(config)
    (head,) = scripts.get_heads()  # one line of history: a second head is a packaging mistake
    return Revisions(head, frozenset(script.revision for script in scripts.walk_revisions()))


def behind(version: str | None) -> str | None:
    """What to tell the operator when the database at `version` (None: no schema) is older than this
    release; None when it is at this release's head or ahead of it."""
    revisions = shipped()
    if version == revisions.head or (version is not None and version not in revisions.known):
        return None
    return (
        f"schema behind: the database is at revision {version or '(none)'}, this release needs "
        f"{revisions.head}; run `switchboard gateway migrate`"
    )


def ahead(version: str | None) -> bool:
    """The database was migrated by a later release (a revision this one does not know)."""
    return version is not None and version not in shipped().known
