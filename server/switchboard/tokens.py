"""Local token estimates, for when the API has not counted (Switchboard ships no tokenizer).

Two rules, on purpose, because the two uses err in opposite directions:

* `estimate_tokens` (about 3.5 characters a token) fits history into a context window and previews
  costs. It is conservative, since code tokenizes densely: a request the estimate says fits must not be
  refused upstream.
* `estimate_billed_tokens` (the usual four characters a token) prices output the API never reported, as
  when a turn is cancelled before `message_delta` arrives. It leans toward the user: an estimate may
  undercharge dense output, but it should never overcharge.
"""

from __future__ import annotations

import math

CHARS_PER_TOKEN = 3.5
BILLED_CHARS_PER_TOKEN = 4
MESSAGE_OVERHEAD_TOKENS = 4


def estimate_tokens(text: str) -> int:
    return tokens_for_chars(len(text))


def tokens_for_chars(chars: int) -> int:
    """`estimate_tokens` of a text this long."""
    return math.ceil(chars / CHARS_PER_TOKEN)


def estimate_billed_tokens(text: str) -> int:
    return billed_tokens_for_chars(len(text))


def billed_tokens_for_chars(chars: int) -> int:
    """`estimate_billed_tokens` of a text this long (a stream's length is cheaper to keep than its text)."""
    return math.ceil(chars / BILLED_CHARS_PER_TOKEN)
