"""Housekeeping deletes what sign-in no longer needs, and nothing it still does."""

from __future__ import annotations

from gateway.signin.signin_support import SignInAccounts
from switchboard.gateway.config import load_settings
from switchboard.gateway.db import open_pool
from switchboard.gateway.signin.housekeeping import sweep_once


async def test_a_sweep_drops_dead_codes_windows_and_tokens_only(
    signin_env: dict[str, str], people: SignInAccounts
) -> None:
    person = await people.create()
    await people.execute(
        "INSERT INTO device_authorizations (device_code_hash, user_code_hash, client_id, status,"
        " interval_seconds, expires_at) VALUES"
        " ('hk-old', 'hk-old-user', 'switchboard-vscode', 'pending', 5, now() - interval '2 days'),"
        " ('hk-live', 'hk-live-user', 'switchboard-vscode', 'pending', 5, now() + interval '5 minutes')"
    )
    await people.execute(
        "INSERT INTO rate_limits (bucket, window_start, hits) VALUES"
        " ('hk:old', now() - interval '2 hours', 3), ('hk:live', now(), 3)"
    )
    await people.execute(
        "INSERT INTO refresh_families (id, account_id, client_id)"
        " VALUES ('fam_hk', %s, 'switchboard-vscode')",
        (person.id,),
    )
    await people.execute(
        "INSERT INTO refresh_tokens (token_hash, family_id, expires_at, used_at) VALUES"
        " ('hk-dead', 'fam_hk', now() - interval '2 days', now() - interval '3 days'),"
        " ('hk-spent', 'fam_hk', now() + interval '20 days', now())"
    )
    pool = await open_pool(load_settings(signin_env))
    try:
        await pool.wait()
        await sweep_once(pool)
    finally:
        await pool.close()
    codes = await people.execute(
        "SELECT device_code_hash FROM device_authorizations WHERE device_code_hash LIKE 'hk-%%'"
    )
    assert codes == [{"device_code_hash": "hk-live"}]
    windows = await people.execute("SELECT bucket FROM rate_limits WHERE bucket LIKE 'hk:%%'")
    assert windows == [{"bucket": "hk:live"}]
    # A spent token that has not expired is kept: it is what catches a reuse.
    tokens = await people.execute("SELECT token_hash FROM refresh_tokens WHERE family_id = 'fam_hk'")
    assert tokens == [{"token_hash": "hk-spent"}]
