"""The credits formula: Sonnet 4 list rates in cents, times the model multiplier, rounded up to 0.01."""

from __future__ import annotations

import math
from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from switchboard.plans.credits import (
    base_credits,
    cancelled_usage,
    credits_for,
    estimate_credits,
    from_hundredths,
    hundredths_for,
    multiplier,
    to_hundredths,
)
from switchboard.protocol.messages import Usage
from switchboard.tokens import estimate_billed_tokens, estimate_tokens

MODELS = ["auto", "claude-haiku-4.5", "claude-sonnet-4.0", "claude-sonnet-4.5", "claude-opus-4.5"]
MTOK = 1_000_000


def usage(inp: int = 0, out: int = 0, read: int = 0, write: int = 0) -> Usage:
    return Usage(
        input_tokens=inp, output_tokens=out, cache_read_input_tokens=read, cache_creation_input_tokens=write
    )


@pytest.mark.parametrize(
    ("model_id", "tokens", "expected"),
    [
        ("claude-sonnet-4.5", usage(inp=MTOK), "390.00"),  # the example
        ("claude-haiku-4.5", usage(out=1), "0.01"),  # 0.0015 × 0.4 = 0.0006, rounded up
        ("claude-opus-4.5", usage(out=MTOK), "3300.00"),
        ("claude-sonnet-4.0", usage(write=MTOK), "487.50"),
        ("claude-haiku-4.5", usage(read=MTOK), "12.00"),
        ("auto", usage(inp=MTOK, out=MTOK), "1800.00"),
        ("claude-sonnet-4.5", usage(inp=1234, out=567, read=8910, write=1112), "2.48"),  # 2.4765 ↑
        ("claude-haiku-4.5", usage(out=25), "0.02"),  # 0.015 ↑
        ("claude-haiku-4.5", usage(inp=25_000), "3.00"),  # exactly 3, not bumped
        ("claude-opus-4.5", usage(inp=1), "0.01"),
        ("claude-opus-4.5", usage(), "0.00"),
    ],
)
def test_exact_credits(model_id: str, tokens: Usage, expected: str) -> None:
    assert credits_for(model_id, tokens) == Decimal(expected)
    assert str(credits_for(model_id, tokens)) == expected


def test_multipliers_come_from_the_catalog() -> None:
    assert [multiplier(m) for m in MODELS] == [Decimal(x) for x in ("1.0", "0.4", "1.3", "1.3", "2.2")]


def test_each_multiplier_applies_to_the_same_base() -> None:
    tokens = usage(inp=MTOK)  # 300 cents at 1.0x
    assert [str(credits_for(m, tokens)) for m in MODELS] == ["300.00", "120.00", "390.00", "390.00", "660.00"]


def test_auto_is_one_x_whatever_it_routed_to() -> None:
    # Charging takes the model the user chose; Auto's price does not depend on the routed model.
    assert credits_for("auto", usage(inp=10_000, out=2_000)) == Decimal("6.00")
    assert base_credits(usage(inp=10_000, out=2_000)) == Decimal(6)


def test_estimate_credits() -> None:
    assert estimate_credits("claude-sonnet-4.5", 1_000_000, 0) == Decimal("390.00")
    assert estimate_credits("claude-haiku-4.5", 0, 1) == Decimal("0.01")


def _oracle(model_id: str, tokens: Usage) -> Fraction:
    cents = Fraction(
        tokens.input_tokens * 300
        + tokens.cache_creation_input_tokens * 375
        + tokens.cache_read_input_tokens * 30
        + tokens.output_tokens * 1500,
        MTOK,
    )
    exact = Fraction(str(multiplier(model_id))) * cents
    return Fraction(math.ceil(exact * 100), 100)


counts = st.integers(min_value=0, max_value=5_000_000)


@given(st.sampled_from(MODELS), counts, counts, counts, counts)
def test_credits_match_an_exact_rational_oracle(
    model_id: str, inp: int, out: int, read: int, write: int
) -> None:
    tokens = usage(inp, out, read, write)
    charged = credits_for(model_id, tokens)
    assert Fraction(charged) == _oracle(model_id, tokens)
    assert charged >= 0
    assert from_hundredths(to_hundredths(charged)) == charged


@given(st.sampled_from(MODELS), counts, counts, counts, counts)
def test_integer_hundredths_are_the_decimal_charge(
    model_id: str, inp: int, out: int, read: int, write: int
) -> None:
    tokens = usage(inp, out, read, write)
    assert hundredths_for(model_id, tokens) == to_hundredths(credits_for(model_id, tokens))
    assert Fraction(hundredths_for(model_id, tokens), 100) == _oracle(model_id, tokens)


def test_negative_tokens_are_refused() -> None:
    with pytest.raises(ValueError, match="negative"):
        credits_for("auto", usage(out=-1))
    with pytest.raises(ValueError, match="negative"):
        hundredths_for("auto", usage(read=-1))


def test_hundredths_round_trip_and_refuse_fractions() -> None:
    assert to_hundredths(Decimal("390.00")) == 39_000
    assert str(from_hundredths(1)) == "0.01"
    assert str(from_hundredths(0)) == "0.00"
    with pytest.raises(ValueError):
        to_hundredths(Decimal("0.001"))


def test_billed_estimate_is_four_characters_a_token_and_never_above_the_fitting_one() -> None:
    assert [estimate_billed_tokens("x" * n) for n in (0, 1, 4, 5, 8)] == [0, 1, 1, 2, 2]
    assert [estimate_tokens("x" * n) for n in (0, 1, 4, 7, 8)] == [0, 1, 2, 2, 3]
    assert all(estimate_billed_tokens("x" * n) <= estimate_tokens("x" * n) for n in range(500))


def test_cancelled_turn_usage() -> None:
    text = "x" * 41  # 11 tokens
    assert cancelled_usage(None, text) == usage(out=11)
    # A partial count from message_start is a lower bound: the estimate wins when larger, and vice versa.
    assert cancelled_usage(usage(inp=900, out=1), text) == usage(inp=900, out=11)
    assert cancelled_usage(usage(inp=900, out=50), text) == usage(inp=900, out=50)
    # When the API did report the final output, it is used as is.
    assert cancelled_usage(usage(inp=900, out=3), text, output_reported=True) == usage(inp=900, out=3)
    assert credits_for("claude-haiku-4.5", cancelled_usage(None, "")) == 0
