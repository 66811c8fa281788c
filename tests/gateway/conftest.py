"""Gateway fixtures: a real PostgreSQL cluster, real gateway replicas, the fake Anthropic API upstream.

Session-scoped and shared: the cluster, the migrated database, the signing keys, the fake API and two
replicas. Tests stay apart by creating their own accounts (the ledger is keyed by account), and faults
injected into the fake API are cleared after each test.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator

import asyncpg
import psycopg
import pytest

from gateway.gateway_support import RESERVATION_TTL, VENDOR_KEY, Accounts, Replica, run_cli, unused_port
from gateway.pgcluster import Cluster
from switchboard.fakeapi import FakeAnthropic
from switchboard.gateway import migrate
from switchboard.gateway.config import load_settings
from switchboard.gateway.tokens import TokenAuthority


@pytest.fixture(scope="session")
def cluster() -> Iterator[Cluster]:
    started = Cluster.start()
    try:
        yield started
    finally:
        started.stop()


@pytest.fixture(scope="session")
def database_url(cluster: Cluster) -> str:
    with psycopg.connect(cluster.url(), autocommit=True) as conn:
        conn.execute("CREATE DATABASE gateway")
    return cluster.url("gateway")


@pytest.fixture(scope="session")
def upstream() -> Iterator[FakeAnthropic]:
    with FakeAnthropic(api_key=VENDOR_KEY) as api:
        yield api


@pytest.fixture(autouse=True)
def _clear_faults(request: pytest.FixtureRequest) -> Iterator[None]:
    yield
    if "upstream" in request.fixturenames:
        request.getfixturevalue("upstream").clear_faults()


@pytest.fixture
def closed_port() -> Iterator[int]:
    """A loopback port nobody listens on for the whole test (held bound, so no other test is handed it)."""
    with unused_port() as port:
        yield port


@pytest.fixture(scope="session")
def gateway_env(
    tmp_path_factory: pytest.TempPathFactory, database_url: str, upstream: FakeAnthropic
) -> dict[str, str]:
    keys = tmp_path_factory.mktemp("keys")
    for name in ("current.pem", "next.pem"):
        run_cli(["keys", "new", str(keys / name)], os.environ.copy())
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ANTHROPIC_", "SWITCHBOARD_"))}
    env.update(
        SWITCHBOARD_GATEWAY_DATABASE_URL=database_url,
        SWITCHBOARD_GATEWAY_UPSTREAM_BASE_URL=upstream.base_url,
        SWITCHBOARD_GATEWAY_UPSTREAM_API_KEY=VENDOR_KEY,
        SWITCHBOARD_GATEWAY_SIGNING_KEYS=os.pathsep.join(str(keys / n) for n in ("current.pem", "next.pem")),
        SWITCHBOARD_GATEWAY_PUBLIC_BASE_URL="http://gateway.test",
        SWITCHBOARD_GATEWAY_RESERVATION_TTL_SECONDS=str(RESERVATION_TTL),
        SWITCHBOARD_GATEWAY_POOL_MAX_SIZE="20",
        # Every reuse of a spent refresh token revokes its family, at once: the reuse tests present one
        # straight away. The default grace (30 s) has tests of its own (test_signin_refresh.py).
        SWITCHBOARD_GATEWAY_REFRESH_REUSE_GRACE_SECONDS="0",
        # SIGTERM stops accepting at once (test_a_replica_out_of_rotation_… sets the delay it tests).
        SWITCHBOARD_GATEWAY_SHUTDOWN_DELAY_SECONDS="0",
        PYTHONUNBUFFERED="1",
    )
    run_cli(["migrate"], env)
    return env


@pytest.fixture(scope="session")
def authority(gateway_env: dict[str, str]) -> TokenAuthority:
    return TokenAuthority.from_settings(load_settings(gateway_env))


@pytest.fixture(scope="session")
def replicas(
    gateway_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[list[Replica]]:
    logs = tmp_path_factory.mktemp("replica-logs")
    started: list[Replica] = []
    try:
        for index in range(2):
            started.append(Replica.start(gateway_env, logs / f"replica-{index}.log"))
        yield started
    finally:
        for replica in started:
            replica.stop()


@pytest.fixture
def replica(replicas: list[Replica]) -> Replica:
    return replicas[0]


@pytest.fixture
def make_accounts(request: pytest.FixtureRequest, authority: TokenAuthority) -> Accounts:
    """Accounts in the database the shared replicas use (started first); in a module marked `own_database`,
    in the module's own (`ledger_url`), and no replica is started."""
    if request.node.get_closest_marker("own_database") is not None:
        return Accounts(request.getfixturevalue("ledger_url"), authority)
    request.getfixturevalue("replicas")
    return Accounts(request.getfixturevalue("database_url"), authority)


@pytest.fixture(scope="module")
def ledger_url(cluster: Cluster, request: pytest.FixtureRequest) -> str:
    """A migrated database of the module's own, named after it (test_gateway_ledger.py: `ledger_…`), for tests
    that drive the ledger directly: the shared replicas sweep theirs every second, and a sweep that got to a
    test's expired reservation first would take the result the test asserts on. Mark such a module
    `pytestmark = pytest.mark.own_database` so that `make_accounts` creates its accounts here too."""
    module = request.module.__name__.rpartition(".")[2]
    url = cluster.new_database(module.removeprefix("test_gateway_"))
    migrate.upgrade(url)
    return url


@pytest.fixture
async def conn(ledger_url: str) -> AsyncIterator[asyncpg.Connection[asyncpg.Record]]:
    """A connection to the module's own database, as the ledger's pool gives a replica one (`gateway.db`)."""
    c = await asyncpg.connect(ledger_url)
    try:
        yield c
    finally:
        await c.close()
