"""Each attempt at a turn is named by an id its replica makes up (a UUID), not by its number.

Settlements, heartbeats and sweeps named an attempt by `(account, turn id, attempts)`. A new turn's
reservation commits without waiting for the disk (0007), so a crash of PostgreSQL can lose it; the client's
retry of the same turn id is then reserved anew, as the turn's first attempt again. The replica still
answering the lost attempt named it by the same three values as the retry, so its release settled the retry's
reservation (free, or charged at the lost attempt's usage), its heartbeat renewed the retry and overwrote its
checkpoint, and the retry's own settlement then found the turn settled (`already`): a delivered answer could
go free.

Now `ledger_reserve` takes the attempt's id (`p_attempt_id`) and stores it on the turn (`turns.attempt_id`),
and `ledger_settle` and `ledger_reap` take it too and act only on the turn row that carries it. A settlement
whose attempt a later one replaced changes nothing and says so (`superseded`); one whose turn row is gone
altogether (PostgreSQL lost the reservation and no retry came) records the turn under its id, as before.

Compatibility with replicas of the previous release during a rolling upgrade (run this migration first):
- New overloads, added beside the old ones: `ledger_reserve` with twelve arguments, `ledger_settle` with
  seventeen, `ledger_reap` with six. The new release calls only these.
- The previous release's `ledger_reserve` (eleven arguments) now calls the new one with no id (NULL), so a
  retry it reserves also clears the id a previous attempt of the new release left on the row.
- The previous release's `ledger_settle`s (twelve and sixteen arguments) act only on a turn row without an
  id (an attempt the previous release reserved): a stale settlement of theirs can no longer settle a retry
  the new release reserved. Their results are unchanged.
- The previous release's `ledger_reap` (four arguments) is unchanged (it settles only an expired turn).
- The previous release's heartbeat is a statement of its own (by attempt number): until those replicas are
  gone, theirs can still renew a retry of a turn whose reservation PostgreSQL lost, as before this migration.

Going down to 0009 drops the new overloads and the column and puts 0009's bodies back; a turn reserved by the
new release is then settled by the sweep when it expires (its replica can no longer settle it).

The bodies are the previous migrations', changed only where said (read from them, which are never edited).

Revision ID: 0010
Revises: 0009
"""

from __future__ import annotations

import importlib

from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

_0003 = importlib.import_module("switchboard.gateway.migrations.versions.0003_ledger_functions")
_0008 = importlib.import_module("switchboard.gateway.migrations.versions.0008_orphan_in_its_own_month")
_0009 = importlib.import_module(
    "switchboard.gateway.migrations.versions.0009_overage_within_budget_after_a_plan_change"
)

_NEW_RESERVE = (
    "ledger_reserve(text, text, text, text, text, text, text[], bigint, interval, text, jsonb, uuid)"
)
_NEW_SETTLE = (
    "ledger_settle(text, text, text, integer, text, bigint, bigint, bigint, bigint, bigint, text, jsonb,"
    " text, text, text, text, uuid)"
)
_NEW_REAP = "ledger_reap(text, text, uuid, integer, bigint, jsonb)"


def _replaced(text: str, steps: list[tuple[str, str]], count: int = 1) -> str:
    for old, new in steps:
        if text.count(old) != count:
            raise RuntimeError(f"a function no longer reads as 0010 expects: {old[:60]!r}")
        text = text.replace(old, new)
    return text


def _new(definition: str, name: str) -> str:
    """A `CREATE OR REPLACE` of an existing function, as the `CREATE` of a new overload."""
    return _replaced(definition, [(f"CREATE OR REPLACE FUNCTION {name}(", f"CREATE FUNCTION {name}(")])


_COLUMNS = "reserved_h, replica, expires_at, checkpoint_h)"
_VALUES = "p_reserved_h, p_replica, now() + p_ttl, 0)"

