"""Refresh tokens: opaque, stored as SHA-256 digests, rotated on every use, grouped in families.

A family is one sign-in (one device flow). Each refresh spends the presented token and issues the next one
of the family. A spent token presented again means two parties hold the family's tokens (a stolen copy, or
a client that lost a response and retried): the whole family is revoked, so whoever has the newest token
loses it too and must sign in again (RFC 9700 §4.14.2). Except within a short grace after it was spent
(`refresh_reuse_grace_seconds`, 30 s by default, as Okta's and Auth0's rotation offer): the editor's windows
share one stored token, and windows that start together each present it. Such a reuse, by the same client
**and from the address that spent the token** (`spent_from`: the SHA-256 of the token and its rate-limit
key, an IPv4 address or an IPv6 /64, so the table holds no address), gets a token of its own in the same
family, and counts against the account's refresh limit like any refresh. The client id is public, so it
alone proves nothing: a stolen token replayed from anywhere else within the grace revokes the family as it
would after it.
Revocation is immediate for refresh tokens; an access token already issued lives out its short lifetime (the
account check on every request stops it sooner only if the account itself is revoked).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Literal, LiteralString

from psycopg import AsyncConnection
from psycopg.rows import DictRow

from .codes import REFRESH_TOKEN_PREFIX, Opaque, digest, presented_digest
from .ratelimit import address_key

RefusalReason = Literal["unknown", "wrong_client", "family_revoked", "reused", "expired"]


@dataclass(frozen=True)
class Holder:
    """Who a presented refresh token belongs to, whatever its state."""

    account_id: str
    client_id: str
    family_id: str
    scope: str = ""  # what the sign-in was granted (space-separated)


@dataclass(frozen=True)
class Rotated:
    holder: Holder
    refresh_token: str
    again: bool = False  # a token spent within the grace, presented again


@dataclass(frozen=True)
class Refused:
    reason: RefusalReason
    holder: Holder | None = None


async def start_family(
    conn: AsyncConnection[DictRow], account_id: str, client_id: str, scope: str, lifetime_seconds: int
) -> str:
    """A new family (one sign-in, granted `scope`) and its first refresh token."""
    family_id = "fam_" + secrets.token_hex(12)
    await conn.execute(
        "INSERT INTO refresh_families (id, account_id, client_id, scope) VALUES (%s, %s, %s, %s)",
        (family_id, account_id, client_id, scope),
    )
    return await _issue(conn, family_id, lifetime_seconds)


async def _issue(conn: AsyncConnection[DictRow], family_id: str, lifetime_seconds: int) -> str:
    token = Opaque.new(REFRESH_TOKEN_PREFIX)
    await conn.execute(
        """
        INSERT INTO refresh_tokens (token_hash, family_id, expires_at)
        VALUES (%s, %s, now() + make_interval(secs => %s))
        """,
        (token.digest, family_id, lifetime_seconds),
    )
    return token.value


_HOLDER: LiteralString = """
    SELECT f.account_id, f.client_id, f.id AS family_id, f.scope
    FROM refresh_tokens t JOIN refresh_families f ON f.id = t.family_id
    WHERE t.token_hash = %s
