"""The fake Anthropic API, driven by the real `anthropic` SDK (sync and async) and by raw HTTP."""

from __future__ import annotations

import base64
import json
import math
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any

import anthropic
import httpx2
import pytest

from switchboard.fakeapi import FakeAnthropic, Fault, PromptCache, count_tokens, http_server
from switchboard.fakeapi.cli import main as cli_main
from switchboard.fakeapi.tokens import request_segments

HAIKU = "claude-haiku-4-5-20251001"
SONNET = "claude-sonnet-4-5-20250929"
SONNET_40 = "claude-sonnet-4-20250514"
OPUS = "claude-opus-4-5-20251101"
KEY = "test-key"
TRANSPORT_ERRORS = (anthropic.APIConnectionError, httpx2.TransportError)
# The fake is plain HTTP: skipping TLS setup makes each client ~50x cheaper to build (0.1 s -> 2 ms).
HTTP = httpx2.Client(verify=False, timeout=5)

pytestmark = pytest.mark.filterwarnings("ignore:The model .* is deprecated:DeprecationWarning")


def user(text: str) -> list[dict[str, Any]]:
    return [{"role": "user", "content": text}]


def tokens(text: str) -> int:
    return math.ceil(len(text) / 4)


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def sdk(api: FakeAnthropic, *, api_key: str = KEY, max_retries: int = 0) -> anthropic.Anthropic:
    http_client = anthropic.DefaultHttpxClient(verify=False)
    return anthropic.Anthropic(
        base_url=api.base_url, api_key=api_key, max_retries=max_retries, http_client=http_client
    )


def async_sdk(api: FakeAnthropic) -> anthropic.AsyncAnthropic:
    http_client = anthropic.DefaultAsyncHttpxClient(verify=False)
    return anthropic.AsyncAnthropic(
        base_url=api.base_url, api_key=KEY, max_retries=0, http_client=http_client
    )


@pytest.fixture
def api() -> Iterator[FakeAnthropic]:
    with FakeAnthropic() as fake:
        yield fake


@pytest.fixture
def client(api: FakeAnthropic) -> Iterator[anthropic.Anthropic]:
    with sdk(api) as client:
        yield client


@pytest.fixture
async def aclient(api: FakeAnthropic) -> Any:
    async with async_sdk(api) as client:
        yield client


def post(
    api: FakeAnthropic, path: str, body: object, headers: dict[str, str] | None = None
) -> httpx2.Response:
    sent = {"x-api-key": KEY} if headers is None else headers
    return HTTP.post(api.base_url + path, json=body, headers=sent)


def sse_events(raw: str) -> list[tuple[str, dict[str, Any]]]:
    """(event name, parsed data) of each event in a raw SSE body; fails if an event lacks `event:`."""
    events: list[tuple[str, dict[str, Any]]] = []
    for block in filter(None, raw.split("\n\n")):
        fields = dict(line.split(": ", 1) for line in block.splitlines())
        events.append((fields["event"], json.loads(fields["data"])))
    return events


def stream_text(
    client: anthropic.Anthropic, prompt: str, max_tokens: int = 500
) -> tuple[list[str], BaseException | None]:
    """The text deltas a stream yielded, and the error that ended it (None if it completed)."""
    deltas: list[str] = []
    try:
        with client.messages.stream(model=HAIKU, max_tokens=max_tokens, messages=user(prompt)) as stream:
            deltas.extend(stream.text_stream)
    except Exception as error:
        return deltas, error
    return deltas, None


# --- streaming and plain answers ---------------------------------------------------------------------


def test_raw_stream_has_the_full_event_sequence_with_event_lines(api: FakeAnthropic) -> None:
    body = {"model": HAIKU, "max_tokens": 300, "stream": True, "messages": user("hello there")}
    response = post(api, "/v1/messages", body)
    assert response.headers["content-type"].startswith("text/event-stream")
    events = sse_events(response.text)
    names = [name for name, _ in events]
    assert all(name == data["type"] for name, data in events)
    assert names[:3] == ["message_start", "content_block_start", "ping"]
    assert names[-4:] == ["content_block_delta", "content_block_stop", "message_delta", "message_stop"]
    assert set(names[3:-3]) == {"content_block_delta"}
    start = events[0][1]["message"]
    assert start["id"].startswith("msg_") and start["model"] == HAIKU
    assert start["usage"] == {
        "input_tokens": tokens("hello there"),
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 0,
        "output_tokens": 1,
    }


def test_sync_message_stream_yields_text_in_several_deltas(client: anthropic.Anthropic) -> None:
    with client.messages.stream(model=HAIKU, max_tokens=500, messages=user("Explain streams")) as stream:
        kinds = [event.type for event in stream]
        final = stream.get_final_message()
    text = final.content[0].text  # type: ignore[union-attr]
    assert kinds[0] == "message_start" and kinds[-1] == "message_stop"
    assert kinds.count("text") >= 5
    assert text.startswith(f"Simulated reply from {HAIKU} (turn 1; 0 earlier messages): Explain streams")
    assert final.stop_reason == "end_turn"
    assert final.usage.output_tokens == tokens(text)
    assert final.usage.input_tokens == tokens("Explain streams")