_RESERVE = _new(
    _replaced(
        _0008._RESERVE,  # pyright: ignore[reportPrivateUsage]
        [
            (
                "p_replica text, p_terms jsonb,\n    OUT outcome text,",
                "p_replica text, p_terms jsonb,\n    p_attempt_id uuid,\n    OUT outcome text,",
            ),
            (
                "-- outcome: 'reserved' (attempt is the turn's attempt number),",
                "-- `p_attempt_id` names this attempt (its replica's UUID; NULL from the previous\n"
                "-- release's overload): its settlement, heartbeat and sweep act only on the turn row that\n"
                "-- carries it.\n"
                "-- outcome: 'reserved' (attempt is the turn's attempt number),",
            ),
            ("provisional = false\n", "provisional = false, attempt_id = excluded.attempt_id\n"),
        ],
    )
    .replace(_COLUMNS, "reserved_h, replica, expires_at, checkpoint_h, attempt_id)")
    .replace(_VALUES, "p_reserved_h, p_replica, now() + p_ttl, 0, p_attempt_id)"),
    "ledger_reserve",
)
if _RESERVE.count("p_attempt_id)") != 2:  # both INSERTs (the common case's and 0003's) store the id
    raise RuntimeError("0008's ledger_reserve no longer reads as 0010 expects: its INSERTs")

# The previous release's call: the same function, with no attempt id.
_PREVIOUS_RELEASE_RESERVE = """
CREATE OR REPLACE FUNCTION ledger_reserve(
    p_account text, p_turn text, p_period text, p_model text, p_routed text, p_route_reason text,
    p_allowed_plans text[], p_reserved_h bigint, p_ttl interval, p_replica text, p_terms jsonb,
    OUT outcome text, OUT attempt integer, OUT email text, OUT plan text, OUT overage_enabled boolean,
    OUT overage_budget_cents bigint, OUT status text, OUT credits_h bigint, OUT available_h bigint
) LANGUAGE sql AS $$
    SELECT * FROM ledger_reserve(p_account, p_turn, p_period, p_model, p_routed, p_route_reason,
                                 p_allowed_plans, p_reserved_h, p_ttl, p_replica, p_terms, NULL::uuid)
$$
"""

_SETTLE = _new(
    _replaced(
        _replaced(
            _0009._SETTLE,  # pyright: ignore[reportPrivateUsage]
            [
                (
                    "p_route_reason text, p_replica text,\n"
                    "    OUT status text, OUT credits_h bigint, OUT overage_h bigint, OUT already boolean\n",
                    "p_route_reason text, p_replica text,\n"
                    "    p_attempt_id uuid,\n"
                    "    OUT status text, OUT credits_h bigint, OUT overage_h bigint, OUT already boolean,\n"
                    "    OUT superseded boolean\n",
                ),
                (
                    "-- Settle one attempt at a turn, exactly once. Three cases:\n",
                    "-- Settle one attempt at a turn (the one whose id is `p_attempt_id`), exactly once. Four"
                    " cases:\n",
                ),
                (
                    "-- * anything else (settled before, or a later attempt owns the turn id now): change"
                    " nothing (`already`).\n",
                    "-- * settled before: change nothing (`already`);\n"
                    "-- * another attempt owns the turn id now (a retry after a sweep, or after PostgreSQL"
                    " lost this one's\n"
                    "--   reservation): change nothing, charge nothing (`already` and `superseded`).\n",
                ),
                ("AND tu.attempts = p_attempt\n", "AND tu.attempt_id = p_attempt_id\n"),
                (
                    "        IF FOUND THEN\n            status := p_status;\n            already := false;\n",
                    "        IF FOUND THEN\n            status := p_status;\n            already := false;\n"
                    "            superseded := false;\n",
                ),
                (
                    "                           reserved_h, replica, expires_at, checkpoint_h)\n"
                    "        VALUES (p_account, p_turn, p_period, p_model, p_routed, p_route_reason,"
                    " 'reserved',\n"
                    "                0, p_replica, now(), 0)\n",
                    "                           reserved_h, replica, expires_at, checkpoint_h, attempt_id)\n"
                    "        VALUES (p_account, p_turn, p_period, p_model, p_routed, p_route_reason,"
                    " 'reserved',\n"
                    "                0, p_replica, now(), 0, p_attempt_id)\n",
                ),
                (
                    "        RETURNING * INTO t;\n    END IF;\n    already := false;\n",
                    "        RETURNING * INTO t;\n    END IF;\n"
                    "    IF t.attempt_id IS DISTINCT FROM p_attempt_id THEN\n"
                    "        -- Not this attempt's row: whatever it holds belongs to another attempt.\n"
                    "        status := p_status;\n"
                    "        credits_h := 0;\n"
                    "        overage_h := 0;\n"
                    "        already := true;\n"
                    "        superseded := true;\n"
                    "        RETURN;\n"
                    "    END IF;\n"
                    "    superseded := false;\n"
                    "    already := false;\n",
                ),
            ],
        ),
        [("t.attempts = p_attempt", "t.attempt_id = p_attempt_id")],
        count=3,
    ),
    "ledger_settle",
)


