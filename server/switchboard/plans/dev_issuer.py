"""`switchboard dev-issuer`: a local stand-in for the account service, for development and tests.

`init` makes an Ed25519 key pair under `<state_dir>/dev-issuer/` and a `jwks.json` to trust it with;
`token` signs an entitlement. Nothing trusts the dev issuer until the user points configuration at it.
The forging helpers (`alg_override`, `replace_payload`) exist so tests can prove forgeries are refused.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, TextIO

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from jwt.utils import base64url_encode

from . import signing
from .catalog import PLANS
from .period import as_utc, utc_now
from .signing import key_id, read_private_key, write_private_key
from .trust import TRUSTED_KEYS_ENV, TRUSTED_KEYS_FILE, default_config_dir

DEV_ISSUER = "switchboard-dev-issuer"
DEFAULT_SUB = "dev-user"
DEFAULT_DAYS = 30
_HMAC = {"HS256": hashlib.sha256, "HS384": hashlib.sha384, "HS512": hashlib.sha512}


@dataclass(frozen=True)
class DevIssuerPaths:
    directory: Path
    private_key: Path
    jwks: Path


def dev_issuer_paths(state_dir: Path) -> DevIssuerPaths:
    directory = state_dir / "dev-issuer"
    return DevIssuerPaths(directory, directory / "private_key.pem", directory / "jwks.json")


def init(state_dir: Path, *, force: bool = False) -> tuple[DevIssuerPaths, bool]:
    """Create the key pair and `jwks.json` (kept if they exist, unless `force`); returns (paths, created)."""
    paths = dev_issuer_paths(state_dir)
    if paths.private_key.exists() and not force:
        return paths, False
    paths.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    key = Ed25519PrivateKey.generate()
    write_private_key(paths.private_key, key)
    document = {"keys": [public_jwk(key.public_key())]}
    paths.jwks.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    return paths, True


def load_private_key(state_dir: Path) -> Ed25519PrivateKey:
    return read_private_key(dev_issuer_paths(state_dir).private_key)


def public_jwk(
    public_key: Ed25519PublicKey, *, kid: str | None = None, iss: str | None = DEV_ISSUER
) -> dict[str, str]:
    return signing.public_jwk(public_key, kid=kid, iss=iss)


def sign_token(
    private_key: Ed25519PrivateKey,
    plan: str,
    sub: str = DEFAULT_SUB,
    days: float = DEFAULT_DAYS,
    iss: str = DEV_ISSUER,
    kid: str | None = None,
    alg_override: str | None = None,
    *,
    now: datetime | None = None,
    extra_claims: Mapping[str, Any] | None = None,
    omit_claims: Iterable[str] = (),
    hmac_secret: bytes | None = None,
) -> str:
    """A signed entitlement; `alg_override` ("none", "HS256", …) forges one the verifier must refuse.

    An HMAC override signs with `hmac_secret`, by default the public key's PEM (the key-confusion attack).
    """
    issued = as_utc(now or utc_now())
    claims: dict[str, Any] = {
        "iss": iss,
        "sub": sub,
        "plan": plan,
        "iat": int(issued.timestamp()),
        "exp": int((issued + timedelta(days=days)).timestamp()),
        **(extra_claims or {}),
    }
    for name in omit_claims:
        claims.pop(name, None)
    kid = kid or key_id(private_key.public_key())
    if alg_override is None:
        return jwt.encode(claims, private_key, algorithm="EdDSA", headers={"kid": kid})
    return encode_jws(
        {"alg": alg_override, "typ": "JWT", "kid": kid},
        claims,
        _forger(alg_override, private_key, hmac_secret),
    )


def _forger(alg: str, private_key: Ed25519PrivateKey, secret: bytes | None) -> Callable[[bytes], bytes]:
    if alg.lower() == "none":
        return lambda _: b""
    if alg in _HMAC:
        key = secret if secret is not None else public_pem(private_key.public_key())
        return lambda data: hmac.new(key, data, _HMAC[alg]).digest()
    if alg == "EdDSA":
        return private_key.sign
    raise ValueError(f"cannot forge a token with alg {alg!r}")


def public_pem(public_key: Ed25519PublicKey) -> bytes:
    return public_key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def encode_jws(header: Mapping[str, Any], claims: Mapping[str, Any], sign: Callable[[bytes], bytes]) -> str:
    """A compact JWS of any header, claims and signing function."""
    signing_input = _segment(header) + b"." + _segment(claims)
    return (signing_input + b"." + base64url_encode(sign(signing_input))).decode()


def replace_payload(token: str, claims: Mapping[str, Any]) -> str:
    """`token` with its payload swapped and its signature kept (a tampered token)."""
    header, _, signature = token.split(".")
    return f"{header}.{_segment(claims).decode()}.{signature}"


def _segment(value: Mapping[str, Any]) -> bytes:
    return base64url_encode(json.dumps(value, separators=(",", ":")).encode())


# --- CLI -----------------------------------------------------------------------------------------------


def main(
    argv: Sequence[str] | None, state_dir: Path, *, config_dir: Path | None = None, out: TextIO | None = None
) -> int:
    """`switchboard dev-issuer init|token`; returns the exit status."""
    args = _parser().parse_args(argv)
    stream = out or sys.stdout
    if args.command == "init":
        return _cmd_init(state_dir, config_dir or default_config_dir(), args.force, stream)
    return _cmd_token(state_dir, args.plan, args.days, args.sub, stream)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="switchboard dev-issuer", description="A local entitlement issuer.")
    commands = parser.add_subparsers(dest="command", required=True)
    init_cmd = commands.add_parser("init", help="create the dev issuer's key pair and jwks.json")
    init_cmd.add_argument("--force", action="store_true", help="replace an existing key pair")
    token_cmd = commands.add_parser("token", help="print a signed entitlement")
    token_cmd.add_argument("--plan", required=True, choices=list(PLANS))
    token_cmd.add_argument("--days", type=float, default=DEFAULT_DAYS)
    token_cmd.add_argument("--sub", default=DEFAULT_SUB)
    return parser


def _cmd_init(state_dir: Path, config_dir: Path, force: bool, out: TextIO) -> int:
    paths, created = init(state_dir, force=force)
    jwks, trusted_file = paths.jwks.resolve(), config_dir.resolve() / TRUSTED_KEYS_FILE
    status = "Created" if created else "Kept the existing"
    print(f"{status} dev issuer key pair in {paths.directory.resolve()}", file=out)
    print("Nothing trusts it yet. To trust it, either set", file=out)
    print(f"  export {TRUSTED_KEYS_ENV}={jwks}", file=out)
    print(f"or copy {jwks} to {trusted_file} (merge its key if that file exists)", file=out)
    print("Then sign in with the output of: switchboard dev-issuer token --plan pro", file=out)
    return 0


def _cmd_token(state_dir: Path, plan: str, days: float, sub: str, out: TextIO) -> int:
    try:
        key = load_private_key(state_dir)
    except FileNotFoundError:
        print("No dev issuer key yet: run `switchboard dev-issuer init` first.", file=sys.stderr)
        return 1
    print(sign_token(key, plan, sub=sub, days=days), file=out)
    return 0
