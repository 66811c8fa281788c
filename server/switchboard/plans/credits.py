"""What a turn costs in credits: its tokens at Sonnet 4 list rates in cents, times the model's multiplier.

Credits are exact `Decimal`s in hundredths; the ledger stores them as integer hundredths.
"""

from __future__ import annotations

from decimal import ROUND_CEILING, Context, Decimal, localcontext
from fractions import Fraction
from functools import cache

from switchboard.catalog.models import get_model
from switchboard.protocol.messages import Usage
from switchboard.tokens import billed_tokens_for_chars

# Sonnet 4 list prices in cents per million tokens.
INPUT_CENTS_PER_MTOK = Decimal(300)
CACHE_WRITE_CENTS_PER_MTOK = Decimal(375)
CACHE_READ_CENTS_PER_MTOK = Decimal(30)
OUTPUT_CENTS_PER_MTOK = Decimal(1500)

CENT = Decimal("0.01")
_MTOK = Decimal(1_000_000)
# Enough digits that no product of token counts and rates is ever rounded before the final ceiling.
_EXACT = Context(prec=60)


def base_credits(usage: Usage) -> Decimal:
    """The unrounded credits of `usage` at 1.0x."""
    counts = usage.model_dump(by_alias=False)
    if any(count < 0 for count in counts.values()):
        raise ValueError(f"negative token count in {counts}")
    with localcontext(_EXACT):
        cents = (
            usage.input_tokens * INPUT_CENTS_PER_MTOK
            + usage.cache_creation_input_tokens * CACHE_WRITE_CENTS_PER_MTOK
            + usage.cache_read_input_tokens * CACHE_READ_CENTS_PER_MTOK
            + usage.output_tokens * OUTPUT_CENTS_PER_MTOK
        )
        return cents / _MTOK


def multiplier(model_id: str) -> Decimal:
    """The catalog multiplier of the model the user chose (Auto is 1.0x whatever it routed to)."""
    return Decimal(str(get_model(model_id).credit_multiplier))


def round_up(credits: Decimal) -> Decimal:
    return credits.quantize(CENT, rounding=ROUND_CEILING, context=_EXACT)


def credits_for(model_id: str, usage: Usage) -> Decimal:
    """Credits charged for a turn: multiplier × base, rounded up to 0.01."""
    with localcontext(_EXACT):
        return round_up(multiplier(model_id) * base_credits(usage))


def hundredths_for(model_id: str, usage: Usage) -> int:
    """`to_hundredths(credits_for(model_id, usage))` in integer arithmetic: the same charge, exactly, at a
    fraction of the cost (the hosted gateway prices every turn twice, its reservation and its settlement)."""
    return hundredths_for_tokens(
        model_id,
        inp=usage.input_tokens,
        write=usage.cache_creation_input_tokens,
        read=usage.cache_read_input_tokens,
        out=usage.output_tokens,
    )


def hundredths_for_tokens(model_id: str, *, inp: int = 0, write: int = 0, read: int = 0, out: int = 0) -> int:
    """`hundredths_for` from the four counts, for a caller that has no `Usage` to hand (the gateway's
    reservation, on every turn's way to its first token)."""
    if inp < 0 or write < 0 or read < 0 or out < 0:
        raise ValueError(f"negative token count: input {inp}, cache write {write}, read {read}, output {out}")
    input_rate, write_rate, read_rate, output_rate = _INTEGER_RATES
    cents_per_mtok = inp * input_rate + write * write_rate + read * read_rate + out * output_rate
    numerator, denominator = _multiplier_ratio(model_id)
    # hundredths = ceil(multiplier × cents_per_mtok / 1,000,000 × 100): a ceiling of integer division
    return -(-numerator * cents_per_mtok // (denominator * 10_000))


def _integer_rates() -> tuple[int, int, int, int]:
    rates = (
        INPUT_CENTS_PER_MTOK,
        CACHE_WRITE_CENTS_PER_MTOK,
        CACHE_READ_CENTS_PER_MTOK,
        OUTPUT_CENTS_PER_MTOK,
    )
    if any(rate != rate.to_integral_value() for rate in rates):
        raise ValueError("hundredths_for needs whole cents per million tokens")
    input_rate, write_rate, read_rate, output_rate = (int(rate) for rate in rates)
    return input_rate, write_rate, read_rate, output_rate


_INTEGER_RATES = _integer_rates()


@cache
def _multiplier_ratio(model_id: str) -> tuple[int, int]:
    """The catalog multiplier as the exact ratio `multiplier` stands for (its decimal digits)."""
    ratio = Fraction(multiplier(model_id))
    return ratio.numerator, ratio.denominator


def estimate_credits(model_id: str, input_tokens: int, output_tokens: int) -> Decimal:
    return credits_for(model_id, Usage(input_tokens=input_tokens, output_tokens=output_tokens))


def cancelled_usage(reported: Usage | None, streamed_text: str, *, output_reported: bool = False) -> Usage:
    """The usage of a cancelled turn, its output estimated from the streamed text when the API never said.

    A partial count (from `message_start`) is only a lower bound, so the larger of it and the estimate wins.
    """
    if output_reported:
        return reported or Usage()
    return cut_usage(reported, len(streamed_text))


def cut_usage(reported: Usage | None, streamed_chars: int) -> Usage:
    """`cancelled_usage` when only the streamed text's length was kept (no output count was reported)."""
    usage = reported or Usage()
    output = max(usage.output_tokens, billed_tokens_for_chars(streamed_chars))
    return usage.model_copy(update={"output_tokens": output})


def to_hundredths(credits: Decimal) -> int:
    """Exact credits (a multiple of 0.01) as an integer count of hundredths."""
    hundredths = credits * 100
    if hundredths != hundredths.to_integral_value():
        raise ValueError(f"{credits} is not a whole number of hundredths")
    return int(hundredths)


def from_hundredths(hundredths: int) -> Decimal:
    return (Decimal(hundredths) / 100).quantize(CENT, context=_EXACT)
