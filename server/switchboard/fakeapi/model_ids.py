"""The Anthropic model ids the fake API accepts, their aliases and per-model limits."""

from __future__ import annotations

ALIASES: dict[str, str] = {
    "claude-haiku-4-5": "claude-haiku-4-5-20251001",
    "claude-sonnet-4-0": "claude-sonnet-4-20250514",
    "claude-sonnet-4-5": "claude-sonnet-4-5-20250929",
    "claude-opus-4-5": "claude-opus-4-5-20251101",
}
SNAPSHOTS: frozenset[str] = frozenset(ALIASES.values())
MAX_OUTPUT_TOKENS = 64_000


def resolve_model(model: str) -> str | None:
    """The snapshot id behind `model` (itself if it is a snapshot), or None if the model is unknown."""
    if model in SNAPSHOTS:
        return model
    return ALIASES.get(model)


def min_cacheable_tokens(model: str) -> int:
    """The shortest prefix a cache breakpoint can mark on `model`; shorter ones are ignored."""
    return 1024 if "sonnet" in model else 4096
