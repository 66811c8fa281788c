"""Signatures of thinking blocks. Each names the model that produced it, so the fake can refuse a
thinking block replayed to another model, as the real API does."""

from __future__ import annotations

import base64
import binascii
import hashlib

_PREFIX = "fake-sig"


def sign_thinking(model: str, thinking: str) -> str:
    """The signature the fake attaches to a thinking block `model` produced."""
    digest = hashlib.sha256(f"{model}\n{thinking}".encode()).hexdigest()[:32]
    return base64.b64encode(f"{_PREFIX}:{model}:{digest}".encode()).decode("ascii")


def signing_model(signature: str) -> str | None:
    """The model named by a fake signature, or None if `signature` is not one."""
    try:
        decoded = base64.b64decode(signature.encode("ascii"), validate=True).decode()
    except (binascii.Error, UnicodeError, ValueError):
        return None
    prefix, _, rest = decoded.partition(":")
    model, _, digest = rest.rpartition(":")
    if prefix != _PREFIX or not model or not digest:
        return None
    return model