async def test_async_create_stream_true(aclient: anthropic.AsyncAnthropic) -> None:
    stream = await aclient.messages.create(
        model=SONNET, max_tokens=500, messages=user("async hi"), stream=True
    )
    kinds: list[str] = []
    text = ""
    async for event in stream:
        kinds.append(event.type)
        if event.type == "content_block_delta" and event.delta.type == "text_delta":
            text += event.delta.text
    assert kinds[:2] == ["message_start", "content_block_start"]
    assert kinds[-2:] == ["message_delta", "message_stop"]
    assert kinds.count("content_block_delta") >= 5
    assert text.startswith(f"Simulated reply from {SONNET}") and "async hi" in text


def test_non_streaming_message_echoes_the_conversation(
    client: anthropic.Anthropic, api: FakeAnthropic
) -> None:
    history = [
        {"role": "user", "content": "first"},
        {"role": "assistant", "content": "answer"},
        {"role": "user", "content": [{"type": "text", "text": "second question"}]},
    ]
    message = client.messages.create(model="claude-opus-4-5", max_tokens=400, messages=history)
    text = message.content[0].text  # type: ignore[union-attr]
    assert message.id.startswith("msg_") and message.model == OPUS
    assert text.startswith(f"Simulated reply from {OPUS} (turn 2; 2 earlier messages): second question")
    assert "simulated" in text.lower()
    assert message.usage.input_tokens == tokens("first") + tokens("answer") + tokens("second question")
    assert api.received()[-1].body == {"model": "claude-opus-4-5", "max_tokens": 400, "messages": history}


def test_replies_are_deterministic_and_echo_is_truncated(client: anthropic.Anthropic) -> None:
    prompt = "x" * 500
    texts = [
        client.messages.create(model=HAIKU, max_tokens=800, messages=user(prompt)).content[0].text  # type: ignore[union-attr]
        for _ in range(2)
    ]
    assert texts[0] == texts[1]
    header = texts[0].split("\n\n")[0]
    assert header.endswith("…") and header.count("x") == 199


def test_code_prompt_gets_a_fenced_python_block(client: anthropic.Anthropic) -> None:
    text = client.messages.create(model=HAIKU, max_tokens=800, messages=user("show me code")).content[0].text  # type: ignore[union-attr]
    plain = client.messages.create(model=HAIKU, max_tokens=800, messages=user("hello")).content[0].text  # type: ignore[union-attr]
    assert "```python\n" in text and "```python" not in plain


def test_max_tokens_cuts_the_reply(client: anthropic.Anthropic) -> None:
    message = client.messages.create(model=HAIKU, max_tokens=5, messages=user("long answer please"))
    assert message.stop_reason == "max_tokens"
    assert message.usage.output_tokens == 5
    assert len(message.content[0].text) == 20  # type: ignore[union-attr]


def test_stop_sequences_end_the_reply(client: anthropic.Anthropic) -> None:
    message = client.messages.create(
        model=HAIKU, max_tokens=500, messages=user("hi"), stop_sequences=["turn"]
    )
    assert message.stop_reason == "stop_sequence" and message.stop_sequence == "turn"
    assert message.content[0].text == f"Simulated reply from {HAIKU} ("  # type: ignore[union-attr]


# --- token counting and auth --------------------------------------------------------------------------


def test_count_tokens_endpoint_matches_the_estimator_and_usage(client: anthropic.Anthropic) -> None:
    tools: list[Any] = [{"name": "lookup", "description": "Look up", "input_schema": {"type": "object"}}]
    request: dict[str, Any] = {
        "model": SONNET,
        "system": "Be terse.",
        "messages": user("count me"),
        "tools": tools,
    }
    counted = client.messages.count_tokens(**request).input_tokens
    expected = (
        tokens("Be terse.")
        + tokens("count me")
        + tokens(json.dumps(tools[0], sort_keys=True, separators=(",", ":")))
    )
    assert counted == count_tokens(request) == expected
    assert client.messages.create(max_tokens=100, **request).usage.input_tokens == counted


def test_both_auth_header_styles_are_accepted() -> None:
    with FakeAnthropic(api_key="secret") as api:
        with sdk(api, api_key="secret") as client:
            client.messages.create(model=HAIKU, max_tokens=50, messages=user("hi"))
        assert api.received()[-1].headers["authorization"] == "Bearer secret"
        body = {"model": HAIKU, "max_tokens": 50, "messages": user("hi")}
        assert post(api, "/v1/messages", body, {"x-api-key": "secret"}).status_code == 200
        assert post(api, "/v1/messages", body, {"x-api-key": "wrong"}).status_code == 401


def test_wrong_or_missing_key_is_401() -> None:
    with FakeAnthropic(api_key="secret") as api:
        with sdk(api, api_key="nope") as client, pytest.raises(anthropic.AuthenticationError) as raised:
            client.messages.create(model=HAIKU, max_tokens=50, messages=user("hi"))
        assert raised.value.type == "authentication_error"
        response = post(api, "/v1/messages", {"model": HAIKU, "max_tokens": 5, "messages": user("x")}, {})
        assert response.status_code == 401
        assert response.json()["error"]["type"] == "authentication_error"


