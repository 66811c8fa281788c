"""Self-contained questions: how much a stronger model is likely to help on an exam item or a word problem.

The escalation model (`escalation.py`) is fitted on editor traffic: on a question that carries everything it
needs in its own text (no attachment, no code) its signals see little. This module recognises two such
shapes and scores them with a small linear model of the question's text:

* `multiple_choice`: a stem and three or more lettered options ("A. …", "(B) …");
* `word_problem`: prose with two or more numbers that asks for a quantity ("How many …?").

Anything else (an attachment, code, a plain request) is not a question here and `read_question` returns
None, so editor traffic is untouched. The score is a ridge regression over hashed words and word pairs plus
a few numeric shape features (numbers, decimals, percentages, operators, option lengths), fitted by
`bench/router_lab/questions.py` on training data disjoint from every evaluation set (docs/router.md,
"Self-contained questions"): for word problems, the number of calculation steps in GSM8K's *train* split's
reference solutions; for multiple-choice items, the gap between small (7–9B) and large (49–70B) open models
on ulab's question sets. The router uses one number from here, `QuestionSignal.logit`: the question's part
of the escalation logit, in place of the ask's own (editor-traffic) parts.

The score is standardised on the training population of its kind (`z`), then mapped to a logit by an
offset and a scale stored in the artifact and chosen by the trainer so that, at the escalation artifact's
thresholds, a typical training population of each kind goes to Sonnet at the shares the artifact states
(`meta.target_shares`): rarely under `balanced`, more under `quality`.
"""

from __future__ import annotations

import itertools
import json
import math
import re
import zlib
from dataclasses import dataclass, field
from typing import IO, Any, Literal, get_args

from switchboard.routing.escalation import CONVERSATION_WEIGHTS

ARTIFACT_NAME = "question_model.json"
QuestionKind = Literal["multiple_choice", "word_problem"]
KINDS: tuple[QuestionKind, ...] = get_args(QuestionKind)
MAX_QUESTION_CHARS = 6_000
MIN_NUMBERS_IN_WORD_PROBLEM = 2

_OPTION = re.compile(r"(?:^|\n)[ \t]*\(?([A-J])[.)][ \t]+(.*)")
_NUMBER = re.compile(r"(?<![\w.])[-−]?\$?\d[\d,]*(?:\.\d+)?%?")
_WORD = re.compile(r"[a-z]+(?:'[a-z]+)?|<[a-z]+>")
_NUMBER_WORD = re.compile(
    r"\b(?:one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|fifteen|twenty|thirty|forty|fifty"
    r"|hundred|thousand|million|half|twice|double|triple|thrice|third|quarter|dozen)\b",
    re.I,
)
_QUANTITY_ASK = re.compile(
    r"\b(?:how (?:many|much|long|far|old|tall|fast|often)|what|calculate|compute|find|determine)\b", re.I
)
# Editor material (fenced or quoted code, file names): never a self-contained question.
_EDITOR = re.compile(r"```|`[^`\n]+`|\b[\w.-]+\.(?:py|ts|js|go|rs|java|ya?ml|json|toml|cfg|ini|sh|cpp)\b")
# Code-like text: a word problem has none (an exam item's options may quote code, so only `_EDITOR` there).
_CODE = re.compile(
    r"[{};]\s*$|\b(?:def|function|func|fn) \w+\(|\bclass \w+\s*[:({]|^\s*(?:import|from) \w+"
    r"|\b(?:const|let|var) \w+ =|\w\(\)|\w+\.\w+\(|=>|->|\b[a-z]+_[a-z_]+\b|\bSELECT\b.*\bFROM\b",
    re.M,
)
# Software and operations words: a prompt with numbers that uses them is an engineering ask (sizing,
# capacity, a migration plan), which the escalation model reads, not a word problem.
_ENGINEERING = re.compile(
    r"\b(?:postgres\w*|mysql|sql|database|db|qps|rps|tps|pods?|kubernetes|k8s|docker|servers?|services?"
    r"|microservices?|api|apis|endpoint|cache|cluster|shard\w*|replica\w*|repo|monorepo|deploy\w*|latency"
    r"|throughput|etl|pipeline|queries|query|schema|index|threads?|cpu|gpu|ram|memory|bytes|[kmgt]b|gbps"
    r"|requests?/s|writes?/s|reads?/s|devs|code|app|bug|test|java|python|javascript|typescript|golang|rust"
    r"|init|function|method|variable|compiler?|runtime)\b",
    re.I,
)
_OPERATORS = re.compile(r"[=+*/^×÷√∑∫<>≤≥]|\bsqrt\b|\blog\b|\bsin\b|\bcos\b")
_NEGATED = re.compile(r"\b(?:not|except|least|false|incorrect|never)\b", re.I)
_STATEMENTS = re.compile(r"\bstatement 1\b|\bstatement i\b", re.I)


