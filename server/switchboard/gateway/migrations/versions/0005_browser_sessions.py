"""Browser sessions for the gateway's web pages (/account): an opaque random id in an HttpOnly cookie,
stored here only as its SHA-256 digest, with an expiry.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE browser_sessions (
            id_hash text PRIMARY KEY,
            account_id text NOT NULL REFERENCES accounts (id),
            created_at timestamptz NOT NULL DEFAULT now(),
            expires_at timestamptz NOT NULL,
            ended_at timestamptz
        )
        """
    )
    op.execute("CREATE INDEX browser_sessions_by_account ON browser_sessions (account_id)")
    op.execute("CREATE INDEX browser_sessions_expiry ON browser_sessions (expires_at)")


def downgrade() -> None:
    op.execute("DROP TABLE browser_sessions")
