"""Validation of Messages requests, refusing what the real API refuses with a similar message."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeGuard

from switchboard.fakeapi.errors import ApiError, invalid
from switchboard.fakeapi.model_ids import MAX_OUTPUT_TOKENS, resolve_model
from switchboard.fakeapi.signatures import sign_thinking, signing_model

MAX_BREAKPOINTS = 4
MIN_THINKING_BUDGET = 1024
BLOCK_FIELDS: dict[str, dict[str, type]] = {
    "text": {"text": str},
    "image": {"source": dict},
    "thinking": {"thinking": str, "signature": str},
    "redacted_thinking": {"data": str},
    "tool_use": {"id": str, "name": str, "input": dict},
    "tool_result": {"tool_use_id": str},
}
ROLE_ONLY_BLOCKS: dict[str, str] = {
    "thinking": "assistant",
    "redacted_thinking": "assistant",
    "tool_use": "assistant",
    "image": "user",
    "tool_result": "user",
}


def require_object(body: object) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise invalid("There was an issue with your request body: expected a JSON object")
    return body


def validate_request(body: Mapping[str, Any], *, counting: bool = False) -> str:
    """Check a `/v1/messages` (or, with `counting`, a count_tokens) body; return its resolved model id."""
    model = _model(body.get("model"))
    max_tokens = None if counting else _max_tokens(body.get("max_tokens"), model)
    _system(body.get("system"))
    _tools(body.get("tools"))
    _messages(body.get("messages"), model)
    _thinking(body.get("thinking"), max_tokens)
    _optional(body, "stream", bool, "a valid boolean")
    _stop_sequences(body.get("stop_sequences"))
    _breakpoint_count(body)
    return model


def _model(model: object) -> str:
    if model is None:
        raise invalid("model: Field required")
    if not isinstance(model, str):
        raise invalid("model: Input should be a valid string")
    resolved = resolve_model(model)
    if resolved is None:
        raise ApiError(404, f"model: {model}")
    return resolved


def _max_tokens(value: object, model: str) -> int:
    if value is None:
        raise invalid("max_tokens: Field required")
    if not _is_int(value):
        raise invalid("max_tokens: Input should be a valid integer")
    if value < 1:
        raise invalid("max_tokens: Input should be greater than or equal to 1")
    if value > MAX_OUTPUT_TOKENS:
        raise invalid(
            f"max_tokens: {value} > {MAX_OUTPUT_TOKENS}, which is the maximum allowed number of output "
            f"tokens for {model}"
        )
    return value


def _system(system: object) -> None:
    if system is None or isinstance(system, str):
        return
    if not isinstance(system, list):
        raise invalid("system: Input should be a valid string or a list of text blocks")
    for index, block in enumerate(system):
        where = f"system.{index}"
        if not (
            isinstance(block, dict) and block.get("type") == "text" and isinstance(block.get("text"), str)
        ):
            raise invalid(f"{where}: Input should be a text block with a `text` string")
        _cache_control(block, where)


def _tools(tools: object) -> None:
    if tools is None:
        return
    if not isinstance(tools, list):
        raise invalid("tools: Input should be a valid list")
    for index, tool in enumerate(tools):
        if not isinstance(tool, dict) or not isinstance(tool.get("name"), str) or not tool.get("name"):
            raise invalid(f"tools.{index}.name: Field required")
        _cache_control(tool, f"tools.{index}")


def _messages(messages: object, model: str) -> None:
    if messages is None:
        raise invalid("messages: Field required")
    if not isinstance(messages, list):
        raise invalid("messages: Input should be a valid list")
    if not messages:
        raise invalid("messages: at least one message is required")
    previous: str | None = None
    for index, message in enumerate(messages):
        role = _role(message, index, previous)
        final_assistant = index == len(messages) - 1 and role == "assistant"
        _content(message.get("content"), f"messages.{index}", role, model, allow_empty=final_assistant)
        previous = role


def _role(message: object, index: int, previous: str | None) -> str:
    if not isinstance(message, dict):
        raise invalid(f"messages.{index}: Input should be a valid dictionary")
    role = message.get("role")
    if role not in ("user", "assistant"):
        raise invalid(f"messages.{index}.role: Input should be 'user' or 'assistant'")
    if previous is None and role != "user":
        raise invalid('messages: the first message must use the "user" role')
    if role == previous:
        raise invalid(
            f'messages.{index}: roles must alternate between "user" and "assistant", '
            f'but found multiple "{role}" roles in a row'
        )
    return role


def _content(content: object, where: str, role: str, model: str, *, allow_empty: bool) -> None:
    empty_error = invalid(
        f"{where}: all messages must have non-empty content except for the optional final assistant message"
    )
    if isinstance(content, str):
        if not content and not allow_empty:
            raise empty_error
        return
    if not isinstance(content, list):
        raise invalid(f"{where}.content: Input should be a valid string or a list of content blocks")
    if not content and not allow_empty:
        raise empty_error
    for index, block in enumerate(content):
        _block(block, f"{where}.content.{index}", role, model)


def _block(block: object, where: str, role: str, model: str) -> None:
    if not isinstance(block, dict):
        raise invalid(f"{where}: Input should be a valid dictionary")
    kind = block.get("type")
    if not isinstance(kind, str) or kind not in BLOCK_FIELDS:
        expected = ", ".join(f"'{name}'" for name in BLOCK_FIELDS)
        raise invalid(f"{where}.type: Input should be one of {expected}")
    for field, field_type in BLOCK_FIELDS[kind].items():
        if not isinstance(block.get(field), field_type):
            raise invalid(f"{where}.{kind}.{field}: Field required")
    required_role = ROLE_ONLY_BLOCKS.get(kind)
    if required_role is not None and role != required_role:
        raise invalid(f"{where}: `{kind}` blocks are only allowed in {required_role} messages")
    if kind == "text" and not block["text"]:
        raise invalid(f"{where}: text content blocks must be non-empty")
    if kind == "thinking":
        _thinking_signature(block["thinking"], block["signature"], where, model)
    _cache_control(block, where)


def _thinking_signature(thinking: str, signature: str, where: str, model: str) -> None:
    signer = signing_model(signature)
    if signer is None:
        raise invalid(f"{where}: Invalid `signature` in `thinking` block")
    if signer != model:
        raise invalid(
            f"{where}: Invalid `signature` in `thinking` block: it was produced by {signer}, and thinking "
            f"blocks can only be sent back to the model that produced them (this request is for {model})"
        )
    if sign_thinking(model, thinking) != signature:
        raise invalid(f"{where}: Invalid `signature` in `thinking` block: the thinking text was modified")


def _cache_control(block: Mapping[str, Any], where: str) -> None:
    control = block.get("cache_control")
    if control is None:
        return
    if not isinstance(control, dict) or control.get("type") != "ephemeral":
        raise invalid(f"{where}.cache_control.type: Input should be 'ephemeral'")
    if control.get("ttl", "5m") not in ("5m", "1h"):
        raise invalid(f"{where}.cache_control.ttl: Input should be '5m' or '1h'")


def _thinking(thinking: object, max_tokens: int | None) -> None:
    if thinking is None:
        return
    if not isinstance(thinking, dict):
        raise invalid("thinking: Input should be a valid dictionary")
    kind = thinking.get("type")
    if kind == "disabled":
        return
    if kind != "enabled":
        raise invalid("thinking.type: Input should be 'enabled' or 'disabled'")
    budget = thinking.get("budget_tokens")
    if not _is_int(budget):
        raise invalid("thinking.enabled.budget_tokens: Field required")
    if budget < MIN_THINKING_BUDGET:
        raise invalid(f"thinking.enabled.budget_tokens: Input should be at least {MIN_THINKING_BUDGET}")
    if max_tokens is not None and budget >= max_tokens:
        raise invalid("`max_tokens` must be greater than `thinking.budget_tokens`")


def _stop_sequences(value: object) -> None:
    if value is None:
        return
    if not isinstance(value, list) or not all(isinstance(s, str) and s for s in value):
        raise invalid("stop_sequences: Input should be a list of non-empty strings")


def _optional(body: Mapping[str, Any], field: str, field_type: type, description: str) -> None:
    if field in body and not isinstance(body[field], field_type):
        raise invalid(f"{field}: Input should be {description}")


def _breakpoint_count(body: Mapping[str, Any]) -> None:
    found = sum(1 for block in _cacheable_elements(body) if block.get("cache_control") is not None)
    if found > MAX_BREAKPOINTS:
        raise invalid(
            f"A maximum of {MAX_BREAKPOINTS} blocks with cache_control may be provided, found {found}"
        )


def _cacheable_elements(body: Mapping[str, Any]) -> list[dict[str, Any]]:
    elements: list[object] = [*_list(body.get("tools")), *_list(body.get("system"))]
    for message in _list(body.get("messages")):
        elements.extend(_list(message.get("content")) if isinstance(message, dict) else [])
    return [element for element in elements if isinstance(element, dict)]


def _list(value: object) -> list[Any]:
    return value if isinstance(value, list) else []


def _is_int(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)
