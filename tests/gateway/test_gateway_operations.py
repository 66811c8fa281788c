"""Operating the gateway: probes, published keys, usage and overage, the admin CLI, secrets kept out."""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import json
import logging
import os
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import jwt
import psycopg
import pytest

from gateway.gateway_support import (
    HTTP,
    VENDOR_KEY,
    Accounts,
    Replica,
    access_lines,
    balance,
    run_cli,
    sdk,
    turn_headers,
)
from gateway.pgcluster import Cluster
from switchboard.fakeapi import FakeAnthropic, Fault
from switchboard.gateway.accesslog import JsonLines, access_log
from switchboard.gateway.accounts import password_matches
from switchboard.gateway.db import READY_TIMEOUT_SECONDS
from switchboard.gateway.tokens import TokenAuthority
from switchboard.plans.entitlement import verify_entitlement
from switchboard.plans.trust import TrustedKeys, parse_jwks

HAIKU = "claude-haiku-4-5-20251001"


def auth(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


def test_probes_answer(replica: Replica) -> None:
    assert HTTP.get(replica.url + "/healthz").json() == {"status": "ok"}
    assert HTTP.get(replica.url + "/readyz").status_code == 200


async def test_without_postgresql_a_replica_is_alive_not_ready_and_refuses_with_a_retryable_503(
    gateway_env: dict[str, str], make_accounts: Accounts, tmp_path: Path, closed_port: int
) -> None:
    account = await make_accounts.create("pro")
    nowhere = f"postgresql://postgres@127.0.0.1:{closed_port}/gateway"
    env = {
        **gateway_env,
        "SWITCHBOARD_GATEWAY_DATABASE_URL": nowhere,
        "SWITCHBOARD_GATEWAY_POOL_TIMEOUT_SECONDS": "1",
    }
    replica = await asyncio.to_thread(Replica.start, env, tmp_path / "no-db.log", "/healthz")
    try:
        assert HTTP.get(replica.url + "/readyz").status_code == 503
        body = {"model": HAIKU, "max_tokens": 50, "messages": [{"role": "user", "content": "hi"}]}
        headers = {**turn_headers("claude-haiku-4.5"), **auth(account.token)}
        response = await asyncio.to_thread(
            HTTP.post, replica.url + "/v1/messages", json=body, headers=headers
        )
        assert response.status_code == 503
        assert response.headers["x-should-retry"] == "true"
        assert response.json()["error"]["type"] == "api_error"
    finally:
        replica.stop()


def test_an_unknown_path_or_method_is_answered_with_anthropics_error_json(replica: Replica) -> None:
    for method, path, status, error_type in [
        ("GET", "/v1/messages", 405, "invalid_request_error"),
        ("HEAD", "/v1/messages", 405, "invalid_request_error"),
        ("POST", "/v1/messages/count_tokens", 404, "not_found_error"),
        ("POST", "/v1/complete", 404, "not_found_error"),
    ]:
        answer = HTTP.request(method, replica.url + path)
        assert answer.status_code == status, (method, path)
        assert answer.headers["x-should-retry"] == "false", (method, path)
        if method != "HEAD":
            error = answer.json()
            assert error["type"] == "error" and error["error"]["type"] == error_type, (method, path)
            assert path in error["error"]["message"]
        if status == 405:
            assert answer.headers["allow"] == "POST"


async def test_a_postgresql_that_never_answers_costs_readyz_one_check_timeout_not_one_per_pool(
    gateway_env: dict[str, str], tmp_path: Path
) -> None:
    # A load balancer's probe times out: both pools are checked at once, so a PostgreSQL that accepts and then
    # says nothing keeps /readyz waiting one READY_TIMEOUT_SECONDS (2 s), not two of them in a row.
    with socket.create_server(("127.0.0.1", 0), backlog=128) as silent:
        port = silent.getsockname()[1]
        env = {
            **gateway_env,
            "SWITCHBOARD_GATEWAY_DATABASE_URL": f"postgresql://postgres@127.0.0.1:{port}/gateway",
            "SWITCHBOARD_GATEWAY_POOL_TIMEOUT_SECONDS": "30",
        }
        replica = await asyncio.to_thread(Replica.start, env, tmp_path / "silent-db.log", "/healthz")
        try:
            started = time.monotonic()
            answer = await asyncio.to_thread(HTTP.get, replica.url + "/readyz", timeout=10)
            waited = time.monotonic() - started
        finally:
            replica.stop()
    assert answer.status_code == 503 and answer.json() == {"status": "PostgreSQL is unreachable"}
    assert READY_TIMEOUT_SECONDS <= waited < 1.6 * READY_TIMEOUT_SECONDS, waited


async def test_jwks_publishes_both_keys_and_an_access_token_is_an_entitlement(
    make_accounts: Accounts, replica: Replica
) -> None:
    document = HTTP.get(replica.url + "/.well-known/jwks.json").json()
    assert len(document["keys"]) == 2 and len({key["kid"] for key in document["keys"]}) == 2
    assert all(set(key) >= {"kty", "crv", "x", "kid", "alg"} and "d" not in key for key in document["keys"])
    account = await make_accounts.create("pro_plus")
    keys, problems = parse_jwks(document, "jwks")
    assert not problems
    # The language server's own offline check accepts the gateway's access token from the published keys.
    entitlement = verify_entitlement(account.token, TrustedKeys(tuple(keys)))
    assert entitlement.plan == "pro_plus" and entitlement.account == account.id
    assert entitlement.expires_at is not None


async def test_a_token_signed_by_the_second_key_is_accepted_so_keys_rotate(
    make_accounts: Accounts, replicas: list[Replica], authority: TokenAuthority
) -> None:
    account = await make_accounts.create("pro")
    current, upcoming = authority.signing_keys
    promoted = TokenAuthority(authority.issuer, authority.lifetime, (upcoming, current))
    token = promoted.issue(account.id, "pro")
    assert jwt.get_unverified_header(token)["kid"] != jwt.get_unverified_header(account.token)["kid"]
    for replica in replicas:  # still configured with the old order: both keys verify
        assert HTTP.get(replica.url + "/v1/switchboard/usage", headers=auth(token)).status_code == 200


async def test_usage_report_has_the_language_servers_shape_with_held_credits_as_reserved(
    make_accounts: Accounts, replicas: list[Replica]
) -> None:
    account = await make_accounts.create("pro")
    body = {
        "model": HAIKU,
        "max_tokens": 1000,
        "messages": [{"role": "user", "content": "hi [[fake:stall=1.5]]"}],
    }
    headers = {**turn_headers("claude-haiku-4.5"), **auth(account.token)}
    pending = asyncio.ensure_future(
        asyncio.to_thread(HTTP.post, replicas[0].url + "/v1/messages", json=body, headers=headers)
    )
    await asyncio.sleep(0.7)
    held = HTTP.get(replicas[1].url + "/v1/switchboard/usage", headers=auth(account.token)).json()
    assert held["reserved"] > 0 and held["usedCredits"] == 0
    answer = (await pending).json()
    report = HTTP.get(replicas[1].url + "/v1/switchboard/usage", headers=auth(account.token)).json()
    assert report["reserved"] == 0
    assert report["usedCredits"] == answer["switchboard"]["credits"] > 0
    assert report["remainingCredits"] == pytest.approx(1000 - report["usedCredits"])
    assert report["plan"] == "pro" and report["includedCredits"] == 1000 and report["account"] == account.id
    assert report["byModel"] == [
        {
            "modelId": "claude-haiku-4.5",
            "routedModel": "claude-haiku-4.5",
            "turns": 1,
            "credits": report["usedCredits"],
        }
    ]
    assert report["daily"][-1]["credits"] == report["usedCredits"]
    # The same model as the language server's report: it parses as one.
    from switchboard.protocol.messages import UsageReport

    assert UsageReport.model_validate(report).reserved == 0


async def test_after_a_move_to_a_larger_plan_the_report_counts_what_the_new_plan_still_includes(
    make_accounts: Accounts, replica: Replica
) -> None:
    """Pro spent its $20 budget (1,500 credits used, 500 of them overage), then moved to Pro+ (2,000): the
    ledger lets it use 1,000 more credits, none of them overage, and the report (which the language server
    checks a turn against before sending it) must say so, not 500."""
    account = await make_accounts.create("pro", used_credits=1500, overage=True, budget_cents=2000)
    async with await psycopg.AsyncConnection.connect(make_accounts.database_url, autocommit=True) as admin:
        await admin.execute(
            "UPDATE account_periods SET overage_h = 50000 WHERE account_id = %s", (account.id,)
        )
        await admin.execute("UPDATE accounts SET plan = 'pro_plus' WHERE id = %s", (account.id,))
    report = HTTP.get(replica.url + "/v1/switchboard/usage", headers=auth(account.token)).json()
    assert (report["plan"], report["includedCredits"], report["usedCredits"]) == ("pro_plus", 2000, 1500)
    assert report["remainingCredits"] == 1000
    assert report["overage"]["credits"] == 500 and report["overage"]["costUsd"] == 20
    assert report["alerts"] == []  # 1,000 of Pro+'s 2,000 used: no threshold passed


async def test_overage_settings(make_accounts: Accounts, replica: Replica) -> None:
    free = await make_accounts.create("free")
    refused = HTTP.post(
        replica.url + "/v1/switchboard/overage", json={"enabled": True}, headers=auth(free.token)
    )
    assert refused.status_code == 403 and refused.json()["error"]["type"] == "overage_not_available"
    assert refused.json()["error"]["allowed_plans"] == ["pro", "pro_plus", "power"]
    bad = HTTP.post(
        replica.url + "/v1/switchboard/overage", json={"enabled": "maybe"}, headers=auth(free.token)
    )
    assert bad.status_code == 400
    pro = await make_accounts.create("pro", used_credits=999.99)
    body = {"model": HAIKU, "max_tokens": 1000, "messages": [{"role": "user", "content": "hi"}]}
    headers = {**turn_headers("claude-haiku-4.5"), **auth(pro.token)}
    assert HTTP.post(replica.url + "/v1/messages", json=body, headers=headers).status_code == 402
    report = HTTP.post(
        replica.url + "/v1/switchboard/overage",
        json={"enabled": True, "budgetUsd": 5},
        headers=auth(pro.token),
    ).json()
    assert report["overage"] == {
        "available": True,
        "enabled": True,
        "budgetUsd": 5.0,
        "credits": 0.0,
        "costUsd": 0.0,
    }
    answered = HTTP.post(
        replica.url + "/v1/messages", json=body, headers={**headers, **turn_headers("claude-haiku-4.5")}
    )
    assert answered.status_code == 200
    charged = answered.json()["switchboard"]
    after = HTTP.get(replica.url + "/v1/switchboard/usage", headers=auth(pro.token)).json()
    assert after["overage"]["credits"] > 0
    assert after["overage"]["credits"] == pytest.approx(charged["credits"] - 0.01)
    assert after["overage"]["credits"] == pytest.approx(charged["overage_credits"])
    assert after["alerts"]  # past 80% and 100% of the included credits


async def test_an_overage_budget_under_a_cent_is_a_400_and_changes_nothing(
    make_accounts: Accounts, replica: Replica
) -> None:
    # It passes the schema (budgetUsd > 0) and is refused only once it is rounded down to cents: that refusal
    # used to escape the endpoint's error handling and come back as a 500 the SDK retries.
    pro = await make_accounts.create("pro")
    url = replica.url + "/v1/switchboard/overage"
    refused = HTTP.post(url, json={"enabled": True, "budgetUsd": 0.004}, headers=auth(pro.token))
    assert refused.status_code == 400
    assert refused.headers["x-should-retry"] == "false"
    assert refused.json()["error"]["type"] == "invalid_request_error"
    assert "at least $0.01" in refused.json()["error"]["message"]
    report = HTTP.get(replica.url + "/v1/switchboard/usage", headers=auth(pro.token)).json()
    assert report["overage"]["enabled"] is False and report["overage"]["budgetUsd"] is None


async def test_admin_cli_creates_accounts_changes_plans_and_issues_tokens(
    gateway_env: dict[str, str], replica: Replica
) -> None:
    email = "Admin.Made@Example.test"
    created = await asyncio.to_thread(
        run_cli,
        ["accounts", "create", "--email", email, "--plan", "free", "--password-stdin"],
        gateway_env,
        "a long password\n",
    )
    account = json.loads(created.stdout)
    assert account["plan"] == "free" and account["id"].startswith("acct_")
    async with await psycopg.AsyncConnection.connect(gateway_env["SWITCHBOARD_GATEWAY_DATABASE_URL"]) as conn:
        cursor = await conn.execute("SELECT password_hash FROM accounts WHERE id = %s", (account["id"],))
        (stored,) = await cursor.fetchone() or ("",)
    assert stored.startswith("$argon2id$") and "a long password" not in stored
    assert password_matches(stored, "a long password") and not password_matches(stored, "a long passwore")
    await asyncio.to_thread(run_cli, ["accounts", "set-plan", email.lower(), "power"], gateway_env)
    issued = await asyncio.to_thread(run_cli, ["tokens", "issue", "--account", account["id"]], gateway_env)
    token = issued.stdout.strip()
    async with sdk(replica.url, token) as client:
        await client.messages.create(
            model="claude-opus-4-5-20251101",  # allowed on Power, not on Free
            max_tokens=50,
            messages=[{"role": "user", "content": "hi"}],
            extra_headers=turn_headers("claude-opus-4.5"),
        )
    usage = json.loads((await asyncio.to_thread(run_cli, ["accounts", "usage", email], gateway_env)).stdout)
    assert usage["plan"] == "power" and usage["usedCredits"] > 0
    duplicate = subprocess.run(
        [
            sys.executable,
            "-m",
            "switchboard",
            "gateway",
            "accounts",
            "create",
            "--email",
            email,
            "--plan",
            "pro",
            "--password-stdin",
        ],
        env=gateway_env,
        input="another password\n",
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert duplicate.returncode == 1 and "exists" in duplicate.stderr


async def test_a_password_piped_with_a_windows_line_ending_is_the_password_typed(
    gateway_env: dict[str, str],
) -> None:
    """A password file saved on Windows (or piped from PowerShell) ends in CRLF: the CR is not part of it."""
    created = await asyncio.to_thread(
        run_cli,
        ["accounts", "create", "--email", "crlf@example.test", "--plan", "free", "--password-stdin"],
        gateway_env,
        "typed on windows\r\n",
    )
    account_id = json.loads(created.stdout)["id"]
    async with await psycopg.AsyncConnection.connect(gateway_env["SWITCHBOARD_GATEWAY_DATABASE_URL"]) as conn:
        cursor = await conn.execute("SELECT password_hash FROM accounts WHERE id = %s", (account_id,))
        (stored,) = await cursor.fetchone() or ("",)
    assert password_matches(stored, "typed on windows")
    assert not password_matches(stored, "typed on windows\r")


def test_configuration_errors_name_the_setting_and_never_echo_a_secret(gateway_env: dict[str, str]) -> None:
    """Each command checks the settings it needs: `migrate` only the database's, `serve` every one."""
    env = {**gateway_env, "SWITCHBOARD_GATEWAY_DATABASE_URL": "mysql://root:hunter2@db/x"}
    env.pop("SWITCHBOARD_GATEWAY_SIGNING_KEYS")
    said = {}
    for command in ("migrate", "serve"):
        result = subprocess.run(
            [sys.executable, "-m", "switchboard", "gateway", command],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode == 2
        assert "hunter2" not in result.stderr and VENDOR_KEY not in result.stderr
        said[command] = result.stderr
    assert "database_url" in said["migrate"] and "signing_keys" not in said["migrate"]
    assert "database_url" in said["serve"] and "signing_keys" in said["serve"]


async def test_migrate_and_accounts_need_only_the_database_url(
    gateway_env: dict[str, str], make_accounts: Accounts
) -> None:
    """The host that runs migrations and account changes never holds the vendor key or the signing keys; a
    mistyped gateway variable is warned about, not silently ignored."""
    account = await make_accounts.create("pro")
    env = {
        name: value
        for name, value in gateway_env.items()
        if not name.startswith("SWITCHBOARD_GATEWAY_") or name == "SWITCHBOARD_GATEWAY_DATABASE_URL"
    }
    env["SWITCHBOARD_GATEWAY_TRUSTD_PROXIES"] = "10.0.0.0/8"
    migrated = await asyncio.to_thread(run_cli, ["migrate"], env)
    assert "up to date" in migrated.stdout
    assert "SWITCHBOARD_GATEWAY_TRUSTD_PROXIES is not a gateway setting" in migrated.stderr
    assert "did you mean SWITCHBOARD_GATEWAY_TRUSTED_PROXIES" in migrated.stderr
    usage = await asyncio.to_thread(run_cli, ["accounts", "usage", account.id], env)
    assert json.loads(usage.stdout)["account"] == account.id
    issued = subprocess.run(
        [sys.executable, "-m", "switchboard", "gateway", "tokens", "issue", "--account", account.id],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert issued.returncode == 2 and "signing_keys" in issued.stderr  # it signs: it needs the keys


async def test_the_vendor_key_and_tokens_never_reach_a_log_a_response_or_the_database(
    make_accounts: Accounts, replicas: list[Replica], upstream: FakeAnthropic
) -> None:
    account = await make_accounts.create("pro")
    responses: list[Any] = []
    for replica in replicas:
        for body_text in ("hi", "hi [[fake:status=529]]", "hi [[fake:error_event after=1]]"):
            for stream in (False, True):
                body = {
                    "model": HAIKU,
                    "max_tokens": 50,
                    "stream": stream,
                    "messages": [{"role": "user", "content": body_text}],
                }
                headers = {**turn_headers("claude-haiku-4.5"), **auth(account.token)}
                responses.append(HTTP.post(replica.url + "/v1/messages", json=body, headers=headers))
        responses.append(HTTP.get(replica.url + "/v1/switchboard/usage", headers=auth(account.token)))
        responses.append(HTTP.post(replica.url + "/v1/messages", json={}, headers=auth(account.token + "x")))
    assert {r.status_code for r in responses} >= {200, 529, 401}
    secrets = (VENDOR_KEY, account.token, account.token.split(".")[2])
    for response in responses:
        seen = response.text + json.dumps(dict(response.headers))
        assert not any(secret in seen for secret in secrets)
    for replica in replicas:
        log = replica.log()
        assert '"event":"access"' in log and account.id in log
        assert not any(secret in log for secret in secrets)
    # Anthropic gets the vendor key and never the client's token; the database holds neither.
    sent = upstream.received()[-1].headers
    assert sent["x-api-key"] == VENDOR_KEY and "authorization" not in sent
    assert not any(account.token in value for value in sent.values())
    async with await psycopg.AsyncConnection.connect(make_accounts.database_url) as conn:
        for table in ("accounts", "account_periods", "turns"):
            cursor = await conn.execute(f"SELECT string_agg(t::text, ' ') FROM {table} t")  # type: ignore[arg-type]
            dump = str((await cursor.fetchone() or [""])[0])
            assert not any(secret in dump for secret in secrets), table


@pytest.mark.parametrize(
    ("fault", "stream", "status"),
    [
        (Fault("status", status=400), False, 400),
        (Fault("status", status=529), True, 529),
        (Fault("error_event", after_deltas=1), True, 200),
    ],
)
async def test_an_upstream_error_that_echoes_the_vendor_key_is_redacted(
    make_accounts: Accounts,
    replica: Replica,
    upstream: FakeAnthropic,
    fault: Fault,
    stream: bool,
    status: int,
) -> None:
    account = await make_accounts.create("pro")
    upstream.add_fault(dataclasses.replace(fault, message=f"Invalid request (key {VENDOR_KEY})"))
    body = {
        "model": HAIKU,
        "max_tokens": 50,
        "stream": stream,
        "messages": [{"role": "user", "content": "hi"}],
    }
    headers = {**turn_headers("claude-haiku-4.5"), **auth(account.token)}
    response = HTTP.post(replica.url + "/v1/messages", json=body, headers=headers)
    assert response.status_code == status
    assert "Invalid request (key [redacted])" in response.text and VENDOR_KEY not in response.text


def test_the_language_server_never_imports_the_gateway() -> None:
    probe = (
        "import sys, switchboard.cli, switchboard.server; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('starlette', 'uvicorn', 'psycopg', 'psycopg_pool', 'alembic', 'sqlalchemy', 'argon2') "
        "or m.startswith('switchboard.gateway')))"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60
    )
    assert result.stdout.strip() == "[]"


async def test_a_postgresql_restart_costs_no_request_and_loses_nothing(
    gateway_env: dict[str, str], authority: TokenAuthority, tmp_path: Path
) -> None:
    own = await asyncio.to_thread(Cluster.start)  # its own cluster: the shared one stays up for the others
    try:
        async with await psycopg.AsyncConnection.connect(own.url(), autocommit=True) as conn:
            await conn.execute("CREATE DATABASE gateway")
        env = {**gateway_env, "SWITCHBOARD_GATEWAY_DATABASE_URL": own.url("gateway")}
        await asyncio.to_thread(run_cli, ["migrate"], env)
        replica = await asyncio.to_thread(Replica.start, env, tmp_path / "restart.log")
        try:
            account = await Accounts(own.url("gateway"), authority).create("pro")
            body = {"model": HAIKU, "max_tokens": 50, "messages": [{"role": "user", "content": "hi"}]}
            answers = []
            for restart in (False, True, False):
                if restart:
                    await asyncio.to_thread(own.restart)  # every pooled connection is now dead
                headers = {**turn_headers("claude-haiku-4.5"), **auth(account.token)}
                response = await asyncio.to_thread(
                    HTTP.post, replica.url + "/v1/messages", json=body, headers=headers
                )
                assert response.status_code == 200, response.text
                answers.append(round(response.json()["switchboard"]["credits"] * 100))
            # Ready again once the pool has new connections (each readiness check waits 2 s at most; on a
            # loaded machine the reconnection can take longer).
            await asyncio.to_thread(replica.wait_ready, timeout=15)
            final = await balance(own.url("gateway"), account.id)
            assert final == {"used_h": sum(answers), "overage_h": 0, "reserved_h": 0}
        finally:
            replica.stop()
    finally:
        await asyncio.to_thread(own.stop)


def test_the_cli_says_in_one_line_when_postgresql_cannot_be_reached(
    gateway_env: dict[str, str], closed_port: int
) -> None:
    """No traceback, a clear line, exit 1, and never the URL's password."""
    unreachable = f"postgresql://ops:S3cretPW@127.0.0.1:{closed_port}/gw"
    env = {**gateway_env, "SWITCHBOARD_GATEWAY_DATABASE_URL": unreachable}
    for args in (["accounts", "usage", "ada@example.com"], ["migrate"]):
        done = subprocess.run(
            [sys.executable, "-m", "switchboard", "gateway", *args], env=env, capture_output=True, text=True
        )
        assert done.returncode == 1, done
        assert "Traceback" not in done.stderr and "S3cretPW" not in done.stderr + done.stdout, done.stderr
        assert done.stderr.strip().count("\n") == 0 and "cannot reach PostgreSQL" in done.stderr, done.stderr


def test_the_cli_passes_on_what_postgresql_said_and_never_quotes_a_malformed_url(
    gateway_env: dict[str, str], database_url: str
) -> None:
    """A database that does not exist is named as PostgreSQL named it (exit 1); a URL libpq or asyncpg cannot
    parse is a configuration error (exit 2) that calls it malformed and never quotes it (libpq's parse errors
    repeat it, password included)."""
    missing = database_url.rsplit("/", 1)[0] + "/no_such_database"
    malformed = "postgresql://ops:s3cret%zzpw@127.0.0.1/gw"
    no_port = "postgresql://ops:s3cret@127.0.0.1:notaport/gw"  # asyncpg's ValueError, 500s on every turn
    said = {}
    for name, url in (("missing", missing), ("malformed", malformed), ("no_port", no_port)):
        env = {**gateway_env, "SWITCHBOARD_GATEWAY_DATABASE_URL": url}
        for args in (["accounts", "usage", "ada@example.com"], ["migrate"], ["serve", "--port", "0"]):
            if name == "missing" and args[0] == "serve":
                continue
            command = [sys.executable, "-m", "switchboard", "gateway", *args]
            done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)
            assert done.returncode == (1 if name == "missing" else 2), done.stderr
            assert "Traceback" not in done.stderr and "s3cret" not in done.stderr, done.stderr
            said[name, args[0]] = done.stderr
    for command in ("accounts", "migrate"):
        assert '"no_such_database" does not exist' in said["missing", command], said
        assert said["missing", command].strip().count("\n") == 0, said
    for command in ("accounts", "migrate", "serve"):
        assert "database_url" in said["malformed", command] and "malformed" in said["malformed", command]
        assert "database_url" in said["no_port", command] and "port" in said["no_port", command]


def test_migrate_takes_a_multi_host_url_and_goes_down_and_up_again(
    gateway_env: dict[str, str], database_url: str, closed_port: int
) -> None:
    """The replicas accept a libpq URL naming several hosts (failover); so does `migrate`. `--down-to` takes
    the schema down to a revision, and `migrate` brings it back."""
    name = f"multi_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    port = urlsplit(database_url).port
    url = f"postgresql://postgres@127.0.0.1:{closed_port},127.0.0.1:{port}/{name}"
    env = {**gateway_env, "SWITCHBOARD_GATEWAY_DATABASE_URL": url}

    def revision() -> str:
        with psycopg.connect(url) as conn:
            row = conn.execute("SELECT version_num FROM alembic_version").fetchone()
        assert row is not None
        return row[0]

    assert "up to date" in run_cli(["migrate"], env).stdout
    head = revision()
    assert "at revision 0007" in run_cli(["migrate", "--down-to", "0007"], env).stdout
    assert revision() == "0007" != head
    run_cli(["migrate"], env)
    assert revision() == head


def test_a_logged_error_carries_its_traceback_and_never_the_vendor_key() -> None:
    """The reference a 500 gives the client leads to a log line with the cause."""
    formatter = JsonLines(secrets=[VENDOR_KEY])
    try:
        raise ZeroDivisionError(f"divided by the key {VENDOR_KEY}")
    except ZeroDivisionError:
        record = logging.getLogger("switchboard.gateway").makeRecord(
            "switchboard.gateway", logging.ERROR, __file__, 1, "unhandled error (reference %s)", ("ab12",),
            sys.exc_info(),
        )  # fmt: skip
    entry = json.loads(formatter.format(record))
    assert entry["message"] == "unhandled error (reference ab12)"
    assert "Traceback" in entry["error"] and "ZeroDivisionError" in entry["error"]
    assert VENDOR_KEY not in json.dumps(entry) and "[redacted]" in entry["error"]


def test_serve_blanks_the_vendor_key_in_what_the_replica_logs(
    gateway_env: dict[str, str], monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    """`gateway serve` is what wires the key into the log formatter: whatever the running app logs (an
    unhandled error's message, a library's warning) comes out with the key blanked. The server itself is
    replaced by a stand-in that logs what a failing request could (uvicorn's `run` is not ours to test)."""
    import uvicorn

    from switchboard.gateway import cli

    def run(server: object, sockets: object = None) -> None:
        logging.getLogger("switchboard.gateway").error("upstream refused key %s", VENDOR_KEY)
        logging.getLogger("some.library").warning("retrying with %s", VENDOR_KEY)

    for name, value in gateway_env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(uvicorn.Server, "run", run)
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    try:
        assert cli.main(["serve", "--port", "0"]) == 0
    finally:
        root.handlers[:], root.level = handlers, level
    logged = capfd.readouterr().err
    assert "upstream refused key [redacted]" in logged and "retrying with [redacted]" in logged
    assert VENDOR_KEY not in logged


def set_revision(url: str, revision: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("UPDATE alembic_version SET version_num = %s", (revision,))


async def test_a_replica_refuses_a_schema_older_than_its_release_and_serves_a_newer_one(
    gateway_env: dict[str, str], cluster: Cluster, tmp_path: Path
) -> None:
    """A replica on a schema behind its release would serve turns it cannot charge: `serve` refuses to
    start, in one line naming the fix; /readyz answers 503 if the schema goes behind while it runs. A
    revision from a later release is served (migrations keep the previous release working)."""
    from switchboard.gateway.schema import shipped

    url = cluster.new_database("schema")
    env = {**gateway_env, "SWITCHBOARD_GATEWAY_DATABASE_URL": url}
    run_cli(["migrate"], env)
    run_cli(["migrate", "--down-to", "0006"], env)
    command = [sys.executable, "-m", "switchboard", "gateway", "serve", "--port", "0"]
    done = await asyncio.to_thread(
        subprocess.run, command, env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 1, done
    assert "refusing to start: schema behind" in done.stderr and "switchboard gateway migrate" in done.stderr
    assert f"needs {shipped().head}" in done.stderr and "Traceback" not in done.stderr, done.stderr

    run_cli(["migrate"], env)
    set_revision(url, "9999_from_a_later_release")
    replica = await asyncio.to_thread(Replica.start, env, tmp_path / "ahead.log")
    try:
        assert "a later release made" in replica.log()
        set_revision(url, "0006")
        answer = await asyncio.to_thread(HTTP.get, replica.url + "/readyz")
        assert answer.status_code == 503, answer.text
        assert answer.json()["status"].startswith("schema behind: the database is at revision 0006")
        set_revision(url, shipped().head)
        assert (await asyncio.to_thread(HTTP.get, replica.url + "/readyz")).status_code == 200
    finally:
        replica.stop()


async def test_a_missing_ledger_function_is_logged_as_a_deploy_error_not_an_outage(database_url: str) -> None:
    import asyncpg

    from switchboard.gateway.db import LedgerPool, LedgerUnavailable, ledger_connection

    pool = LedgerPool(database_url, max_size=1, connect_timeout=5)
    try:
        with pytest.raises(LedgerUnavailable) as raised:
            async with ledger_connection(pool, 5) as conn:
                await conn.fetchval("SELECT no_such_ledger_function(1)")
    finally:
        await pool.close()
    assert isinstance(raised.value.__cause__, asyncpg.UndefinedFunctionError)
    said = str(raised.value)
    assert "SQLSTATE 42883" in said and "deploy error" in said and "switchboard gateway migrate" in said


def test_two_migrates_at_once_from_an_empty_database_both_succeed(
    gateway_env: dict[str, str], cluster: Cluster
) -> None:
    """A deploy that runs `migrate` from two hosts: they take turns (an advisory lock), and the second finds
    the schema up to date instead of failing on a duplicate key or a table that already exists."""
    from switchboard.gateway.schema import shipped

    for _ in range(2):
        url = cluster.new_database("twice")
        env = {**gateway_env, "SWITCHBOARD_GATEWAY_DATABASE_URL": url}
        command = [sys.executable, "-m", "switchboard", "gateway", "migrate"]
        running = [
            subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            for _ in range(2)
        ]
        for process in running:
            out, err = process.communicate(timeout=120)
            assert process.returncode == 0, err
            assert "up to date" in out
        with psycopg.connect(url) as conn:
            assert conn.execute("SELECT version_num FROM alembic_version").fetchall() == [(shipped().head,)]


def wait_for_a_lock_wait(conn: psycopg.Connection[Any], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not conn.execute("SELECT 1 FROM pg_locks WHERE NOT granted").fetchone():
        assert time.monotonic() < deadline, "no session waited for a lock"
        time.sleep(0.02)


def test_a_migration_waits_only_lock_timeout_behind_a_long_transaction_and_is_tried_again(
    gateway_env: dict[str, str], cluster: Cluster
) -> None:
    """A migration's ALTER waiting behind a long transaction would queue every ledger statement on that table
    behind itself: it waits `--lock-timeout` at most, is rolled back and tried again, and `migrate` fails in
    one line if the lock never comes."""
    url = cluster.new_database("locked")
    env = {**gateway_env, "SWITCHBOARD_GATEWAY_DATABASE_URL": url}
    run_cli(["migrate"], env)
    run_cli(["migrate", "--down-to", "0009"], env)  # 0010 alters `turns`
    command = [sys.executable, "-m", "switchboard", "gateway", "migrate", "--lock-timeout", "0.3"]
    with psycopg.connect(url) as holder:
        holder.execute("LOCK TABLE turns IN ACCESS SHARE MODE")  # a long reader, in its open transaction
        started = time.monotonic()
        migrate = subprocess.Popen(
            command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        # Meanwhile a ledger reader is not queued behind the waiting ALTER for longer than its lock timeout.
        with psycopg.connect(url, autocommit=True) as reader:
            wait_for_a_lock_wait(reader)
            reader.execute("SELECT count(*) FROM turns")
        out, err = migrate.communicate(timeout=60)
        assert time.monotonic() - started < 30
    assert migrate.returncode == 1, err
    assert "trying again (2 of 4)" in err and "waited 0.3 s for a table lock" in err, err
    assert err.strip().splitlines()[-1].endswith("when it is quieter") and "Traceback" not in err, err

    with psycopg.connect(url) as holder:
        holder.execute("LOCK TABLE turns IN ACCESS SHARE MODE")
        migrate = subprocess.Popen(
            command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        with psycopg.connect(url, autocommit=True) as watcher:
            wait_for_a_lock_wait(watcher)
        time.sleep(0.5)  # past the first try's lock timeout
        holder.rollback()  # the long transaction ends: the next try gets the lock
        out, err = migrate.communicate(timeout=60)
    assert migrate.returncode == 0 and "up to date" in out, err
    assert "trying again" in err


async def test_a_pool_busy_behind_a_lock_is_not_postgresql_unreachable(
    gateway_env: dict[str, str], make_accounts: Accounts, tmp_path: Path
) -> None:
    """Every connection of the request pool waiting on a lock: /readyz checks on its own connection and
    stays 200 (a load balancer must not take every replica out of rotation for contention)."""
    account = await make_accounts.create("pro")
    env = {**gateway_env, "SWITCHBOARD_GATEWAY_POOL_MIN_SIZE": "1", "SWITCHBOARD_GATEWAY_POOL_MAX_SIZE": "1"}
    replica = await asyncio.to_thread(Replica.start, env, tmp_path / "busy.log")
    try:
        async with await psycopg.AsyncConnection.connect(make_accounts.database_url) as holder:
            await holder.execute("LOCK TABLE accounts IN ACCESS EXCLUSIVE MODE")
            stuck = asyncio.create_task(
                asyncio.to_thread(
                    HTTP.get, replica.url + "/v1/switchboard/usage", headers=auth(account.token), timeout=30
                )
            )
            await asyncio.sleep(1)
            answer = await asyncio.to_thread(HTTP.get, replica.url + "/readyz")
            assert answer.status_code == 200, answer.text
            await holder.rollback()
            assert (await stuck).status_code == 200
    finally:
        replica.stop()


def test_every_log_line_begins_with_its_time_in_utc_to_the_millisecond() -> None:
    formatter = JsonLines()
    lines = []
    for name, message in (
        ("switchboard.gateway", "hello"),
        (access_log.name, '{"event":"access","status":200}'),
    ):
        record = logging.getLogger(name).makeRecord(name, logging.INFO, __file__, 1, message, (), None)
        record.created, record.msecs = 1796660000.1239, 123.9  # 2026-12-07T16:13:20.123Z
        lines.append(formatter.format(record))
    for line in lines:
        entry = json.loads(line)
        assert line.startswith('{"ts":"2026-12-07T16:13:20.123Z",'), line
        assert entry["event"] in ("log", "access")
    assert json.loads(lines[1]) == {"ts": "2026-12-07T16:13:20.123Z", "event": "access", "status": 200}


async def test_a_token_in_the_path_is_logged_as_redacted(make_accounts: Accounts, replica: Replica) -> None:
    account = await make_accounts.create("pro")
    refresh = "sbr_" + "A1b2" * 10 + "xyz"
    device_code = "Zq9" * 14 + "_"
    paths = [
        f"/nonexistent/{account.token}",
        f"/v1/switchboard/turns/{refresh}",
        f"/v1/switchboard/turns/x{account.token}",
        f"/device/{device_code}/more",
    ]
    for path in paths:
        assert HTTP.get(replica.url + path, headers=auth(account.token)).status_code in (400, 404, 405)
    HTTP.get(replica.url + "/v1/switchboard/turns/turn-in-plain-sight", headers=auth(account.token))
    deadline = time.monotonic() + 10  # the access line is written just after the response
    while "turn-in-plain-sight" not in (log := replica.log()) and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    for secret in (account.token, account.token.split(".")[2], refresh, device_code):
        assert secret not in log
    logged = [
        json.loads(line) for line in log.splitlines() if line.startswith("{") and '"event":"access"' in line
    ]
    assert all(entry["ts"].endswith("Z") for entry in logged)
    paths_logged = {entry["path"] for entry in logged}
    assert {
        "/nonexistent/[redacted]",
        "/v1/switchboard/turns/[redacted]",
        "/device/[redacted]/more",
        "/v1/switchboard/turns/turn-in-plain-sight",
    } <= paths_logged


async def test_an_anthropic_key_or_a_code_in_the_path_is_logged_as_redacted(replica: Replica) -> None:
    """A key pasted into a URL (`/sk-ant-…`, the vendor's own spelled as it is) and a `name=value` segment
    carrying a device code are written `[redacted]`, keeping the name."""
    device_code = "Zq9" * 14 + "_"
    user_key = "sk-ant-UPSTREAMSECRET123"
    paths = [f"/{user_key}", f"/v1/{VENDOR_KEY}/x", f"/x/code={device_code}", "/x/user_code=WXYZ-2345"]
    for path in paths:
        assert HTTP.get(replica.url + path).status_code in (400, 401, 404, 405)
    HTTP.get(replica.url + "/x/page=2/in-plain-sight")
    deadline = time.monotonic() + 10  # the access line is written just after the response
    # Until the last request's own access line is in (whole lines only; another line, such as a
    # warning, may name the path first).
    log, paths_logged = replica.log(), set[str]()
    while "/x/page=2/in-plain-sight" not in paths_logged and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
        log = replica.log()
        paths_logged = {line["path"] for line in access_lines(log)}
    for secret in (user_key, "UPSTREAMSECRET", VENDOR_KEY, device_code, "WXYZ-2345"):
        assert secret not in log
    assert {
        "/[redacted]",
        "/v1/[redacted]/x",
        "/x/code=[redacted]",
        "/x/user_code=[redacted]",
        "/x/page=2/in-plain-sight",
    } <= paths_logged


def test_migrate_goes_down_to_base_only_with_drop_everything(
    gateway_env: dict[str, str], database_url: str
) -> None:
    """`--down-to base` drops every table: refused (exit 2, nothing changed) without `--drop-everything`;
    so is a relative target (it can reach below the first revision) and an unknown revision."""
    name = f"base_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    url = database_url.rsplit("/", 1)[0] + f"/{name}"
    env = {**gateway_env, "SWITCHBOARD_GATEWAY_DATABASE_URL": url}
    run_cli(["migrate"], env)

    def tables() -> set[str]:
        with psycopg.connect(url) as conn:
            rows = conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'").fetchall()
        return {row[0] for row in rows}

    before = tables()
    assert {"accounts", "turns", "alembic_version"} <= before
    for args, said in (
        (["--down-to", "base"], "--drop-everything"),
        (["--down-to", "-1"], "relative"),
        (["--down-to", "9999"], "0001 to"),
        (["--drop-everything"], "only with --down-to base"),
        (["--down-to", "0007", "--drop-everything"], "only with --down-to base"),
    ):
        done = subprocess.run(
            [sys.executable, "-m", "switchboard", "gateway", "migrate", *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 2 and said in done.stderr, (args, done.stderr)
        assert "Traceback" not in done.stderr and tables() == before
    run_cli(["migrate", "--down-to", "base", "--drop-everything"], env)
    assert tables() <= {"alembic_version"}
    run_cli(["migrate"], env)
    assert tables() == before


async def test_a_revoked_account_is_shown_warned_about_and_reinstated_with_its_sessions_still_ended(
    gateway_env: dict[str, str], make_accounts: Accounts, replica: Replica
) -> None:
    from psycopg.rows import dict_row

    from switchboard.gateway.signin.refresh import start_family

    account = await make_accounts.create("pro")
    async with await psycopg.AsyncConnection.connect(
        make_accounts.database_url, autocommit=True, row_factory=dict_row
    ) as conn:
        await start_family(conn, account.id, "switchboard-vscode", "chat billing", 3600)
    cli = functools.partial(asyncio.to_thread, run_cli)
    active = json.loads((await cli(["accounts", "usage", account.id], gateway_env)).stdout)
    assert active["revokedAt"] is None and active["plan"] == "pro"
    await cli(["accounts", "revoke", account.id], gateway_env)
    moved = await cli(["accounts", "set-plan", account.id, "power"], gateway_env)
    assert "is on" in moved.stdout and "warning" in moved.stderr and "is revoked" in moved.stderr
    usage = await cli(["accounts", "usage", account.id], gateway_env)
    assert json.loads(usage.stdout)["revokedAt"].endswith("Z") and "is revoked" in usage.stderr

    def reinstate() -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-m", "switchboard", "gateway", "accounts", "reinstate", account.id]
        return subprocess.run(command, env=gateway_env, capture_output=True, text=True, timeout=60)

    # Access tokens issued before the revoke would work again: not until they have all expired.
    early = await asyncio.to_thread(reinstate)
    assert early.returncode == 1 and "reinstate it after" in early.stderr, early.stderr
    async with await psycopg.AsyncConnection.connect(make_accounts.database_url, autocommit=True) as conn:
        await conn.execute(
            "UPDATE accounts SET revoked_at = now() - interval '16 minutes' WHERE id = %s", (account.id,)
        )
    done = await asyncio.to_thread(reinstate)
    assert done.returncode == 0 and "is reinstated" in done.stdout and "1 earlier session" in done.stdout
    assert json.loads((await cli(["accounts", "usage", account.id], gateway_env)).stdout)["revokedAt"] is None
    token = (await cli(["tokens", "issue", "--account", account.id], gateway_env)).stdout.strip()
    assert HTTP.get(replica.url + "/v1/switchboard/usage", headers=auth(token)).json()["plan"] == "power"
    async with await psycopg.AsyncConnection.connect(make_accounts.database_url) as conn:
        cursor = await conn.execute(
            "SELECT count(*) FROM refresh_families WHERE account_id = %s AND revoked_at IS NULL",
            (account.id,),
        )
        assert await cursor.fetchone() == (0,)  # the session from before the revoke stays signed out
    again = await asyncio.to_thread(reinstate)
    assert again.returncode == 1 and "is not revoked" in again.stderr


async def test_a_reader_that_stops_early_ends_the_cli_quietly(
    gateway_env: dict[str, str], make_accounts: Accounts
) -> None:
    """`accounts usage EMAIL | head -3`: no BrokenPipeError traceback, and the status a shell gives a program
    that SIGPIPE ended (141), as `cat` or `yes` give."""
    account = await make_accounts.create("pro")
    command = [sys.executable, "-m", "switchboard", "gateway", "accounts", "usage", account.id]
    reader = subprocess.Popen(command, env=gateway_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert reader.stdout is not None and reader.stderr is not None
    reader.stdout.close()  # before the command writes: it starts, connects, then writes into a closed pipe
    stderr = (await asyncio.to_thread(reader.stderr.read)).decode()
    status = await asyncio.to_thread(reader.wait, 60)
    assert "Traceback" not in stderr and "BrokenPipe" not in stderr and stderr == "", stderr
    assert status == 141


async def test_a_schema_that_does_not_match_is_logged_as_a_deploy_error_by_turns_and_the_reaper(
    gateway_env: dict[str, str], cluster: Cluster, authority: TokenAuthority, tmp_path: Path
) -> None:
    """A column the ledger needs is missing (SQLSTATE 42703), as on a schema another release changed: each
    turn is a 503, and the log says what docs/gateway.md promises, a deploy error and the command to run,
    in the turn's line and in the reaper's, not only the error's class name."""
    url = cluster.new_database("mismatch")
    env = {**gateway_env, "SWITCHBOARD_GATEWAY_DATABASE_URL": url}
    run_cli(["migrate"], env)
    account = await Accounts(url, authority).create("pro")
    replica = await asyncio.to_thread(Replica.start, env, tmp_path / "mismatch.log")
    try:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("ALTER TABLE turns RENAME COLUMN checkpoint_h TO checkpoint_h_elsewhere")
        body = {"model": HAIKU, "max_tokens": 50, "messages": [{"role": "user", "content": "hi"}]}
        headers = {**turn_headers("claude-haiku-4.5"), **auth(account.token)}
        answer = await asyncio.to_thread(HTTP.post, replica.url + "/v1/messages", json=body, headers=headers)
        assert answer.status_code == 503, answer.text
        deadline = time.monotonic() + 30
        while "reaper round failed" not in replica.log():
            assert time.monotonic() < deadline, replica.log()
            await asyncio.sleep(0.1)
    finally:
        replica.stop()
    lines = [json.loads(line) for line in replica.log().splitlines() if line.startswith("{")]
    messages = [line["message"] for line in lines if line.get("event") == "log"]
    for start in ("PostgreSQL unavailable: ", "reaper round failed: "):
        said = next((m for m in messages if m.startswith(start)), "")
        assert "SQLSTATE 42703: a deploy error, not an outage" in said, messages
        assert "run `switchboard gateway migrate`" in said, said


def test_serve_refuses_a_database_url_parameter_only_libpq_reads(gateway_env: dict[str, str]) -> None:
    """`?connect_timeout=3` works for psycopg, but asyncpg sends it to PostgreSQL as a setting, which refuses
    it: a replica would log "ready" and answer every turn 503 with /readyz blaming an unreachable
    PostgreSQL. `serve` stops at once instead, in one line naming the parameter."""
    url = gateway_env["SWITCHBOARD_GATEWAY_DATABASE_URL"] + "?connect_timeout=3"
    env = {**gateway_env, "SWITCHBOARD_GATEWAY_DATABASE_URL": url}
    command = [sys.executable, "-m", "switchboard", "gateway", "serve", "--port", "0"]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2, done
    assert "database_url" in done.stderr and "'connect_timeout', which only libpq reads" in done.stderr
    assert "ready" not in done.stderr and "Traceback" not in done.stderr, done.stderr


def test_migrate_says_where_it_moved_the_schema_and_leaves_a_later_releases_schema_alone(
    gateway_env: dict[str, str], cluster: Cluster
) -> None:
    """A rollback deploy runs `migrate` too, on a database the later release migrated: like `serve`, it
    accepts the newer schema (exit 0, a warning) rather than stopping at alembic's "Can't locate revision".
    Going down from a revision this release lacks stays refused, in one line."""
    from switchboard.gateway.schema import shipped

    head = shipped().head
    url = cluster.new_database("rollback")
    env = {**gateway_env, "SWITCHBOARD_GATEWAY_DATABASE_URL": url}
    assert f"up to date: revision {head} (it was at no schema when" in run_cli(["migrate"], env).stdout
    assert f"up to date: revision {head}; nothing to apply" in run_cli(["migrate"], env).stdout
    run_cli(["migrate", "--down-to", "0009"], env)
    assert f"up to date: revision {head} (it was at 0009 when" in run_cli(["migrate"], env).stdout

    set_revision(url, "9999_from_a_later_release")
    command = [sys.executable, "-m", "switchboard", "gateway", "migrate"]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done
    assert "at revision 9999_from_a_later_release, which a later release made" in done.stderr
    assert f"ships up to {head}): nothing to do" in done.stderr and "Traceback" not in done.stderr
    down = subprocess.run(
        [*command, "--down-to", "0009"], env=env, capture_output=True, text=True, timeout=60
    )
    assert down.returncode == 1, down
    assert "refusing to go down: the database is at revision 9999_from_a_later_release" in down.stderr
    assert "Can't locate" not in down.stderr and "Traceback" not in down.stderr, down.stderr
    with psycopg.connect(url) as conn:
        assert conn.execute("SELECT version_num FROM alembic_version").fetchall() == [
            ("9999_from_a_later_release",)
        ]


def _cli(args: list[str], env: dict[str, str], stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    """`switchboard gateway ARGS`, whatever its exit status."""
    command = [sys.executable, "-m", "switchboard", "gateway", *args]
    return subprocess.run(command, env=env, input=stdin, capture_output=True, text=True, timeout=60)


def test_keys_new_says_what_to_do_when_it_cannot_write(gateway_env: dict[str, str], tmp_path: Path) -> None:
    missing = _cli(["keys", "new", str(tmp_path / "no-such-folder" / "a.pem")], gateway_env)
    assert missing.returncode == 1
    assert (
        f"the folder {tmp_path / 'no-such-folder'} does not exist; create the folder first" in missing.stderr
    )
    assert "Errno" not in missing.stderr
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    if not os.access(locked, os.W_OK):  # root writes anywhere: then only the missing folder is checked
        refused = _cli(["keys", "new", str(locked / "a.pem")], gateway_env)
        assert refused.returncode == 1 and f"the folder {locked} is not writable" in refused.stderr, refused
        assert "Errno" not in refused.stderr


def test_signing_keys_separated_by_commas_are_read_as_two_paths(gateway_env: dict[str, str]) -> None:
    from switchboard.gateway.config import load_settings

    paths = gateway_env["SWITCHBOARD_GATEWAY_SIGNING_KEYS"].split(os.pathsep)
    settings = load_settings({**gateway_env, "SWITCHBOARD_GATEWAY_SIGNING_KEYS": ",".join(paths)})
    assert [str(path) for path in settings.signing_keys] == paths


def test_migrate_refuses_a_lock_timeout_that_is_not_above_zero(gateway_env: dict[str, str]) -> None:
    for value in ("0", "-1", "nan"):
        done = _cli(["migrate", "--lock-timeout", value], gateway_env)
        assert done.returncode == 2, done
        assert "--lock-timeout takes a number of seconds above 0" in done.stderr


def test_accounts_create_without_a_terminal_or_password_stdin_is_a_usage_error(
    gateway_env: dict[str, str],
) -> None:
    done = _cli(["accounts", "create", "--email", "x@example.test", "--plan", "free"], gateway_env, stdin="")
    assert done.returncode == 2, done
    assert "no terminal to ask the password on: give it with --password-stdin" in done.stderr


def test_serve_warns_of_a_mistyped_variable_in_a_json_line(gateway_env: dict[str, str]) -> None:
    with socket.socket() as squatter:  # taken: serve stops right after reading its settings
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        env = {**gateway_env, "SWITCHBOARD_GATEWAY_TRUSTD_PROXIES": "10.0.0.0/8"}
        done = _cli(["serve", "--port", str(squatter.getsockname()[1])], env)
    assert done.returncode == 1, done
    first = json.loads(done.stderr.splitlines()[0])
    assert first["level"] == "WARNING" and first["event"] == "log", first
    assert first["message"].startswith("SWITCHBOARD_GATEWAY_TRUSTD_PROXIES is not a gateway setting")
