"""The deterministic token estimator (about four characters a token) and the request prefix it runs over.

A request is cut into segments in the order the prompt cache sees it (tools, system, messages), one per
tool, system block or message content block. Input tokens are the sum over segments, so a cache split of
a prefix adds up to the whole.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Literal

IMAGE_TOKENS = 1600
_CANONICAL = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False)

CacheTtl = Literal["5m", "1h"]


@dataclass(frozen=True)
class Segment:
    canonical: str  # canonical JSON of the element without its cache_control: what the cache key hashes
    tokens: int
    breakpoint: CacheTtl | None  # set when the element carries cache_control


def text_tokens(text: str) -> int:
    return -(-len(text) // 4)


def canonical_json(value: object) -> str:
    return _CANONICAL.encode(value)


def count_tokens(body: Mapping[str, Any]) -> int:
    """Input tokens of a Messages request body: system + messages (+ tools), about chars / 4 per text."""
    return sum(segment.tokens for segment in request_segments(body))


def request_segments(body: Mapping[str, Any]) -> list[Segment]:
    tools, system = _tool_segments(body.get("tools")), _system_segments(body.get("system"))
    return [*tools, *system, *_message_segments(body.get("messages"))]


def block_tokens(block: object) -> int:
    if isinstance(block, str):
        return text_tokens(block)
    if not isinstance(block, dict):
        return 0
    kind = block.get("type")
    if kind == "image":
        return IMAGE_TOKENS
    if kind == "tool_result":
        content = block.get("content")
        return sum(map(block_tokens, content)) if isinstance(content, list) else block_tokens(content or "")
    if kind == "tool_use":
        return text_tokens(str(block.get("name", "")) + canonical_json(block.get("input", {})))
    for field in ("text", "thinking", "data"):
        value = block.get(field)
        if isinstance(value, str):
            return text_tokens(value)
    return text_tokens(canonical_json(_without_cache_control(block)))


def _tool_segments(tools: object) -> Iterator[Segment]:
    for tool in tools if isinstance(tools, list) else []:
        if isinstance(tool, dict):
            bare = _without_cache_control(tool)
            yield _segment({"tool": bare}, text_tokens(canonical_json(bare)), tool)


def _system_segments(system: object) -> Iterator[Segment]:
    if isinstance(system, str):
        yield _segment({"system": _text_block(system)}, text_tokens(system), None)
    elif isinstance(system, list):
        for block in system:
            if isinstance(block, dict):
                yield _segment({"system": _without_cache_control(block)}, block_tokens(block), block)


def _message_segments(messages: object) -> Iterator[Segment]:
    for message in messages if isinstance(messages, list) else []:
        if not isinstance(message, dict):
            continue
        role, content = message.get("role"), message.get("content")
        if isinstance(content, str):
            yield _segment({"role": role, "block": _text_block(content)}, text_tokens(content), None)
        elif isinstance(content, list):
            for block in content:
                bare = _without_cache_control(block) if isinstance(block, dict) else block
                yield _segment({"role": role, "block": bare}, block_tokens(block), block)


def _text_block(text: str) -> dict[str, str]:
    # A string is shorthand for one text block: both spell the same prompt prefix.
    return {"type": "text", "text": text}


def _segment(value: object, tokens: int, source: object) -> Segment:
    return Segment(canonical_json(value), tokens, _breakpoint(source))


def _breakpoint(source: object) -> CacheTtl | None:
    if not isinstance(source, dict):
        return None
    control = source.get("cache_control")
    if not isinstance(control, dict) or control.get("type") != "ephemeral":
        return None
    return "1h" if control.get("ttl") == "1h" else "5m"


def _without_cache_control(block: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in block.items() if key != "cache_control"}
