"""The shipped-until-issue-18 router's prior: attached context and a few telling words (kept for the bench).

The public routing data has prompts only (no attached files, no editor context), so the weights of these
signals cannot be learned from it. They are a documented *prior* added to the learned logit, in the same
units (log-odds), with a bounded total: they tip borderline prompts, they cannot overrule a confident model
on their own except for small talk. `docs/router.md` lists them; changing them means re-running training,
which re-picks the threshold with them in place.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

from router_lab.legacy.text_features import excerpt, looks_like_code

# (uri, text, language_id) as the chat request carries them.
ContextEntry = tuple[str, str, str | None]

CODE_LANGUAGES = frozenset(
    [
        "c",
        "cpp",
        "csharp",
        "css",
        "go",
        "html",
        "java",
        "javascript",
        "javascriptreact",
        "kotlin",
        "lua",
        "objective-c",
        "php",
        "python",
        "r",
        "ruby",
        "rust",
        "scala",
        "shellscript",
        "sql",
        "swift",
        "typescript",
        "typescriptreact",
        "vue",
        "dart",
        "elixir",
        "haskell",
        "ocaml",
        "perl",
        "zig",
    ]
)
CHARS_PER_TOKEN = 4
_FILES_READ_FOR_CODE = 5
ASK_HEAD_CHARS = 1_000
ASK_TAIL_CHARS = 500
_CHARS_READ_FOR_CODE = 2_000

# One pass over the ask finds every keyword group (five separate searches cost ~5× as much).
_KEYWORDS = re.compile(
    r"\b(?:"
    r"(?P<refactor>refactor\w*|restructur\w*|rewrite|re-?architect\w*|migrat\w*|port (?:it|this) to)"
    r"|(?P<design>design\w*|architectur\w*|trade-?offs?|scalab\w*)"
    r"|(?P<reasoning>why|what causes|complexity of|invariant)"
    r"|(?P<proof>prove|proof|derive|derivation|formally|rigorous\w*)"
    r"|(?P<debug>debug\w*|race condition|deadlock|memory leak|segfault|concurren\w*|flaky)"
    r")\b"
)
_SMALL_TALK = re.compile(
    r"^\W*(hi|hello|hey|yo|thanks|thank you|thx|ok|okay|cool|great|nice|good (?:morning|evening|night)|"
    r"bye|goodbye|sounds good|got it|perfect|awesome)\b[\s\w]{0,12}\W*$"
)

# The prior, in log-odds added to the learned logit.
MULTI_FILE_WEIGHT = 0.35
CODE_CONTEXT_WEIGHT = 0.1
CONTEXT_SIZE_WEIGHT = 0.06  # per doubling of attached tokens over 1,000
CONTEXT_SIZE_CAP = 0.25
REFACTOR_WEIGHT = 0.3
DESIGN_WEIGHT = 0.3
REASONING_WEIGHT = 0.1
PROOF_WEIGHT = 0.3
DEBUG_WEIGHT = 0.15
KEYWORD_CAP = 0.5
SMALL_TALK_WEIGHT = -1.0
PRIOR_CAP = 0.9


@dataclass(frozen=True)
class ContextSummary:
    files: int = 0
    chars: int = 0
    languages: tuple[str, ...] = ()
    has_code: bool = False

    @property
    def tokens(self) -> int:
        return self.chars // CHARS_PER_TOKEN


@dataclass(frozen=True)
class PromptSignals:
    refactor: bool = False
    design: bool = False
    reasoning: bool = False
    proof: bool = False
    debug: bool = False
    small_talk: bool = False
    code: bool = False
    question: bool = False


def summarize_context(context: Sequence[ContextEntry]) -> ContextSummary:
    """Counts and sizes only; reads at most a few KB of a few files to tell code from prose."""
    if not context:
        return ContextSummary()
    languages = sorted({lang for _, _, lang in context if lang})
    has_code = any(lang in CODE_LANGUAGES for lang in languages) or any(
        looks_like_code(text[:_CHARS_READ_FOR_CODE]) for _, text, _ in context[:_FILES_READ_FOR_CODE]
    )
    return ContextSummary(
        files=len({uri for uri, _, _ in context}),
        chars=sum(len(text) for _, text, _ in context),
        languages=tuple(languages),
        has_code=has_code,
    )


def _ask(prompt: str) -> str:
    """Where the request itself is (the start and the end), without the pasted material in between."""
    if len(prompt) <= ASK_HEAD_CHARS + ASK_TAIL_CHARS:
        return prompt
    return prompt[:ASK_HEAD_CHARS] + "\n" + prompt[-ASK_TAIL_CHARS:]


def read_signals(prompt: str) -> PromptSignals:
    part = excerpt(prompt)
    lowered = _ask(prompt).lower()
    found = {match.lastgroup for match in _KEYWORDS.finditer(lowered)}
    return PromptSignals(
        refactor="refactor" in found,
        design="design" in found,
        reasoning="reasoning" in found,
        proof="proof" in found,
        debug="debug" in found,
        small_talk=len(prompt) <= 40 and _SMALL_TALK.match(lowered.strip()) is not None,
        code=looks_like_code(part),
        question="?" in lowered,
    )


def _keyword_prior(signals: PromptSignals) -> float:
    total = (
        REFACTOR_WEIGHT * signals.refactor
        + DESIGN_WEIGHT * signals.design
        + REASONING_WEIGHT * signals.reasoning
        + PROOF_WEIGHT * signals.proof
        + DEBUG_WEIGHT * signals.debug
    )
    return min(total, KEYWORD_CAP)


def _context_prior(context: ContextSummary) -> float:
    if context.files == 0:
        return 0.0
    size = min(CONTEXT_SIZE_WEIGHT * math.log2(1 + context.tokens / 1_000), CONTEXT_SIZE_CAP)
    return MULTI_FILE_WEIGHT * (context.files >= 2) + CODE_CONTEXT_WEIGHT * context.has_code + size


def prior_logit(signals: PromptSignals, context: ContextSummary) -> float:
    """The hand-set part of the difficulty logit (see the module docstring)."""
    if signals.small_talk and context.files == 0:
        return SMALL_TALK_WEIGHT
    return min(_keyword_prior(signals) + _context_prior(context), PRIOR_CAP)
