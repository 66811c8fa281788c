"""Browser sessions for /account and /device: who is looking at the page.

The session id is 256 random bits, sent only in an HttpOnly cookie (Secure over https, SameSite=Lax) and
stored only as its SHA-256 digest, so a copy of the database signs nobody in. A session lives
`SESSION_SECONDS` from signing in on /account (one /device starts lives as long as its confirmation) and
ends at once on sign-out (or when the account is revoked).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import LiteralString

from psycopg import AsyncConnection
from psycopg.rows import DictRow

from .codes import Opaque, presented_digest

SESSION_SECONDS = 8 * 3600


@dataclass(frozen=True)
class DeviceSignIn:
    """A live refresh family: one program signed in with a device code."""

    family_id: str
    client_id: str
    scope: str
    signed_in_at: datetime


async def start(conn: AsyncConnection[DictRow], account_id: str, seconds: int = SESSION_SECONDS) -> str:
    """A new session for `account_id`, living `seconds`; returns its id (for the cookie only)."""
    session = Opaque.new()
    await conn.execute(
        """
        INSERT INTO browser_sessions (id_hash, account_id, expires_at)
        VALUES (%s, %s, now() + make_interval(secs => %s))
        """,
        (session.digest, account_id, seconds),
    )
    return session.value


async def extend(
    conn: AsyncConnection[DictRow], session_id: str, account_id: str, seconds: int
) -> int | None:
    """Make `account_id`'s live session `session_id` last at least `seconds` more (never shorter); the
    seconds it has left then, or None if it is not a live session of that account."""
    id_hash = presented_digest(session_id)
    if id_hash is None:
        return None
    cursor = await conn.execute(
        """
        UPDATE browser_sessions SET expires_at = greatest(expires_at, now() + make_interval(secs => %s))
        WHERE id_hash = %s AND account_id = %s AND ended_at IS NULL AND expires_at > now()
        RETURNING ceil(extract(epoch FROM expires_at - now()))::int AS left_seconds
        """,
        (seconds, id_hash, account_id),
    )
    row = await cursor.fetchone()
    return row["left_seconds"] if row else None


async def account_of(conn: AsyncConnection[DictRow], session_id: str) -> str | None:
    """The account of a live session, or None (unknown, ended, expired, or a malformed cookie)."""
    return await _account_of(conn, session_id, "")


async def hold(conn: AsyncConnection[DictRow], session_id: str) -> str | None:
    """`account_of`, and the session's row held (`FOR SHARE`) until the transaction ends: a sign-out of
    this session waits for it, so what the caller does next happens before the sign-out, or not at all."""
    return await _account_of(conn, session_id, "FOR SHARE")


async def _account_of(conn: AsyncConnection[DictRow], session_id: str, lock: LiteralString) -> str | None:
    id_hash = presented_digest(session_id)
    if id_hash is None:
        return None
    cursor = await conn.execute(
        f"""
        SELECT account_id FROM browser_sessions
        WHERE id_hash = %s AND ended_at IS NULL AND expires_at > now()
        {lock}
        """,
        (id_hash,),
    )
    row = await cursor.fetchone()
    return row["account_id"] if row else None


async def end(conn: AsyncConnection[DictRow], session_id: str) -> None:
    id_hash = presented_digest(session_id)
    if id_hash is not None:
        await conn.execute(
            "UPDATE browser_sessions SET ended_at = now() WHERE id_hash = %s AND ended_at IS NULL", (id_hash,)
        )


async def end_all(conn: AsyncConnection[DictRow], account_id: str | None = None) -> int:
    """End every live session of `account_id` (None: of every account); how many ended."""
    cursor = await conn.execute(
        """
        UPDATE browser_sessions SET ended_at = now()
        WHERE ended_at IS NULL AND expires_at > now()
            AND (%(account)s::text IS NULL OR account_id = %(account)s)
        """,
        {"account": account_id},
    )
    return cursor.rowcount


async def device_sign_ins(conn: AsyncConnection[DictRow], account_id: str) -> list[DeviceSignIn]:
    """The account's live device sign-ins, newest first."""
    cursor = await conn.execute(
        """
        SELECT id, client_id, scope, created_at FROM refresh_families
        WHERE account_id = %s AND revoked_at IS NULL ORDER BY created_at DESC
        """,
        (account_id,),
    )
    return [
        DeviceSignIn(row["id"], row["client_id"], row["scope"], row["created_at"])
        for row in await cursor.fetchall()
    ]


async def sign_out_device(conn: AsyncConnection[DictRow], account_id: str, family_id: str) -> bool:
    """Revokes one of the account's own device sign-ins (never another account's); whether it was live."""
    cursor = await conn.execute(
        """
        UPDATE refresh_families SET revoked_at = now(), revoked_reason = 'signed_out_from_account_page'
        WHERE id = %s AND account_id = %s AND revoked_at IS NULL
        """,
        (family_id, account_id),
    )
    return cursor.rowcount == 1


async def forget_expired(conn: AsyncConnection[DictRow]) -> None:
    await conn.execute("DELETE FROM browser_sessions WHERE expires_at < now() - interval '1 day'")
