"""Sign-in fixtures: two replicas of their own on the shared cluster, one behind a trusted proxy (it believes
X-Forwarded-For from 127.0.0.1, so each test speaks from an address of its own and the per-address limits
never meet), one trusting nobody. A poll interval of 1 second keeps the polling tests short."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from gateway.gateway_support import Replica
from gateway.signin.signin_support import EXPOSED_DEVICE_AUTHORIZATIONS, Browser, SignInAccounts


@pytest.fixture(scope="session")
def signin_env(gateway_env: dict[str, str]) -> dict[str, str]:
    return {
        **gateway_env,
        "SWITCHBOARD_GATEWAY_TRUSTED_PROXIES": "127.0.0.1/32,::1",
        "SWITCHBOARD_GATEWAY_DEVICE_POLL_INTERVAL_SECONDS": "1",
        "SWITCHBOARD_GATEWAY_SUPPORT_CONTACT": "support@example.test",
    }


@pytest.fixture(scope="session")
def proxied(signin_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Replica]:
    replica = Replica.start(signin_env, tmp_path_factory.mktemp("signin") / "proxied.log")
    try:
        yield replica
    finally:
        replica.stop()


@pytest.fixture(scope="session")
def exposed(signin_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Replica]:
    """A replica that trusts no proxy (the default), with a configured device-authorization limit."""
    env = {k: v for k, v in signin_env.items() if k != "SWITCHBOARD_GATEWAY_TRUSTED_PROXIES"}
    env["SWITCHBOARD_GATEWAY_RATE_LIMITS"] = json.dumps(
        {"device_authorizations_per_address": EXPOSED_DEVICE_AUTHORIZATIONS}
    )
    replica = Replica.start(env, tmp_path_factory.mktemp("signin") / "exposed.log")
    try:
        yield replica
    finally:
        replica.stop()


@pytest.fixture(scope="session")
def people(database_url: str, proxied: Replica) -> SignInAccounts:
    return SignInAccounts(database_url)


@pytest.fixture
def browser(proxied: Replica) -> Iterator[Browser]:
    with Browser(proxied.url) as opened:
        yield opened
