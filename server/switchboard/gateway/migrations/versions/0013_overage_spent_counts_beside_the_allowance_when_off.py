"""With overage off, the limit is the allowance plus the overage already spent this month, not the allowance.

`ledger_limit(account, terms)` gave an account with overage off its plan's included credits, measured against
all it used this month, overage included. 0009's rule (what the plan still includes is its credits less
those used that were not overage) held only while overage was on, and the usage report follows 0009 either
way. So after a move to a larger plan, turning overage off took away credits the plan includes: a Pro account
that spent 1,000 included and 500 overage credits, turned overage off and moved to Pro+ (2,000) was told 1,000
credits remain while the ledger let it hold 500 (a 600-credit turn got 402 `credits_exhausted`).

Now the limit with overage off is the included credits plus the month's `overage_h`, so what it leaves
(`included - (used - overage)`) is what the report says remains. It needs the balance row, which every caller
holds: every body that called the two-argument function now calls `ledger_limit(account, terms, overage_h)`
with the month's `overage_h`: `ledger_charge`
(which also prices every sweep and orphan), `ledger_reserve` (the common case's statement and 0003's path)
and the three `ledger_settle`s (their common cases and a stalled replica's raise). Overage on is unchanged
(included + budget - used is already what the plan still includes plus what the budget has left). Without a
plan change nothing changes either: once overage began, `used - overage` is the included credits.

Compatibility during a rolling deploy: the bodies are replaced under the same names, arguments and results,
and no release calls `ledger_limit` itself, so the previous release's replicas apply the new rule from the
moment this migration commits; run it before or after they are replaced. The rule only raises a limit with
overage off (by overage already billed, which never counts again: overage stays 0 while it is off), so
turns in flight settle within either.

The two-argument `ledger_limit` stays, unchanged and called by no body: a call that began under the old
bodies (a reservation waiting on a locked balance row while this migration commits) plans its statements
only as it reaches them, and would otherwise fail for a function that no longer exists. A later migration may
drop it.

Going down to 0012 puts 0011's bodies back and drops the three-argument `ledger_limit`.

The bodies are the previous migrations', changed only where said (read from them, which are never edited).

Revision ID: 0013
Revises: 0012
"""

from __future__ import annotations

import importlib

from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

_0010 = importlib.import_module("switchboard.gateway.migrations.versions.0010_attempt_ids")
_0011 = importlib.import_module(
    "switchboard.gateway.migrations.versions.0011_settle_within_what_the_limit_leaves_after_usage"
)

_NEW_LIMIT = "ledger_limit(accounts, jsonb, bigint)"

_LIMIT = """
CREATE FUNCTION ledger_limit(p_account accounts, p_terms jsonb, p_overage_h bigint) RETURNS bigint
LANGUAGE sql STABLE AS $$
    -- The most the account may use in a month whose overage so far is `p_overage_h`, in hundredths. Overage
    -- on: the allowance plus the overage budget (NULL: overage without a budget, no cap); $0.04 a credit, so
    -- B cents buy 25·B hundredths. Overage off: the allowance plus the overage already spent, which did not
    -- use up the allowance (0009), so after a move to a larger plan the account keeps what the plan includes.
    SELECT CASE
        WHEN NOT ledger_overage_on(p_account, p_terms)
            THEN (p_terms -> p_account.plan ->> 'included_h')::bigint + p_overage_h
        WHEN p_account.overage_budget_cents IS NULL THEN NULL
        ELSE (p_terms -> p_account.plan ->> 'included_h')::bigint + p_account.overage_budget_cents * 25
    END
$$
"""


def _replaced(text: str, steps: list[tuple[str, str]], count: int = 1) -> str:
    for old, new in steps:
        if text.count(old) != count:
            raise RuntimeError(f"a function no longer reads as 0013 expects: {old[:60]!r}")
        text = text.replace(old, new)
    return text


def _or_replace(definition: str) -> str:
    """The `CREATE` of a function (as 0010 wrote its new overloads) as a `CREATE OR REPLACE` of it."""
    return definition.replace("CREATE FUNCTION", "CREATE OR REPLACE FUNCTION", 1)


# A body's calls of the limit, with the balance row it holds: `b` (a variable) or `ap` (a statement's alias).
_BY_VARIABLE = ("cap := ledger_limit(a, p_terms);", "cap := ledger_limit(a, p_terms, b.overage_h);")
_BY_ALIAS = ("ledger_limit(acc, p_terms)", "ledger_limit(acc, p_terms, ap.overage_h)")


def _settle(previous: str) -> str:
    """A `ledger_settle` (any overload): its common case and a stalled replica's raise."""
    return _replaced(previous, [_BY_VARIABLE, _BY_ALIAS])


# The bodies as 0012 left them: 0011's `ledger_charge` and seventeen-argument `ledger_settle`, 0010's
# twelve-argument `ledger_reserve` (a `CREATE` there) and the older `ledger_settle`s it kept.
_CHARGE_0012 = _0011._CHARGE  # pyright: ignore[reportPrivateUsage]
_SETTLE_0012 = _0011._SETTLE  # pyright: ignore[reportPrivateUsage]
_RESERVE_0012 = _or_replace(_0010._RESERVE)  # pyright: ignore[reportPrivateUsage]
_SETTLE_0007 = _0010._SETTLE_0007  # pyright: ignore[reportPrivateUsage]
_SETTLE_0006 = _0010._SETTLE_0006  # pyright: ignore[reportPrivateUsage]

_CHARGE = _replaced(_CHARGE_0012, [_BY_VARIABLE])
_RESERVE = _replaced(_replaced(_RESERVE_0012, [_BY_VARIABLE]), [_BY_ALIAS], count=2)
_PREVIOUS = (_CHARGE_0012, _RESERVE_0012, _SETTLE_0012, _SETTLE_0007, _SETTLE_0006)
_BODIES = (_CHARGE, _RESERVE, _settle(_SETTLE_0012), _settle(_SETTLE_0007), _settle(_SETTLE_0006))


def upgrade() -> None:
    op.execute(_LIMIT)
    for body in _BODIES:
        op.execute(body)


def downgrade() -> None:
    for body in _PREVIOUS:
        op.execute(body)
    op.execute(f"DROP FUNCTION {_NEW_LIMIT}")
