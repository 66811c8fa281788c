"""Costs a small body could hide from the reservation and the charge (docs/gateway.md, "Reservations").

A document or image Anthropic fetches (a URL) or keeps (a Files API id) is not in the body, so its size
cannot be measured: such a turn holds the model's whole context window of input. Server tools carry fees
outside the credit formula and 1-hour cache writes cost more than it prices: both are refused before
anything is reserved or forwarded.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from starlette.datastructures import Headers

from gateway.gateway_support import HTTP, Accounts, Replica, balance, turn_headers, turn_rows
from switchboard.catalog.models import get_model
from switchboard.fakeapi import FakeAnthropic
from switchboard.gateway.config import load_settings
from switchboard.gateway.errors import GatewayRefusal
from switchboard.gateway.estimate import estimate_input_tokens
from switchboard.gateway.turn_request import IMAGE_MAX_TOKENS, TOOL_USE_SYSTEM_TOKENS, encode_body, parse_turn
from switchboard.plans.credits import hundredths_for_tokens
from switchboard.providers.prompt import Exchange, build_prompt
from switchboard.store import StoredTurn
from switchboard.tokens import tokens_for_chars

HAIKU = "claude-haiku-4-5-20251001"
SETTINGS_ENV = {
    "SWITCHBOARD_GATEWAY_DATABASE_URL": "postgresql://gateway@localhost/gateway",
    "SWITCHBOARD_GATEWAY_UPSTREAM_API_KEY": "sk-test",
    "SWITCHBOARD_GATEWAY_SIGNING_KEYS": "a.pem:b.pem",
    "SWITCHBOARD_GATEWAY_PUBLIC_BASE_URL": "http://gateway.test",
}
PDF_URL = {"type": "document", "source": {"type": "url", "url": "https://example.test/manual.pdf"}}
IMAGE_URL = {"type": "image", "source": {"type": "url", "url": "https://example.test/chart.png"}}
FILE_IMAGE = {"type": "image", "source": {"type": "file", "file_id": "file_011CNha8iCJcU1wXNR6q4V8w"}}
TINY_PNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
BASE64_IMAGE = {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": TINY_PNG}}


def body_with(*blocks: dict[str, Any], max_tokens: int = 100, **fields: Any) -> dict[str, Any]:
    marker = f"marker-{uuid.uuid4().hex}"  # the fake's log keeps its last requests: look for this one
    content = [*blocks, {"type": "text", "text": f"What does this show? {marker}"}]
    return {
        "model": HAIKU,
        "max_tokens": max_tokens,
        "messages": [{"role": "user", "content": content}],
        **fields,
    }


def post(replica: Replica, token: str, body: dict[str, Any]) -> Any:
    headers = {**turn_headers("claude-haiku-4.5"), "authorization": f"Bearer {token}"}
    return HTTP.post(replica.url + "/v1/messages", json=body, headers=headers)


def marker_of(body: dict[str, Any]) -> bytes:
    return body["messages"][-1]["content"][-1]["text"].split()[-1].encode()


def forwarded(upstream: FakeAnthropic, body: dict[str, Any]) -> bool:
    return any(marker_of(body) in record.raw_body for record in upstream.received())


def full_context_h(model_id: str, max_tokens: int) -> int:
    """The reservation of a turn whose input the gateway cannot measure: the whole context window."""
    window = get_model(model_id).context_window
    assert window == 200_000  # every model in the catalog, today
    return hundredths_for_tokens(model_id, write=window, out=max_tokens)


# --- 1. URL and file sources are reserved at the model's whole context window ----------------------


async def test_a_url_document_on_a_low_balance_is_refused_402_saying_why(
    make_accounts: Accounts, replica: Replica, upstream: FakeAnthropic
) -> None:
    account = await make_accounts.create("free", used_credits=45)  # 5 credits left
    with_url = body_with(PDF_URL)
    assert len(encode_body(with_url)) < 400  # the body's size says almost nothing
    response = post(replica, account.token, with_url)
    assert response.status_code == 402, response.text
    error = response.json()["error"]
    assert error["type"] == "credits_exhausted"
    assert "URL" in error["message"] and "200,000" in error["message"]
    assert error["needed_credits"] * 100 == full_context_h("claude-haiku-4.5", 100)
    assert error["max_tokens_that_fit"] == 0  # the input alone does not fit
    assert response.headers["x-should-retry"] == "false"
    assert not forwarded(upstream, with_url)
    # The same turn without the document is answered.
    without = body_with()
    assert post(replica, account.token, without).status_code == 200
    assert forwarded(upstream, without)
    assert (await balance(make_accounts.database_url, account.id))["reserved_h"] == 0


async def test_an_accepted_url_source_turn_holds_the_full_context(
    make_accounts: Accounts, replica: Replica, upstream: FakeAnthropic
) -> None:
    account = await make_accounts.create("pro")
    body = body_with(IMAGE_URL, max_tokens=300)
    response = post(replica, account.token, body)
    assert response.status_code == 200, response.text
    assert forwarded(upstream, body)
    [row] = await turn_rows(make_accounts.database_url, account.id)
    assert row["reserved_h"] == full_context_h("claude-haiku-4.5", 300)
    assert round(float(response.headers["switchboard-reserved-credits"]) * 100) == row["reserved_h"]
    # What it is charged is what Anthropic reported, as for any turn.
    assert row["status"] == "complete" and row["credits_h"] < row["reserved_h"]


async def test_a_base64_image_is_held_at_least_at_the_most_an_image_is_billed(
    make_accounts: Accounts, replica: Replica
) -> None:
    """A 1x1 PNG is a few bytes, but a small file can be a large picture: an image is held at least at the
    most Anthropic bills for one, and far below the whole context."""
    account = await make_accounts.create("pro")
    response = post(replica, account.token, body_with(BASE64_IMAGE, max_tokens=300))
    assert response.status_code == 200, response.text
    [row] = await turn_rows(make_accounts.database_url, account.id)
    assert hundredths_for_tokens("claude-haiku-4.5", write=IMAGE_MAX_TOKENS, out=300) <= row["reserved_h"]
    assert row["reserved_h"] < full_context_h("claude-haiku-4.5", 300) // 10


def test_an_images_floor_counts_only_what_its_size_does_not() -> None:
    tiny = parsed(body_with(BASE64_IMAGE))
    assert tiny.unseen_input_tokens == IMAGE_MAX_TOKENS - tokens_for_chars(len(TINY_PNG))
    large = {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "A" * 20_000}}
    assert parsed(body_with(large)).unseen_input_tokens == 0  # its size already counts more
    in_a_result = {"type": "tool_result", "tool_use_id": "t", "content": [BASE64_IMAGE]}
    two = parsed(body_with(BASE64_IMAGE, in_a_result))
    assert two.unseen_input_tokens == 2 * tiny.unseen_input_tokens
    assert not tiny.unmeasured_input


def parsed(body: dict[str, Any], model: str = "claude-haiku-4.5") -> Any:
    headers = Headers({"switchboard-turn-id": "t-1", "switchboard-model": model})
    return parse_turn(headers, encode_body(body))


@pytest.mark.parametrize(
    "content",
    [
        [PDF_URL],
        [FILE_IMAGE],
        [{"type": "document", "source": {"type": "file", "file_id": "file_abc"}}],
        # Inside a tool's result.
        [{"type": "tool_result", "tool_use_id": "toolu_1", "content": [IMAGE_URL]}],
        # Inside a document whose source is content blocks.
        [{"type": "document", "source": {"type": "content", "content": [FILE_IMAGE]}}],
        # A source type the gateway does not know cannot be measured either.
        [{"type": "image", "source": {"type": "s3", "bucket": "b"}}],
        # An inline PDF: every page is read as an image and as text, and a small file can hold many pages.
        [{"type": "document", "source": {"type": "base64", "media_type": "application/pdf", "data": "JVBE"}}],
    ],
)
def test_every_source_the_body_does_not_carry_is_unmeasured(content: list[dict[str, Any]]) -> None:
    assert parsed(body_with(*content)).unmeasured_input
    assert parsed({**body_with(*content), "model": "auto"}, "auto").unmeasured_input


@pytest.mark.parametrize(
    "content",
    [
        [BASE64_IMAGE],
        [{"type": "document", "source": {"type": "text", "media_type": "text/plain", "data": "hello"}}],
        [{"type": "tool_result", "tool_use_id": "toolu_1", "content": [BASE64_IMAGE]}],
        [{"type": "search_result", "source": "https://example.test", "title": "t", "content": []}],
    ],
)
def test_sources_in_the_body_are_measured_by_its_size(content: list[dict[str, Any]]) -> None:
    assert not parsed(body_with(*content)).unmeasured_input


# --- 2. Server tools are refused ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "tool",
    [
        {"type": "web_search_20250305", "name": "web_search", "max_uses": 5},
        {"type": "web_fetch_20250910", "name": "web_fetch"},
        {"type": "code_execution_20250825", "name": "code_execution"},
    ],
)
async def test_server_tools_are_refused_400_before_anything_is_reserved(
    make_accounts: Accounts, replica: Replica, upstream: FakeAnthropic, tool: dict[str, Any]
) -> None:
    account = await make_accounts.create("pro")
    custom = {"name": "lookup", "input_schema": {"type": "object"}}
    body = body_with(tools=[custom, tool])
    response = post(replica, account.token, body)
    assert response.status_code == 400, response.text
    assert response.headers["x-should-retry"] == "false"
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error"
    assert f"tools.1.type: {tool['type']}" in error["message"] and "custom tools" in error["message"]
    assert not forwarded(upstream, body)
    assert await turn_rows(make_accounts.database_url, account.id) == []
    assert (await balance(make_accounts.database_url, account.id))["reserved_h"] == 0


async def test_custom_tools_with_or_without_a_type_are_forwarded(
    make_accounts: Accounts, replica: Replica, upstream: FakeAnthropic
) -> None:
    account = await make_accounts.create("pro")
    tools = [
        {"name": "lookup", "input_schema": {"type": "object"}},
        {"type": "custom", "name": "search", "input_schema": {"type": "object"}},
    ]
    body = body_with(tools=tools)
    assert post(replica, account.token, body).status_code == 200
    assert forwarded(upstream, body)


# --- 3. One-hour cache writes are refused ------------------------------------------------------------


ONE_HOUR = {"type": "ephemeral", "ttl": "1h"}


@pytest.mark.parametrize(
    ("where", "body"),
    [
        ("messages.0.content.0", body_with({"type": "text", "text": "context", "cache_control": ONE_HOUR})),
        ("system.0", body_with(system=[{"type": "text", "text": "Be brief.", "cache_control": ONE_HOUR}])),
        (
            "tools.0",
            body_with(
                tools=[{"name": "lookup", "input_schema": {"type": "object"}, "cache_control": ONE_HOUR}]
            ),
        ),
    ],
)
async def test_one_hour_cache_writes_are_refused_400_before_anything_is_reserved(
    make_accounts: Accounts, replica: Replica, upstream: FakeAnthropic, where: str, body: dict[str, Any]
) -> None:
    account = await make_accounts.create("pro")
    response = post(replica, account.token, body)
    assert response.status_code == 400, response.text
    assert response.headers["x-should-retry"] == "false"
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error"
    assert f"{where}.cache_control.ttl" in error["message"] and "5m" in error["message"]
    assert not forwarded(upstream, body)
    assert await turn_rows(make_accounts.database_url, account.id) == []
    assert (await balance(make_accounts.database_url, account.id))["reserved_h"] == 0


def test_one_hour_ttl_is_refused_wherever_cache_control_may_sit() -> None:
    nested = {
        "type": "tool_result",
        "tool_use_id": "toolu_1",
        "content": [{"type": "text", "text": "r", "cache_control": ONE_HOUR}],
    }
    for body, where in (
        (body_with(nested), "messages.0.content.0.content.0.cache_control"),
        (body_with(cache_control=ONE_HOUR), "cache_control"),  # the request-wide breakpoint
    ):
        with pytest.raises(GatewayRefusal) as refused:
            parsed(body)
        assert refused.value.status == 400 and refused.value.message.startswith(f"{where}.ttl")


async def test_five_minute_cache_writes_are_forwarded(
    make_accounts: Accounts, replica: Replica, upstream: FakeAnthropic
) -> None:
    account = await make_accounts.create("pro")
    for control in ({"type": "ephemeral"}, {"type": "ephemeral", "ttl": "5m"}):
        body = body_with({"type": "text", "text": "context", "cache_control": control})
        assert post(replica, account.token, body).status_code == 200
        assert forwarded(upstream, body)


# --- The language server's own requests pass untouched -----------------------------------------------


def test_the_language_servers_own_prompts_are_measured_and_never_refused() -> None:
    """What `providers.prompt` builds (and `hosted.provider` sends, with `thinking` and no tools): text and
    thinking blocks, 5-minute cache breakpoints. Nothing in it is refused or reserved at the full window."""
    history = [
        Exchange(
            StoredTurn("u1", "user", "Explain this", "complete", "2026-01-01T00:00:00Z"),
            StoredTurn(
                "a1",
                "assistant",
                "It adds.",
                "complete",
                "2026-01-01T00:00:01Z",
                thinking="Sum.",
                thinking_signature="sig",
                anthropic_model=HAIKU,
            ),
        )
    ]
    built = build_prompt(
        history,
        prompt="And this?",
        context=[],
        anthropic_model=HAIKU,
        context_window=200_000,
        max_tokens=8000,
        thinking=True,
    )
    body = {
        "model": HAIKU,
        "system": built.system,
        "messages": built.messages,
        "max_tokens": 8000,
        "stream": True,
        "thinking": {"type": "enabled", "budget_tokens": 4000},
    }
    assert any("cache_control" in block for block in built.messages[-1]["content"])  # breakpoints sent
    for model in ("claude-haiku-4.5", "auto"):
        assert not parsed(body, model).unmeasured_input


# --- 4. MCP servers, betas not allowed and priced top-level fields are refused ----------------------


async def test_mcp_servers_and_betas_not_allowed_are_refused_400_and_allowed_betas_pass(
    make_accounts: Accounts, replica: Replica, upstream: FakeAnthropic
) -> None:
    account = await make_accounts.create("pro")
    mcp = body_with(mcp_servers=[{"type": "url", "url": "https://mcp.example/sse", "name": "docs"}])
    refused = post(replica, account.token, mcp)
    assert refused.status_code == 400 and "mcp_servers" in refused.json()["error"]["message"]
    assert not forwarded(upstream, mcp)

    headers = {**turn_headers("claude-haiku-4.5"), "authorization": f"Bearer {account.token}"}
    # Priced betas, and one nobody has checked yet: all refused, each named, with how to allow one.
    for beta in (
        "context-1m-2025-08-07",
        "code-execution-2025-08-25",
        "compact-2026-01-12",
        "new-thing-2027",
    ):
        body = body_with()
        sent = {**headers, "anthropic-beta": f"prompt-caching-2024-07-31, {beta}"}
        answer = HTTP.post(replica.url + "/v1/messages", json=body, headers=sent)
        assert answer.status_code == 400, answer.text
        message = answer.json()["error"]["message"]
        assert beta in message and "allowed_betas" in message
        assert not forwarded(upstream, body)
    assert await turn_rows(make_accounts.database_url, account.id) == []

    other = body_with()
    fine = {**headers, "anthropic-beta": "prompt-caching-2024-07-31,interleaved-thinking-2025-05-14"}
    assert HTTP.post(replica.url + "/v1/messages", json=other, headers=fine).status_code == 200
    assert forwarded(upstream, other)


def test_an_operator_allows_a_beta_by_its_name_prefix_without_a_release() -> None:
    headers = Headers(
        {
            "switchboard-turn-id": "t-1",
            "switchboard-model": "claude-haiku-4.5",
            "anthropic-beta": "new-thing-2027",
        }
    )
    raw = encode_body(body_with())
    with pytest.raises(GatewayRefusal):
        parse_turn(headers, raw)
    settings = load_settings(
        {**SETTINGS_ENV, "SWITCHBOARD_GATEWAY_ALLOWED_BETAS": "prompt-caching-, new-thing-"}
    )
    assert settings.allowed_betas == ["prompt-caching-", "new-thing-"]
    assert (
        parse_turn(headers, raw, allowed_betas=tuple(settings.allowed_betas)).model.id == "claude-haiku-4.5"
    )
    assert "context-1m-" not in load_settings(SETTINGS_ENV).allowed_betas


@pytest.mark.parametrize(
    ("field", "value"),
    [("speed", "fast"), ("inference_geo", "us"), ("service_tier", "priority"), ("container", "container_01")],
)
async def test_top_level_fields_priced_outside_the_formula_are_refused_400(
    make_accounts: Accounts, replica: Replica, upstream: FakeAnthropic, field: str, value: str
) -> None:
    account = await make_accounts.create("pro")
    body = body_with(**{field: value})
    refused = post(replica, account.token, body)
    assert refused.status_code == 400, refused.text
    assert refused.json()["error"]["message"].startswith(f"{field}: ")
    assert not forwarded(upstream, body)
    assert await turn_rows(make_accounts.database_url, account.id) == []


@pytest.mark.parametrize(
    ("field", "value"),
    [("speed", "standard"), ("inference_geo", "global"), ("service_tier", "auto"), ("container", None)],
)
def test_the_standard_values_of_priced_fields_are_accepted(field: str, value: object) -> None:
    assert parsed(body_with(**{field: value})).model.id == "claude-haiku-4.5"


# --- 5. Input the body's size undercounts: tools' system prompt, text outside ASCII -------------------


def sent_upstream(upstream: FakeAnthropic, body: dict[str, Any]) -> bytes:
    [record] = [record for record in upstream.received() if marker_of(body) in record.raw_body]
    return record.raw_body


async def test_a_turn_with_tools_holds_the_system_prompt_anthropic_adds_for_them(
    make_accounts: Accounts, replica: Replica, upstream: FakeAnthropic
) -> None:
    account = await make_accounts.create("pro")
    tool = {"name": "lookup", "description": "Look a word up", "input_schema": {"type": "object"}}
    for tool_choice in ({"type": "auto"}, {"type": "any"}):
        body = body_with(max_tokens=200, tools=[tool], tool_choice=tool_choice)
        response = post(replica, account.token, body)
        assert response.status_code == 200, response.text
        estimate = estimate_input_tokens(sent_upstream(upstream, body))
        held = round(float(response.headers["switchboard-reserved-credits"]) * 100)
        assert held == hundredths_for_tokens(
            "claude-haiku-4.5", write=estimate + TOOL_USE_SYSTEM_TOKENS, out=200
        )
    plain = body_with(max_tokens=200)
    response = post(replica, account.token, plain)
    held = round(float(response.headers["switchboard-reserved-credits"]) * 100)
    estimate = estimate_input_tokens(sent_upstream(upstream, plain))
    assert held == hundredths_for_tokens("claude-haiku-4.5", write=estimate, out=200)
    assert parsed(body_with(tools=[])).unseen_input_tokens == 0  # no tools, no tool-use prompt


async def test_text_outside_ascii_is_held_at_a_token_a_character(
    make_accounts: Accounts, replica: Replica, upstream: FakeAnthropic
) -> None:
    """CJK text and emoji run about a token a character; at 3.5 bytes a token their 3-4 bytes of UTF-8
    counted under one, and the reservation fell short of what Anthropic bills."""
    account = await make_accounts.create("pro")
    text = "日本語のテキスト🙂" * 500  # 4,500 characters outside ASCII, 14,000 bytes of UTF-8
    body = body_with({"type": "text", "text": text}, max_tokens=100)
    raw = encode_body(body)  # as UTF-8, not \u escapes (which already count 1.7 tokens a character)
    headers = {**turn_headers("claude-haiku-4.5"), "authorization": f"Bearer {account.token}"}
    response = HTTP.post(replica.url + "/v1/messages", content=raw, headers=headers)
    assert response.status_code == 200, response.text
    assert sent_upstream(upstream, body) == raw  # forwarded as sent, so measured as sent
    ascii_bytes = len(raw) - len(text.encode())
    assert estimate_input_tokens(raw) == tokens_for_chars(ascii_bytes) + len(text)
    assert estimate_input_tokens(raw) > tokens_for_chars(len(raw))  # the old rule held less
    held = round(float(response.headers["switchboard-reserved-credits"]) * 100)
    assert held == hundredths_for_tokens("claude-haiku-4.5", write=estimate_input_tokens(raw), out=100)
    assert estimate_input_tokens(b'{"a":"plain ascii"}') == tokens_for_chars(19)
    assert estimate_input_tokens("é".encode()) == 1
