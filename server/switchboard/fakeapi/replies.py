"""Deterministic simulated answers: what the fake model says, thinks, and how many tokens that costs."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from switchboard.fakeapi.signatures import sign_thinking
from switchboard.fakeapi.tokens import text_tokens

DEFAULT_WORDS = 60
ECHO_CHARS = 200
WORDS_PER_DELTA = 3
THINKING_WORDS = 30
FILLER_SENTENCES = (
    "This answer is simulated by the fake Anthropic API, so no model was called.",
    "Every word is chosen deterministically from the prompt, which keeps tests repeatable.",
    "Streaming arrives a few words at a time so that progress can be observed.",
    "Token counts are estimated at roughly four characters per token.",
    "A longer reply can be requested with a words directive in the prompt.",
    "Prompt caching, extended thinking and failures are simulated as well.",
)
CODE_BLOCK = (
    "Here is a simulated example:\n\n"
    "```python\n"
    "def simulated_answer(turn: int) -> str:\n"
    '    """Deterministic example produced by the fake Anthropic API."""\n'
    '    return f"turn {turn}"\n'
    "```"
)
LIST_BLOCK = "- first simulated point\n- second simulated point\n- third simulated point"
_DIRECTIVE = re.compile(r"\[\[fake:[^\]]*\]\]")


@dataclass(frozen=True)
class Reply:
    text: str
    thinking: str | None
    signature: str | None
    stop_reason: str
    stop_sequence: str | None
    output_tokens: int


def last_user_text(messages: object) -> str:
    """The text of the last user message (its text blocks joined), or "" if there is none."""
    for message in reversed(messages if isinstance(messages, list) else []):
        if isinstance(message, dict) and message.get("role") == "user":
            return _message_text(message.get("content"))
    return ""


def compose_reply(body: Mapping[str, Any], model: str, *, words: int | None = None) -> Reply:
    messages: list[Any] = body.get("messages") or []
    prompt = " ".join(_DIRECTIVE.sub(" ", last_user_text(messages)).split())
    seed = int(hashlib.sha256(prompt.encode()).hexdigest()[:8], 16)
    thinking = _thinking_text(model, prompt, seed, body.get("thinking"))
    full_text = _answer_text(model, prompt, messages, seed, words or DEFAULT_WORDS)
    budget = int(body.get("max_tokens") or 1) - text_tokens(thinking or "")
    text, stop_reason, stop_sequence = _limit(full_text, budget, body.get("stop_sequences") or [])
    return Reply(
        text=text,
        thinking=thinking,
        signature=sign_thinking(model, thinking) if thinking is not None else None,
        stop_reason=stop_reason,
        stop_sequence=stop_sequence,
        output_tokens=text_tokens(text) + text_tokens(thinking or ""),
    )


def split_deltas(text: str) -> list[str]:
    """`text` in pieces of a few words each (whitespace kept), so that "".join(pieces) == text."""
    words = re.findall(r"\s*\S+", text)
    pieces = ["".join(words[i : i + WORDS_PER_DELTA]) for i in range(0, len(words), WORDS_PER_DELTA)]
    trailing = text[len("".join(words)) :]
    if trailing and pieces:
        pieces[-1] += trailing
    return pieces or ([text] if text else [])


def _answer_text(model: str, prompt: str, messages: Sequence[Any], seed: int, words: int) -> str:
    turn = sum(1 for message in messages if isinstance(message, dict) and message.get("role") == "user")
    echo = prompt if len(prompt) <= ECHO_CHARS else prompt[: ECHO_CHARS - 1] + "…"
    parts = [f"Simulated reply from {model} (turn {turn}; {len(messages) - 1} earlier messages): {echo}"]
    lowered = prompt.lower()
    if "code" in lowered:
        parts.append(CODE_BLOCK)
    if "list" in lowered:
        parts.append(LIST_BLOCK)
    used = sum(len(part.split()) for part in parts)
    if words > used:
        parts.append(_filler(seed, words - used))
    return "\n\n".join(parts)


def _thinking_text(model: str, prompt: str, seed: int, thinking: object) -> str | None:
    if not isinstance(thinking, dict) or thinking.get("type") != "enabled":
        return None
    budget_chars = int(thinking.get("budget_tokens") or 0) * 4
    text = f'Simulated thinking by {model} about "{prompt[:80]}". ' + _filler(seed + 1, THINKING_WORDS)
    return text[:budget_chars]


def _filler(seed: int, count: int) -> str:
    """`count` words of readable filler, starting at a sentence picked by `seed`."""
    words: list[str] = []
    sentence = seed % len(FILLER_SENTENCES)
    while len(words) < count:
        words += FILLER_SENTENCES[sentence % len(FILLER_SENTENCES)].split()
        sentence += 1
    text = " ".join(words[:count])
    return text if text.endswith(".") else text.rstrip(",") + "."


def _limit(text: str, budget_tokens: int, stop_sequences: Sequence[str]) -> tuple[str, str, str | None]:
    """Cut `text` at the first stop sequence, or at `budget_tokens`, like the model would stop."""
    limit = max(budget_tokens, 0) * 4
    hits = [(text.find(s), s) for s in stop_sequences if s in text]
    if hits:
        position, sequence = min(hits)
        if position <= limit:
            return text[:position], "stop_sequence", sequence
    if len(text) > limit:
        return text[:limit], "max_tokens", None
    return text, "end_turn", None


def _message_text(content: object) -> str:
    if isinstance(content, str):
        return content
    blocks = content if isinstance(content, list) else []
    texts = [b.get("text") for b in blocks if isinstance(b, dict) and b.get("type") == "text"]
    return "\n".join(text for text in texts if isinstance(text, str))
