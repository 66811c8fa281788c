"""`switchboard dev-issuer`: init, trust, token, verify."""

from __future__ import annotations

import io
import json
import shutil
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path

import jwt
import pytest

from switchboard.plans.dev_issuer import (
    DEV_ISSUER,
    dev_issuer_paths,
    init,
    load_private_key,
    main,
    sign_token,
)
from switchboard.plans.entitlement import resolve_entitlement
from switchboard.plans.trust import TRUSTED_KEYS_ENV


def run(argv: list[str], state: Path, config: Path) -> tuple[int, str]:
    out = io.StringIO()
    status = main(argv, state, config_dir=config, out=out)
    return status, out.getvalue()


@pytest.fixture
def dirs(tmp_path: Path) -> tuple[Path, Path]:
    return tmp_path / "state", tmp_path / "config"


def test_init_creates_a_private_key_and_a_jwks(dirs: tuple[Path, Path]) -> None:
    state, config = dirs
    status, text = run(["init"], state, config)
    paths = dev_issuer_paths(state)
    assert status == 0
    assert stat.S_IMODE(paths.private_key.stat().st_mode) == 0o600
    (jwk,) = json.loads(paths.jwks.read_text())["keys"]
    assert jwk["kty"] == "OKP" and jwk["crv"] == "Ed25519" and "d" not in jwk
    assert jwk["iss"] == DEV_ISSUER and jwk["kid"]
    assert f"{TRUSTED_KEYS_ENV}={paths.jwks.resolve()}" in text
    assert str(config.resolve() / "trusted_keys.json") in text


def test_init_keeps_an_existing_key_unless_forced(dirs: tuple[Path, Path]) -> None:
    state, config = dirs
    run(["init"], state, config)
    first = dev_issuer_paths(state).private_key.read_bytes()
    assert "Kept the existing" in run(["init"], state, config)[1]
    assert dev_issuer_paths(state).private_key.read_bytes() == first
    run(["init", "--force"], state, config)
    assert dev_issuer_paths(state).private_key.read_bytes() != first
    assert stat.S_IMODE(dev_issuer_paths(state).private_key.stat().st_mode) == 0o600


def _token(state: Path, config: Path, *args: str) -> str:
    status, text = run(["token", *args], state, config)
    assert status == 0
    return text.strip()


def test_nothing_is_trusted_by_default(dirs: tuple[Path, Path]) -> None:
    state, config = dirs
    run(["init"], state, config)
    entitlement = resolve_entitlement(_token(state, config, "--plan", "power"), config_dir=config, environ={})
    assert entitlement.plan == "free"


def test_round_trip_through_the_env_variable(dirs: tuple[Path, Path]) -> None:
    state, config = dirs
    run(["init"], state, config)
    tok = _token(state, config, "--plan", "pro", "--days", "7", "--sub", "alice")
    env = {TRUSTED_KEYS_ENV: str(dev_issuer_paths(state).jwks)}
    entitlement = resolve_entitlement(tok, config_dir=config, environ=env)
    assert (entitlement.plan, entitlement.account, entitlement.issuer) == ("pro", "alice", DEV_ISSUER)
    assert entitlement.expires_at is not None
    remaining = entitlement.expires_at - datetime.now(UTC)
    assert timedelta(days=6, hours=23) < remaining <= timedelta(days=7)


def test_round_trip_through_the_config_dir(dirs: tuple[Path, Path]) -> None:
    state, config = dirs
    run(["init"], state, config)
    config.mkdir()
    shutil.copy(dev_issuer_paths(state).jwks, config / "trusted_keys.json")
    tok = _token(state, config, "--plan", "pro_plus")
    assert jwt.get_unverified_header(tok)["alg"] == "EdDSA"
    entitlement = resolve_entitlement(tok, config_dir=config, environ={})
    assert (entitlement.plan, entitlement.account) == ("pro_plus", "dev-user")


def test_a_new_key_invalidates_old_tokens(dirs: tuple[Path, Path]) -> None:
    state, config = dirs
    run(["init"], state, config)
    old = _token(state, config, "--plan", "pro")
    run(["init", "--force"], state, config)
    env = {TRUSTED_KEYS_ENV: str(dev_issuer_paths(state).jwks)}
    assert resolve_entitlement(old, config_dir=config, environ=env).plan == "free"


def test_token_before_init_fails_with_advice(
    dirs: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    state, config = dirs
    assert run(["token", "--plan", "pro"], state, config)[0] == 1
    assert "dev-issuer init" in capsys.readouterr().err


def test_the_cli_only_signs_known_plans(dirs: tuple[Path, Path]) -> None:
    state, config = dirs
    init(state)
    with pytest.raises(SystemExit):
        run(["token", "--plan", "enterprise"], state, config)


def test_sign_token_helper_sets_every_claim(tmp_path: Path) -> None:
    init(tmp_path)
    key = load_private_key(tmp_path)
    now = datetime(2026, 1, 1, tzinfo=UTC)
    tok = sign_token(key, "power", sub="bob", days=10, iss="me", kid="k1", now=now)
    claims = jwt.decode(tok, key.public_key(), algorithms=["EdDSA"], options={"verify_exp": False})
    assert claims == {
        "iss": "me",
        "sub": "bob",
        "plan": "power",
        "iat": int(now.timestamp()),
        "exp": int((now + timedelta(days=10)).timestamp()),
    }
    assert jwt.get_unverified_header(tok)["kid"] == "k1"
    with pytest.raises(ValueError, match="cannot forge"):
        sign_token(key, "pro", alg_override="RS256")
