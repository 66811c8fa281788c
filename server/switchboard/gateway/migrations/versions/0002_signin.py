"""Sign-in: device authorizations (RFC 8628), refresh-token families, and shared rate-limit counters.

Codes and tokens are stored only as SHA-256 digests: a copy of the database lets nobody sign in.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE device_authorizations (
            device_code_hash text PRIMARY KEY,
            user_code_hash text NOT NULL UNIQUE,
            client_id text NOT NULL,
            status text NOT NULL CHECK (status IN ('pending', 'approved', 'denied', 'used')),
            account_id text REFERENCES accounts (id),
            interval_seconds integer NOT NULL CHECK (interval_seconds > 0),
            last_polled_at timestamptz,
            created_at timestamptz NOT NULL DEFAULT now(),
            expires_at timestamptz NOT NULL,
            decided_at timestamptz
        )
        """
    )
    op.execute("CREATE INDEX device_authorizations_expiry ON device_authorizations (expires_at)")
    # A family is one sign-in: every refresh token rotated from it shares its id, and dies with it.
    op.execute(
        """
        CREATE TABLE refresh_families (
            id text PRIMARY KEY,
            account_id text NOT NULL REFERENCES accounts (id),
            client_id text NOT NULL,
            created_at timestamptz NOT NULL DEFAULT now(),
            revoked_at timestamptz,
            revoked_reason text
        )
        """
    )
    op.execute("CREATE INDEX refresh_families_by_account ON refresh_families (account_id)")
    op.execute(
        """
        CREATE TABLE refresh_tokens (
            token_hash text PRIMARY KEY,
            family_id text NOT NULL REFERENCES refresh_families (id) ON DELETE CASCADE,
            created_at timestamptz NOT NULL DEFAULT now(),
            expires_at timestamptz NOT NULL,
            used_at timestamptz
        )
        """
    )
    op.execute("CREATE INDEX refresh_tokens_by_family ON refresh_tokens (family_id)")
    # One row per bucket ("token:addr:203.0.113.9"): a fixed window that starts with its first hit.
    op.execute(
        """
        CREATE TABLE rate_limits (
            bucket text PRIMARY KEY,
            window_start timestamptz NOT NULL,
            hits integer NOT NULL
        )
        """
    )


def downgrade() -> None:
    op.execute("DROP TABLE rate_limits")
    op.execute("DROP TABLE refresh_tokens")
    op.execute("DROP TABLE refresh_families")
    op.execute("DROP TABLE device_authorizations")