# --- faults ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "exception", "error_type"),
    [
        (400, anthropic.BadRequestError, "invalid_request_error"),
        (401, anthropic.AuthenticationError, "authentication_error"),
        (402, anthropic.APIStatusError, "billing_error"),
        (403, anthropic.PermissionDeniedError, "permission_error"),
        (404, anthropic.NotFoundError, "not_found_error"),
        (413, anthropic.ContentTooLargeError, "request_too_large"),
        (429, anthropic.RateLimitError, "rate_limit_error"),
        (500, anthropic.InternalServerError, "api_error"),
        (529, anthropic.OverloadedError, "overloaded_error"),
    ],
)
def test_status_faults_raise_the_sdk_exception(
    client: anthropic.Anthropic, api: FakeAnthropic, status: int, exception: type[Exception], error_type: str
) -> None:
    api.add_fault(Fault("status", status=status))
    with pytest.raises(exception) as raised:
        client.messages.create(model=HAIKU, max_tokens=50, messages=user("hi"))
    error = raised.value
    assert isinstance(error, anthropic.APIStatusError)
    assert error.status_code == status and error.type == error_type
    client.messages.create(model=HAIKU, max_tokens=50, messages=user("hi"))  # count=1: the next one passes


def test_rate_limit_fault_sends_retry_after(api: FakeAnthropic) -> None:
    api.add_fault(Fault("status", status=429, retry_after=7))
    api.add_fault(Fault("status", status=429))
    first = post(api, "/v1/messages", {"model": HAIKU, "max_tokens": 5, "messages": user("x")})
    second = post(api, "/v1/messages", {"model": HAIKU, "max_tokens": 5, "messages": user("x")})
    assert (first.status_code, first.headers["retry-after"]) == (429, "7")
    assert second.headers["retry-after"] == "0"


def test_faults_match_model_and_are_consumed_in_fifo_order(
    client: anthropic.Anthropic, api: FakeAnthropic
) -> None:
    api.add_fault(Fault("status", status=500, model=SONNET))
    api.add_fault(Fault("status", status=429, count=2))
    api.add_fault(Fault("status", status=403))

    def status_of(model: str) -> int:
        try:
            client.messages.create(model=model, max_tokens=20, messages=user("x"))
        except anthropic.APIStatusError as error:
            return error.status_code
        return 200

    assert [status_of(HAIKU), status_of("claude-sonnet-4-5"), status_of(SONNET), status_of(HAIKU)] == [
        429,
        500,
        429,
        403,
    ]
    assert status_of(HAIKU) == 200
    assert len(api.received()) == 5


def test_forever_fault_and_clear_faults(client: anthropic.Anthropic, api: FakeAnthropic) -> None:
    api.add_fault(Fault("status", status=500, count=None))
    for _ in range(3):
        with pytest.raises(anthropic.InternalServerError):
            client.messages.create(model=HAIKU, max_tokens=20, messages=user("x"))
    api.clear_faults()
    client.messages.create(model=HAIKU, max_tokens=20, messages=user("x"))


def test_sdk_retry_succeeds_after_one_overloaded(api: FakeAnthropic) -> None:
    api.add_fault(Fault("status", status=529, retry_after=0.05))
    with sdk(api, max_retries=2) as client:
        message = client.messages.create(model=HAIKU, max_tokens=50, messages=user("retry me"))
    assert "retry me" in message.content[0].text  # type: ignore[union-attr]
    retries = [record.headers.get("x-stainless-retry-count") for record in api.received()]
    assert retries == ["0", "1"]


async def test_error_event_mid_stream(aclient: anthropic.AsyncAnthropic, api: FakeAnthropic) -> None:
    api.add_fault(Fault("error_event", after_deltas=3))
    deltas: list[str] = []
    with pytest.raises(anthropic.APIStatusError) as raised:
        async with aclient.messages.stream(model=HAIKU, max_tokens=500, messages=user("hi")) as stream:
            async for text in stream.text_stream:
                deltas.append(text)
    assert len(deltas) == 3
    assert raised.value.body == {
        "type": "error",
        "error": {"type": "overloaded_error", "message": "Overloaded (simulated fault)"},
    }


def test_drop_mid_stream_is_a_transport_error(client: anthropic.Anthropic, api: FakeAnthropic) -> None:
    api.add_fault(Fault("drop", after_deltas=2))
    deltas, error = stream_text(client, "hi")
    assert isinstance(error, TRANSPORT_ERRORS)
    assert len(deltas) == 2


async def test_drop_mid_stream_async(aclient: anthropic.AsyncAnthropic, api: FakeAnthropic) -> None:
    api.add_fault(Fault("drop", after_deltas=1))
    stream = await aclient.messages.create(model=HAIKU, max_tokens=500, messages=user("hi"), stream=True)
    with pytest.raises(TRANSPORT_ERRORS):
        async for _ in stream:
            pass


