"""The suite's fixed development half: what the escalation model is fitted and tuned on.

An item belongs to the development half when the first 32 bits of the SHA-256 of its id are even; the rest
is held out. The rule depends on the id alone, so adding items never moves an existing one.
"""

from __future__ import annotations

import hashlib


def is_development(item_id: str) -> bool:
    return int(hashlib.sha256(item_id.encode("utf-8")).hexdigest()[:8], 16) % 2 == 0
