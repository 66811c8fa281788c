"""Migrations 0004 (scopes), 0005 (browser sessions) and 0012 (where a refresh token was spent from) go down
and up again on a real PostgreSQL, and the sign-ins made before survive where the older schema can hold
them."""

from __future__ import annotations

import asyncio

import psycopg
from alembic import command
from psycopg.rows import DictRow, dict_row

from gateway.pgcluster import Cluster
from switchboard.gateway import migrate
from switchboard.gateway.accounts import create_account
from switchboard.gateway.signin import browser, device, refresh
from switchboard.gateway.signin.codes import digest

DAY = 86400
CLIENT = "switchboard-vscode"


async def columns(url: str, table: str) -> set[str]:
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        cursor = await conn.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_name = %s", (table,)
        )
        return {row[0] for row in await cursor.fetchall()}


async def has_table(url: str, table: str) -> bool:
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        cursor = await conn.execute("SELECT to_regclass(%s) IS NOT NULL", (table,))
        row = await cursor.fetchone()
        return bool(row and row[0])


async def test_migrations_0004_and_0005_go_down_and_up_again_and_sign_ins_survive(cluster: Cluster) -> None:
    url = cluster.new_database()
    config = migrate.alembic_config(url)
    await asyncio.to_thread(migrate.upgrade, url)
    async with await psycopg.AsyncConnection.connect(url, autocommit=True, row_factory=dict_row) as conn:
        account = await create_account(conn, "migrated@example.test", "a password", "pro")
        chat_only = await refresh.start_family(conn, account.id, CLIENT, "chat", 30 * DAY)
        everything = await refresh.start_family(conn, account.id, CLIENT, "chat billing", 30 * DAY)
        pending = await device.start(conn, CLIENT, "chat", 600, 5)
        session = await browser.start(conn, account.id)
        assert await browser.account_of(conn, session) == account.id

    # Down past 0005: the browser sessions go (every browser is signed out of /account), nothing else does.
    await asyncio.to_thread(command.downgrade, config, "0004")
    assert not await has_table(url, "browser_sessions")
    assert "scope" in await columns(url, "refresh_families")
    await asyncio.to_thread(command.upgrade, config, "0005")
    async with await psycopg.AsyncConnection.connect(url, autocommit=True, row_factory=dict_row) as conn:
        assert await browser.account_of(conn, session) is None
        again = await browser.start(conn, account.id)  # the table is usable again
        assert await browser.account_of(conn, again) == account.id
        found = await refresh.holder(conn, chat_only)
        assert found is not None and found.scope == "chat"  # 0004's column was untouched

    # Down past 0004: the scope columns go; the release before scopes let every sign-in do everything, so
    # coming back, every family and pending authorization has every scope (the column's default), as the
    # migration documents for rows from before scopes existed.
    await asyncio.to_thread(command.downgrade, config, "0003")
    assert "scope" not in await columns(url, "refresh_families")
    assert "scope" not in await columns(url, "device_authorizations")
    assert not await has_table(url, "browser_sessions")
    async with await psycopg.AsyncConnection.connect(url, autocommit=True, row_factory=dict_row) as conn:
        cursor = await conn.execute(
            "SELECT count(*) AS n FROM refresh_families WHERE account_id = %s", (account.id,)
        )
        families = await cursor.fetchone()
        assert families == {"n": 2}
    await asyncio.to_thread(migrate.upgrade, url)
    async with await psycopg.AsyncConnection.connect(url, autocommit=True, row_factory=dict_row) as conn:
        for token in (chat_only, everything):
            async with conn.transaction():
                rotated = await refresh.rotate(conn, token, CLIENT, 30 * DAY)
            assert isinstance(rotated, refresh.Rotated), rotated
            assert rotated.holder.account_id == account.id and rotated.holder.scope == "chat billing"
        async with conn.transaction():
            polled = await device.poll(conn, pending.device_code, CLIENT)
        assert polled.outcome == "authorization_pending"
        assert await browser.account_of(conn, again) is None  # 0005 came back empty


async def previous_release_spend(conn: psycopg.AsyncConnection[DictRow], token: str) -> None:
    """What a replica of the release before 0012 does when it rotates a token: no address."""
    await conn.execute("UPDATE refresh_tokens SET used_at = now() WHERE token_hash = %s", (digest(token),))


async def test_migration_0012_goes_down_and_up_and_a_token_spent_without_an_address_has_no_grace(
    cluster: Cluster,
) -> None:
    """0012 adds where a refresh token was spent from. A token the previous release spent has no address,
    so its reuse revokes the family even within the grace; a token this release spends has the grace from
    its own address. Down to 0011 the column goes, the families stay, and the previous release's rotation
    still works."""
    url = cluster.new_database()
    config = migrate.alembic_config(url)
    await asyncio.to_thread(migrate.upgrade, url, "0011")
    async with await psycopg.AsyncConnection.connect(url, autocommit=True, row_factory=dict_row) as conn:
        account = await create_account(conn, "spent@example.test", "a password", "pro")
        old_spent = await refresh.start_family(conn, account.id, CLIENT, "chat billing", 30 * DAY)
        kept = await refresh.start_family(conn, account.id, CLIENT, "chat billing", 30 * DAY)
        await previous_release_spend(conn, old_spent)
    await asyncio.to_thread(migrate.upgrade, url)
    assert "spent_from" in await columns(url, "refresh_tokens")
    async with await psycopg.AsyncConnection.connect(url, autocommit=True, row_factory=dict_row) as conn:
        async with conn.transaction():
            again = await refresh.rotate(conn, old_spent, CLIENT, 30 * DAY, 30, address="192.0.2.1")
        assert isinstance(again, refresh.Refused) and again.reason == "reused"
        async with conn.transaction():
            rotated = await refresh.rotate(conn, kept, CLIENT, 30 * DAY, 30, address="192.0.2.1")
        assert isinstance(rotated, refresh.Rotated)
        async with conn.transaction():
            sibling = await refresh.rotate(conn, kept, CLIENT, 30 * DAY, 30, address="192.0.2.1")
        assert isinstance(sibling, refresh.Rotated) and sibling.again
    await asyncio.to_thread(command.downgrade, config, "0011")
    assert "spent_from" not in await columns(url, "refresh_tokens")
    async with await psycopg.AsyncConnection.connect(url, autocommit=True, row_factory=dict_row) as conn:
        await previous_release_spend(conn, sibling.refresh_token)
        found = await refresh.holder(conn, rotated.refresh_token)
        assert found is not None and found.account_id == account.id
    await asyncio.to_thread(migrate.upgrade, url)
    async with await psycopg.AsyncConnection.connect(url, autocommit=True, row_factory=dict_row) as conn:
        async with conn.transaction():
            after = await refresh.rotate(
                conn, rotated.refresh_token, CLIENT, 30 * DAY, 30, address="192.0.2.1"
            )
        assert isinstance(after, refresh.Rotated)
