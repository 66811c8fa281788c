"""The worst case a turn is reserved for, before it runs.

Input: the body sent to Anthropic, at 3.5 bytes a token for its ASCII (`switchboard.tokens`, the
conservative rule for characters) and a token for each character outside ASCII, priced as cache writes (the
dearest input rate), so the estimate errs high. That body is the prompt (`system`, `messages`, `tools`,
`tool_choice`) as JSON plus a few short fields (the model, `max_tokens`): measuring it costs nothing, where
re-encoding the prompt to measure it cost about 6 ms a megabyte on every turn's way to its first token. It is
measured as sent upstream, not as the client sent it, since a body the gateway re-encodes
(`TurnRequest.upstream_body`) can grow. Text outside ASCII tokenizes far more densely than English: a CJK
character or an emoji is about a token, so at 3.5 bytes a token its three or four bytes of UTF-8 counted
0.86-1.14 and CJK text was reserved short. Counted as a token a character (by its lead byte, about 0.7 ms a
megabyte, only for a body not all ASCII), an accented Latin letter errs high. A character sent as a `\\u`
escape is six ASCII bytes, 1.7 tokens, enough already. Usage past the reservation is charged all the same,
within the account's limit (docs/gateway.md, "Reservations").
Content whose bytes are not in the body (a document or image with a `url` source, which Anthropic
fetches, or a `file` source, kept by the Files API; `TurnRequest.unmeasured_input`) can weigh anything up
to the model's whole context window, and is reserved at that (`ModelSpec.context_window`, 200,000 tokens
for every model in the catalog): a 300-byte body can ask for a 100-page PDF. So is an inline PDF (its
pages are read as images and text). Other inline sources are in the body, so its size counts them; an image
is held at least at the most one is billed, and a request with tools holds the system prompt Anthropic adds
for them (`TurnRequest.unseen_input_tokens`).
Output: `max_tokens` in full.
"""

from __future__ import annotations

from switchboard.catalog.models import ModelSpec
from switchboard.plans.credits import hundredths_for_tokens
from switchboard.tokens import tokens_for_chars

# The bytes of UTF-8 that are not a character's first: ASCII (0x00-0x7F) and continuation bytes (0x80-0xBF).
_NOT_LEAD_BYTES = bytes(range(0xC0))
_ASCII_BYTES = bytes(range(0x80))


def estimate_input_tokens(upstream_body: bytes) -> int:
    """The input tokens to reserve for a turn whose request to Anthropic is `upstream_body`: its ASCII at
    3.5 bytes a token, and a token for each other character (each has one lead byte, 0xC0-0xFF)."""
    if upstream_body.isascii():
        return tokens_for_chars(len(upstream_body))
    beyond_ascii = upstream_body.translate(None, _ASCII_BYTES)
    characters = len(beyond_ascii.translate(None, _NOT_LEAD_BYTES))
    return tokens_for_chars(len(upstream_body) - len(beyond_ascii)) + characters


def input_to_reserve(estimated: int, *, unmeasured: bool, answering: ModelSpec) -> int:
    """The input tokens to hold: the body's estimate, or, when some content's size is not in the body,
    all the input the answering model takes (its context window, the catalog's figure)."""
    return max(estimated, answering.context_window) if unmeasured else estimated


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
