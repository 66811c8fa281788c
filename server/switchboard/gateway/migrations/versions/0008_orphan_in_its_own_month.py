"""A repeat of a turn id settles the orphaned attempt it meets in the orphan's own month, not the repeat's.

`ledger_reserve` settles an expired attempt of the same turn id (its replica stopped) before it runs the new
one. It did so against the balance row it had locked, the new request's month (`p_period`), while the orphan
holds its credits in the month it was reserved in (`turns.period`). A turn id retried across a month
boundary before any sweep then released the orphan's hold from the wrong month (and charged a cut turn
there): the new month's `reserved_h` went below zero (its CHECK refused the repeat, a retryable 503 until a
sweep), or, beside other holds, it committed, leaving a hold nobody releases in the old month and a hole in
the new one for a later settlement or sweep to fall into. `ledger_settle` (the period of the attempt it
settles, which only `ledger_reserve` sets) and `ledger_reap` (the turn's own `period`) were right already.

Now the orphan's month's balance row is locked too, and the orphan settled against it. Lock order: every
function locks balance rows before the turn's row; two balance rows of one account are locked only here,
always the request's month first (the common case's `UPDATE` has locked it before the function can know of
an orphan) and then an older one, so two reservations never wait on each other in a cycle, and a settlement
or sweep of the orphan (its month's row, then the turn's) only makes this one wait. An orphan in a newer
month than the request (a replica whose clock is behind the boundary) would need the other order: it is
left to the sweep, and the repeat is refused as in progress (retryable) until then.

The body is 0007's, changed only where said (read from 0007, which is never edited). Same signature.

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

import importlib

from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

_PREVIOUS = importlib.import_module("switchboard.gateway.migrations.versions.0007_async_reservations")


def _replaced(text: str, old: str, new: str) -> str:
    if text.count(old) != 1:
        raise RuntimeError(f"0007's function no longer reads as 0008 expects: {old[:60]!r}")
    return text.replace(old, new)


_RESERVE = _replaced(
    _replaced(
        _PREVIOUS._RESERVE,  # pyright: ignore[reportPrivateUsage]
        """    charged record;
BEGIN""",
        """    charged record;
    own account_periods;
    own_period text;
BEGIN""",
    ),
    """    b := ledger_lock_balance(p_account, p_period);
    SELECT * INTO t FROM turns WHERE account_id = p_account AND turn_id = p_turn FOR UPDATE;
    IF FOUND THEN
        IF t.status = 'reserved' THEN
            -- A live attempt, or one of the previous release whose checkpoint only its reaper can price.
            IF t.expires_at >= now() OR (t.checkpoint_h IS NULL AND t.output_seen) THEN
                outcome := 'in_progress';
                RETURN;
            END IF;
            -- Its replica stopped: settle it at its checkpoint first, as the reaper would.
            SELECT * INTO charged FROM ledger_charge_checkpoint(t, b, coalesce(t.checkpoint_h, 0), p_terms);
""",
    """    b := ledger_lock_balance(p_account, p_period);
    -- An attempt still reserved may hold its credits in an earlier month (the month turned since): it is
    -- settled there, so that month's balance row is locked too, before the turn's row as every balance row
    -- is. Only here are two of an account's balance rows locked, always the request's month then an older
    -- one, so two reservations never wait on each other in a cycle; `ledger_settle` and `ledger_reap` lock
    -- one. The turn's month is read unlocked, so it is checked again once the turn's row is locked.
    own := b;
    SELECT tu.period INTO own_period FROM turns AS tu
    WHERE tu.account_id = p_account AND tu.turn_id = p_turn AND tu.status = 'reserved';
    IF FOUND AND own_period COLLATE "C" < p_period COLLATE "C" THEN
        own := ledger_lock_balance(p_account, own_period);
    END IF;
    SELECT * INTO t FROM turns WHERE account_id = p_account AND turn_id = p_turn FOR UPDATE;
    IF FOUND THEN
        IF t.status = 'reserved' THEN
            -- A live attempt, or one of the previous release whose checkpoint only its reaper can price; or
            -- one in a month whose row is not locked (a newer month than the request's, from a replica whose
            -- clock is behind, or the turn changed hands since it was read): the sweep settles it.
            IF t.expires_at >= now() OR (t.checkpoint_h IS NULL AND t.output_seen) OR t.period <> own.period
            THEN
                outcome := 'in_progress';
                RETURN;
            END IF;
            -- Its replica stopped: settle it at its checkpoint first, as the reaper would, in its own month.
            SELECT * INTO charged
            FROM ledger_charge_checkpoint(t, own, coalesce(t.checkpoint_h, 0), p_terms);
""",
)


def upgrade() -> None:
    op.execute(_RESERVE)


def downgrade() -> None:
    op.execute(_PREVIOUS._RESERVE)  # pyright: ignore[reportPrivateUsage]
