"""Hosted-mode fixtures: a gateway replica whose public URL is its real address (so the language server
can follow the discovered endpoints), on the shared PostgreSQL cluster, with the fake Anthropic API
upstream. It believes X-Forwarded-For from 127.0.0.1, so the test's own "browser" speaks from addresses of
its own while the language server (which sends none) counts as 127.0.0.1."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway.hosted.hosted_support import HostedGateway, start_gateway


@pytest.fixture(scope="session")
def hosted_env(gateway_env: dict[str, str]) -> dict[str, str]:
    return {
        **gateway_env,
        "SWITCHBOARD_GATEWAY_TRUSTED_PROXIES": "127.0.0.1/32,::1",
        "SWITCHBOARD_GATEWAY_DEVICE_POLL_INTERVAL_SECONDS": "1",
        # The shortest the gateway allows, so a refresh (and its rotation) happens within a test.
        "SWITCHBOARD_GATEWAY_ACCESS_TOKEN_SECONDS": "30",
        # Every test of a worker signs in from 127.0.0.1 to this one gateway: the per-address limits (10
        # device codes a minute) would refuse the module's later sign-ins. They have tests of their own
        # (signin/test_signin_limits.py).
        "SWITCHBOARD_GATEWAY_RATE_LIMITS": json.dumps(
            {"device_authorizations_per_address": 10_000, "token_requests_per_address": 10_000}
        ),
    }


@pytest.fixture(scope="session")
def hosted(hosted_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[HostedGateway]:
    gateway = start_gateway(hosted_env, tmp_path_factory.mktemp("hosted") / "gateway.log")
    try:
        yield gateway
    finally:
        gateway.stop()


@pytest.fixture
def ls_home(tmp_path: Path) -> Path:
    home = tmp_path / "ls-state"
    home.mkdir()
    return home


@pytest.fixture
def ls_env(ls_home: Path, hosted: HostedGateway) -> dict[str, str]:
    """The language server's environment: the gateway configured, and an own key that must never be used
    while signed in (its requests would reach no fake API: ANTHROPIC_BASE_URL points nowhere)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ANTHROPIC_", "SWITCHBOARD_"))}
    env.update(
        SWITCHBOARD_HOME=str(ls_home),
        SWITCHBOARD_CONFIG_DIR=str(ls_home / "config"),
        SWITCHBOARD_GATEWAY_URL=hosted.url,
        SWITCHBOARD_MAX_RETRIES="0",
        SWITCHBOARD_REQUEST_TIMEOUT="10",
        ANTHROPIC_API_KEY="sk-ant-own-key-NEVER-SENT-0123456789",
        ANTHROPIC_BASE_URL="http://127.0.0.1:9",
        PYTHONUNBUFFERED="1",
    )
    return env
