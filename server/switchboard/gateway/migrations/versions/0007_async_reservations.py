"""A new turn's reservation commits without waiting for its WAL to reach the disk; a settlement still waits.

On a ledger with durable commits (`synchronous_commit` on, as production runs), every reservation waited for
its WAL flush on the way to the turn's first token: about 0.3 ms idle on a virtual disk, more under load.
Now the common case of `ledger_reserve` (a new turn id, reserved in two statements) sets
`synchronous_commit` off for its own transaction. Everything that moves money keeps waiting: settlements,
the reaper, checkpoints, and the reservations that settle an orphaned attempt on the way.

A crash of PostgreSQL (not a restart: a shutdown writes out every commit) can lose such a reservation, up to
`wal_writer_delay` × 3 of them. What a lost reservation costs is its hold, for the rest of its turn: the
turn's settlement still charges it. The new `ledger_settle` overload takes the turn's models, route reason
and replica, and settles a turn it cannot find as if it had reserved nothing (inserted, then charged within
the account's limit, as usage past a reservation is). The twelve-argument `ledger_settle` stays, unchanged,
for replicas of the previous release during a rolling upgrade.

The bodies are 0006's, changed only where said (read from 0006, which is never edited).

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

import importlib

from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

_PREVIOUS = importlib.import_module("switchboard.gateway.migrations.versions.0006_ledger_fast_paths")


def _replaced(text: str, old: str, new: str) -> str:
    if text.count(old) != 1:
        raise RuntimeError(f"0006's function no longer reads as 0007 expects: {old[:60]!r}")
    return text.replace(old, new)


_RESERVE = _replaced(
    _PREVIOUS._RESERVE,  # pyright: ignore[reportPrivateUsage]
    """        IF FOUND THEN
            outcome := 'reserved';
            RETURN;
        END IF;
        -- A turn id seen before""",
    """        IF FOUND THEN
            -- Losing this in a crash loses only the hold: the turn's settlement charges it anyway.
            PERFORM set_config('synchronous_commit', 'off', true);
            outcome := 'reserved';
            RETURN;
        END IF;
        -- A turn id seen before""",
)

# The new overload's arguments: the previous release's twelve, then the turn's models, reason and replica.
_NEW_SETTLE = (
    "ledger_settle(text, text, text, integer, text, bigint, bigint, bigint, bigint, bigint, text, jsonb,"
    " text, text, text, text)"
)
_SETTLE = _replaced(
    _replaced(
        _PREVIOUS._SETTLE,  # pyright: ignore[reportPrivateUsage]
        """    p_terms jsonb,
    OUT status text, OUT credits_h bigint, OUT overage_h bigint, OUT already boolean""",
        """    p_terms jsonb, p_model text, p_routed text, p_route_reason text, p_replica text,
    OUT status text, OUT credits_h bigint, OUT overage_h bigint, OUT already boolean""",
    ),
    """    IF NOT FOUND THEN
        RAISE EXCEPTION 'no reservation for turn %', p_turn USING ERRCODE = 'no_data_found';
    END IF;""",
    """    IF NOT FOUND THEN
        -- Its reservation committed asynchronously and PostgreSQL crashed before writing it: the turn is
        -- charged all the same, as one holding nothing (within the account's limit).
        INSERT INTO turns (account_id, turn_id, period, model_id, routed_model, route_reason, status,
                           reserved_h, replica, expires_at, checkpoint_h)
        VALUES (p_account, p_turn, p_period, p_model, p_routed, p_route_reason, 'reserved',
                0, p_replica, now(), 0)
        RETURNING * INTO t;
    END IF;""",
).replace("CREATE OR REPLACE FUNCTION ledger_settle(", "CREATE FUNCTION ledger_settle(", 1)


def upgrade() -> None:
    op.execute(_RESERVE)
    op.execute(_SETTLE)


def downgrade() -> None:
    op.execute(f"DROP FUNCTION {_NEW_SETTLE}")
    op.execute(_PREVIOUS._RESERVE)  # pyright: ignore[reportPrivateUsage]
