"""A settlement is capped by what the account's limit leaves after what is used, not also after other holds.

A turn whose usage passed its reservation was charged at most `limit - used - (what other turns in flight
hold)`. A hold is not a charge: most of it is given back when its turn settles. So the charge depended on
what happened to be in flight, and credits the account never used went uncharged:
- a Free account (5,000 hundredths) with a Sonnet turn holding 3,902 in flight: a Haiku turn that held 7 and
  was billed 1,200 was charged 1,098; the Sonnet turn then used 3, and the month ended at 1,101 of 5,000, with
  102 hundredths never charged although the account stayed far below its limit;
- terms tightened mid-turn (overage turned off with two turns in flight): of two equal answers, the first to
  settle was capped by the other's hold (0), the second was not, an order-dependent charge.

Now every settlement is capped by `limit - used` alone: in `ledger_settle` (the common case's statement, the
turn settled by its own attempt, and a stalled replica's real usage raising a provisional charge) and in
`ledger_charge`, which also prices a sweep's settlement (`ledger_reap`, and `ledger_reserve` settling an
orphan on its way) and a turn whose reservation PostgreSQL lost. Every settlement is capped the same way, so
`used` still never passes the limit (the allowance plus the overage budget), and overage keeps 0009's rule
(the part of a charge past what the plan still includes), so it never passes the budget. Reservations are
unchanged: a new hold must still fit beside what is used and what other turns hold. What changes is that a
hold is no longer a promise: after another turn's usage overran its reservation, a turn still in flight is
charged only what the limit has left, if less than its hold (the rest is absorbed, as usage past a
reservation is).

Compatibility during a rolling deploy: the bodies are replaced under the same names, arguments and results
(the seventeen-argument `ledger_settle` and `ledger_charge`; `ledger_reap` and `ledger_reserve` reach the cap
only through `ledger_charge`), and the previous release calls the same functions, so its replicas apply the
new rule from the moment this migration commits; run it before or after they are replaced. The overloads kept
for releases before 0010 (`ledger_settle` with twelve and sixteen arguments) keep their own common case and so
its cap counting other holds (no running release calls them); where they go through `ledger_charge` they get
the new rule. Either rule keeps `used` within the limit, so a mix of them never overcharges.

Going down to 0010 puts 0010's bodies back (`ledger_charge` as 0009 wrote it, `ledger_settle` as 0010 did).

The bodies are the previous migrations', changed only where said (read from them, which are never edited).

Revision ID: 0011
Revises: 0010
"""

from __future__ import annotations

import importlib

from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

_0009 = importlib.import_module(
    "switchboard.gateway.migrations.versions.0009_overage_within_budget_after_a_plan_change"
)
_0010 = importlib.import_module("switchboard.gateway.migrations.versions.0010_attempt_ids")


def _replaced(text: str, steps: list[tuple[str, str]], count: int = 1) -> str:
    for old, new in steps:
        if text.count(old) != count:
            raise RuntimeError(f"a function no longer reads as 0011 expects: {old[:60]!r}")
        text = text.replace(old, new)
    return text


def _or_replace(definition: str) -> str:
    """The `CREATE` of a function (as 0010 wrote its new overloads) as a `CREATE OR REPLACE` of it."""
    return definition.replace("CREATE FUNCTION", "CREATE OR REPLACE FUNCTION", 1)


# 0010 left `ledger_charge` as 0009 wrote it (a `CREATE OR REPLACE`).
_CHARGE_0010 = _0009._CHARGE  # pyright: ignore[reportPrivateUsage]
_SETTLE_0010 = _or_replace(_0010._SETTLE)  # pyright: ignore[reportPrivateUsage]

_CHARGE = _replaced(
    _CHARGE_0010,
    [
        (
            "    IF cap IS NOT NULL THEN\n"
            "        credits_h := greatest(0, least(credits_h,"
            " cap - b.used_h - (b.reserved_h - t.reserved_h)));\n",
            "    IF cap IS NOT NULL THEN  -- what the limit leaves after what is used (holds are no charge)\n"
            "        credits_h := greatest(0, least(credits_h, cap - b.used_h));\n",
        ),
    ],
)

_SETTLE = _replaced(
    _replaced(
        _SETTLE_0010,
        [
            ("    held bigint;\n", ""),
            (
                "    SELECT ap.used_h, ap.reserved_h, ledger_limit(acc, p_terms),\n",
                "    SELECT ap.used_h, ledger_limit(acc, p_terms),\n",
            ),
            (
                "    INTO used, held, cap, included, overage_on, spent_overage\n",
                "    INTO used, cap, included, overage_on, spent_overage\n",
            ),
            (
                "    -- charged as `ledger_charge` does and its hold released, in one statement.\n",
                "    -- charged as `ledger_charge` does and its hold released, in one statement. The cap is\n"
                "    -- what the limit leaves after what is used (other turns' holds are no charge).\n",
            ),
            (
                "        IF cap IS NOT NULL THEN  -- this turn holds no reservation any more\n"
                "            extra := greatest(0, least(extra, cap - b.used_h - b.reserved_h));\n",
                "        IF cap IS NOT NULL THEN  -- what the limit leaves after what is used\n"
                "            extra := greatest(0, least(extra, cap - b.used_h));\n",
            ),
        ],
    ),
    [("ledger_capped(charge, cap, used, held - tu.reserved_h)", "ledger_capped(charge, cap, used, 0)")],
    count=3,
)


def upgrade() -> None:
    op.execute(_CHARGE)
    op.execute(_SETTLE)


def downgrade() -> None:
    op.execute(_CHARGE_0010)
    op.execute(_SETTLE_0010)