def test_drop_before_a_non_streaming_response(client: anthropic.Anthropic, api: FakeAnthropic) -> None:
    api.add_fault(Fault("drop"))
    with pytest.raises(anthropic.APIConnectionError):
        client.messages.create(model=HAIKU, max_tokens=50, messages=user("hi"))


def test_stall_before_headers_times_out(client: anthropic.Anthropic, api: FakeAnthropic) -> None:
    api.add_fault(Fault("stall", seconds=5))
    started = time.monotonic()
    with pytest.raises(anthropic.APITimeoutError):
        client.with_options(timeout=0.3).messages.create(model=HAIKU, max_tokens=50, messages=user("hi"))
    assert time.monotonic() - started < 2


def test_stall_mid_stream_times_out_after_some_text(client: anthropic.Anthropic, api: FakeAnthropic) -> None:
    api.add_fault(Fault("stall", seconds=5, after_deltas=2))
    deltas, error = stream_text(client.with_options(timeout=0.4), "hi")
    assert isinstance(error, (httpx2.ReadTimeout, anthropic.APITimeoutError))
    assert len(deltas) == 2


def test_short_stall_mid_stream_then_completes(client: anthropic.Anthropic, api: FakeAnthropic) -> None:
    api.add_fault(Fault("stall", seconds=0.3, after_deltas=1))
    started = time.monotonic()
    deltas, error = stream_text(client, "hi")
    assert error is None and len(deltas) > 3
    assert time.monotonic() - started >= 0.3


def test_slow_fault_paces_the_deltas(client: anthropic.Anthropic, api: FakeAnthropic) -> None:
    api.add_fault(Fault("slow", seconds=0.03))
    started = time.monotonic()
    deltas, error = stream_text(client, "hi")
    # The server sleeps before every delta, so this bound holds however late the client reads.
    assert error is None and len(deltas) > 5
    assert time.monotonic() - started >= 0.03 * len(deltas)


def test_malformed_sse_breaks_parsing(client: anthropic.Anthropic, api: FakeAnthropic) -> None:
    api.add_fault(Fault("malformed_sse", after_deltas=1))
    deltas, error = stream_text(client, "hi")
    assert isinstance(error, json.JSONDecodeError)
    assert len(deltas) == 1


def test_truncated_json_body(client: anthropic.Anthropic, api: FakeAnthropic) -> None:
    api.add_fault(Fault("truncated_json", count=2))
    with pytest.raises(ValueError):
        client.messages.create(model=HAIKU, max_tokens=50, messages=user("hi"))
    raw = post(api, "/v1/messages", {"model": HAIKU, "max_tokens": 50, "messages": user("hi")})
    assert int(raw.headers["content-length"]) == len(raw.content) > 0
    with pytest.raises(json.JSONDecodeError):
        json.loads(raw.content)


def test_faulted_requests_are_recorded(client: anthropic.Anthropic, api: FakeAnthropic) -> None:
    api.add_fault(Fault("status", status=529))
    with pytest.raises(anthropic.OverloadedError):
        client.messages.create(model=HAIKU, max_tokens=50, messages=user("one"))
    client.messages.create(model="claude-sonnet-4-0", max_tokens=50, messages=user("two"))
    records = api.received()
    assert [(r.path, r.model) for r in records] == [
        ("/v1/messages", HAIKU),
        ("/v1/messages", "claude-sonnet-4-0"),
    ]
    assert records[0].time <= records[1].time
    assert records[0].headers["anthropic-version"] and records[0].body is not None


def test_fault_rejects_unknown_kind() -> None:
    with pytest.raises(ValueError):
        Fault("explode")  # type: ignore[arg-type]


# --- prompt directives and the control API ------------------------------------------------------------


def test_directive_status(client: anthropic.Anthropic) -> None:
    with pytest.raises(anthropic.OverloadedError):
        client.messages.create(model=HAIKU, max_tokens=50, messages=user("hi [[fake:status=529]]"))
    client.messages.create(model=HAIKU, max_tokens=50, messages=user("hi"))


def test_directive_drop_after(client: anthropic.Anthropic) -> None:
    deltas, error = stream_text(client, "hi [[fake:drop after=3]]")
    assert isinstance(error, TRANSPORT_ERRORS) and len(deltas) == 3


def test_directive_error_event(client: anthropic.Anthropic) -> None:
    deltas, error = stream_text(client, "[[fake:error_event after=1]] hi")
    assert isinstance(error, anthropic.APIStatusError) and len(deltas) == 1


def test_directive_words_and_slow(client: anthropic.Anthropic) -> None:
    started = time.monotonic()
    deltas, error = stream_text(client, "hi [[fake:words=400]] [[fake:slow=0.005]]", max_tokens=4000)
    text = "".join(deltas)
    assert error is None and len(text.split()) == 400 and "[[fake" not in text
    assert time.monotonic() - started >= 0.005 * len(deltas)


def test_directive_stall_before_headers(client: anthropic.Anthropic) -> None:
    with pytest.raises(anthropic.APITimeoutError):
        client.with_options(timeout=0.3).messages.create(
            model=HAIKU, max_tokens=50, messages=user("[[fake:stall=3]]")
        )