def _previous_release_settle(definition: str) -> str:
    """A previous release's `ledger_settle`, acting only on a turn row without an attempt id (its own)."""
    text = _replaced(
        definition, [("tu.attempts = p_attempt", "tu.attempts = p_attempt AND tu.attempt_id IS NULL")]
    )
    return _replaced(
        text, [("t.attempts = p_attempt", "t.attempts = p_attempt AND t.attempt_id IS NULL")], count=3
    )


_SETTLE_0007 = _previous_release_settle(_0009._SETTLE)  # pyright: ignore[reportPrivateUsage]
_SETTLE_0006 = _previous_release_settle(_0009._SETTLE_PREVIOUS_RELEASE)  # pyright: ignore[reportPrivateUsage]

_REAP = _replaced(
    _0003._REAP,  # pyright: ignore[reportPrivateUsage]
    [
        (
            "ledger_reap(p_account text, p_turn text, p_checkpoint_h bigint,",
            "ledger_reap(p_account text, p_turn text, p_attempt_id uuid, p_attempt integer,\n"
            "    p_checkpoint_h bigint,",
        ),
        (
            "-- checkpointed); no row when it is not expired any more, or was settled meanwhile"
            " (another replica's sweep).\n",
            "-- checkpointed); no row when it is not expired any more, or was settled meanwhile"
            " (another replica's sweep),\n"
            "-- or the turn's row is another attempt's now. The attempt is the one the sweep read: its id"
            " (NULL for one\n"
            "-- the previous release reserved) and its number.\n",
        ),
        (
            "    IF t.status <> 'reserved' OR t.expires_at >= now() THEN\n",
            "    IF t.status <> 'reserved' OR t.expires_at >= now()\n"
            "        OR t.attempt_id IS DISTINCT FROM p_attempt_id OR t.attempts <> p_attempt\n"
            "    THEN\n",
        ),
    ],
)


def upgrade() -> None:
    op.execute("ALTER TABLE turns ADD COLUMN attempt_id uuid")
    op.execute(_RESERVE)
    op.execute(_PREVIOUS_RELEASE_RESERVE)
    op.execute(_SETTLE)
    op.execute(_SETTLE_0007)
    op.execute(_SETTLE_0006)
    op.execute(_REAP)


def downgrade() -> None:
    for function in (_NEW_REAP, _NEW_SETTLE, _NEW_RESERVE):
        op.execute(f"DROP FUNCTION {function}")
    op.execute(_0008._RESERVE)  # pyright: ignore[reportPrivateUsage]
    op.execute(_0009._SETTLE)  # pyright: ignore[reportPrivateUsage]
    op.execute(_0009._SETTLE_PREVIOUS_RELEASE)  # pyright: ignore[reportPrivateUsage]
    op.execute("ALTER TABLE turns DROP COLUMN attempt_id")
