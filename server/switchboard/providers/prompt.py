"""Turns a stored conversation plus a new prompt into a Messages API request.

- The whole conversation is replayed to whichever model answers, so a model switch keeps the context.
- When it does not fit the model's context window minus its output budget, the oldest exchanges are
  dropped (never the new prompt).
- Thinking blocks are replayed only to the model that wrote them (their signatures are model-bound).
- `cache_control` breakpoints sit on the system prompt and on the last block of the new message. The next
  turn's request starts with exactly that prefix, so it reads the whole earlier conversation (attached
  context included) from the prompt cache and pays full price only for the latest answer and prompt.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from switchboard.protocol.messages import ContextItem
from switchboard.store import StoredTurn
from switchboard.tokens import MESSAGE_OVERHEAD_TOKENS, estimate_tokens

SYSTEM_PROMPT = (
    "You are Switchboard, a senior software engineer pair-programming with the user inside their code "
    "editor. Answer precisely and concisely in Markdown. Put code in fenced blocks with a language tag. "
    "When the user attaches files or selections, ground your answer in them and name the files you refer "
    "to. If something is ambiguous, say what you assumed."
)
CACHE = {"type": "ephemeral"}


@dataclass(frozen=True)
class Exchange:
    """One prompt and the answer the model last gave to it."""

    prompt: StoredTurn
    answer: StoredTurn


@dataclass(frozen=True)
class BuiltPrompt:
    system: list[dict[str, Any]]
    messages: list[dict[str, Any]]
    dropped_turns: int
    input_tokens: int


class PromptTooLargeError(Exception):
    def __init__(self, input_tokens: int) -> None:
        super().__init__(input_tokens)
        self.input_tokens = input_tokens


def exchanges(turns: list[StoredTurn], *, before: str | None = None) -> list[Exchange]:
    """Prompt/answer pairs worth replaying: the latest usable answer of each prompt (a retry wins).

    `before` stops at that user turn (used when a retry re-runs a prompt that is already stored).
    """
    result: list[Exchange] = []
    prompt: StoredTurn | None = None
    answer: StoredTurn | None = None
    for turn in turns:
        if turn.role == "user":
            if prompt is not None and answer is not None:
                result.append(Exchange(prompt, answer))
            if turn.id == before:
                return result
            prompt, answer = turn, None
        elif turn.text and turn.status in ("complete", "cancelled"):
            answer = turn
    if prompt is not None and answer is not None:
        result.append(Exchange(prompt, answer))
    return result


def format_context(items: list[ContextItem]) -> str:
    parts: list[str] = []
    for item in items:
        where = item.uri
        if item.range is not None:
            where += f" (lines {item.range.start.line + 1}-{item.range.end.line + 1})"
        fence = "````" if "```" in item.text else "```"
        parts.append(f"Attached from {where}:\n{fence}{item.language_id or ''}\n{item.text}\n{fence}")
    return "\n\n".join(parts)


def _user_message(prompt: str, context: list[ContextItem]) -> dict[str, Any]:
    blocks: list[dict[str, Any]] = []
    if context:
        blocks.append({"type": "text", "text": format_context(context)})
    blocks.append({"type": "text", "text": prompt})
    return {"role": "user", "content": blocks}


def _assistant_message(answer: StoredTurn, anthropic_model: str, with_thinking: bool) -> dict[str, Any]:
    blocks: list[dict[str, Any]] = []
    same_model = answer.anthropic_model == anthropic_model
    if with_thinking and same_model and answer.thinking and answer.thinking_signature:
        blocks.append(
            {"type": "thinking", "thinking": answer.thinking, "signature": answer.thinking_signature}
        )
    blocks.append({"type": "text", "text": answer.text})
    return {"role": "assistant", "content": blocks}


def _tokens(message: dict[str, Any]) -> int:
    content: list[dict[str, Any]] = message["content"]
    return MESSAGE_OVERHEAD_TOKENS + sum(
        estimate_tokens(block.get("text") or block.get("thinking") or "") for block in content
    )


def build_prompt(
    history: list[Exchange],
    *,
    prompt: str,
    context: list[ContextItem],
    anthropic_model: str,
    context_window: int,
    max_tokens: int,
    thinking: bool,
    cache: bool = True,
) -> BuiltPrompt:
    system: list[dict[str, Any]] = [{"type": "text", "text": SYSTEM_PROMPT}]
    if cache:
        system[0]["cache_control"] = CACHE
    new_message = _user_message(prompt, context)
    if cache:
        new_message["content"][-1]["cache_control"] = CACHE
    budget = context_window - max_tokens - estimate_tokens(SYSTEM_PROMPT) - _tokens(new_message)
    if budget < 0:
        raise PromptTooLargeError(context_window - budget)
    pairs = [
        (
            _user_message(ex.prompt.text, ex.prompt.context),
            _assistant_message(ex.answer, anthropic_model, thinking),
        )
        for ex in history
    ]
    kept = _newest_that_fit(pairs, budget)
    messages = [message for pair in pairs[len(pairs) - kept :] for message in pair]
    used = sum(_tokens(m) for m in messages)
    return BuiltPrompt(
        system=system,
        messages=[*messages, new_message],
        dropped_turns=2 * (len(pairs) - kept),
        input_tokens=context_window - max_tokens - budget + used,
    )


def _newest_that_fit(pairs: list[tuple[dict[str, Any], dict[str, Any]]], budget: int) -> int:
    kept = 0
    for user, assistant in reversed(pairs):
        cost = _tokens(user) + _tokens(assistant)
        if cost > budget:
            break
        budget -= cost
        kept += 1
    return kept
