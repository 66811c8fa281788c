"""The worst case a turn is reserved for, before it runs.

Input: the request's system prompt, messages and tools as compact JSON at 3.5 characters a token
(`switchboard.tokens.estimate_tokens`, the conservative rule), priced as cache writes (the dearest input
rate), so the estimate errs high. Output: `max_tokens` in full.
"""

from __future__ import annotations

import json
from typing import Any

from switchboard.plans.credits import hundredths_for_tokens
from switchboard.tokens import estimate_tokens

_PROMPT_FIELDS = ("system", "messages", "tools", "tool_choice")


def estimate_input_tokens(body: dict[str, Any]) -> int:
    prompt = {name: body[name] for name in _PROMPT_FIELDS if name in body}
    return estimate_tokens(json.dumps(prompt, separators=(",", ":"), ensure_ascii=False))


def reservation_h(model_id: str, body: dict[str, Any], max_tokens: int) -> int:
    """The hundredths of a credit to hold for this turn, billed as `model_id`."""
    return hundredths_for_tokens(model_id, write=estimate_input_tokens(body), out=max_tokens)


def max_tokens_within(model_id: str, body: dict[str, Any], available_h: int) -> int:
    """The largest `max_tokens` whose reservation fits `available_h` (0 when even the input does not)."""
    low, high = 0, 1_000_000
    while low < high:
        middle = (low + high + 1) // 2
        if reservation_h(model_id, body, middle) <= available_h:
            low = middle
        else:
            high = middle - 1
    return low
