"""The worst case a turn is reserved for, before it runs.

Input: the request body's size at 3.5 bytes a token (`switchboard.tokens`, the conservative rule for
characters), priced as cache writes (the dearest input rate), so the estimate errs high. The body as sent is
the prompt (`system`, `messages`, `tools`, `tool_choice`) as JSON plus a few short fields (the model,
`max_tokens`), so measuring it costs nothing where re-encoding the prompt cost about 6 ms a megabyte, on every
turn's way to its first token. Bytes rather than characters: a character outside ASCII is two to four bytes
in UTF-8, which errs high again, and least for the scripts that tokenize densest (a CJK character is about a
token; three bytes make 0.86 of one). A body that spells characters as `\\u` escapes (six bytes for one, as
an ASCII-only encoder writes every accented letter) is not measured as sent, nor one in UTF-16 or UTF-32
(JSON allows both): its prompt is re-encoded as compact UTF-8 JSON instead. Output: `max_tokens` in full.
"""

from __future__ import annotations

import json
from typing import Any

from switchboard.plans.credits import hundredths_for_tokens
from switchboard.tokens import tokens_for_chars

_PROMPT_FIELDS = ("system", "messages", "tools", "tool_choice")


def estimate_input_tokens(body: dict[str, Any], raw_body: bytes = b"", *, escaped: bool | None = None) -> int:
    """The input tokens to reserve for `body`, measured on `raw_body` (as it came) when that can stand for it.
    `escaped`: whether `raw_body` holds a `\\u` escape, if the caller has looked already."""
    if escaped is None:
        escaped = b"\\u" in raw_body
    if raw_body and not escaped and b"\x00" not in raw_body[:4]:  # UTF-16 and UTF-32 JSON start with a NUL
        return tokens_for_chars(len(raw_body))
    prompt = {name: body[name] for name in _PROMPT_FIELDS if name in body}
    return tokens_for_chars(len(json.dumps(prompt, separators=(",", ":"), ensure_ascii=False).encode()))


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