def test_directive_only_counts_in_the_last_user_message(client: anthropic.Anthropic) -> None:
    history = [
        {"role": "user", "content": "[[fake:status=500]]"},
        {"role": "assistant", "content": "ok"},
        {"role": "user", "content": "fine now"},
    ]
    client.messages.create(model=HAIKU, max_tokens=50, messages=history)


def test_unknown_directive_is_a_clear_400(client: anthropic.Anthropic) -> None:
    with pytest.raises(anthropic.BadRequestError, match="unknown fake directive 'explode'"):
        client.messages.create(model=HAIKU, max_tokens=50, messages=user("[[fake:explode]]"))


def test_control_api(client: anthropic.Anthropic, api: FakeAnthropic) -> None:
    faults = [{"kind": "status", "status": 429}, {"kind": "status", "status": 500, "model": SONNET}]
    assert HTTP.post(api.base_url + "/_fake/faults", json=faults).json() == {"added": 2}
    assert HTTP.post(api.base_url + "/_fake/faults", json={"kind": "slow", "seconds": 0}).json() == {
        "added": 1
    }
    assert [f["status"] for f in HTTP.get(api.base_url + "/_fake/faults").json()] == [429, 500, 529]
    with pytest.raises(anthropic.RateLimitError):
        client.messages.create(model=HAIKU, max_tokens=50, messages=user("one"))
    recorded = HTTP.get(api.base_url + "/_fake/requests").json()
    assert [(r["path"], r["model"], r["body"]["messages"]) for r in recorded] == [
        ("/v1/messages", HAIKU, user("one"))
    ]
    assert HTTP.post(api.base_url + "/_fake/reset").status_code == 200
    assert api.received() == [] and api.pending_faults() == []
    client.messages.create(model=SONNET, max_tokens=50, messages=user("two"))


def test_control_api_rejects_bad_faults(api: FakeAnthropic) -> None:
    response = HTTP.post(api.base_url + "/_fake/faults", json={"kind": "status", "bogus": 1})
    assert response.status_code == 400 and "bogus" in response.json()["error"]["message"]
    assert HTTP.post(api.base_url + "/_fake/faults", json={"kind": "nope"}).status_code == 400
    assert api.pending_faults() == []


def test_unknown_route_is_404(api: FakeAnthropic) -> None:
    response = HTTP.get(api.base_url + "/v1/nothing")
    assert response.status_code == 404 and response.json()["error"]["type"] == "not_found_error"


# --- validation ---------------------------------------------------------------------------------------


def _body(**changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"model": HAIKU, "max_tokens": 2000, "messages": user("hi")}
    body.update(changes)
    return {key: value for key, value in body.items() if value is not None}


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (_body(max_tokens=None), "max_tokens: Field required"),
        (_body(max_tokens=0), "max_tokens: Input should be greater than or equal to 1"),
        (_body(max_tokens=100_000), "maximum allowed number of output tokens"),
        (_body(messages=[]), "at least one message"),
        (_body(messages=[{"role": "assistant", "content": "hi"}]), 'first message must use the "user" role'),
        (_body(messages=[*user("a"), *user("b")]), "roles must alternate"),
        (_body(messages=[{"role": "system", "content": "hi"}]), "messages.0.role"),
        (_body(messages=user("")), "non-empty content"),
        (_body(messages=[{"role": "user", "content": [{"type": "text", "text": ""}]}]), "must be non-empty"),
        (_body(messages=[{"role": "user", "content": [{"type": "video"}]}]), "messages.0.content.0.type"),
        (_body(messages=[{"role": "user", "content": 5}]), "messages.0.content"),
        (_body(thinking={"type": "enabled", "budget_tokens": 500}), "at least 1024"),
        (_body(thinking={"type": "enabled", "budget_tokens": 2000}), "greater than `thinking.budget_tokens`"),
        (_body(model=None), "model: Field required"),
        (
            _body(
                system=[
                    {"type": "text", "text": "s", "cache_control": {"type": "ephemeral"}} for _ in range(5)
                ]
            ),
            "A maximum of 4 blocks with cache_control",
        ),
    ],
)
def test_validation_errors(api: FakeAnthropic, body: dict[str, Any], message: str) -> None:
    response = post(api, "/v1/messages", body)
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error" and message in error["message"]


def test_invalid_json_body_is_400(api: FakeAnthropic) -> None:
    response = HTTP.post(api.base_url + "/v1/messages", content=b"{not json", headers={"x-api-key": KEY})
    assert response.status_code == 400 and api.received()[-1].body is None


def test_unknown_model_is_404(client: anthropic.Anthropic) -> None:
    with pytest.raises(anthropic.NotFoundError, match="claude-nonexistent"):
        client.messages.create(model="claude-nonexistent", max_tokens=50, messages=user("hi"))


