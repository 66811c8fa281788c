"""Rate limits shared by every replica: fixed-window counters in PostgreSQL, one row per bucket.

A bucket's window starts with its first hit and lasts `window_seconds`; the hit after `limit` is refused
until the window ends (a burst at a window's end and the next one's start can reach twice the limit, which
the limits below allow for). Buckets are named by rule and by the SHA-256 of their key, so the table holds
no email address or client address.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from psycopg import AsyncConnection
from psycopg.rows import DictRow

from ..config import RateLimits
from .codes import digest


@dataclass(frozen=True)
class Rule:
    name: str
    limit: int
    window_seconds: int


@dataclass(frozen=True)
class Rules:
    """The rules in force, from the `rate_limits` setting (the windows are fixed here)."""

    # Per client address (after X-Forwarded-For from a trusted proxy): every request counts.
    device_authorization_per_address: Rule
    token_per_address: Rule
    device_form_per_address: Rule
    # Per account: refreshes count; on the /device form only failures count (wrong password, wrong code).
    refresh_per_account: Rule
    password_failures_per_account: Rule
    user_code_failures_per_account: Rule


def rules_for(limits: RateLimits) -> Rules:
    return Rules(
        Rule("device_authorization:addr", limits.device_authorizations_per_address, 60),
        Rule("token:addr", limits.token_requests_per_address, 60),
        Rule("device_form:addr", limits.device_forms_per_address, 600),
        Rule("refresh:acct", limits.refreshes_per_account, 3600),
        Rule("password:acct", limits.password_failures_per_account, 900),
        Rule("user_code:acct", limits.user_code_failures_per_account, 3600),
    )


LONGEST_WINDOW_SECONDS = 3600


class RateLimited(Exception):
    def __init__(self, rule: Rule, retry_after: int) -> None:
        super().__init__(f"rate limit {rule.name} reached")
        self.rule, self.retry_after = rule, max(1, retry_after)


def address_key(address: str) -> str:
    """The key of a client address's buckets: an IPv4 address as it is, an IPv6 address by its /64.

    An IPv6 client holds at least a /64 and can take a new address in it for every request, so a bucket
    per address would not limit it. An IPv4-mapped address (::ffff:a.b.c.d) counts as its IPv4 address.
    Anything that is not an address ("unknown", an odd X-Forwarded-For entry) is its own key, as it is.
    """
    try:
        parsed = ipaddress.ip_address(address)
    except ValueError:
        return address
    if isinstance(parsed, ipaddress.IPv4Address):
        return str(parsed)
    if parsed.ipv4_mapped is not None:
        return str(parsed.ipv4_mapped)
    return str(ipaddress.ip_network((parsed, 64), strict=False))


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


async def give_back(conn: AsyncConnection[DictRow], rule: Rule, key: str) -> None:
    """Take back one hit of the current window (one counted ahead that turned out not to count)."""
    await conn.execute(
        """
        UPDATE rate_limits SET hits = greatest(hits - 1, 0)
        WHERE bucket = %(bucket)s AND window_start + make_interval(secs => %(window)s) > now()
        """,
        {"bucket": bucket(rule, key), "window": rule.window_seconds},
    )


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
