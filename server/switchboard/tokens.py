"""A local token estimate, for fitting history into a context window and for cost previews.

Deliberately conservative (about 3.5 characters a token, as code tokenizes densely) so that a request
the estimate says fits is not refused upstream.
"""

from __future__ import annotations

import math

CHARS_PER_TOKEN = 3.5
MESSAGE_OVERHEAD_TOKENS = 4


def estimate_tokens(text: str) -> int:
    return math.ceil(len(text) / CHARS_PER_TOKEN)
