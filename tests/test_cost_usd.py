"""Own key, not signed in: every answer carries its cost in dollars at Anthropic's list prices (as Cline
shows it), from the turn's reported tokens, cache writes and reads included."""

from __future__ import annotations

import pytest

from conftest import SessionFactory
from switchboard.fakeapi import FakeAnthropic

# Anthropic's published list prices, USD per million tokens: input, cache write (5 min), cache read, output.
LIST_PRICES = {
    "claude-sonnet-4.5": (3.00, 3.75, 0.30, 15.00),
    "claude-haiku-4.5": (1.00, 1.25, 0.10, 5.00),
}


def list_price(model: str, usage: dict[str, int]) -> float:
    price_in, write, read, out = LIST_PRICES[model]
    micro = (
        usage["inputTokens"] * price_in
        + usage["cacheCreationInputTokens"] * write
        + usage["cacheReadInputTokens"] * read
        + usage["outputTokens"] * out
    )
    return micro / 1_000_000


@pytest.mark.parametrize("model", ["claude-sonnet-4.5", "claude-haiku-4.5"])
async def test_each_answer_costs_its_tokens_at_list_price(
    start_server: SessionFactory, fake_api: FakeAnthropic, model: str
) -> None:
    session = await start_server(fake_api)
    first = await session.chat("Explain what a mutex is, briefly. " * 1000, modelId=model)
    second = await session.chat("And a semaphore?", modelId=model, conversationId=first["conversationId"])
    for result in (first, second):
        assert result["costUsd"] == pytest.approx(list_price(model, result["usage"]), abs=1e-6)
        assert result["costUsd"] > 0
    assert second["usage"]["cacheReadInputTokens"] > 0, "the second turn should read the prompt cache"
