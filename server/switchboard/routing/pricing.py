"""List prices per million tokens and what a turn costs with a warm or a cold prompt cache.

Input and output prices come from the catalog; a cache write costs 1.25× and a cache read 0.1× the input
price (Anthropic's 5-minute cache), e.g. Sonnet 4.x $3 in, $3.75 write, $0.30 read, $15 out; Haiku 4.5 $1,
$1.25, $0.10, $5.
"""

from __future__ import annotations

from dataclasses import dataclass

from switchboard.catalog.models import CATALOG
from switchboard.protocol.messages import Usage

CACHE_WRITE_FACTOR = 1.25
CACHE_READ_FACTOR = 0.10
CACHE_TTL_SECONDS = 300.0

# A typical Auto turn, for cost figures and the stickiness rule: prompt plus attached context in, answer out.
TYPICAL_NEW_INPUT_TOKENS = 1_500
TYPICAL_OUTPUT_TOKENS = 700
# Turns a conversation is expected to stay on a model after switching (the current one included).
SWITCH_HORIZON_TURNS = 3


@dataclass(frozen=True)
class Prices:
    input: float
    output: float

    @property
    def cache_write(self) -> float:
        return self.input * CACHE_WRITE_FACTOR

    @property
    def cache_read(self) -> float:
        return self.input * CACHE_READ_FACTOR


def prices(model: str) -> Prices:
    spec = CATALOG[model]
    return Prices(input=spec.price_in_usd_per_mtok, output=spec.price_out_usd_per_mtok)


def turn_cost_usd(
    model: str, history_tokens: int, new_tokens: int, output_tokens: int, *, warm: bool
) -> float:
    """One turn: the history read from a warm cache (or written anew), the new input cached, the answer."""
    p = prices(model)
    history_price = p.cache_read if warm else p.cache_write
    micro = history_tokens * history_price + new_tokens * p.cache_write + output_tokens * p.output
    return micro / 1_000_000


def typical_request_cost_usd(model: str) -> float:
    """A single-turn request of the typical token mix (no history)."""
    return turn_cost_usd(model, 0, TYPICAL_NEW_INPUT_TOKENS, TYPICAL_OUTPUT_TOKENS, warm=False)


def switch_saving_usd(
    from_model: str, to_model: str, history_tokens: int, new_tokens: int, *, cache_warm: bool
) -> float:
    """Expected saving of moving a conversation from `from_model` to `to_model` over the switch horizon.

    Staying: every turn reads the history from `from_model`'s cache (if warm; else the first turn writes it).
    Switching: the first turn writes the history into `to_model`'s cache, the next ones read it.
    Positive means switching is cheaper.
    """
    turns = SWITCH_HORIZON_TURNS
    out = TYPICAL_OUTPUT_TOKENS
    stay_first = turn_cost_usd(from_model, history_tokens, new_tokens, out, warm=cache_warm)
    stay_next = turn_cost_usd(from_model, history_tokens, new_tokens, out, warm=True)
    move_first = turn_cost_usd(to_model, history_tokens, new_tokens, out, warm=False)
    move_next = turn_cost_usd(to_model, history_tokens, new_tokens, out, warm=True)
    return (stay_first - move_first) + (turns - 1) * (stay_next - move_next)


def usage_cost_usd(model: str, usage: Usage) -> float:
    """What an answer cost at list prices: fresh input, cache writes (1.25×), cache reads (0.1×), output."""
    p = prices(model)
    micro = (
        usage.input_tokens * p.input
        + usage.cache_creation_input_tokens * p.cache_write
        + usage.cache_read_input_tokens * p.cache_read
        + usage.output_tokens * p.output
    )
    return micro / 1_000_000
