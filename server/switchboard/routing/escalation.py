"""The escalation model: the log-odds that a turn needs Claude Sonnet 4.5 rather than Claude Haiku 4.5.

A logistic model over what the ask asks (`ask.AskSignals`), what it asks *of* the attachment, and the
conversation so far. Its weights are fitted by `bench/router_lab/escalation.py` (MAP logistic regression,
Gaussian priors centred on published Claude 4.x benchmark gaps, on the development half of the editor-traffic
suite; operating points on its validation half) and shipped as a small JSON artifact; docs/router.md lists
every weight and its source.

The attachment's size enters only through `wide_ask`: a signal that asks something of the whole attachment
(relate its parts, change it across files, keep its behaviour) counts more when the attachment is wide.
Nothing here grows with the attachment's size on its own.

`wording` adds learned weights of the ask's own words and word pairs (a small lexicon, fitted with the other
weights under a tight prior), so phrasings the hand-written signals do not know still count a little.

`meaning` (round 7) is a linear function of the ask's mean static embedding (`embedding.StaticEmbedding`),
fitted with the other weights: asks worded in terms no trigger lists still land near what they mean. It ships
collapsed (`embedding.PieceScores`): the direction times every word piece's vector, one score per piece, and
the part of the logit is the mean of the ask's pieces' scores (exactly the direction times the mean vector).

The conversation's signals are not in the suite (every item is a first turn), so they are not fitted.
Extended thinking on a hard ask adds a fixed prior weight to the logit. An explicit "retry with a stronger
model" earlier in the conversation, or a long conversation that already escalated, is a rule, not a weight
(`conversation_rule`): a fixed weight races the ask-length weight, which a refit can grow past it, and then
"yes" or "go on" after a retry fell back to Haiku.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
from dataclasses import dataclass, field
from typing import IO, Any

from switchboard.routing.ask import AskSignals, log_words
from switchboard.routing.context import ContextSummary
from switchboard.routing.embedding import PieceScores, WordPieces

ARTIFACT_NAME = "escalation_model.json"
MEANING_ARTIFACT_NAME = "escalation_meaning.npy"  # the meaning direction collapsed: one score per word piece
WIDE_CONTEXT_CHARS = 6_000  # about 200 lines of code
LONG_CONVERSATION_TURNS = 6  # three exchanges
ESCALATED_ANSWERS = 2
THINKING_MIN_BUDGET = 1_024
# The ask's length enters relative to a typical ten-word ask, so its part of the logit says "longer (or
# shorter) than usual" and a reason can name it only when it really tipped the decision.
TYPICAL_ASK_WORDS = 10

# The learned features, in artifact order.
FEATURE_NAMES: tuple[str, ...] = (
    "design",
    "bounded_design",
    "security",
    "security_in_code",
    "concurrency",
    "algorithm",
    "whole_context",
    "structural",
    "care",
    "systemic",
    "wide_ask",
    "mechanical",
    "error_pasted",
    "log_ask_words",
)
# Conversation signals in the logit: fixed prior weights (log-odds), not fitted (see the module docstring);
# thinking adds to a hard ask's signal.
CONVERSATION_WEIGHTS: dict[str, float] = {
    "thinking_on_hard_ask": 2.0,
}
# Conversation rules: the conversation keeps the strong model for every ask but a mechanical edit.
STRONGER_RETRY = "stronger_retry"
ESCALATED_CONVERSATION = "escalated_conversation"
HARD_REASONING = ("design", "security", "concurrency", "algorithm")
# The ask's mean embedding is shrunk towards the training asks' centroid by this many pieces' worth: a
# one-word ask ("hi") has a mean as far out as a single piece's vector, where nothing was fitted.
MEANING_PRIOR_PIECES = 8
WORDING = "wording"  # the learned weights of the ask's words, one part of the logit
MEANING = "meaning"  # the ask's mean embedding times a learned direction, one part of the logit


@dataclass(frozen=True)
class Conversation:
    """The facts about the conversation so far that may escalate a turn."""

    turns: int = 0
    sonnet_answers: int = 0  # earlier answers given by a Sonnet
    stronger_retries: int = 0  # earlier "retry with a stronger model" in this conversation
    thinking_budget: int | None = None  # this turn's extended-thinking budget


def learned_features(ask: AskSignals, context: ContextSummary) -> dict[str, float]:
    wide = context.files >= 2 or context.chars >= WIDE_CONTEXT_CHARS
    asks_of_whole = ask.whole_context or ask.structural or ask.care
    return {
        "design": float(ask.design),
        "bounded_design": float(ask.bounded_design),
        "security": float(ask.security),
        "security_in_code": float(ask.security and context.has_code),
        "concurrency": float(ask.concurrency),
        "algorithm": float(ask.algorithm),
        "whole_context": float(ask.whole_context),
        "structural": float(ask.structural),
        "care": float(ask.care),
        "systemic": float(ask.systemic),
        "wide_ask": float(asks_of_whole and wide),
        "mechanical": float(ask.mechanical),
        "error_pasted": float(ask.error_pasted),
        "log_ask_words": ask_length(ask),
    }


def ask_length(ask: AskSignals) -> float:
    """The ask's length against a typical ask. Shortness counts against escalating only when the ask names no
    hard reasoning: "is this endpoint secure?" is short because the question is plain, not because it is
    easy (round 5's review: the length weight, refitted larger each round, had outgrown a security hit)."""
    length = log_words(ask) - math.log1p(TYPICAL_ASK_WORDS)
    if any(getattr(ask, name) for name in HARD_REASONING):
        return max(0.0, length)
    return length


def conversation_features(ask: AskSignals, conversation: Conversation) -> dict[str, float]:
    hard = any(getattr(ask, name) for name in HARD_REASONING)
    thinking = (conversation.thinking_budget or 0) >= THINKING_MIN_BUDGET
    return {"thinking_on_hard_ask": float(thinking and hard)}


def conversation_rule(ask: AskSignals, conversation: Conversation) -> str | None:
    """The rule that keeps this turn on the strong model, if any: the user asked for a stronger model earlier
    in the conversation, or a long conversation already needed Sonnet. Only a mechanical edit (a rename, a
    reformat, a typo) is left to the escalation model: whatever else follows ("yes", "why?", "go on") builds
    on an answer the user wanted stronger."""
    if ask.mechanical:
        return None
    if conversation.stronger_retries > 0:
        return STRONGER_RETRY
    if conversation.turns >= LONG_CONVERSATION_TURNS and conversation.sonnet_answers >= ESCALATED_ANSWERS:
        return ESCALATED_CONVERSATION
    return None


@dataclass(frozen=True)
class EscalationModel:
    """Weights (log-odds per unit of each feature), an intercept and the operating points."""

    weights: dict[str, float]
    intercept: float
    # preference → probability threshold, chosen on the suite's validation half.
    thresholds: dict[str, float]
    # share_thresholds[k]: the threshold that sends k% of the validation half to Sonnet.
    share_thresholds: list[float]
    meta: dict[str, Any] = field(default_factory=dict[str, Any])

    # term → weight (log-odds) of the ask's words and word pairs; absent terms weigh nothing.
    lexicon: dict[str, float] = field(default_factory=dict[str, float])
    # The meaning part: the learned direction times each word piece's vector (embedding.PieceScores).
    meaning: PieceScores | None = None
    meaning_prior: float = 0.0  # the direction times the training asks' centroid

    def meaning_score(self, text: str) -> float:
        """The meaning part: the direction times the ask's mean piece vector shrunk towards the training
        asks' centroid by `MEANING_PRIOR_PIECES`, less the centroid's own score, so that a typical ask's part
        is near 0 and a reason names it only when it pushes (0 without a meaning part)."""
        if self.meaning is None:
            return 0.0
        (total,), count = self.meaning.total(text)
        return (total - count * self.meaning_prior) / (count + MEANING_PRIOR_PIECES)

    def wording(self, terms: frozenset[str]) -> float:
        lexicon = self.lexicon
        return sum(lexicon.get(term, 0.0) for term in terms)

    def contributions(
        self, features: dict[str, float], terms: frozenset[str] = frozenset(), text: str | None = None
    ) -> dict[str, float]:
        """Each feature's part of the logit (conversation signals at their fixed weights, the ask's wording
        and, given the ask's text, its meaning as one part each)."""
        out = {name: self.weights.get(name, 0.0) * value for name, value in features.items()}
        if self.lexicon:
            out[WORDING] = self.wording(terms)
        if self.meaning is not None and text is not None:
            out[MEANING] = self.meaning_score(text)
        for name, weight in CONVERSATION_WEIGHTS.items():
            if name in features:
                out[name] = weight * features[name]
        return out

    def logit(self, contributions: dict[str, float]) -> float:
        return self.intercept + sum(contributions.values())

    def share_at(self, threshold: float) -> float:
        """The share of the validation half at or above `threshold` (0..1, interpolated)."""
        table = self.share_thresholds
        for k in range(1, len(table)):
            if table[k] <= threshold:
                span = table[k - 1] - table[k]
                frac = (table[k - 1] - threshold) / span if span > 0 else 1.0
                return (k - 1 + min(1.0, max(0.0, frac))) / (len(table) - 1)
        return 1.0

    def threshold_at(self, share: float) -> float:
        table = self.share_thresholds
        position = min(1.0, max(0.0, share)) * (len(table) - 1)
        k = min(int(position), len(table) - 2)
        return table[k] + (table[k + 1] - table[k]) * (position - k)

    def to_json(self) -> str:
        body = {
            "feature_names": list(FEATURE_NAMES),
            "weights": {name: round(self.weights[name], 6) for name in FEATURE_NAMES},
            "intercept": round(self.intercept, 6),
            "thresholds": {k: round(v, 6) for k, v in self.thresholds.items()},
            "share_thresholds": [round(t, 6) for t in self.share_thresholds],
            "lexicon": {term: round(weight, 4) for term, weight in sorted(self.lexicon.items())},
            "meaning_prior": round(self.meaning_prior, 6),
            "meta": self.meta,
        }
        return json.dumps(body, indent=1, sort_keys=True) + "\n"


def read_escalation(source: IO[bytes], meaning: IO[bytes] | None = None) -> EscalationModel:
    """The model in `source`, with its meaning part's per-piece scores from `meaning`. A model fitted with a
    meaning part names its scores' digest: reading it without them, or with other scores, is refused, since
    its weights and thresholds were fitted with that part in the logit."""
    body = json.loads(source.read().decode("utf-8"))
    if tuple(body["feature_names"]) != FEATURE_NAMES:
        raise ValueError("artifact does not match the escalation features of this version")
    meaning_bytes = meaning.read() if meaning is not None else None
    expected = body.get("meta", {}).get("meaning_sha256")
    if expected is not None:
        if meaning_bytes is None:
            raise ValueError("this escalation model needs its meaning scores")
        if hashlib.sha256(meaning_bytes).hexdigest() != expected:
            raise ValueError("the meaning scores are not the ones this escalation model was fitted with")
    return EscalationModel(
        weights={name: float(body["weights"][name]) for name in FEATURE_NAMES},
        intercept=float(body["intercept"]),
        thresholds={str(k): float(v) for k, v in body["thresholds"].items()},
        share_thresholds=[float(t) for t in body["share_thresholds"]],
        meta=dict(body.get("meta", {})),
        lexicon={str(term): float(weight) for term, weight in body.get("lexicon", {}).items()},
        meaning=None
        if meaning_bytes is None
        else PieceScores.read(WordPieces.packaged(), io.BytesIO(meaning_bytes)),
        meaning_prior=float(body.get("meaning_prior", 0.0)),
    )


def logistic(x: float) -> float:
    if x >= 0:
        return 1.0 / (1.0 + math.exp(-x))
    z = math.exp(x)
    return z / (1.0 + z)
