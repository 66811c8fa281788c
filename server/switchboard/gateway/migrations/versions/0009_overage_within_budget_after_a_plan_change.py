"""Overage is never more than the budget, even after the plan changed mid-month.

A charge's overage was "the part of `used_h` past the plan's included credits". After `accounts set-plan`
to a larger plan, that counts again, as overage, the credits already billed as overage under the old plan:
a Pro account that spent its $20 budget and was moved to Pro+ could then run up $40 more. Overage is now the
part of a charge past what the plan still includes, where what it includes has been used by the credits that
were not overage (`used_h - overage_h`). Without a plan change the two rules give the same figures: until the
included credits run out `overage_h` is 0, and after they have, `used_h - overage_h` is the included credits.

The cap (`ledger_limit`) needs no change: included + budget - used is what the plan still includes plus what
the budget has left, whenever the included credits have not been overspent (after a move to a smaller plan
they have, and the cap is then the stricter of the two, never the looser).

The bodies are the previous migrations', changed only where said (read from them, which are never edited).

Revision ID: 0009
Revises: 0008
"""

from __future__ import annotations

import importlib

from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

_0003 = importlib.import_module("switchboard.gateway.migrations.versions.0003_ledger_functions")
_0006 = importlib.import_module("switchboard.gateway.migrations.versions.0006_ledger_fast_paths")
_0007 = importlib.import_module("switchboard.gateway.migrations.versions.0007_async_reservations")


def _replaced(text: str, old: str, new: str) -> str:
    if text.count(old) != 1:
        raise RuntimeError(f"a function no longer reads as 0009 expects: {old[:60]!r}")
    return text.replace(old, new)


def _or_replace(definition: str) -> str:
    return definition.replace("CREATE FUNCTION", "CREATE OR REPLACE FUNCTION", 1)


_CHARGE = _replaced(
    _or_replace(_0003._CHARGE),  # pyright: ignore[reportPrivateUsage]
    "b.used_h + credits_h - (p_terms -> a.plan ->> 'included_h')::bigint));",
    "b.used_h - b.overage_h + credits_h - (p_terms -> a.plan ->> 'included_h')::bigint));",
)


def _settle(previous: str) -> str:
    """`ledger_settle` (either overload) with overage counted past what the plan still includes."""
    steps = [
        ("    included bigint;\n", "    included bigint;\n    spent_overage bigint;\n"),
        (
            "           (p_terms -> acc.plan ->> 'included_h')::bigint, ledger_overage_on(acc, p_terms)\n"
            "    INTO used, held, cap, included, overage_on\n",
            "           (p_terms -> acc.plan ->> 'included_h')::bigint, ledger_overage_on(acc, p_terms),"
            " ap.overage_h\n"
            "    INTO used, held, cap, included, overage_on, spent_overage\n",
        ),
        (
            "used + ledger_capped(charge, cap, used, held - tu.reserved_h) - included)) ELSE 0 END,",
            "used - spent_overage + ledger_capped(charge, cap, used, held - tu.reserved_h) - included))"
            " ELSE 0 END,",
        ),
        (
            "b.used_h + extra - (p_terms -> a.plan ->> 'included_h')::bigint));",
            "b.used_h - b.overage_h + extra - (p_terms -> a.plan ->> 'included_h')::bigint));",
        ),
    ]
    text = _or_replace(previous)
    for old, new in steps:
        text = _replaced(text, old, new)
    return text


_SETTLE_PREVIOUS_RELEASE = _settle(_0006._SETTLE)  # pyright: ignore[reportPrivateUsage]
_SETTLE = _settle(_0007._SETTLE)  # pyright: ignore[reportPrivateUsage]


def upgrade() -> None:
    op.execute(_CHARGE)
    op.execute(_SETTLE_PREVIOUS_RELEASE)
    op.execute(_SETTLE)


def downgrade() -> None:
    op.execute(_or_replace(_0003._CHARGE))  # pyright: ignore[reportPrivateUsage]
    op.execute(_or_replace(_0006._SETTLE))  # pyright: ignore[reportPrivateUsage]
    op.execute(_or_replace(_0007._SETTLE))  # pyright: ignore[reportPrivateUsage]
