"""OAuth scopes: the scope a device authorization asked for, and the one its refresh family was granted.

Rows from before scopes existed keep what they could do then (every scope).

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("ALTER TABLE device_authorizations ADD COLUMN scope text NOT NULL DEFAULT 'chat billing'")
    op.execute("ALTER TABLE refresh_families ADD COLUMN scope text NOT NULL DEFAULT 'chat billing'")


def downgrade() -> None:
    op.execute("ALTER TABLE refresh_families DROP COLUMN scope")
    op.execute("ALTER TABLE device_authorizations DROP COLUMN scope")
