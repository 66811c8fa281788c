"""Self-contained questions: how much a stronger model is likely to help on an exam item or a word problem.

The escalation model (`escalation.py`) is fitted on editor traffic: on a question that carries everything it
needs in its own text (no attachment, no code) its signals see little. This module recognises two such
shapes and scores them with a small linear model of the question's text:

* `multiple_choice`: a stem and three or more lettered options ("A. …", "(B) …");
* `word_problem`: prose with two or more numbers that asks for a quantity ("How many …?").

Anything else (an attachment, code, a plain request) is not a question here and `read_question` returns
None, so editor traffic is untouched. The score is linear: hashed words and word pairs plus a few numeric
shape features (numbers, decimals, percentages, operators, option lengths), with weights set by
`bench/router_lab/questions.py` on training data disjoint from every evaluation set (docs/router.md,
"Self-contained questions"). Today both kinds are read by the question's length alone (weight 1 on
`log_total_chars`): no fitted candidate beat it on the training sets. The router uses one number from here,
`QuestionSignal.logit`: the question's part of the escalation logit, in place of the ask's own
(editor-traffic) parts.

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
MAX_WORD_PROBLEM_CHARS = 2_000  # GSM8K's longest training problem has 985

_OPTION = re.compile(r"(?:^|\n)[ \t]*\(?([A-J])[.)][ \t]+(.*)")
_NUMBER = re.compile(r"(?<![\w.])[-−]?\$?\d[\d,]*(?:\.\d+)?%?")
_WORD = re.compile(r"[a-z]+(?:'[a-z]+)?|<[a-z]+>")
_TOKEN = re.compile(r"\w+")


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


# Word sets rather than long case-insensitive alternations: a set lookup per word is several times faster.
_NUMBER_WORDS = _words(
    "one two three four five six seven eight nine ten eleven twelve fifteen twenty thirty forty fifty"
    " hundred thousand million half twice double triple thrice third quarter dozen"
)
_QUANTITY_ASK = re.compile(
    r"\b(?:how (?:many|much|long|far|old|tall|fast|often)|what|calculate|compute|find|determine)\b", re.I
)
# Editor material (fenced or quoted code, file names): never a self-contained question. `_EXTENSION` is
# a necessary part of a file name that is cheap to look for.
_EDITOR = re.compile(r"```|`[^`\n]+`|\b[\w.-]+\.(?:py|ts|js|go|rs|java|ya?ml|json|toml|cfg|ini|sh|cpp)\b")
_EXTENSION = re.compile(r"[\w.-]\.(?:py|ts|js|go|rs|java|ya?ml|json|toml|cfg|ini|sh|cpp)\b")
# Code-like text: a word problem has none (an exam item's options may quote code, so only `_EDITOR` there).
# Each alternative of `_CODE_SYNTAX` needs one of `_CODE_CHARS`, so prose without them skips the search.
_CODE_CHARS = frozenset("{};(:=>_")
_CODE_SYNTAX = re.compile(
    r"[{};]\s*$|\b(?:def|function|func|fn) \w+\(|\bclass \w+\s*[:({]|\b(?:const|let|var) \w+ ="
    r"|\w\(\)|\w+\.\w+\(|=>|->|\b[a-z]+_[a-z_]+\b",
    re.M,
)
_CODE_LINES = re.compile(r"^\s*(?:import|from) \w+|\bSELECT\b.*\bFROM\b", re.M)
# Software and operations words: a prompt with numbers that uses them is an engineering ask (sizing,
# capacity, a migration plan), which the escalation model reads, not a word problem.
_ENGINEERING_WORDS = _words(
    "mysql sql database db qps rps tps pod pods kubernetes k8s docker server servers service services"
    " microservice microservices api apis endpoint cache cluster repo monorepo latency throughput etl"
    " pipeline queries query schema index thread threads cpu gpu ram memory bytes kb mb gb tb gbps"
    " devs code app bug test java python javascript typescript golang rust init function method"
    " variable compile compiler runtime"
)
_ENGINEERING_PREFIXES = ("postgres", "shard", "replica", "deploy")
_PER_SECOND = re.compile(r"\b(?:requests?|writes?|reads?)/s\b", re.I)
_OPERATOR_CHARS = "=+*/^×÷√∑∫<>≤≥"
_OPERATOR_WORDS = frozenset(("sqrt", "log", "sin", "cos"))
_NEGATIONS = frozenset(("not", "except", "least", "false", "incorrect", "never"))
_FRACTION = re.compile(r"\d\s*/\s*\d")
_STATEMENTS = re.compile(r"\bstatement 1\b|\bstatement i\b", re.I)


def _is_editor(prompt: str) -> bool:
    if "`" not in prompt and not _EXTENSION.search(prompt):
        return False
    return bool(_EDITOR.search(prompt))


def _looks_like_code(text: str) -> bool:
    if not _CODE_CHARS.isdisjoint(text) and _CODE_SYNTAX.search(text):
        return True
    return ("import" in text or "from" in text or "SELECT" in text) and bool(_CODE_LINES.search(text))


def _is_engineering(words: list[str], text: str) -> bool:
    if not _ENGINEERING_WORDS.isdisjoint(words) or any(w.startswith(_ENGINEERING_PREFIXES) for w in words):
        return True
    return "/s" in text and bool(_PER_SECOND.search(text))


def _number_words(words: list[str]) -> int:
    return sum(1 for w in words if w in _NUMBER_WORDS)


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
    """The question's kind, stem and options, or None for anything that is not a self-contained question.
    The cheapest tests come first: most prompts are not questions and leave after one or two."""
    if len(prompt) > MAX_QUESTION_CHARS:
        return None
    options = _options(prompt) if "A." in prompt or "A)" in prompt else None
    if options is not None:
        stem = prompt[: options[0]].strip()
        return (
            ParsedQuestion("multiple_choice", stem, options[1]) if stem and not _is_editor(prompt) else None
        )
    text = prompt.strip()
    if len(text) > MAX_WORD_PROBLEM_CHARS or not (text.endswith("?") or _QUANTITY_ASK.search(text)):
        return None
    if _looks_like_code(text):
        return None
    words = _TOKEN.findall(text.lower())
    if _is_engineering(words, text):
        return None
    numbers = len(_NUMBER.findall(text)) + _number_words(words)
    if numbers < MIN_NUMBERS_IN_WORD_PROBLEM or _is_editor(prompt):
        return None
    return ParsedQuestion("word_problem", text, ())


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
    lower = stem.lower()
    words = _TOKEN.findall(lower)
    numbers = _NUMBER.findall(stem)
    option_text = " ".join(options)
    option_numbers = sum(1 for o in options if _NUMBER.search(o))
    operator_text = stem + " " + option_text
    operators = sum(operator_text.count(c) for c in _OPERATOR_CHARS) + sum(
        1 for w in _TOKEN.findall(operator_text) if w in _OPERATOR_WORDS
    )
    return [
        math.log1p(len(stem) + len(option_text)),
        math.log1p(len(stem)),
        math.log1p(len(stem.split())),
        math.log1p(len(numbers)),
        math.log1p(len(set(numbers))),
        math.log1p(_number_words(words)),
        float(any("." in n for n in numbers)),
        float(any(n.endswith("%") for n in numbers) or "percent" in lower),
        float(("/" in stem and bool(_FRACTION.search(stem))) or "fraction" in lower),
        float(any(n.lstrip("-−").startswith("$") for n in numbers)),
        math.log1p(max((len(n.replace(",", "").lstrip("-−$")) for n in numbers), default=0)),
        math.log1p(stem.count(".") + stem.count("?")),
        math.log1p(operators),
        math.log1p(len(option_text)),
        option_numbers / len(options) if options else 0.0,
        float(not _NEGATIONS.isdisjoint(words)),
        float("statement" in lower and bool(_STATEMENTS.search(stem))),
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
    parts stay (thinking on a hard ask); its rules (a stronger retry, an escalated conversation) are outside
    the logit and apply to questions too."""
    if signal is None:
        return contributions
    kept = {name: value for name, value in contributions.items() if name in CONVERSATION_WEIGHTS}
    return kept | {QUESTION: signal.logit}