def test_valid_tool_round_trip_is_accepted(client: anthropic.Anthropic) -> None:
    history: list[Any] = [
        *user("weather?"),
        {"role": "assistant", "content": [{"type": "tool_use", "id": "t1", "name": "weather", "input": {}}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1", "content": "sunny"}]},
    ]
    assert client.messages.create(model=HAIKU, max_tokens=50, messages=history).stop_reason


# --- extended thinking --------------------------------------------------------------------------------


def _thinking_turn(client: anthropic.Anthropic, model: str) -> tuple[list[str], Any]:
    thinking: Any = {"type": "enabled", "budget_tokens": 1024}
    with client.messages.stream(
        model=model, max_tokens=3000, thinking=thinking, messages=user("think")
    ) as stream:
        kinds = [
            f"{event.type}:{getattr(event, 'index', '')}"
            for event in stream
            if event.type.startswith("content")
        ]
        return kinds, stream.get_final_message()


def test_thinking_streams_a_signed_thinking_block_first(client: anthropic.Anthropic) -> None:
    kinds, message = _thinking_turn(client, SONNET)
    assert kinds[0] == "content_block_start:0" and kinds.index("content_block_start:1") > 3
    thinking, text = message.content
    assert thinking.type == "thinking" and text.type == "text"
    assert thinking.thinking.startswith(f"Simulated thinking by {SONNET}")
    assert base64.b64decode(thinking.signature).decode().startswith(f"fake-sig:{SONNET}:")
    assert message.usage.output_tokens == tokens(thinking.thinking) + tokens(text.text)


def test_thinking_blocks_replay_only_to_the_same_model(client: anthropic.Anthropic) -> None:
    _, message = _thinking_turn(client, SONNET)
    thinking = message.content[0]
    block = {"type": "thinking", "thinking": thinking.thinking, "signature": thinking.signature}
    history: list[Any] = [*user("think"), {"role": "assistant", "content": [block]}, *user("more")]
    client.messages.create(model="claude-sonnet-4-5", max_tokens=100, messages=history)
    with pytest.raises(anthropic.BadRequestError, match=f"produced by {SONNET}"):
        client.messages.create(model=OPUS, max_tokens=100, messages=history)
    block["thinking"] += " (edited)"
    with pytest.raises(anthropic.BadRequestError, match="modified"):
        client.messages.create(model=SONNET, max_tokens=100, messages=history)
    block["signature"] = "not-a-signature"
    with pytest.raises(anthropic.BadRequestError, match="Invalid `signature`"):
        client.messages.create(model=SONNET, max_tokens=100, messages=history)


# --- prompt caching -----------------------------------------------------------------------------------


def _cached_request(client: anthropic.Anthropic, model: str, system_text: str, prompt: str = "q") -> Any:
    system: Any = [{"type": "text", "text": system_text, "cache_control": {"type": "ephemeral"}}]
    return client.messages.create(model=model, max_tokens=50, system=system, messages=user(prompt)).usage


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def cached_client(clock: FakeClock) -> Iterator[anthropic.Anthropic]:
    with FakeAnthropic(clock=clock) as api, sdk(api) as client:
        yield client


SYSTEM = "You are a careful assistant. " * 160  # 4480 chars: 1120 tokens, cacheable on Sonnet only


def test_cache_write_then_read(cached_client: anthropic.Anthropic) -> None:
    first = _cached_request(cached_client, SONNET, SYSTEM, "first")
    second = _cached_request(cached_client, SONNET, SYSTEM, "second question")
    assert (first.cache_creation_input_tokens, first.cache_read_input_tokens) == (tokens(SYSTEM), 0)
    assert first.input_tokens == tokens("first")
    assert (second.cache_creation_input_tokens, second.cache_read_input_tokens) == (0, tokens(SYSTEM))
    assert second.input_tokens == tokens("second question")


def test_cache_is_per_model(cached_client: anthropic.Anthropic) -> None:
    _cached_request(cached_client, SONNET, SYSTEM)
    other = _cached_request(cached_client, "claude-sonnet-4-0", SYSTEM)
    assert (other.cache_creation_input_tokens, other.cache_read_input_tokens) == (tokens(SYSTEM), 0)
    assert _cached_request(cached_client, SONNET_40, SYSTEM).cache_read_input_tokens == tokens(SYSTEM)


def test_cache_expires_after_ttl_and_reads_refresh_it(
    cached_client: anthropic.Anthropic, clock: FakeClock
) -> None:
    _cached_request(cached_client, SONNET, SYSTEM)
    clock.now += 200
    assert _cached_request(cached_client, SONNET, SYSTEM).cache_read_input_tokens == tokens(SYSTEM)
    clock.now += 200  # 400 s after the write, but only 200 s after the read that refreshed it
    assert _cached_request(cached_client, SONNET, SYSTEM).cache_read_input_tokens == tokens(SYSTEM)
    clock.now += 301
    expired = _cached_request(cached_client, SONNET, SYSTEM)
    assert (expired.cache_creation_input_tokens, expired.cache_read_input_tokens) == (tokens(SYSTEM), 0)


def test_breakpoint_below_the_model_minimum_is_ignored(cached_client: anthropic.Anthropic) -> None:
    usage = _cached_request(cached_client, HAIKU, SYSTEM, "hi")  # 1120 tokens < 4096 on Haiku 4.5
    assert (usage.cache_creation_input_tokens, usage.cache_read_input_tokens) == (0, 0)
    assert usage.input_tokens == tokens(SYSTEM) + tokens("hi")
    big = SYSTEM * 4  # 4480 tokens
    assert _cached_request(cached_client, OPUS, big).cache_creation_input_tokens == tokens(big)


def test_conversation_reads_the_previous_turns_prefix(cached_client: anthropic.Anthropic) -> None:
    def turn(messages: list[Any]) -> Any:
        return cached_client.messages.create(
            model=SONNET, max_tokens=50, system=SYSTEM, messages=messages
        ).usage

    def marked(role: str, text: str) -> dict[str, Any]:
        return {
            "role": role,
            "content": [{"type": "text", "text": text, "cache_control": {"type": "ephemeral"}}],
        }

    first = turn([marked("user", "q1")])
    second = turn([*user("q1"), {"role": "assistant", "content": "a1"}, marked("user", "q2")])
    prefix = tokens(SYSTEM) + tokens("q1")
    assert first.cache_creation_input_tokens == prefix
    assert second.cache_read_input_tokens == prefix
    assert second.cache_creation_input_tokens == tokens("a1") + tokens("q2")
    assert second.input_tokens == 0


async def test_async_client_sees_cache_usage_in_the_stream(clock: FakeClock) -> None:
    system: Any = [{"type": "text", "text": SYSTEM, "cache_control": {"type": "ephemeral"}}]
    with FakeAnthropic(clock=clock) as api:
        async with async_sdk(api) as client:
            usages = []
            for _ in range(2):
                async with client.messages.stream(
                    model=SONNET, max_tokens=50, system=system, messages=user("x")
                ) as s:
                    usages.append((await s.get_final_message()).usage)
    assert [u.cache_creation_input_tokens for u in usages] == [tokens(SYSTEM), 0]
    assert [u.cache_read_input_tokens for u in usages] == [0, tokens(SYSTEM)]


def test_a_lookback_read_refreshes_the_entry_it_read() -> None:
    clock = FakeClock()
    cache = PromptCache(clock=clock)
    system: Any = [{"type": "text", "text": SYSTEM, "cache_control": {"type": "ephemeral"}}]
    marked: Any = [{"type": "text", "text": "q", "cache_control": {"type": "ephemeral"}}]
    short = {"system": system, "messages": user("q")}
    long = {"system": [{"type": "text", "text": SYSTEM}], "messages": [{"role": "user", "content": marked}]}
    assert cache.apply(SONNET, request_segments(short)).cache_creation_input_tokens == tokens(SYSTEM)
    clock.now += 200
    # `long` marks only its end, so the system prefix is found by looking back, not rewritten.
    assert cache.apply(SONNET, request_segments(long)).cache_read_input_tokens == tokens(SYSTEM)
    clock.now += 200
    assert cache.apply(SONNET, request_segments(short)).cache_read_input_tokens == tokens(SYSTEM)


def test_reset_clears_the_cache(clock: FakeClock) -> None:
    with FakeAnthropic(clock=clock) as api, sdk(api) as client:
        _cached_request(client, SONNET, SYSTEM)
        api.reset()
        assert _cached_request(client, SONNET, SYSTEM).cache_read_input_tokens == 0


# --- HTTP/1.1 on the wire ------------------------------------------------------------------------------


def raw_request(path: str, body: bytes = b"", *, extra: str = "") -> bytes:
    head = (
        f"POST {path} HTTP/1.1\r\nHost: x\r\nx-api-key: {KEY}\r\nContent-Length: {len(body)}\r\n{extra}\r\n"
    )
    return head.encode() + body


def read_response(connection: socket.socket) -> tuple[bytes, bytes]:
    """One Content-Length response off `connection`: (head, body)."""
    data = b""
    while b"\r\n\r\n" not in data:
        data += connection.recv(65536) or pytest.fail(f"closed before a whole head: {data!r}")
    head, _, body = data.partition(b"\r\n\r\n")
    length = int(
        next(line for line in head.split(b"\r\n") if line.lower().startswith(b"content-length:"))[15:]
    )
    while len(body) < length:
        body += connection.recv(65536) or pytest.fail("closed before the whole body")
    assert len(body) == length, "more than one response arrived"
    return head, body


COUNT_BODY = json.dumps({"model": HAIKU, "messages": user("hello")}).encode()


def test_kept_alive_connection_answers_requests_in_turn_even_pipelined(api: FakeAnthropic) -> None:
    with socket.create_connection((api.host, api.port), timeout=3) as connection:
        connection.sendall(raw_request("/v1/messages/count_tokens", COUNT_BODY))
        head, body = read_response(connection)
        assert head.startswith(b"HTTP/1.1 200 OK\r\n") and b"connection: close" not in head.lower()
        assert json.loads(body) == {"input_tokens": tokens("hello")}
        connection.sendall(raw_request("/v1/nothing") + raw_request("/v1/messages/count_tokens", COUNT_BODY))
        data = b""
        while data.count(b"HTTP/1.1") < 2 or not data.endswith(b"}"):
            data += connection.recv(65536) or pytest.fail("closed")
        assert data.index(b"404 Not Found") < data.index(b"200 OK")


def test_connection_close_is_honoured_and_announced(api: FakeAnthropic) -> None:
    with socket.create_connection((api.host, api.port), timeout=3) as connection:
        connection.sendall(
            raw_request("/v1/messages/count_tokens", COUNT_BODY, extra="Connection: close\r\n")
        )
        head, _ = read_response(connection)
        assert b"\r\nConnection: close" in head
        assert connection.recv(100) == b""


def test_oversized_body_is_413_unread_then_closed(api: FakeAnthropic) -> None:
    with socket.create_connection((api.host, api.port), timeout=3) as connection:
        connection.sendall(
            raw_request("/v1/messages").replace(b"Content-Length: 0", b"Content-Length: 40000000")
        )
        head, body = read_response(connection)
        assert head.startswith(b"HTTP/1.1 413 ") and json.loads(body)["error"]["type"] == "request_too_large"
        assert connection.recv(100) == b""
    assert api.received()[-1].path == "/v1/messages"


def test_malformed_request_is_a_json_400_then_closed(api: FakeAnthropic) -> None:
    with socket.create_connection((api.host, api.port), timeout=3) as connection:
        connection.sendall(b"POST /v1/messages HTTP/1.1\r\nContent-Length: twelve\r\n\r\n")
        head, body = read_response(connection)
        assert (
            head.startswith(b"HTTP/1.1 400 ") and json.loads(body)["error"]["type"] == "invalid_request_error"
        )
        assert connection.recv(100) == b""


def test_idle_kept_alive_connection_is_closed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(http_server, "IDLE_CONNECTION_SECONDS", 0.3)
    monkeypatch.setattr(http_server, "IDLE_SWEEP_SECONDS", 0.1)
    with FakeAnthropic() as api, socket.create_connection((api.host, api.port), timeout=3) as connection:
        connection.sendall(raw_request("/v1/messages/count_tokens", COUNT_BODY))
        read_response(connection)
        started = time.monotonic()
        assert connection.recv(100) == b""
        assert 0.2 < time.monotonic() - started < 2


# --- lifecycle and CLI ---------------------------------------------------------------------------------


def test_stop_is_prompt_with_stalled_and_streaming_requests() -> None:
    api = FakeAnthropic().start()
    api.add_fault(Fault("stall", seconds=30))
    api.add_fault(Fault("slow", seconds=30))
    errors: list[BaseException] = []

    def call(prompt: str) -> None:
        with sdk(api) as client:
            _, error = stream_text(client, prompt)
            errors.append(error or AssertionError("the stream completed"))

    threads = [threading.Thread(target=call, args=(p,)) for p in ("stalled", "slow")]
    for thread in threads:
        thread.start()
    while len(api.received()) < 2:
        time.sleep(0.01)
    time.sleep(0.1)
    started = time.monotonic()
    api.stop()
    assert time.monotonic() - started < 1.5
    for thread in threads:
        thread.join(5)
    assert len(errors) == 2 and all(isinstance(e, TRANSPORT_ERRORS) for e in errors)


def test_stop_closes_a_connection_still_sending_its_request() -> None:
    api = FakeAnthropic().start()
    with socket.create_connection((api.host, api.port), timeout=3) as connection:
        connection.sendall(b"POST /v1/messages HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{")
        time.sleep(0.1)
        started = time.monotonic()
        api.stop()
        assert time.monotonic() - started < 1
        assert connection.recv(100) == b""  # closed by the server, not left hanging until the timeout


def test_only_loopback_hosts_are_allowed() -> None:
    with pytest.raises(ValueError, match="loopback"):
        FakeAnthropic(host="0.0.0.0")
    with FakeAnthropic(host="localhost") as api:
        assert api.base_url.startswith("http://127.0.0.1:")


def test_cli_serves_until_sigterm() -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "switchboard.fakeapi", "--port", "0", "--api-key", "cli-key"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline().strip()
        assert line.startswith("Fake Anthropic API listening on http://127.0.0.1:")
        assert line.endswith(" (simulated answers)")
        base_url = line.split(" ")[5]
        body = {"model": HAIKU, "messages": user("hello")}
        response = HTTP.post(
            base_url + "/v1/messages/count_tokens", json=body, headers={"x-api-key": "cli-key"}
        )
        assert response.json() == {"input_tokens": tokens("hello")}
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=5) == 0
    finally:
        process.kill()


def test_cli_refuses_a_public_host(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli_main(["--host", "0.0.0.0", "--port", "0"]) == 2
    assert "loopback" in capsys.readouterr().err


def test_the_request_log_keeps_the_last_requests_only() -> None:
    """A long-running fake (`mock-api`, the gateway benchmark's 100,000 turns) must not grow without bound."""
    from switchboard.fakeapi.records import RecordedRequest, RequestLog

    log = RequestLog(limit=3)
    for index in range(5):
        log.append(RecordedRequest("POST", f"/v1/messages/{index}", {}, b"{}", float(index)))
    assert [record.path for record in log.snapshot()] == [f"/v1/messages/{index}" for index in (2, 3, 4)]
    log.clear()
    assert log.snapshot() == []