@dataclass(frozen=True)
class ParsedQuestion:
    kind: QuestionKind
    stem: str
    options: tuple[str, ...]


@dataclass(frozen=True)
class QuestionSignal:
    kind: QuestionKind
    z: float  # the difficulty score, standardised on the training population of this kind
    logit: float  # the question's part of the escalation logit (the router's one input from here)


def parse_question(prompt: str) -> ParsedQuestion | None:
    """The question's kind, stem and options, or None for anything that is not a self-contained question."""
    if len(prompt) > MAX_QUESTION_CHARS or _EDITOR.search(prompt):
        return None
    options = _options(prompt)
    if options is not None:
        stem = prompt[: options[0]].strip()
        return ParsedQuestion("multiple_choice", stem, options[1]) if stem else None
    text = prompt.strip()
    if _CODE.search(text) or _ENGINEERING.search(text):
        return None
    numbers = len(_NUMBER.findall(text)) + len(_NUMBER_WORD.findall(text))
    if numbers >= MIN_NUMBERS_IN_WORD_PROBLEM and (text.endswith("?") or _QUANTITY_ASK.search(text)):
        return ParsedQuestion("word_problem", text, ())
    return None


def _options(prompt: str) -> tuple[int, tuple[str, ...]] | None:
    """(where the options start, their texts) when the prompt ends in ≥ 3 options lettered A, B, C, … ."""
    found = list(_OPTION.finditer(prompt))
    letters = [m.group(1) for m in found]
    if len(found) < 3 or letters[:3] != ["A", "B", "C"]:
        return None
    texts = tuple(m.group(2).strip() for m in found if m.group(1) in "ABCDEFGHIJ")
    return found[0].start(), texts


def _number_token(raw: str) -> str:
    if raw.endswith("%"):
        return "<pct>"
    if "." in raw:
        return "<dec>"
    digits = raw.replace(",", "").lstrip("-−$")
    return "<big>" if len(digits) >= 4 else "<num>"


def question_terms(question: ParsedQuestion) -> list[str]:
    """Lower-case words and adjacent pairs of the stem (numbers as their shape), then options' words."""
    stem = _NUMBER.sub(lambda m: f" {_number_token(m.group(0))} ", question.stem).lower()
    words = _WORD.findall(stem)
    terms = words + [f"{a} {b}" for a, b in itertools.pairwise(words)]
    for option in question.options:
        terms += [f"opt:{w}" for w in _WORD.findall(_NUMBER.sub(" <num> ", option).lower())]
    return terms


def shape_features(question: ParsedQuestion) -> list[float]:
    """Numeric shape of the question, in `SHAPE_NAMES` order."""
    stem, options = question.stem, question.options
    numbers = _NUMBER.findall(stem)
    option_text = " ".join(options)
    option_numbers = sum(1 for o in options if _NUMBER.search(o))
    return [
        math.log1p(len(stem) + len(option_text)),
        math.log1p(len(stem)),
        math.log1p(len(stem.split())),
        math.log1p(len(numbers)),
        math.log1p(len(set(numbers))),
        math.log1p(len(_NUMBER_WORD.findall(stem))),
        float(any("." in n for n in numbers)),
        float(any(n.endswith("%") for n in numbers) or "percent" in stem.lower()),
        float(bool(re.search(r"\d\s*/\s*\d", stem)) or "fraction" in stem.lower()),
        float(any(n.lstrip("-−").startswith("$") for n in numbers)),
        math.log1p(max((len(n.replace(",", "").lstrip("-−$")) for n in numbers), default=0)),
        math.log1p(stem.count(".") + stem.count("?")),
        math.log1p(len(_OPERATORS.findall(stem + " " + option_text))),
        math.log1p(len(option_text)),
        option_numbers / len(options) if options else 0.0,
        float(bool(_NEGATED.search(stem))),
        float(bool(_STATEMENTS.search(stem))),
    ]


SHAPE_NAMES: tuple[str, ...] = (
    "log_total_chars",
    "log_chars",
    "log_words",
    "log_numbers",
    "log_distinct_numbers",
    "log_number_words",
    "decimal",
    "percent",
    "fraction",
    "money",
    "log_longest_number",
    "log_sentences",
    "log_operators",
    "log_option_chars",
    "numeric_options",
    "negated",
    "statements",
)


