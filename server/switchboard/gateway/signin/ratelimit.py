"""Rate limits shared by every replica: fixed-window counters in PostgreSQL, one row per bucket.

A bucket's window starts with its first hit and lasts `window_seconds`; the hit after `limit` is refused
until the window ends (a burst at a window's end and the next one's start can reach twice the limit, which
the limits below allow for). Buckets are named by rule and by the SHA-256 of their key, so the table holds
no email address or client address.
"""

from __future__ import annotations

from dataclasses import dataclass

from psycopg import AsyncConnection
from psycopg.rows import DictRow

from .codes import digest


@dataclass(frozen=True)
class Rule:
    name: str
    limit: int
    window_seconds: int


# Per client address (after X-Forwarded-For from a trusted proxy): every request counts.
DEVICE_AUTHORIZATION_PER_ADDRESS = Rule("device_authorization:addr", 10, 60)
TOKEN_PER_ADDRESS = Rule("token:addr", 120, 60)
DEVICE_FORM_PER_ADDRESS = Rule("device_form:addr", 20, 600)
# Per account: refreshes count; on the /device form only failures count (wrong password, wrong user code).
REFRESH_PER_ACCOUNT = Rule("refresh:acct", 60, 3600)
PASSWORD_FAILURES_PER_ACCOUNT = Rule("password:acct", 10, 900)
USER_CODE_FAILURES_PER_ACCOUNT = Rule("user_code:acct", 10, 3600)
LONGEST_WINDOW_SECONDS = 3600


class RateLimited(Exception):
    def __init__(self, rule: Rule, retry_after: int) -> None:
        super().__init__(f"rate limit {rule.name} reached")
        self.rule, self.retry_after = rule, max(1, retry_after)


def bucket(rule: Rule, key: str) -> str:
    return f"{rule.name}:{digest(key)[:32]}"


async def hit(conn: AsyncConnection[DictRow], rule: Rule, key: str) -> None:
    """Count one hit; raises `RateLimited` once the window holds more than `rule.limit`."""
    cursor = await conn.execute(
        """
        INSERT INTO rate_limits AS r (bucket, window_start, hits) VALUES (%(bucket)s, now(), 1)
        ON CONFLICT (bucket) DO UPDATE SET
            window_start = CASE WHEN r.window_start + make_interval(secs => %(window)s) <= now()
                                THEN now() ELSE r.window_start END,
            hits = CASE WHEN r.window_start + make_interval(secs => %(window)s) <= now()
                        THEN 1 ELSE r.hits + 1 END
        RETURNING hits,
            ceil(extract(epoch FROM window_start + make_interval(secs => %(window)s) - now()))::int AS retry
        """,
        {"bucket": bucket(rule, key), "window": rule.window_seconds},
    )
    row = await cursor.fetchone()
    assert row is not None
    if row["hits"] > rule.limit:
        raise RateLimited(rule, row["retry"])


async def check(conn: AsyncConnection[DictRow], rule: Rule, key: str) -> None:
    """Raises `RateLimited` if the window already holds `rule.limit` hits; counts nothing."""
    cursor = await conn.execute(
        """
        SELECT hits,
            ceil(extract(epoch FROM window_start + make_interval(secs => %(window)s) - now()))::int AS retry
        FROM rate_limits
        WHERE bucket = %(bucket)s AND window_start + make_interval(secs => %(window)s) > now()
        """,
        {"bucket": bucket(rule, key), "window": rule.window_seconds},
    )
    row = await cursor.fetchone()
    if row is not None and row["hits"] >= rule.limit:
        raise RateLimited(rule, row["retry"])


async def forget_expired(conn: AsyncConnection[DictRow]) -> None:
    await conn.execute(
        "DELETE FROM rate_limits WHERE window_start < now() - make_interval(secs => %s)",
        (LONGEST_WINDOW_SECONDS,),
    )
