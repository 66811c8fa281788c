"""Ed25519 signing keys and the entitlements they sign: shared by the dev issuer and the hosted gateway.

An entitlement is an EdDSA JWT with `iss`, `sub` (the account id), `plan`, `iat` and `exp`, and a `kid`
header naming the key (its RFC 7638 thumbprint), so a verifier holding several keys picks the right one.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from jwt.utils import base64url_encode

from .period import as_utc, utc_now


def key_id(public_key: Ed25519PublicKey) -> str:
    """The RFC 7638 thumbprint of the key, used as its `kid`."""
    canonical = json.dumps({"crv": "Ed25519", "kty": "OKP", "x": _x(public_key)}, separators=(",", ":"))
    return base64url_encode(hashlib.sha256(canonical.encode()).digest()).decode()


def public_jwk(public_key: Ed25519PublicKey, *, kid: str | None = None, iss: str | None) -> dict[str, str]:
    """The public JWK of a key; `iss` (non-standard) binds it to one issuer for `plans.trust`."""
    jwk = {"kty": "OKP", "crv": "Ed25519", "x": _x(public_key), "alg": "EdDSA", "use": "sig"}
    jwk["kid"] = kid or key_id(public_key)
    if iss is not None:
        jwk["iss"] = iss
    return jwk


def _x(public_key: Ed25519PublicKey) -> str:
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return base64url_encode(raw).decode()


def write_private_key(path: Path, key: Ed25519PrivateKey) -> None:
    """Write `key` as PKCS#8 PEM, created 0600 from the start: never world-readable, whatever the umask."""
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    path.unlink(missing_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as file:
        file.write(pem)


def read_private_key(path: Path) -> Ed25519PrivateKey:
    key = serialization.load_pem_private_key(path.read_bytes(), None)
    if not isinstance(key, Ed25519PrivateKey):
        raise ValueError(f"{path} is not an Ed25519 private key")
    return key


def sign_entitlement(
    private_key: Ed25519PrivateKey,
    *,
    plan: str,
    sub: str,
    iss: str,
    lifetime: timedelta,
    now: datetime | None = None,
    extra_claims: Mapping[str, Any] | None = None,
) -> str:
    """A signed entitlement valid for `lifetime` from `now`, with the key's thumbprint as `kid`."""
    issued = as_utc(now or utc_now())
    claims: dict[str, Any] = {
        "iss": iss,
        "sub": sub,
        "plan": plan,
        "iat": int(issued.timestamp()),
        "exp": int((issued + lifetime).timestamp()),
        **(extra_claims or {}),
    }
    kid = key_id(private_key.public_key())
    return jwt.encode(claims, private_key, algorithm="EdDSA", headers={"kid": kid})
