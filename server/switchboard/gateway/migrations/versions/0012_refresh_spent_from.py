"""Where each refresh token was spent from (`refresh_tokens.spent_from`): the SHA-256 of the token with the
client address's key (an IPv4 address, an IPv6 /64, as the rate limits key them), so the table holds no
address, nor a digest of one alone that trying every address would reverse.

A spent token presented again within `refresh_reuse_grace_seconds` gets a sibling only when it comes from
the address that spent it (the editor's windows on one machine); from any other address the reuse revokes
the family, as after the grace (docs/gateway.md, "Refresh tokens").

Compatibility during a rolling deploy: a nullable column, which the previous release neither reads nor
writes. A token the previous release spent has no address, so a reuse of it that reaches a replica of this
release revokes the family even within the grace (the stricter rule; at worst one sign-in during the
deploy). A replica of this release on a schema below 0012 refuses to start (as for every migration).

Going down to 0011 drops the column: every token's address is forgotten, which only matters for the grace
of the tokens spent in the last seconds.

Revision ID: 0012
Revises: 0011
"""

from __future__ import annotations

from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("ALTER TABLE refresh_tokens ADD COLUMN spent_from text")


def downgrade() -> None:
    op.execute("ALTER TABLE refresh_tokens DROP COLUMN spent_from")
