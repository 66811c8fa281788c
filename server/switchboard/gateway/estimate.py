"""The worst case a turn is reserved for, before it runs.

Input: the request body's characters at 3.5 a token (`switchboard.tokens`, the conservative rule), priced as
cache writes (the dearest input rate), so the estimate errs high. The body as sent is the prompt (`system`,
`messages`, `tools`, `tool_choice`) as JSON plus a few short fields (the model, `max_tokens`), so counting its
characters costs microseconds where re-encoding the prompt cost about 6 ms a megabyte, on every turn's way to
its first token. A body that spells a character as a `\\u` escape (six characters for one, as an ASCII-only
encoder writes every accented letter) is not counted as sent: its prompt is re-encoded as compact JSON
instead, as is a body that is not UTF-8. Output: `max_tokens` in full.
"""

from __future__ import annotations

import json
from typing import Any

from switchboard.plans.credits import hundredths_for_tokens
from switchboard.tokens import tokens_for_chars

_PROMPT_FIELDS = ("system", "messages", "tools", "tool_choice")


def estimate_input_tokens(body: dict[str, Any], raw_body: bytes = b"") -> int:
    """The input tokens to reserve for `body` (read from `raw_body`, when given, as it came)."""
    chars = _characters_as_sent(raw_body)
    if chars is None:
        prompt = {name: body[name] for name in _PROMPT_FIELDS if name in body}
        chars = len(json.dumps(prompt, separators=(",", ":"), ensure_ascii=False))
    return tokens_for_chars(chars)


def _characters_as_sent(raw_body: bytes) -> int | None:
    if not raw_body or b"\\u" in raw_body:
        return None
    try:
        return len(raw_body.decode("utf-8"))
    except UnicodeDecodeError:
        return None


def reservation_h(model_id: str, input_tokens: int, max_tokens: int) -> int:
    """The hundredths of a credit to hold for a turn of this size, billed as `model_id`."""
    return hundredths_for_tokens(model_id, write=input_tokens, out=max_tokens)


def max_tokens_within(model_id: str, input_tokens: int, available_h: int) -> int:
    """The largest `max_tokens` whose reservation fits `available_h` (0 when even the input does not)."""
    low, high = 0, 1_000_000
    while low < high:
        middle = (low + high + 1) // 2
        if reservation_h(model_id, input_tokens, middle) <= available_h:
            low = middle
        else:
            high = middle - 1
    return low
