"""Entitlement verification: the good path from both key sources, and every forgery lands on Free."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given, settings
from hypothesis import strategies as st
from jwt.utils import base64url_decode

from switchboard.plans.dev_issuer import (
    DEV_ISSUER,
    encode_jws,
    public_jwk,
    public_pem,
    replace_payload,
    sign_token,
)
from switchboard.plans.entitlement import NO_ENTITLEMENT, Entitlement, resolve_entitlement, verify_entitlement
from switchboard.plans.trust import (
    CONFIG_DIR_ENV,
    TRUSTED_KEYS_ENV,
    TrustedKeys,
    default_config_dir,
    load_trusted_keys,
    parse_jwks,
)

NOW = datetime(2026, 9, 15, 12, tzinfo=UTC)
ISSUED = datetime(2026, 9, 1, tzinfo=UTC)
KEY = Ed25519PrivateKey.generate()
OTHER_KEY = Ed25519PrivateKey.generate()


def jwks(*keys: Ed25519PrivateKey, iss: str | None = DEV_ISSUER) -> dict[str, Any]:
    return {"keys": [public_jwk(k.public_key(), iss=iss) for k in keys]}


def trusted(*keys: Ed25519PrivateKey, iss: str | None = DEV_ISSUER) -> TrustedKeys:
    found, problems = parse_jwks(jwks(*keys, iss=iss), "test")
    assert not problems
    return TrustedKeys(tuple(found))


def token(plan: str = "pro", **kwargs: Any) -> str:
    kwargs.setdefault("now", ISSUED)
    return sign_token(kwargs.pop("key", KEY), plan, **kwargs)


def verify(tok: str | None, keys: TrustedKeys | None = None) -> Entitlement:
    return verify_entitlement(tok, keys if keys is not None else trusted(KEY), now=NOW)


def refused(tok: str, keys: TrustedKeys | None = None) -> str:
    entitlement = verify(tok, keys)
    assert (entitlement.plan, entitlement.account, entitlement.issuer) == ("free", None, None)
    assert entitlement.account_key == "local"
    assert entitlement.reason.endswith(": you are on Free")
    assert tok not in repr(entitlement)
    return entitlement.reason


# --- good path ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("plan", ["free", "pro", "pro_plus", "power"])
def test_each_plan_verifies(plan: str) -> None:
    entitlement = verify(token(plan, sub="acct-42", days=30))
    assert entitlement.plan == plan
    assert entitlement.account == entitlement.account_key == "acct-42"
    assert entitlement.issuer == DEV_ISSUER
    assert entitlement.expires_at == ISSUED + timedelta(days=30)
    assert "acct-42" in entitlement.reason and "2026-10-01" in entitlement.reason


def test_keys_from_the_env_jwks_file(tmp_path: Path) -> None:
    path = tmp_path / "elsewhere" / "issuer.json"
    path.parent.mkdir()
    path.write_text(json.dumps(jwks(KEY)))
    env = {TRUSTED_KEYS_ENV: str(path)}
    result = resolve_entitlement(token("power"), config_dir=tmp_path / "empty", environ=env, now=NOW)
    assert result.plan == "power"


def test_keys_from_the_config_dir(tmp_path: Path) -> None:
    (tmp_path / "trusted_keys.json").write_text(json.dumps(jwks(KEY)))
    assert resolve_entitlement(token("pro_plus"), config_dir=tmp_path, environ={}, now=NOW).plan == "pro_plus"


def test_config_dir_defaults_to_the_env_variable(tmp_path: Path) -> None:
    (tmp_path / "trusted_keys.json").write_text(json.dumps(jwks(KEY)))
    env = {CONFIG_DIR_ENV: str(tmp_path)}
    assert default_config_dir(env) == tmp_path
    assert resolve_entitlement(token("pro"), environ=env, now=NOW).plan == "pro"


def test_both_sources_are_trusted_together(tmp_path: Path) -> None:
    (tmp_path / "a.json").write_text(json.dumps(jwks(KEY)))
    (tmp_path / "trusted_keys.json").write_text(json.dumps(jwks(OTHER_KEY)))
    keys = load_trusted_keys(tmp_path, {TRUSTED_KEYS_ENV: str(tmp_path / "a.json")})
    assert len(keys.keys) == 2
    assert verify(token(key=KEY), keys).plan == verify(token(key=OTHER_KEY), keys).plan == "pro"


def test_without_a_kid_every_trusted_key_is_tried() -> None:
    keys = trusted(OTHER_KEY, KEY)
    claims = {
        "iss": DEV_ISSUER,
        "sub": "u",
        "plan": "pro",
        "iat": int(ISSUED.timestamp()),
        "exp": 1_900_000_000,
    }
    no_kid = jwt.encode(claims, KEY, algorithm="EdDSA")
    assert "kid" not in jwt.get_unverified_header(no_kid)
    assert verify(no_kid, keys).plan == "pro"


def test_a_key_without_iss_vouches_for_any_issuer() -> None:
    assert verify(token(iss="accounts.example"), trusted(KEY, iss=None)).issuer == "accounts.example"


# --- refusals ----------------------------------------------------------------------------------------


def test_no_token() -> None:
    assert verify(None) == NO_ENTITLEMENT
    assert verify("  ").reason == "No entitlement: you are on Free"


def test_alg_none() -> None:
    assert (
        refused(token("power", alg_override="none"))
        == "Entitlement is signed with 'none', not EdDSA: you are on Free"
    )
    assert "not EdDSA" in refused(token("power", alg_override="None"))


@pytest.mark.parametrize(
    "secret",
    [
        public_pem(KEY.public_key()),
        base64url_decode(public_jwk(KEY.public_key())["x"]),
        public_jwk(KEY.public_key())["x"].encode(),
        json.dumps(public_jwk(KEY.public_key())).encode(),
    ],
    ids=["pem", "raw", "x", "jwk-json"],
)
def test_hs256_key_confusion_with_the_public_key(secret: bytes) -> None:
    assert "not EdDSA" in refused(token("power", alg_override="HS256", hmac_secret=secret))


def test_a_symmetric_key_in_the_jwks_is_never_used(tmp_path: Path) -> None:
    (tmp_path / "trusted_keys.json").write_text(
        json.dumps({"keys": [{"kty": "oct", "k": "c2VjcmV0", "kid": "k"}]})
    )
    keys = load_trusted_keys(tmp_path, {})
    assert keys.keys == () and "only Ed25519" in keys.problems[0]
    assert "not EdDSA" in refused(token("power", alg_override="HS256", hmac_secret=b"secret", kid="k"), keys)


def test_eddsa_header_with_an_hmac_signature() -> None:
    claims = jwt.decode(token("power"), options={"verify_signature": False})
    forged = encode_jws({"alg": "EdDSA", "kid": "x"}, claims, lambda data: public_pem(KEY.public_key())[:64])
    assert "not from a trusted issuer" in refused(forged)


def test_tampered_payload() -> None:
    original = token("free", sub="mallory")
    claims = jwt.decode(original, options={"verify_signature": False}) | {"plan": "power"}
    assert "not from a trusted issuer" in refused(replace_payload(original, claims))


def test_tampered_signature() -> None:
    head, body, sig = token("power").split(".")
    flipped = ("A" if sig[0] != "A" else "B") + sig[1:]
    assert "not from a trusted issuer" in refused(f"{head}.{body}.{flipped}")


def test_expired() -> None:
    at_expiry = token("pro", now=NOW - timedelta(days=30), days=30)
    assert refused(at_expiry) == "Entitlement expired on 2026-09-15: you are on Free"
    assert refused(token("pro", now=datetime(2026, 8, 1, tzinfo=UTC), days=31)) == (
        "Entitlement expired on 2026-09-01: you are on Free"
    )


def test_expiry_follows_the_injected_clock() -> None:
    tok = token("pro", days=30)  # expires 2026-10-01
    assert verify_entitlement(tok, trusted(KEY), now=datetime(2026, 9, 30, 23, 59, tzinfo=UTC)).plan == "pro"
    late = verify_entitlement(tok, trusted(KEY), now=datetime(2026, 10, 1, tzinfo=UTC))
    assert late.reason == "Entitlement expired on 2026-10-01: you are on Free"


def test_untrusted_key() -> None:
    assert (
        refused(token(key=OTHER_KEY)) == "Entitlement signature is not from a trusted issuer: you are on Free"
    )
    # Even when it claims the trusted key's kid.
    kid = public_jwk(KEY.public_key())["kid"]
    assert "not from a trusted issuer" in refused(token(key=OTHER_KEY, kid=kid))


def test_no_trusted_keys_configured(tmp_path: Path) -> None:
    reason = refused(token(), load_trusted_keys(tmp_path, {}))
    assert "no trusted issuer keys are configured" in reason and TRUSTED_KEYS_ENV in reason


def test_a_missing_env_file_is_a_problem_not_a_crash(tmp_path: Path) -> None:
    keys = load_trusted_keys(tmp_path, {TRUSTED_KEYS_ENV: str(tmp_path / "nope.json")})
    assert keys.keys == () and "does not exist" in keys.problems[0]
    (tmp_path / "trusted_keys.json").write_text("{not json")
    assert "not a readable JWKS" in load_trusted_keys(tmp_path, {}).problems[0]


def test_unknown_plan() -> None:
    assert refused(token("enterprise")) == "Entitlement names an unknown plan 'enterprise': you are on Free"


@pytest.mark.parametrize("claim", ["iss", "sub", "plan", "iat", "exp"])
def test_missing_claims(claim: str) -> None:
    assert (
        refused(token(omit_claims=[claim])) == f"Entitlement is missing the `{claim}` claim: you are on Free"
    )


@pytest.mark.parametrize(
    ("claims", "bad"),
    [
        ({"plan": 3}, "plan"),
        ({"iss": ""}, "iss"),
        ({"sub": 5}, "sub"),
        ({"exp": "soon"}, "exp"),
        ({"exp": 10**30}, "exp"),
        ({"iat": True}, "iat"),
    ],
)
def test_claims_of_the_wrong_type(claims: dict[str, Any], bad: str) -> None:
    assert refused(token(extra_claims=claims)) == f"Entitlement has an invalid `{bad}` claim: you are on Free"


def test_issuer_must_match_the_key() -> None:
    assert "does not match its trusted key" in refused(token(iss="someone-else"))


def test_issued_in_the_future() -> None:
    assert "not valid yet" in refused(token(now=NOW + timedelta(hours=1)))
    assert "not valid yet" in refused(token(extra_claims={"nbf": int((NOW + timedelta(days=1)).timestamp())}))
    assert verify(token(now=NOW + timedelta(minutes=1))).plan == "pro"  # small clock skew is fine


@pytest.mark.parametrize(
    "garbage",
    ["garbage", "a.b.c", "a.b", "....", "eyJhbGciOiJFZERTQSJ9.e30.", "ünïcode.tökén.x", "x" * 16_000],
)
def test_garbage(garbage: str) -> None:
    assert "malformed" in refused(garbage) or "trusted issuer" in refused(garbage)


@settings(max_examples=200)
@given(st.text(max_size=300))
def test_no_string_is_ever_more_than_free(text: str) -> None:
    assert verify(text).plan == "free"


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=8,
)


@settings(max_examples=150)
@given(
    st.dictionaries(st.sampled_from(["kid", "typ", "crit", "b64", "jwk"]), json_values, max_size=3),
    st.dictionaries(st.sampled_from(["iss", "sub", "plan", "iat", "exp", "nbf", "aud"]), json_values),
    st.binary(max_size=80),
)
def test_no_forged_structure_is_ever_more_than_free(
    header: dict[str, Any], claims: dict[str, Any], signature: bytes
) -> None:
    forged = encode_jws({**header, "alg": "EdDSA"}, claims, lambda _: signature)
    assert verify(forged).plan == "free"


def test_a_token_for_another_audience_is_refused() -> None:
    assert "another service" in refused(token(extra_claims={"aud": "billing"}))


def test_tokens_are_never_kept(tmp_path: Path) -> None:
    tok = token("power")
    entitlement = verify(tok)
    assert tok not in repr(entitlement) and tok.split(".")[2] not in str(vars(entitlement))
