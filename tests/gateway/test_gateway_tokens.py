"""The access-token authority: one remembered entry per verified token (entitlement and scopes), bounded,
gone when the token expires."""

from __future__ import annotations

import logging
import os
import pickle
import secrets
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from switchboard.gateway.config import ConfigError, GatewaySettings, load_settings
from switchboard.gateway.tokens import (
    TokenAuthority,
    TokenRefused,
    VerifiedToken,
    VerifiedTokens,
    new_signing_key,
)
from switchboard.plans.entitlement import Entitlement
from switchboard.plans.signing import write_private_key

NOW = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)


class Clock:
    """The authority's clock, moved by the test."""

    def __init__(self, now: datetime = NOW) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def authority(clock: Clock | None = None) -> TokenAuthority:
    key = Ed25519PrivateKey.generate()
    return TokenAuthority("https://gateway.test", timedelta(minutes=15), (key,), clock=clock or Clock())


def verified(account: str, expires_at: datetime, scopes: str = "chat") -> VerifiedToken:
    entitlement = Entitlement("pro", account, "https://gateway.test", expires_at, "test")
    return VerifiedToken(entitlement, frozenset(scopes.split()))


def test_a_verified_token_is_one_entry_with_its_entitlement_and_its_scopes() -> None:
    tokens = authority()
    chat_only = tokens.issue("acct_1", "pro", scope="chat")
    first = tokens.verify(chat_only)
    assert first.entitlement.account == "acct_1" and first.entitlement.plan == "pro"
    assert first.scopes == frozenset({"chat"})
    assert tokens.verify(chat_only) is first  # answered from memory: the same entry, scopes included
    assert tokens.verify(tokens.issue("acct_1", "pro")).scopes == frozenset({"chat", "billing"})


def test_a_token_is_parsed_once_with_its_signature_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    parses: list[dict[str, Any]] = []
    decode = jwt.decode

    def counted(*args: Any, **kwargs: Any) -> Any:
        parses.append(kwargs.get("options") or {})
        return decode(*args, **kwargs)

    monkeypatch.setattr(jwt, "decode", counted)
    tokens = authority()
    token = tokens.issue("acct_1", "pro", scope="chat")
    assert tokens.verify(token).scopes == frozenset({"chat"})
    assert tokens.verify(token).scopes == frozenset({"chat"})
    # The scopes came from the one signature-checked parse; the second request parsed nothing.
    assert len(parses) == 1 and parses[0].get("verify_signature", True)


def test_a_remembered_token_is_refused_from_the_moment_it_expires() -> None:
    clock = Clock()
    tokens = authority(clock)
    token = tokens.issue("acct_1", "pro")
    first = tokens.verify(token)
    clock.now = NOW + timedelta(minutes=15) - timedelta(seconds=1)
    assert tokens.verify(token) is first
    clock.now = NOW + timedelta(minutes=15)
    with pytest.raises(TokenRefused, match="expired"):
        tokens.verify(token)


def test_a_token_from_the_future_is_refused_until_its_time_comes() -> None:
    clock = Clock()
    tokens = authority(clock)
    token = tokens.issue("acct_1", "pro", now=NOW + timedelta(minutes=10))
    with pytest.raises(TokenRefused, match="not valid yet"):
        tokens.verify(token)  # a refusal is not remembered either way
    clock.now = NOW + timedelta(minutes=10)
    assert tokens.verify(token).entitlement.account == "acct_1"


def test_an_entry_ends_when_its_token_expires() -> None:
    cache = VerifiedTokens()
    cache.put("token", verified("acct_1", NOW + timedelta(minutes=15)))
    assert cache.get("token", NOW + timedelta(minutes=14)) is not None
    assert cache.get("token", NOW + timedelta(minutes=15)) is None
    assert len(cache) == 0  # dropped, not kept beside the live ones


def test_the_cache_is_bounded_and_a_hit_keeps_an_entry_in_it() -> None:
    cache = VerifiedTokens(size=3)
    for n in range(3):
        cache.put(f"token{n}", verified(f"acct_{n}", NOW + timedelta(minutes=15)))
    assert cache.get("token0", NOW) is not None  # the busiest client's token: now the most recently used
    cache.put("token3", verified("acct_3", NOW + timedelta(minutes=15)))
    cache.put("token4", verified("acct_4", NOW + timedelta(minutes=15)))
    assert len(cache) == 3
    assert [cache.get(f"token{n}", NOW) is not None for n in range(5)] == [True, False, False, True, True]


def test_a_token_verified_again_moves_to_the_back_without_a_second_entry() -> None:
    cache = VerifiedTokens(size=2)
    cache.put("token0", verified("acct_0", NOW + timedelta(minutes=15)))
    cache.put("token1", verified("acct_1", NOW + timedelta(minutes=15)))
    cache.put("token0", verified("acct_0", NOW + timedelta(minutes=15)))
    cache.put("token2", verified("acct_2", NOW + timedelta(minutes=15)))
    assert [cache.get(f"token{n}", NOW) is not None for n in range(3)] == [True, False, True]


