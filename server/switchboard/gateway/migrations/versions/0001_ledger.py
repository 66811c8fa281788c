"""Accounts, per-account monthly balances and the turns ledger.

Every ledger table is keyed by account first (the shard key a distributed PostgreSQL would use): a
statement on the ledger always names one account, and accounts never share a balance.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE accounts (
            id text PRIMARY KEY,
            email text NOT NULL,
            password_hash text NOT NULL,
            plan text NOT NULL CHECK (plan IN ('free', 'pro', 'pro_plus', 'power')),
            overage_enabled boolean NOT NULL DEFAULT false,
            overage_budget_cents bigint CHECK (overage_budget_cents > 0),
            created_at timestamptz NOT NULL DEFAULT now(),
            revoked_at timestamptz
        )
        """
    )
    op.execute("CREATE UNIQUE INDEX accounts_email ON accounts (lower(email))")
    # One row per account and month: what is used, billed as overage, and held by reservations in flight,
    # in hundredths of a credit. Reservations lock this row, so one account's turns queue only on each other.
    op.execute(
        """
        CREATE TABLE account_periods (
            account_id text NOT NULL REFERENCES accounts (id),
            period text NOT NULL,
            used_h bigint NOT NULL DEFAULT 0 CHECK (used_h >= 0),
            overage_h bigint NOT NULL DEFAULT 0 CHECK (overage_h >= 0),
            reserved_h bigint NOT NULL DEFAULT 0 CHECK (reserved_h >= 0),
            PRIMARY KEY (account_id, period)
        )
        """
    )
    op.execute(
        """
        CREATE TABLE turns (
            account_id text NOT NULL REFERENCES accounts (id),
            turn_id text NOT NULL,
            period text NOT NULL,
            model_id text NOT NULL,
            routed_model text NOT NULL,
            route_reason text NOT NULL DEFAULT '',
            status text NOT NULL CHECK (status IN ('reserved', 'complete', 'cut', 'failed')),
            reserved_h bigint NOT NULL CHECK (reserved_h >= 0),
            credits_h bigint NOT NULL DEFAULT 0 CHECK (credits_h >= 0),
            overage_h bigint NOT NULL DEFAULT 0 CHECK (overage_h >= 0),
            input_tokens bigint NOT NULL DEFAULT 0,
            output_tokens bigint NOT NULL DEFAULT 0,
            cache_read_input_tokens bigint NOT NULL DEFAULT 0,
            cache_creation_input_tokens bigint NOT NULL DEFAULT 0,
            output_seen boolean NOT NULL DEFAULT false,
            reason text,
            replica text NOT NULL,
            attempts integer NOT NULL DEFAULT 1,
            created_at timestamptz NOT NULL DEFAULT now(),
            expires_at timestamptz NOT NULL,
            settled_at timestamptz,
            PRIMARY KEY (account_id, turn_id)
        )
        """
    )
    op.execute("CREATE INDEX turns_expiring ON turns (expires_at) WHERE status = 'reserved'")
    op.execute("CREATE INDEX turns_by_period ON turns (account_id, period)")


def downgrade() -> None:
    op.execute("DROP TABLE turns")
    op.execute("DROP TABLE account_periods")
    op.execute("DROP TABLE accounts")