"""


async def holder(conn: AsyncConnection[DictRow], token: str) -> Holder | None:
    return await _holder(conn, token)


# Spent less than the grace ago, by the clock now: `now()` is when the transaction began, and a reuse whose
# transaction began before the spending one committed would otherwise count as within any grace, even 0.
# And spent from the address presenting it again (a token spent with no address known, by a previous release
# or a caller that gave none, never matches).
_WITHIN_GRACE: LiteralString = (
    "(%s > 0 AND t.used_at > clock_timestamp() - make_interval(secs => %s)"
    " AND coalesce(t.spent_from = %s, false))"
)


def spent_from(token: str, address: str | None) -> str | None:
    """What `refresh_tokens.spent_from` holds for `token` spent from a client address: the digest of the
    token and the address's rate-limit key. Not of the key alone: the IPv4 space is small enough to reverse
    such a digest, so a copy of the table would tell where each user refreshed from. The token is never
    stored in clear (only its own digest), so the column reveals nothing without the token."""
    return None if address is None else digest(token + "\0" + address_key(address))


async def live_holder(
    conn: AsyncConnection[DictRow],
    token: str,
    client_id: str,
    grace_seconds: float = 0,
    *,
    address: str | None = None,
) -> Holder | None:
    """Who holds `token` if it can still be rotated by `client_id` from `address` (unspent, or spent within
    the grace from that address; unexpired, its family alive); None for any other token, which `rotate`
    refuses (or, for a reuse, revokes) without it counting against the account."""
    live = (
        f" AND (t.used_at IS NULL OR {_WITHIN_GRACE})"
        " AND t.expires_at > now() AND f.revoked_at IS NULL AND f.client_id = %s"
    )
    return await _holder(
        conn, token, live, grace_seconds, grace_seconds, spent_from(token, address), client_id
    )


async def _holder(
    conn: AsyncConnection[DictRow], token: str, condition: LiteralString = "", *params: str | float | None
) -> Holder | None:
    token_hash = presented_digest(token)
    if token_hash is None:
        return None
    cursor = await conn.execute(_HOLDER + condition, (token_hash, *params))
    row = await cursor.fetchone()
    return Holder(row["account_id"], row["client_id"], row["family_id"], row["scope"]) if row else None


async def rotate(
    conn: AsyncConnection[DictRow],
    token: str,
    client_id: str,
    lifetime_seconds: int,
    grace_seconds: float = 0,
    *,
    address: str | None = None,
) -> Rotated | Refused:
    """Spend `token` from client `address` and issue its successor; a spent token revokes its family, unless
    it was spent less than `grace_seconds` ago from this same address (then it gets a successor of its own).
    Run inside a transaction."""
    token_hash = presented_digest(token)
    if token_hash is None:
        return Refused("unknown")
    from_address = spent_from(token, address)
    cursor = await conn.execute(
        """
        SELECT f.account_id, f.client_id, f.id AS family_id, f.scope,
               f.revoked_at IS NOT NULL AS family_revoked,
               t.used_at IS NOT NULL AS used, t.expires_at <= now() AS expired,
               """
        + _WITHIN_GRACE
        + """ AS within_grace
        FROM refresh_tokens t JOIN refresh_families f ON f.id = t.family_id
        WHERE t.token_hash = %s
        FOR UPDATE OF t, f
        """,
        (grace_seconds, grace_seconds, from_address, token_hash),
    )
    row = await cursor.fetchone()
    if row is None:
        return Refused("unknown")
    found = Holder(row["account_id"], row["client_id"], row["family_id"], row["scope"])
    if found.client_id != client_id:
        return Refused("wrong_client", found)
    if row["family_revoked"]:
        return Refused("family_revoked", found)
    if row["used"]:
        if row["within_grace"] and not row["expired"]:  # another window of the same client and machine
            return Rotated(found, await _issue(conn, found.family_id, lifetime_seconds), again=True)
        await revoke_family(conn, found.family_id, "reused")  # even once expired: it was stolen
        return Refused("reused", found)
    if row["expired"]:
        return Refused("expired", found)
    await conn.execute(
        "UPDATE refresh_tokens SET used_at = now(), spent_from = %s WHERE token_hash = %s",
        (from_address, token_hash),
    )
    return Rotated(found, await _issue(conn, found.family_id, lifetime_seconds))


async def revoke_family(conn: AsyncConnection[DictRow], family_id: str, reason: str) -> None:
    await conn.execute(
        """
        UPDATE refresh_families SET revoked_at = now(), revoked_reason = %s
        WHERE id = %s AND revoked_at IS NULL
        """,
        (reason, family_id),
    )


async def revoke_account(conn: AsyncConnection[DictRow], account_id: str) -> int:
    """Sign the account out everywhere: revoke every live family, and deny every code it approved that no
    client has collected yet (it would start a family after the sign-out); how many families there were.

    One transaction, holding the account's row (`FOR NO KEY UPDATE`): a claim of an approved code takes the
    same row (`FOR SHARE`, `device.claim`) before it reads the code, so a claim and a sign-out run one after
    the other. A claim that came first has committed its family by the time the UPDATE below reads the
    families (each statement sees what committed before it began); one that comes after finds its code
    denied."""
    async with conn.transaction():
        await conn.execute("SELECT 1 FROM accounts WHERE id = %s FOR NO KEY UPDATE", (account_id,))
        cursor = await conn.execute(
            """
            UPDATE refresh_families SET revoked_at = now(), revoked_reason = 'signed_out_everywhere'
            WHERE account_id = %s AND revoked_at IS NULL
            """,
            (account_id,),
        )
        families = cursor.rowcount
        await conn.execute(
            "UPDATE device_authorizations SET status = 'denied'"
            " WHERE account_id = %s AND status = 'approved'",
            (account_id,),
        )
    return families


async def revoke_everyone(conn: AsyncConnection[DictRow]) -> int:
    """Sign every account out (after restoring a backup, which rewinds revocations): every family revoked,
    every approved code not yet collected denied, holding every account's row as `revoke_account` holds
    one; how many families."""
    async with conn.transaction():
        await conn.execute("SELECT 1 FROM accounts ORDER BY id FOR NO KEY UPDATE")
        cursor = await conn.execute(
            "UPDATE refresh_families SET revoked_at = now(), revoked_reason = 'signed_out_everyone'"
            " WHERE revoked_at IS NULL"
        )
        families = cursor.rowcount
        await conn.execute("UPDATE device_authorizations SET status = 'denied' WHERE status = 'approved'")
    return families


async def revoke_token(conn: AsyncConnection[DictRow], token: str) -> Holder | None:
    """RFC 7009: revoke the family of this refresh token, if it is one; who held it."""
    found = await holder(conn, token)
    if found is not None:
        await revoke_family(conn, found.family_id, "revoked")
    return found


async def forget_expired(conn: AsyncConnection[DictRow]) -> None:
    """Drop tokens a day past expiry (a spent token is kept until then, to catch its reuse)."""
    await conn.execute("DELETE FROM refresh_tokens WHERE expires_at < now() - interval '1 day'")