def test_a_cache_holds_at_least_one_token() -> None:
    with pytest.raises(ValueError, match="at least one"):
        VerifiedTokens(size=0)
    cache = VerifiedTokens(size=1)
    cache.put("token0", verified("acct_0", NOW + timedelta(minutes=15)))
    cache.put("token1", verified("acct_1", NOW + timedelta(minutes=15)))
    assert len(cache) == 1 and cache.get("token1", NOW) is not None


def test_the_cache_holds_no_bearer_token() -> None:
    cache = VerifiedTokens()
    token = "eyJ." + secrets.token_urlsafe(32)
    cache.put(token, verified("acct_1", NOW + timedelta(minutes=15)))
    assert cache.get(token, NOW) is not None
    held = pickle.dumps(cache)  # everything the cache refers to
    assert b"acct_1" in held and token.encode() not in held


def settings_with_keys(*keys: Path) -> GatewaySettings:
    return load_settings(
        {
            "SWITCHBOARD_GATEWAY_DATABASE_URL": "postgresql://gateway@db/gateway",
            "SWITCHBOARD_GATEWAY_UPSTREAM_API_KEY": "sk-ant-not-used",
            "SWITCHBOARD_GATEWAY_SIGNING_KEYS": os.pathsep.join(map(str, keys)),
            "SWITCHBOARD_GATEWAY_PUBLIC_BASE_URL": "https://gateway.test",
        }
    )


def key_settings(tmp_path: Path, *paths: Path) -> GatewaySettings:
    return GatewaySettings.model_validate(
        {
            "database_url": "postgresql://gateway@db/gateway",
            "upstream_api_key": "sk-ant-not-used",
            "signing_keys": [str(path) for path in paths],
            "public_base_url": "https://gateway.test",
        }
    )


def test_one_key_configured_twice_is_refused_not_published_twice(tmp_path: Path) -> None:
    """`signing_keys = [k, k]` passed the two-key rule with one key, and the JWKS listed its kid twice: the
    same path twice, a copy, or a link to it are all one key, and stop the process naming both paths."""
    current, upcoming = tmp_path / "current.pem", tmp_path / "next.pem"
    kid = new_signing_key(current)
    new_signing_key(upcoming)
    shutil.copy(current, tmp_path / "copy.pem")
    (tmp_path / "link.pem").symlink_to(current)
    for twice in (current, tmp_path / "copy.pem", tmp_path / "link.pem"):
        with pytest.raises(ConfigError, match="same key twice") as refused:
            TokenAuthority.from_settings(settings_with_keys(current, twice, upcoming))
        assert (
            str(current) in str(refused.value)
            and str(twice) in str(refused.value)
            and kid in str(refused.value)
        )
    two = TokenAuthority.from_settings(settings_with_keys(current, upcoming))
    kids = [key["kid"] for key in two.jwks()["keys"]]
    assert len(kids) == 2 and len(set(kids)) == 2 and kids[0] == kid


def test_a_signing_key_the_gateway_may_not_read_is_called_unreadable_not_malformed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first, second = tmp_path / "a.pem", tmp_path / "b.pem"
    for path in (first, second):
        write_private_key(path, Ed25519PrivateKey.generate())
    first.chmod(0)
    if os.geteuid() == 0:  # root reads it anyway: be refused as any other user would be
        read = Path.read_bytes

        def refused(path: Path) -> bytes:
            if path == first:
                raise PermissionError(13, "Permission denied", str(path))
            return read(path)

        monkeypatch.setattr(Path, "read_bytes", refused)
    with pytest.raises(ConfigError) as error:
        TokenAuthority.from_settings(key_settings(tmp_path, first, second))
    assert str(error.value).startswith(f"cannot read signing key {first} (permission denied)")
    assert "Ed25519" not in str(error.value)
    second.write_text("not a key")
    first.chmod(0o600)
    monkeypatch.undo()
    with pytest.raises(ConfigError, match=f"signing key {second} is not an Ed25519 PEM private key"):
        TokenAuthority.from_settings(key_settings(tmp_path, first, second))


def test_a_signing_key_its_group_or_others_can_read_is_warned_about(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    private, shared = tmp_path / "a.pem", tmp_path / "b.pem"
    for path in (private, shared):
        write_private_key(path, Ed25519PrivateKey.generate())
    shared.chmod(0o640)
    with caplog.at_level(logging.WARNING, logger="switchboard.gateway.tokens"):
        TokenAuthority.from_settings(key_settings(tmp_path, private, shared))
    assert [record.getMessage() for record in caplog.records] == [
        f"signing key {shared} can be read by its group or others (mode 0640): chmod 600 it"
    ]