def bucket(term: str, buckets: int) -> int:
    return zlib.crc32(term.encode("utf-8")) % buckets


@dataclass(frozen=True)
class KindModel:
    """One kind's linear model: score = Σ hashed term weights + shape · weights + intercept."""

    buckets: int  # 0: no term weights (a shape-only model)
    term_weights: list[float]  # length `buckets`, one per hashed term bucket (each term counts once)
    shape_mean: list[float]
    shape_scale: list[float]
    shape_weights: list[float]
    intercept: float
    score_mean: float  # on the training population: z = (score − mean) / std
    score_std: float
    offset: float  # logit = offset + scale · z
    scale: float

    def score(self, question: ParsedQuestion) -> float:
        weights, n = self.term_weights, self.buckets
        total = self.intercept
        if n:
            total += sum(weights[bucket(t, n)] for t in set(question_terms(question)))
        for value, mean, spread, weight in zip(
            shape_features(question), self.shape_mean, self.shape_scale, self.shape_weights, strict=True
        ):
            total += weight * (value - mean) / spread
        return total

    def z(self, question: ParsedQuestion) -> float:
        return (self.score(question) - self.score_mean) / self.score_std


@dataclass(frozen=True)
class QuestionModel:
    kinds: dict[str, KindModel]
    meta: dict[str, Any] = field(default_factory=dict[str, Any])

    def read(self, prompt: str) -> QuestionSignal | None:
        """The question's signal, or None when the prompt is not a self-contained question."""
        question = parse_question(prompt)
        if question is None or question.kind not in self.kinds:
            return None
        model = self.kinds[question.kind]
        z = model.z(question)
        return QuestionSignal(kind=question.kind, z=z, logit=model.offset + model.scale * z)

    def to_json(self) -> str:
        body = {
            "shape_names": list(SHAPE_NAMES),
            "kinds": {
                kind: {
                    "buckets": m.buckets,
                    "term_weights": [round(w, 4) for w in m.term_weights],
                    "shape_mean": [round(v, 5) for v in m.shape_mean],
                    "shape_scale": [round(v, 5) for v in m.shape_scale],
                    "shape_weights": [round(v, 5) for v in m.shape_weights],
                    "intercept": round(m.intercept, 6),
                    "score_mean": round(m.score_mean, 6),
                    "score_std": round(m.score_std, 6),
                    "offset": round(m.offset, 4),
                    "scale": round(m.scale, 4),
                }
                for kind, m in self.kinds.items()
            },
            "meta": self.meta,
        }
        return json.dumps(body, separators=(",", ":"), sort_keys=True) + "\n"


def read_question_model(source: IO[bytes]) -> QuestionModel:
    body = json.loads(source.read().decode("utf-8"))
    if tuple(body["shape_names"]) != SHAPE_NAMES:
        raise ValueError("artifact does not match the question features of this version")
    kinds: dict[str, KindModel] = {}
    for kind, m in body["kinds"].items():
        if kind not in KINDS or len(m["term_weights"]) != m["buckets"]:
            raise ValueError(f"malformed question model for {kind!r}")
        kinds[kind] = KindModel(
            buckets=int(m["buckets"]),
            term_weights=[float(w) for w in m["term_weights"]],
            shape_mean=[float(v) for v in m["shape_mean"]],
            shape_scale=[float(v) for v in m["shape_scale"]],
            shape_weights=[float(v) for v in m["shape_weights"]],
            intercept=float(m["intercept"]),
            score_mean=float(m["score_mean"]),
            score_std=float(m["score_std"]),
            offset=float(m["offset"]),
            scale=float(m["scale"]),
        )
    return QuestionModel(kinds=kinds, meta=dict(body.get("meta", {})))


QUESTION = "question"  # the question model's part of the escalation logit


def question_contributions(
    contributions: dict[str, float], signal: QuestionSignal | None
) -> dict[str, float]:
    """The escalation logit's parts with the ask's own parts replaced by the question's, for a self-contained
    question (`signal` not None): the escalation model's ask signals were written for editor requests and
    misread a question's prose (two trains "at the same time" is not a concurrency ask). The conversation's
    parts stay: an escalated conversation or a stronger retry still counts."""
    if signal is None:
        return contributions
    kept = {name: value for name, value in contributions.items() if name in CONVERSATION_WEIGHTS}
    return kept | {QUESTION: signal.logit}
