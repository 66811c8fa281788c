"""The issuer keys this server trusts, read only from the user's own configuration.

Two sources, both JWKS files and both optional: the file named by `SWITCHBOARD_TRUSTED_KEYS`, and
`trusted_keys.json` in the config directory. Nothing is trusted by default and nothing the client sends
can add a key. Only Ed25519 public keys (`kty: OKP`, `crv: Ed25519`) are accepted; anything else in a
JWKS is skipped with a problem note, so a symmetric (`oct`) key can never be used to verify.

A JWK may carry a non-standard `iss` member; when it does, tokens verified by that key must name that
issuer. A JWK without `iss` vouches for any issuer.
"""

from __future__ import annotations

import binascii
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import platformdirs
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from jwt.utils import base64url_decode

TRUSTED_KEYS_ENV = "SWITCHBOARD_TRUSTED_KEYS"
CONFIG_DIR_ENV = "SWITCHBOARD_CONFIG_DIR"
TRUSTED_KEYS_FILE = "trusted_keys.json"
_ED25519_KEY_BYTES = 32


@dataclass(frozen=True)
class TrustedKey:
    public_key: Ed25519PublicKey
    kid: str | None
    issuer: str | None
    source: str


@dataclass(frozen=True)
class TrustedKeys:
    keys: tuple[TrustedKey, ...] = ()
    # Human notes about files or entries that could not be used (for logs and diagnostics).
    problems: tuple[str, ...] = field(default=())

    def for_kid(self, kid: str | None) -> list[TrustedKey]:
        """The keys to try for a token: those with its `kid` (or no `kid`), or every key if it names none."""
        if kid is None:
            return list(self.keys)
        return [key for key in self.keys if key.kid in (kid, None)]


def default_config_dir(environ: Mapping[str, str] | None = None) -> Path:
    env = os.environ if environ is None else environ
    return Path(env.get(CONFIG_DIR_ENV) or platformdirs.user_config_dir("switchboard"))


def load_trusted_keys(
    config_dir: Path | None = None, environ: Mapping[str, str] | None = None
) -> TrustedKeys:
    env = os.environ if environ is None else environ
    keys: list[TrustedKey] = []
    problems: list[str] = []
    if env_path := env.get(TRUSTED_KEYS_ENV):
        _load_file(Path(env_path), keys, problems, required=True)
    directory = config_dir if config_dir is not None else default_config_dir(env)
    _load_file(directory / TRUSTED_KEYS_FILE, keys, problems, required=False)
    return TrustedKeys(tuple(keys), tuple(problems))


def _load_file(path: Path, keys: list[TrustedKey], problems: list[str], *, required: bool) -> None:
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        if required:
            problems.append(f"{TRUSTED_KEYS_ENV} names {path}, which does not exist")
        return
    except (OSError, ValueError) as error:
        problems.append(f"{path}: not a readable JWKS file ({type(error).__name__})")
        return
    found, notes = parse_jwks(document, str(path))
    keys.extend(found)
    problems.extend(notes)


def parse_jwks(document: Any, source: str) -> tuple[list[TrustedKey], list[str]]:
    """The Ed25519 keys of a JWKS document, and a note for each entry that was skipped."""
    entries = document.get("keys") if isinstance(document, dict) else None
    if not isinstance(entries, list):
        return [], [f"{source}: not a JWKS (expected an object with a `keys` list)"]
    keys: list[TrustedKey] = []
    notes: list[str] = []
    for index, entry in enumerate(entries):
        try:
            keys.append(parse_jwk(entry, source))
        except ValueError as error:
            notes.append(f"{source}: key {index} skipped: {error}")
    return keys, notes


def parse_jwk(entry: Any, source: str) -> TrustedKey:
    if not isinstance(entry, dict):
        raise ValueError("not an object")
    if entry.get("kty") != "OKP" or entry.get("crv") != "Ed25519":
        raise ValueError("only Ed25519 public keys (kty OKP, crv Ed25519) are trusted")
    if entry.get("alg") not in (None, "EdDSA", "Ed25519") or entry.get("use") not in (None, "sig"):
        raise ValueError("the key is not for EdDSA signatures")
    kid, issuer = entry.get("kid"), entry.get("iss")
    if not isinstance(kid, str | None) or not isinstance(issuer, str | None):
        raise ValueError("`kid` and `iss` must be strings")
    return TrustedKey(_public_key(entry.get("x")), kid, issuer, source)


def _public_key(x: Any) -> Ed25519PublicKey:
    if not isinstance(x, str):
        raise ValueError("missing `x`")
    try:
        raw = base64url_decode(x)
    except (binascii.Error, ValueError) as error:
        raise ValueError("`x` is not base64url") from error
    if len(raw) != _ED25519_KEY_BYTES:
        raise ValueError("`x` is not a 32-byte Ed25519 public key")
    return Ed25519PublicKey.from_public_bytes(raw)
