"""A reservation also says what the account has left once it is made (`available_h`).

`ledger_reserve` named what was left only when it refused a turn for credits. Now it says so for every turn
it reserves too: the account's limit less what is used and what every turn in flight holds, this one's hold
included, and the largest `bigint` for an account without a limit (overage without a budget). A replica
keeps the figure as a lower bound of what its account can afford while it settles turns (a settlement only
gives back part of a hold), and sends a streamed turn of an account that can afford it to Anthropic while
its reservation is being made (docs/gateway.md, "Sending a turn while it is reserved").

Compatibility during a rolling deploy: the body of this release's `ledger_reserve` (twelve arguments) is
replaced under the same name, arguments and results; the previous release reads `available_h` only from a
refusal, which is unchanged, so the migration may run before or after its replicas are replaced. A replica
of this release on a schema below 0012 refuses to start (as for every migration); were it to run, a
reservation without the figure would only send no turn early.

Going down to 0011 puts 0010's body back (0011 did not change it).

The body is 0010's, changed only where said (read from it, which is never edited).

Revision ID: 0012
Revises: 0011
"""

from __future__ import annotations

import importlib

from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

_0010 = importlib.import_module("switchboard.gateway.migrations.versions.0010_attempt_ids")

# What a limit of NULL (no cap) leaves: more than any turn can hold.
_NO_LIMIT = "9223372036854775807"


def _replaced(text: str, steps: list[tuple[str, str]]) -> str:
    for old, new in steps:
        if text.count(old) != 1:
            raise RuntimeError(f"a function no longer reads as 0012 expects: {old[:60]!r}")
        text = text.replace(old, new)
    return text


_RESERVE_0011 = _0010._RESERVE.replace(  # pyright: ignore[reportPrivateUsage]
    "CREATE FUNCTION ledger_reserve(", "CREATE OR REPLACE FUNCTION ledger_reserve(", 1
)

_RESERVE = _replaced(
    _RESERVE_0011,
    [
        (
            "'insufficient' (available_h is what\n-- is left).",
            "'insufficient' (available_h is what\n-- is left). When 'reserved', available_h is what"
            " is left beside this turn's hold (0012).",
        ),
        (
            "    RETURNING acc.email, acc.plan, acc.overage_enabled, acc.overage_budget_cents\n"
            "    INTO email, plan, overage_enabled, overage_budget_cents;\n",
            "    RETURNING acc.email, acc.plan, acc.overage_enabled, acc.overage_budget_cents,\n"
            f"        coalesce(ledger_limit(acc, p_terms) - ap.used_h - ap.reserved_h, {_NO_LIMIT})\n"
            "    INTO email, plan, overage_enabled, overage_budget_cents, available_h;\n",
        ),
        (
            "    UPDATE account_periods SET reserved_h = reserved_h + p_reserved_h\n"
            "    WHERE account_id = p_account AND period = p_period;\n"
            "    outcome := 'reserved';\nEND\n",
            "    UPDATE account_periods SET reserved_h = reserved_h + p_reserved_h\n"
            "    WHERE account_id = p_account AND period = p_period;\n"
            f"    available_h := coalesce(cap - b.used_h - b.reserved_h - p_reserved_h, {_NO_LIMIT});\n"
            "    outcome := 'reserved';\nEND\n",
        ),
    ],
)


def upgrade() -> None:
    op.execute(_RESERVE)


def downgrade() -> None:
    op.execute(_RESERVE_0011)
