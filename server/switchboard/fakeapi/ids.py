"""The identifiers the fake makes up (request and message ids): unique enough, and cheap.

They need no secrecy, so they come from `random` rather than from `uuid4`, which makes a system call each."""

from __future__ import annotations

import random


def new_id(prefix: str) -> str:
    """`prefix` and 24 random hex digits, as `req_fake_…` and `msg_fake_…` always were."""
    return f"{prefix}{random.getrandbits(96):024x}"
