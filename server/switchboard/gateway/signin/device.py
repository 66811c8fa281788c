"""Device authorizations (RFC 8628): started by a client, decided on the /device page, claimed by polling.

A row lives from `device_authorization` until its code expires: `pending` until the user approves or
denies it on /device, then `approved` or `denied`; an approved one becomes `used` when the client claims
its tokens, so a device code signs in at most once. PostgreSQL's clock decides expiry and polling speed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, LiteralString

from psycopg import AsyncConnection
from psycopg.errors import UniqueViolation
from psycopg.rows import DictRow

from .codes import Digest, Opaque, digest, new_user_code, presented_digest

SLOW_DOWN_SECONDS = 5  # RFC 8628 §3.5: every slow_down adds 5 seconds to the interval
PollOutcome = Literal[
    "authorization_pending", "slow_down", "expired_token", "access_denied", "invalid_grant", "approved"
]


@dataclass(frozen=True)
class DeviceAuthorization:
    device_code: str
    user_code: str  # compact
    expires_in: int
    interval: int


@dataclass(frozen=True)
class Poll:
    outcome: PollOutcome
    account_id: str | None = None
    scope: str = ""  # the scope the client asked for (space-separated), once approved


async def start(
    conn: AsyncConnection[DictRow], client_id: str, scope: str, lifetime_seconds: int, interval_seconds: int
) -> DeviceAuthorization:
    device_code = Opaque.new()
    while True:  # a user code may (very rarely) collide with a stored one: draw another
        user_code = new_user_code()
        try:
            await conn.execute(
                """
                INSERT INTO device_authorizations
                    (device_code_hash, user_code_hash, client_id, scope, status, interval_seconds, expires_at)
                VALUES (%s, %s, %s, %s, 'pending', %s, now() + make_interval(secs => %s))
                """,
                (
                    device_code.digest,
                    digest(user_code),
                    client_id,
                    scope,
                    interval_seconds,
                    lifetime_seconds,
                ),
            )
        except UniqueViolation:
            continue
        return DeviceAuthorization(device_code.value, user_code, lifetime_seconds, interval_seconds)


async def poll(conn: AsyncConnection[DictRow], device_code: str, client_id: str) -> Poll:
    """One poll of the token endpoint; an approved authorization is claimed (becomes `used`) here.

    Run it inside a transaction: the row stays locked until the caller has issued the tokens. An approved
    code's account row is held too (`FOR SHARE`), taken before the code's row, the order a sign-out takes
    them in (`refresh.revoke_account`): a sign-out running meanwhile either waits for this claim to commit
    its family (and then revokes it) or has denied the code before this claim reads it.
    """
    code_hash = presented_digest(device_code)
    if code_hash is None:
        return Poll("invalid_grant")
    held = await _hold_approver(conn, code_hash)
    cursor = await conn.execute(
        """
        SELECT client_id, scope, status, account_id, expires_at <= now() AS expired,
               last_polled_at + make_interval(secs => interval_seconds) > now() AS too_soon
        FROM device_authorizations WHERE device_code_hash = %s FOR UPDATE
        """,
        (code_hash,),
    )
    row = await cursor.fetchone()
    if row is None or row["client_id"] != client_id or row["status"] == "used":
        return Poll("invalid_grant")
    if row["expired"]:
        return Poll("expired_token")
    if row["status"] == "denied":
        return Poll("access_denied")
    if row["status"] == "approved":
        if row["account_id"] != held:  # approved after `_hold_approver` looked: the next poll claims it
            return Poll("authorization_pending")
        await _set(conn, code_hash, "status = 'used'")
        return Poll("approved", row["account_id"], row["scope"])
    if row["too_soon"]:
        slower: LiteralString = "interval_seconds = interval_seconds + %s, last_polled_at = now()"
        await _set(conn, code_hash, slower, SLOW_DOWN_SECONDS)
        return Poll("slow_down")
    await _set(conn, code_hash, "last_polled_at = now()")
    return Poll("authorization_pending")


async def _hold_approver(conn: AsyncConnection[DictRow], code_hash: Digest) -> str | None:
    """Lock the row of the account that approved this code, if it is approved; that account's id."""
    cursor = await conn.execute(
        """
        SELECT a.id FROM device_authorizations d JOIN accounts a ON a.id = d.account_id
        WHERE d.device_code_hash = %s AND d.status = 'approved'
        FOR SHARE OF a
        """,
        (code_hash,),
    )
    row = await cursor.fetchone()
    return row["id"] if row else None


async def _set(
    conn: AsyncConnection[DictRow], code_hash: Digest, assignments: LiteralString, *values: object
) -> None:
    await conn.execute(
        f"UPDATE device_authorizations SET {assignments} WHERE device_code_hash = %s",
        (*values, code_hash),
    )


@dataclass(frozen=True)
class Pending:
    """What a pending code asks for, for the person about to decide it."""

    client_id: str
    scope: str  # space-separated


async def pending(conn: AsyncConnection[DictRow], user_code: str) -> Pending | None:
    cursor = await conn.execute(
        """
        SELECT client_id, scope FROM device_authorizations
        WHERE user_code_hash = %s AND status = 'pending' AND expires_at > now()
        """,
        (digest(user_code),),
    )
    row = await cursor.fetchone()
    return Pending(row["client_id"], row["scope"]) if row else None


async def hold_account(conn: AsyncConnection[DictRow], account_id: str) -> None:
    """Hold the account's row (`FOR SHARE`) until the transaction ends, before deciding a code for it, as a
    claim does (`poll`): a sign-out everywhere (`refresh.revoke_account`) waits for the decision and then
    denies the code it approved, or comes first."""
    await conn.execute("SELECT 1 FROM accounts WHERE id = %s FOR SHARE", (account_id,))


async def decide(
    conn: AsyncConnection[DictRow], user_code: str, account_id: str, approve: bool
) -> str | None:
    """Approve or deny a pending code for `account_id`; the client id, or None if nothing was pending."""
    cursor = await conn.execute(
        """
        UPDATE device_authorizations
        SET status = %s, account_id = %s, decided_at = now()
        WHERE user_code_hash = %s AND status = 'pending' AND expires_at > now()
        RETURNING client_id
        """,
        ("approved" if approve else "denied", account_id, digest(user_code)),
    )
    row = await cursor.fetchone()
    return row["client_id"] if row else None


async def forget_expired(conn: AsyncConnection[DictRow]) -> None:
    await conn.execute("DELETE FROM device_authorizations WHERE expires_at < now() - interval '1 day'")
