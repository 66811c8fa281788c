"""The worst case a turn is reserved for, before it runs.

Input: the body sent to Anthropic, at 3.5 bytes a token (`switchboard.tokens`, the conservative rule for
characters), priced as cache writes (the dearest input rate), so the estimate errs high. That body is the
prompt (`system`, `messages`, `tools`, `tool_choice`) as JSON plus a few short fields (the model,
`max_tokens`): measuring it costs nothing, where re-encoding the prompt to measure it cost about 6 ms a
megabyte on every turn's way to its first token. It is measured as sent upstream, not as the client sent it,
since a body the gateway re-encodes (`TurnRequest.upstream_body`) can grow. Bytes rather than characters: a
character outside ASCII is two to four bytes in UTF-8, which errs high for accented text and comes closer
for the scripts that tokenize densest, though not above them (a CJK character is about a token, its three
bytes count 0.86; a rare four-byte character may be several tokens). Usage past the reservation is charged
all the same, within the account's limit (docs/gateway.md, "Reservations").
Content whose bytes are not in the body (a document or image with a `url` source, which Anthropic
fetches, or a `file` source, kept by the Files API; `TurnRequest.unmeasured_input`) can weigh anything up
to the model's whole context window, and is reserved at that (`ModelSpec.context_window`, 200,000 tokens
for every model in the catalog): a 300-byte body can ask for a 100-page PDF. So is an inline PDF (its
pages are read as images and text). Other inline sources are in the body, so its size counts them; an image
is held at least at the most one is billed (`TurnRequest.unseen_input_tokens`).
Output: `max_tokens` in full.
"""

from __future__ import annotations

from switchboard.catalog.models import ModelSpec
from switchboard.plans.credits import hundredths_for_tokens
from switchboard.tokens import tokens_for_chars


def estimate_input_tokens(upstream_body: bytes) -> int:
    """The input tokens to reserve for a turn whose request to Anthropic is `upstream_body`."""
    return tokens_for_chars(len(upstream_body))


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
