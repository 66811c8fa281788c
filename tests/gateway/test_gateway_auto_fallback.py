"""Auto's fallback on the gateway: when the model Auto picked answers busy (429, 529) before any output, the
gateway asks the next model Auto may use, says so in its headers and bills the turn as Auto. The client
cannot pick Auto's model, so only the gateway may do this; a concrete model never falls back."""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Any
from urllib.parse import unquote

import anthropic
import pytest

from gateway.gateway_support import Accounts, Replica, expected_credits, sdk, turn_headers, turn_rows
from switchboard.catalog.models import CATALOG
from switchboard.fakeapi import FakeAnthropic, Fault

HAIKU = CATALOG["claude-haiku-4.5"].anthropic_model
SONNET_45 = CATALOG["claude-sonnet-4.5"].anthropic_model
SONNET_40 = CATALOG["claude-sonnet-4.0"].anthropic_model


def prompt() -> tuple[str, list[dict[str, Any]]]:
    """A short ask (Auto sends it to Haiku), marked so the test finds its requests upstream."""
    marker = f"hi {uuid.uuid4().hex}"
    return marker, [{"role": "user", "content": marker}]


def asked_upstream(upstream: FakeAnthropic, marker: str) -> list[str | None]:
    return [record.model for record in upstream.received() if marker.encode() in record.raw_body]


@pytest.mark.parametrize("status", [529, 429])
@pytest.mark.parametrize("stream", [False, True])
async def test_a_busy_haiku_is_answered_by_sonnet_billed_as_auto_and_the_headers_say_so(
    make_accounts: Accounts, replica: Replica, upstream: FakeAnthropic, status: int, stream: bool
) -> None:
    account = await make_accounts.create("pro")
    upstream.add_fault(Fault("status", status=status, model=HAIKU, count=None, retry_after=0))
    marker, messages = prompt()
    async with sdk(replica.url, account.token) as client:
        # The body names Sonnet: the gateway ignores it for Auto (and the client cannot pick the fallback).
        create = client.messages.with_raw_response.create
        raw = await create(
            model=SONNET_45,
            max_tokens=100,
            messages=messages,
            stream=stream,
            extra_headers=turn_headers("auto"),
        )
        if stream:
            charge: dict[str, Any] = {}
            usage: Any = None
            async for event in await raw.parse():
                if event.type == "message_delta":
                    charge, usage = (event.model_extra or {})["switchboard"], event.usage
                elif event.type == "message_start":
                    first = event.message.usage
            usage.input_tokens = first.input_tokens
            usage.cache_creation_input_tokens = first.cache_creation_input_tokens
            usage.cache_read_input_tokens = first.cache_read_input_tokens
        else:
            message = await raw.parse()
            charge, usage = (message.model_extra or {})["switchboard"], message.usage
    assert asked_upstream(upstream, marker) == [HAIKU, SONNET_45]
    reason = "Claude Haiku 4.5 is busy → Claude Sonnet 4.5 answers instead"
    assert raw.headers["switchboard-routed-model"] == "claude-sonnet-4.5"
    assert unquote(raw.headers["switchboard-route-reason"]) == reason
    assert raw.headers["switchboard-busy-models"] == "claude-haiku-4.5"
    assert raw.headers["switchboard-model"] == "auto"
    assert charge["model_id"] == "auto" and charge["routed_model"] == "claude-sonnet-4.5"
    assert charge["route_reason"] == reason
    assert Decimal(str(charge["credits"])) == expected_credits("auto", usage) > 0  # 1.0x, not Sonnet's 1.3x
    [row] = await turn_rows(make_accounts.database_url, account.id)
    assert row["status"] == "complete" and row["attempts"] == 2
    assert row["model_id"] == "auto" and row["routed_model"] == "claude-sonnet-4.5"
    assert Decimal(row["credits_h"]) / 100 == Decimal(str(charge["credits"]))


async def test_an_auto_kept_off_haiku_falls_back_billed_as_the_model_that_answers(
    make_accounts: Accounts, replica: Replica, upstream: FakeAnthropic
) -> None:
    """The fallback keeps to the user's list for Auto and to `plans.billed`'s rule: without Haiku on the
    list, the turn bills the model that answers, and the reservation is made again for it."""
    account = await make_accounts.create("pro")
    upstream.add_fault(Fault("status", status=529, model=SONNET_45, count=None, retry_after=0))
    marker, messages = prompt()
    headers = {**turn_headers("auto"), "Switchboard-Auto-Models": "claude-sonnet-4.5,claude-sonnet-4.0"}
    async with sdk(replica.url, account.token) as client:
        raw = await client.messages.with_raw_response.create(
            model=SONNET_45, max_tokens=100, messages=messages, extra_headers=headers
        )
    message = await raw.parse()
    charge = (message.model_extra or {})["switchboard"]
    assert asked_upstream(upstream, marker) == [SONNET_45, SONNET_40]
    assert raw.headers["switchboard-routed-model"] == "claude-sonnet-4.0"
    assert raw.headers["switchboard-model"] == charge["model_id"] == "claude-sonnet-4.0"
    assert "Claude Sonnet 4.5 is busy → Claude Sonnet 4.0 answers instead; billed as Claude Sonnet 4.0" in (
        unquote(raw.headers["switchboard-route-reason"])
    )
    [row] = await turn_rows(make_accounts.database_url, account.id)
    assert row["model_id"] == "claude-sonnet-4.0" and row["attempts"] == 2 and row["status"] == "complete"


async def test_a_concrete_model_never_falls_back_and_every_busy_auto_model_ends_free(
    make_accounts: Accounts, replica: Replica, upstream: FakeAnthropic
) -> None:
    account = await make_accounts.create("pro")
    upstream.add_fault(Fault("status", status=529, model=HAIKU, count=None, retry_after=0))
    marker, messages = prompt()
    async with sdk(replica.url, account.token) as client:
        with pytest.raises(anthropic.APIStatusError) as caught:
            await client.messages.create(
                model=HAIKU, max_tokens=100, messages=messages, extra_headers=turn_headers("claude-haiku-4.5")
            )
    assert caught.value.status_code == 529
    assert "switchboard-busy-models" not in caught.value.response.headers
    assert asked_upstream(upstream, marker) == [HAIKU], "the user's own choice was changed"

    upstream.clear_faults()
    upstream.add_fault(Fault("status", status=529, count=None, retry_after=0))  # every model
    marker, messages = prompt()
    async with sdk(replica.url, account.token) as client:
        with pytest.raises(anthropic.APIStatusError) as caught:
            await client.messages.create(
                model=SONNET_45, max_tokens=100, messages=messages, extra_headers=turn_headers("auto")
            )
    assert caught.value.status_code == 529
    assert asked_upstream(upstream, marker) == [HAIKU, SONNET_45, SONNET_40]  # never Opus
    assert caught.value.response.headers["switchboard-busy-models"] == "claude-haiku-4.5,claude-sonnet-4.5"
    rows = await turn_rows(make_accounts.database_url, account.id)
    assert [(row["status"], row["credits_h"]) for row in rows] == [("failed", 0), ("failed", 0)]
    assert rows[1]["attempts"] == 3
